//! The read side: balances (now or rebuilt for any past instant from history
//! alone), statements, monthly reports and recent unknown cards. Read-only
//! SQL; safe to run while the daemon writes.

mod balance;
pub mod columns;
pub mod days;
mod lots;
pub mod members;
pub mod months;
pub mod now;
mod statement;
pub mod team;

use balance::members;
pub use balance::{balances, balances_now, Balance, NextExpiry};
pub use days::daily_totals;
pub use lots::{lots_of, LotLine, LotStatus};
pub use statement::{
    statement, statement_ends, statement_lines, Statement, StatementEnds, StatementLine,
};

use super::detail::UsageDetail;
use super::usage::CreditKind;
use super::{add, LedgerError, Result, Ts};
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

fn describe_usage(
    origin: &str,
    printer: Option<&str>,
    resource: Option<&str>,
    detail: &str,
) -> String {
    let d = UsageDetail::parse(detail);
    match origin {
        "print" => {
            let mut text = format!("print at {}", printer.unwrap_or("?"));
            if let Some(job) = d.job {
                text.push_str(&format!(" job {job}"));
            }
            if let Some(n) = d.impressions {
                // A hold is placed for an estimate; its settle line has the
                // impressions really printed.
                let estimated = if d.estimate == Some(true) {
                    "estimated "
                } else {
                    ""
                };
                let noun = if n == 1 { "impression" } else { "impressions" };
                text.push_str(&format!(", {estimated}{n} {noun}"));
            }
            match (d.mono_impressions, d.colour_impressions) {
                (Some(m), Some(c)) if m > 0 && c > 0 => {
                    text.push_str(&format!(" ({m} mono, {c} colour)"))
                }
                _ => {
                    if let Some(c) = d.colour {
                        text.push_str(&format!(" {}", c.as_str()));
                    }
                }
            }
            if let Some(s) = d.sides {
                text.push_str(&format!(" {}", s.as_str()));
            }
            if let Some(source) = d.colour_source {
                text.push_str(&format!(", colour by {}", source.as_str()));
            }
            text
        }
        "session" => format!("session in {}", resource.unwrap_or("?")),
        _ => d.reason.unwrap_or_else(|| "manual charge".into()),
    }
}

/// How a monthly report is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportBy {
    Member,
    Printer,
    Resource,
    /// By the team each usage was made in (usages outside a team are left out).
    Team,
}

/// One row of a monthly report. Which columns matter depends on the grouping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReportRow {
    /// Member id, printer id or resource id; `(unattributed)` for print jobs
    /// no member owns.
    pub key: String,
    pub jobs: i64,
    pub impressions: i64,
    /// Every print job's cents, owned by a member or not.
    pub printing_cents: i64,
    /// The part of `printing_cents` no member owns.
    pub unattributed_cents: i64,
    pub sessions: i64,
    pub minutes: i64,
    pub overage_cents: i64,
    pub overage_minutes: i64,
    pub refunds: i64,
}

/// Usage in `[start, end)` grouped by member, printer, resource or team,
/// from the monthly roll-up ([`months`]).
pub fn report(conn: &Connection, start: Ts, end: Ts, by: ReportBy) -> Result<Vec<ReportRow>> {
    group_report(&months::totals(conn, start, end)?, by)
}

/// The report's rows from each group's sums: one per key with a usage in
/// the period, in key order. Overage is shown by member and by team.
fn group_report(totals: &months::Totals, by: ReportBy) -> Result<Vec<ReportRow>> {
    // Each key's row and how many usages it has.
    let mut rows: std::collections::BTreeMap<String, (ReportRow, i64)> = Default::default();
    for (g, s) in totals {
        let (key, counted) = match by {
            ReportBy::Member => (g.member.as_str(), true),
            ReportBy::Printer => (g.printer.as_str(), g.origin == "print"),
            ReportBy::Resource => (g.resource.as_str(), g.origin == "session"),
            ReportBy::Team => (g.team.as_str(), !g.team.is_empty()),
        };
        if !counted {
            continue;
        }
        let key = match (key, by) {
            ("", ReportBy::Member) => "(unattributed)",
            ("", _) => "(none)",
            (k, _) => k,
        };
        let (row, usages) = rows.entry(key.to_string()).or_insert_with(|| {
            let row = ReportRow {
                key: key.to_string(),
                ..ReportRow::default()
            };
            (row, 0)
        });
        *usages = add(*usages, s.usages)?;
        add_group(row, g, s, matches!(by, ReportBy::Member | ReportBy::Team))?;
    }
    Ok(rows
        .into_values()
        .filter(|(_, usages)| *usages > 0)
        .map(|(row, _)| row)
        .collect())
}

/// Adds one group's sums to its report row (its overage only if `overage`).
fn add_group(
    row: &mut ReportRow,
    g: &months::Group,
    s: &months::Sums,
    overage: bool,
) -> Result<()> {
    let (print, session) = (g.origin == "print", g.origin == "session");
    let printing = g.credit_kind == CreditKind::Printing.as_str();
    let pick = |yes: bool, n: i64| if yes { n } else { 0 };
    row.jobs = add(row.jobs, pick(print, s.usages))?;
    row.impressions = add(row.impressions, pick(print, s.impressions))?;
    row.printing_cents = add(row.printing_cents, pick(printing, s.charged))?;
    let unattributed = printing && g.member.is_empty();
    row.unattributed_cents = add(row.unattributed_cents, pick(unattributed, s.charged))?;
    row.sessions = add(row.sessions, pick(session, s.usages))?;
    row.minutes = add(
        row.minutes,
        pick(g.credit_kind == CreditKind::Time.as_str(), s.charged),
    )?;
    row.refunds = add(row.refunds, s.refunds)?;
    row.overage_cents = add(row.overage_cents, pick(overage, s.overage_cents))?;
    row.overage_minutes = add(row.overage_minutes, pick(overage, s.overage_minutes))?;
    Ok(())
}

/// An unknown card seen at a reader: when it was last tapped there, and how
/// many times since the cut-off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnknownCard {
    /// The whole id, as the reader reported it (to enrol it in the grants file).
    pub card: String,
    pub reader: String,
    pub last_seen: Ts,
    pub taps: i64,
}

/// Unknown cards tapped at or after `since`, one per card and reader, most
/// recently seen first; at most 100.
pub fn unknown_cards(conn: &Connection, since: Ts) -> Result<Vec<UnknownCard>> {
    let mut stmt = conn.prepare_cached(
        "SELECT card, reader, MAX(seen_at), COUNT(*) FROM unknown_cards
         WHERE seen_at >= ?1 GROUP BY card, reader ORDER BY MAX(seen_at) DESC LIMIT 100",
    )?;
    let cards = stmt
        .query_map([since], |r| {
            Ok(UnknownCard {
                card: r.get(0)?,
                reader: r.get(1)?,
                last_seen: r.get(2)?,
                taps: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(cards)
}

/// Whether a member exists (for clear CLI errors before other work).
pub fn member_known(conn: &Connection, member: &str) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM members WHERE id = ?1", [member], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?
        .is_some())
}

#[cfg(test)]
mod tests;
