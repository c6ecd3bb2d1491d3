//! The whole file's `quick_check`, run once just after the daemon is
//! ready rather than before: it reads every page (about 3 s per GB on a
//! small server), so on a ledger of years it would hold the start for tens
//! of seconds. Its time and speed are logged on one line. If it fails, one
//! ERROR line says so and the writer refuses every write from then on
//! (jobs wait, as when the disk is full), so a damaged ledger does not
//! keep charging; `tallyd check-ledger` and every backup check the whole
//! file too.

use crate::ledger::file_check;
use crate::ledger::writer::Refusal;
use crate::ledger::LedgerError;
use std::path::PathBuf;

/// Checks `ledger` off the async threads; throws `refusal` if it is damaged.
pub async fn after_ready(ledger: PathBuf, refusal: Refusal) {
    let path = ledger.clone();
    let checked = tokio::task::spawn_blocking(move || file_check::quick_check(&path)).await;
    match checked {
        Ok(Ok(c)) => tracing::info!(ledger = %ledger.display(), bytes = c.bytes,
            seconds = format!("{:.2}", c.took.as_secs_f64()),
            mb_per_s = format!("{:.0}", c.mb_per_s()),
            "ledger file checked (SQLite quick_check)"),
        Ok(Err(e)) => {
            let report = match &e {
                LedgerError::At { source, .. } => match &**source {
                    LedgerError::Malformed(report) => Some(report.clone()),
                    _ => None,
                },
                _ => None,
            };
            // A check that could not run (not a verdict) refuses too: the
            // file could not be read whole.
            refusal.refuse(report.unwrap_or_else(|| crate::error_chain(&e)));
            tracing::error!(ledger = %ledger.display(), error = %crate::error_chain(&e),
                "ledger file is damaged: every charge is refused until a backup is restored (`tallyd restore`)");
        }
        Err(e) => {
            refusal.refuse(format!("the check did not finish: {e}"));
            tracing::error!(ledger = %ledger.display(), error = %e,
                "ledger file check did not finish: every charge is refused until tallyd restarts");
        }
    }
}
