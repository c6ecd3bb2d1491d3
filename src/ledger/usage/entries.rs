//! The rows a usage moves: credit taken from (or given back to) a lot with
//! its history row, overage recorded, and a usage's totals read back.

use super::pool::paying;
use super::{Charge, Payable};
use crate::ledger::history::{self, Entry, HistoryKind};
use crate::ledger::integrity::{self, Chain};
use crate::ledger::{LedgerError, Result, Ts};
use crate::money::Unit;
use chrono_tz::Tz;
use rusqlite::{params, Connection};

pub(super) fn take_from_lot(
    conn: &Connection,
    lot: i64,
    amount: i64,
    kind: HistoryKind,
    usage: Option<i64>,
    note: &str,
    at: Ts,
) -> Result<()> {
    conn.prepare_cached("UPDATE lots SET remaining = remaining - ?2 WHERE id = ?1")?
        .execute(params![lot, amount])?;
    history::append(
        conn,
        &Entry {
            lot,
            kind,
            delta: amount.checked_neg().ok_or(LedgerError::Overflow)?,
            granted_delta: 0,
            usage,
            note,
            at,
        },
    )
}

/// Returns reserved credit to a lot. If the lot can no longer be spent (expired
/// or voided since), the returned amount is expired or voided at once so no
/// credit is left stranded on a dead lot. That second row belongs to the lot,
/// not the usage (no `usage_id`): the usage did not spend it.
pub(super) fn give_back(
    conn: &Connection,
    lot: i64,
    amount: i64,
    kind: HistoryKind,
    usage: i64,
    at: Ts,
) -> Result<()> {
    take_from_lot(conn, lot, -amount, kind, Some(usage), "", at)?;
    let (expires_at, voided_at): (Option<Ts>, Option<Ts>) = conn
        .prepare_cached("SELECT expires_at, voided_at FROM lots WHERE id = ?1")?
        .query_row([lot], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if voided_at.is_some() {
        take_from_lot(
            conn,
            lot,
            amount,
            HistoryKind::Void,
            None,
            "returned to a voided lot",
            at,
        )?;
    } else if expires_at.is_some_and(|e| e <= at) {
        take_from_lot(
            conn,
            lot,
            amount,
            HistoryKind::Expire,
            None,
            "returned to an expired lot",
            at,
        )?;
    }
    Ok(())
}

pub(super) fn add_overage(
    conn: &Connection,
    member: &str,
    usage: i64,
    unit: Unit,
    kind: HistoryKind,
    amount: i64,
    at: Ts,
) -> Result<()> {
    if amount != 0 {
        let (id, hash) = integrity::next(conn, Chain::Overage, |id| {
            vec![
                id.into(),
                member.into(),
                usage.into(),
                unit.as_str().into(),
                kind.as_str().into(),
                amount.into(),
                at.into(),
            ]
        })?;
        conn.prepare_cached(
            "INSERT INTO overage (id, member_id, usage_id, unit, kind, amount, at, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            id,
            member,
            usage,
            unit.as_str(),
            kind.as_str(),
            amount,
            at,
            hash.as_slice()
        ])?;
    }
    Ok(())
}

/// The usage's totals so far: taken from lots, and on the overage account.
/// History rows of a usage (on its member's lots and the pool lots it drew
/// from) are found by `history_by_usage`.
pub(super) fn totals(conn: &Connection, usage: i64, member: Option<&str>) -> Result<(i64, i64)> {
    let covered: i64 = match member {
        Some(_) => conn
            .prepare_cached(
                "SELECT COALESCE(-SUM(delta), 0) FROM history
                 WHERE usage_id = ?1 AND kind IN ('debit', 'hold', 'settle', 'void')",
            )?
            .query_row([usage], |r| r.get(0))?,
        None => 0,
    };
    let overage: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(amount), 0) FROM overage WHERE usage_id = ?1 AND kind <> 'refund'",
        )?
        .query_row([usage], |r| r.get(0))?;
    Ok((covered, overage))
}

/// A usage's charge as it stands, with what the member can spend now on
/// the same kind of usage: own credit plus what their team's pool allows
/// them (months in `tz`), as a debit's `balance_after` counts it.
pub(super) fn charge_of(
    conn: &Connection,
    tz: Tz,
    usage: i64,
    member: Option<&str>,
    payable: &Payable,
    at: Ts,
    replayed: bool,
) -> Result<Charge> {
    let (covered, overage) = totals(conn, usage, member)?;
    let balance_after = match member {
        Some(m) => paying(conn, tz, m, payable, at)?.available()?,
        None => 0,
    };
    Ok(Charge {
        usage_id: usage,
        covered,
        overage,
        pooled: match member {
            Some(m) => pooled_of(conn, usage, m)?,
            None => 0,
        },
        balance_after,
        replayed,
    })
}

/// What `usage` of `member` took from its team's pool, net of what went
/// back: its history on lots not the member's (every such row is a pool
/// draw, as `check-ledger` checks), found by `history_by_usage`.
pub(super) fn pooled_of(conn: &Connection, usage: i64, member: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE(-SUM(h.delta), 0) FROM history h JOIN lots l ON l.id = h.lot_id
             WHERE h.usage_id = ?1 AND l.member_id <> ?2
               AND h.kind IN ('debit', 'hold', 'settle', 'void')",
        )?
        .query_row(params![usage, member], |r| r.get(0))?)
}
