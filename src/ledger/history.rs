//! The append-only history: one row per change to a lot, so that every lot's
//! `remaining` and `granted` are the sums of its rows (checked at open),
//! each row hashed onto the history chain ([`super::integrity`]), and the
//! kinds of row, typed.

use super::integrity::{self, Chain};
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

/// A lot's member and credit, and the history chain's tip.
const OWNER_AND_TIP: &str = "SELECT l.member_id, l.credit, t.id, t.hash FROM lots l
     LEFT JOIN (SELECT id, hash FROM history ORDER BY id DESC LIMIT 1) t
     WHERE l.id = ?1";

/// Appends one history row, hashed onto the history chain; the caller
/// changes the lot itself in the same transaction.
pub fn append(conn: &Connection, e: &Entry<'_>) -> Result<()> {
    // The lot's owner (bound into the hash) and the chain's tip, in one
    // statement: this runs for every row a debit writes.
    let (member, credit, last): (String, String, integrity::Last) = conn
        .prepare_cached(OWNER_AND_TIP)?
        .query_row([e.lot], |r| {
            let id: Option<i64> = r.get(2)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                id.map(|id| (id, r.get(3).ok().flatten())),
            ))
        })?;
    let (id, hash) = integrity::next_after(Chain::History, last, |id| {
        vec![
            id.into(),
            e.lot.into(),
            member.as_str().into(),
            credit.as_str().into(),
            e.kind.as_str().into(),
            e.delta.into(),
            e.granted_delta.into(),
            e.usage.into(),
            e.note.into(),
            e.at.into(),
        ]
    })?;
    conn.prepare_cached(
        "INSERT INTO history (id, lot_id, kind, delta, granted_delta, usage_id, note, at, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        id,
        e.lot,
        e.kind.as_str(),
        e.delta,
        e.granted_delta,
        e.usage,
        e.note,
        e.at,
        hash.as_slice()
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::OWNER_AND_TIP;
    use crate::ledger::lots::{self, GrantRequest};
    use crate::ledger::{Ledger, Site, SourceKind, PRINTING};
    use rusqlite::StatementStatus;
    use std::path::Path;

    /// A statement a debit runs is compiled once, whatever values it is
    /// given: SQLite compiled this one again for every new lot (a plan
    /// tailored to the value) until the ledger's connections asked for
    /// plans that do not depend on values (`configure`).
    #[test]
    fn a_debit_statement_is_not_compiled_again_for_each_lot() {
        let mut ledger = Ledger::open(Path::new(":memory:"), Site::default()).expect("ledger");
        ledger
            .write(|c, _| {
                lots::ensure_member(c, "alice", "Alice", 0)?;
                for key in ["g1", "g2"] {
                    lots::grant(
                        c,
                        &GrantRequest {
                            member: "alice".into(),
                            credit: PRINTING.into(),
                            amount: 100,
                            valid_from: 0,
                            expires_at: None,
                            source: SourceKind::Adjustment,
                            source_key: key.into(),
                            note: String::new(),
                            at: 1,
                        },
                    )?;
                }
                Ok(())
            })
            .expect("grants");
        let mut stmt = ledger.conn().prepare(OWNER_AND_TIP).expect("prepare");
        for lot in [1, 2, 1, 2] {
            let member: String = stmt.query_row([lot], |r| r.get(0)).expect("owner");
            assert_eq!(member, "alice");
        }
        assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0);
    }

    /// Plans fixed without the values still find a usage's rows through
    /// the partial index on `usage_id` (a settle and a refund read them).
    #[test]
    fn a_usages_rows_are_found_through_its_partial_index() {
        let ledger = Ledger::open(Path::new(":memory:"), Site::default()).expect("ledger");
        let plan: Vec<String> = ledger
            .conn()
            .prepare("EXPLAIN QUERY PLAN SELECT delta FROM history WHERE usage_id = ?1")
            .expect("explain")
            .query_map([7], |r| r.get(3))
            .expect("plan")
            .collect::<rusqlite::Result<_>>()
            .expect("plan rows");
        assert!(
            plan.iter().any(|step| step.contains("history_by_usage")),
            "{plan:?}"
        );
    }
}
