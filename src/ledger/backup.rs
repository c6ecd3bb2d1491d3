//! Backups of the ledger: a consistent copy of the live file taken while
//! the daemon writes (`VACUUM INTO` from one read transaction: a snapshot,
//! compacted), checked whole before it counts (every check of
//! `tallyd check-ledger`: SQLite's `integrity_check`, the append-only
//! triggers, lots and usages against their rows, the hash chains), written
//! 0600 under a temporary name and given its own name ([`name`]) only once
//! it passed. Retention removes the oldest beyond `keep`, only after a new
//! backup passed. [`restore`] puts a checked backup in place of the ledger.

pub mod name;
mod restore;

pub use restore::{restore, RestoreError, Restored};

use super::audit::{audit, Verdict};
use super::files::{FILE_MODE, FOLDER_MODE};
use super::schema::{self, SCHEMA_VERSION};
use super::{IoCause, LedgerError, SqliteCause, Ts};
use rusqlite::{Connection, OpenFlags};
use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Why a backup was not written, or a file is not a usable backup.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no ledger at {0}")]
    NoLedger(PathBuf),
    #[error("{}: {what}", .path.display())]
    Files {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: IoCause,
    },
    #[error("cannot copy the ledger {} into {}", .ledger.display(), .to.display())]
    Copy {
        ledger: PathBuf,
        to: PathBuf,
        #[source]
        source: SqliteCause,
    },
    #[error("a backup named {} already exists", .0.display())]
    Exists(PathBuf),
    /// Opening or reading it failed (its schema is too new, it is no
    /// SQLite file): the ledger's error names the file.
    #[error(transparent)]
    Ledger(LedgerError),
    #[error("the backup {} failed its check: {reasons}", .path.display())]
    Failed { path: PathBuf, reasons: String },
}

fn files(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.to_path_buf();
    move |e| BackupError::Files {
        path,
        what,
        source: IoCause(e),
    }
}

/// Where backups go when the config does not say: `backups/` beside the
/// ledger.
pub fn default_dir(ledger: &Path) -> PathBuf {
    ledger
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("backups")
}

/// Where backups of `ledger` go: `configured`, else [`default_dir`].
pub fn dir(configured: Option<&Path>, ledger: &Path) -> PathBuf {
    configured.map_or_else(|| default_dir(ledger), Path::to_path_buf)
}

/// A backup that passed its check.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: PathBuf,
    pub schema: i64,
    pub bytes: u64,
    /// From the start of the copy to the end of the check.
    pub seconds: f64,
    /// Every check it passed.
    pub verdicts: Vec<Verdict>,
}

/// Takes a backup of the ledger at `ledger` into `dir` (created 0700 if
/// missing), named for `now`: a read-only connection's snapshot, so it runs
/// beside the daemon.
pub fn take(ledger: &Path, dir: &Path, now: Ts) -> Result<Written, BackupError> {
    if !ledger.exists() {
        return Err(BackupError::NoLedger(ledger.to_path_buf()));
    }
    let conn = Connection::open_with_flags(
        ledger,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| BackupError::Ledger(LedgerError::from(e).at(ledger)))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| BackupError::Ledger(LedgerError::from(e).at(ledger)))?;
    take_from(&conn, ledger, dir, now)
}

/// As [`take`], from a connection already open on `ledger` (the writer's,
/// before a migration).
pub(super) fn take_from(
    conn: &Connection,
    ledger: &Path,
    dir: &Path,
    now: Ts,
) -> Result<Written, BackupError> {
    let started = Instant::now();
    let schema = user_version(conn).map_err(|e| BackupError::Ledger(e.at(ledger)))?;
    DirBuilder::new()
        .recursive(true)
        .mode(FOLDER_MODE)
        .create(dir)
        .map_err(files(dir, "cannot create the backup folder"))?;
    let name = name::format(&name::stem(ledger), now, schema);
    let target = dir.join(&name);
    if target.exists() {
        return Err(BackupError::Exists(target));
    }
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = copy_into(conn, ledger, &tmp).and_then(|()| check(&tmp));
    let checked = match written {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    // A hard link fails if the name is taken; a rename would replace it.
    let placed = std::fs::hard_link(&tmp, &target);
    let _ = std::fs::remove_file(&tmp);
    match placed {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(BackupError::Exists(target))
        }
        other => other.map_err(files(&target, "cannot name the backup"))?,
    }
    sync_dir(dir)?;
    Ok(Written {
        path: target,
        schema: checked.schema,
        bytes: checked.bytes,
        seconds: started.elapsed().as_secs_f64(),
        verdicts: checked.verdicts,
    })
}

/// `VACUUM INTO` a new, empty 0600 file at `to` (SQLite keeps its mode),
/// then flushed to disk.
fn copy_into(conn: &Connection, ledger: &Path, to: &Path) -> Result<(), BackupError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(to)
        .map_err(files(to, "cannot create the backup file"))?;
    let target = to.to_str().ok_or_else(|| BackupError::Files {
        path: to.to_path_buf(),
        what: "the backup's path is not UTF-8",
        source: IoCause(std::io::Error::from(std::io::ErrorKind::InvalidInput)),
    })?;
    conn.execute("VACUUM INTO ?1", [target])
        .map_err(|e| BackupError::Copy {
            ledger: ledger.to_path_buf(),
            to: to.to_path_buf(),
            source: SqliteCause::new(e),
        })?;
    File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(files(to, "cannot flush the backup to disk"))
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(files(dir, "cannot flush the folder to disk"))
}

fn user_version(conn: &Connection) -> Result<i64, LedgerError> {
    Ok(super::schema::version(conn)?)
}

/// A file that passed the check.
#[derive(Debug, Clone)]
pub struct Checked {
    pub schema: i64,
    pub bytes: u64,
    pub verdicts: Vec<Verdict>,
}

/// Checks the file at `path` as a backup: a schema this build can run,
/// and every check of `tallyd check-ledger` passed (for a schema older
/// than the hash chains, all but the chains). Opens it read-only.
pub fn check(path: &Path) -> Result<Checked, BackupError> {
    check_named(path, path)
}

/// As [`check`], naming `shown` in its errors (the file a copy was made of).
pub(super) fn check_named(path: &Path, shown: &Path) -> Result<Checked, BackupError> {
    let bytes = std::fs::metadata(path)
        .map_err(files(shown, "cannot read the backup"))?
        .len();
    if bytes == 0 {
        return Err(BackupError::Failed {
            path: shown.to_path_buf(),
            reasons: "the file is empty".into(),
        });
    }
    let named = |e: rusqlite::Error| BackupError::Ledger(LedgerError::from(e).at(shown));
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(named)?;
    let schema = match user_version(&conn) {
        Ok(v) => v,
        Err(e) => {
            return Err(BackupError::Failed {
                path: shown.to_path_buf(),
                reasons: crate::error_chain(&e),
            })
        }
    };
    if schema > SCHEMA_VERSION {
        return Err(BackupError::Ledger(
            LedgerError::TooNew {
                found: schema,
                supported: SCHEMA_VERSION,
            }
            .at(shown),
        ));
    }
    let verdicts = audit(&conn);
    let reasons = failures(&verdicts, schema);
    if !reasons.is_empty() {
        return Err(BackupError::Failed {
            path: shown.to_path_buf(),
            reasons: reasons.join("; "),
        });
    }
    Ok(Checked {
        schema,
        bytes,
        verdicts,
    })
}

/// The failed checks that count against a backup of schema `schema`: all
/// of them, except the hash chains of a ledger that predates them.
fn failures(verdicts: &[Verdict], schema: i64) -> Vec<String> {
    verdicts
        .iter()
        .filter(|v| !v.ok)
        .filter(|v| !(schema < schema::CHAINED && v.check.ends_with(" chain")))
        .map(|v| format!("{}: {}", v.check, v.detail))
        .collect()
}

/// A backup found in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub path: PathBuf,
    pub name: String,
    pub taken: Ts,
    pub schema: i64,
    pub bytes: u64,
}

/// The backups of `ledger` in `dir`, oldest first; none if `dir` is
/// missing. Not checked: [`check`] does that.
pub fn list(ledger: &Path, dir: &Path) -> Result<Vec<Listed>, BackupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(files(dir, "cannot read the backup folder")(e)),
    };
    let stem = name::stem(ledger);
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(files(dir, "cannot read the backup folder"))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(named) = name::parse(&stem, &file_name) else {
            continue;
        };
        let meta = entry
            .metadata()
            .map_err(files(&entry.path(), "cannot read the backup"))?;
        if !meta.is_file() {
            continue;
        }
        out.push(Listed {
            path: entry.path(),
            name: file_name,
            taken: named.taken,
            schema: named.schema,
            bytes: meta.len(),
        });
    }
    out.sort_by(|a, b| (a.taken, &a.name).cmp(&(b.taken, &b.name)));
    Ok(out)
}

/// Removes the oldest backups of `ledger` in `dir` beyond the newest
/// `keep`; returns what it removed. Call it only after a new backup passed
/// its check.
pub fn prune(ledger: &Path, dir: &Path, keep: usize) -> Result<Vec<PathBuf>, BackupError> {
    let found: Vec<(PathBuf, name::Named)> = list(ledger, dir)?
        .into_iter()
        .map(|l| {
            (
                l.path,
                name::Named {
                    taken: l.taken,
                    schema: l.schema,
                },
            )
        })
        .collect();
    let mut removed = Vec::new();
    for path in name::beyond_keep(&found, keep) {
        std::fs::remove_file(&path).map_err(files(&path, "cannot remove an old backup"))?;
        removed.push(path);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests;
