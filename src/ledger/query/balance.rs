//! Balances: now, from the same spendable lots a charge takes from; or at
//! any past instant, rebuilt from history alone.

use crate::ledger::usage;
use crate::ledger::{add, LedgerError, Result, Ts, PRINTING};
use rusqlite::{params, Connection};
use serde::Serialize;
use std::collections::BTreeMap;

/// One member's balance at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Balance {
    pub member: String,
    pub name: String,
    pub closed: bool,
    /// Printing credit available, in cents.
    pub printing_cents: i64,
    /// Time credit available per time credit id, in minutes.
    pub time_minutes: BTreeMap<String, i64>,
    /// Overage owed (run up so far), in cents and minutes.
    pub overage_cents: i64,
    pub overage_minutes: i64,
    /// Per credit, the next amount to expire and when (balances now only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub next_expiry: Vec<NextExpiry>,
    /// What the member's team pool makes available to them on top (balances
    /// now only; `balance` fills it in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<super::team::PoolAvailable>,
}

/// The spendable credit of one kind that expires first, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NextExpiry {
    pub credit: String,
    /// Cents or minutes that expire at `at` unless spent first.
    pub amount: i64,
    pub at: Ts,
}

/// Member ids and names, optionally one member (error if unknown).
pub(super) fn members(
    conn: &Connection,
    member: Option<&str>,
) -> Result<Vec<(String, String, bool)>> {
    let map = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?));
    let rows = match member {
        // Two statements, so looking up one member uses the primary key.
        Some(m) => conn
            .prepare_cached("SELECT id, name, closed_at IS NOT NULL FROM members WHERE id = ?1")?
            .query_map([m], map)?
            .collect::<rusqlite::Result<Vec<_>>>()?,
        None => conn
            .prepare_cached("SELECT id, name, closed_at IS NOT NULL FROM members ORDER BY id")?
            .query_map([], map)?
            .collect::<rusqlite::Result<Vec<_>>>()?,
    };
    if let (Some(m), true) = (member, rows.is_empty()) {
        return Err(super::LedgerError::UnknownMember(m.to_string()));
    }
    Ok(rows)
}

/// Balances now: what each member can spend at `now`, from the same lots
/// and the same rule ([`usage::SPENDABLE`]) a charge takes them from, and the
/// overage owed (its running total, `overage_owed`). Every member's in three
/// queries, not three per member. [`balances`] rebuilds a past instant from
/// history.
pub fn balances_now(conn: &Connection, member: Option<&str>, now: Ts) -> Result<Vec<Balance>> {
    let who = members(conn, member)?;
    let mut lots = live_lots(conn, member, now)?;
    let mut owed = overage_owed(conn, member)?;
    let mut out = Vec::with_capacity(who.len());
    for (id, name, closed) in who {
        let lots = lots.remove(&id).unwrap_or_default();
        let credit = lots.iter().map(|l| Ok((l.credit.clone(), l.remaining)));
        let owes = owed.remove(&id).unwrap_or_default().into_iter().map(Ok);
        let mut b = balance_of(id, name, closed, credit, owes)?;
        b.next_expiry = next_expiry(&lots)?;
        out.push(b);
    }
    Ok(out)
}

/// A lot that can be spent now.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LiveLot {
    credit: String,
    remaining: i64,
    expires_at: Option<Ts>,
}

/// The lots each member (or `member`) can spend at `now`, by member.
fn live_lots(
    conn: &Connection,
    member: Option<&str>,
    now: Ts,
) -> Result<BTreeMap<String, Vec<LiveLot>>> {
    // Every member's: ids from "" on, so the one rule reads them all.
    let (sql, from) = match member {
        Some(m) => (usage::SPENDABLE.to_string(), m),
        None => (
            usage::SPENDABLE.replacen("member_id = ?1", "member_id >= ?1", 1),
            "",
        ),
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT member_id, credit, remaining, expires_at FROM lots WHERE {sql}"
    ))?;
    let mut out: BTreeMap<String, Vec<LiveLot>> = BTreeMap::new();
    let mut rows = stmt.query(params![from, now])?;
    while let Some(r) = rows.next()? {
        out.entry(r.get(0)?).or_default().push(LiveLot {
            credit: r.get(1)?,
            remaining: r.get(2)?,
            expires_at: r.get(3)?,
        });
    }
    Ok(out)
}

/// What each member (or `member`) owes on the overage account, per unit.
fn overage_owed(
    conn: &Connection,
    member: Option<&str>,
) -> Result<BTreeMap<String, Vec<(String, i64)>>> {
    let mut stmt = conn.prepare_cached(match member {
        Some(_) => "SELECT member_id, unit, amount FROM overage_owed WHERE member_id = ?1",
        None => "SELECT member_id, unit, amount FROM overage_owed WHERE member_id >= ?1",
    })?;
    let mut out: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    let mut rows = stmt.query([member.unwrap_or("")])?;
    while let Some(r) = rows.next()? {
        out.entry(r.get(0)?)
            .or_default()
            .push((r.get(1)?, r.get(2)?));
    }
    Ok(out)
}

/// Per credit, what of the spendable `lots` expires first: the earliest
/// expiry and the sum of the lots that expire then.
fn next_expiry(lots: &[LiveLot]) -> Result<Vec<NextExpiry>> {
    let mut first: BTreeMap<&str, (Ts, i64)> = BTreeMap::new();
    for l in lots {
        let Some(at) = l.expires_at else { continue };
        let slot = first.entry(&l.credit).or_insert((at, 0));
        if at < slot.0 {
            *slot = (at, 0);
        }
        if at == slot.0 {
            slot.1 = add(slot.1, l.remaining)?;
        }
    }
    Ok(first
        .into_iter()
        .map(|(credit, (at, amount))| NextExpiry {
            credit: credit.to_string(),
            amount,
            at,
        })
        .collect())
}

/// A balance from (credit, amount) and (unit, overage) rows.
fn balance_of(
    member: String,
    name: String,
    closed: bool,
    credit: impl Iterator<Item = rusqlite::Result<(String, i64)>>,
    owed: impl Iterator<Item = rusqlite::Result<(String, i64)>>,
) -> Result<Balance> {
    let mut b = Balance {
        member,
        name,
        closed,
        printing_cents: 0,
        time_minutes: BTreeMap::new(),
        overage_cents: 0,
        overage_minutes: 0,
        next_expiry: Vec::new(),
        pool: None,
    };
    for row in credit {
        let (credit, sum) = row?;
        let slot = if credit == PRINTING {
            &mut b.printing_cents
        } else {
            b.time_minutes.entry(credit).or_default()
        };
        *slot = slot.checked_add(sum).ok_or(LedgerError::OverflowInLedger)?;
    }
    for row in owed {
        match row? {
            (unit, sum) if unit == "cents" => b.overage_cents = sum,
            (_, sum) => b.overage_minutes = sum,
        }
    }
    Ok(b)
}

/// Balances at `at`, rebuilt from history: for each lot valid at that instant,
/// the sum of its history rows up to it.
pub fn balances(conn: &Connection, member: Option<&str>, at: Ts) -> Result<Vec<Balance>> {
    let mut out = Vec::new();
    let mut lots = conn.prepare_cached(
        "SELECT l.credit, COALESCE(SUM(h.delta), 0)
         FROM lots l JOIN history h ON h.lot_id = l.id AND h.at <= ?2
         WHERE l.member_id = ?1 AND l.valid_from <= ?2
           AND (l.expires_at IS NULL OR l.expires_at > ?2)
           AND (l.voided_at IS NULL OR l.voided_at > ?2)
         GROUP BY l.credit",
    )?;
    let mut overage = conn.prepare_cached(
        "SELECT unit, COALESCE(SUM(amount), 0) FROM overage WHERE member_id = ?1 AND at <= ?2 GROUP BY unit",
    )?;
    for (id, name, closed) in members(conn, member)? {
        let credit = lots.query_map(params![id, at], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let owed = overage.query_map(params![id, at], |r| Ok((r.get(0)?, r.get(1)?)))?;
        out.push(balance_of(id, name, closed, credit, owed)?);
    }
    Ok(out)
}
