//! The review queue: finished jobs whose counts make no sense (more
//! impressions than the job could print, negative or garbled counts, nothing
//! printed of a document with pages) are set aside under their usual key,
//! charged nothing, until a manager charges or waives each once.
//!
//! A job in review is never charged by the poller: its key is taken. A
//! released job in review keeps its hold until the review is resolved; then
//! a charge settles it and a waiver voids it. Reviews and their resolutions
//! are append-only.

mod price;

pub use price::{charge_of, PriceError};

use super::{charge_finished, is_recorded, void_hold, FinishedJob, Recorded};
use crate::ledger::detail::UsageDetail;
use crate::ledger::usage;
use crate::ledger::{LedgerError, Result, Site, Ts};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// A job set aside, as the printer side reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspect {
    pub key: String,
    pub printer: String,
    pub job_id: i32,
    /// The normalised print user name, if the job had one.
    pub print_user: Option<String>,
    /// Why it is set aside, in words a manager reads.
    pub reason: String,
    /// What the printer reported as printed (absurd values kept as text).
    pub reported: String,
    /// Impressions the job's document accounts for, when known: what a
    /// charge without `--impressions` bills.
    pub proposed: Option<i64>,
    /// The job's facts (colour, sides, media, state, user) for pricing later.
    pub detail: UsageDetail,
    pub at: Ts,
}

/// A review as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Review {
    pub key: String,
    pub printer: String,
    pub job_id: i32,
    pub print_user: Option<String>,
    pub member: Option<String>,
    pub reason: String,
    pub reported: String,
    pub proposed: Option<i64>,
    /// Cents reserved by the job's open hold, if it was released from hold.
    pub held_cents: Option<i64>,
    pub at: Ts,
    /// `None` while open; `charged` or `waived` once resolved.
    pub outcome: Option<String>,
    pub resolved_at: Option<Ts>,
    pub note: Option<String>,
    #[serde(skip)]
    pub detail: UsageDetail,
}

/// Whether a review exists under `key`, open or resolved.
pub fn exists(conn: &Connection, key: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM reviews WHERE key = ?1")?
        .query_row([key], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Sets a job aside: [`Recorded::SetAside`] the first time,
/// [`Recorded::Already`] when it was recorded before (in review already, or
/// charged before its counts went wrong), so the caller logs it once.
pub fn set_aside(conn: &Connection, s: &Suspect) -> Result<Recorded> {
    if exists(conn, &s.key)? {
        return Ok(Recorded::Already);
    }
    if is_recorded(conn, &s.key)? && usage::open_hold(conn, &s.key)?.is_none() {
        return Ok(Recorded::Already);
    }
    conn.prepare_cached(
        "INSERT INTO reviews (key, printer, job_id, print_user, reason, reported, proposed, detail, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        s.key,
        s.printer,
        s.job_id,
        s.print_user,
        s.reason,
        s.reported,
        s.proposed,
        s.detail.to_json(),
        s.at
    ])?;
    Ok(Recorded::SetAside)
}

const LIST: &str =
    "SELECT r.key, r.printer, r.job_id, r.print_user, p.member_id, r.reason, r.reported,
        r.proposed, u.amount, r.at, x.outcome, x.at, x.note, r.detail
    FROM reviews r
    LEFT JOIN member_print_users p ON p.user = r.print_user
    LEFT JOIN review_resolutions x ON x.review_id = r.id
    LEFT JOIN usages u ON u.key = r.key AND u.is_hold = 1
        AND NOT EXISTS (SELECT 1 FROM hold_resolutions h WHERE h.usage_id = u.id)";

fn row_to_review(r: &rusqlite::Row<'_>) -> rusqlite::Result<Review> {
    Ok(Review {
        key: r.get(0)?,
        printer: r.get(1)?,
        job_id: r.get(2)?,
        print_user: r.get(3)?,
        member: r.get(4)?,
        reason: r.get(5)?,
        reported: r.get(6)?,
        proposed: r.get(7)?,
        held_cents: r.get(8)?,
        at: r.get(9)?,
        outcome: r.get(10)?,
        resolved_at: r.get(11)?,
        note: r.get(12)?,
        detail: UsageDetail::parse(&r.get::<_, String>(13)?),
    })
}

/// Reviews, oldest first: open ones only, or all.
pub fn list(conn: &Connection, open_only: bool) -> Result<Vec<Review>> {
    let sql = if open_only {
        format!("{LIST} WHERE x.review_id IS NULL ORDER BY r.id")
    } else {
        format!("{LIST} ORDER BY r.id")
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], row_to_review)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The review under `key`.
pub fn get(conn: &Connection, key: &str) -> Result<Review> {
    conn.prepare_cached(&format!("{LIST} WHERE r.key = ?1"))?
        .query_row([key], row_to_review)
        .optional()?
        .ok_or_else(|| LedgerError::UnknownReview(key.to_string()))
}

fn open(conn: &Connection, key: &str) -> Result<(i64, Review)> {
    let review = get(conn, key)?;
    if let Some(outcome) = &review.outcome {
        return Err(LedgerError::ReviewResolved {
            key: key.to_string(),
            outcome: outcome.clone(),
        });
    }
    let id: i64 = conn
        .prepare_cached("SELECT id FROM reviews WHERE key = ?1")?
        .query_row([key], |r| r.get(0))?;
    Ok((id, review))
}

fn resolve(conn: &Connection, id: i64, outcome: &str, note: &str, at: Ts) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO review_resolutions (review_id, outcome, note, at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, outcome, note, at])?;
    Ok(())
}

/// A manager's charge of a job in review: `impressions` at `cents` (priced
/// by the caller from the printer's table), as the job would have been
/// charged: it settles the job's hold, or debits its owner.
pub fn charge(
    conn: &Connection,
    site: &Site,
    key: &str,
    impressions: i64,
    cents: i64,
    note: &str,
    at: Ts,
) -> Result<Recorded> {
    let (id, review) = open(conn, key)?;
    let mut detail = review.detail.clone();
    detail.impressions = Some(impressions);
    let finished = FinishedJob {
        key: review.key.clone(),
        printer: review.printer.clone(),
        print_user: review.print_user.clone(),
        cents,
        detail,
        at: at.max(review.at),
    };
    let recorded = charge_finished(conn, site, &finished)?;
    let note = format!("charged {impressions} impressions, {cents} cents: {note}");
    resolve(conn, id, "charged", &note, at.max(review.at))?;
    Ok(recorded)
}

/// A manager's waiver: the job costs nothing; a hold it had is voided.
pub fn waive(conn: &Connection, key: &str, reason: &str, at: Ts) -> Result<Recorded> {
    let (id, review) = open(conn, key)?;
    let at = at.max(review.at);
    let recorded = void_hold(conn, key, &format!("waived: {reason}"), at)?;
    resolve(conn, id, "waived", reason, at)?;
    Ok(recorded)
}
