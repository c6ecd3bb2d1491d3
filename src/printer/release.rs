//! Held release: a member's tap at a held printer's reader releases their
//! held jobs there, each behind a ledger hold that the job's completion
//! settles; and held jobs past the hold timeout are cancelled, free.

use super::client::{IppClient, IppError};
use super::jobs::{self, Job, PENDING_HELD};
use super::requests::{job_request, JobsQuery, Which};
use super::state;

use crate::clock::Clock;
use crate::config::PrinterConfig;
use crate::error_chain;
use crate::ledger::writer::WriterHandle;
use crate::ledger::{HoldOutcome, Origin, Payable, UsageRequest};
use crate::site::LiveSite;
use ipp::prelude::Operation;

/// What one tap released.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Released {
    /// Job ids released, oldest first.
    pub jobs: Vec<i32>,
    /// The sum of their estimates, in cents.
    pub estimate: i64,
    /// Jobs left held, each with why.
    pub kept: Vec<(i32, String)>,
    /// Why the printer could not print (stopped, jammed, out of paper...):
    /// then nothing was released or reserved, and `kept` lists every held
    /// job of the member.
    pub blocked: Option<String>,
}

/// The member's held jobs at `cfg`, oldest first.
pub fn held_jobs_of(jobs: Vec<Job>, users: &[String]) -> Vec<Job> {
    let mut mine: Vec<Job> = jobs
        .into_iter()
        .filter(|j| j.state == PENDING_HELD)
        .filter(|j| j.owner().is_some_and(|o| users.contains(&o)))
        .collect();
    mine.sort_by_key(|j| (j.created_at.or(j.created_tick).unwrap_or(0), j.id));
    mine
}

/// Releases `member`'s held jobs at `cfg`: unless the printer says it
/// cannot print now (see [`state`]), for each job, oldest first, place a
/// hold for its estimate (the member's overage policy may refuse it, and
/// later, smaller jobs may still fit), then send Release-Job; a failed
/// release voids the hold and the job stays held. Ledger rows are dated by
/// `clock`.
pub async fn release(
    cfg: &PrinterConfig,
    client: &IppClient,
    writer: &WriterHandle,
    site: &LiveSite,
    clock: &Clock,
    member: &str,
    users: &[String],
) -> Result<Released, IppError> {
    // Both questions at once: the state costs the tap no extra round trip.
    let query = JobsQuery::new(cfg, Which::NotCompleted)?;
    let (printer, listed) = tokio::join!(state::fetch(cfg, client), query.fetch(client));
    let (printer, listed) = (printer?, listed?);
    let mut out = Released::default();
    if let Some(why) = printer.blocked() {
        out.kept = held_jobs_of(listed, users)
            .iter()
            .map(|j| (j.id, "printer cannot print".to_string()))
            .collect();
        out.blocked = Some(why);
        return Ok(out);
    }
    for job in held_jobs_of(listed, users) {
        let Some(estimate) = jobs::estimate_job(cfg, &job) else {
            out.kept.push((job.id, "no estimate".into()));
            continue;
        };
        let key = job.key(&cfg.id);
        let req = UsageRequest {
            key: key.clone(),
            member: Some(member.to_string()),
            origin: Origin::Print {
                printer: cfg.id.clone(),
            },
            payable: Payable::Printing,
            amount: estimate.cents,
            detail: jobs::estimate_detail(&job, &estimate).to_json(),
            at: clock.wall(),
        };
        let site = site.get();
        let placed = writer
            .call_async(move |conn| crate::ledger::usage::hold(conn, &site, &req))
            .await;
        match placed {
            Ok(HoldOutcome::Placed(_)) => {}
            Ok(HoldOutcome::Refused {
                available,
                needed,
                policy,
            }) => {
                out.kept.push((
                    job.id,
                    format!(
                        "{}: {available} cents available, estimate {needed}",
                        policy.as_str()
                    ),
                ));
                continue;
            }
            Err(e) => {
                out.kept
                    .push((job.id, format!("ledger: {}", error_chain(&e))));
                continue;
            }
        }
        // Whatever goes wrong from here on voids the hold: the job stays held.
        match send_job_op(cfg, client, Operation::ReleaseJob, job.id).await {
            Ok(()) => {
                out.jobs.push(job.id);
                // A figure for the log line only (each estimate is at most
                // MAX_UNITS); the holds themselves are in the ledger.
                out.estimate = out.estimate.saturating_add(estimate.cents);
            }
            Err(e) => {
                let reason = format!("Release-Job failed: {}", error_chain(&e));
                let (k, r, at) = (key.clone(), reason.clone(), clock.wall());
                let voided = writer
                    .call_async(move |conn| crate::ledger::usage::void(conn, &k, &r, at))
                    .await;
                if let Err(v) = voided {
                    tracing::error!(printer = %cfg.id, job_id = job.id, error = %error_chain(&v), "could not void the hold of a job that was not released");
                }
                out.kept.push((job.id, reason));
            }
        }
    }
    Ok(out)
}

/// Cancels held jobs older than the printer's hold timeout (they cost
/// nothing; a hold a crashed release left behind is voided when the
/// cancelled job is next listed). Returns the job ids cancelled.
pub async fn cancel_expired(
    cfg: &PrinterConfig,
    client: &IppClient,
    listed: &[Job],
    now: i64,
) -> Vec<i32> {
    let limit = cfg.hold_timeout.as_secs() as i64;
    let mut cancelled = Vec::new();
    for job in listed.iter().filter(|j| j.state == PENDING_HELD) {
        let Some(created) = job.created_at else {
            continue;
        };
        if now - created < limit {
            continue;
        }
        match send_job_op(cfg, client, Operation::CancelJob, job.id).await {
            Ok(()) => {
                tracing::info!(printer = %cfg.id, job_id = job.id, user = job.user.as_deref().unwrap_or(""),
                    held_s = now - created, "held job cancelled after the hold timeout; nothing charged");
                cancelled.push(job.id);
            }
            Err(e) => {
                tracing::warn!(printer = %cfg.id, job_id = job.id, error = %error_chain(&e), "could not cancel an expired held job")
            }
        }
    }
    cancelled
}

/// Sends `op` (Release-Job, Cancel-Job) for one job at `cfg`'s printer.
async fn send_job_op(
    cfg: &PrinterConfig,
    client: &IppClient,
    op: Operation,
    job_id: i32,
) -> Result<(), IppError> {
    let request = job_request(op, &cfg.uri, job_id)?;
    client.send(&cfg.uri, request, cfg.timeout).await?;
    Ok(())
}
