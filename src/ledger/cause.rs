//! What the ledger's file said when it failed, in words and said once:
//! SQLite's message ([`SqliteCause`]) or the system's ([`IoCause`]), and
//! "disk full" when the disk (or the filesystem's quota) is full.
//!
//! Each keeps its error as a value but ends the chain of causes: rusqlite's
//! own cause is SQLite's numeric code, whose text ("Error code 13: database
//! or disk is full") only repeats the message.

use rusqlite::ErrorCode;
use std::fmt;
use std::io;
use std::sync::Arc;

/// How the ledger says a full disk, whoever reported it.
pub const DISK_FULL: &str = "disk full";

/// SQLITE_READONLY_DIRECTORY: the file could be written, its folder not.
const READONLY_DIRECTORY: i32 = 1544;

/// A SQLite error on the ledger. Shared (an `Arc`): one failed commit
/// answers every job of its batch.
#[derive(Debug, Clone)]
pub struct SqliteCause(Arc<rusqlite::Error>);

impl SqliteCause {
    pub fn new(e: rusqlite::Error) -> SqliteCause {
        SqliteCause(Arc::new(e))
    }

    pub fn shared(e: Arc<rusqlite::Error>) -> SqliteCause {
        SqliteCause(e)
    }

    /// The rusqlite error itself.
    pub fn sqlite(&self) -> &rusqlite::Error {
        &self.0
    }

    /// Whether it says the file cannot be used now (full, read-only,
    /// unreadable, locked, damaged) rather than that one operation was wrong.
    pub fn is_file_failure(&self) -> bool {
        matches!(
            self.0.sqlite_error_code(),
            Some(
                ErrorCode::DiskFull
                    | ErrorCode::ReadOnly
                    | ErrorCode::CannotOpen
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::DatabaseCorrupt
                    | ErrorCode::NotADatabase
                    | ErrorCode::PermissionDenied
                    | ErrorCode::FileLockingProtocolFailed
                    | ErrorCode::OutOfMemory
            )
        )
    }
}

impl fmt::Display for SqliteCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            rusqlite::Error::SqliteFailure(code, _) if code.code == ErrorCode::DiskFull => {
                f.write_str(DISK_FULL)
            }
            rusqlite::Error::SqliteFailure(code, _) if code.extended_code == READONLY_DIRECTORY => {
                write!(f, "{} (its folder cannot be written)", self.0)
            }
            other => write!(f, "{other}"),
        }
    }
}

impl std::error::Error for SqliteCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.0 {
            rusqlite::Error::SqliteFailure(..) => None,
            other => other.source(),
        }
    }
}

/// A system error on one of the ledger's files (its folder, its lock).
#[derive(Debug)]
pub struct IoCause(pub io::Error);

impl fmt::Display for IoCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.kind() == io::ErrorKind::StorageFull {
            f.write_str(DISK_FULL)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl std::error::Error for IoCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl From<io::Error> for IoCause {
    fn from(e: io::Error) -> IoCause {
        IoCause(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    fn failure(extended: i32, message: &str) -> SqliteCause {
        SqliteCause::new(rusqlite::Error::SqliteFailure(
            ffi::Error::new(extended),
            Some(message.into()),
        ))
    }

    #[test]
    fn a_full_disk_says_disk_full_once() {
        let e = failure(ffi::SQLITE_FULL, "database or disk is full");
        assert_eq!(crate::error_chain(&e), "disk full");
        assert!(e.is_file_failure());
        let io = IoCause(io::Error::from_raw_os_error(28));
        assert_eq!(crate::error_chain(&io), "disk full");
    }

    #[test]
    fn sqlites_message_is_said_once_without_its_code() {
        let e = failure(ffi::SQLITE_READONLY, "attempt to write a readonly database");
        assert_eq!(
            crate::error_chain(&e),
            "attempt to write a readonly database"
        );
        let e = failure(READONLY_DIRECTORY, "attempt to write a readonly database");
        assert_eq!(
            crate::error_chain(&e),
            "attempt to write a readonly database (its folder cannot be written)"
        );
        let e = failure(ffi::SQLITE_CONSTRAINT, "UNIQUE constraint failed: lots.key");
        assert!(!e.is_file_failure());
    }
}
