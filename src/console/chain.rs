//! The chain page (a site with `[central]`): where this site's outbox
//! stands (from its own ledger, so it shows while the centre is away),
//! every site as the centre knows it, the chain's month by site, and one
//! member's credit across the chain (the last three asked of the centre,
//! as `tallyd central sites` and `tallyd report|balance --central` read
//! them).

use super::members::amount;
use super::{Failure, Me, St};
use crate::central::client;
use crate::central::protocol::{ChainBalance, ChainReportRow, ChainSite};
use crate::clock;
use crate::config::{CentralConfig, Config};
use crate::ledger::outbox::{self, Backlog, Position};
use crate::money::{format_cents, format_minutes};
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use std::time::Duration;

/// How long the page waits for the centre before it says it did not
/// answer (the rest of the page does not wait on the link).
const CENTRE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Deserialize)]
pub struct ChainQuery {
    #[serde(default)]
    month: String,
    #[serde(default)]
    member: String,
}

pub async fn page(state: St, me: Me, Query(q): Query<ChainQuery>) -> Response {
    match render(&state, &me, &q).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// What the centre answered, or why it did not.
type Asked<T> = Result<T, String>;

async fn ask<T: serde::de::DeserializeOwned>(
    cfg: &CentralConfig,
    path: &str,
    query: &[(&str, &str)],
) -> Asked<T> {
    client::get_json(cfg, path, query, CENTRE_TIMEOUT)
        .await
        .map_err(|e| crate::logging::escape_controls(&format!("{e:#}")).into_owned())
}

async fn render(state: &St, me: &Me, q: &ChainQuery) -> Result<Response, Failure> {
    let config = state.config();
    let Some(central) = config.central.clone() else {
        return Err(Failure::bad(
            "this site is not in a chain: its config has no [central] section",
        ));
    };
    let (month, start, end) = super::report::month_asked(&config, state.now(), &q.month)?;
    let here = state
        .read(|c, _| Ok((outbox::position(c)?, outbox::backlog(c)?)))
        .await?;
    let (start, end) = (start.to_string(), end.to_string());
    let site = central.site_id.as_str();
    let report_query = [
        ("site_id", site),
        ("start", start.as_str()),
        ("end", end.as_str()),
        ("by", "site"),
    ];
    let member = q.member.trim();
    let by_site = ask::<Vec<ChainReportRow>>(&central, "/v1/report", &report_query);
    let balance = async {
        if member.is_empty() {
            return None;
        }
        let query = [("site_id", site), ("member", member)];
        Some(ask::<Vec<ChainBalance>>(&central, "/v1/balance", &query).await)
    };
    let sites_query = [("site_id", site)];
    let sites = ask::<Vec<ChainSite>>(&central, "/v1/sites", &sites_query);
    let (by_site, balance, sites) = tokio::join!(by_site, balance, sites);
    let body = html! {
        (this_site(&config, &central, here, state.now()))
        (chain_sites(&sites))
        (month_by_site(&config, &month, &by_site))
        (member_across(&config, member, balance))
    };
    Ok(me.page(state, "The chain", body))
}

fn this_site(
    config: &Config,
    central: &CentralConfig,
    here: (Option<Position>, Option<Backlog>),
    now: i64,
) -> Markup {
    html! {
        section aria-labelledby="here" {
            h2 #here { "This site: " (central.site_id) }
            p.note { "Ships its ledger's changes to " (central.url) "." }
            @match here {
                (Some(p), Some(b)) => {
                    table {
                        tbody {
                            tr { th { "Epoch" } td { (p.epoch) } }
                            tr { th { "Entries written" } td { (p.last_seq) } }
                            tr { th { "Acknowledged by the centre" } td { (p.acked_seq) } }
                            tr { th { "Waiting to be shipped" } td { (b.unacknowledged) } }
                            tr { th { "Oldest waiting since" } td {
                                @match b.oldest_at {
                                    Some(at) => { (clock::format_local(config.tz, at))
                                        " (" (format_minutes((now - at).max(0) / 60)) " ago)" }
                                    None => { "nothing waits" }
                                }
                            } }
                        }
                    }
                }
                _ => { p { "The outbox is not on yet: the daemon turns it on when it starts with [central]." } }
            }
        }
    }
}

/// Every site as the centre knows it: which is dark, which lags.
fn chain_sites(sites: &Asked<Vec<ChainSite>>) -> Markup {
    let or_dash = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
    html! {
        section aria-labelledby="sites" {
            h2 #sites { "The chain's sites, as the centre knows them" }
            @match sites {
                Err(why) => { p.err role="alert" { "The centre did not answer: " (why) } }
                Ok(rows) => { div.scroll { table {
                    thead { tr { th { "Site" } th.n { "Epoch" } th.n { "High water" }
                        th { "Last heard" } th.n { "Waiting then" } th { "Oldest waiting then" } } }
                    tbody { @for r in rows { tr {
                        td { (r.site) } td.n { (or_dash(r.epoch)) } td.n { (or_dash(r.high_water)) }
                        td { @match r.heard_seconds_ago {
                            Some(s) => { (clock::format_ago(s)) " ago" }
                            None => { "never" }
                        } }
                        td.n { (or_dash(r.unacknowledged)) }
                        td { @match r.ack_lag_seconds {
                            Some(0) => { "none" }
                            Some(s) => { (clock::format_ago(s)) }
                            None => { "-" }
                        } }
                    } } }
                } } }
            }
        }
    }
}

fn month_by_site(config: &Config, month: &str, by_site: &Asked<Vec<ChainReportRow>>) -> Markup {
    let sym = &config.currency_symbol;
    html! {
        section aria-labelledby="month" {
            h2 #month { "The chain in " (month) ", by site" }
            form.inline method="get" action="/console/chain" {
                label { "Month" input type="month" name="month" value=(month) required; }
                button type="submit" { "Show" }
            }
            @match by_site {
                Err(why) => { p.err role="alert" { "The centre did not answer: " (why) } }
                Ok(rows) if rows.is_empty() => { p { "No usage this month." } }
                Ok(rows) => { div.scroll { table {
                    thead { tr { th { "Site" } th.n { "Usages" } th.n { "Printing" }
                        th.n { "Time" } th.n { "Open holds" } th.n { "Refunds" } } }
                    tbody { @for r in rows { tr {
                        td { (r.key) } td.n { (r.usages) }
                        td.n { (format_cents(sym, r.printing_cents)) }
                        td.n { (format_minutes(r.minutes)) }
                        td.n { (r.open_holds) } td.n { (r.refunds) }
                    } } }
                } } }
            }
        }
    }
}

fn member_across(
    config: &Config,
    member: &str,
    balance: Option<Asked<Vec<ChainBalance>>>,
) -> Markup {
    let sym = &config.currency_symbol;
    html! {
        section aria-labelledby="across" {
            h2 #across { "A member across the chain" }
            form.inline method="get" action="/console/chain" {
                label { "Member id" input type="search" name="member" value=(member); }
                button type="submit" { "Ask the centre" }
            }
            @match balance {
                None => {}
                Some(Err(why)) => { p.err role="alert" { "The centre did not answer: " (why) } }
                Some(Ok(rows)) if rows.is_empty() => { p { "The centre knows no member " (member) "." } }
                Some(Ok(rows)) => { @for b in &rows {
                    p { (b.name) " (" (b.member) ")" @if b.closed { " — closed" } }
                    div.scroll { table {
                        thead { tr { th { "Credit" } th.n { "Left across the chain" } } }
                        tbody {
                            @for (credit, left) in &b.credits { tr {
                                td { (credit) } td.n { (amount(config, credit, *left)) }
                            } }
                            tr { td { "overage owed" } td.n {
                                (format_cents(sym, b.overage_cents))
                                @if b.overage_minutes > 0 { " and " (format_minutes(b.overage_minutes)) }
                            } }
                        }
                    } }
                } }
            }
        }
    }
}
