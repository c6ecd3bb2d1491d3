//! One task per printer: poll its finished jobs, charge each once, and say
//! once when the printer goes down and once when it is back.

use super::charge;
use super::client::IppClient;
use super::jobs::Job;
use super::requests::{JobsQuery, Which};
use crate::clock::Clock;
use crate::config::{Mode, PrinterConfig};
use crate::error_chain;
use crate::ledger::writer::WriterHandle;
use crate::site::LiveSite;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The longest wait between tries at a printer that is down.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What the daemon knows about one printer, for the status line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrinterStatus {
    /// `None` until the first poll answered or failed.
    pub up: Option<bool>,
    /// Unix seconds of the last poll that answered.
    pub last_poll: Option<i64>,
    pub jobs_charged: u64,
    pub last_error: Option<String>,
}

/// Every printer's status, shared by the pollers and the status line.
pub type StatusBoard = Arc<Mutex<BTreeMap<String, PrinterStatus>>>;

/// Polls one printer.
pub struct Poller {
    cfg: PrinterConfig,
    client: IppClient,
    writer: WriterHandle,
    site: LiveSite,
    board: StatusBoard,
    clock: Clock,
    /// Keys of listed jobs already dealt with (charged, or costing nothing).
    done: HashSet<String>,
    /// Keys whose charge failed, with the error last logged for them.
    failed: HashMap<String, String>,
    /// Why the printer is down, while it is.
    down: Option<String>,
    /// The Get-Jobs for finished jobs, or why it could not be built (the
    /// error with its causes; every poll then fails with it).
    completed: Result<JobsQuery, String>,
    /// Held queues: the jobs still waiting, for the hold timeout.
    not_completed: Option<JobsQuery>,
}

impl Poller {
    /// A poller for `cfg`. A poller restarted after a failure keeps the
    /// printer's status (and its count of jobs charged).
    pub fn new(
        cfg: PrinterConfig,
        client: IppClient,
        writer: WriterHandle,
        site: LiveSite,
        board: StatusBoard,
        clock: Clock,
    ) -> Poller {
        if let Ok(mut b) = board.lock() {
            b.entry(cfg.id.clone()).or_default();
        }
        Poller {
            completed: JobsQuery::new(&cfg, Which::Completed).map_err(|e| error_chain(&e)),
            not_completed: (cfg.mode == Mode::Held)
                .then(|| JobsQuery::new(&cfg, Which::NotCompleted).ok())
                .flatten(),
            cfg,
            client,
            writer,
            site,
            board,
            clock,
            done: HashSet::new(),
            failed: HashMap::new(),
            down: None,
        }
    }

    /// Polls until `stop` is cancelled. A poll that is charging finishes first.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut failures = 0u32;
        loop {
            if stop.is_cancelled() {
                return;
            }
            #[cfg(feature = "test-hooks")]
            test_hooks::panic_if_named(&self.cfg.id);
            let fetched = tokio::select! {
                r = self.fetch_completed() => r,
                _ = stop.cancelled() => return,
            };
            let delay = match fetched {
                Ok(jobs) => {
                    self.mark_up();
                    failures = 0;
                    self.charge(jobs).await;
                    self.cancel_expired_holds().await;
                    self.cfg.poll_interval
                }
                Err(reason) => {
                    self.mark_down(reason);
                    failures = failures.saturating_add(1);
                    backoff(self.cfg.poll_interval, failures, fastrand::u32(0..=1000))
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Held queues: cancel jobs held longer than the hold timeout; not
    /// while the wall clock is judged wrong (a clock ahead would make every
    /// held job look too old).
    async fn cancel_expired_holds(&self) {
        let Some(query) = &self.not_completed else {
            return;
        };
        if !self.clock.trusted() {
            tracing::debug!(printer = %self.cfg.id, "hold timeouts held until the wall clock agrees");
            return;
        }
        if let Ok(listed) = query.fetch(&self.client).await {
            let now = self.clock.wall();
            super::release::cancel_expired(&self.cfg, &self.client, &listed, now).await;
        }
    }

    /// The printer's finished jobs, or why not: the error with its causes,
    /// as the status line shows it and the log says it once.
    async fn fetch_completed(&self) -> Result<Vec<Job>, String> {
        match &self.completed {
            Ok(query) => query.fetch(&self.client).await.map_err(|e| error_chain(&e)),
            Err(reason) => Err(reason.clone()),
        }
    }

    async fn charge(&mut self, jobs: Vec<Job>) {
        let id = self.cfg.id.clone();
        let listed: HashSet<String> = jobs.iter().map(|j| j.key(&id)).collect();
        self.done.retain(|k| listed.contains(k));
        self.failed.retain(|k, _| listed.contains(k));
        let (site, now) = (self.site.get(), self.clock.wall());
        let pending: Vec<charge::Pending> = jobs
            .into_iter()
            .filter(Job::is_terminal)
            .filter(|job| !self.done.contains(&job.key(&id)))
            .map(|job| charge::submit(&self.cfg, &self.writer, &site, job, now))
            .collect();
        let mut charged = 0;
        for p in pending {
            let (key, job_id) = (p.key.clone(), p.job.id);
            match charge::finish(&id, p).await {
                Ok(now_charged) => {
                    charged += u64::from(now_charged);
                    self.failed.remove(&key);
                    self.done.insert(key);
                }
                Err(e) => {
                    let text = error_chain(&e);
                    if self.failed.get(&key) != Some(&text) {
                        tracing::error!(printer = %id, job_id, key = %key, error = %text, "could not charge job; will retry");
                        self.failed.insert(key, text);
                    }
                }
            }
        }
        if let Ok(mut b) = self.board.lock() {
            if let Some(s) = b.get_mut(&id) {
                s.jobs_charged += charged;
            }
        }
    }

    fn mark_up(&mut self) {
        let id = &self.cfg.id;
        let mut first = false;
        if let Ok(mut b) = self.board.lock() {
            if let Some(s) = b.get_mut(id) {
                first = s.up.is_none();
                s.up = Some(true);
                s.last_poll = Some(self.clock.wall());
                s.last_error = None;
            }
        }
        if let Some(reason) = self.down.take() {
            tracing::info!(printer = %id, uri = %self.cfg.uri, was = %reason, "printer is back");
        } else if first {
            tracing::info!(printer = %id, uri = %self.cfg.uri, "printer is up");
        }
    }

    /// `reason`: the failed poll's error with its causes.
    fn mark_down(&mut self, reason: String) {
        let id = &self.cfg.id;
        if let Ok(mut b) = self.board.lock() {
            if let Some(s) = b.get_mut(id) {
                s.up = Some(false);
                s.last_error = Some(reason.clone());
            }
        }
        if self.down.is_none() {
            tracing::warn!(printer = %id, uri = %self.cfg.uri, error = %reason, "printer is down; retrying with backoff");
            self.down = Some(reason);
        }
    }
}

/// The wait before try `failures` + 1 at a printer that is down: the poll
/// interval doubled per failure up to [`MAX_BACKOFF`] (never below the
/// interval), then between half and all of that, by `jitter` in
/// thousandths (0..=1000).
pub fn backoff(interval: Duration, failures: u32, jitter: u32) -> Duration {
    let ceiling = MAX_BACKOFF.max(interval);
    let grown = interval.saturating_mul(1u32 << failures.min(16).saturating_sub(1));
    let full = grown.min(ceiling);
    full * (1000 + jitter.min(1000)) / 2000
}

/// Test hooks only (the `test-hooks` feature, never in a release build).
#[cfg(feature = "test-hooks")]
mod test_hooks {
    use std::sync::atomic::{AtomicBool, Ordering};

    static PANICKED: AtomicBool = AtomicBool::new(false);

    /// The poller of the printer named by `TALLYD_TEST_PANIC_PRINTER` panics
    /// at its first poll, once per process, so tests can see a task that
    /// panics restarted.
    pub fn panic_if_named(printer: &str) {
        let named = std::env::var("TALLYD_TEST_PANIC_PRINTER").is_ok_and(|p| p == printer);
        if named && !PANICKED.swap(true, Ordering::SeqCst) {
            panic!("test hook: the poller of printer {printer} panics at its first poll");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(5), 1, 1000), s(5));
        assert_eq!(backoff(s(5), 2, 1000), s(10));
        assert_eq!(backoff(s(5), 3, 1000), s(20));
        assert_eq!(backoff(s(5), 30, 1000), s(60));
        assert_eq!(backoff(s(5), 30, 0), s(30));
        assert_eq!(backoff(s(120), 4, 1000), s(120));
        assert!(backoff(s(5), 3, 370) < s(20) && backoff(s(5), 3, 370) > s(10));
    }
}
