//! Expiry: what is left on a lot at its expiry is recorded as an `expire`
//! history row, dated at the lot's expiry instant (when it happened, and
//! what a statement shows), not at the moment a sweep noticed it.
//!
//! So an `expire` row dated after now can only have been recorded by a
//! sweep whose wall clock was ahead. Under a clock that is trusted,
//! [`reverse_future_expiries`] gives each such expiry back with an `adjust`
//! row (nothing is deleted), paired with it in `expiry_reversals` so it is
//! reversed once; the lot then expires again at its real time.

use super::history::{self, Entry, HistoryKind};
use super::{Result, Ts};
use rusqlite::{params, Connection};
use serde::Serialize;

/// The note of a reversal's `adjust` row (a statement's description).
pub const REVERSED: &str = "expiry reversed: recorded under a wall clock that was ahead";

/// What one expiry sweep recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Expired {
    pub lots: i64,
    pub amount: i64,
}

/// Records an `expire` row, dated at the lot's expiry, for every lot past
/// its expiry at `now` with credit left.
pub fn expire_due(conn: &Connection, now: Ts) -> Result<Expired> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, remaining, expires_at FROM lots
         WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ?1",
    )?;
    let due = stmt
        .query_map([now], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, Ts>(2)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Expired::default();
    for (lot, remaining, expires_at) in due {
        conn.prepare_cached("UPDATE lots SET remaining = 0 WHERE id = ?1")?
            .execute([lot])?;
        history::append(
            conn,
            &Entry {
                lot,
                kind: HistoryKind::Expire,
                delta: -remaining,
                granted_delta: 0,
                usage: None,
                note: "",
                at: expires_at,
            },
        )?;
        out.lots += 1;
        out.amount = super::add(out.amount, remaining)?;
    }
    Ok(out)
}

/// What one reversal pass gave back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Reversed {
    pub lots: i64,
    pub amount: i64,
}

/// An `expire` row to reverse.
struct FutureExpiry {
    row: i64,
    lot: i64,
    amount: i64,
    at: Ts,
}

/// Gives back every expiry recorded as happening after `now` on a lot that
/// has not really expired at `now` (nor been voided). Call it only under a
/// trusted clock. Each reversal is an `adjust` row of the amount expired,
/// dated at the expiry row's own instant so that a balance rebuilt for any
/// past instant counts neither; its note says when it was reversed. Runs
/// once per expiry row, however often it is called.
pub fn reverse_future_expiries(conn: &Connection, now: Ts) -> Result<Reversed> {
    // Through the lots not yet expired (the expiry index), then their rows.
    let mut stmt = conn.prepare_cached(
        "SELECT h.id, h.lot_id, -h.delta, h.at FROM lots l JOIN history h ON h.lot_id = l.id
         WHERE l.expires_at > ?1 AND l.voided_at IS NULL AND h.kind = 'expire' AND h.at > ?1
           AND NOT EXISTS (SELECT 1 FROM expiry_reversals r WHERE r.expire_id = h.id)
         ORDER BY h.id",
    )?;
    let future = stmt
        .query_map([now], |r| {
            Ok(FutureExpiry {
                row: r.get(0)?,
                lot: r.get(1)?,
                amount: r.get(2)?,
                at: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let note = format!(
        "{REVERSED} (reversed at {})",
        crate::clock::format_rfc3339(chrono_tz::UTC, now)
    );
    let mut out = Reversed::default();
    let mut lots = std::collections::BTreeSet::new();
    for e in future {
        out.amount = super::add(out.amount, reverse_one(conn, &e, &note, now)?)?;
        lots.insert(e.lot);
    }
    out.lots = lots.len() as i64;
    Ok(out)
}

/// Gives one expiry back; returns the amount. Never more than the lot has
/// room for (remaining stays at most granted).
fn reverse_one(conn: &Connection, e: &FutureExpiry, note: &str, now: Ts) -> Result<i64> {
    let room: i64 = conn
        .prepare_cached("SELECT granted - remaining FROM lots WHERE id = ?1")?
        .query_row([e.lot], |r| r.get(0))?;
    let amount = e.amount.clamp(0, room.max(0));
    conn.prepare_cached("UPDATE lots SET remaining = remaining + ?2 WHERE id = ?1")?
        .execute(params![e.lot, amount])?;
    history::append(
        conn,
        &Entry {
            lot: e.lot,
            kind: HistoryKind::Adjust,
            delta: amount,
            granted_delta: 0,
            usage: None,
            note,
            at: e.at,
        },
    )?;
    let reversal = conn.last_insert_rowid();
    conn.prepare_cached(
        "INSERT INTO expiry_reversals (expire_id, reversal_id, at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![e.row, reversal, now])?;
    Ok(amount)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::lots::{self, GrantRequest};
    use crate::ledger::query::balances_now;
    use crate::ledger::{Ledger, Site, SourceKind, PRINTING};
    use std::path::Path;

    const T: Ts = 1_796_000_000;
    const DAY: Ts = 86_400;
    const YEAR: Ts = 365 * DAY;

    /// Alice with 1000 cents valid from T until T + 30 days.
    fn ledger() -> Ledger {
        let mut ledger = Ledger::open(Path::new(":memory:"), Site::default()).expect("ledger");
        ledger
            .write(|conn, _| {
                lots::ensure_member(conn, "alice", "Alice", T)?;
                lots::grant(
                    conn,
                    &GrantRequest {
                        member: "alice".into(),
                        credit: PRINTING.into(),
                        amount: 1000,
                        valid_from: T,
                        expires_at: Some(T + 30 * DAY),
                        source: SourceKind::Account,
                        source_key: "account:alice:november".into(),
                        note: "november".into(),
                        at: T,
                    },
                )
            })
            .expect("grant");
        ledger
    }

    fn printing(ledger: &Ledger, now: Ts) -> i64 {
        balances_now(ledger.conn(), Some("alice"), now).expect("balance")[0].printing_cents
    }

    fn rows(ledger: &Ledger) -> Vec<(String, i64, Ts, String)> {
        let mut stmt = ledger
            .conn()
            .prepare("SELECT kind, delta, at, note FROM history ORDER BY id")
            .expect("query");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("rows")
            .collect::<rusqlite::Result<_>>()
            .expect("rows")
    }

    #[test]
    fn an_expiry_is_dated_at_the_lot_s_expiry_not_at_the_sweep() {
        let mut ledger = ledger();
        let swept = ledger.expire_due(T + 45 * DAY).expect("sweep");
        assert_eq!(
            swept,
            Expired {
                lots: 1,
                amount: 1000
            }
        );
        let rows = rows(&ledger);
        assert_eq!(
            rows[1],
            ("expire".into(), -1000, T + 30 * DAY, String::new())
        );
    }

    #[test]
    fn expiries_recorded_a_year_ahead_are_given_back_once_and_the_lot_expires_again() {
        let mut ledger = ledger();
        // A sweep under a wall clock a year ahead.
        assert_eq!(ledger.expire_due(T + YEAR).expect("sweep").lots, 1);
        assert_eq!(printing(&ledger, T + DAY), 0);
        // Back at the right time: given back, usable again.
        let back = ledger
            .write(|c, _| reverse_future_expiries(c, T + DAY))
            .expect("reverse");
        assert_eq!(
            back,
            Reversed {
                lots: 1,
                amount: 1000
            }
        );
        assert_eq!(printing(&ledger, T + DAY), 1000);
        let again = ledger
            .write(|c, _| reverse_future_expiries(c, T + 2 * DAY))
            .expect("reverse");
        assert_eq!(again, Reversed::default(), "reversed once");
        // Nothing deleted: grant, expire, adjust; the adjust at the expiry's
        // instant, saying why and when.
        let rows = rows(&ledger);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (rows[2].0.as_str(), rows[2].1, rows[2].2),
            ("adjust", 1000, T + 30 * DAY)
        );
        assert!(rows[2].3.starts_with(REVERSED), "{}", rows[2].3);
        // The lot expires again at its real time, dated then.
        assert_eq!(ledger.expire_due(T + 31 * DAY).expect("sweep").amount, 1000);
        assert_eq!(rows_at_end(&ledger), ("expire".into(), -1000, T + 30 * DAY));
        assert_eq!(
            ledger
                .write(|c, _| reverse_future_expiries(c, T + 31 * DAY))
                .expect("reverse"),
            Reversed::default()
        );
        crate::ledger::schema::verify(ledger.conn()).expect("lots equal their history");
    }

    fn rows_at_end(ledger: &Ledger) -> (String, i64, Ts) {
        let r = rows(ledger).pop().expect("a row");
        (r.0, r.1, r.2)
    }

    #[test]
    fn an_expiry_that_really_happened_is_never_reversed() {
        let mut ledger = ledger();
        ledger.expire_due(T + 31 * DAY).expect("sweep");
        let back = ledger
            .write(|c, _| reverse_future_expiries(c, T + 31 * DAY))
            .expect("reverse");
        assert_eq!(back, Reversed::default());
        // Even when its lot's validity is extended later: that expiry was
        // dated in the past, by the lot's old expiry.
        ledger
            .write(|c, _| lots::adjust_expiry(c, 1, Some(T + 60 * DAY), "extended", T + 32 * DAY))
            .expect("extend");
        let back = ledger
            .write(|c, _| reverse_future_expiries(c, T + 32 * DAY))
            .expect("reverse");
        assert_eq!(back, Reversed::default());
    }

    #[test]
    fn a_voided_lot_gets_nothing_back() {
        let mut ledger = ledger();
        ledger.expire_due(T + YEAR).expect("sweep");
        ledger
            .write(|c, _| lots::void_lot(c, 1, "grant deleted", T + DAY))
            .map(|_| ())
            .expect("void");
        let back = ledger
            .write(|c, _| reverse_future_expiries(c, T + DAY))
            .expect("reverse");
        assert_eq!(back, Reversed::default());
    }
}
