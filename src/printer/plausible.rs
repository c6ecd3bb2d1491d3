//! Whether a finished job's counts make sense, before it is charged: a pure
//! function of the job and its printer's settings.
//!
//! A job is charged automatically only when what it printed is plausible:
//! integer counts, none negative, not above the printer's
//! `max_job_impressions`, and not above what its document could print
//! (`job-impressions` × copies, a blank back side per copy when two-sided,
//! and a small tolerance). A completed job that printed nothing of a
//! document with pages (the classic trick of forcing an error) is not
//! plausible either. Anything else goes to the review queue.

use super::jobs::{price_job, Job, PricedJob, COMPLETED};
use crate::config::PrinterConfig;
use crate::pricing::Sides;

/// What to do with a finished job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Its counts make sense: charge it.
    Charge(PricedJob),
    /// It printed nothing, plausibly: it costs nothing.
    Nothing,
    /// Set it aside for a manager.
    Review(Suspicion),
}

/// Why a job is set aside, and what the manager is offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspicion {
    pub reason: String,
    /// What the printer reported, as text (it may be absurd).
    pub reported: String,
    /// Impressions its document accounts for, when known.
    pub proposed: Option<i64>,
}

/// The impressions a job's document could print: pages × copies, each
/// copy padded to whole sheets when two-sided. `None` when the printer did
/// not say how big the document is.
pub fn expected(job: &Job) -> Option<i64> {
    let pages = job.impressions.filter(|&p| p > 0)?;
    let copies = job.copies.filter(|&c| c > 0).unwrap_or(1);
    let per_copy = match job.sides() {
        Sides::TwoSided => pages.checked_add(pages % 2)?,
        Sides::OneSided => pages,
    };
    per_copy.checked_mul(copies)
}

/// A little more than `expected`, for counters that round (5%, at least 2).
fn allowed(expected: i64) -> i64 {
    expected.saturating_add((expected / 20).max(2))
}

/// What the printer reported, for the review queue.
fn reported(job: &Job) -> String {
    let mut parts = Vec::new();
    if let Some(n) = job.impressions_completed {
        parts.push(format!("job-impressions-completed={n}"));
    }
    if let Some((mono, colour)) = job.impressions_col {
        parts.push(format!(
            "job-impressions-completed-col=mono {mono}, colour {colour}"
        ));
    }
    if let Some(n) = job.sheets_completed {
        parts.push(format!("job-media-sheets-completed={n}"));
    }
    if let Some(n) = job.impressions {
        parts.push(format!("job-impressions={n}"));
    }
    if let Some(n) = job.copies {
        parts.push(format!("copies={n}"));
    }
    for name in &job.garbled {
        parts.push(format!("{name}=(not an integer)"));
    }
    if parts.is_empty() {
        "no counts".into()
    } else {
        parts.join(", ")
    }
}

/// Every count the printer sent, for the sign check.
fn counts(job: &Job) -> impl Iterator<Item = i64> {
    let (mono, colour) = job.impressions_col.unwrap_or((0, 0));
    [
        job.impressions_completed,
        job.sheets_completed,
        job.impressions,
        job.copies,
        Some(mono),
        Some(colour),
    ]
    .into_iter()
    .flatten()
}

/// The reason a job's counts make no sense, if they do not.
fn implausible(cfg: &PrinterConfig, job: &Job, printed: i64) -> Option<String> {
    if let Some(name) = job.garbled.first() {
        return Some(format!("`{name}` is not an integer"));
    }
    if counts(job).any(|n| n < 0) {
        return Some("a count is negative".into());
    }
    if printed > cfg.max_job_impressions {
        return Some(format!(
            "{printed} impressions, over this printer's max_job_impressions of {}",
            cfg.max_job_impressions
        ));
    }
    match expected(job) {
        Some(could) if printed > allowed(could) => Some(format!(
            "{printed} impressions, more than its document's {could}"
        )),
        Some(could) if printed == 0 && job.state == COMPLETED => Some(format!(
            "completed with nothing printed, but its document has {could} impressions"
        )),
        _ => None,
    }
}

/// Impressions the job reports printed, as pricing reads them.
fn printed(job: &Job) -> i64 {
    match job.impressions_col {
        Some((mono, colour)) => mono.saturating_add(colour),
        None => match (job.impressions_completed, job.sheets_completed) {
            (Some(n), _) => n,
            (None, Some(sheets)) if job.sides() == Sides::TwoSided => sheets.saturating_mul(2),
            (None, Some(sheets)) => sheets,
            (None, None) => 0,
        },
    }
}

/// Why a finished job whose record the printer sent cannot be read in full
/// (`error`) is set aside: its counts cannot be trusted either. What could
/// be read of it is offered to the manager.
pub fn unreadable(job: &Job, error: &str) -> Suspicion {
    Suspicion {
        reason: format!("the printer's record of this job cannot be read: {error}"),
        reported: reported(job),
        proposed: expected(job),
    }
}

/// Charge it, it cost nothing, or review it (see the module docs).
pub fn judge(cfg: &PrinterConfig, job: &Job) -> Verdict {
    let review = |reason: String| {
        Verdict::Review(Suspicion {
            reason,
            reported: reported(job),
            proposed: expected(job),
        })
    };
    let printed = printed(job);
    if let Some(reason) = implausible(cfg, job, printed) {
        return review(reason);
    }
    match price_job(cfg, job) {
        Some(priced) => Verdict::Charge(priced),
        None if printed == 0 => Verdict::Nothing,
        None => review(format!(
            "{printed} impressions cannot be priced (too large)"
        )),
    }
}

#[cfg(test)]
mod tests;
