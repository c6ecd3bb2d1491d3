//! `tallyd central import`: a single-site ledger joins a chain with its
//! history (issue 18, the migration's "shadow" step).
//!
//! The outbox triggers (migration 16) write an entry only for rows written
//! once the outbox is on; the usages, hold resolutions and refunds written
//! before are back-filled here, in their original order, ahead of every
//! entry already waiting, so the shipper sends the old history first and
//! the centre counts each row once (by seq, and by usage key).
//!
//! An entry holds what a trigger writes (its epoch and seq as one key, kind, usage id, the
//! row's own time); its body is read from the named row when shipped
//! ([`super::outbox::pending`]), so a back-filled entry's body is the one
//! the trigger's would have been.

use super::outbox::position;
use super::{LedgerError, Result};
use rusqlite::{params, Connection};

/// The rows the outbox names, indexed for [`MISSING`] (the outbox itself
/// has no index on them: every debit would pay for it). A temporary table
/// of this connection, filled afresh by each back-fill.
const NAMED: &str = "
    CREATE TEMP TABLE IF NOT EXISTS outbox_named (
        kind TEXT NOT NULL,
        usage_id INTEGER NOT NULL,
        PRIMARY KEY (kind, usage_id)
    ) WITHOUT ROWID;
    DELETE FROM temp.outbox_named;
    INSERT OR IGNORE INTO temp.outbox_named (kind, usage_id)
        SELECT CASE WHEN kind IN ('settle', 'void') THEN 'resolution' ELSE kind END, usage_id
        FROM outbox;";

/// What a back-fill did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backfill {
    /// The epoch the entries were written in.
    pub epoch: i64,
    /// Entries added (0: every row already had its entry).
    pub added: usize,
    /// Entries already waiting, now numbered after the added ones.
    pub moved: usize,
}

/// Every usage, hold resolution and refund no outbox entry names yet, as
/// the trigger would name it: kind, usage id, the row's time, and the time
/// it is ordered by (never before the rows it follows: a resolution after
/// its usage, a refund after both, whatever the clock did).
const MISSING: &str = "
    SELECT 'usage' AS kind, u.id AS usage_id, u.at AS at, u.at AS ord, 0 AS phase
        FROM usages u
        WHERE NOT EXISTS (SELECT 1 FROM temp.outbox_named n
            WHERE n.kind = 'usage' AND n.usage_id = u.id)
    UNION ALL
    SELECT CASE h.outcome WHEN 'settled' THEN 'settle' ELSE 'void' END, h.usage_id, h.at,
            max(h.at, u.at), 1
        FROM hold_resolutions h JOIN usages u ON u.id = h.usage_id
        WHERE NOT EXISTS (SELECT 1 FROM temp.outbox_named n
            WHERE n.kind = 'resolution' AND n.usage_id = h.usage_id)
    UNION ALL
    SELECT 'refund', r.usage_id, r.at,
            max(r.at, u.at, COALESCE((SELECT h.at FROM hold_resolutions h
                                      WHERE h.usage_id = r.usage_id), r.at)), 2
        FROM refunds r JOIN usages u ON u.id = r.usage_id
        WHERE NOT EXISTS (SELECT 1 FROM temp.outbox_named n
            WHERE n.kind = 'refund' AND n.usage_id = r.usage_id)";

/// Writes an outbox entry for every row that has none, numbered from 1 in
/// the order the rows were written (by time; at one time, usages before
/// resolutions before refunds, each by usage id), and numbers the entries
/// already waiting after them. Idempotent: a row with an entry gets no
/// other. Refused when the outbox is off (no `[central]`), and when the
/// centre already acknowledged entries of this ledger (or gave it a new
/// epoch): old rows could no longer go first. Run it in one transaction.
pub fn backfill(conn: &Connection) -> Result<Backfill> {
    let Some(at) = position(conn)? else {
        return Err(LedgerError::OutboxOff);
    };
    conn.execute_batch(NAMED)?;
    let missing: i64 = conn.query_row(&format!("SELECT count(*) FROM ({MISSING})"), [], |r| {
        r.get(0)
    })?;
    let none = Backfill {
        epoch: at.epoch,
        added: 0,
        moved: 0,
    };
    if missing == 0 {
        return Ok(none);
    }
    if at.epoch > 1 || at.acked_seq > 0 {
        return Err(LedgerError::AlreadyShipped {
            epoch: at.epoch,
            acked_seq: at.acked_seq,
            missing,
        });
    }
    // Two steps, so no seq is ever held by two entries at once.
    // Seqs count rows of one file: far from overflowing.
    let over = at.last_seq + missing;
    let moved = conn.execute(
        "UPDATE outbox SET pos = pos + ?2 WHERE pos > ?1 << 40 AND pos < (?1 + 1) << 40",
        params![at.epoch, over],
    )?;
    conn.execute(
        "UPDATE outbox SET pos = pos - ?2 WHERE pos > ?1 << 40 AND pos < (?1 + 1) << 40",
        params![at.epoch, at.last_seq],
    )?;
    let added = conn.execute(
        &format!(
            "INSERT INTO outbox (pos, kind, usage_id, at)
             SELECT (?1 << 40) + ROW_NUMBER() OVER (ORDER BY ord, phase, usage_id), kind, usage_id, at
             FROM ({MISSING})"
        ),
        params![at.epoch],
    )?;
    Ok(Backfill {
        added,
        moved,
        ..none
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::outbox::tests::ledger;
    use crate::ledger::outbox::{acknowledge, enable, pending, Entry};
    use crate::ledger::usage::{Origin, Payable, UsageRequest};
    use crate::ledger::{Ledger, Ts};

    const T: Ts = 1_796_000_000;

    fn request(key: &str, amount: i64, at: Ts) -> UsageRequest {
        UsageRequest {
            key: key.into(),
            member: Some("alice".into()),
            origin: Origin::Manual,
            payable: Payable::Printing,
            amount,
            detail: "{}".into(),
            at,
        }
    }

    /// A history: charges, a hold settled, a hold voided, a refund; the
    /// settle's clock stepped back before its hold's time.
    fn history(ledger: &mut Ledger) {
        ledger.debit(&request("k1", 10, T + 1)).expect("debit");
        ledger.hold(&request("h1", 50, T + 2)).expect("hold");
        ledger.debit(&request("k2", 20, T + 3)).expect("debit");
        ledger.settle("h1", 30, "{}", T + 1).expect("settle");
        ledger.hold(&request("h2", 40, T + 4)).expect("hold");
        ledger.void("h2", "cancelled", T + 5).expect("void");
        ledger.refund("k1", "jammed", T + 6).expect("refund");
    }

    fn enable_ber(ledger: &mut Ledger) {
        ledger.write(|c, _| enable(c, "ber-1")).expect("enable");
    }

    fn shipped(ledger: &Ledger) -> Vec<(i64, String, String, Ts)> {
        let entries: Vec<Entry> = pending(ledger.conn(), 100).expect("pending");
        entries
            .into_iter()
            .map(|e| (e.seq, e.kind, e.body, e.at))
            .collect()
    }

    #[test]
    fn old_rows_get_the_entries_the_triggers_would_have_written_ahead_of_newer_ones() {
        let mut old = ledger();
        history(&mut old);
        enable_ber(&mut old);
        old.debit(&request("k3", 5, T + 7)).expect("a newer debit");
        let done = old.write(|c, _| backfill(c)).expect("backfill");
        assert_eq!(
            done,
            Backfill {
                epoch: 1,
                added: 7,
                moved: 1
            }
        );
        let mut twin = ledger();
        enable_ber(&mut twin);
        history(&mut twin);
        twin.debit(&request("k3", 5, T + 7)).expect("a newer debit");
        let mut want = shipped(&twin);
        // The twin's triggers wrote the settle when it happened; the
        // back-fill orders it by time, but never before its hold.
        let settle = want.remove(3);
        want.insert(2, settle);
        for (seq, entry) in want.iter_mut().enumerate() {
            entry.0 = seq as i64 + 1;
        }
        assert_eq!(shipped(&old), want);
        let kinds: Vec<&str> = want.iter().map(|e| e.1.as_str()).collect();
        assert_eq!(
            kinds,
            ["usage", "usage", "settle", "usage", "usage", "void", "refund", "usage"]
        );
    }

    #[test]
    fn a_second_backfill_adds_nothing_even_once_shipped() {
        let mut ledger = ledger();
        history(&mut ledger);
        enable_ber(&mut ledger);
        let first = ledger.write(|c, _| backfill(c)).expect("backfill");
        assert_eq!(first.added, 7);
        let again = ledger.write(|c, _| backfill(c)).expect("again");
        assert_eq!((again.added, again.moved), (0, 0));
        ledger.write(|c, _| acknowledge(c, 1, 7)).expect("ack");
        ledger.debit(&request("k3", 5, T + 7)).expect("debit");
        let shipped_once = ledger.write(|c, _| backfill(c)).expect("after shipping");
        assert_eq!((shipped_once.added, shipped_once.moved), (0, 0));
        assert_eq!(shipped(&ledger).len(), 1, "only k3 waits");
    }

    #[test]
    fn refused_without_an_outbox_or_once_the_centre_acknowledged_entries() {
        let mut ledger = ledger();
        history(&mut ledger);
        let err = ledger.write(|c, _| backfill(c)).expect_err("no outbox");
        assert!(matches!(err, LedgerError::OutboxOff), "{err}");
        enable_ber(&mut ledger);
        ledger.debit(&request("k3", 5, T + 7)).expect("debit");
        ledger.write(|c, _| acknowledge(c, 1, 1)).expect("ack");
        let err = ledger.write(|c, _| backfill(c)).expect_err("shipped");
        assert!(
            matches!(
                err,
                LedgerError::AlreadyShipped {
                    epoch: 1,
                    acked_seq: 1,
                    missing: 7
                }
            ),
            "{err}"
        );
        assert_eq!(shipped(&ledger).len(), 0, "nothing added");
    }
}
