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
}

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
        .prepare_cached(
            "SELECT id, resource, member_id, started_at, started_boot_ms, boot_id
             FROM sessions WHERE resource = ?1 AND ended_at IS NULL",
        )?
        .query_row([resource], row_to_open)
        .optional()?)
}

/// Every open session.
pub fn all_open(conn: &Connection) -> Result<Vec<Open>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, resource, member_id, started_at, started_boot_ms, boot_id
         FROM sessions WHERE ended_at IS NULL ORDER BY id",
    )?;
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
    let (open, overlong) = match open_at(conn, resource)? {
        Some(o) if reached_max(room, &o, now) => {
            (None, Some(end_at_max(conn, site, room, o, now)?))
        }
        open => (open, None),
    };
    Ok((
        overlong,
        tap_open(conn, site, room, resource, member, open, now)?,
    ))
}

fn tap_open(
    conn: &Connection,
    site: &Site,
    room: &Room,
    resource: &str,
    member: &str,
    open: Option<Open>,
    now: &Now,
) -> Result<TapOutcome> {
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
        (TapDecision::Start, _) => start(conn, site, room, resource, member, now),
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

/// Whether `open` has reached the room's maximum session length.
pub fn reached_max(room: &Room, open: &Open, now: &Now) -> bool {
    now.secs_since(open.started_at, open.started_boot_ms, &open.boot_id) >= room.max_secs
}

/// Ends `open` charged at exactly the reader's maximum session length.
pub fn end_at_max(
    conn: &Connection,
    site: &Site,
    room: &Room,
    open: Open,
    now: &Now,
) -> Result<Ended> {
    end(
        conn,
        site,
        open,
        room.max_secs,
        room.increment_minutes,
        "maximum length",
        now,
    )
}

fn start(
    conn: &Connection,
    site: &Site,
    room: &Room,
    resource: &str,
    member: &str,
    now: &Now,
) -> Result<TapOutcome> {
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
    if let Some(reason) = session_refusal(policy, available, overage) {
        return Ok(TapOutcome::Refused { reason });
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
    Ok(TapOutcome::Started {
        session: conn.last_insert_rowid(),
    })
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
    Ok(Ended {
        session,
        secs,
        minutes,
        reason: reason.to_string(),
        charge,
    })
}
