//! Lots: members, time credit definitions, grants, adjustments and voids
//! (expiry is [`super::expiry`]). Each change to a lot writes a history row
//! that says why and, for edits, what was there before.

use super::allocate::SourceKind;
use super::history::{self, Entry, HistoryKind};
use super::{bounded, sub, LedgerError, OveragePolicy, Result, Ts, PRINTING};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// Creates a member, or updates their name and policy; reopens a closed one.
pub fn upsert_member(
    conn: &Connection,
    id: &str,
    name: &str,
    policy: Option<OveragePolicy>,
    home_site: Option<&str>,
    at: Ts,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO members (id, name, overage_policy, overage_cap_cents, overage_cap_minutes, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, overage_policy = excluded.overage_policy,
             overage_cap_cents = excluded.overage_cap_cents,
             overage_cap_minutes = excluded.overage_cap_minutes, closed_at = NULL",
    )?
    .execute(params![
        id,
        name,
        policy.map(|p| p.kind.as_str()),
        policy.and_then(|p| p.cap_cents),
        policy.and_then(|p| p.cap_minutes),
        at
    ])?;
    match home_site {
        Some(site) => conn
            .prepare_cached(
                "INSERT INTO member_homes (member_id, site_id) VALUES (?1, ?2)
                 ON CONFLICT (member_id) DO UPDATE SET site_id = excluded.site_id",
            )?
            .execute(params![id, site])?,
        None => conn
            .prepare_cached("DELETE FROM member_homes WHERE member_id = ?1")?
            .execute([id])?,
    };
    Ok(())
}

/// Adds a member only if unknown; returns whether it was added.
pub fn ensure_member(conn: &Connection, id: &str, name: &str, at: Ts) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "INSERT INTO members (id, name, created_at) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO NOTHING",
        )?
        .execute(params![id, name, at])?;
    Ok(n == 1)
}

/// Closes a member: no new lots; their history stays.
pub fn close_member(conn: &Connection, id: &str, at: Ts) -> Result<()> {
    let n = conn
        .prepare_cached("UPDATE members SET closed_at = ?2 WHERE id = ?1 AND closed_at IS NULL")?
        .execute(params![id, at])?;
    if n == 0 {
        let known: Option<i64> = conn
            .query_row("SELECT 1 FROM members WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        if known.is_none() {
            return Err(LedgerError::UnknownMember(id.to_string()));
        }
    }
    Ok(())
}

/// Defines (or redefines) a time credit and the resource types it can pay for.
/// The list is a live definition: it changes what every lot of it can pay for.
pub fn define_time_credit(
    conn: &Connection,
    id: &str,
    name: &str,
    resource_types: &[String],
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO time_credits (id, name) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET name = excluded.name",
    )?
    .execute(params![id, name])?;
    conn.prepare_cached("DELETE FROM time_credit_types WHERE credit_id = ?1")?
        .execute([id])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO time_credit_types (credit_id, resource_type) VALUES (?1, ?2)",
    )?;
    for rt in resource_types {
        insert.execute(params![id, rt])?;
    }
    Ok(())
}

/// Whether `credit` is the printing credit or a defined time credit.
pub fn credit_exists(conn: &Connection, credit: &str) -> Result<bool> {
    if credit == PRINTING {
        return Ok(true);
    }
    let found: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM time_credits WHERE id = ?1")?
        .query_row([credit], |r| r.get(0))
        .optional()?;
    Ok(found.is_some())
}

/// One grant of credit to a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRequest {
    pub member: String,
    /// `printing` or a time credit id.
    pub credit: String,
    pub amount: i64,
    pub valid_from: Ts,
    pub expires_at: Option<Ts>,
    pub source: SourceKind,
    /// Unique per lot: granting the same key twice grants once.
    pub source_key: String,
    pub note: String,
    pub at: Ts,
}

/// The lot a grant made, or found already made under the same source key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Granted {
    pub lot: i64,
    pub created: bool,
}

/// The member a lot belongs to.
pub fn owner(conn: &Connection, lot: i64) -> Result<String> {
    Ok(conn
        .prepare_cached("SELECT member_id FROM lots WHERE id = ?1")?
        .query_row([lot], |r| r.get(0))?)
}

/// Grants a lot, once per source key. The amount is from 1 to
/// [`MAX_UNITS`](crate::money::MAX_UNITS).
pub fn grant(conn: &Connection, g: &GrantRequest) -> Result<Granted> {
    bounded(g.amount, 1)?;
    if !credit_exists(conn, &g.credit)? {
        return Err(LedgerError::UnknownCredit(g.credit.clone()));
    }
    let existing: Option<i64> = conn
        .prepare_cached("SELECT id FROM lots WHERE source_key = ?1")?
        .query_row([&g.source_key], |r| r.get(0))
        .optional()?;
    if let Some(lot) = existing {
        return Ok(Granted {
            lot,
            created: false,
        });
    }
    let known: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM members WHERE id = ?1")?
        .query_row([&g.member], |r| r.get(0))
        .optional()?;
    if known.is_none() {
        return Err(LedgerError::UnknownMember(g.member.clone()));
    }
    insert_lot(conn, g)
}

/// Inserts a lot and its `grant` history row without the checks [`grant`]
/// makes on member, credit and key; for callers that validated them
/// themselves (the grants sync, which inserts thousands at once). The amount
/// is still bounded here.
pub fn insert_lot(conn: &Connection, g: &GrantRequest) -> Result<Granted> {
    bounded(g.amount, 1)?;
    conn.prepare_cached(
        "INSERT INTO lots (member_id, credit, granted, remaining, valid_from, expires_at, source, source_key, created_at)
         VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        g.member,
        g.credit,
        g.amount,
        g.valid_from,
        g.expires_at,
        g.source.as_str(),
        g.source_key,
        g.at
    ])?;
    let lot = conn.last_insert_rowid();
    history(
        conn,
        lot,
        HistoryKind::Grant,
        g.amount,
        g.amount,
        &g.note,
        g.at,
    )?;
    Ok(Granted { lot, created: true })
}

fn history(
    conn: &Connection,
    lot: i64,
    kind: HistoryKind,
    delta: i64,
    granted_delta: i64,
    note: &str,
    at: Ts,
) -> Result<()> {
    history::append(
        conn,
        &Entry {
            lot,
            kind,
            delta,
            granted_delta,
            usage: None,
            note,
            at,
        },
    )
}

/// A lot's amounts as they stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LotState {
    pub granted: i64,
    pub remaining: i64,
    pub expires_at: Option<Ts>,
    pub voided: bool,
}

pub fn lot_state(conn: &Connection, lot: i64) -> Result<LotState> {
    conn.prepare_cached("SELECT granted, remaining, expires_at, voided_at FROM lots WHERE id = ?1")?
        .query_row([lot], |r| {
            Ok(LotState {
                granted: r.get(0)?,
                remaining: r.get(1)?,
                expires_at: r.get(2)?,
                voided: r.get::<_, Option<Ts>>(3)?.is_some(),
            })
        })
        .optional()?
        .ok_or(LedgerError::UnknownLot(lot))
}

/// Changes a lot's amount to `new_amount`. What was already used stays used:
/// if more was used than the new amount, remaining becomes 0 (never negative)
/// and the history row says so. Returns the change to remaining. The new
/// amount is from 0 to [`MAX_UNITS`](crate::money::MAX_UNITS).
pub fn adjust_amount(
    conn: &Connection,
    lot: i64,
    new_amount: i64,
    reason: &str,
    at: Ts,
) -> Result<i64> {
    bounded(new_amount, 0)?;
    let before = lot_state(conn, lot)?;
    let used = sub(before.granted, before.remaining)?;
    // Granted never drops below what was already used, so granted always
    // equals remaining plus what the history shows as spent.
    let new_granted = new_amount.max(used);
    let delta = sub(new_granted, before.granted)?;
    if delta == 0 {
        return Ok(0);
    }
    let note = format!(
        "{reason}; was granted {} with {} remaining{}",
        before.granted,
        before.remaining,
        if new_amount < used {
            format!(
                "; {used} already used, more than the new amount {new_amount}, so remaining is 0"
            )
        } else {
            String::new()
        }
    );
    conn.prepare_cached(
        "UPDATE lots SET granted = granted + ?2, remaining = remaining + ?2 WHERE id = ?1",
    )?
    .execute(params![lot, delta])?;
    history(conn, lot, HistoryKind::Adjust, delta, delta, &note, at)?;
    Ok(delta)
}

/// Changes when a lot is valid, recording the old values.
pub fn adjust_validity(
    conn: &Connection,
    lot: i64,
    valid_from: Ts,
    expires_at: Option<Ts>,
    reason: &str,
    at: Ts,
) -> Result<()> {
    let before: (Ts, Option<Ts>) = conn
        .prepare_cached("SELECT valid_from, expires_at FROM lots WHERE id = ?1")?
        .query_row([lot], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(LedgerError::UnknownLot(lot))?;
    if before == (valid_from, expires_at) {
        return Ok(());
    }
    conn.prepare_cached("UPDATE lots SET valid_from = ?2, expires_at = ?3 WHERE id = ?1")?
        .execute(params![lot, valid_from, expires_at])?;
    let show = |t: Option<Ts>| {
        t.map(|t| crate::clock::format_rfc3339(chrono_tz::UTC, t))
            .unwrap_or_else(|| "never".into())
    };
    let note = format!(
        "{reason}; was valid from {} until {}",
        show(Some(before.0)),
        show(before.1)
    );
    history(conn, lot, HistoryKind::Adjust, 0, 0, &note, at)
}

/// Changes when a lot expires, recording the old value.
pub fn adjust_expiry(
    conn: &Connection,
    lot: i64,
    expires_at: Option<Ts>,
    reason: &str,
    at: Ts,
) -> Result<()> {
    let before = lot_state(conn, lot)?;
    if before.expires_at == expires_at {
        return Ok(());
    }
    conn.prepare_cached("UPDATE lots SET expires_at = ?2 WHERE id = ?1")?
        .execute(params![lot, expires_at])?;
    let was = before
        .expires_at
        .map(|t| crate::clock::format_rfc3339(chrono_tz::UTC, t))
        .unwrap_or_else(|| "never".into());
    history(
        conn,
        lot,
        HistoryKind::Adjust,
        0,
        0,
        &format!("{reason}; expiry was {was}"),
        at,
    )
}

/// Voids what is left of a lot; it can never be spent again. Returns the
/// amount voided.
pub fn void_lot(conn: &Connection, lot: i64, reason: &str, at: Ts) -> Result<i64> {
    let before = lot_state(conn, lot)?;
    if before.voided {
        return Ok(0);
    }
    conn.prepare_cached("UPDATE lots SET remaining = 0, voided_at = ?2 WHERE id = ?1")?
        .execute(params![lot, at])?;
    let note = format!(
        "{reason}; was granted {} with {} remaining",
        before.granted, before.remaining
    );
    history(
        conn,
        lot,
        HistoryKind::Void,
        sub(0, before.remaining)?,
        0,
        &note,
        at,
    )?;
    Ok(before.remaining)
}

/// The manual grants of this ledger (`tallyd grant`, the console's grant:
/// source keys `adjustment:…`), not voided, each as a [`GrantRequest`]
/// with the note its grant row gave; what `tallyd central import` makes
/// chain credit. Other adjustment lots are the ledger's own (credit a
/// refund gave anew, escrow slices), which the centre learns otherwise.
pub fn manual_grants(conn: &Connection) -> Result<Vec<GrantRequest>> {
    let mut stmt = conn.prepare(
        "SELECT l.member_id, l.credit, l.granted, l.valid_from, l.expires_at, l.source_key,
                COALESCE((SELECT h.note FROM history h
                          WHERE h.lot_id = l.id AND h.kind = 'grant' ORDER BY h.id LIMIT 1), ''),
                l.created_at
         FROM lots l
         WHERE l.source = 'adjustment' AND l.source_key LIKE 'adjustment:%'
           AND l.voided_at IS NULL
         ORDER BY l.id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(GrantRequest {
            member: r.get(0)?,
            credit: r.get(1)?,
            amount: r.get(2)?,
            valid_from: r.get(3)?,
            expires_at: r.get(4)?,
            source: SourceKind::Adjustment,
            source_key: r.get(5)?,
            note: r.get(6)?,
            at: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
