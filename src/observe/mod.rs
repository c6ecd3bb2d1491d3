//! What the daemon's tasks observe, for metrics, health and alerts.
//!
//! One [`Observer`], cheap to clone, is handed to every task. Tasks report
//! to it where they already log a state change (a printer or reader down or
//! back, a grants sync or backup that failed or worked, a task restarted, a
//! job recorded, a commit timed). Readers of it get:
//!
//! - [`Observer::snapshot`]: the current state, as plain values (who is down
//!   since when and why, the last good grants sync and backup, counters);
//! - [`Observer::subscribe`]: the one-off events ([`Notice`]: a job set
//!   aside for review, a backup that failed, a task restarted) as a tokio
//!   broadcast channel; a receiver that falls behind loses the oldest ones.
//!
//! A leaf: it imports nothing from tallyd. Times are unix seconds from the
//! time source it is built with (the daemon's clock). One std mutex guards
//! the state; it is held only to update or copy it, never across an
//! `.await` or any IO.

mod latency;
mod state;

pub use latency::{Latency, LATENCY_BUCKETS};
pub use state::{Backups, CentralBacklog, Component, GrantsSync, Outcome, Snapshot, Tally};

use state::State;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::broadcast;

/// How many notices a slow subscriber may fall behind before it loses some.
pub const NOTICE_BACKLOG: usize = 256;

/// A one-off event, for whoever subscribed (see [`Observer::subscribe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A finished job was set aside for review: nothing charged.
    JobToReview {
        printer: String,
        job_id: i32,
        /// The print user name the printer gave, if any.
        owner: Option<String>,
        why: String,
        at: i64,
    },
    /// A backup failed (the last good one stays).
    BackupFailed { error: String, at: i64 },
    /// A supervised task failed and is started again.
    TaskRestarted {
        task: String,
        /// Its restarts so far, this one included.
        restarts: u64,
        cause: String,
        at: i64,
    },
}

type Now = dyn Fn() -> i64 + Send + Sync;

struct Inner {
    state: Mutex<State>,
    notices: broadcast::Sender<Notice>,
    now: Box<Now>,
}

/// The shared registry. Clones share it.
#[derive(Clone)]
pub struct Observer(Arc<Inner>);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

impl Default for Observer {
    /// On the system's wall clock.
    fn default() -> Observer {
        Observer::new(system_now)
    }
}

fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Observer {
    /// A registry stamping times with `now` (unix seconds).
    pub fn new(now: impl Fn() -> i64 + Send + Sync + 'static) -> Observer {
        let (notices, _) = broadcast::channel(NOTICE_BACKLOG);
        let started = now();
        Observer(Arc::new(Inner {
            state: Mutex::new(State::new(started)),
            notices,
            now: Box::new(now),
        }))
    }

    /// The time source's now (unix seconds).
    pub fn now(&self) -> i64 {
        (self.0.now)()
    }

    /// The current state.
    pub fn snapshot(&self) -> Snapshot {
        self.with(|s, _| s.snapshot())
    }

    /// The notices from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.0.notices.subscribe()
    }

    fn with<R>(&self, f: impl FnOnce(&mut State, i64) -> R) -> R {
        let now = self.now();
        let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state, now)
    }

    fn notify(&self, notice: Notice) {
        // No subscriber is not an error.
        let _ = self.0.notices.send(notice);
    }

    /// A printer is polled from now on (state unknown until its first poll).
    pub fn printer_known(&self, printer: &str) {
        self.with(|s, now| {
            s.printers
                .entry(printer.into())
                .or_insert(Component::new(now));
        });
    }

    /// A printer answered its poll.
    pub fn printer_up(&self, printer: &str) {
        self.with(|s, now| state::mark(&mut s.printers, printer, now, None));
    }

    /// A printer's poll failed, for `reason`.
    pub fn printer_down(&self, printer: &str, reason: &str) {
        self.with(|s, now| state::mark(&mut s.printers, printer, now, Some(reason)));
    }

    /// A printer is no longer in the config (reload).
    pub fn printer_removed(&self, printer: &str) {
        self.with(|s, _| {
            s.printers.remove(printer);
            s.held.remove(printer);
        });
    }

    /// A card reader's device is open.
    pub fn reader_up(&self, reader: &str) {
        self.with(|s, now| state::mark(&mut s.readers, reader, now, None));
    }

    /// A card reader's device is gone, for `reason`.
    pub fn reader_down(&self, reader: &str, reason: &str) {
        self.with(|s, now| state::mark(&mut s.readers, reader, now, Some(reason)));
    }

    /// Only these readers are configured now (reload).
    pub fn readers_configured(&self, readers: &[&str]) {
        self.with(|s, _| s.readers.retain(|id, _| readers.contains(&id.as_str())));
    }

    /// A grants sync applied the file.
    pub fn grants_synced(&self) {
        self.with(|s, now| s.grants.succeeded(now));
    }

    /// A grants sync failed with `error`.
    pub fn grants_failed(&self, error: &str) {
        self.with(|s, now| s.grants.failed(now, error));
    }

    /// A backup was written and checked.
    pub fn backup_written(&self) {
        self.with(|s, now| s.backups.written(now));
    }

    /// The newest backup found on disk was taken `at` (at start): counts as
    /// the last good one unless a newer one is known.
    pub fn backup_found(&self, at: i64) {
        self.with(|s, _| s.backups.last_good = s.backups.last_good.max(Some(at)));
    }

    /// A backup failed with `error`; notified.
    pub fn backup_failed(&self, error: &str) {
        let at = self.with(|s, now| {
            s.backups.failed(now, error);
            now
        });
        self.notify(Notice::BackupFailed {
            error: error.into(),
            at,
        });
    }

    /// Task `task` failed with `cause` and is started again; notified.
    pub fn task_restarted(&self, task: &str, cause: &str) {
        let (restarts, at) = self.with(|s, now| {
            let n = s.restarts.entry(task.into()).or_default();
            *n += 1;
            (*n, now)
        });
        self.notify(Notice::TaskRestarted {
            task: task.into(),
            restarts,
            cause: cause.into(),
            at,
        });
    }

    /// A finished job was recorded at `printer` as `outcome`: its
    /// impressions and cents (what it cost, charged or not).
    pub fn job_recorded(&self, printer: &str, outcome: Outcome, impressions: u64, cents: i64) {
        self.with(|s, _| s.tally(printer, outcome, impressions, cents));
    }

    /// A finished job was set aside for review: counted as
    /// [`Outcome::Review`] and notified.
    pub fn job_to_review(&self, printer: &str, job_id: i32, owner: Option<String>, why: &str) {
        let at = self.with(|s, now| {
            s.tally(printer, Outcome::Review, 0, 0);
            now
        });
        self.notify(Notice::JobToReview {
            printer: printer.into(),
            job_id,
            owner,
            why: why.into(),
            at,
        });
    }

    /// `printer`'s queue holds `jobs` jobs waiting for a release.
    pub fn held_jobs(&self, printer: &str, jobs: u64) {
        self.with(|s, _| {
            s.held.insert(printer.into(), jobs);
        });
    }

    /// `sessions` room sessions are open (counted in the ledger).
    pub fn open_sessions(&self, sessions: u64) {
        self.with(|s, _| s.open_sessions = sessions);
    }

    /// A room session started (`true`) or ended (`false`) since the last
    /// count.
    pub fn session_changed(&self, started: bool) {
        self.with(|s, _| {
            s.open_sessions = match started {
                true => s.open_sessions.saturating_add(1),
                false => s.open_sessions.saturating_sub(1),
            }
        });
    }

    /// The chain's outbox, as the shipper read it.
    pub fn central_backlog(&self, backlog: CentralBacklog) {
        self.with(|s, _| s.central = Some(backlog));
    }

    /// One ledger commit (a batch) took `took`.
    pub fn ledger_commit(&self, took: Duration) {
        self.with(|s, _| s.commits.record(took));
    }
}

#[cfg(test)]
mod tests;
