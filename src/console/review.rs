//! The review queue: the jobs set aside because their counts made no
//! sense, and the manager's word on each, as `tallyd review charge` and
//! `tallyd review waive` give it.

use super::members::{member_link, query_escape};
use super::{confirmed, noted, pages, text_field, Failure, KeyedForm, Me, St};
use crate::clock;
use crate::ledger::jobs::review;
use crate::money::format_cents;
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

pub async fn list(state: St, me: Me) -> Response {
    let reviews = match state.read(|c, _| review::list(c, true)).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let config = state.config();
    let body = html! {
        section {
            @if reviews.is_empty() { p { "No jobs in review." } } @else {
                div.scroll { table {
                    thead { tr { th { "Printer" } th { "Job" } th { "Member" } th { "Why" } th { "Reported" }
                        th.n { "Proposed" } th { "At" } th { "Key" } th { span.note { "Action" } } } }
                    tbody { @for r in &reviews { tr {
                        td { (r.printer) } td { (r.job_id) }
                        td { @if let Some(m) = &r.member { a href=(member_link(m)) { (m) } } }
                        td { (r.reason) } td { (r.reported) }
                        td.n { (r.proposed.map(|n| n.to_string()).unwrap_or_default()) }
                        td { (clock::format_local(config.tz, r.at)) }
                        td.key { (r.key) }
                        td { a href=(format!("/console/review/resolve?key={}", query_escape(&r.key))) { "Resolve…" } }
                    } } }
                } }
            }
        }
    };
    me.page(&state, "Review queue", body)
}

#[derive(Deserialize)]
pub struct KeyQuery {
    key: String,
}

/// One job in review, with its two answers: charge (impressions) or waive.
pub async fn resolve_form(state: St, me: Me, Query(q): Query<KeyQuery>) -> Response {
    let key = q.key.clone();
    let r = match state.read(move |c, _| review::get(c, &key)).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let config = state.config();
    let proposed = review::charge_of(&config.printers, &r, None).ok();
    let (charge_token, waive_token) = (me.token(&state), me.token(&state));
    let body = html! {
        section {
            p { "Job " (r.job_id) " at " (r.printer) ", " (r.member.as_deref().unwrap_or("(no member)"))
                ": " (r.reason) " (reported: " (r.reported) ")." }
            @if let Some(o) = &r.outcome { p.err { "Already resolved: " (o) } }
        }
        @if r.outcome.is_none() {
            section aria-labelledby="ch" {
                h2 #ch { "Charge it" }
                @if let Some((n, cents)) = proposed {
                    p.note { "Its document accounts for " (n) " impressions: " (format_cents(&config.currency_symbol, cents)) "." }
                }
                form.stack method="post" action="/console/review/charge" {
                    (pages::csrf(&charge_token))
                    input type="hidden" name="key" value=(r.key);
                    label { "Impressions (empty: what its document accounts for)"
                        input type="number" name="impressions" min="1" value=(r.proposed.map(|n| n.to_string()).unwrap_or_default()); }
                    (pages::reason("Reason"))
                    (pages::confirm("I confirm this charge"))
                    button type="submit" { "Charge" }
                }
            }
            section aria-labelledby="wv" {
                h2 #wv { "Waive it" }
                form.stack method="post" action="/console/review/waive" {
                    (pages::csrf(&waive_token))
                    input type="hidden" name="key" value=(r.key);
                    (pages::reason("Reason"))
                    (pages::confirm("I confirm: charge nothing"))
                    button type="submit" { "Waive" }
                }
            }
        }
    };
    me.page(&state, "Resolve a job in review", body)
}

#[derive(Deserialize)]
pub struct ChargeForm {
    csrf: Option<String>,
    #[serde(default)]
    key: String,
    #[serde(default)]
    impressions: String,
    #[serde(default)]
    reason: String,
    confirm: Option<String>,
}

pub async fn charge(state: St, me: Me, Form(f): Form<ChargeForm>) -> Response {
    match do_charge(&state, &me, f).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn do_charge(state: &St, me: &Me, f: ChargeForm) -> Result<Response, Failure> {
    me.check_form(state, f.csrf.as_deref())?;
    confirmed(&f.confirm)?;
    let key = text_field("the key", &f.key, 500)?;
    let reason = text_field("a reason", &f.reason, 200)?;
    let impressions = match f.impressions.trim() {
        "" => None,
        t => Some(
            t.parse::<i64>()
                .map_err(|_| Failure::bad(format!("`{t}` is not a number of impressions")))?,
        ),
    };
    let config = state.config();
    let k = key.clone();
    let r = state.read(move |c, _| review::get(c, &k)).await?;
    let (n, cents) = review::charge_of(&config.printers, &r, impressions)
        .map_err(|e| Failure::bad(e.to_string()))?;
    let (k, note, at, site) = (
        key.clone(),
        noted(&reason, &me.name),
        state.now(),
        config.site(),
    );
    state
        .write(move |c| review::charge(c, &site, &k, n, cents, &note, at))
        .await?;
    tracing::info!(manager = %me.name, key = %key, printer = %r.printer, job_id = r.job_id,
        member = %r.member.clone().unwrap_or_default(), impressions = n, cents, reason = %reason,
        "console review charged");
    let body = html! {
        section { p.ok role="status" { "Charged " (key) ": " (n) " impressions, " (format_cents(&config.currency_symbol, cents)) "." }
            p { a href="/console/review" { "Back to the review queue" } } }
    };
    Ok(me.page(state, "Charged", body))
}

pub async fn waive(state: St, me: Me, Form(f): Form<KeyedForm>) -> Response {
    match do_waive(&state, &me, f).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn do_waive(state: &St, me: &Me, f: KeyedForm) -> Result<Response, Failure> {
    let (key, reason) = f.accept(state, me)?;
    let k = key.clone();
    let r = state.read(move |c, _| review::get(c, &k)).await?;
    let (k, note, at) = (key.clone(), noted(&reason, &me.name), state.now());
    state
        .write(move |c| review::waive(c, &k, &note, at))
        .await?;
    tracing::info!(manager = %me.name, key = %key, printer = %r.printer, job_id = r.job_id,
        reason = %reason, "console review waived");
    let body = html! {
        section { p.ok role="status" { "Waived " (key) ": nothing charged." }
            p { a href="/console/review" { "Back to the review queue" } } }
    };
    Ok(me.page(state, "Waived", body))
}
