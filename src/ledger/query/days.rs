//! What each day's usages finally cost, for the console's daily chart. For
//! the whole quarter hours of a period: its debits summed from the usages'
//! time index alone (it carries kind, hold and amount; migration 17), plus
//! what settles and refunds changed, kept per quarter hour of the usage
//! (`quarter_adjustments`, by triggers in the same transaction as each
//! settle and refund). A period's ragged ends (a day ending now) are read
//! from the usages themselves. No usage row is read for a whole day.

use crate::ledger::{add, Result, Ts};
use rusqlite::{params, Connection, OptionalExtension};

/// The roll-up's bucket: a UTC quarter hour.
const QUARTER: Ts = 900;

/// (printing cents, minutes) a period's usages finally cost.
type Charged = (i64, i64);

/// What the usages of each period in `days` finally cost, as the monthly
/// report counts them: (printing cents, minutes) per period.
pub fn daily_totals(conn: &Connection, days: &[(Ts, Ts)]) -> Result<Vec<Charged>> {
    days.iter()
        .map(|&(start, end)| period(conn, start, end))
        .collect()
}

fn period(conn: &Connection, start: Ts, end: Ts) -> Result<Charged> {
    let (whole_from, whole_to) = (ceil(start), floor(end));
    if whole_from >= whole_to {
        return scanned(conn, start, end);
    }
    let parts = [
        scanned(conn, start, whole_from)?,
        rolled_up(conn, whole_from, whole_to)?,
        scanned(conn, whole_to, end)?,
    ];
    parts
        .into_iter()
        .try_fold((0, 0), |(p, t), (dp, dt)| Ok((add(p, dp)?, add(t, dt)?)))
}

fn floor(t: Ts) -> Ts {
    t.div_euclid(QUARTER) * QUARTER
}

fn ceil(t: Ts) -> Ts {
    floor(t)
        + if t.rem_euclid(QUARTER) == 0 {
            0
        } else {
            QUARTER
        }
}

/// `[from, to)`, on whole quarter hours: its debits from the time index
/// and the adjustments of its quarters.
fn rolled_up(conn: &Connection, from: Ts, to: Ts) -> Result<Charged> {
    let mut debits = conn.prepare_cached(
        "SELECT COALESCE(SUM(CASE WHEN credit_kind = 'printing' AND is_hold = 0 THEN amount ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN credit_kind = 'time' AND is_hold = 0 THEN amount ELSE 0 END), 0)
         FROM usages WHERE at >= ?1 AND at < ?2",
    )?;
    let mut adjusted = conn.prepare_cached(
        "SELECT COALESCE(SUM(CASE WHEN credit_kind = 'printing' THEN amount ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN credit_kind = 'time' THEN amount ELSE 0 END), 0)
         FROM quarter_adjustments WHERE quarter >= ?1 AND quarter < ?2",
    )?;
    let pair = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?));
    let (p, t): Charged = debits.query_row(params![from, to], pair)?;
    let (dp, dt): Charged = adjusted.query_row(params![from / QUARTER, to / QUARTER], pair)?;
    Ok((add(p, dp)?, add(t, dt)?))
}

/// The usages of `[start, end)` themselves.
fn scanned(conn: &Connection, start: Ts, end: Ts) -> Result<Charged> {
    if start >= end {
        return Ok((0, 0));
    }
    let mut stmt = conn.prepare_cached(
        "WITH c AS (
            SELECT u.credit_kind,
                   CASE WHEN r.usage_id IS NOT NULL THEN 0
                        WHEN u.is_hold = 1 THEN COALESCE(hr.actual, 0)
                        ELSE u.amount END AS charged
            FROM usages u
            LEFT JOIN refunds r ON r.usage_id = u.id
            LEFT JOIN hold_resolutions hr ON hr.usage_id = u.id AND hr.outcome = 'settled'
            WHERE u.at >= ?1 AND u.at < ?2)
         SELECT COALESCE(SUM(CASE WHEN c.credit_kind = 'printing' THEN c.charged ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN c.credit_kind = 'time' THEN c.charged ELSE 0 END), 0)
         FROM c",
    )?;
    Ok(stmt.query_row(params![start, end], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// The first quarter hour whose adjustments differ from its usages' settles
/// and refunds, for `check-ledger`; or how many quarter hours agree.
pub fn first_disagreement(conn: &Connection) -> Result<std::result::Result<String, String>> {
    let differs: Option<(Ts, String, i64, i64)> = conn
        .query_row(
            "WITH s AS (
                SELECT u.at / 900 AS quarter, u.credit_kind,
                       SUM(CASE WHEN u.is_hold = 1 AND r.usage_id IS NULL THEN COALESCE(hr.actual, 0)
                                WHEN u.is_hold = 0 AND r.usage_id IS NOT NULL THEN -u.amount
                                ELSE 0 END) AS amount
                FROM usages u
                LEFT JOIN refunds r ON r.usage_id = u.id
                LEFT JOIN hold_resolutions hr ON hr.usage_id = u.id AND hr.outcome = 'settled'
                WHERE u.is_hold = 1 OR r.usage_id IS NOT NULL
                GROUP BY 1, 2)
             SELECT COALESCE(s.quarter, q.quarter), COALESCE(s.credit_kind, q.credit_kind),
                    COALESCE(q.amount, 0), COALESCE(s.amount, 0)
             FROM s FULL JOIN quarter_adjustments q
                 ON q.quarter = s.quarter AND q.credit_kind = s.credit_kind
             WHERE COALESCE(q.amount, 0) <> COALESCE(s.amount, 0) LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    Ok(match differs {
        None => {
            let n: i64 =
                conn.query_row("SELECT COUNT(*) FROM quarter_adjustments", [], |r| r.get(0))?;
            Ok(format!("{n} quarter hours agree"))
        }
        Some((quarter, kind, kept, rows)) => {
            let at = chrono::DateTime::from_timestamp(quarter.saturating_mul(QUARTER), 0)
                .map_or(quarter.to_string(), |t| {
                    t.format("%Y-%m-%d %H:%M UTC").to_string()
                });
            Err(format!(
                "quarter hour from {at}, {kind}: settles and refunds changed its charges by {kept} in the roll-up but by {rows} in its usages"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarter_bounds_round_outward_and_inward() {
        assert_eq!((floor(1800), ceil(1800)), (1800, 1800));
        assert_eq!((floor(1801), ceil(1801)), (1800, 2700));
        assert_eq!((floor(-1), ceil(-1)), (-900, 0));
    }
}
