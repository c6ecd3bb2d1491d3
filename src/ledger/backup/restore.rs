//! `tallyd restore`: a checked backup put in place of the ledger, refused
//! while a daemon holds the ledger. Nothing is deleted: the ledger and its
//! `-wal` and `-shm` are moved aside (`ledger.db.replaced-<time>`, and its
//! `-wal` and `-shm` under the same name, so SQLite can still open them
//! together).

use super::{check_named, files, sync_dir, BackupError};
use crate::ledger::files::{
    companions, lock_for_daemon, prepare_folder, restored_mark, LockError, FILE_MODE,
};
use crate::ledger::Ts;
use std::fs::{OpenOptions, Permissions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a restore did not happen. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("refused: stop the daemon first")]
    Locked(#[source] LockError),
    #[error("refused")]
    Backup(#[source] BackupError),
    #[error("{} already exists; nothing was moved", .0.display())]
    AsideTaken(PathBuf),
}

/// A backup put in place.
#[derive(Debug, Clone)]
pub struct Restored {
    pub from: PathBuf,
    pub ledger: PathBuf,
    pub schema: i64,
    pub bytes: u64,
    /// Where the ledger and its companions were moved (none if there was
    /// no ledger).
    pub moved: Vec<PathBuf>,
}

/// Puts the backup `file` in place of the ledger at `ledger`: checked (a
/// copy of it, beside the ledger, is what is checked and put in place),
/// under the daemon's lock, the old files moved aside with `now` in their
/// names.
pub fn restore(file: &Path, ledger: &Path, now: Ts) -> Result<Restored, RestoreError> {
    let b = RestoreError::Backup;
    if !file.is_file() {
        return Err(b(BackupError::Files {
            path: file.to_path_buf(),
            what: "no such backup file",
            source: crate::ledger::IoCause(std::io::Error::from(std::io::ErrorKind::NotFound)),
        }));
    }
    prepare_folder(ledger).map_err(|e| b(files(ledger, "cannot create its folder")(e)))?;
    // Held until the new ledger is in place: no daemon starts meanwhile.
    let _lock = lock_for_daemon(ledger).map_err(RestoreError::Locked)?;
    let dir = ledger.parent().unwrap_or(Path::new("."));
    let mut tmp_name = ledger.file_name().unwrap_or_default().to_owned();
    tmp_name.push(format!(".restoring-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let placed = copy(file, &tmp).and_then(|()| check_named(&tmp, file));
    let checked = match placed {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(b(e));
        }
    };
    let moved = match move_aside(ledger, now) {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, ledger)
        .map_err(|e| b(files(ledger, "cannot put the backup in place")(e)))?;
    let mark = restored_mark(ledger);
    write_mark(&mark).map_err(|e| b(files(&mark, "cannot mark the ledger restored")(e)))?;
    sync_dir(dir).map_err(b)?;
    Ok(Restored {
        from: file.to_path_buf(),
        ledger: ledger.to_path_buf(),
        schema: checked.schema,
        bytes: checked.bytes,
        moved,
    })
}

/// Writes the restored mark (see [`restored_mark`]): the daemon of a
/// chain site imports what the centre holds and the backup lacks before
/// its printers are polled, then removes it.
fn write_mark(mark: &Path) -> std::io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(mark)?;
    file.sync_all()
}

/// Copies `from` to a new 0600 file `to`, flushed to disk.
fn copy(from: &Path, to: &Path) -> Result<(), BackupError> {
    let mut source = std::fs::File::open(from).map_err(files(from, "cannot read the backup"))?;
    let mut target = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(to)
        .map_err(files(to, "cannot create the restored ledger"))?;
    std::io::copy(&mut source, &mut target).map_err(files(to, "cannot copy the backup"))?;
    target
        .set_permissions(Permissions::from_mode(FILE_MODE))
        .and_then(|()| target.sync_all())
        .map_err(files(to, "cannot flush the restored ledger to disk"))
}

/// `ledger.db.replaced-<time>` for `ledger.db`; its `-wal` and `-shm`
/// follow it.
fn aside_name(ledger: &Path, now: Ts) -> PathBuf {
    let mut name = ledger.as_os_str().to_owned();
    name.push(format!(
        ".replaced-{}",
        crate::clock::utc(now).format("%Y%m%dT%H%M%SZ")
    ));
    PathBuf::from(name)
}

/// Moves the ledger and its `-wal` and `-shm` aside, each that exists;
/// refused before anything moves if a name aside is taken.
fn move_aside(ledger: &Path, now: Ts) -> Result<Vec<PathBuf>, RestoreError> {
    let pairs: Vec<(PathBuf, PathBuf)> = companions(ledger)
        .into_iter()
        .zip(companions(&aside_name(ledger, now)))
        .filter(|(from, _)| from.exists())
        .collect();
    if let Some((_, taken)) = pairs.iter().find(|(_, to)| to.exists()) {
        return Err(RestoreError::AsideTaken(taken.clone()));
    }
    let mut moved = Vec::new();
    for (from, to) in pairs {
        std::fs::rename(&from, &to)
            .map_err(|e| RestoreError::Backup(files(&from, "cannot move it aside")(e)))?;
        moved.push(to);
    }
    Ok(moved)
}
