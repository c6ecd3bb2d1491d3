//! Whether the pool draws agree with the history they stand for
//! (`tallyd check-ledger`): for each usage and each lot of someone else's
//! it moved (a lot of the pool), what its `pool_draws` rows say it took,
//! net of returns, equals what its history rows on that lot took, net of
//! returns, plus what a refund granted anew for that lot when it had died;
//! and each draw is counted for the usage's member, team and month. The
//! sums are read in one pass (SQL) and judged by a pure rule.
//!
//! Pool draws are not hash-chained: the money they count is in the chained
//! history rows, and this check ties every draw to those rows, so a draw
//! edited, added or deleted by hand (to lift a member's monthly limit, say)
//! no longer agrees.

use crate::ledger::Result;
use rusqlite::Connection;

/// One usage's movements on one lot of another member, both ways.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolLotTotals {
    pub usage: i64,
    pub key: String,
    pub lot: i64,
    /// Net of its `pool_draws` rows (taken positive, given back negative).
    pub drawn: i64,
    /// Net taken by its history rows on the lot, less what a refund
    /// granted anew in the lot's place.
    pub taken: i64,
    /// Draw rows counted for another member, team or month than the usage's.
    pub misfiled: i64,
}

/// What is wrong with one usage's draws on one lot, if anything.
pub fn pool_disagreement(t: &PoolLotTotals) -> Option<String> {
    if t.misfiled != 0 {
        return Some(format!(
            "{} pool draws on lot {} are counted for another member, team or month than the usage's",
            t.misfiled, t.lot
        ));
    }
    (t.drawn != t.taken).then(|| {
        format!(
            "its pool draws on lot {} sum to {} but its history on that lot takes {}",
            t.lot, t.drawn, t.taken
        )
    })
}

/// Every usage and lot of someone else's it moved, or drew on, in order.
pub fn pool_totals(conn: &Connection) -> Result<Vec<PoolLotTotals>> {
    let mut stmt = conn.prepare(
        "WITH moved AS (
             SELECT h.usage_id AS usage_id, h.lot_id AS lot_id, -SUM(h.delta) AS taken
             FROM history h JOIN usages u ON u.id = h.usage_id JOIN lots l ON l.id = h.lot_id
             WHERE h.usage_id IS NOT NULL AND l.member_id <> u.member_id
               AND h.kind IN ('debit', 'hold', 'settle', 'void', 'refund')
             GROUP BY h.usage_id, h.lot_id),
         drawn AS (
             SELECT d.usage_id AS usage_id, d.lot_id AS lot_id, SUM(d.amount) AS drawn,
                    SUM(tu.usage_id IS NULL OR d.member_id IS NOT u.member_id
                        OR d.team_id IS NOT tu.team_id OR d.month IS NOT tu.month) AS misfiled
             FROM pool_draws d JOIN usages u ON u.id = d.usage_id
             LEFT JOIN team_usages tu ON tu.usage_id = d.usage_id
             GROUP BY d.usage_id, d.lot_id),
         pairs AS (SELECT usage_id, lot_id FROM moved UNION SELECT usage_id, lot_id FROM drawn)
         SELECT p.usage_id, u.key, p.lot_id, COALESCE(d.drawn, 0),
                COALESCE(m.taken, 0) - COALESCE(
                    (SELECT granted FROM lots r
                     WHERE r.source_key = 'refund:' || p.usage_id || ':lot:' || p.lot_id), 0),
                COALESCE(d.misfiled, 0)
         FROM pairs p JOIN usages u ON u.id = p.usage_id
         LEFT JOIN moved m ON m.usage_id = p.usage_id AND m.lot_id = p.lot_id
         LEFT JOIN drawn d ON d.usage_id = p.usage_id AND d.lot_id = p.lot_id
         ORDER BY p.usage_id, p.lot_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(PoolLotTotals {
            usage: r.get(0)?,
            key: r.get(1)?,
            lot: r.get(2)?,
            drawn: r.get(3)?,
            taken: r.get(4)?,
            misfiled: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lot(drawn: i64, taken: i64) -> PoolLotTotals {
        PoolLotTotals {
            usage: 7,
            key: "k".into(),
            lot: 3,
            drawn,
            taken,
            misfiled: 0,
        }
    }

    #[test]
    fn draws_agree_with_the_history_they_stand_for_and_nothing_else() {
        assert_eq!(pool_disagreement(&lot(120, 120)), None);
        assert_eq!(pool_disagreement(&lot(0, 0)), None, "all given back");
        let why = pool_disagreement(&lot(20, 120)).expect("a draw lowered by hand");
        assert!(
            why.contains("lot 3 sum to 20") && why.contains("takes 120"),
            "{why}"
        );
        assert!(
            pool_disagreement(&lot(120, 0)).is_some(),
            "a draw with no history"
        );
        let misfiled = PoolLotTotals {
            misfiled: 1,
            ..lot(120, 120)
        };
        assert!(pool_disagreement(&misfiled)
            .expect("moved to another month")
            .contains("another member, team or month"));
    }
}
