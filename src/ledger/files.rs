//! The ledger's files on disk: only the service may read them. The ledger's
//! folder is created 0700 and the ledger, its `-wal` and `-shm` are 0600,
//! whatever the umask (card ids and money are in them).

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of the ledger's folder when tallyd creates it.
pub const FOLDER_MODE: u32 = 0o700;
/// Mode of the ledger and its `-wal` and `-shm` files.
pub const FILE_MODE: u32 = 0o600;

/// Whether `path` names a file at all (not SQLite's `:memory:`).
fn on_disk(path: &Path) -> bool {
    path.as_os_str() != ":memory:" && !path.as_os_str().is_empty()
}

/// Creates the ledger's folder (and any missing parent) with mode 0700. A
/// folder that exists keeps its mode: an operator may have chosen it.
pub fn prepare_folder(ledger: &Path) -> io::Result<()> {
    match ledger.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) if on_disk(ledger) && !dir.exists() => DirBuilder::new()
            .recursive(true)
            .mode(FOLDER_MODE)
            .create(dir),
        _ => Ok(()),
    }
}

/// Creates the ledger file 0600 before SQLite opens it (SQLite gives its
/// `-wal` and `-shm` files the mode of the ledger), and brings an existing
/// ledger and its companions to 0600.
pub fn restrict(ledger: &Path) -> io::Result<()> {
    if !on_disk(ledger) {
        return Ok(());
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(ledger)?;
    for path in companions(ledger) {
        match std::fs::set_permissions(&path, Permissions::from_mode(FILE_MODE)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

/// Why the daemon cannot have the ledger to itself.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the ledger {} is in use by another `tallyd run` (pid {})", .ledger.display(), .pid.map_or("unknown".to_string(), |p| p.to_string()))]
    Held { ledger: PathBuf, pid: Option<u32> },
    /// The lock file beside the ledger (`lock`) cannot be created,
    /// locked or written.
    #[error("ledger {}: cannot take its lock file `{}`", .ledger.display(), .lock.file_name().unwrap_or_default().to_string_lossy())]
    Io {
        ledger: PathBuf,
        lock: PathBuf,
        #[source]
        source: super::IoCause,
    },
}

/// The daemon's hold on its ledger: an OS lock on `LEDGER.lock`, released
/// when this value is dropped or the process dies (also by SIGKILL). CLI
/// commands do not take it: they work beside the daemon.
#[derive(Debug)]
pub struct DaemonLock {
    _file: std::fs::File,
}

/// Takes the daemon's lock on `ledger`, or says which process holds it.
pub fn lock_for_daemon(ledger: &Path) -> Result<DaemonLock, LockError> {
    use std::io::{Read, Seek, Write};
    let mut name = ledger.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    let io = |source| LockError::Io {
        ledger: ledger.to_path_buf(),
        lock: path.clone(),
        source: super::IoCause(source),
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(LockError::Held {
                ledger: ledger.to_path_buf(),
                pid: text.trim().parse().ok(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    Ok(DaemonLock { _file: file })
}

/// The ledger, its `-wal` and its `-shm`.
pub fn companions(ledger: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = ledger.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [ledger.to_path_buf(), with("-wal"), with("-shm")]
}

/// `ledger.db.restored`, written by `tallyd restore`: until a chain site's
/// first hello after it, the ledger may lack what the centre holds (see
/// [`outbox_import`](super::outbox_import)).
pub fn restored_mark(ledger: &Path) -> PathBuf {
    let mut name = ledger.as_os_str().to_owned();
    name.push(".restored");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_second_daemon_lock_is_refused_with_the_holders_pid() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let ledger = tmp.path().join("ledger.db");
        let first = lock_for_daemon(&ledger).expect("first lock");
        let second = lock_for_daemon(&ledger).expect_err("second lock");
        let text = second.to_string();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("ledger.db"), "{text}");
        drop(first);
        lock_for_daemon(&ledger).expect("free again");
    }

    #[test]
    fn the_folder_is_0700_and_the_files_0600_whatever_the_umask() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let ledger = tmp.path().join("var/lib/tallyd/ledger.db");
        prepare_folder(&ledger).expect("folder");
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").mode() & 0o777;
        assert_eq!(mode(ledger.parent().expect("parent")), 0o700);
        // An old ledger left world-readable is brought to 0600, its WAL too.
        std::fs::write(&ledger, b"").expect("ledger");
        std::fs::set_permissions(&ledger, Permissions::from_mode(0o644)).expect("chmod");
        let wal = companions(&ledger)[1].clone();
        std::fs::write(&wal, b"").expect("wal");
        std::fs::set_permissions(&wal, Permissions::from_mode(0o666)).expect("chmod");
        restrict(&ledger).expect("restrict");
        assert_eq!(mode(&ledger), 0o600);
        assert_eq!(mode(&wal), 0o600);
    }
}
