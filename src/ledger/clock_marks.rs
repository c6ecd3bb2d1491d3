//! What the ledger knows about time, for the clock rule
//! ([`crate::clock::guard`]): the newest row dated by a clock reading, and
//! the clock mark, the last trusted reading of both clocks under which the
//! daemon wrote.
//!
//! Rows dated by a clock reading are usages, session starts and history
//! rows, except `expire` rows and their reversals: those are dated at a
//! lot's expiry instant, which may rightly be later than any clock showed.

use super::sync_state;
use super::{Result, Ts};
use crate::clock::guard::Mark;
use rusqlite::{params, Connection};

/// How far the newest-row scan has read: the highest row ids seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    pub history: i64,
    pub usages: i64,
    pub sessions: i64,
}

/// The result of a newest-row scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Newest {
    /// The newest `at` among the rows read (dated by a clock reading).
    pub at: Option<Ts>,
    /// Where the next scan starts.
    pub seen: Seen,
}

fn max_id(conn: &Connection, table: &str) -> Result<i64> {
    let sql = format!("SELECT COALESCE(MAX(id), 0) FROM {table}");
    Ok(conn.prepare_cached(&sql)?.query_row([], |r| r.get(0))?)
}

/// The newest clock-dated row among those written after `since` (all rows
/// for `Seen::default()`, a full scan; later scans read only the new rows,
/// by primary key).
pub fn newest_since(conn: &Connection, since: Seen) -> Result<Newest> {
    let seen = Seen {
        history: max_id(conn, "history")?,
        usages: max_id(conn, "usages")?,
        sessions: max_id(conn, "sessions")?,
    };
    let history: Option<Ts> = conn
        .prepare_cached(
            "SELECT MAX(at) FROM history WHERE id > ?1 AND id <= ?2 AND kind <> 'expire'
             AND id NOT IN (SELECT reversal_id FROM expiry_reversals)",
        )?
        .query_row(params![since.history, seen.history], |r| r.get(0))?;
    let usages: Option<Ts> = conn
        .prepare_cached("SELECT MAX(at) FROM usages WHERE id > ?1 AND id <= ?2")?
        .query_row(params![since.usages, seen.usages], |r| r.get(0))?;
    let sessions: Option<Ts> = conn
        .prepare_cached("SELECT MAX(started_at) FROM sessions WHERE id > ?1 AND id <= ?2")?
        .query_row(params![since.sessions, seen.sessions], |r| r.get(0))?;
    Ok(Newest {
        at: history.max(usages).max(sessions),
        seen,
    })
}

const NEWEST: &str = "clock_newest";

/// Rows read after which [`newest`] remembers where it got to.
const REMEMBER_AFTER: i64 = 1_000;

/// The newest clock-dated row of all: the one remembered (rows are never
/// updated or deleted, so it stays the newest of the rows up to where it
/// was found), and the rows written after it. Remembers the new result when
/// the scan read [`REMEMBER_AFTER`] rows or more, so the daemon's start
/// and `tallyd expire` read what was written since, not all of history.
/// Needs a connection that can write.
pub fn newest(conn: &Connection) -> Result<Newest> {
    let before = remembered(conn)?;
    let after = newest_since(conn, before.seen)?;
    let out = Newest {
        at: before.at.max(after.at),
        seen: after.seen,
    };
    let read = (out.seen.history - before.seen.history)
        + (out.seen.usages - before.seen.usages)
        + (out.seen.sessions - before.seen.sessions);
    if read >= REMEMBER_AFTER {
        let s = out.seen;
        let at = out.at.map_or("-".into(), |t| t.to_string());
        let text = format!("{} {} {} {at}", s.history, s.usages, s.sessions);
        sync_state::set(conn, NEWEST, Some(&text))?;
    }
    Ok(out)
}

/// What [`newest`] remembered; nothing (a full scan) if it does not read
/// back or lies past the newest rows.
fn remembered(conn: &Connection) -> Result<Newest> {
    let text = sync_state::get(conn, NEWEST)?.unwrap_or_default();
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [h, u, s, at] = parts[..] else {
        return Ok(Newest::default());
    };
    let (Ok(history), Ok(usages), Ok(sessions)) = (h.parse(), u.parse(), s.parse()) else {
        return Ok(Newest::default());
    };
    let seen = Seen {
        history,
        usages,
        sessions,
    };
    let past_the_end = seen.history > max_id(conn, "history")?
        || seen.usages > max_id(conn, "usages")?
        || seen.sessions > max_id(conn, "sessions")?;
    Ok(match (past_the_end, at) {
        (true, _) => Newest::default(),
        (false, "-") => Newest { at: None, seen },
        (false, at) => match at.parse() {
            Ok(at) => Newest { at: Some(at), seen },
            Err(_) => Newest::default(),
        },
    })
}

const MARK: &str = "clock_mark";

/// The clock mark, if one was saved (and reads back).
pub fn load_mark(conn: &Connection) -> Result<Option<Mark>> {
    let Some(text) = sync_state::get(conn, MARK)? else {
        return Ok(None);
    };
    let mut parts = text.split_whitespace();
    let (Some(wall), Some(boot_ms), Some(boot_id)) = (parts.next(), parts.next(), parts.next())
    else {
        return Ok(None);
    };
    Ok(wall
        .parse()
        .ok()
        .zip(boot_ms.parse().ok())
        .map(|(wall, boot_ms)| Mark {
            wall,
            boot_ms,
            boot_id: boot_id.to_string(),
        }))
}

/// Saves the clock mark (`wall boot_ms boot_id`).
pub fn save_mark(conn: &Connection, mark: &Mark) -> Result<()> {
    let text = format!("{} {} {}", mark.wall, mark.boot_ms, mark.boot_id);
    sync_state::set(conn, MARK, Some(&text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::lots::{self, GrantRequest};
    use crate::ledger::{Ledger, Site, SourceKind, PRINTING};
    use std::path::Path;

    const T: Ts = 1_796_000_000;

    fn grant(conn: &Connection, key: &str, at: Ts, expires_at: Option<Ts>) -> Result<()> {
        lots::grant(
            conn,
            &GrantRequest {
                member: "alice".into(),
                credit: PRINTING.into(),
                amount: 100,
                valid_from: at,
                expires_at,
                source: SourceKind::Adjustment,
                source_key: key.into(),
                note: String::new(),
                at,
            },
        )
        .map(|_| ())
    }

    #[test]
    fn the_newest_row_skips_expiries_and_later_scans_read_only_new_rows() {
        let mut ledger = Ledger::open(Path::new(":memory:"), Site::default()).expect("ledger");
        let first = newest_since(ledger.conn(), Seen::default()).expect("scan");
        assert_eq!(first.at, None);
        ledger
            .write(|c, _| {
                lots::ensure_member(c, "alice", "Alice", T)?;
                grant(c, "a", T, Some(T + 100))?;
                grant(c, "b", T + 50, None)
            })
            .expect("grants");
        let all = newest_since(ledger.conn(), first.seen).expect("scan");
        assert_eq!(all.at, Some(T + 50));
        // An expiry dated at its lot's expiry (T + 100) is not a clock reading.
        ledger
            .write(|c, _| crate::ledger::expiry::expire_due(c, T + 200))
            .expect("sweep");
        let after = newest_since(ledger.conn(), all.seen).expect("scan");
        assert_eq!(after.at, None, "only the expiry was new");
        assert!(after.seen.history > all.seen.history);
        assert_eq!(
            newest_since(ledger.conn(), Seen::default())
                .expect("scan")
                .at,
            Some(T + 50)
        );
    }

    #[test]
    fn the_newest_row_is_remembered_and_only_later_rows_are_read() {
        let mut ledger = Ledger::open(Path::new(":memory:"), Site::default()).expect("ledger");
        ledger
            .write(|c, _| {
                lots::ensure_member(c, "alice", "Alice", T)?;
                (0..REMEMBER_AFTER).try_for_each(|i| grant(c, &format!("g{i}"), T + i, None))
            })
            .expect("grants");
        let first = newest(ledger.conn()).expect("scan");
        assert_eq!(first.at, Some(T + REMEMBER_AFTER - 1));
        assert_eq!(remembered(ledger.conn()).expect("remembered"), first);
        // A row dated earlier than the newest, then one later.
        ledger
            .write(|c, _| grant(c, "early", T, None))
            .expect("grant");
        assert_eq!(newest(ledger.conn()).expect("scan").at, first.at);
        let later = T + 10 * REMEMBER_AFTER;
        ledger
            .write(|c, _| grant(c, "late", later, None))
            .expect("grant");
        assert_eq!(newest(ledger.conn()).expect("scan").at, Some(later));
        assert_eq!(
            newest(ledger.conn()).expect("scan"),
            newest_since(ledger.conn(), Seen::default()).expect("full scan")
        );
    }

    #[test]
    fn the_mark_reads_back_as_saved() {
        let mut ledger = Ledger::open(Path::new(":memory:"), Site::default()).expect("ledger");
        assert_eq!(load_mark(ledger.conn()).expect("load"), None);
        let mark = Mark {
            wall: T,
            boot_ms: 123_456,
            boot_id: "2f1c".into(),
        };
        ledger.write(|c, _| save_mark(c, &mark)).expect("save");
        assert_eq!(load_mark(ledger.conn()).expect("load"), Some(mark));
    }
}
