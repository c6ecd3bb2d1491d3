//! What is going on now, for the console's "now" page: held jobs waiting
//! for their owner's tap, and the day's usages as they happen.

use super::describe_usage;
use crate::ledger::{Result, Ts};
use rusqlite::{params, Connection};
use serde::Serialize;

/// A usage as the now page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageLine {
    pub key: String,
    pub member: Option<String>,
    /// The printer or the room.
    pub place: String,
    /// `printing` or `time`: cents or minutes.
    pub credit_kind: String,
    /// What was charged, or for a hold what was reserved (the estimate).
    pub amount: i64,
    pub is_hold: bool,
    pub description: String,
    pub at: Ts,
}

const COLUMNS: &str = "u.key, u.member_id, COALESCE(u.printer, u.resource, ''), u.credit_kind,
    u.amount, u.is_hold, u.origin, u.printer, u.resource, u.detail, u.at";

fn line(r: &rusqlite::Row<'_>) -> rusqlite::Result<UsageLine> {
    let printer: Option<String> = r.get(7)?;
    let resource: Option<String> = r.get(8)?;
    let origin: String = r.get(6)?;
    let detail: String = r.get(9)?;
    Ok(UsageLine {
        key: r.get(0)?,
        member: r.get(1)?,
        place: r.get(2)?,
        credit_kind: r.get(3)?,
        amount: r.get(4)?,
        is_hold: r.get(5)?,
        description: describe_usage(&origin, printer.as_deref(), resource.as_deref(), &detail),
        at: r.get(10)?,
    })
}

/// Holds not settled or voided yet: held jobs waiting at their printer,
/// oldest first.
pub fn open_holds(conn: &Connection) -> Result<Vec<UsageLine>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM usages u
         WHERE u.is_hold = 1 AND NOT EXISTS
           (SELECT 1 FROM hold_resolutions h WHERE h.usage_id = u.id)
         ORDER BY u.printer, u.at"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], line)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Usages since `since`, newest first, at most `limit`.
pub fn usages_since(conn: &Connection, since: Ts, limit: usize) -> Result<Vec<UsageLine>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM usages u WHERE u.at >= ?1 ORDER BY u.at DESC, u.id DESC LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![since, limit as i64], line)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The usage under `key`, if there is one.
pub fn usage(conn: &Connection, key: &str) -> Result<Option<UsageLine>> {
    use rusqlite::OptionalExtension;
    let sql = format!("SELECT {COLUMNS} FROM usages u WHERE u.key = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([key], line)
        .optional()?)
}
