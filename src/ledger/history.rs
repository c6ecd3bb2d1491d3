//! The append-only history: one row per change to a lot, so that every lot's
//! `remaining` and `granted` are the sums of its rows (checked at open), and
//! the kinds of row, typed.

use super::{Result, Ts};
use rusqlite::{params, Connection};

/// What a history row (and an overage row) records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryKind {
    /// Credit issued: a new lot.
    Grant,
    /// A usage that happened took credit.
    Debit,
    /// A hold reserved credit for a usage about to happen.
    Hold,
    /// A hold was settled to the real cost: more taken, or some given back.
    Settle,
    /// A hold was voided, or a lot was voided with what it had left.
    Void,
    /// What was left on a lot at its expiry.
    Expire,
    /// A manager or the grants file changed a lot's amount or validity; or
    /// an expiry a wrong clock recorded was given back (`expiry`).
    Adjust,
    /// A refunded usage gave its credit back.
    Refund,
}

impl HistoryKind {
    /// The name stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryKind::Grant => "grant",
            HistoryKind::Debit => "debit",
            HistoryKind::Hold => "hold",
            HistoryKind::Settle => "settle",
            HistoryKind::Void => "void",
            HistoryKind::Expire => "expire",
            HistoryKind::Adjust => "adjust",
            HistoryKind::Refund => "refund",
        }
    }
}

/// One row to append.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub lot: i64,
    pub kind: HistoryKind,
    /// Change to the lot's `remaining`.
    pub delta: i64,
    /// Change to the lot's `granted`.
    pub granted_delta: i64,
    /// The usage that caused it, if one did.
    pub usage: Option<i64>,
    pub note: &'a str,
    pub at: Ts,
}

/// Appends one history row; the caller changes the lot itself in the same
/// transaction.
pub fn append(conn: &Connection, e: &Entry<'_>) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO history (lot_id, kind, delta, granted_delta, usage_id, note, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        e.lot,
        e.kind.as_str(),
        e.delta,
        e.granted_delta,
        e.usage,
        e.note,
        e.at
    ])?;
    Ok(())
}
