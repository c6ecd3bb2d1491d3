//! SQLite's `quick_check` of the whole file, timed: what the daemon runs
//! just after it is ready (not before: it reads every page, ~3 s per GB
//! here), on a connection of its own so the writer keeps writing.

use super::{open_for_reading, schema, LedgerError, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// A passed check: how much it read and how long it took.
#[derive(Debug, Clone, Copy)]
pub struct Checked {
    pub bytes: u64,
    pub took: Duration,
}

impl Checked {
    /// Megabytes (10^6 bytes) read per second.
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.took.as_secs_f64().max(1e-6)
    }
}

/// Runs `quick_check` on the ledger at `path` (read-only); its error names
/// the file.
pub fn quick_check(path: &Path) -> Result<Checked> {
    let run = || -> Result<Checked> {
        let conn = open_for_reading(path)?;
        let started = Instant::now();
        schema::quick_check(&conn)?;
        let took = started.elapsed();
        let bytes = conn.query_row(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            [],
            |r| r.get::<_, i64>(0),
        )?;
        Ok(Checked {
            bytes: u64::try_from(bytes).unwrap_or(0),
            took,
        })
    };
    run().map_err(|e: LedgerError| e.at(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{lots, Ledger, Site};

    #[test]
    fn a_whole_ledger_passes_and_a_damaged_one_is_named() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("ledger.db");
        let mut ledger = Ledger::open(&path, Site::default()).expect("open");
        ledger
            .write(|c, _| lots::ensure_member(c, "ann", "Ann", 0).map(|_| ()))
            .expect("member");
        ledger
            .conn()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("checkpoint");
        drop(ledger);
        let checked = quick_check(&path).expect("whole");
        assert_eq!(checked.bytes, std::fs::metadata(&path).unwrap().len());

        let mut bytes = std::fs::read(&path).expect("read");
        let page = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
        // Page 3's b-tree header claims 65535 cells.
        bytes[page * 2 + 3] = 0xff;
        bytes[page * 2 + 4] = 0xff;
        std::fs::write(&path, &bytes).expect("write");
        let e = quick_check(&path).expect_err("damaged");
        let text = crate::error_chain(&e);
        assert!(
            text.starts_with(&format!("ledger {}: the file is damaged", path.display())),
            "{text}"
        );
        assert!(e.is_file_failure(), "{text}");
    }
}
