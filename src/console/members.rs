//! The read pages: members (search, and a member's balance, team and
//! statement for a period) and "now" (held jobs, open room sessions, the
//! review queue, today's usages).

use super::held::{self, HeldAt};
use super::{pages, Failure, Me, St};
use crate::clock;
use crate::config::Config;
use crate::ledger::jobs::review;
use crate::ledger::query::{self, members, now as live, Balance, Statement, StatementLine};
use crate::ledger::{enrolments, sessions};
use crate::money::{format_cents, format_minutes};
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

/// An amount in its unit, as the CLI's tables show it.
pub fn amount(config: &Config, unit: &str, n: i64) -> String {
    match unit {
        "cents" | "printing" => format_cents(&config.currency_symbol, n),
        _ => format_minutes(n),
    }
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

pub async fn search(state: St, me: Me, Query(q): Query<SearchQuery>) -> Response {
    let text = q.q.clone();
    let found = match state.read(move |c, _| members::find(c, &text)).await {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let unknown = match super::enrol::unknown_cards(&state).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let body = html! {
        section {
            form.inline method="get" action="/console/members" role="search" {
                label { "Member id, name or card" input type="search" name="q" value=(q.q) autofocus; }
                button type="submit" { "Search" }
            }
        }
        @if !q.q.trim().is_empty() {
            section {
                @if found.is_empty() { p { "No member matches." } }
                @else {
                    div.scroll { table {
                        thead { tr { th { "Member" } th { "Name" } th { "Matched by" } } }
                        tbody { @for m in &found { tr {
                            td { a href=(member_link(&m.id)) { (m.id) } }
                            td { (m.name) @if m.closed { " (closed)" } }
                            td { (m.matched) }
                        } } }
                    } }
                }
            }
        }
        (unknown)
    };
    me.page(&state, "Members", body)
}

/// The member page's address for `id` (escaped for a query string).
pub fn member_link(id: &str) -> String {
    format!("/console/member?id={}", query_escape(id))
}

/// Percent-encodes everything but unreserved characters.
pub fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Deserialize)]
pub struct MemberQuery {
    id: String,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

/// What the member page shows.
struct MemberView {
    balance: Balance,
    cards: Vec<String>,
    team: Option<String>,
    statement: Statement,
    credits: Vec<String>,
    enrolled: Vec<enrolments::Enrolment>,
}

pub async fn member(state: St, me: Me, Query(q): Query<MemberQuery>) -> Response {
    match member_page(&state, &me, q).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn member_page(state: &St, me: &Me, q: MemberQuery) -> Result<Response, Failure> {
    let config = state.config();
    let now = state.now();
    let (from_day, to_day) = period(&config, now, q.from.as_deref(), q.to.as_deref())?;
    let start = clock::local_midnight(config.tz, from_day);
    let end = clock::local_midnight(config.tz, to_day.succ_opt().unwrap_or(to_day));
    let id = q.id.clone();
    let view = state
        .read(move |c, _| {
            let balance = query::balances_now(c, Some(&id), now)?
                .into_iter()
                .next()
                .ok_or_else(|| crate::ledger::LedgerError::UnknownMember(id.clone()))?;
            let (cards, team) = members::cards_and_team(c, &id)?;
            Ok(MemberView {
                balance,
                cards,
                team,
                statement: query::statement(c, &id, start, end)?,
                credits: members::time_credit_ids(c)?,
                enrolled: enrolments::of_member(c, &id)?,
            })
        })
        .await?;
    let grant_token = me.token(state);
    let b = &view.balance;
    let body = html! {
        section aria-labelledby="bal" {
            h2 #bal { (b.name) " (" (b.member) ")" @if b.closed { " — closed" } }
            p.note {
                "Team: " (view.team.as_deref().unwrap_or("none"))
                " · Cards: " @if view.cards.is_empty() { "none" } @else { (view.cards.join(", ")) }
            }
            @for e in &view.enrolled {
                p.note { "Card " (e.card) " enrolled by " (e.manager) " on "
                    (clock::format_local(config.tz, e.at)) ": " (e.reason) }
            }
            p { a href=(format!("/console/enrol?member={}", query_escape(&b.member))) { "Enrol a card for " (b.member) "…" } }
            (balance_table(&config, b))
            @if config.central.is_some() {
                p { a href=(format!("/console/chain?member={}#across", query_escape(&b.member))) { (b.member) "'s credit across the chain…" } }
            }
        }
        section aria-labelledby="st" {
            h2 #st { "Statement " (from_day) " to " (to_day) }
            form.inline method="get" action="/console/member" {
                input type="hidden" name="id" value=(b.member);
                label { "From" input type="date" name="from" value=(from_day); }
                label { "To" input type="date" name="to" value=(to_day); }
                button type="submit" { "Show" }
            }
            h3 { "Opening balance" }
            (balance_table(&config, &view.statement.opening))
            (statement_table(&config, &view.statement.lines))
            h3 { "Closing balance" }
            (balance_table(&config, &view.statement.closing))
        }
        section aria-labelledby="gr" {
            h2 #gr { "Grant a local adjustment" }
            form.stack method="post" action="/console/grant" {
                (pages::csrf(&grant_token))
                input type="hidden" name="member" value=(b.member);
                label { "Credit" select name="credit" {
                    option value="printing" { "printing (money)" }
                    @for c in &view.credits { option value=(c) { (c) " (time)" } }
                } }
                label { "Amount (money like 5.00 for printing, time like 90m or 2h)" input type="text" name="amount" required; }
                label { "Last valid day (optional)" input type="date" name="expires"; }
                (pages::reason("Reason (shown in the statement)"))
                (pages::confirm("I confirm this grant"))
                button type="submit" { "Grant" }
            }
        }
    };
    Ok(me.page(state, &format!("Member {}", b.member), body))
}

/// A statement's first and last day, as `tallyd statement` takes them:
/// default the first of this month to today.
fn period(
    config: &Config,
    now: i64,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(chrono::NaiveDate, chrono::NaiveDate), Failure> {
    let today = clock::local_date(config.tz, now);
    let day = |text: Option<&str>, default| match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(default),
        Some(t) => clock::parse_date(t)
            .ok_or_else(|| Failure::bad(format!("`{t}` is not a date (YYYY-MM-DD)"))),
    };
    let from = day(from, chrono::Datelike::with_day(&today, 1).unwrap_or(today))?;
    let to = day(to, today)?;
    if to < from {
        return Err(Failure::bad(format!("{to} is before {from}")));
    }
    Ok((from, to))
}

fn balance_table(config: &Config, b: &Balance) -> Markup {
    let owed = {
        let mut s = format_cents(&config.currency_symbol, b.overage_cents);
        if b.overage_minutes != 0 {
            s.push_str(&format!(" + {}", format_minutes(b.overage_minutes)));
        }
        s
    };
    html! {
        div.scroll { table {
            thead { tr { th { "Credit" } th.n { "Balance" } th { "Next to expire" } } }
            tbody {
                tr { td { "printing" } td.n { (format_cents(&config.currency_symbol, b.printing_cents)) } td { (expiry(config, b, "printing")) } }
                @for (credit, minutes) in &b.time_minutes {
                    tr { td { (credit) } td.n { (format_minutes(*minutes)) } td { (expiry(config, b, credit)) } }
                }
                tr { td { "overage owed" } td.n { (owed) } td {} }
            }
        } }
    }
}

fn expiry(config: &Config, b: &Balance, credit: &str) -> String {
    b.next_expiry
        .iter()
        .find(|e| e.credit == credit)
        .map(|e| {
            format!(
                "{} on {}",
                amount(config, credit, e.amount),
                clock::format_local(config.tz, e.at)
            )
        })
        .unwrap_or_default()
}

fn statement_table(config: &Config, lines: &[StatementLine]) -> Markup {
    html! {
        @if lines.is_empty() { p { "(no changes in this period)" } }
        @else {
            div.scroll { table {
                thead { tr {
                    th { "Date" } th { "Kind" } th { "Credit" } th.n { "Amount" } th.n { "Overage" }
                    th { "Description" } th { "Key" } th { span.note { "Action" } }
                } }
                tbody { @for l in lines { tr {
                    td { (clock::format_local(config.tz, l.at)) }
                    td { (l.kind) }
                    td { (l.credit) }
                    td.n { (amount(config, &l.unit, l.amount)) }
                    td.n { @if l.overage != 0 { (amount(config, &l.unit, l.overage)) } }
                    td { (l.description) }
                    td.key { (l.usage_key.as_deref().unwrap_or("")) }
                    td { @if let (Some(k), true) = (&l.usage_key, l.kind == "debit" || l.kind == "settle") {
                        a href=(format!("/console/refund?key={}", query_escape(k))) { "Refund…" }
                    } }
                } } }
            } }
        }
    }
}

/// What the now page shows.
struct NowView {
    held: Vec<HeldAt>,
    holds: Vec<live::UsageLine>,
    sessions: Vec<sessions::Open>,
    reviews: Vec<review::Review>,
    today: Vec<live::UsageLine>,
}

/// How often the now page reloads itself.
const NOW_REFRESH_SECS: u32 = 15;

/// Most of today's usages the now page lists.
const TODAY_LIMIT: usize = 100;

pub async fn now(state: St, me: Me) -> Response {
    let config = state.config();
    let midnight = clock::local_midnight(config.tz, clock::local_date(config.tz, state.now()));
    let mut held = match state.clients() {
        Ok(clients) => held::survey(&config, &clients).await,
        Err(e) => return e.into_response(),
    };
    let view = state
        .read(move |c, _| {
            held::owners_of(c, &mut held)?;
            Ok(NowView {
                held,
                holds: live::open_holds(c)?,
                sessions: sessions::all_open(c)?,
                reviews: review::list(c, true)?,
                today: live::usages_since(c, midnight, TODAY_LIMIT)?,
            })
        })
        .await;
    let view = match view {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let at = |t| clock::format_local(config.tz, t);
    let who = |m: &Option<String>| m.clone().unwrap_or_else(|| "(no member)".into());
    let body = html! {
        p.note { "As of " (at(state.now())) "; this page reloads every " (NOW_REFRESH_SECS) " seconds. " a href="/console/now" { "Refresh now" } }
        @if let Some(snap) = state.observer().map(|o| o.snapshot()) {
            section aria-labelledby="devices" {
                h2 #devices { "Printers and readers" }
                div.scroll { table {
                    thead { tr { th { "Printer or reader" } th { "State" } th { "Since" } th { "Why" } } }
                    tbody {
                        @for (kind, map) in [("printer", &snap.printers), ("reader", &snap.readers)] {
                            @for (id, c) in map { tr {
                                td { (kind) " " (id) }
                                @match c.up {
                                    Some(true) => td.up { "up" },
                                    Some(false) => td.down { "down" },
                                    None => td { "not yet known" },
                                }
                                td { (at(c.since)) }
                                td { (c.reason.as_deref().unwrap_or("")) }
                            } }
                        }
                    }
                } }
            }
        }
        section aria-labelledby="held" {
            h2 #held { "Held jobs (" (view.held.iter().map(|h| h.jobs.len()).sum::<usize>()) ")" }
            @if view.held.is_empty() { p { "No held printers." } }
            @for h in &view.held {
                h3 { (h.printer) }
                @if let Some(e) = &h.error { p.down { "Cannot list its jobs: " (e) } }
                @else if h.jobs.is_empty() { p { "None waiting." } }
                @else { div.scroll { table {
                    thead { tr { th { "Job" } th { "Owner" } th.n { "Estimate" } th { "Document" } th { "Since" } th { span.note { "Action" } } } }
                    tbody { @for j in &h.jobs { tr {
                        td { (j.id) }
                        td { @if let Some(m) = &j.member { a href=(member_link(m)) { (m) } }
                             @else { (j.user.as_deref().unwrap_or("?")) " (no member)" } }
                        td.n { (j.estimate.map(|c| format_cents(&config.currency_symbol, c)).unwrap_or_else(|| "?".into())) }
                        td { (j.name.as_deref().unwrap_or("")) }
                        td { (j.created_at.map(at).unwrap_or_default()) }
                        td { a href=(format!("/console/held/cancel?printer={}&job={}", query_escape(&h.printer), j.id)) { "Cancel…" } }
                    } } }
                } } }
            }
        }
        section aria-labelledby="printing" {
            h2 #printing { "Released, printing (" (view.holds.len()) ")" }
            @if view.holds.is_empty() { p { "None." } } @else {
                div.scroll { table {
                    thead { tr { th { "Printer" } th { "Owner" } th.n { "Estimate" } th { "Job" } th { "Since" } th { "Key" } } }
                    tbody { @for h in &view.holds { tr {
                        td { (h.place) }
                        td { @if let Some(m) = &h.member { a href=(member_link(m)) { (m) } } @else { "(no member)" } }
                        td.n { (amount(&config, &h.credit_kind, h.amount)) }
                        td { (h.description) }
                        td { (at(h.at)) }
                        td.key { (h.key) }
                    } } }
                } }
            }
        }
        section aria-labelledby="rooms" {
            h2 #rooms { "Open room sessions (" (view.sessions.len()) ")" }
            @if view.sessions.is_empty() { p { "None." } } @else {
                div.scroll { table {
                    thead { tr { th { "Room" } th { "Member" } th { "Since" } th { span.note { "Action" } } } }
                    tbody { @for s in &view.sessions { tr {
                        td { (s.resource) } td { a href=(member_link(&s.member)) { (s.member) } } td { (at(s.started_at)) }
                        td { a href=(format!("/console/session/end?id={}", s.id)) { "End…" } }
                    } } }
                } }
            }
        }
        section aria-labelledby="rev" {
            h2 #rev { "Review queue (" (view.reviews.len()) ")" }
            @if view.reviews.is_empty() { p { "Nothing to review." } } @else {
                p { a href="/console/review" { "Resolve the jobs in review" } }
            }
        }
        section aria-labelledby="today" {
            h2 #today { "Today's usage" }
            @if view.today.is_empty() { p { "None yet." } } @else {
                div.scroll { table {
                    thead { tr { th { "At" } th { "Member" } th { "Where" } th.n { "Amount" } th { "What" } } }
                    tbody { @for u in &view.today { tr {
                        td { (at(u.at)) } td { (who(&u.member)) } td { (u.place) }
                        td.n { (amount(&config, &u.credit_kind, u.amount)) @if u.is_hold { " (held)" } }
                        td { (u.description) }
                    } } }
                } }
            }
        }
    };
    me.page_refreshed(&state, "Now", body, Some(NOW_REFRESH_SECS))
}
