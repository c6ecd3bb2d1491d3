//! The lots-against-history check every open for writing runs, made
//! incremental: the point it verified up to (the newest history row and the
//! newest lot) is remembered in `sync_state`, and each open checks only the
//! lots with history rows after it, or created after it. Each such lot is
//! checked whole (its remaining and granted against the sums of all its
//! history), so an open reads what was written since, not all of history.
//! `tallyd check-ledger` still checks every lot ([`schema::verify`]).

use super::schema;
use super::sync_state;
use super::{LedgerError, Result};
use rusqlite::{params, Connection, OptionalExtension};

const KEY: &str = "lots_verified";

/// History rows checked after which the new point is written: an open that
/// checked a little does not pay a commit to remember it.
const REMEMBER_AFTER: i64 = 1_000;

/// The verified point: the newest history row id and lot id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Point {
    history: i64,
    lot: i64,
}

fn newest(conn: &Connection) -> Result<Point> {
    Ok(conn
        .prepare_cached(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM history), (SELECT COALESCE(MAX(id), 0) FROM lots)",
        )?
        .query_row([], |r| {
            Ok(Point {
                history: r.get(0)?,
                lot: r.get(1)?,
            })
        })?)
}

fn remembered(conn: &Connection) -> Result<Option<Point>> {
    let text = sync_state::get(conn, KEY)?.unwrap_or_default();
    let mut parts = text.split_whitespace().map(|p| p.parse::<i64>().ok());
    Ok(match (parts.next().flatten(), parts.next().flatten()) {
        (Some(history), Some(lot)) => Some(Point { history, lot }),
        _ => None,
    })
}

/// Checks the lots changed since the remembered point (every lot when none
/// is remembered, or when it lies past the newest rows); names the first
/// that disagrees with its history. Remembers the new point when it moved
/// by [`REMEMBER_AFTER`] history rows or more, or when none was.
pub fn verify_since_remembered(conn: &Connection) -> Result<()> {
    let now = newest(conn)?;
    let from = remembered(conn)?.filter(|p| p.history <= now.history && p.lot <= now.lot);
    match from {
        None => schema::verify(conn)?,
        Some(p) if p == now => return Ok(()),
        Some(p) => verify_changed(conn, p)?,
    }
    let moved = from.map_or(i64::MAX, |p| now.history - p.history);
    if moved >= REMEMBER_AFTER {
        let text = format!("{} {}", now.history, now.lot);
        sync_state::set(conn, KEY, Some(&text))?;
    }
    Ok(())
}

/// The first lot changed since a point that disagrees with its history.
const CHANGED: &str = "SELECT l.id, l.member_id, l.remaining, COALESCE(SUM(h.delta), 0), l.granted,
                    COALESCE(SUM(h.granted_delta), 0)
             FROM lots l LEFT JOIN history h ON h.lot_id = l.id
             WHERE l.id IN (SELECT lot_id FROM history WHERE id > ?1
                            UNION ALL SELECT id FROM lots WHERE id > ?2)
             GROUP BY l.id
             HAVING l.remaining <> COALESCE(SUM(h.delta), 0)
                 OR l.granted <> COALESCE(SUM(h.granted_delta), 0)
             ORDER BY l.id LIMIT 1";

/// The lots with history after `p.history` or ids after `p.lot`, each
/// against all of its history. A union, not `OR`: each lot is found by its
/// id, where `OR` scanned every lot. `UNION ALL`, not `UNION`: for a
/// `UNION` SQLite merged two sorted lists, and sorted the history side by
/// scanning all of `history_by_lot_at` (43 ms at 1,000,000 usages, on every
/// write command's open); the `IN` list drops repeats itself.
fn verify_changed(conn: &Connection, p: Point) -> Result<()> {
    let bad = conn
        .query_row(CHANGED, params![p.history, p.lot], |r| {
            Ok(LedgerError::Inconsistent {
                lot: r.get(0)?,
                member: r.get(1)?,
                remaining: r.get(2)?,
                history_sum: r.get(3)?,
                granted: r.get(4)?,
                granted_sum: r.get(5)?,
            })
        })
        .optional()?;
    bad.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::lots::{self, GrantRequest};
    use crate::ledger::{Ledger, Origin, Payable, Site, SourceKind, UsageRequest, PRINTING};
    use std::path::Path;

    fn grant(conn: &Connection, key: &str) -> Result<()> {
        lots::grant(
            conn,
            &GrantRequest {
                member: "alice".into(),
                credit: PRINTING.into(),
                amount: 1_000_000,
                valid_from: 0,
                expires_at: None,
                source: SourceKind::Adjustment,
                source_key: key.into(),
                note: String::new(),
                at: 10,
            },
        )
        .map(|_| ())
    }

    fn debit(ledger: &mut Ledger, i: usize) {
        ledger
            .debit(&UsageRequest {
                key: format!("d{i}"),
                member: Some("alice".into()),
                origin: Origin::Manual,
                payable: Payable::Printing,
                amount: 1,
                detail: "{}".into(),
                at: 20,
            })
            .expect("debit");
    }

    #[test]
    fn an_open_checks_the_lots_changed_since_the_remembered_point() {
        let mut ledger = Ledger::open(Path::new(":memory:"), Site::default()).expect("ledger");
        ledger
            .write(|c, _| {
                lots::ensure_member(c, "alice", "Alice", 0)?;
                grant(c, "g1")
            })
            .expect("grants");
        for i in 0..REMEMBER_AFTER as usize {
            debit(&mut ledger, i);
        }
        let conn = ledger.conn();
        verify_since_remembered(conn).expect("all agree");
        let point = remembered(conn).unwrap().expect("remembered");
        assert_eq!(point, newest(conn).unwrap());
        // A lot edited behind the ledger's back, with no history after the
        // point: the incremental check does not see it, check-ledger does.
        conn.execute("UPDATE lots SET remaining = remaining + 1 WHERE id = 1", [])
            .unwrap();
        verify_since_remembered(conn).expect("nothing new to check");
        assert!(schema::verify(conn).is_err());
        // A new history row on that lot: checked whole, the edit is found.
        debit(&mut ledger, 99_999);
        let e = verify_since_remembered(ledger.conn()).expect_err("found");
        assert!(
            matches!(e, LedgerError::Inconsistent { lot: 1, .. }),
            "{e:?}"
        );
    }

    #[test]
    fn the_changed_lots_are_found_by_id_not_by_a_scan_of_history() {
        let ledger = Ledger::open(Path::new(":memory:"), Site::default()).expect("ledger");
        let plan: Vec<String> = ledger
            .conn()
            .prepare(&format!("EXPLAIN QUERY PLAN {CHANGED}"))
            .unwrap()
            .query_map([1, 1], |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|s| s.starts_with("SEARCH history USING INTEGER PRIMARY KEY")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|s| s.starts_with("SCAN")), "{plan:?}");
    }
}
