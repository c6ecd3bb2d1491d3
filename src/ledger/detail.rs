//! The facts behind a usage's amount (a job's impressions, a session's
//! minutes, a manager's reason), as one typed value serialised in one place.
//!
//! The ledger stores it as JSON text in `usages.detail` (and a settle's in
//! `hold_resolutions.detail`); statements and reports read it back with
//! [`UsageDetail::parse`]. Fields are declared in alphabetical order, the
//! order of the JSON objects earlier versions wrote, and absent fields are
//! left out.

use crate::pricing::Sides;
use serde::{Deserialize, Serialize};

/// How a print job was priced: in colour or in mono.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ColourMode {
    Colour,
    Mono,
}

impl ColourMode {
    pub fn of(colour: bool) -> ColourMode {
        if colour {
            ColourMode::Colour
        } else {
            ColourMode::Mono
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ColourMode::Colour => "colour",
            ColourMode::Mono => "mono",
        }
    }
}

/// Who said how many of a job's impressions were colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ColourSource {
    /// The printer's `job-impressions-completed-col`.
    Printer,
    /// The spool analysis of the job's document.
    Analysis,
    /// The job's `print-color-mode`.
    JobMode,
    /// The printer's `colour_default` (the job said nothing).
    PrinterDefault,
}

impl ColourSource {
    /// How a statement says it.
    pub fn as_str(self) -> &'static str {
        match self {
            ColourSource::Printer => "printer's colour counts",
            ColourSource::Analysis => "spool analysis",
            ColourSource::JobMode => "job's colour mode",
            ColourSource::PrinterDefault => "printer default",
        }
    }
}

/// What a usage was: every field optional, each origin filling its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageDetail {
    /// Print: colour or mono pricing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<ColourMode>,
    /// Print: colour impressions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour_impressions: Option<i64>,
    /// Print: who said how many impressions were colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour_source: Option<ColourSource>,
    /// Print: the amount is an estimate (a hold for a released job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<bool>,
    /// Print: impressions, mono and colour together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impressions: Option<i64>,
    /// Session: the charging increment, in minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub increment: Option<i64>,
    /// Print: the printer's job id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<i32>,
    /// Print: the PWG media name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<String>,
    /// Session: minutes charged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<i64>,
    /// Print: mono impressions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mono_impressions: Option<i64>,
    /// Session: why it ended; manual: the manager's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Session: seconds it lasted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<i64>,
    /// Session: its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<i64>,
    /// Print: one- or two-sided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sides: Option<Sides>,
    /// Session: when it started (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    /// Print: the job's state (`completed`, `released`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Print: the job's user name as the printer reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl UsageDetail {
    /// A manual charge's detail: the manager's reason.
    pub fn manual(reason: &str) -> UsageDetail {
        UsageDetail {
            reason: Some(reason.to_string()),
            ..UsageDetail::default()
        }
    }

    /// The JSON text stored in the ledger.
    pub fn to_json(&self) -> String {
        // Invariant: a struct of strings, integers and unit enums always
        // serialises; an empty object would only lose statement wording.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// Reads stored text back; text that is not a detail reads as empty
    /// (a statement then shows the origin alone).
    pub fn parse(text: &str) -> UsageDetail {
        serde_json::from_str(text).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_print_detail_round_trips_and_reads_what_earlier_versions_wrote() {
        let d = UsageDetail {
            job: Some(7),
            user: Some("alice".into()),
            state: Some("completed".into()),
            impressions: Some(3),
            colour: Some(ColourMode::Mono),
            mono_impressions: Some(3),
            colour_impressions: Some(0),
            sides: Some(Sides::TwoSided),
            ..UsageDetail::default()
        };
        let text = d.to_json();
        assert_eq!(
            text,
            r#"{"colour":"mono","colour_impressions":0,"impressions":3,"job":7,"mono_impressions":3,"sides":"two-sided","state":"completed","user":"alice"}"#
        );
        assert_eq!(UsageDetail::parse(&text), d);
        let old = r#"{"colour":"mono","colour_impressions":0,"impressions":3,"job":7,"media":null,"mono_impressions":3,"sides":"two-sided","state":"completed","user":null}"#;
        let read = UsageDetail::parse(old);
        assert_eq!(read.user, None);
        assert_eq!(read.impressions, Some(3));
        assert_eq!(UsageDetail::parse("not json"), UsageDetail::default());
    }
}
