//! One task per printer: poll its finished jobs, charge each once, and say
//! once when the printer goes down and once when it is back.

use super::client::IppClient;
use super::jobs::{self, Job, PricedJob};
use super::requests::{JobsQuery, Which};
use crate::clock;
use crate::config::{Mode, PrinterConfig};
use crate::error_chain;
use crate::ledger::jobs::{self as ledger_jobs, Recorded};
use crate::ledger::writer::WriterHandle;
use crate::ledger::{LedgerError, Site};
use crate::site::LiveSite;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The writer's answer to a job sent to it.
type Reply<T> = tokio::sync::oneshot::Receiver<crate::ledger::Result<T>>;

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
    pub fn new(
        cfg: PrinterConfig,
        client: IppClient,
        writer: WriterHandle,
        site: LiveSite,
        board: StatusBoard,
    ) -> Poller {
        if let Ok(mut b) = board.lock() {
            b.insert(cfg.id.clone(), PrinterStatus::default());
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
            done: HashSet::new(),
            failed: HashMap::new(),
            down: None,
        }
    }

    /// Polls until `stop` turns true. A poll that is charging finishes first.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut failures = 0u32;
        loop {
            if *stop.borrow() {
                return;
            }
            let fetched = tokio::select! {
                r = self.fetch_completed() => r,
                _ = stop.changed() => return,
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
                _ = stop.changed() => return,
            }
        }
    }

    /// Held queues: cancel jobs held longer than the hold timeout.
    async fn cancel_expired_holds(&self) {
        let Some(query) = &self.not_completed else {
            return;
        };
        if let Ok(listed) = query.fetch(&self.client).await {
            super::release::cancel_expired(&self.cfg, &self.client, &listed, clock::now()).await;
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

    /// Hands a finished job to the ledger: priced, it is charged (or its
    /// hold settled); costing nothing, a hold it had is voided.
    fn record(&self, site: &Site, job: &Job, priced: Option<&PricedJob>) -> Reply<Recorded> {
        let now = clock::now();
        match priced {
            Some(p) => {
                let finished = jobs::finished(&self.cfg.id, job, p, now);
                let site = site.clone();
                self.writer
                    .submit(move |conn| ledger_jobs::record_finished(conn, &site, &finished))
            }
            None => {
                let key = job.key(&self.cfg.id);
                let reason = format!(
                    "job {} {} with nothing printed",
                    job.id,
                    jobs::state_name(job.state)
                );
                self.writer.submit(move |conn| {
                    ledger_jobs::record_nothing_printed(conn, &key, &reason, now)
                })
            }
        }
    }

    async fn charge(&mut self, jobs: Vec<Job>) {
        let id = self.cfg.id.clone();
        let listed: HashSet<String> = jobs.iter().map(|j| j.key(&id)).collect();
        self.done.retain(|k| listed.contains(k));
        self.failed.retain(|k, _| listed.contains(k));
        let site = self.site.get();
        let mut pending = Vec::new();
        for job in jobs.into_iter().filter(Job::is_terminal) {
            let key = job.key(&id);
            if self.done.contains(&key) {
                continue;
            }
            let priced = jobs::price_job(&self.cfg, &job);
            let reply = self.record(&site, &job, priced.as_ref());
            pending.push((key, job, priced, reply));
        }
        let mut charged = 0;
        for (key, job, priced, reply) in pending {
            let result = reply.await.unwrap_or(Err(LedgerError::WriterGone));
            match (result, &priced) {
                (Ok(Recorded::Already), _) => {}
                (Ok(Recorded::Charged { member, charge }), Some(priced)) => {
                    charged += 1;
                    log_charge(&id, &job, priced, member.as_deref(), &charge);
                }
                (
                    Ok(Recorded::Settled {
                        member,
                        estimate,
                        charge,
                    }),
                    Some(priced),
                ) => {
                    charged += 1;
                    tracing::info!(member = %member, printer = %id, job_id = job.id,
                        impressions = priced.facts.mono_impressions + priced.facts.colour_impressions,
                        estimate_cents = estimate, cents = priced.cents, overage = charge.overage,
                        balance_after = charge.balance_after, "released job settled");
                }
                (Ok(Recorded::Voided { member, estimate }), _) => {
                    tracing::info!(member = %member, printer = %id, job_id = job.id,
                        state = jobs::state_name(job.state), estimate_cents = estimate,
                        "released job printed nothing; hold voided, nothing charged");
                }
                (Ok(_), _) => {}
                (Err(e), _) => {
                    let text = error_chain(&e);
                    if self.failed.get(&key) != Some(&text) {
                        tracing::error!(printer = %id, job_id = job.id, key = %key, error = %text, "could not charge job; will retry");
                        self.failed.insert(key, text);
                    }
                    continue;
                }
            }
            self.failed.remove(&key);
            self.done.insert(key);
        }
        if let Ok(mut b) = self.board.lock() {
            if let Some(s) = b.get_mut(&id) {
                s.jobs_charged += charged as u64;
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
                s.last_poll = Some(clock::now());
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

fn log_charge(
    printer: &str,
    job: &Job,
    priced: &jobs::PricedJob,
    member: Option<&str>,
    charge: &crate::ledger::Charge,
) {
    let impressions = priced.facts.mono_impressions + priced.facts.colour_impressions;
    let sides = priced.facts.sides.as_str();
    let colour = if priced.colour { "colour" } else { "mono" };
    let user = job.user.as_deref().unwrap_or("");
    match member {
        Some(member) => tracing::info!(
            member = %member, printer = %printer, job_id = job.id, user, state = jobs::state_name(job.state),
            impressions, colour = %colour, sides = %sides, cents = priced.cents, covered = charge.covered,
            overage = charge.overage, balance_after = charge.balance_after, "charge"
        ),
        None => tracing::warn!(
            printer = %printer, job_id = job.id, user, state = jobs::state_name(job.state),
            impressions, colour = %colour, sides = %sides, cents = priced.cents,
            "unattributed job: no member has this print user name; recorded for reports"
        ),
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
