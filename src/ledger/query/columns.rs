//! A monthly report's columns as tables and CSV show them, shared by
//! `tallyd report` and the console (so the console's CSV is the CLI's):
//! raw integer cents and minutes with their unit in the column name, or
//! money and hours for people.

use super::{ReportBy, ReportRow};
use crate::money::{format_cents, format_minutes};

/// How a report writes amounts.
pub struct ReportUnits<'a> {
    /// Integer cents and minutes (CSV, JSON tools).
    pub raw: bool,
    pub sym: &'a str,
}

impl ReportUnits<'_> {
    fn money(&self, cents: i64) -> String {
        if self.raw {
            cents.to_string()
        } else {
            format_cents(self.sym, cents)
        }
    }

    fn time(&self, minutes: i64) -> String {
        if self.raw {
            minutes.to_string()
        } else {
            format_minutes(minutes)
        }
    }
}

/// A report's columns for its grouping; raw ones name their unit.
pub fn report_header(by: ReportBy, raw: bool) -> Vec<&'static str> {
    match (by, raw) {
        (ReportBy::Member | ReportBy::Team, true) => vec![
            if by == ReportBy::Team {
                "team"
            } else {
                "member"
            },
            "jobs",
            "impressions",
            "printing_cents",
            "sessions",
            "minutes",
            "overage_cents",
            "overage_minutes",
            "refunds",
        ],
        (ReportBy::Member | ReportBy::Team, false) => vec![
            if by == ReportBy::Team {
                "team"
            } else {
                "member"
            },
            "jobs",
            "impressions",
            "printing",
            "sessions",
            "time",
            "overage",
            "overage time",
            "refunds",
        ],
        (ReportBy::Printer, true) => vec![
            "printer",
            "jobs",
            "impressions",
            "charged_cents",
            "unattributed_cents",
            "refunds",
        ],
        (ReportBy::Printer, false) => vec![
            "printer",
            "jobs",
            "impressions",
            "charged",
            "unattributed",
            "refunds",
        ],
        (ReportBy::Resource, true) => vec!["resource", "sessions", "minutes", "refunds"],
        (ReportBy::Resource, false) => vec!["resource", "sessions", "time", "refunds"],
    }
}

/// One report row's cells, in [`report_header`]'s columns.
pub fn report_cells(by: ReportBy, r: &ReportRow, units: &ReportUnits<'_>) -> Vec<String> {
    match by {
        ReportBy::Member | ReportBy::Team => vec![
            r.key.clone(),
            r.jobs.to_string(),
            r.impressions.to_string(),
            units.money(r.printing_cents),
            r.sessions.to_string(),
            units.time(r.minutes),
            units.money(r.overage_cents),
            units.time(r.overage_minutes),
            r.refunds.to_string(),
        ],
        ReportBy::Printer => vec![
            r.key.clone(),
            r.jobs.to_string(),
            r.impressions.to_string(),
            units.money(r.printing_cents),
            units.money(r.unattributed_cents),
            r.refunds.to_string(),
        ],
        ReportBy::Resource => vec![
            r.key.clone(),
            r.sessions.to_string(),
            units.time(r.minutes),
            r.refunds.to_string(),
        ],
    }
}
