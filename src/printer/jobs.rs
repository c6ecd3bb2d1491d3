//! Print jobs as the printer reports them, and what they cost: pure code
//! from IPP attributes to a ledger usage, driven by tests with plain values.

use super::split::{self, Known, Split};
use crate::config::PrinterConfig;
use crate::ids::normalize_print_user;
use crate::ledger::detail::{ColourMode, ColourSource, UsageDetail};
use crate::ledger::jobs::FinishedJob;
use crate::pricing::{self, JobFacts, Sides};
use ipp::prelude::*;

/// `job-state` values (RFC 8011 §5.3.7).
pub const PENDING_HELD: i32 = 4;
pub const CANCELED: i32 = 7;
pub const ABORTED: i32 = 8;
pub const COMPLETED: i32 = 9;

/// One job, reduced to what tallyd uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Job {
    pub id: i32,
    pub uuid: Option<String>,
    pub state: i32,
    pub name: Option<String>,
    pub user: Option<String>,
    /// Unix seconds from `date-time-at-creation`.
    pub created_at: Option<i64>,
    /// `time-at-creation`: seconds on the printer's own clock.
    pub created_tick: Option<i64>,
    pub completed_at: Option<i64>,
    /// `job-impressions`: the size of the job, when the queue knows it.
    pub impressions: Option<i64>,
    pub impressions_completed: Option<i64>,
    /// From `job-impressions-completed-col`: (monochrome, colour).
    pub impressions_col: Option<(i64, i64)>,
    pub sheets_completed: Option<i64>,
    pub sides: Option<String>,
    pub color_mode: Option<String>,
    pub media: Option<String>,
    /// `copies`, when the job says.
    pub copies: Option<i64>,
    /// `number-up`: document pages on each side, when the job says.
    pub number_up: Option<i64>,
    /// `page-ranges`: the document pages to print (1-based, inclusive).
    pub page_ranges: Vec<(i64, i64)>,
    /// Count attributes the printer sent that are not integers (or
    /// collections of integers): the job's counts cannot be trusted.
    pub garbled: Vec<&'static str>,
    /// What the spool analysis of its document found, when it ran (not from
    /// the printer: the poller adds it from the ledger).
    pub known: Option<Known>,
}

impl Job {
    /// Whether the job can change no more (completed, cancelled, aborted).
    pub fn is_terminal(&self) -> bool {
        matches!(self.state, CANCELED | ABORTED | COMPLETED)
    }

    /// The idempotency key of the charge for this job at `printer`: the uuid,
    /// else the job id with its creation time (job ids repeat after a reset).
    pub fn key(&self, printer: &str) -> String {
        match (&self.uuid, self.created_at, self.created_tick) {
            (Some(uuid), _, _) => format!("print:{printer}:{uuid}"),
            (None, Some(at), _) => format!("print:{printer}:job-{}:created-{at}", self.id),
            (None, None, Some(tick)) => format!("print:{printer}:job-{}:tick-{tick}", self.id),
            (None, None, None) => format!("print:{printer}:job-{}", self.id),
        }
    }

    /// The job's identity across queues (a follow-me job moves to the
    /// printer it comes out of): its uuid, else its key at `printer`.
    pub fn identity(&self, printer: &str) -> String {
        match &self.uuid {
            Some(uuid) => uuid.clone(),
            None => self.key(printer),
        }
    }

    /// One- or two-sided, as the job asked.
    pub fn sides(&self) -> Sides {
        match self.sides.as_deref() {
            Some(s) if s.starts_with("two-sided") => Sides::TwoSided,
            _ => Sides::OneSided,
        }
    }

    /// The print user name, normalised as print user names in the grants
    /// file are (`DOMAIN\user`, `user@domain` and case do not matter).
    pub fn owner(&self) -> Option<String> {
        self.user
            .as_deref()
            .map(normalize_print_user)
            .filter(|u| !u.is_empty())
    }
}

/// The attributes that count what a job printed or will print.
const COUNTS: [&str; 5] = [
    "job-impressions",
    "job-impressions-completed",
    "job-impressions-completed-col",
    "job-media-sheets-completed",
    "copies",
];

/// Whether a count attribute holds what it should: an integer, or a
/// collection of integers (`job-impressions-completed-col`).
fn is_count(v: &IppValue) -> bool {
    match v {
        IppValue::Integer(_) => true,
        IppValue::Array(values) => values.iter().all(is_count),
        IppValue::Collection(members) => {
            members.values().all(|m| matches!(m, IppValue::Integer(_)))
        }
        _ => false,
    }
}

/// Every job in a `Get-Jobs` response.
pub fn parse_jobs(response: &IppRequestResponse) -> Vec<Job> {
    response
        .attributes()
        .groups_of(DelimiterTag::JobAttributes)
        .map(|group| {
            let get = |name: &str| group.get(name).map(|a| a.value());
            let int = |name: &str| get(name).and_then(integer);
            Job {
                id: get("job-id").and_then(integer).unwrap_or(0) as i32,
                uuid: get("job-uuid").and_then(text),
                state: get("job-state").and_then(integer).unwrap_or(0) as i32,
                name: get("job-name").and_then(text),
                user: get("job-originating-user-name").and_then(text),
                created_at: get("date-time-at-creation").and_then(unix_time),
                created_tick: int("time-at-creation"),
                completed_at: get("date-time-at-completed").and_then(unix_time),
                impressions: int("job-impressions"),
                impressions_completed: int("job-impressions-completed"),
                impressions_col: get("job-impressions-completed-col").and_then(colour_counts),
                sheets_completed: int("job-media-sheets-completed"),
                sides: get("sides").and_then(text),
                color_mode: get("print-color-mode").and_then(text),
                media: get("media").and_then(text).or_else(|| {
                    get("media-col").and_then(|c| match c {
                        IppValue::Collection(m) => m.get("media-size-name").and_then(text),
                        _ => None,
                    })
                }),
                copies: int("copies"),
                number_up: int("number-up"),
                page_ranges: get("page-ranges").map(ranges).unwrap_or_default(),
                garbled: COUNTS
                    .iter()
                    .copied()
                    .filter(|name| get(name).is_some_and(|v| !is_count(v)))
                    .collect(),
                known: None,
            }
        })
        .collect()
}

fn ranges(v: &IppValue) -> Vec<(i64, i64)> {
    match v {
        IppValue::RangeOfInteger { min, max } => vec![(i64::from(*min), i64::from(*max))],
        IppValue::Array(a) => a.iter().flat_map(ranges).collect(),
        _ => Vec::new(),
    }
}

pub(super) fn integer(v: &IppValue) -> Option<i64> {
    match v {
        IppValue::Integer(n) | IppValue::Enum(n) => Some(i64::from(*n)),
        IppValue::Array(a) => a.first().and_then(integer),
        _ => None,
    }
}

pub(super) fn text(v: &IppValue) -> Option<String> {
    let s = match v {
        IppValue::TextWithoutLanguage(t) => t.to_string(),
        IppValue::NameWithoutLanguage(n) => n.to_string(),
        IppValue::TextWithLanguage { text, .. } => text.to_string(),
        IppValue::NameWithLanguage { name, .. } => name.to_string(),
        IppValue::Keyword(k) => k.to_string(),
        IppValue::Uri(u) => u.to_string(),
        IppValue::Array(a) => return a.first().and_then(text),
        _ => return None,
    };
    Some(s)
}

fn unix_time(v: &IppValue) -> Option<i64> {
    let IppValue::DateTime(d) = v else {
        return None;
    };
    let date = chrono::NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())?;
    let local = date.and_hms_opt(d.hour.into(), d.minutes.into(), d.seconds.into())?;
    let offset = i64::from(d.utc_hours) * 3600 + i64::from(d.utc_mins) * 60;
    let offset = if d.utc_dir == '-' { -offset } else { offset };
    Some(local.and_utc().timestamp() - offset)
}

/// (monochrome, colour) impressions from a PWG 5100.7 impressions collection.
fn colour_counts(v: &IppValue) -> Option<(i64, i64)> {
    let IppValue::Collection(members) = v else {
        return None;
    };
    // Negative members stay negative, for the plausibility check to see.
    // (They are IPP's 32-bit integers, so their sum fits; checked all the same.)
    let sum = |names: &[&str]| -> Option<i64> {
        names
            .iter()
            .filter_map(|n| members.get(*n).and_then(integer))
            .try_fold(0i64, i64::checked_add)
    };
    let mono = sum(&["monochrome", "monochrome-two-sided"])?;
    let colour = sum(&[
        "full-color",
        "full-color-two-sided",
        "highlight-color",
        "highlight-color-two-sided",
    ])?;
    Some((mono, colour))
}

/// What a finished job costs, and the facts behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedJob {
    pub facts: JobFacts,
    pub cents: i64,
    pub colour: bool,
    /// Who said how many impressions were colour.
    pub colour_source: ColourSource,
}

/// Prices a finished job by the impressions it actually printed. `None` for a
/// job that printed nothing (it costs nothing) or whose price overflows.
pub fn price_job(printer: &PrinterConfig, job: &Job) -> Option<PricedJob> {
    let sides = job.sides();
    let total = match (job.impressions_completed, job.sheets_completed) {
        (Some(n), _) => n,
        (None, Some(sheets)) if sides == Sides::TwoSided => sheets.checked_mul(2)?,
        (None, Some(sheets)) => sheets,
        (None, None) => 0,
    };
    let split = split::split(
        total,
        job.impressions_col,
        job.known.as_ref(),
        asks_colour(job.color_mode.as_deref()),
        printer.colour_default,
    )?;
    priced(printer, job, split)
}

/// Prices `split` at `printer`; `None` when nothing was printed.
fn priced(printer: &PrinterConfig, job: &Job, split: Split) -> Option<PricedJob> {
    if split.mono.max(0) == 0 && split.colour.max(0) == 0 {
        return None;
    }
    let facts = JobFacts {
        mono_impressions: split.mono.max(0),
        colour_impressions: split.colour.max(0),
        sides: job.sides(),
        media: job.media.clone(),
    };
    let cents = pricing::price(&printer.prices, &facts)?;
    Some(PricedJob {
        colour: facts.colour_impressions > 0,
        facts,
        cents,
        colour_source: split.source,
    })
}

/// Estimated cost of a held job: what its spool analysis found, else its
/// `job-impressions` when the queue knows it, else the printer's page
/// estimate.
pub fn estimate_job(printer: &PrinterConfig, job: &Job) -> Option<PricedJob> {
    if let Some(k) = job.known.filter(|k| k.total().is_some_and(|t| t > 0)) {
        let split = Split {
            mono: k.mono,
            colour: k.colour,
            source: ColourSource::Analysis,
        };
        return priced(printer, job, split);
    }
    let mut guess = job.clone();
    guess.impressions_col = None;
    guess.sheets_completed = None;
    guess.impressions_completed = Some(job.impressions.unwrap_or(printer.page_estimate));
    price_job(printer, &guess)
}

/// The job's `print-color-mode` as colour (`true`) or mono, `None` when it
/// has none or one that says neither.
pub fn asks_colour(mode: Option<&str>) -> Option<bool> {
    match mode {
        Some("color") | Some("highlight") => Some(true),
        Some(m) if m.contains("monochrome") || m.contains("bi-level") => Some(false),
        _ => None,
    }
}

/// What the ledger keeps about a finished job's charge.
pub fn detail(job: &Job, priced: &PricedJob) -> UsageDetail {
    let f = &priced.facts;
    UsageDetail {
        job: Some(job.id),
        user: job.user.clone(),
        state: Some(state_name(job.state).to_string()),
        impressions: f.impressions(),
        colour: Some(ColourMode::of(priced.colour)),
        mono_impressions: Some(f.mono_impressions),
        colour_impressions: Some(f.colour_impressions),
        colour_source: Some(priced.colour_source),
        sides: Some(f.sides),
        media: f.media.clone(),
        ..UsageDetail::default()
    }
}

/// What the ledger keeps about a released job's hold: its estimate.
pub fn estimate_detail(job: &Job, estimate: &PricedJob) -> UsageDetail {
    let f = &estimate.facts;
    UsageDetail {
        job: Some(job.id),
        user: job.user.clone(),
        state: Some("released".into()),
        impressions: f.impressions(),
        colour: Some(ColourMode::of(estimate.colour)),
        // Only the analysis's split is worth a word on a hold (and a hold
        // placed before it existed keeps its fingerprint).
        colour_source: Some(estimate.colour_source).filter(|s| *s == ColourSource::Analysis),
        mono_impressions: Some(f.mono_impressions)
            .filter(|_| estimate.colour_source == ColourSource::Analysis),
        colour_impressions: Some(f.colour_impressions)
            .filter(|_| estimate.colour_source == ColourSource::Analysis),
        sides: Some(f.sides),
        estimate: Some(true),
        ..UsageDetail::default()
    }
}

/// What the ledger keeps about a job set aside for review: its facts, to
/// price it when a manager charges it.
pub fn review_detail(printer: &PrinterConfig, job: &Job) -> UsageDetail {
    UsageDetail {
        job: Some(job.id),
        user: job.user.clone(),
        state: Some(state_name(job.state).to_string()),
        colour: Some(ColourMode::of(
            asks_colour(job.color_mode.as_deref()).unwrap_or(printer.colour_default),
        )),
        sides: Some(job.sides()),
        media: job.media.clone(),
        ..UsageDetail::default()
    }
}

/// A finished, priced job as the ledger records it.
pub fn finished(printer: &str, job: &Job, priced: &PricedJob, now: i64) -> FinishedJob {
    FinishedJob {
        key: job.key(printer),
        printer: printer.to_string(),
        print_user: job.owner(),
        cents: priced.cents,
        detail: detail(job, priced),
        at: job.completed_at.unwrap_or(now),
    }
}

/// `completed`, `canceled`, `aborted`, ... for logs.
pub fn state_name(state: i32) -> &'static str {
    match state {
        3 => "pending",
        PENDING_HELD => "pending-held",
        5 => "processing",
        6 => "processing-stopped",
        CANCELED => "canceled",
        ABORTED => "aborted",
        COMPLETED => "completed",
        _ => "unknown",
    }
}

#[cfg(test)]
pub(crate) mod tests;
