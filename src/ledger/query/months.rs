//! What a monthly report sums, per group of usages: from the roll-up
//! (`usage_months`, kept by triggers in the same transaction as each
//! usage, settle, refund, team usage and overage row; see migration 12)
//! for whole UTC months, and from the usages themselves only for the hours
//! between the site's month and the nearest UTC month boundaries. A report
//! then reads a few thousand roll-up rows however long the history is.

use crate::ledger::{add, sub, Result, Ts};
use chrono::{Datelike, Months, TimeZone, Utc};
use rusqlite::{params, Connection, Row};
use std::collections::BTreeMap;

/// Whose usage and of what: absent parts are `""`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Group {
    pub member: String,
    pub origin: String,
    pub printer: String,
    pub resource: String,
    pub team: String,
    pub credit_kind: String,
}

/// A group's sums over a period. Usage counts, impressions, charges and
/// refunds go by the usage's time; overage by the overage row's time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    pub usages: i64,
    pub impressions: i64,
    /// What the usages finally cost: a debit's amount, a hold's settled
    /// amount (0 while open or voided), 0 once refunded.
    pub charged: i64,
    pub refunds: i64,
    pub overage_cents: i64,
    pub overage_minutes: i64,
}

impl Sums {
    fn combine(self, o: Sums, op: fn(i64, i64) -> Result<i64>) -> Result<Sums> {
        Ok(Sums {
            usages: op(self.usages, o.usages)?,
            impressions: op(self.impressions, o.impressions)?,
            charged: op(self.charged, o.charged)?,
            refunds: op(self.refunds, o.refunds)?,
            overage_cents: op(self.overage_cents, o.overage_cents)?,
            overage_minutes: op(self.overage_minutes, o.overage_minutes)?,
        })
    }
}

pub type Totals = BTreeMap<Group, Sums>;

/// `into` plus (or minus) `other`, group by group; groups left all zero
/// are dropped.
fn merge(into: &mut Totals, other: Totals, minus: bool) -> Result<()> {
    for (group, sums) in other {
        let was = into.remove(&group).unwrap_or_default();
        let now = was.combine(sums, if minus { sub } else { add })?;
        if now != Sums::default() {
            into.insert(group, now);
        }
    }
    Ok(())
}

/// The start of the UTC month holding `at`.
pub fn month_floor(at: Ts) -> Ts {
    let t = Utc.timestamp_opt(at, 0).single().unwrap_or_default();
    Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .single()
        .map_or(at, |m| m.timestamp())
}

/// The start of the UTC month after the one starting at `month`.
pub fn next_month(month: Ts) -> Ts {
    Utc.timestamp_opt(month, 0)
        .single()
        .and_then(|m| m.checked_add_months(Months::new(1)))
        .map_or(Ts::MAX, |m| m.timestamp())
}

/// The UTC month boundary nearest `at`.
fn nearest_boundary(at: Ts) -> Ts {
    let (floor, ceil) = (month_floor(at), next_month(month_floor(at)));
    if at - floor <= ceil.saturating_sub(at) {
        floor
    } else {
        ceil
    }
}

/// Every group's sums over `[start, end)`.
pub fn totals(conn: &Connection, start: Ts, end: Ts) -> Result<Totals> {
    let (a, b) = (nearest_boundary(start), nearest_boundary(end));
    if a >= b {
        return scanned(conn, start, end);
    }
    let mut out = rolled_up(conn, a, b)?;
    // The edges: added where the range reaches past the UTC months,
    // taken off where the UTC months reach past the range.
    merge(
        &mut out,
        scanned(conn, start.min(a), start.max(a))?,
        a < start,
    )?;
    merge(&mut out, scanned(conn, end.min(b), end.max(b))?, b > end)?;
    Ok(out)
}

fn group_and_sums(r: &Row<'_>) -> rusqlite::Result<(Group, Sums)> {
    Ok((
        Group {
            member: r.get(0)?,
            origin: r.get(1)?,
            printer: r.get(2)?,
            resource: r.get(3)?,
            team: r.get(4)?,
            credit_kind: r.get(5)?,
        },
        Sums {
            usages: r.get(6)?,
            impressions: r.get(7)?,
            charged: r.get(8)?,
            refunds: r.get(9)?,
            overage_cents: r.get(10)?,
            overage_minutes: r.get(11)?,
        },
    ))
}

fn collect(conn: &Connection, sql: &str, from: Ts, to: Ts) -> Result<Totals> {
    let mut out = Totals::new();
    if from >= to {
        return Ok(out);
    }
    let mut stmt = conn.prepare_cached(sql)?;
    // Grouped in SQL, so each group comes once; a roll-up row left all
    // zero (a usage moved to its team's row) is no group.
    for row in stmt.query_map(params![from, to], group_and_sums)? {
        let (group, sums) = row?;
        if sums != Sums::default() {
            out.insert(group, sums);
        }
    }
    Ok(out)
}

/// The roll-up's sums for the UTC months from `from` to `to` (month starts).
pub fn rolled_up(conn: &Connection, from: Ts, to: Ts) -> Result<Totals> {
    collect(
        conn,
        "SELECT member_id, origin, printer, resource, team_id, credit_kind, SUM(usages),
                SUM(impressions), SUM(charged), SUM(refunds), SUM(overage_cents),
                SUM(overage_minutes)
         FROM usage_months WHERE month >= ?1 AND month < ?2
         GROUP BY member_id, origin, printer, resource, team_id, credit_kind",
        from,
        to,
    )
}

/// The same sums read from the usages and overage rows of `[from, to)`.
pub fn scanned(conn: &Connection, from: Ts, to: Ts) -> Result<Totals> {
    let mut out = collect(
        conn,
        "SELECT COALESCE(u.member_id, ''), u.origin, COALESCE(u.printer, ''),
                COALESCE(u.resource, ''), COALESCE(tu.team_id, ''), u.credit_kind, COUNT(*),
                SUM(CASE WHEN r.usage_id IS NOT NULL THEN 0 ELSE
                    CAST(COALESCE(CASE WHEN json_valid(COALESCE(hr.detail, u.detail)) THEN json_extract(COALESCE(hr.detail, u.detail), '$.impressions') END, 0) AS INTEGER) END),
                SUM(CASE WHEN r.usage_id IS NOT NULL THEN 0
                         WHEN u.is_hold = 1 THEN COALESCE(hr.actual, 0) ELSE u.amount END),
                SUM(r.usage_id IS NOT NULL), 0, 0
         FROM usages u
         LEFT JOIN team_usages tu ON tu.usage_id = u.id
         LEFT JOIN refunds r ON r.usage_id = u.id
         LEFT JOIN hold_resolutions hr ON hr.usage_id = u.id AND hr.outcome = 'settled'
         WHERE u.at >= ?1 AND u.at < ?2
         GROUP BY 1, 2, 3, 4, 5, 6",
        from,
        to,
    )?;
    let overage = collect(
        conn,
        "SELECT o.member_id, u.origin, COALESCE(u.printer, ''), COALESCE(u.resource, ''),
                COALESCE(tu.team_id, ''), u.credit_kind, 0, 0, 0, 0,
                SUM(CASE WHEN o.unit = 'cents' THEN o.amount ELSE 0 END),
                SUM(CASE WHEN o.unit = 'minutes' THEN o.amount ELSE 0 END)
         FROM overage o JOIN usages u ON u.id = o.usage_id
         LEFT JOIN team_usages tu ON tu.usage_id = u.id
         WHERE o.at >= ?1 AND o.at < ?2
         GROUP BY 1, 2, 3, 4, 5, 6",
        from,
        to,
    )?;
    merge(&mut out, overage, false)?;
    Ok(out)
}

/// The first UTC month whose roll-up disagrees with its usages and overage
/// rows, with the first group that differs (for `tallyd check-ledger`), or
/// how many months agree.
pub fn first_disagreement(conn: &Connection) -> Result<std::result::Result<String, String>> {
    let (first, last): (Option<Ts>, Option<Ts>) = conn.query_row(
        "SELECT MIN(m), MAX(m) FROM (SELECT MIN(month) AS m FROM usage_months
            UNION ALL SELECT MAX(month) FROM usage_months
            UNION ALL SELECT MIN(at) FROM usages UNION ALL SELECT MAX(at) FROM usages
            UNION ALL SELECT MIN(at) FROM overage UNION ALL SELECT MAX(at) FROM overage)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(Ok("no usage".into()));
    };
    let (mut month, mut checked) = (month_floor(first), 0);
    while month <= last {
        let next = next_month(month);
        let (rolled, scanned) = (rolled_up(conn, month, next)?, scanned(conn, month, next)?);
        if rolled != scanned {
            let differs = rolled
                .iter()
                .find(|(g, s)| scanned.get(*g) != Some(*s))
                .map(|(g, s)| (g.clone(), Some(*s), scanned.get(g).copied()))
                .or_else(|| {
                    scanned
                        .iter()
                        .find(|(g, _)| !rolled.contains_key(*g))
                        .map(|(g, s)| (g.clone(), None, Some(*s)))
                });
            let month_name = Utc
                .timestamp_opt(month, 0)
                .single()
                .map_or(month.to_string(), |m| m.format("%Y-%m").to_string());
            return Ok(Err(format!(
                "month {month_name} (UTC): {differs:?} (group, roll-up, usages)"
            )));
        }
        checked += 1;
        month = next;
    }
    Ok(Ok(format!("{checked} months agree")))
}
