//! From a finished job to the ledger and one log line: judge its counts
//! ([`plausible`](super::plausible)), hand the ledger plain values (a charge,
//! nothing printed, or a job set aside for review), and say what happened.

use super::jobs::{self, Job, PricedJob};
use super::plausible::{self, Suspicion, Verdict};
use crate::config::PrinterConfig;
use crate::ledger::jobs::review::{self, Suspect};
use crate::ledger::jobs::{self as ledger_jobs, Recorded};
use crate::ledger::writer::WriterHandle;
use crate::ledger::{Charge, LedgerError, Result, Site};
use crate::observe::{Observer, Outcome};
use tokio::sync::oneshot;

/// A job handed to the writer, waiting for its commit.
pub struct Pending {
    pub key: String,
    pub job: Job,
    verdict: Verdict,
    /// Set aside because its record cannot be read (not for its counts).
    unreadable: bool,
    reply: oneshot::Receiver<Result<Recorded>>,
}

/// Judges a finished job and queues what the ledger should do with it, as
/// of `now` (unix seconds, from the daemon's clock).
pub fn submit(
    cfg: &PrinterConfig,
    writer: &WriterHandle,
    site: &Site,
    job: Job,
    now: i64,
) -> Pending {
    let key = job.key(&cfg.id);
    let verdict = plausible::judge(cfg, &job);
    let reply = match &verdict {
        Verdict::Charge(p) => {
            let finished = jobs::finished(&cfg.id, &job, p, now);
            let site = site.clone();
            writer.submit(move |conn| ledger_jobs::record_finished(conn, &site, &finished))
        }
        // Costs nothing; if it was released from hold, the hold goes (at a
        // follow-me queue, one placed for any printer it releases to).
        Verdict::Nothing => {
            let keys: Vec<String> = std::iter::once(key.clone())
                .chain(cfg.release_to.iter().map(|t| job.key(t)))
                .collect();
            let reason = nothing_printed(&job);
            writer.submit(move |conn| {
                let mut recorded = Recorded::Already;
                for k in &keys {
                    match ledger_jobs::record_nothing_printed(conn, k, &reason, now)? {
                        Recorded::Already => {}
                        r => recorded = r,
                    }
                }
                Ok(recorded)
            })
        }
        Verdict::Review(s) => {
            let suspect = suspect(cfg, &job, s, now);
            writer.submit(move |conn| review::set_aside(conn, &suspect))
        }
    };
    Pending {
        key,
        job,
        verdict,
        unreadable: false,
        reply,
    }
}

/// Sets aside a finished job whose record the printer sent cannot be read
/// (`error`), with what could be read of it (`job`), as of `now`.
pub fn set_aside_unreadable(
    cfg: &PrinterConfig,
    writer: &WriterHandle,
    job: Job,
    error: &str,
    now: i64,
) -> Pending {
    let suspicion = plausible::unreadable(&job, error);
    let suspect = suspect(cfg, &job, &suspicion, now);
    Pending {
        key: suspect.key.clone(),
        job,
        verdict: Verdict::Review(suspicion),
        unreadable: true,
        reply: writer.submit(move |conn| review::set_aside(conn, &suspect)),
    }
}

fn nothing_printed(job: &Job) -> String {
    format!(
        "job {} {} with nothing printed",
        job.id,
        jobs::state_name(job.state)
    )
}

fn suspect(cfg: &PrinterConfig, job: &Job, s: &Suspicion, now: i64) -> Suspect {
    Suspect {
        key: job.key(&cfg.id),
        printer: cfg.id.clone(),
        job_id: job.id,
        print_user: job.owner(),
        reason: s.reason.clone(),
        reported: s.reported.clone(),
        proposed: s.proposed,
        detail: jobs::review_detail(cfg, job),
        at: job.completed_at.unwrap_or(now),
    }
}

/// Waits for the commit, logs one line for what happened and tells
/// `observer`; `Ok(true)` when the job was charged now. An error is for the
/// caller to log once.
pub async fn finish(printer: &str, mut p: Pending, observer: &Observer) -> Result<bool> {
    let recorded = (&mut p.reply)
        .await
        .unwrap_or(Err(LedgerError::WriterGone))?;
    observe(printer, &p, &recorded, observer);
    Ok(log(printer, &p, recorded))
}

/// Counts a job newly recorded by its outcome (a review is notified too).
fn observe(printer: &str, p: &Pending, recorded: &Recorded, observer: &Observer) {
    let (job, verdict) = (&p.job, &p.verdict);
    let priced = match verdict {
        Verdict::Charge(priced) => priced,
        Verdict::Review(s) => {
            if matches!(recorded, Recorded::SetAside) {
                observer.job_to_review(printer, job.id, job.owner(), &s.reason);
            }
            return;
        }
        Verdict::Nothing => return,
    };
    let outcome = match recorded {
        Recorded::Charged { member: None, .. } => Outcome::Unattributed,
        Recorded::Charged { .. } | Recorded::Settled { .. } => Outcome::Charged,
        _ => return,
    };
    let impressions = priced
        .facts
        .impressions()
        .and_then(|n| u64::try_from(n).ok());
    let impressions = impressions.unwrap_or(0);
    observer.job_recorded(printer, outcome, impressions, priced.cents);
}

fn log(printer: &str, p: &Pending, recorded: Recorded) -> bool {
    let (job, verdict) = (&p.job, &p.verdict);
    match (recorded, verdict) {
        (Recorded::Charged { member, charge }, Verdict::Charge(priced)) => {
            log_charge(printer, job, priced, member.as_deref(), &charge);
            true
        }
        (
            Recorded::Settled {
                member,
                estimate,
                charge,
            },
            Verdict::Charge(priced),
        ) => {
            tracing::info!(member = %member, printer = %printer, job_id = job.id,
                impressions = priced.facts.impressions(),
                estimate_cents = estimate, cents = priced.cents, overage = charge.overage,
                balance_after = charge.balance_after, "released job settled");
            true
        }
        (Recorded::Voided { member, estimate }, _) => {
            tracing::info!(member = %member, printer = %printer, job_id = job.id,
                state = jobs::state_name(job.state), estimate_cents = estimate,
                "released job printed nothing; hold voided, nothing charged");
            false
        }
        (Recorded::SetAside, Verdict::Review(s)) if p.unreadable => {
            let user = job.user.as_deref().unwrap_or("");
            tracing::warn!(printer = %printer, job_id = job.id, user, key = %p.key, reason = %s.reason,
                "job set aside for review: the printer's record of it cannot be read; nothing charged (see `tallyd review`)");
            false
        }
        (Recorded::SetAside, Verdict::Review(s)) => {
            let user = job.user.as_deref().unwrap_or("");
            tracing::warn!(printer = %printer, job_id = job.id, user, state = jobs::state_name(job.state),
                reason = %s.reason, reported = %s.reported,
                "job set aside for review: its counts make no sense; nothing charged (see `tallyd review`)");
            false
        }
        _ => false,
    }
}

fn log_charge(printer: &str, job: &Job, priced: &PricedJob, member: Option<&str>, charge: &Charge) {
    let impressions = priced.facts.impressions();
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
