//! Room sessions in the ledger: every function runs inside the writer, so a
//! tap's check, the session row and its charge commit together. The rules
//! (what a tap does, how minutes are counted) are [`crate::room`]'s.

use super::catalog::resource_type;
use super::detail::UsageDetail;
use super::usage::rules::session_refusal;
use super::usage::{self, Charge};
use super::{LedgerError, Origin, Payable, Result, Site, UsageRequest};
use crate::clock;
use crate::money::Unit;
use crate::room::clock::Now;
use crate::room::{charged_minutes, decide, Room, TapDecision};
use rusqlite::{params, Connection, OptionalExtension};

/// An open session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub id: i64,
    pub resource: String,
    pub member: String,
    pub started_at: i64,
    pub started_boot_ms: i64,
    pub boot_id: String,
    /// A session started on the offline allowance (a chain site that could
    /// not reach its centre) ends, charged, at this many seconds if the
    /// room's maximum is longer.
    pub allowance_secs: Option<i64>,
}

/// What an open session's query reads.
const OPEN_COLUMNS: &str = "id, resource, member_id, started_at, started_boot_ms, boot_id,
    (SELECT a.minutes * 60 FROM session_allowances a WHERE a.session_id = sessions.id)";

/// A session that ended and what it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub session: Open,
    pub secs: i64,
    pub minutes: i64,
    pub reason: String,
    pub charge: Charge,
}

/// What a tap at a room did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapOutcome {
    Started {
        session: i64,
    },
    /// Not started, and why.
    Refused {
        reason: String,
    },
    Ended(Ended),
    Bounce,
    /// Another member's session is open.
    Busy {
        open_by: String,
    },
    /// Another member's session was ended, as the room is set to.
    EndedOther(Ended),
}

/// The open session at `resource`, if any.
pub fn open_at(conn: &Connection, resource: &str) -> Result<Option<Open>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {OPEN_COLUMNS} FROM sessions WHERE resource = ?1 AND ended_at IS NULL"
        ))?
        .query_row([resource], row_to_open)
        .optional()?)
}

/// Every open session.
pub fn all_open(conn: &Connection) -> Result<Vec<Open>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {OPEN_COLUMNS} FROM sessions WHERE ended_at IS NULL ORDER BY id"
    ))?;
    let rows = stmt.query_map([], row_to_open)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn row_to_open(r: &rusqlite::Row<'_>) -> rusqlite::Result<Open> {
    Ok(Open {
        id: r.get(0)?,
        resource: r.get(1)?,
        member: r.get(2)?,
        started_at: r.get(3)?,
        started_boot_ms: r.get(4)?,
        boot_id: r.get(5)?,
        allowance_secs: r.get(6)?,
    })
}

/// A tap by `member` at the room `reader` is bound to. A session already at
/// its maximum length is first closed at exactly that length, as the sweep
/// would have (returned beside the outcome), and the tap then finds the room
/// free.
pub fn tap(
    conn: &Connection,
    site: &Site,
    room: &Room,
    resource: &str,
    member: &str,
    now: &Now,
) -> Result<(Option<Ended>, TapOutcome)> {
    tap_on_allowance(conn, site, room, resource, member, now, 0)
}

/// As [`tap`], at a chain site that could not reach its centre for more
/// minutes: a session the member's policy would refuse starts all the
/// same on what is left of the offline `allowance` (minutes; 0: none),
/// reserved whole increments of it, and ends, charged, when they are used
/// up (multi-site.md 3.6).
pub fn tap_on_allowance(
    conn: &Connection,
    site: &Site,
    room: &Room,
    resource: &str,
    member: &str,
    now: &Now,
    allowance: i64,
) -> Result<(Option<Ended>, TapOutcome)> {
    let (open, overlong) = match open_at(conn, resource)? {
        Some(o) if reached_max(room, &o, now) => {
            (None, Some(end_at_max(conn, site, room, o, now)?))
        }
        open => (open, None),
    };
    let tapped = Tapped {
        resource,
        member,
        now,
        allowance,
    };
    Ok((overlong, tap_open(conn, site, room, &tapped, open)?))
}

/// A tap: where, by whom, when, and the offline allowance it may use.
struct Tapped<'a> {
    resource: &'a str,
    member: &'a str,
    now: &'a Now,
    allowance: i64,
}

fn tap_open(
    conn: &Connection,
    site: &Site,
    room: &Room,
    tapped: &Tapped<'_>,
    open: Option<Open>,
) -> Result<TapOutcome> {
    let (member, now) = (tapped.member, tapped.now);
    let elapsed = open
        .as_ref()
        .map(|o| now.secs_since(o.started_at, o.started_boot_ms, &o.boot_id));
    let decision = decide(
        open.as_ref().map(|o| o.member.as_str()).zip(elapsed),
        member,
        room.other_member,
    );
    let increment = room.increment_minutes;
    match (decision, open) {
        (TapDecision::Start, _) => start(conn, site, room, tapped),
        (TapDecision::Bounce, _) => Ok(TapOutcome::Bounce),
        (TapDecision::RefuseOther { open_by }, _) => Ok(TapOutcome::Busy { open_by }),
        (TapDecision::End, Some(o)) => {
            let secs = elapsed.unwrap_or(0);
            end(conn, site, o, secs, increment, "tap", now).map(TapOutcome::Ended)
        }
        (TapDecision::EndOther { .. }, Some(o)) => {
            let secs = elapsed.unwrap_or(0);
            end(conn, site, o, secs, increment, "another member tapped", now)
                .map(TapOutcome::EndedOther)
        }
        (TapDecision::End | TapDecision::EndOther { .. }, None) => Ok(TapOutcome::Bounce),
    }
}

/// Whether `open` has reached the room's maximum session length (or the
/// end of the allowance it started on).
pub fn reached_max(room: &Room, open: &Open, now: &Now) -> bool {
    now.secs_since(open.started_at, open.started_boot_ms, &open.boot_id) >= max_secs(room, open)
}

/// The longest `open` may run: the room's maximum, or less on an allowance.
fn max_secs(room: &Room, open: &Open) -> i64 {
    open.allowance_secs
        .map_or(room.max_secs, |a| a.min(room.max_secs))
}

/// Ends `open` charged at exactly the reader's maximum session length.
pub fn end_at_max(
    conn: &Connection,
    site: &Site,
    room: &Room,
    open: Open,
    now: &Now,
) -> Result<Ended> {
    let (secs, reason) = match max_secs(room, &open) {
        m if m < room.max_secs => (m, "offline allowance used up"),
        m => (m, "maximum length"),
    };
    end(conn, site, open, secs, room.increment_minutes, reason, now)
}

fn start(conn: &Connection, site: &Site, room: &Room, tapped: &Tapped<'_>) -> Result<TapOutcome> {
    let (resource, member, now) = (tapped.resource, tapped.member, tapped.now);
    let Some(resource_type) = resource_type(conn, resource)? else {
        return Ok(TapOutcome::Refused {
            reason: format!("resource `{resource}` is not in the grants file"),
        });
    };
    let payable = Payable::Time { resource_type };
    // Own time credit plus what the team's pool allows this member; the
    // policy and cap are of whoever owes the overage (the payer, merged).
    let paying = usage::pool::paying(conn, site.tz, member, &payable, now.wall)?;
    let available = paying.available()?;
    let owes = paying.billed_to(member);
    let policy = usage::policy_of(conn, site, owes)?;
    let month = clock::month_start(site.tz, now.wall);
    let overage = usage::overage_since(conn, owes, Unit::Minutes, month)?;
    let mut reserve = None;
    if let Some(reason) = session_refusal(policy, available, overage) {
        let usable = match tapped.allowance {
            0 => 0,
            a => {
                let left = super::escrow::allowance_left(conn, owes, Unit::Minutes, a)?;
                whole_increments(left, room.increment_minutes)
            }
        };
        if usable == 0 {
            return Ok(TapOutcome::Refused { reason });
        }
        reserve = Some((owes.to_string(), usable));
    }
    conn.prepare_cached(
        "INSERT INTO sessions (resource, member_id, reader, started_at, started_boot_ms, boot_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        resource,
        member,
        room.reader,
        now.wall,
        now.boot_ms,
        now.boot_id
    ])?;
    let session = conn.last_insert_rowid();
    if let Some((owes, minutes)) = reserve {
        conn.prepare_cached(
            "INSERT INTO session_allowances (session_id, member_id, minutes) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![session, owes, minutes])?;
    }
    Ok(TapOutcome::Started { session })
}

/// The most of `minutes` a session may be charged in whole increments.
fn whole_increments(minutes: i64, increment: i64) -> i64 {
    match increment {
        i if i > 0 => minutes / i * i,
        _ => minutes,
    }
}

/// Ends a session after `secs`, charging its minutes. The end (and the
/// charge) is dated `now`, or the start if `now` is earlier: a wall clock
/// that stepped back never dates an end before its start.
pub fn end(
    conn: &Connection,
    site: &Site,
    session: Open,
    secs: i64,
    increment_minutes: i64,
    reason: &str,
    now: &Now,
) -> Result<Ended> {
    let minutes = charged_minutes(secs, increment_minutes).ok_or(LedgerError::Overflow)?;
    let at = now.wall.max(session.started_at);
    let resource_type = resource_type(conn, &session.resource)?.unwrap_or_default();
    let key = format!("session:{}:{}", session.resource, session.id);
    let req = UsageRequest {
        key: key.clone(),
        member: Some(session.member.clone()),
        origin: Origin::Session {
            resource: session.resource.clone(),
        },
        payable: Payable::Time { resource_type },
        amount: minutes,
        detail: UsageDetail {
            session: Some(session.id),
            minutes: Some(minutes),
            seconds: Some(secs),
            increment: Some(increment_minutes),
            started_at: Some(session.started_at),
            reason: Some(reason.to_string()),
            ..UsageDetail::default()
        }
        .to_json(),
        at,
    };
    let charge = usage::debit(conn, site, &req)?;
    conn.prepare_cached(
        "UPDATE sessions SET ended_at = ?2, minutes = ?3, end_reason = ?4, usage_key = ?5
         WHERE id = ?1 AND ended_at IS NULL",
    )?
    .execute(params![session.id, at, minutes, reason, key])?;
    allowance_used(conn, &session, &charge)?;
    Ok(Ended {
        session,
        secs,
        minutes,
        reason: reason.to_string(),
        charge,
    })
}

/// A session that started on the offline allowance: what its charge left
/// uncovered, up to what it reserved, is that allowance's use.
fn allowance_used(conn: &Connection, session: &Open, charge: &Charge) -> Result<()> {
    let reserved: Option<(String, i64)> = conn
        .prepare_cached("SELECT member_id, minutes FROM session_allowances WHERE session_id = ?1")?
        .query_row([session.id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((member, minutes)) = reserved else {
        return Ok(());
    };
    let used = charge.overage.min(minutes);
    if used > 0 && !charge.replayed {
        super::escrow::use_allowance(conn, charge.usage_id, &member, Unit::Minutes, used)?;
    }
    Ok(())
}
