use super::*;
use crate::ledger::lots::{self, GrantRequest};
use crate::ledger::schema::SCHEMA_VERSION;
use crate::ledger::{Ledger, Origin, Payable, Site, SourceKind, UsageRequest};
use std::os::unix::fs::MetadataExt;

/// A ledger at `path` with a grant and two debits (one beyond credit).
fn ledger_at(path: &Path) -> Ledger {
    let mut ledger = Ledger::open(path, Site::default()).expect("ledger");
    ledger
        .write(|c, _| {
            lots::ensure_member(c, "alice", "Alice", 0)?;
            lots::grant(
                c,
                &GrantRequest {
                    member: "alice".into(),
                    credit: "printing".into(),
                    amount: 1000,
                    valid_from: 0,
                    expires_at: None,
                    source: SourceKind::Adjustment,
                    source_key: "g1".into(),
                    note: "welcome".into(),
                    at: 10,
                },
            )
        })
        .expect("grant");
    for (key, amount) in [("d1", 300), ("d2", 900)] {
        ledger
            .debit(&UsageRequest {
                key: key.into(),
                member: Some("alice".into()),
                origin: Origin::Manual,
                payable: Payable::Printing,
                amount,
                detail: "{}".into(),
                at: 20,
            })
            .expect("debit");
    }
    ledger
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").mode() & 0o777
}

#[test]
fn a_backup_is_checked_named_and_0600_in_a_0700_folder() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("ledger.db");
    let _live = ledger_at(&path);
    let dir = default_dir(&path);
    let w = take(&path, &dir, 1_796_007_600).expect("backup");
    assert_eq!(
        w.path,
        tmp.path().join(format!(
            "backups/ledger-20261130T030000Z-v{SCHEMA_VERSION}.db"
        ))
    );
    let modes = (w.schema, mode(&w.path), mode(&dir));
    assert_eq!(modes, (SCHEMA_VERSION, 0o600, 0o700));
    assert!(w.verdicts.iter().all(|v| v.ok), "{:?}", w.verdicts);
    // Nothing else is left in the folder: no temporary file, no journal.
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(names.len(), 1);
    let listed = list(&path, &dir).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].taken, listed[0].bytes), (1_796_007_600, w.bytes));
    // The same second again is refused, not overwritten.
    let again = take(&path, &dir, 1_796_007_600).expect_err("taken");
    assert!(matches!(again, BackupError::Exists(_)), "{again:?}");
}

#[test]
fn a_damaged_file_fails_its_check_with_the_reason() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("ledger.db");
    let _live = ledger_at(&path);
    let w = take(&path, &default_dir(&path), 100).expect("backup");
    let bytes = std::fs::read(&w.path).expect("read");
    let truncated = tmp.path().join("truncated.db");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    let e = crate::error_chain(&check(&truncated).expect_err("truncated"));
    assert!(e.contains("truncated.db"), "{e}");
    let empty = tmp.path().join("empty.db");
    std::fs::write(&empty, b"").expect("write");
    let e = crate::error_chain(&check(&empty).expect_err("empty"));
    assert!(e.contains("the file is empty"), "{e}");
}

#[test]
fn retention_keeps_the_newest_keep() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("ledger.db");
    let _live = ledger_at(&path);
    let dir = default_dir(&path);
    for t in 1..=5 {
        take(&path, &dir, t * 3600).expect("backup");
    }
    let removed = prune(&path, &dir, 3).expect("prune");
    assert_eq!(removed.len(), 2);
    let left: Vec<Ts> = list(&path, &dir).unwrap().iter().map(|l| l.taken).collect();
    assert_eq!(left, [3 * 3600, 4 * 3600, 5 * 3600]);
}

#[test]
fn an_older_schema_is_backed_up_before_it_is_migrated() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("ledger.db");
    let live = ledger_at(&path);
    // Back to schema 8: no hash columns, no tips.
    live.conn()
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
    drop(live);
    let reopened = Ledger::open(&path, Site::default()).expect("migrated");
    let taken = reopened.migration_backup().expect("a backup first");
    assert_eq!(taken.schema, 8);
    let listed = list(&path, &default_dir(&path)).expect("list");
    assert_eq!(listed.len(), 1);
    assert!(listed[0].name.ends_with("-v8.db"), "{listed:?}");
    // Opened again at the current schema: no migration, no backup.
    drop(reopened);
    let again = Ledger::open(&path, Site::default()).expect("open");
    assert!(again.migration_backup().is_none());
}

#[test]
fn restore_moves_the_ledger_aside_and_is_refused_under_the_daemons_lock() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("ledger.db");
    let live = ledger_at(&path);
    let w = take(&path, &default_dir(&path), 100).expect("backup");
    let lock = crate::ledger::files::lock_for_daemon(&path).expect("lock");
    let e = crate::error_chain(&restore(&w.path, &path, 200).expect_err("locked"));
    assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
    drop(lock);
    drop(live);
    let r = restore(&w.path, &path, 1_796_007_600).expect("restored");
    let aside = tmp.path().join("ledger.db.replaced-20261130T030000Z");
    assert_eq!(r.moved.first(), Some(&aside));
    assert!(aside.exists());
    assert_eq!(mode(&path), 0o600);
    Ledger::open(&path, Site::default()).expect("opens");
}
