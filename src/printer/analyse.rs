//! The spool analysis in the daemon: pollers offer the held jobs they list;
//! one worker, in the background, fetches each new job's document once
//! (`CUPS-Get-Document`), analyses it off the async threads
//! ([`crate::analysis`]), and records what it found in the ledger by the
//! job's uuid, so a restart or a move to another queue never analyses it
//! again. One log line per job. Pricing reads the findings back
//! ([`known_for`]).

use super::client::{IppClient, IppError};
use super::document::{self, DocumentError};
use super::jobs::Job;
use super::split::Known;
use crate::analysis::{self, Layout, Limits};
use crate::clock::Clock;
use crate::config::PrinterConfig;
use crate::error_chain;
use crate::ledger::analyses::{self, Analysis, Finding};
use crate::ledger::writer::WriterHandle;
use crate::pricing::Sides;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Jobs waiting for the worker; beyond this, offers wait for a later poll.
const QUEUE_LIMIT: usize = 10_000;

/// A job to analyse, with its printer and the client that reaches it.
type Offered = (PrinterConfig, IppClient, Job);

/// The queue of jobs to analyse; cheap to clone, shared by every poller.
#[derive(Clone, Default)]
pub struct Analyser {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Notify,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Offered>,
    /// Per printer, the jobs offered and not found gone since: each is
    /// queued once while it stays held there.
    offered: HashMap<String, HashSet<String>>,
}

impl Analyser {
    /// Offers `cfg`'s held jobs (as one poll listed them, through `client`):
    /// those not offered before are queued; jobs no longer listed are
    /// forgotten.
    pub fn offer(&self, cfg: &PrinterConfig, client: &IppClient, held: &[Job]) {
        let Ok(mut state) = self.shared.state.lock() else {
            return;
        };
        let State { queue, offered } = &mut *state;
        let seen = offered.entry(cfg.id.clone()).or_default();
        let listed: HashSet<String> = held.iter().map(|j| j.identity(&cfg.id)).collect();
        seen.retain(|id| listed.contains(id));
        let mut added = false;
        for job in held {
            if queue.len() >= QUEUE_LIMIT {
                break;
            }
            if seen.insert(job.identity(&cfg.id)) {
                queue.push_back((cfg.clone(), client.clone(), job.clone()));
                added = true;
            }
        }
        drop(state);
        if added {
            self.shared.wake.notify_one();
        }
    }

    /// Forgets `job` at `printer`, so the next poll offers it again (its
    /// document could not be fetched for a passing reason).
    fn retry_later(&self, printer: &str, job: &str) {
        if let Ok(mut state) = self.shared.state.lock() {
            if let Some(seen) = state.offered.get_mut(printer) {
                seen.remove(job);
            }
        }
    }

    fn next(&self) -> Option<Offered> {
        self.shared.state.lock().ok()?.queue.pop_front()
    }

    /// Analyses queued jobs one at a time until `stop`.
    pub async fn run(
        self,
        writer: WriterHandle,
        clock: Clock,
        limits: Limits,
        stop: CancellationToken,
    ) {
        loop {
            while let Some((cfg, client, job)) = self.next() {
                if stop.is_cancelled() {
                    return;
                }
                let worker = Worker {
                    client: &client,
                    writer: &writer,
                    clock: &clock,
                    limits,
                };
                if worker.analyse(&cfg, &job).await == Outcome::Retry {
                    self.retry_later(&cfg.id, &job.identity(&cfg.id));
                }
            }
            tokio::select! {
                _ = self.shared.wake.notified() => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Retry,
}

struct Worker<'a> {
    client: &'a IppClient,
    writer: &'a WriterHandle,
    clock: &'a Clock,
    limits: Limits,
}

impl Worker<'_> {
    async fn analyse(&self, cfg: &PrinterConfig, job: &Job) -> Outcome {
        let identity = job.identity(&cfg.id);
        let id = identity.clone();
        let known = self
            .writer
            .call_async(move |conn| analyses::get(conn, &id))
            .await;
        match known {
            Ok(Some(_)) => return Outcome::Done,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(printer = %cfg.id, job_id = job.id, error = %error_chain(&e), "spool analysis: cannot read the ledger; will retry");
                return Outcome::Retry;
            }
        }
        let started = Instant::now();
        let cap = usize::try_from(self.limits.max_bytes).unwrap_or(usize::MAX);
        let fetched = document::fetch(cfg, self.client, job.id, cap, self.limits.max_time).await;
        let (format, finding) = match fetched {
            Ok(doc) => {
                let given = doc.format.clone();
                let (sniffed, finding) = self.run_analysis(doc, layout(job)).await;
                (sniffed.unwrap_or(given), finding)
            }
            Err(e) if passing(&e) => {
                tracing::debug!(printer = %cfg.id, job_id = job.id, error = %error_chain(&e), "spool analysis: document not fetched; will retry");
                return Outcome::Retry;
            }
            Err(e) => (
                "unknown".to_string(),
                Finding::Fallback {
                    reason: format!("no document: {}", error_chain(&e)),
                },
            ),
        };
        let record = Analysis {
            job: identity,
            printer: cfg.id.clone(),
            job_id: job.id,
            format,
            finding,
            at: self.clock.wall(),
        };
        log(&record, job, started.elapsed());
        let r = record.clone();
        let stored = self
            .writer
            .call_async(move |conn| analyses::record(conn, &r))
            .await;
        if let Err(e) = stored {
            tracing::warn!(printer = %cfg.id, job_id = job.id, error = %error_chain(&e), "spool analysis: cannot record it; will retry");
            return Outcome::Retry;
        }
        Outcome::Done
    }

    /// Analyses a fetched document on a blocking thread: the format it
    /// turned out to be, and what it found.
    async fn run_analysis(
        &self,
        doc: document::Document,
        layout: Layout,
    ) -> (Option<String>, Finding) {
        let limits = self.limits;
        let analysed = tokio::task::spawn_blocking(move || {
            let document = analysis::analyse(doc.file.path(), &doc.format, &limits)?;
            let impressions = analysis::impressions(&document, &layout);
            Ok::<_, analysis::AnalysisError>((document, impressions))
        })
        .await;
        match analysed {
            Ok(Ok((document, imp))) => (
                Some(document.format.mime().to_string()),
                Finding::Analysed {
                    pages: count(document.pages.len() as u64),
                    colour_pages: count(document.colour_pages() as u64),
                    mono_impressions: count(imp.mono),
                    colour_impressions: count(imp.colour),
                    blank_backs: count(imp.blank_backs),
                },
            ),
            Ok(Err(e)) => (
                None,
                Finding::Fallback {
                    reason: format!("{}: {}", e.kind(), error_chain(&e)),
                },
            ),
            Err(_) => (
                None,
                Finding::Fallback {
                    reason: "the analysis stopped unexpectedly".into(),
                },
            ),
        }
    }
}

/// A count for the ledger (documents are capped far below `i64::MAX`).
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `client-error-not-found`: CUPS's answer to `CUPS-Get-Document` for a
/// job that has no document yet (a poll listed it between its
/// `Create-Job` and the end of its `Send-Document`), or that is gone.
const NOT_FOUND: u16 = 0x0406;

/// Whether a failed fetch may work later (the printer is away, or the
/// document is still arriving), rather than the document being refused or
/// gone for good. A job that is gone is not listed again, so it is not
/// retried.
fn passing(e: &DocumentError) -> bool {
    matches!(
        e,
        DocumentError::Ipp(
            IppError::Connect(_)
                | IppError::Timeout(_)
                | IppError::Transport(_)
                | IppError::Status {
                    code: NOT_FOUND,
                    ..
                }
        ) | DocumentError::Write(_)
            | DocumentError::Gone
    )
}

/// The job's layout attributes, as the analysis applies them.
fn layout(job: &Job) -> Layout {
    let small = |n: Option<i64>| n.and_then(|n| u32::try_from(n).ok()).unwrap_or(1).max(1);
    Layout {
        copies: small(job.copies),
        sides: job.sides(),
        number_up: small(job.number_up),
        page_ranges: job
            .page_ranges
            .iter()
            .filter_map(|&(a, b)| Some(u32::try_from(a).ok()?..=u32::try_from(b).ok()?))
            .collect(),
    }
}

fn log(a: &Analysis, job: &Job, took: Duration) {
    let user = job.user.as_deref().unwrap_or("");
    let ms = took.as_millis() as u64;
    match &a.finding {
        Finding::Analysed {
            pages,
            colour_pages,
            mono_impressions,
            colour_impressions,
            blank_backs,
        } => tracing::info!(printer = %a.printer, job_id = a.job_id, user, format = %a.format,
            pages, colour_pages, mono_impressions, colour_impressions, blank_backs,
            two_sided = job.sides() == Sides::TwoSided, ms, "job analysed"),
        Finding::Fallback { reason } => {
            tracing::info!(printer = %a.printer, job_id = a.job_id, user,
            format = %a.format, reason = %reason, ms,
            "job not analysed; priced by its page count as before")
        }
    }
}

/// Attaches what the analysis found to each of `jobs` (listed at
/// `printer`) that has a finding, reading the ledger once.
pub async fn known_for(writer: &WriterHandle, printer: &str, jobs: &mut [Job]) {
    if jobs.is_empty() {
        return;
    }
    let ids: Vec<String> = jobs.iter().map(|j| j.identity(printer)).collect();
    let found = writer
        .call_async(move |conn| analyses::get_many(conn, &ids))
        .await
        .unwrap_or_default();
    let by_job: HashMap<&str, &Analysis> = found.iter().map(|a| (a.job.as_str(), a)).collect();
    for job in jobs.iter_mut() {
        let Some(a) = by_job.get(job.identity(printer).as_str()) else {
            continue;
        };
        if let Finding::Analysed {
            mono_impressions,
            colour_impressions,
            blank_backs,
            ..
        } = a.finding
        {
            job.known = Some(Known {
                mono: mono_impressions,
                colour: colour_impressions,
                blank_backs,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, name: &str) -> DocumentError {
        DocumentError::Ipp(IppError::Status {
            code,
            name: name.into(),
        })
    }

    #[test]
    fn a_document_still_arriving_is_tried_again_a_refusal_is_not() {
        assert!(passing(&status(0x0406, "ClientErrorNotFound")));
        assert!(passing(&DocumentError::Gone));
        assert!(!passing(&status(0x0403, "ClientErrorNotAuthorized")));
        assert!(!passing(&status(0x0400, "ClientErrorBadRequest")));
        assert!(!passing(&DocumentError::Ipp(IppError::TooLarge)));
    }
}
