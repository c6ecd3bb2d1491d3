//! Teams for the manager: the pool and each member's own credit and limit
//! left this month (`balance --team`), every draw on the pool
//! (`statement --team`), and what the pool makes available to one member
//! (under `balance MEMBER`).

use super::balance::{balances_now, Balance};
use crate::ledger::teams::{terms_of, ALL};
use crate::ledger::usage::pool::drawn;
use crate::ledger::usage::rules::pool_allowance;
use crate::ledger::{LedgerError, Result, Ts, PRINTING};
use crate::money::Unit;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::collections::BTreeMap;

/// Credit by credit id (`printing` in cents, time credits in minutes).
pub type Credits = BTreeMap<String, i64>;

/// What a team's pool makes available to one member now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolAvailable {
    pub team: String,
    /// Per credit: the pool's lots this member may draw on, up to what
    /// their monthly limit leaves.
    pub credits: Credits,
    /// The monthly limit left, when the team sets one.
    pub limit_left_cents: Option<i64>,
    pub limit_left_minutes: Option<i64>,
}

/// The spendable pool lots of `team` per credit, as `drawer` would see them
/// (the payer's shared lots unless `drawer` is the payer; with `combine`,
/// the other members' plan lots). `drawer` empty: the whole pool.
fn pool_credits(
    conn: &Connection,
    team: &str,
    payer: &str,
    combine: bool,
    drawer: &str,
    now: Ts,
) -> Result<Credits> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT credit, SUM(remaining) FROM lots
         WHERE remaining > 0 AND valid_from <= ?2 AND (expires_at IS NULL OR expires_at > ?2)
           AND voided_at IS NULL
           AND ((member_id = ?3 AND member_id <> ?4)
                OR (?5 AND source = 'plan' AND member_id IN
                    (SELECT member_id FROM team_members WHERE team_id = ?1
                       AND member_id <> ?3 AND member_id <> ?4)))
           AND (EXISTS (SELECT 1 FROM team_shares WHERE team_id = ?1 AND credit = '{ALL}')
                OR credit IN (SELECT credit FROM team_shares WHERE team_id = ?1))
         GROUP BY credit ORDER BY credit"
    ))?;
    let rows = stmt.query_map(params![team, now, payer, drawer, combine], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn unit_of(credit: &str) -> Unit {
    if credit == PRINTING {
        Unit::Cents
    } else {
        Unit::Minutes
    }
}

/// What `member`'s team pool makes available to them at `now` (months
/// start at `month`), or `None` outside a team.
pub fn pool_available(
    conn: &Connection,
    member: &str,
    month: Ts,
    now: Ts,
) -> Result<Option<PoolAvailable>> {
    let Some(t) = terms_of(conn, member)? else {
        return Ok(None);
    };
    let left = |limit: Option<i64>, unit| -> Result<Option<i64>> {
        match limit {
            Some(_) => Ok(pool_allowance(limit, drawn(conn, member, unit, month)?)),
            None => Ok(None),
        }
    };
    let cents = left(t.limit_cents, Unit::Cents)?;
    let minutes = left(t.limit_minutes, Unit::Minutes)?;
    let mut credits = pool_credits(conn, &t.team, &t.payer, t.combine, member, now)?;
    for (credit, amount) in credits.iter_mut() {
        let cap = match unit_of(credit) {
            Unit::Cents => cents,
            Unit::Minutes => minutes,
        };
        *amount = cap.map_or(*amount, |c| c.min(*amount));
    }
    Ok(Some(PoolAvailable {
        team: t.team,
        credits,
        limit_left_cents: cents,
        limit_left_minutes: minutes,
    }))
}

/// One member of a team, for `balance --team`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamMember {
    pub member: String,
    pub payer: bool,
    /// Their own credit (their balance, without the pool).
    pub own: Balance,
    /// What they drew from the pool this month, net.
    pub drawn_cents: i64,
    pub drawn_minutes: i64,
    pub limit_left_cents: Option<i64>,
    pub limit_left_minutes: Option<i64>,
}

/// A team's pool and members now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamBalance {
    pub team: String,
    pub name: String,
    pub payer: String,
    pub billing: String,
    pub combine: bool,
    pub member_limit_cents: Option<i64>,
    pub member_limit_minutes: Option<i64>,
    /// Everything the pool holds now, per credit.
    pub pool: Credits,
    pub members: Vec<TeamMember>,
}

/// `team`'s pool and members at `now` (this month starts at `month`).
pub fn team_balance(conn: &Connection, team: &str, month: Ts, now: Ts) -> Result<TeamBalance> {
    #[allow(clippy::type_complexity)]
    let row: Option<(String, String, bool, Option<i64>, Option<i64>, String)> = conn
        .prepare_cached(
            "SELECT name, payer_id, combine, member_limit_cents, member_limit_minutes, billing
             FROM teams WHERE id = ?1 AND closed_at IS NULL",
        )?
        .query_row([team], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .optional()?;
    let Some((name, payer, combine, limit_cents, limit_minutes, billing)) = row else {
        return Err(LedgerError::UnknownTeam(team.to_string()));
    };
    let ids: Vec<String> = conn
        .prepare_cached("SELECT member_id FROM team_members WHERE team_id = ?1 ORDER BY member_id")?
        .query_map([team], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut members = Vec::new();
    for id in ids {
        let own = balances_now(conn, Some(&id), now)?.remove(0);
        let drawn_cents = drawn(conn, &id, Unit::Cents, month)?;
        let drawn_minutes = drawn(conn, &id, Unit::Minutes, month)?;
        members.push(TeamMember {
            payer: id == payer,
            member: id,
            own,
            drawn_cents,
            drawn_minutes,
            limit_left_cents: pool_allowance(limit_cents, drawn_cents),
            limit_left_minutes: pool_allowance(limit_minutes, drawn_minutes),
        });
    }
    Ok(TeamBalance {
        pool: pool_credits(conn, team, &payer, combine, "", now)?,
        team: team.to_string(),
        name,
        payer,
        billing,
        combine,
        member_limit_cents: limit_cents,
        member_limit_minutes: limit_minutes,
        members,
    })
}

/// One draw on (or return to) a team's pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolLine {
    pub at: Ts,
    /// The member who drew.
    pub member: String,
    /// debit, hold, settle, void, refund.
    pub kind: String,
    pub credit: String,
    /// The lot's owner (the payer, or a member whose plan lot is combined).
    pub owner: String,
    pub lot: i64,
    /// Taken from the pool (positive) or given back (negative).
    pub amount: i64,
    pub unit: String,
    pub usage_key: String,
}

/// Hands `emit` each draw on `team`'s pool in `[from, to)`, in the order
/// they were made, as it is read (a team's years of draws are never all
/// held).
pub fn team_statement<E: From<LedgerError>>(
    conn: &Connection,
    team: &str,
    from: Ts,
    to: Ts,
    mut emit: impl FnMut(PoolLine) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let known: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM teams WHERE id = ?1")
        .and_then(|mut s| s.query_row([team], |r| r.get(0)).optional())
        .map_err(LedgerError::from)?;
    if known.is_none() {
        return Err(LedgerError::UnknownTeam(team.to_string()).into());
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT d.at, d.member_id, d.kind, l.credit, l.member_id, d.lot_id, d.amount, d.unit, u.key
             FROM pool_draws d JOIN lots l ON l.id = d.lot_id JOIN usages u ON u.id = d.usage_id
             WHERE d.team_id = ?1 AND d.at >= ?2 AND d.at < ?3 ORDER BY d.id",
        )
        .map_err(LedgerError::from)?;
    let mut rows = stmt
        .query(params![team, from, to])
        .map_err(LedgerError::from)?;
    while let Some(r) = rows.next().map_err(LedgerError::from)? {
        emit(pool_line(r).map_err(LedgerError::from)?)?;
    }
    Ok(())
}

fn pool_line(r: &rusqlite::Row<'_>) -> rusqlite::Result<PoolLine> {
    Ok(PoolLine {
        at: r.get(0)?,
        member: r.get(1)?,
        kind: r.get(2)?,
        credit: r.get(3)?,
        owner: r.get(4)?,
        lot: r.get(5)?,
        amount: r.get(6)?,
        unit: r.get(7)?,
        usage_key: r.get(8)?,
    })
}
