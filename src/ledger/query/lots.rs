//! A member's lots, each with where it came from, when it can be spent and
//! what is left: what `tallyd lots` shows, so a manager can see when credit
//! expires after it was issued.

use crate::ledger::{Result, Ts};
use rusqlite::{params, Connection};
use serde::Serialize;

/// Where a lot stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LotStatus {
    /// It can be spent now.
    Spendable,
    /// Its validity has not begun.
    NotYet,
    /// Nothing left.
    UsedUp,
    Expired,
    Voided,
}

impl LotStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LotStatus::Spendable => "spendable",
            LotStatus::NotYet => "not yet valid",
            LotStatus::UsedUp => "used up",
            LotStatus::Expired => "expired",
            LotStatus::Voided => "voided",
        }
    }
}

/// One lot of a member's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LotLine {
    pub lot: i64,
    pub credit: String,
    /// `plan`, `product`, `account` or `adjustment`.
    pub source: String,
    /// The plan benefit, product, account grant or refund it was issued for.
    pub source_key: String,
    pub granted: i64,
    pub remaining: i64,
    pub valid_from: Ts,
    pub expires_at: Option<Ts>,
    pub voided_at: Option<Ts>,
    pub status: LotStatus,
}

fn status(
    remaining: i64,
    valid_from: Ts,
    expires_at: Option<Ts>,
    voided: bool,
    at: Ts,
) -> LotStatus {
    if voided {
        LotStatus::Voided
    } else if expires_at.is_some_and(|e| e <= at) {
        LotStatus::Expired
    } else if remaining == 0 {
        LotStatus::UsedUp
    } else if valid_from > at {
        LotStatus::NotYet
    } else {
        LotStatus::Spendable
    }
}

/// Every lot of `member`, oldest first, as it stands at `at`.
pub fn lots_of(conn: &Connection, member: &str, at: Ts) -> Result<Vec<LotLine>> {
    // An unknown member is an error, not an empty list.
    super::members(conn, Some(member))?;
    let mut stmt = conn.prepare_cached(
        "SELECT id, credit, source, source_key, granted, remaining, valid_from, expires_at, voided_at
         FROM lots WHERE member_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![member], |r| {
        let (remaining, valid_from, expires_at, voided_at): (i64, Ts, Option<Ts>, Option<Ts>) =
            (r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?);
        Ok(LotLine {
            lot: r.get(0)?,
            credit: r.get(1)?,
            source: r.get(2)?,
            source_key: r.get(3)?,
            granted: r.get(4)?,
            remaining,
            valid_from,
            expires_at,
            voided_at,
            status: status(remaining, valid_from, expires_at, voided_at.is_some(), at),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
