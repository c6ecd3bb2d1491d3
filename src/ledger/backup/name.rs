//! What a backup's file is called, and which backups retention removes:
//! pure functions. A backup of `ledger.db` taken at 03:00:00 UTC on
//! 30 November 2026 from a schema 9 ledger is
//! `ledger-20261130T030000Z-v9.db`: the ledger's file stem, the time in UTC,
//! the schema version.

use crate::ledger::Ts;
use chrono::NaiveDateTime;
use std::path::Path;

const TIME: &str = "%Y%m%dT%H%M%SZ";

/// What a backup's name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// When its snapshot was taken (unix seconds, UTC).
    pub taken: Ts,
    /// Its schema version.
    pub schema: i64,
}

/// The stem backups of `ledger` are named by (`ledger` for `ledger.db`).
pub fn stem(ledger: &Path) -> String {
    ledger
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "ledger".into())
}

/// The name of a backup of a ledger with stem `stem`.
pub fn format(stem: &str, taken: Ts, schema: i64) -> String {
    let time = crate::clock::utc(taken).format(TIME);
    format!("{stem}-{time}-v{schema}.db")
}

/// What the name `name` says, if it is a backup of a ledger with `stem`.
pub fn parse(stem: &str, name: &str) -> Option<Named> {
    let rest = name.strip_prefix(stem)?.strip_prefix('-')?;
    let (time, schema) = rest.strip_suffix(".db")?.rsplit_once("-v")?;
    let schema: i64 = schema.parse().ok().filter(|v| *v >= 0)?;
    let taken = NaiveDateTime::parse_from_str(time, TIME).ok()?;
    Some(Named {
        taken: taken.and_utc().timestamp(),
        schema,
    })
}

/// Which of `backups` (name and what it says) are beyond the newest `keep`:
/// the oldest first (by time, then name).
pub fn beyond_keep<T: Clone + Ord>(backups: &[(T, Named)], keep: usize) -> Vec<T> {
    let mut sorted: Vec<&(T, Named)> = backups.iter().collect();
    sorted.sort_by(|a, b| (a.1.taken, &a.0).cmp(&(b.1.taken, &b.0)));
    let excess = sorted.len().saturating_sub(keep);
    sorted[..excess].iter().map(|(t, _)| t.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_says_its_time_in_utc_and_its_schema() {
        // 2026-11-30T03:00:00Z.
        let name = format("ledger", 1_796_007_600, 9);
        assert_eq!(name, "ledger-20261130T030000Z-v9.db");
        assert_eq!(
            parse("ledger", &name),
            Some(Named {
                taken: 1_796_007_600,
                schema: 9
            })
        );
        assert_eq!(stem(Path::new("/var/lib/tallyd/ledger.db")), "ledger");
        assert_eq!(stem(Path::new("site-a.sqlite")), "site-a");
    }

    #[test]
    fn other_files_are_not_backups() {
        for other in [
            "ledger.db",
            "ledger-20261130T030000Z-v9.db-wal",
            ".ledger-20261130T030000Z-v9.db.tmp-42",
            "other-20261130T030000Z-v9.db",
            "ledger-20261130-v9.db",
            "ledger-20261130T030000Z-vx.db",
            "ledger.db.replaced-20261130T030000Z",
        ] {
            assert_eq!(parse("ledger", other), None, "{other}");
        }
    }

    #[test]
    fn retention_removes_the_oldest_beyond_keep() {
        let at = |t| Named {
            taken: t,
            schema: 9,
        };
        let backups = vec![("c", at(30)), ("a", at(10)), ("d", at(40)), ("b", at(20))];
        assert_eq!(beyond_keep(&backups, 2), vec!["a", "b"]);
        assert_eq!(beyond_keep(&backups, 4), Vec::<&str>::new());
        assert_eq!(beyond_keep(&backups, 9), Vec::<&str>::new());
        assert_eq!(beyond_keep(&backups, 0), vec!["a", "b", "c", "d"]);
    }
}
