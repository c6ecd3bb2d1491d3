//! One task per printer: poll its finished jobs a page at a time, charge
//! each once (or set aside one whose record cannot be read), and say once
//! when the printer goes down and once when it is back. A job never takes
//! its printer down: only the printer failing does (see [`super::paging`]).

use super::analyse::Analyser;
use super::charge;
use super::client::{IppClient, IppError};
use super::jobs::Job;
use super::paging::{End, Page, Walk};
use super::requests::{JobsQuery, Which};
use crate::clock::Clock;
use crate::config::{Mode, PrinterConfig};
use crate::error_chain;
use crate::ledger::writer::WriterHandle;
use crate::observe::Observer;
use crate::site::LiveSite;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// IPP's `pending-held`: a job waiting for its release.
const HELD: i32 = 4;

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
    /// Told of the printer up and down, its jobs and held queue.
    observer: Observer,
    /// Keys of listed jobs already dealt with (charged, or costing nothing).
    done: HashSet<String>,
    /// Keys whose charge failed, with the error last logged for them.
    failed: HashMap<String, String>,
    /// Why the printer is down, while it is.
    down: Option<String>,
    /// Why the ledger file cannot be written (full, read-only), while it
    /// cannot: said once per outage, not once per job or poll.
    ledger_down: Option<String>,
    /// Whether the last failed poll was its certificate refused.
    certificate: bool,
    /// Records without a job id or uuid in the last poll (logged when this
    /// changes).
    nameless: usize,
    /// Whether a walk that could not read the whole list was logged.
    partial_logged: bool,
    /// The Get-Jobs for finished jobs, or why it could not be built (the
    /// error with its causes; every poll then fails with it).
    completed: Result<JobsQuery, String>,
    /// Held queues (and direct CUPS queues under the spool analysis): the
    /// jobs still to print.
    not_completed: Option<JobsQuery>,
    /// Where held jobs go for the spool analysis, when it is on.
    analyser: Option<Analyser>,
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
        observer: Observer,
    ) -> Poller {
        if let Ok(mut b) = board.lock() {
            b.entry(cfg.id.clone()).or_default();
        }
        observer.printer_known(&cfg.id);
        Poller {
            completed: JobsQuery::new(&cfg, Which::Completed).map_err(|e| error_chain(&e)),
            not_completed: (cfg.mode != Mode::Direct)
                .then(|| JobsQuery::new(&cfg, Which::NotCompleted).ok())
                .flatten(),
            cfg,
            client,
            writer,
            site,
            board,
            clock,
            observer,
            done: HashSet::new(),
            failed: HashMap::new(),
            down: None,
            ledger_down: None,
            certificate: false,
            nameless: 0,
            partial_logged: false,
            analyser: None,
        }
    }

    /// Held jobs this poller lists go to `analyser` for the spool analysis,
    /// and finished jobs are priced with what it found. A direct CUPS queue
    /// is then asked for its jobs still to print too, so their documents
    /// are analysed while CUPS has them.
    pub fn with_analyser(mut self, analyser: Analyser) -> Poller {
        if self.not_completed.is_none() && is_cups_queue(&self.cfg.uri) {
            self.not_completed = JobsQuery::new(&self.cfg, Which::NotCompleted).ok();
        }
        self.analyser = Some(analyser);
        self
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
            let delay = match self.poll(&stop).await {
                None => return,
                Some(Ok(())) => {
                    self.mark_up();
                    failures = 0;
                    self.look_at_waiting_jobs().await;
                    self.cfg.poll_interval
                }
                Some(Err(reason)) => {
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

    /// The jobs still to print: each new one goes to the spool analysis;
    /// at held queues, jobs held longer than the hold timeout are cancelled.
    /// How long a job was held is read on the printer's clock (its
    /// `printer-up-time` against the job's `time-at-creation`), so a print
    /// server whose clock differs from this host's cancels nothing early;
    /// a printer that does not say falls back on the wall clock, and then
    /// not while it is judged wrong (a clock ahead would make every held
    /// job look too old).
    async fn look_at_waiting_jobs(&self) {
        let Some(query) = &self.not_completed else {
            return;
        };
        let Ok(listed) = query.fetch(&self.client).await else {
            return;
        };
        if let Some(analyser) = &self.analyser {
            let waiting: Vec<Job> = listed
                .iter()
                .filter(|j| !j.is_terminal() && j.state != 0)
                .cloned()
                .collect();
            analyser.offer(&self.cfg, &self.client, &waiting);
        }
        if self.cfg.mode == Mode::Direct {
            return;
        }
        let held = listed.iter().filter(|j| j.state == HELD).count();
        self.observer.held_jobs(&self.cfg.id, held as u64);
        if held == 0 {
            return;
        }
        // The printer's clock is asked only when a held job can be aged on
        // it (it gave the job's `time-at-creation`).
        let ticked = listed
            .iter()
            .any(|j| j.state == HELD && j.created_tick.is_some());
        let printer = match ticked {
            true => super::state::up_time(&self.cfg, &self.client)
                .await
                .ok()
                .flatten(),
            false => None,
        };
        let wall = self.clock.trusted().then(|| self.clock.wall());
        if printer.is_none() && wall.is_none() {
            tracing::debug!(printer = %self.cfg.id, "hold timeouts held until the wall clock agrees");
            return;
        }
        let now = super::release::Now { printer, wall };
        super::release::cancel_expired(&self.cfg, &self.client, &listed, now).await;
    }

    /// One poll: every page of finished jobs, each charged before the next
    /// is read. `Err` with the printer's error and its causes (as the status
    /// line shows it and the log says it once); `None` when `stop` came
    /// first (a page being charged is finished first).
    async fn poll(&mut self, stop: &CancellationToken) -> Option<Result<(), String>> {
        let query = match &self.completed {
            Ok(query) => query.clone(),
            Err(reason) => {
                self.certificate = false;
                return Some(Err(reason.clone()));
            }
        };
        let client = self.client.clone();
        let pages = query.pages(&client);
        let mut walk = Walk::new(&self.cfg.id);
        let mut nameless = 0;
        loop {
            let next = tokio::select! {
                r = walk.next(&pages) => r,
                _ = stop.cancelled() => return None,
            };
            match next {
                Ok(Some(page)) => {
                    nameless += page.nameless;
                    self.charge(page).await;
                }
                Ok(None) => break,
                Err(e) => {
                    self.certificate = matches!(e, IppError::Certificate { .. });
                    return Some(Err(error_chain(&e)));
                }
            }
        }
        self.done.retain(|k| walk.has_read(k));
        self.failed.retain(|k, _| walk.has_read(k));
        self.log_walk(walk.end(), walk.read_count(), nameless);
        Some(Ok(()))
    }

    /// Logs what a walk could not read: once when the printer's list could
    /// not be read to its end, and when the number of records without a
    /// job id changes.
    fn log_walk(&mut self, end: Option<End>, read: usize, nameless: usize) {
        let id = &self.cfg.id;
        let partial = match end {
            Some(End::Repeated) => Some(
                "the printer sent the same jobs again for the next page (it ignores first-index)",
            ),
            Some(End::Capped) => Some("the printer lists more jobs than one poll reads"),
            _ => None,
        };
        if let Some(why) = partial.filter(|_| !self.partial_logged) {
            tracing::warn!(printer = %id, read, why, "only the first jobs the printer lists can be read");
            self.partial_logged = true;
        }
        if nameless != self.nameless && nameless > 0 {
            tracing::warn!(printer = %id, records = nameless,
                "job records that cannot be read, not even their job id, are skipped");
        }
        self.nameless = nameless;
    }

    async fn charge(&mut self, page: Page) {
        let id = self.cfg.id.clone();
        let (site, now) = (self.site.get(), self.clock.wall());
        let done = &self.done;
        let mut fresh: Vec<Job> = page
            .jobs
            .into_iter()
            .filter(Job::is_terminal)
            .filter(|job| !done.contains(&job.key(&id)))
            .collect();
        if self.analyser.is_some() {
            super::analyse::known_for(&self.writer, &id, &mut fresh).await;
        }
        let mut pending: Vec<charge::Pending> = fresh
            .into_iter()
            .map(|job| charge::submit(&self.cfg, &self.writer, &site, job, now))
            .collect();
        let done = &self.done;
        // Finished jobs only are listed: one whose state cannot be read (0)
        // is one too.
        pending.extend(
            page.unreadable
                .into_iter()
                .filter(|(job, _)| job.state == 0 || job.is_terminal())
                .filter(|(job, _)| !done.contains(&job.key(&id)))
                .map(|(job, error)| {
                    charge::set_aside_unreadable(&self.cfg, &self.writer, job, &error, now)
                }),
        );
        let mut charged = 0;
        for p in pending {
            let (key, job_id) = (p.key.clone(), p.job.id);
            match charge::finish(&id, p, &self.observer).await {
                Ok(now_charged) => {
                    charged += u64::from(now_charged);
                    self.failed.remove(&key);
                    self.done.insert(key);
                    self.ledger_back();
                }
                Err(e) if e.is_file_failure() => self.ledger_failed(job_id, &key, error_chain(&e)),
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

    /// A job could not be charged because the ledger file failed (`error`):
    /// said when the outage begins; the job waits for the next poll.
    fn ledger_failed(&mut self, job_id: i32, key: &str, error: String) {
        if self.ledger_down.is_none() {
            tracing::error!(printer = %self.cfg.id, job_id, key = %key, error = %error,
                "cannot charge: the ledger cannot be written; jobs wait and are charged once it can");
            self.ledger_down = Some(error);
        }
    }

    /// A job was recorded: if the ledger had failed, say once that it is back.
    fn ledger_back(&mut self) {
        if let Some(was) = self.ledger_down.take() {
            tracing::info!(printer = %self.cfg.id, was = %was,
                "the ledger can be written again; waiting jobs are being charged");
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
        self.observer.printer_up(id);
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
        self.observer.printer_down(id, &reason);
        if self.down.is_none() {
            if self.certificate {
                tracing::error!(printer = %id, uri = %self.cfg.uri, error = %reason,
                    "printer is down: its TLS certificate is not trusted (set its ca_file or tls_fingerprint); retrying with backoff");
            } else {
                tracing::warn!(printer = %id, uri = %self.cfg.uri, error = %reason, "printer is down; retrying with backoff");
            }
            self.down = Some(reason);
        }
    }
}

/// Whether `uri` names a CUPS queue (`/printers/NAME`, `/classes/NAME`),
/// whose jobs' documents `CUPS-Get-Document` can fetch.
fn is_cups_queue(uri: &str) -> bool {
    uri.contains("/printers/") || uri.contains("/classes/")
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
