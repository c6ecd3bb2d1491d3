//! What a manager's charge of a job in review bills: the impressions (the
//! manager's number, or what the job's document accounts for) at its
//! printer's prices. A pure function, shared by `tallyd review charge` and
//! the console.

use super::Review;
use crate::config::{PrinterConfig, MAX_JOB_IMPRESSIONS_LIMIT};
use crate::ledger::detail::ColourMode;
use crate::pricing::{self, JobFacts, Sides};

/// Why a job in review cannot be charged as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("the printer did not say how big `{0}` is: give the impressions")]
    SizeUnknown(String),
    #[error("the impressions must be from 1 to {MAX_JOB_IMPRESSIONS_LIMIT} (waive a job that printed nothing)")]
    OutOfRange,
    #[error("printer `{0}` is not in the config, so its prices are unknown")]
    UnknownPrinter(String),
    #[error("{impressions} impressions cannot be priced at `{printer}`")]
    Unpriceable { impressions: i64, printer: String },
}

/// The impressions and cents a charge of `r` bills: `impressions`, or what
/// its document accounts for, at its printer's prices.
pub fn charge_of(
    printers: &[PrinterConfig],
    r: &Review,
    impressions: Option<i64>,
) -> Result<(i64, i64), PriceError> {
    let n = impressions
        .or(r.proposed)
        .ok_or_else(|| PriceError::SizeUnknown(r.key.clone()))?;
    if !(1..=MAX_JOB_IMPRESSIONS_LIMIT).contains(&n) {
        return Err(PriceError::OutOfRange);
    }
    let printer = printers
        .iter()
        .find(|p| p.id == r.printer)
        .ok_or_else(|| PriceError::UnknownPrinter(r.printer.clone()))?;
    let colour = r.detail.colour == Some(ColourMode::Colour);
    let facts = JobFacts {
        mono_impressions: if colour { 0 } else { n },
        colour_impressions: if colour { n } else { 0 },
        sides: r.detail.sides.unwrap_or(Sides::OneSided),
        media: r.detail.media.clone(),
    };
    let cents = pricing::price(&printer.prices, &facts).ok_or_else(|| PriceError::Unpriceable {
        impressions: n,
        printer: r.printer.clone(),
    })?;
    Ok((n, cents))
}
