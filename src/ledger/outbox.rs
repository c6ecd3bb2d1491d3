//! The transactional outbox of a site in a chain (issue 18).
//!
//! Migration 15's triggers write an entry for every usage, hold resolution
//! and refund, in the transaction that makes the change, once the ledger
//! has its `outbox_site` row ([`enable`]). The shipper reads entries after
//! the acknowledged seq ([`pending`]), marks what the centre acknowledged
//! ([`acknowledge`]), and moves what is unacknowledged to a new epoch when
//! the centre gives one ([`rebase`]: a restored or cloned ledger). What
//! waits is counted for metrics ([`backlog`]); acknowledged entries past
//! their retention are deleted in small batches ([`prune`]): the outbox is
//! the one table rows leave (it is not history: each entry names a usage,
//! resolution or refund row, which stays).

use super::{LedgerError, Result, Ts};
use rusqlite::{params, Connection, OptionalExtension};

/// Where a site's outbox stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub site_id: String,
    pub epoch: i64,
    /// The highest seq the centre acknowledged in `epoch`.
    pub acked_seq: i64,
    /// The highest seq written in `epoch` (0: none yet).
    pub last_seq: i64,
}

/// One outbox entry, as shipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: i64,
    pub kind: String,
    /// A JSON object, read from the row the entry names.
    pub body: String,
    pub at: Ts,
}

/// Turns the outbox on for `site_id` (from `[central] site_id`), in epoch 1
/// until the centre says otherwise. Idempotent; a ledger that already ships
/// as another site is refused.
pub fn enable(conn: &Connection, site_id: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO outbox_site (id, site_id, epoch) VALUES (1, ?1, 1)
         ON CONFLICT (id) DO NOTHING",
        params![site_id],
    )?;
    let ledger: String = conn.query_row("SELECT site_id FROM outbox_site", [], |r| r.get(0))?;
    if ledger != site_id {
        return Err(LedgerError::OtherSite {
            ledger,
            config: site_id.to_string(),
        });
    }
    Ok(())
}

/// The outbox's position, or `None` when the outbox is off.
pub fn position(conn: &Connection) -> Result<Option<Position>> {
    let row = conn
        .query_row(
            "SELECT s.site_id, s.epoch, s.acked_seq,
                    COALESCE((SELECT o.seq FROM outbox o
                              WHERE o.pos > s.epoch << 40 AND o.pos < (s.epoch + 1) << 40
                              ORDER BY o.pos DESC LIMIT 1), 0)
             FROM outbox_site s",
            [],
            |r| {
                Ok(Position {
                    site_id: r.get(0)?,
                    epoch: r.get(1)?,
                    acked_seq: r.get(2)?,
                    last_seq: r.get(3)?,
                })
            },
        )
        .optional()?;
    Ok(row)
}

/// Up to `limit` unacknowledged entries of the current epoch, in seq order,
/// each with its body read from the append-only row it names.
pub fn pending(conn: &Connection, limit: usize) -> Result<Vec<Entry>> {
    let mut stmt = conn.prepare_cached(PENDING)?;
    let rows = stmt.query_map(params![limit as i64], |r| {
        Ok(Entry {
            seq: r.get(0)?,
            kind: r.get(1)?,
            body: r.get(2)?,
            at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// An entry's body: its row's fields, and, at a site whose lots the
/// centre issues, what the usage takes from each escrow slice as the
/// ledger stands now (`slices`, net of what was given back) and what went
/// beyond credit on the offline allowance (`allowance`).
const PENDING: &str = "SELECT o.seq, o.kind,
    json_patch(CASE o.kind
        WHEN 'usage' THEN (SELECT json_object('key', u.key, 'fingerprint', u.fingerprint,
            'member', u.member_id, 'origin', u.origin, 'credit_kind', u.credit_kind,
            'resource_type', u.resource_type, 'amount', u.amount, 'is_hold', u.is_hold,
            'covered', u.covered, 'overage', u.overage, 'at', u.at)
            FROM usages u WHERE u.id = o.usage_id)
        WHEN 'refund' THEN (SELECT json_object('key', u.key, 'fingerprint', u.fingerprint,
            'reason', r.reason, 'at', r.at)
            FROM refunds r JOIN usages u ON u.id = r.usage_id WHERE r.usage_id = o.usage_id)
        ELSE (SELECT json_object('key', u.key, 'fingerprint', u.fingerprint,
            'actual', h.actual, 'at', h.at)
            FROM hold_resolutions h JOIN usages u ON u.id = h.usage_id
            WHERE h.usage_id = o.usage_id)
    END,
    CASE (SELECT issue FROM lot_issue) WHEN 'central' THEN json_object(
        'slices', json(COALESCE((SELECT json_group_array(json_array(e.slice_id, t.n))
            FROM (SELECT h.lot_id, -SUM(h.delta) AS n FROM history h
                  WHERE h.usage_id = o.usage_id GROUP BY h.lot_id) t
            JOIN escrow_slices e ON e.lot_id = t.lot_id WHERE t.n > 0), '[]')),
        'allowance', COALESCE((SELECT a.amount FROM allowance_uses a
                               WHERE a.usage_id = o.usage_id), 0))
    ELSE '{}' END),
    o.at
    FROM outbox o, outbox_site s
    WHERE o.pos > (s.epoch << 40) + s.acked_seq AND o.pos < (s.epoch + 1) << 40
    ORDER BY o.pos LIMIT ?1";

/// What waits for the centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Entries of the current epoch after the acknowledged seq.
    pub unacknowledged: i64,
    /// When the oldest of them was written; `None` when there is none.
    pub oldest_at: Option<Ts>,
}

/// The outbox's backlog, or `None` when the outbox is off. Seqs are dense,
/// so this reads two rows, whatever the backlog.
pub fn backlog(conn: &Connection) -> Result<Option<Backlog>> {
    let Some(at) = position(conn)? else {
        return Ok(None);
    };
    let oldest_at = conn
        .query_row(
            "SELECT at FROM outbox WHERE pos = (?1 << 40) + ?2",
            params![at.epoch, at.acked_seq + 1],
            |r| r.get(0),
        )
        .optional()?;
    Ok(Some(Backlog {
        unacknowledged: (at.last_seq - at.acked_seq).max(0),
        oldest_at,
    }))
}

/// Deletes up to `limit` acknowledged entries written before `before`,
/// oldest epoch and seq first; returns how many. The newest entry of the
/// current epoch always stays: the next seq is counted from it.
pub fn prune(conn: &Connection, before: Ts, limit: usize) -> Result<usize> {
    let deleted = conn.execute(
        "DELETE FROM outbox WHERE pos IN (
            SELECT o.pos FROM outbox o, outbox_site s
            WHERE o.at < ?1
              AND o.pos <= (s.epoch << 40) + s.acked_seq
              AND o.pos < (SELECT m.pos FROM outbox m ORDER BY m.pos DESC LIMIT 1)
            ORDER BY o.pos LIMIT ?2)",
        params![before, limit as i64],
    )?;
    Ok(deleted)
}

/// Records that the centre applied everything up to `seq` of `epoch`. An
/// acknowledgement never goes back, nor applies to another epoch.
pub fn acknowledge(conn: &Connection, epoch: i64, seq: i64) -> Result<()> {
    conn.execute(
        "UPDATE outbox_site SET acked_seq = ?2 WHERE epoch = ?1 AND acked_seq < ?2",
        params![epoch, seq],
    )?;
    Ok(())
}

/// Moves the unacknowledged entries of the current epoch to `new_epoch`,
/// numbered from 1 in the same order, and makes it current. The centre
/// gives a new epoch to a ledger restored from a backup or cloned; entries
/// it had already applied come again under their usage keys and change
/// nothing there. Returns how many entries moved.
pub fn rebase(conn: &Connection, new_epoch: i64) -> Result<usize> {
    let Some(at) = position(conn)? else {
        return Ok(0);
    };
    if new_epoch <= at.epoch {
        return Ok(0);
    }
    let moved = conn.execute(
        "UPDATE outbox SET pos = (?2 << 40) + (pos & 1099511627775) - ?3
         WHERE pos > (?1 << 40) + ?3 AND pos < (?1 + 1) << 40",
        params![at.epoch, new_epoch, at.acked_seq],
    )?;
    conn.execute(
        "UPDATE outbox_site SET epoch = ?1, acked_seq = 0",
        params![new_epoch],
    )?;
    Ok(moved)
}

/// Counts everything after `seq` of `epoch` as unacknowledged again: the
/// centre lost what it had acknowledged (a PostgreSQL failover losing its
/// last seconds), so it is shipped again.
pub fn resend_after(conn: &Connection, epoch: i64, seq: i64) -> Result<()> {
    conn.execute(
        "UPDATE outbox_site SET acked_seq = ?2 WHERE epoch = ?1 AND acked_seq > ?2",
        params![epoch, seq.max(0)],
    )?;
    Ok(())
}

/// A read connection to the ledger that tells whether any connection
/// committed since it last looked (`PRAGMA data_version`): the shipper
/// looks often while idle without a writer job. Without one (it could not
/// open), every look says yes.
pub struct ChangeWatch {
    conn: Option<Connection>,
    seen: Option<i64>,
}

impl ChangeWatch {
    pub fn open(path: &std::path::Path) -> ChangeWatch {
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|e| tracing::debug!(error = %e, "outbox change watch not opened"))
            .ok();
        ChangeWatch { conn, seen: None }
    }

    /// Whether the ledger changed since the last look (microseconds: no
    /// page is read).
    pub fn changed(&mut self) -> bool {
        let Some(conn) = &self.conn else { return true };
        match conn.query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0)) {
            Ok(v) => self.seen.replace(v) != Some(v),
            Err(_) => true,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ledger::allocate::SourceKind;
    use crate::ledger::lots::{self, GrantRequest};
    use crate::ledger::usage::{Origin, Payable, UsageRequest};
    use crate::ledger::Ledger;
    use crate::site::Site;
    use std::path::Path;

    const T: Ts = 1_796_000_000;

    /// A ledger with alice and 1000 cents of printing credit (shared with
    /// the back-fill's tests).
    pub(crate) fn ledger() -> Ledger {
        let mut ledger = Ledger::open(Path::new(":memory:"), Site::default()).expect("ledger");
        ledger
            .write(|conn, _| {
                lots::ensure_member(conn, "alice", "Alice", T)?;
                lots::grant(
                    conn,
                    &GrantRequest {
                        member: "alice".into(),
                        credit: "printing".into(),
                        amount: 1000,
                        valid_from: T,
                        expires_at: None,
                        source: SourceKind::Account,
                        source_key: "account:alice:start".into(),
                        note: "start".into(),
                        at: T,
                    },
                )
            })
            .expect("grant");
        ledger
    }

    fn request(key: &str, amount: i64) -> UsageRequest {
        UsageRequest {
            key: key.into(),
            member: Some("alice".into()),
            origin: Origin::Manual,
            payable: Payable::Printing,
            amount,
            detail: "{}".into(),
            at: T + 1,
        }
    }

    fn kinds(ledger: &Ledger) -> Vec<(i64, i64, String)> {
        let mut stmt = ledger
            .conn()
            .prepare("SELECT epoch, seq, kind FROM outbox ORDER BY epoch, seq")
            .expect("query");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("rows")
            .collect::<rusqlite::Result<_>>()
            .expect("rows")
    }

    #[test]
    fn a_single_site_ledger_writes_no_outbox() {
        let mut ledger = ledger();
        ledger.debit(&request("k1", 10)).expect("debit");
        assert_eq!(position(ledger.conn()).expect("position"), None);
        assert!(kinds(&ledger).is_empty());
    }

    #[test]
    fn every_usage_resolution_and_refund_writes_an_entry_in_its_transaction() {
        let mut ledger = ledger();
        ledger.write(|c, _| enable(c, "ber-1")).expect("enable");
        ledger.debit(&request("k1", 10)).expect("debit");
        ledger.debit(&request("k1", 10)).expect("a replay");
        ledger.hold(&request("h1", 50)).expect("hold");
        ledger.settle("h1", 30, "{}", T + 2).expect("settle");
        ledger.hold(&request("h2", 50)).expect("hold");
        ledger.void("h2", "cancelled", T + 2).expect("void");
        ledger.refund("k1", "jammed", T + 3).expect("refund");
        let want = ["usage", "usage", "settle", "usage", "void", "refund"];
        let got: Vec<String> = kinds(&ledger).into_iter().map(|k| k.2).collect();
        assert_eq!(got, want);
        let entries = pending(ledger.conn(), 500).expect("pending");
        assert_eq!(
            entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6]
        );
        let settle: serde_json::Value = serde_json::from_str(&entries[2].body).expect("json");
        assert_eq!(settle["key"], "h1");
        assert_eq!(settle["actual"], 30);
        // A resolution or refund names the usage it is of by fingerprint
        // too: under a key two ledgers used for other usages (a clone),
        // the centre applies it only to this one.
        let refund: serde_json::Value = serde_json::from_str(&entries[5].body).expect("json");
        let fingerprint: String = ledger
            .conn()
            .query_row("SELECT fingerprint FROM usages WHERE key = 'k1'", [], |r| {
                r.get(0)
            })
            .expect("k1");
        assert_eq!(refund["fingerprint"], fingerprint.as_str());
        assert!(settle["fingerprint"].is_string());
    }

    fn count(ledger: &Ledger) -> i64 {
        ledger
            .conn()
            .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
            .expect("count")
    }

    #[test]
    fn acknowledged_entries_past_retention_are_pruned_in_batches_keeping_the_seq() {
        let mut ledger = ledger();
        ledger.write(|c, _| enable(c, "ber-1")).expect("enable");
        for i in 0..7 {
            ledger.debit(&request(&format!("k{i}"), 1)).expect("debit");
        }
        let b = backlog(ledger.conn()).expect("backlog").expect("on");
        assert_eq!(
            b,
            Backlog {
                unacknowledged: 7,
                oldest_at: Some(T + 1)
            }
        );
        let prune_all =
            |ledger: &mut Ledger, before| ledger.write(|c, _| prune(c, before, 2)).expect("prune");
        assert_eq!(prune_all(&mut ledger, T + 100), 0, "nothing acknowledged");
        ledger.write(|c, _| acknowledge(c, 1, 5)).expect("ack");
        assert_eq!(prune_all(&mut ledger, T + 1), 0, "not past retention");
        assert_eq!(prune_all(&mut ledger, T + 100), 2, "a small batch");
        assert_eq!(prune_all(&mut ledger, T + 100), 2);
        assert_eq!(prune_all(&mut ledger, T + 100), 1);
        assert_eq!(prune_all(&mut ledger, T + 100), 0, "6 and 7 wait");
        assert_eq!(count(&ledger), 2);
        let b = backlog(ledger.conn()).expect("backlog").expect("on");
        assert_eq!(
            b,
            Backlog {
                unacknowledged: 2,
                oldest_at: Some(T + 1)
            }
        );
        ledger.write(|c, _| acknowledge(c, 1, 7)).expect("ack");
        assert_eq!(prune_all(&mut ledger, T + 100), 1, "the newest stays");
        let b = backlog(ledger.conn()).expect("backlog").expect("on");
        assert_eq!(
            b,
            Backlog {
                unacknowledged: 0,
                oldest_at: None
            }
        );
        ledger.debit(&request("k7", 1)).expect("debit");
        let at = position(ledger.conn()).expect("position").expect("on");
        assert_eq!((at.acked_seq, at.last_seq), (7, 8), "seq 8 follows 7");
        // An older epoch's entries are all acknowledged, newest included.
        ledger.write(|c, _| rebase(c, 2)).expect("rebase");
        ledger.debit(&request("k8", 1)).expect("debit");
        assert_eq!(prune_all(&mut ledger, T + 100), 1, "epoch 1's newest, 7");
        assert_eq!(
            kinds(&ledger),
            [(2, 1, "usage".to_string()), (2, 2, "usage".to_string())]
        );
    }

    #[test]
    fn a_new_epoch_takes_the_unacknowledged_entries_from_seq_1() {
        let mut ledger = ledger();
        ledger.write(|c, _| enable(c, "ber-1")).expect("enable");
        for i in 0..5 {
            ledger.debit(&request(&format!("k{i}"), 1)).expect("debit");
        }
        ledger.write(|c, _| acknowledge(c, 1, 3)).expect("ack");
        assert_eq!(ledger.write(|c, _| rebase(c, 2)).expect("rebase"), 2);
        ledger.debit(&request("k5", 1)).expect("debit");
        let at = position(ledger.conn()).expect("position").expect("on");
        assert_eq!((at.epoch, at.acked_seq, at.last_seq), (2, 0, 3));
        let keys: Vec<String> = pending(ledger.conn(), 10)
            .expect("pending")
            .iter()
            .map(|e| {
                serde_json::from_str::<serde_json::Value>(&e.body).expect("json")["key"].to_string()
            })
            .collect();
        assert_eq!(keys, [r#""k3""#, r#""k4""#, r#""k5""#]);
        let err = ledger
            .write(|c, _| enable(c, "ham-1"))
            .expect_err("another site");
        assert!(matches!(err, LedgerError::OtherSite { .. }), "{err}");
    }

    /// Migration 19 moves a WITHOUT ROWID outbox keyed (epoch, seq), as
    /// migrations 16 and 18 made it, to one key: every entry keeps its
    /// epoch, seq, kind, usage and time, and the next entry continues the
    /// current epoch's seqs.
    #[test]
    fn migration_19_keeps_every_entry_and_the_seq() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.db");
        let entries = |conn: &Connection| -> Vec<(i64, i64, String, i64, Ts)> {
            let mut stmt = conn
                .prepare("SELECT epoch, seq, kind, usage_id, at FROM outbox ORDER BY epoch, seq")
                .expect("query");
            stmt.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .expect("rows")
            .collect::<rusqlite::Result<_>>()
            .expect("rows")
        };
        let before = {
            let mut ledger = Ledger::open(&path, Site::default()).expect("ledger");
            ledger
                .write(|conn, _| {
                    lots::ensure_member(conn, "alice", "Alice", T)?;
                    lots::grant(
                        conn,
                        &GrantRequest {
                            member: "alice".into(),
                            credit: "printing".into(),
                            amount: 1000,
                            valid_from: T,
                            expires_at: None,
                            source: SourceKind::Account,
                            source_key: "account:alice:start".into(),
                            note: "start".into(),
                            at: T,
                        },
                    )?;
                    enable(conn, "ber-1")
                })
                .expect("grant");
            for i in 0..4 {
                ledger.debit(&request(&format!("k{i}"), 1)).expect("debit");
            }
            ledger.write(|c, _| acknowledge(c, 1, 2)).expect("ack");
            ledger.write(|c, _| rebase(c, 2)).expect("rebase");
            ledger.refund("k0", "jam", T + 5).expect("refund");
            entries(ledger.conn())
        };
        assert_eq!(before.len(), 5, "{before:?}");
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(
                "DROP TRIGGER outbox_usage; DROP TRIGGER outbox_resolution; DROP TRIGGER outbox_refund;
                 ALTER TABLE outbox RENAME TO outbox_v19;
                 CREATE TABLE outbox (
                     epoch INTEGER NOT NULL,
                     seq INTEGER NOT NULL CHECK (seq >= 1),
                     kind TEXT NOT NULL CHECK (kind IN ('usage', 'settle', 'void', 'refund')),
                     usage_id INTEGER NOT NULL REFERENCES usages(id),
                     at INTEGER NOT NULL,
                     PRIMARY KEY (epoch, seq)
                 ) WITHOUT ROWID;
                 INSERT INTO outbox SELECT epoch, seq, kind, usage_id, at FROM outbox_v19;
                 DROP TABLE outbox_v19;
                 PRAGMA user_version = 17;",
            )
            .expect("the layout before migration 19");
            assert_eq!(entries(&conn), before);
        }
        let mut ledger = Ledger::open(&path, Site::default()).expect("migrated");
        assert_eq!(entries(ledger.conn()), before);
        ledger.debit(&request("k4", 1)).expect("debit");
        let after = entries(ledger.conn());
        assert_eq!(after[..5], before[..]);
        assert_eq!(
            (after[5].0, after[5].1, after[5].2.as_str()),
            (2, 4, "usage")
        );
        let at = position(ledger.conn()).expect("position").expect("on");
        assert_eq!((at.epoch, at.acked_seq, at.last_seq), (2, 0, 4));
        assert_eq!(pending(ledger.conn(), 10).expect("pending").len(), 4);
    }

    #[test]
    fn the_change_watch_sees_another_connections_commit_once() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("ledger.db");
        let mut ledger =
            crate::ledger::Ledger::open(&path, crate::ledger::Site::default()).expect("open");
        let mut watch = ChangeWatch::open(&path);
        watch.changed();
        assert!(!watch.changed(), "nothing committed");
        ledger
            .write(|c, _| crate::ledger::lots::ensure_member(c, "ann", "Ann", 0).map(|_| ()))
            .expect("write");
        assert!(watch.changed(), "the writer committed");
        assert!(!watch.changed(), "seen once");
    }
}
