//! A month's report by member, printer, resource or team, with a small
//! server-rendered SVG chart of daily usage, and the same CSV as
//! `tallyd report --csv` to download.

use super::{Failure, Me, St};
use crate::clock;
use crate::config::Config;
use crate::ledger::query::columns::{report_cells, report_header, ReportUnits};
use crate::ledger::query::{self, ReportBy, ReportRow};
use crate::money::{format_cents, format_minutes};
use axum::extract::Query;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct ReportQuery {
    #[serde(default)]
    month: String,
    #[serde(default)]
    by: String,
}

/// The month asked for (default: this month) and its grouping.
struct Asked {
    month: String,
    by: ReportBy,
    start: i64,
    end: i64,
}

/// The month a page was asked for (`YYYY-MM`; empty: this month in the
/// site's time zone) and its bounds.
pub(super) fn month_asked(
    config: &Config,
    now: i64,
    text: &str,
) -> Result<(String, i64, i64), Failure> {
    let month = match text.trim() {
        "" => clock::local_date(config.tz, now)
            .format("%Y-%m")
            .to_string(),
        m => m.to_string(),
    };
    let (y, m) = clock::parse_month(&month)
        .ok_or_else(|| Failure::bad(format!("`{month}` is not a month (YYYY-MM)")))?;
    let (start, end) = clock::month_bounds(config.tz, y, m)
        .ok_or_else(|| Failure::bad(format!("`{month}` is out of range")))?;
    Ok((month, start, end))
}

fn asked(config: &Config, now: i64, q: &ReportQuery) -> Result<Asked, Failure> {
    let (month, start, end) = month_asked(config, now, &q.month)?;
    let by = match q.by.trim() {
        "" | "member" => ReportBy::Member,
        "printer" => ReportBy::Printer,
        "resource" => ReportBy::Resource,
        "team" => ReportBy::Team,
        other => {
            return Err(Failure::bad(format!(
                "`{other}` is not member, printer, resource or team"
            )))
        }
    };
    Ok(Asked {
        month,
        by,
        start,
        end,
    })
}

fn by_name(by: ReportBy) -> &'static str {
    match by {
        ReportBy::Member => "member",
        ReportBy::Printer => "printer",
        ReportBy::Resource => "resource",
        ReportBy::Team => "team",
    }
}

pub async fn page(state: St, me: Me, Query(q): Query<ReportQuery>) -> Response {
    match render(&state, &me, &q).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// The local days of `[start, end)`, each as its bounds.
fn days(config: &Config, start: i64, end: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut day = clock::local_date(config.tz, start);
    loop {
        let from = clock::local_midnight(config.tz, day);
        let Some(next) = day.succ_opt() else { break };
        if from >= end {
            break;
        }
        out.push((from, clock::local_midnight(config.tz, next).min(end)));
        day = next;
    }
    out
}

async fn render(state: &St, me: &Me, q: &ReportQuery) -> Result<Response, Failure> {
    let config = state.config();
    let a = asked(&config, state.now(), q)?;
    let (by, start, end) = (a.by, a.start, a.end);
    let periods = days(&config, start, end);
    let (rows, daily) = state
        .read(move |c, _| {
            Ok((
                query::report(c, start, end, by)?,
                query::daily_totals(c, &periods)?,
            ))
        })
        .await?;
    let units = ReportUnits {
        raw: false,
        sym: &config.currency_symbol,
    };
    let header = report_header(by, false);
    let csv = format!("/console/report.csv?month={}&by={}", a.month, by_name(by));
    let body = html! {
        section {
            form.inline method="get" action="/console/report" {
                label { "Month" input type="month" name="month" value=(a.month) required; }
                label { "By" select name="by" {
                    @for b in ["member", "printer", "resource", "team"] {
                        option value=(b) selected[b == by_name(by)] { (b) }
                    }
                } }
                button type="submit" { "Show" }
            }
            p { a href=(csv) download { "Download CSV (as tallyd report --csv)" } }
        }
        section aria-labelledby="chart" {
            h2 #chart { "Daily usage" }
            (chart("Printing per day", &daily.iter().map(|d| d.0).collect::<Vec<_>>(), |n| format_cents(&config.currency_symbol, n)))
            @if daily.iter().any(|d| d.1 > 0) {
                (chart("Time per day", &daily.iter().map(|d| d.1).collect::<Vec<_>>(), format_minutes))
            }
        }
        section aria-labelledby="tbl" {
            h2 #tbl { "Usage in " (a.month) " by " (by_name(by)) }
            @if rows.is_empty() { p { "(no usage this month)" } } @else {
                div.scroll { table {
                    thead { tr { @for (i, h) in header.iter().enumerate() { @if i == 0 { th { (h) } } @else { th.n { (h) } } } } }
                    tbody { @for r in &rows { tr {
                        @for (i, cell) in cells(by, r, &units).iter().enumerate() {
                            @if i == 0 { td { (cell) } } @else { td.n { (cell) } }
                        }
                    } } }
                } }
            }
        }
    };
    Ok(me.page(state, "Monthly report", body))
}

fn cells(by: ReportBy, r: &ReportRow, units: &ReportUnits<'_>) -> Vec<String> {
    report_cells(by, r, units)
}

/// A bar per day, scaled to the month's largest; each bar titled with its
/// day and amount (read by screen readers and on hover).
fn chart(title: &str, values: &[i64], show: impl Fn(i64) -> String) -> Markup {
    let (w, h, gap) = (20i64, 120i64, 4i64);
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let width = (w + gap) * values.len() as i64;
    let total: i64 = values.iter().fold(0i64, |a, v| a.saturating_add(*v));
    let bar = |v: i64| (v.saturating_mul(h) / max).max(i64::from(v > 0));
    html! {
        figure {
            figcaption { (title) ", total " (show(total)) }
            svg.chart role="img" aria-label=(format!("{title}: bars by day"))
                viewBox=(format!("0 0 {} {}", width.max(1), h + 16)) xmlns="http://www.w3.org/2000/svg" {
                @for (i, v) in values.iter().enumerate() {
                    @let x = i as i64 * (w + gap);
                    rect x=(x) y=(h - bar(*v)) width=(w) height=(bar(*v)) fill="#1f5fa8" {
                        title { "day " (i + 1) ": " (show(*v)) }
                    }
                    @if i % 5 == 0 {
                        text x=(x + w / 2) y=(h + 12) font-size="10" text-anchor="middle" fill="#5b6570" { (i + 1) }
                    }
                }
            }
        }
    }
}

pub async fn csv(state: St, _me: Me, Query(q): Query<ReportQuery>) -> Response {
    let config = state.config();
    let a = match asked(&config, state.now(), &q) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let (by, start, end) = (a.by, a.start, a.end);
    let rows = match state
        .read(move |c, _| query::report(c, start, end, by))
        .await
    {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let units = ReportUnits {
        raw: true,
        sym: &config.currency_symbol,
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let written = w.write_record(report_header(by, true)).and_then(|()| {
        rows.iter()
            .try_for_each(|r| w.write_record(report_cells(by, r, &units)))
    });
    let bytes = match written
        .map_err(|e| e.to_string())
        .and_then(|()| w.into_inner().map_err(|e| e.to_string()))
    {
        Ok(b) => b,
        Err(e) => return Failure::internal(&format!("cannot write the CSV: {e}")).into_response(),
    };
    let name = format!(
        "attachment; filename=\"report-{}-by-{}.csv\"",
        a.month,
        by_name(by)
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        bytes,
    )
        .into_response()
}
