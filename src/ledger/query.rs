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
pub mod team;

use balance::members;
pub use balance::{balances, balances_now, Balance, NextExpiry};
pub use days::daily_totals;
pub use lots::{lots_of, LotLine, LotStatus};

use super::detail::UsageDetail;
use super::usage::CreditKind;
use super::{add, LedgerError, Result, Ts, PRINTING};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::collections::HashMap;

/// One line of a member's statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementLine {
    pub at: Ts,
    /// grant, debit, hold, settle, void, expire, adjust, refund.
    pub kind: String,
    /// `printing` or a time credit id.
    pub credit: String,
    /// Change to the member's credit (negative when spent).
    pub amount: i64,
    /// Change to the member's overage account.
    pub overage: i64,
    /// `cents` or `minutes`.
    pub unit: String,
    pub description: String,
    /// The usage's idempotency key, for `tallyd refund`.
    pub usage_key: Option<String>,
}

/// A statement: opening balance, lines, closing balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub member: String,
    pub name: String,
    pub from: Ts,
    pub to: Ts,
    pub opening: Balance,
    pub lines: Vec<StatementLine>,
    pub closing: Balance,
}

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

/// A member's statement for `[from, to)`: one line per event and credit.
pub fn statement(conn: &Connection, member: &str, from: Ts, to: Ts) -> Result<Statement> {
    let mut who = members(conn, Some(member))?;
    let (id, name, _) = who.remove(0);
    let mut lines = credit_lines(conn, &id, from, to)?;
    add_overage_lines(conn, &id, from, to, &mut lines)?;
    let mut lines: Vec<StatementLine> = lines.into_iter().map(|(_, l)| l).collect();
    lines.sort_by_key(|l| l.at);
    let opening = balances(conn, Some(&id), from - 1)?.remove(0);
    let closing = balances(conn, Some(&id), to - 1)?.remove(0);
    Ok(Statement {
        member: id,
        name,
        from,
        to,
        opening,
        lines,
        closing,
    })
}

/// A statement line and the usage it belongs to (`None` for a lot's own
/// events: a grant, an expiry, a void, an adjustment).
type UsageLine = (Option<i64>, StatementLine);

/// The changes to `member`'s lots in `[from, to)`, in history order. The rows
/// of one usage, kind and credit (a debit spread over lots) are one line.
fn credit_lines(conn: &Connection, member: &str, from: Ts, to: Ts) -> Result<Vec<UsageLine>> {
    let mut stmt = conn.prepare_cached(
        "SELECT h.at, h.kind, l.credit, h.delta, h.usage_id, h.note, l.source, u.origin, u.printer,
                u.resource, CASE WHEN h.kind = 'settle' THEN COALESCE(hr.detail, u.detail)
                ELSE u.detail END, u.key,
                (SELECT g.note FROM history g WHERE g.lot_id = l.id AND g.kind = 'grant' ORDER BY g.id LIMIT 1)
         FROM history h JOIN lots l ON l.id = h.lot_id LEFT JOIN usages u ON u.id = h.usage_id
         LEFT JOIN hold_resolutions hr ON hr.usage_id = u.id AND hr.outcome = 'settled'
         WHERE l.member_id = ?1 AND h.at >= ?2 AND h.at < ?3 ORDER BY h.id",
    )?;
    let mut rows = stmt.query(params![member, from, to])?;
    let mut lines: Vec<UsageLine> = Vec::new();
    while let Some(r) = rows.next()? {
        let usage: Option<i64> = r.get(4)?;
        let line = history_line(r)?;
        if let Some((last_usage, last)) = lines.last_mut() {
            if usage.is_some()
                && *last_usage == usage
                && last.kind == line.kind
                && last.credit == line.credit
            {
                last.amount = add(last.amount, line.amount)?;
                continue;
            }
        }
        lines.push((usage, line));
    }
    Ok(lines)
}

/// One history row (as [`credit_lines`] selects it) as a statement line: its
/// usage described, with the row's note; or the note; or the kind and the
/// lot's source.
fn history_line(r: &rusqlite::Row<'_>) -> Result<StatementLine> {
    let kind: String = r.get(1)?;
    let credit: String = r.get(2)?;
    let note: String = r.get(5)?;
    let source: String = r.get(6)?;
    let description = match r.get::<_, Option<String>>(7)? {
        Some(origin) => {
            let detail: String = r.get(10)?;
            let d = describe_usage(
                &origin,
                r.get::<_, Option<String>>(8)?.as_deref(),
                r.get::<_, Option<String>>(9)?.as_deref(),
                &detail,
            );
            if note.is_empty() {
                d
            } else {
                format!("{d} ({note})")
            }
        }
        // An expiry (or another row without a note) names the lot: the
        // plan benefit and period, product or grant it was issued for.
        None if note.is_empty() => match r.get::<_, Option<String>>(12)? {
            Some(granted) if !granted.is_empty() && kind != "grant" => {
                format!("{kind}: {granted}")
            }
            _ => format!("{kind} ({source})"),
        },
        None => note,
    };
    let unit = if credit == PRINTING {
        "cents"
    } else {
        "minutes"
    };
    Ok(StatementLine {
        at: r.get(0)?,
        kind,
        credit,
        amount: r.get(3)?,
        overage: 0,
        unit: unit.into(),
        description,
        usage_key: r.get(11)?,
    })
}

/// Adds `member`'s overage in `[from, to)` to `lines`: to the line of the same
/// usage and kind when there is one, else as a line of its own.
fn add_overage_lines(
    conn: &Connection,
    member: &str,
    from: Ts,
    to: Ts,
    lines: &mut Vec<UsageLine>,
) -> Result<()> {
    let mut ov = conn.prepare_cached(
        "SELECT o.at, o.kind, o.unit, o.amount, o.usage_id, u.origin, u.printer, u.resource,
                CASE WHEN o.kind = 'settle' THEN COALESCE(hr.detail, u.detail) ELSE u.detail END,
                u.key, COALESCE(u.resource_type, 'printing')
         FROM overage o JOIN usages u ON u.id = o.usage_id
         LEFT JOIN hold_resolutions hr ON hr.usage_id = u.id AND hr.outcome = 'settled'
         WHERE o.member_id = ?1 AND o.at >= ?2 AND o.at < ?3 ORDER BY o.id",
    )?;
    // Where each (usage, kind) line is, found by key rather than by a scan
    // of every line per overage row (a busy month has thousands of each).
    let mut at: HashMap<(Option<i64>, String), usize> = HashMap::with_capacity(lines.len());
    for (i, (usage, line)) in lines.iter().enumerate() {
        at.entry((*usage, line.kind.clone())).or_insert(i);
    }
    let mut rows = ov.query(params![member, from, to])?;
    while let Some(r) = rows.next()? {
        let kind: String = r.get(1)?;
        let amount: i64 = r.get(3)?;
        let usage: Option<i64> = r.get(4)?;
        let key = (usage, kind);
        if let Some(&i) = at.get(&key) {
            let line = &mut lines[i].1;
            line.overage = add(line.overage, amount)?;
            continue;
        }
        at.insert(key.clone(), lines.len());
        lines.push((usage, overage_line(r, key.1, amount)?));
    }
    Ok(())
}

/// An overage row (as [`add_overage_lines`] selects it) with no credit line of
/// its own usage and kind: a line that changes only the overage account.
fn overage_line(r: &rusqlite::Row<'_>, kind: String, amount: i64) -> Result<StatementLine> {
    let origin: String = r.get(5)?;
    let detail: String = r.get(8)?;
    let unit: String = r.get(2)?;
    Ok(StatementLine {
        at: r.get(0)?,
        kind,
        credit: if unit == "cents" {
            PRINTING.into()
        } else {
            r.get(10)?
        },
        amount: 0,
        overage: amount,
        unit,
        description: describe_usage(
            &origin,
            r.get::<_, Option<String>>(6)?.as_deref(),
            r.get::<_, Option<String>>(7)?.as_deref(),
            &detail,
        ),
        usage_key: r.get(9)?,
    })
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
