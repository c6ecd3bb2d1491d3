//! A team member's pool: the lots beyond their own that can pay for a usage
//! (the payer's lots of a shared credit, then with `combine` the other
//! members' plan lots of it), what their monthly limit still allows, and the
//! rows that record each draw and return, so a settle, void or refund finds
//! the exact lots again and the limit counts every draw.

use super::credit::candidates;
use super::Payable;
use crate::clock;
use crate::ledger::allocate::{allocate_pooled, Allocation, Candidate, SourceKind};
use crate::ledger::history::HistoryKind;
use crate::ledger::teams::{terms_of, Terms, ALL};
use crate::ledger::usage::rules::{billed_to, pool_allowance};
use crate::ledger::{sum, Result, Ts};
use crate::money::Unit;
use chrono_tz::Tz;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;
use std::sync::LazyLock;

/// A usage made by a member of a team: the team's terms and the calendar
/// month (its start) whose pool limit it counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamUse {
    pub terms: Terms,
    pub month: Ts,
}

/// Everything a member can spend on one usage: their own lots, the pool's
/// tiers, and what their limit lets them take from the pool.
#[derive(Debug, Clone, Default)]
pub struct Paying {
    pub own: Vec<Candidate>,
    pub pool: Vec<Vec<Candidate>>,
    pub allowance: Option<i64>,
    pub team: Option<TeamUse>,
}

impl Paying {
    /// What the pool can give this member now: its lots, up to the limit.
    pub fn pool_allows(&self) -> Result<i64> {
        let lots = sum(self.pool.iter().flatten().map(|c| c.remaining))?;
        Ok(self.allowance.map_or(lots, |a| lots.min(a)))
    }

    /// Own credit plus what the pool allows: what the next charge can use.
    pub fn available(&self) -> Result<i64> {
        crate::ledger::add(
            sum(self.own.iter().map(|c| c.remaining))?,
            self.pool_allows()?,
        )
    }

    pub fn allocate(self, amount: i64) -> Allocation {
        allocate_pooled(self.own, self.pool, self.allowance, amount)
    }

    /// Who owes overage: the payer under merged billing.
    pub fn billed_to<'a>(&'a self, member: &'a str) -> &'a str {
        match &self.team {
            Some(t) => billed_to(member, &t.terms.payer, t.terms.merged),
            None => member,
        }
    }
}

/// What `member` can spend on `payable` at `at`, with their team's pool as
/// the ledger holds it now (months in `tz`).
pub fn paying(
    conn: &Connection,
    tz: Tz,
    member: &str,
    payable: &Payable,
    at: Ts,
) -> Result<Paying> {
    let own = candidates(conn, member, payable, at)?;
    let month = clock::month_start(tz, at);
    let Some((terms, drawn)) = terms_and_drawn(conn, member, payable.unit(), month)? else {
        return Ok(Paying {
            own,
            ..Paying::default()
        });
    };
    let team = TeamUse { terms, month };
    with_pool(conn, own, member, payable, at, team, drawn)
}

/// The limit on what a member of a team with `terms` takes in `unit`.
fn limit_of(terms: &Terms, unit: Unit) -> Option<i64> {
    match unit {
        Unit::Cents => terms.limit_cents,
        Unit::Minutes => terms.limit_minutes,
    }
}

/// `member`'s team terms and what they drew from its pool in `unit` in the
/// month starting at `month` (0 when no limit counts it): one statement,
/// as a debit reads it. None at a chain site whose lots the centre issues
/// (`[central] issue = "central"`): the centre keeps no team pools, so a
/// pool drawn here from the payer's escrow would be counted there as the
/// member's own; members spend their own escrow instead.
fn terms_and_drawn(
    conn: &Connection,
    member: &str,
    unit: Unit,
    month: Ts,
) -> Result<Option<(Terms, i64)>> {
    Ok(conn
        .prepare_cached(
            "SELECT t.id, t.payer_id, t.combine, t.member_limit_cents, t.member_limit_minutes, t.billing,
                    CASE WHEN (CASE ?2 WHEN 'cents' THEN t.member_limit_cents
                                      ELSE t.member_limit_minutes END) IS NULL THEN 0
                         ELSE (SELECT COALESCE(SUM(amount), 0) FROM pool_draws
                               WHERE member_id = ?1 AND unit = ?2 AND month = ?3) END
             FROM team_members m JOIN teams t ON t.id = m.team_id
             WHERE m.member_id = ?1 AND t.closed_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM lot_issue WHERE issue = 'central')",
        )?
        .query_row(params![member, unit.as_str(), month], |r| {
            let terms = Terms {
                team: r.get(0)?,
                payer: r.get(1)?,
                combine: r.get(2)?,
                limit_cents: r.get(3)?,
                limit_minutes: r.get(4)?,
                merged: r.get::<_, String>(5)? == "merged",
            };
            Ok((terms, r.get(6)?))
        })
        .optional()?)
}

fn with_pool(
    conn: &Connection,
    own: Vec<Candidate>,
    member: &str,
    payable: &Payable,
    at: Ts,
    team: TeamUse,
    drawn: i64,
) -> Result<Paying> {
    let limit = limit_of(&team.terms, payable.unit());
    let allowance = pool_allowance(limit, drawn);
    let mut pool = vec![tier(conn, member, &team.terms, payable, at, false)?];
    if team.terms.combine {
        pool.push(tier(conn, member, &team.terms, payable, at, true)?);
    }
    Ok(Paying {
        own,
        pool,
        allowance,
        team: Some(team),
    })
}

/// What a hold's settle can spend: the pool of the team it was made in,
/// counted in the hold's month, only while the member is still in it.
pub fn paying_for_usage(
    conn: &Connection,
    usage: i64,
    member: &str,
    payable: &Payable,
    at: Ts,
) -> Result<Paying> {
    let own = candidates(conn, member, payable, at)?;
    let recorded = team_of_usage(conn, usage)?;
    let current = terms_of(conn, member)?;
    match (recorded, current) {
        (Some((team, _, month)), Some(terms)) if terms.team == team => {
            let unit = payable.unit();
            let drawn = match limit_of(&terms, unit) {
                Some(_) => drawn(conn, member, unit, month)?,
                None => 0,
            };
            with_pool(
                conn,
                own,
                member,
                payable,
                at,
                TeamUse { terms, month },
                drawn,
            )
        }
        _ => Ok(Paying {
            own,
            ..Paying::default()
        }),
    }
}

/// The statements of [`tier`]: the payer's lots, the other members' plan
/// lots. Built once, not at every debit.
static TIER_SQL: LazyLock<[String; 2]> = LazyLock::new(|| {
    [
        "member_id = ?1 AND member_id <> ?5",
        "member_id IN (SELECT member_id FROM team_members WHERE team_id = ?4 AND member_id <> ?1 AND member_id <> ?5) AND source = 'plan'",
    ]
    .map(|whose| {
        format!(
            "SELECT id, remaining, expires_at, source, valid_from FROM lots
             WHERE {whose} AND remaining > 0 AND valid_from <= ?2
               AND (expires_at IS NULL OR expires_at > ?2) AND voided_at IS NULL
               AND ((?3 IS NULL AND credit = '{printing}')
                    OR credit IN (SELECT credit_id FROM time_credit_types WHERE resource_type = ?3))
               AND (EXISTS (SELECT 1 FROM team_shares WHERE team_id = ?4 AND credit = '{ALL}')
                    OR credit IN (SELECT credit FROM team_shares WHERE team_id = ?4))",
            printing = crate::ledger::PRINTING,
        )
    })
});

/// One tier of the pool: the payer's lots (`others` false; none when the
/// member is the payer) or the other members' plan lots.
fn tier(
    conn: &Connection,
    member: &str,
    terms: &Terms,
    payable: &Payable,
    at: Ts,
    others: bool,
) -> Result<Vec<Candidate>> {
    let mut stmt = conn.prepare_cached(&TIER_SQL[usize::from(others)])?;
    let rows = stmt.query_map(
        params![terms.payer, at, payable.resource_type(), terms.team, member],
        |r| {
            let source: String = r.get(3)?;
            Ok(Candidate {
                lot: r.get(0)?,
                remaining: r.get(1)?,
                expires_at: r.get(2)?,
                source: SourceKind::parse(&source).unwrap_or(SourceKind::Adjustment),
                valid_from: r.get(4)?,
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// What `member` drew from their pool in `unit` for usages of the month
/// starting at `month`, net of what went back.
pub fn drawn(conn: &Connection, member: &str, unit: Unit, month: Ts) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE(SUM(amount), 0) FROM pool_draws WHERE member_id = ?1 AND unit = ?2 AND month = ?3",
        )?
        .query_row(params![member, unit.as_str(), month], |r| r.get(0))?)
}

/// Records that `usage` was made by `member` in a team.
pub fn record_team_usage(
    conn: &Connection,
    usage: i64,
    member: &str,
    team: &TeamUse,
) -> Result<()> {
    let owes = billed_to(member, &team.terms.payer, team.terms.merged);
    conn.prepare_cached(
        "INSERT INTO team_usages (usage_id, team_id, member_id, billed_to, month) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![usage, team.terms.team, member, owes, team.month])?;
    Ok(())
}

/// The team a usage was made in, who owes its overage, and its month.
pub fn team_of_usage(conn: &Connection, usage: i64) -> Result<Option<(String, String, Ts)>> {
    Ok(conn
        .prepare_cached("SELECT team_id, billed_to, month FROM team_usages WHERE usage_id = ?1")?
        .query_row([usage], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?)
}

/// Who owes `usage`'s overage: as recorded for a team usage, else `member`.
pub fn owes_overage(conn: &Connection, usage: i64, member: &str) -> Result<String> {
    Ok(team_of_usage(conn, usage)?.map_or_else(|| member.to_string(), |(_, owes, _)| owes))
}

/// One draw from (positive) or return to (negative) a lot of the pool.
#[derive(Debug, Clone, Copy)]
pub struct Draw<'a> {
    pub usage: i64,
    pub member: &'a str,
    pub lot: i64,
    pub unit: Unit,
    pub kind: HistoryKind,
    pub amount: i64,
    pub at: Ts,
}

/// Records a draw, counted in its usage's team and month.
pub fn record_draw(conn: &Connection, d: &Draw<'_>) -> Result<()> {
    if d.amount == 0 {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO pool_draws (usage_id, team_id, member_id, lot_id, unit, kind, amount, month, at)
         SELECT ?1, team_id, ?2, ?3, ?4, ?5, ?6, month, ?7 FROM team_usages WHERE usage_id = ?1",
    )?
    .execute(params![
        d.usage,
        d.member,
        d.lot,
        d.unit.as_str(),
        d.kind.as_str(),
        d.amount,
        d.at
    ])?;
    Ok(())
}

/// Records the draws of a usage just made in `team`: its team and month
/// are at hand, not read back.
pub fn record_new_draw(conn: &Connection, d: &Draw<'_>, team: &TeamUse) -> Result<()> {
    if d.amount == 0 {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO pool_draws (usage_id, team_id, member_id, lot_id, unit, kind, amount, month, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        d.usage,
        team.terms.team,
        d.member,
        d.lot,
        d.unit.as_str(),
        d.kind.as_str(),
        d.amount,
        team.month,
        d.at
    ])?;
    Ok(())
}

/// The pool lots `usage` of `member` drew from: the lots not the member's
/// that its history rows moved (every such row is a pool draw, as
/// `check-ledger` checks), found by `history_by_usage` rather than by an
/// index on `pool_draws` that each pool debit would write.
pub fn pool_lots(conn: &Connection, usage: i64, member: &str) -> Result<HashSet<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT h.lot_id FROM history h JOIN lots l ON l.id = h.lot_id
         WHERE h.usage_id = ?1 AND l.member_id <> ?2",
    )?;
    let lots = stmt.query_map(params![usage, member], |r| r.get(0))?;
    Ok(lots.collect::<rusqlite::Result<_>>()?)
}
