//! `[analysis]`: the spool analysis of held jobs' documents (on unless
//! `enabled = false`), and what one analysis may cost before the job falls
//! back to its page estimate.

use super::{duration_field, ConfigError, ErrAt};
use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAnalysis {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    max_pages: Option<Spanned<i64>>,
    #[serde(default)]
    max_mb: Option<Spanned<i64>>,
    #[serde(default)]
    timeout: Option<Spanned<String>>,
}

/// The spool analysis's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalysisConfig {
    pub enabled: bool,
    /// A document with more pages is not analysed.
    pub max_pages: u32,
    /// A larger document is not fetched.
    pub max_bytes: u64,
    /// Wall-clock time for fetching and analysing one document.
    pub timeout: Duration,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            enabled: true,
            max_pages: 1_000,
            max_bytes: 100 << 20,
            timeout: Duration::from_secs(60),
        }
    }
}

pub(super) fn section(
    raw: Option<RawAnalysis>,
    err: &ErrAt<'_>,
) -> Result<AnalysisConfig, ConfigError> {
    let raw = raw.unwrap_or_default();
    let d = AnalysisConfig::default();
    let within = |v: &Option<Spanned<i64>>, field: &str, max: i64, default: i64| match v {
        None => Ok(default),
        Some(n) if (1..=max).contains(n.get_ref()) => Ok(*n.get_ref()),
        Some(n) => Err(err(
            Some(n.span()),
            field,
            format!("must be from 1 to {max}"),
        )),
    };
    let max_pages = within(
        &raw.max_pages,
        "analysis.max_pages",
        100_000,
        i64::from(d.max_pages),
    )?;
    let max_mb = within(&raw.max_mb, "analysis.max_mb", 4096, 100)?;
    Ok(AnalysisConfig {
        enabled: raw.enabled.unwrap_or(true),
        max_pages: max_pages as u32,
        max_bytes: (max_mb as u64) << 20,
        timeout: duration_field(&raw.timeout, "analysis.timeout", d.timeout, err)?,
    })
}
