//! The scheduled backups (`[backup]`): a supervised task that takes a
//! backup when one is due (`clock::schedule`), checked before it counts,
//! then removes the oldest beyond `keep`. One INFO line per backup; one
//! ERROR when backups start failing, and one INFO line when they work
//! again. Held, like every time-driven task, while the wall clock is judged
//! wrong (a backup is named by its time, and retention goes by it).

use crate::clock::schedule::{first_slot, next_after};
use crate::clock::Clock;
use crate::config::BackupConfig;
use crate::ledger::backup::{self, BackupError, Written};
use crate::observe::Observer;
use chrono_tz::Tz;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the task looks at the clock while it waits (the wall clock
/// may be stepped; a sleep would not notice).
const TICK: Duration = Duration::from_secs(5);

/// How soon a failed backup is tried again (or the interval, if shorter).
const RETRY: Duration = Duration::from_secs(3600);

/// Where backups of `ledger` go under `config`.
pub fn dir_for(config: &BackupConfig, ledger: &Path) -> PathBuf {
    backup::dir(config.dir.as_deref(), ledger)
}

/// What the task needs: the ledger, where its backups go, the schedule.
#[derive(Clone)]
pub struct Schedule {
    pub ledger: PathBuf,
    pub config: BackupConfig,
    pub tz: Tz,
}

/// Takes a backup whenever one is due, until `stop`; tells `observer` how
/// each went.
pub async fn scheduler(s: Schedule, clock: Clock, observer: Observer, stop: CancellationToken) {
    let dir = dir_for(&s.config, &s.ledger);
    let (tz, at, every) = (s.tz, s.config.at, s.config.every);
    let newest = {
        let (ledger, dir) = (s.ledger.clone(), dir.clone());
        tokio::task::spawn_blocking(move || backup::list(&ledger, &dir))
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|l| l.last().map(|b| b.taken))
    };
    if let Some(taken) = newest {
        observer.backup_found(taken);
    }
    let mut due = match newest {
        Some(last) => next_after(tz, at, every, last),
        None => first_slot(tz, at, every, clock.wall()),
    };
    tracing::info!(dir = %dir.display(), next = %crate::clock::format_rfc3339(tz, due),
        every_secs = every.as_secs(), keep = s.config.keep, "backups scheduled");
    let mut failing: Option<u32> = None;
    loop {
        let now = clock.wall();
        if now >= due && clock.trusted() {
            let passed = once(&s.ledger, &dir, s.config.keep, now, &mut failing).await;
            match &passed {
                Ok(()) => observer.backup_written(),
                Err(error) => observer.backup_failed(error),
            }
            due = match passed.is_ok() {
                true => next_after(tz, at, every, now),
                false => now.saturating_add(RETRY.min(every).as_secs() as i64),
            };
            continue;
        }
        let wait = Duration::from_secs(due.saturating_sub(now).max(1) as u64).min(TICK);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// One backup and its retention, off the async threads; logs it. Whether
/// it passed, or why not.
async fn once(
    ledger: &Path,
    dir: &Path,
    keep: usize,
    now: i64,
    failing: &mut Option<u32>,
) -> Result<(), String> {
    let (l, d) = (ledger.to_path_buf(), dir.to_path_buf());
    let done = tokio::task::spawn_blocking(move || {
        let written = backup::take(&l, &d, now)?;
        let removed = backup::prune(&l, &d, keep);
        Ok::<_, BackupError>((written, removed))
    })
    .await;
    match done {
        Ok(Ok((written, removed))) => {
            log_written(&written, "scheduled");
            match removed {
                Ok(removed) => {
                    for path in removed {
                        tracing::info!(file = %path.display(), keep, "old backup removed");
                    }
                }
                Err(e) => tracing::warn!(dir = %dir.display(), error = %crate::error_chain(&e),
                    "cannot remove old backups"),
            }
            if let Some(failed) = failing.take() {
                tracing::info!(dir = %dir.display(), failed, "backups work again");
            }
            Ok(())
        }
        Ok(Err(e)) => Err(failed(dir, crate::error_chain(&e), failing)),
        Err(join) => Err(failed(dir, join.to_string(), failing)),
    }
}

/// A failure: ERROR for the first of a streak, DEBUG for the rest. The
/// error, for the caller.
fn failed(dir: &Path, error: String, failing: &mut Option<u32>) -> String {
    match failing {
        None => {
            tracing::error!(dir = %dir.display(), error = %error,
                "backup failed; the last good backup stays, retrying");
            *failing = Some(1);
        }
        Some(n) => {
            *n += 1;
            tracing::debug!(dir = %dir.display(), error = %error, failed = *n, "backup still failing");
        }
    }
    error
}

/// The line a backup that passed its check is logged with.
pub fn log_written(w: &Written, reason: &str) {
    tracing::info!(file = %w.path.display(), bytes = w.bytes,
        seconds = %format!("{:.2}", w.seconds), schema = w.schema, reason = %reason,
        "backup written");
}
