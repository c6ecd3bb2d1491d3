//! Backups and restore (issue 15): a backup taken by `tallyd backup` while
//! the daemon charges a burst of jobs from a real ippeveprinter is
//! consistent; restored (refused while the daemon runs), it starts a daemon
//! that charges every job once; damaged backups are refused with their
//! reason; the daemon's scheduled backups run on the test clock, keep
//! exactly `keep`, and a failing streak is logged once.

use crate::support::daemon::{lines_with, PrinterSpec, Site};
use crate::support::peers::Peers;
use rusqlite::{Connection, OpenFlags};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
/// The schema version this build writes (backups carry it in their name).
const SCHEMA: i64 = tallyd::ledger::schema::SCHEMA_VERSION;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").mode() & 0o777
}

/// The backups in `dir`, by name.
fn backups(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The path after `backup written: ` in `tallyd backup`'s output.
fn written(out: &str) -> PathBuf {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("backup written: "))
        .unwrap_or_else(|| panic!("no backup line in {out}"));
    PathBuf::from(line)
}

/// Usages in the ledger `path` and those without any history or overage
/// row (a charge half written).
fn usages_and_orphans(path: &Path) -> (i64, i64) {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
    (
        count("SELECT COUNT(*) FROM usages"),
        count(
            "SELECT COUNT(*) FROM usages u WHERE u.amount > 0
               AND NOT EXISTS (SELECT 1 FROM history h WHERE h.usage_id = u.id)
               AND NOT EXISTS (SELECT 1 FROM overage o WHERE o.usage_id = u.id)",
        ),
    )
}

#[test]
fn a_backup_during_a_burst_of_charges_is_consistent_and_restores_to_a_daemon_that_charges_each_job_once(
) {
    let _serial = crate::support::serial();
    let peers = Peers::new();
    let eve = peers.eve("lobby");
    let site = Site::new(&[PrinterSpec::direct("lobby", &eve.uri(), "200ms")]);
    let mut daemon = site.start();
    daemon.wait_ready();

    // 16 jobs of 1 impression from alice (10c each) while a backup is taken.
    const BURST: usize = 16;
    let backup = std::thread::scope(|s| {
        let burst = s.spawn(|| {
            for _ in 0..BURST {
                eve.submit("alice", 1);
            }
        });
        site.wait_usages("lobby", 3, LIMIT);
        let out = site.cli(&["backup"]);
        burst.join().expect("burst");
        out
    });
    site.wait_usages("lobby", BURST, LIMIT);
    let file = written(&backup);
    let dir = site.path("backups");
    assert_eq!(file.parent(), Some(dir.as_path()), "{backup}");
    assert_eq!((mode(&file), mode(&dir)), (0o600, 0o700));
    let (in_backup, orphans) = usages_and_orphans(&file);
    println!("{in_backup} of {BURST} usages in the backup");
    // At least the 3 charged before it began; all 16 when a slow machine
    // let the burst finish first (consistency is what is checked).
    assert!(
        (3..=BURST as i64).contains(&in_backup),
        "taken during the burst: {in_backup} usages in the backup"
    );
    assert_eq!(orphans, 0, "every usage in the backup has its rows");
    // check-ledger on the backup: every check passes.
    let check = site.cli(&["--ledger", file.to_str().expect("utf-8"), "check-ledger"]);
    assert_eq!(
        check.lines().filter(|l| l.starts_with("ok ")).count(),
        12,
        "{check}"
    );
    let list = site.cli(&["backup", "--list"]);
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        list.lines()
            .any(|l| l.starts_with(&name) && l.contains(&format!(" {SCHEMA} "))),
        "{list}"
    );

    // Refused while the daemon holds the ledger, naming its pid.
    let refused = site.cli_fails(&["restore", file.to_str().unwrap()]);
    assert!(
        refused.contains("refused: stop the daemon first")
            && refused.contains(&format!("(pid {})", daemon.pid())),
        "{refused}"
    );
    daemon.stop();
    let before = site.printing_balance("alice");
    assert_eq!(before, 1000 - 10 * BURST as i64);

    let restored = site.cli(&["restore", file.to_str().unwrap()]);
    println!("{restored}");
    assert!(restored.contains("moved aside: "), "{restored}");
    let aside: Vec<String> = backups(site.dir())
        .into_iter()
        .filter(|n| n.starts_with("ledger.db.replaced-"))
        .collect();
    assert!(!aside.is_empty(), "the old ledger kept: {aside:?}");
    assert_eq!(mode(&site.path("ledger.db")), 0o600);
    assert_eq!(usages_and_orphans(&site.path("ledger.db")).0, in_backup);

    // The daemon on the restored ledger charges the jobs the backup did not
    // have (the printer still lists them), and the next job, each once.
    let daemon = site.start();
    daemon.wait_ready();
    site.wait_usages("lobby", BURST, LIMIT);
    eve.submit("alice", 2);
    site.wait_usages("lobby", BURST + 1, LIMIT);
    std::thread::sleep(Duration::from_millis(1000));
    let usages = site.usages("lobby");
    let keys: std::collections::HashSet<&String> = usages.iter().map(|u| &u.0).collect();
    assert_eq!(
        (usages.len(), keys.len()),
        (BURST + 1, BURST + 1),
        "{}",
        daemon.log()
    );
    assert_eq!(site.printing_balance("alice"), before - 20);
    let check = site.cli(&["check-ledger"]);
    assert_eq!(
        check.lines().filter(|l| l.starts_with("ok ")).count(),
        12,
        "{check}"
    );
}

/// A site whose ledger has a grant and two charges, and one backup of it.
fn site_with_a_backup() -> (Site, PathBuf) {
    let site = Site::new(&[]);
    site.cli(&[
        "grant", "alice", "--name", "Alice", "--amount", "20", "--reason", "welcome",
    ]);
    site.cli(&["charge", "alice", "--amount", "5", "--reason", "posters"]);
    site.cli(&["charge", "alice", "--amount", "30", "--reason", "banner"]);
    let out = site.cli(&["backup"]);
    (site, written(&out))
}

#[test]
fn a_truncated_byte_flipped_tampered_or_newer_backup_is_refused_with_its_reason() {
    let _serial = crate::support::serial();
    let (site, good) = site_with_a_backup();
    let bytes = std::fs::read(&good).expect("read");
    let ledger_before = std::fs::read(site.path("ledger.db")).expect("ledger");
    let refused = |name: &str, content: &[u8]| -> String {
        let path = site.path(name);
        std::fs::write(&path, content).expect("write");
        let err = site.cli_fails(&["restore", path.to_str().unwrap()]);
        println!("{name}: {err}");
        err
    };
    let truncated = refused("truncated.db", &bytes[..bytes.len() / 2]);
    assert!(
        truncated.contains("refused") && truncated.contains("truncated.db"),
        "{truncated}"
    );

    let mut flipped = bytes.clone();
    let page = usize::from(u16::from_be_bytes([flipped[16], flipped[17]]));
    // Page 3's b-tree header claims 65535 cells.
    flipped[page * 2 + 3] = 0xff;
    flipped[page * 2 + 4] = 0xff;
    let flipped = refused("flipped.db", &flipped);
    assert!(
        flipped.contains("failed its check: integrity_check: "),
        "{flipped}"
    );

    // A history row edited with its lot, as someone with the file could:
    // the lots agree, the chain does not.
    let tampered = site.path("tampered.db");
    std::fs::write(&tampered, &bytes).expect("copy");
    Connection::open(&tampered)
        .expect("open")
        .execute_batch(
            "DROP TRIGGER history_no_update;
             UPDATE history SET delta = delta + 100 WHERE id = 2;
             UPDATE lots SET remaining = remaining + 100 WHERE id = 1;
             CREATE TRIGGER history_no_update BEFORE UPDATE ON history
                 BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;",
        )
        .expect("tamper");
    let err = site.cli_fails(&["restore", tampered.to_str().unwrap()]);
    println!("tampered: {err}");
    assert!(
        err.contains("history chain: history row 2 does not match its hash"),
        "{err}"
    );

    let newer = site.path("newer.db");
    std::fs::write(&newer, &bytes).expect("copy");
    Connection::open(&newer)
        .expect("open")
        .execute_batch("PRAGMA user_version = 99")
        .expect("v99");
    let err = site.cli_fails(&["restore", newer.to_str().unwrap()]);
    println!("newer: {err}");
    assert!(
        err.contains(&format!(
            "schema version 99 is newer than this tallyd's ({SCHEMA})"
        )),
        "{err}"
    );

    // Nothing was moved or changed.
    assert_eq!(
        std::fs::read(site.path("ledger.db")).unwrap(),
        ledger_before
    );
    assert!(!backups(site.dir())
        .iter()
        .any(|n| n.contains("replaced") || n.contains("restoring")));
    // The good one restores.
    let out = site.cli(&["restore", good.to_str().unwrap()]);
    assert!(
        out.starts_with(&format!("restored {}", good.display())),
        "{out}"
    );
}

/// A config `[backup]` section, and the start of the minute about two
/// hours from now (what `at` is set to) in unix seconds.
fn two_hours_ahead() -> (String, i64) {
    let due = (chrono::Utc::now().timestamp() + 7200) / 60 * 60;
    let at = chrono::DateTime::from_timestamp(due, 0)
        .unwrap()
        .format("%H:%M")
        .to_string();
    (at, due)
}

fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .unwrap()
        .to_rfc3339()
}

#[test]
fn scheduled_backups_run_on_the_test_clock_and_keep_exactly_keep() {
    let _serial = crate::support::serial();
    let site = Site::new(&[]);
    let (at, due) = two_hours_ahead();
    site.write_config_with(
        &[],
        &format!("\n[backup]\nevery = \"24h\"\nkeep = 2\nat = \"{at}\"\n"),
    );
    site.cli(&[
        "grant", "alice", "--name", "Alice", "--amount", "20", "--reason", "welcome",
    ]);
    // Two earlier backups, on the schedule's last two slots.
    for days in [2, 1] {
        site.cli_at(&rfc3339(due - days * 86_400), &["backup"]);
    }
    let dir = site.path("backups");
    let seeded = backups(&dir);
    assert_eq!(seeded.len(), 2, "{seeded:?}");
    let daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("backups scheduled", LIMIT);
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(backups(&dir), seeded, "nothing due before {at}");

    // Two hours pass: the backup at `at` is taken, the oldest removed.
    site.set_clock_offset(7200 + 60);
    daemon.wait_log("backup written", LIMIT);
    daemon.wait_log("old backup removed", LIMIT);
    let now = backups(&dir);
    assert_eq!(now.len(), 2, "{now:?}");
    assert_eq!(now[0], seeded[1], "the newer seeded one kept");
    let new = dir.join(&now[1]);
    assert_eq!(mode(&new), 0o600);
    let log = daemon.log();
    let line = lines_with(&log, &["backup written", "reason=scheduled"]);
    assert_eq!(line.len(), 1, "{log}");
    for field in [
        "bytes=",
        "seconds=",
        &format!("schema={SCHEMA}"),
        &format!("file={}", new.display()),
    ] {
        assert!(line[0].contains(field), "{field} in {}", line[0]);
    }
    // A day later, the next; still two kept.
    site.set_clock_offset(7200 + 60 + 86_400);
    let start = std::time::Instant::now();
    while lines_with(&daemon.log(), &["backup written"]).len() < 2 {
        assert!(start.elapsed() < LIMIT, "{}", daemon.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let later = backups(&dir);
    assert_eq!(later.len(), 2, "{later:?}");
    assert_eq!(later[0], now[1]);
    assert_eq!(lines_with(&daemon.log(), &["old backup removed"]).len(), 2);
}

#[test]
fn a_failing_backup_is_an_error_once_and_its_recovery_one_line() {
    let _serial = crate::support::serial();
    let site = Site::new(&[]);
    let (at, _) = two_hours_ahead();
    // The folder cannot be created: a file is in its way.
    site.write_config_with(
        &[],
        &format!("\n[backup]\ndir = \"blocked/backups\"\nat = \"{at}\"\n"),
    );
    std::fs::write(site.path("blocked"), b"not a folder").expect("blocker");
    let daemon = site.start();
    daemon.wait_ready();
    // The first slot is set from the clock when the schedule starts, which
    // may be after READY: moved before that, the clock would set tomorrow's.
    daemon.wait_log("backups scheduled", LIMIT);
    site.set_clock_offset(7200 + 60);
    daemon.wait_log("backup failed", LIMIT);
    // Retried an hour later: still failing, not logged again.
    site.set_clock_offset(7200 + 60 + 3600 + 60);
    std::thread::sleep(Duration::from_secs(7));
    let log = daemon.log();
    assert_eq!(
        lines_with(&log, &["<3>", "backup failed"]).len(),
        1,
        "{log}"
    );
    assert!(
        lines_with(
            &log,
            &[
                "backup failed",
                "blocked/backups",
                "cannot create the backup folder"
            ]
        )
        .len()
            == 1,
        "{log}"
    );
    std::fs::remove_file(site.path("blocked")).expect("unblock");
    site.set_clock_offset(7200 + 60 + 2 * 3600 + 120);
    daemon.wait_log("backups work again", LIMIT);
    let log = daemon.log();
    assert_eq!(lines_with(&log, &["backup written"]).len(), 1, "{log}");
    assert_eq!(
        lines_with(&log, &["backups work again", "failed=2"]).len(),
        1,
        "{log}"
    );
}

#[test]
fn a_daemon_upgrading_an_older_ledger_backs_it_up_before_the_migration() {
    let _serial = crate::support::serial();
    let site = Site::new(&[]);
    site.cli(&[
        "grant", "alice", "--name", "Alice", "--amount", "20", "--reason", "welcome",
    ]);
    site.cli(&["charge", "alice", "--amount", "5", "--reason", "posters"]);
    // Back to schema 8, as a ledger an older tallyd wrote.
    Connection::open(site.path("ledger.db"))
        .expect("open")
        .execute_batch(
            "DROP TRIGGER history_no_update; DROP TRIGGER usages_no_update;
             DROP TRIGGER overage_no_update;
             ALTER TABLE history DROP COLUMN hash; ALTER TABLE usages DROP COLUMN hash;
             ALTER TABLE overage DROP COLUMN hash; DROP TABLE chain_tips;
             CREATE TRIGGER history_no_update BEFORE UPDATE ON history
                 BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
             CREATE TRIGGER usages_no_update BEFORE UPDATE ON usages
                 BEGIN SELECT RAISE(ABORT, 'usages are append-only'); END;
             CREATE TRIGGER overage_no_update BEFORE UPDATE ON overage
                 BEGIN SELECT RAISE(ABORT, 'overage is append-only'); END;
             PRAGMA user_version = 8;",
        )
        .expect("schema 8");
    let mut daemon = site.start();
    daemon.wait_ready();
    let log = daemon.log();
    let line = lines_with(
        &log,
        &["backup written", "reason=before-migration", "schema=8"],
    );
    assert_eq!(line.len(), 1, "{log}");
    let kept = backups(&site.path("backups"));
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].ends_with("-v8.db"), "{kept:?}");
    daemon.stop();
    // The backup is the schema-8 ledger, and restores (the daemon then
    // migrates it again, with a backup again).
    let file = site.path("backups").join(&kept[0]);
    let out = site.cli(&["restore", file.to_str().unwrap()]);
    assert!(out.contains("schema 8, checked"), "{out}");
}
