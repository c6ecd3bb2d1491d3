//! A member's actions: refund a usage, grant a local adjustment. Each is
//! the ledger operation `tallyd refund` or `tallyd grant` runs, confirmed,
//! with a reason; the history row's note names the manager, and so does
//! the one log line.

use super::members::{amount, member_link};
use super::{confirmed, noted, pages, text_field, Failure, KeyedForm, Me, St};
use crate::clock;
use crate::ledger::lots::{self, GrantRequest};
use crate::ledger::query::now as live;
use crate::ledger::{usage, SourceKind, PRINTING};
use crate::money::{self, format_amount, parse_cents, parse_minutes, Unit};
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct KeyQuery {
    key: String,
}

/// The refund's confirmation page: what the usage was, a reason, a box.
pub async fn refund_form(state: St, me: Me, Query(q): Query<KeyQuery>) -> Response {
    let key = q.key.clone();
    let found = match state.read(move |c, _| live::usage(c, &key)).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            return Failure::bad(format!("no usage has the key `{}`", q.key)).into_response()
        }
        Err(e) => return e.into_response(),
    };
    let config = state.config();
    let token = me.token(&state);
    let body = html! {
        section {
            p { "Give back " strong { (amount(&config, &found.credit_kind, found.amount)) }
                " to " (found.member.as_deref().unwrap_or("(no member)"))
                " for " (found.description) " on " (clock::format_local(config.tz, found.at)) "." }
            form.stack method="post" action="/console/refund" {
                (pages::csrf(&token))
                input type="hidden" name="key" value=(found.key);
                (pages::reason("Reason (shown in the statement)"))
                (pages::confirm("I confirm this refund"))
                button type="submit" { "Refund" }
            }
        }
    };
    me.page(&state, "Refund a usage", body)
}

pub async fn refund(state: St, me: Me, Form(f): Form<KeyedForm>) -> Response {
    match do_refund(&state, &me, f).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn do_refund(state: &St, me: &Me, f: KeyedForm) -> Result<Response, Failure> {
    let (key, reason) = f.accept(state, me)?;
    let (k, note, at) = (key.clone(), noted(&reason, &me.name), state.now());
    let (r, member) = state
        .write(move |c| {
            let r = usage::refund(c, &k, &note, at)?;
            Ok((r, live::usage(c, &k)?.and_then(|u| u.member)))
        })
        .await?;
    tracing::info!(manager = %me.name, key = %key, restored = r.restored, regranted = r.regranted,
        overage_reversed = r.overage_reversed, reason = %reason, "console refund");
    let body = html! {
        section {
            p.ok role="status" { "Refunded " (key) ": " (r.restored) " back to its lots, "
                (r.regranted) " granted anew, " (r.overage_reversed) " overage reversed (cents or minutes)." }
            @if let Some(m) = member { p { a href=(member_link(&m)) { "Back to " (m) } } }
        }
    };
    Ok(me.page(state, "Refunded", body))
}

#[derive(Deserialize)]
pub struct GrantForm {
    csrf: Option<String>,
    #[serde(default)]
    member: String,
    #[serde(default)]
    credit: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    reason: String,
    confirm: Option<String>,
}

pub async fn grant(state: St, me: Me, Form(f): Form<GrantForm>) -> Response {
    match do_grant(&state, &me, f).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn do_grant(state: &St, me: &Me, f: GrantForm) -> Result<Response, Failure> {
    // The form's one-time token is also the grant's idempotency key.
    let token = f.csrf.clone().unwrap_or_default();
    me.check_form(state, f.csrf.as_deref())?;
    confirmed(&f.confirm)?;
    let config = state.config();
    if let Some(why) = config.local_grant_refused() {
        return Err(Failure::bad(why));
    }
    let member = text_field("the member", &f.member, 200)?;
    let credit = text_field("the credit", &f.credit, 200)?;
    let reason = text_field("a reason", &f.reason, 200)?;
    let unit = match credit == PRINTING {
        true => Unit::Cents,
        false => Unit::Minutes,
    };
    let sym = &config.currency_symbol;
    let parsed = match unit {
        Unit::Cents => parse_cents(f.amount.trim(), sym),
        Unit::Minutes => parse_minutes(f.amount.trim()),
    };
    let units = parsed
        .and_then(|n| money::positive(n).ok())
        .ok_or_else(|| {
            Failure::bad(format!(
                "`{}` is not an amount from {} to {}",
                f.amount.trim(),
                format_amount(sym, unit, 1),
                format_amount(sym, unit, money::MAX_UNITS)
            ))
        })?;
    let now = state.now();
    let expires_at = match f.expires.trim() {
        "" => None,
        t => {
            let day = clock::parse_date(t)
                .ok_or_else(|| Failure::bad(format!("`{t}` is not a date (YYYY-MM-DD)")))?;
            Some(clock::local_midnight(
                config.tz,
                day.succ_opt().unwrap_or(day),
            ))
        }
    };
    if expires_at.is_some_and(|e| e <= now) {
        return Err(Failure::bad("the last valid day is in the past"));
    }
    let g = GrantRequest {
        member: member.clone(),
        credit: credit.clone(),
        amount: units,
        valid_from: now,
        expires_at,
        source: SourceKind::Adjustment,
        source_key: format!("adjustment:console:{member}:{token}"),
        note: noted(&reason, &me.name),
        at: now,
    };
    let known = member.clone();
    let granted = state
        .write(move |c| {
            if !crate::ledger::query::member_known(c, &known)? {
                return Err(crate::ledger::LedgerError::UnknownMember(known));
            }
            lots::grant(c, &g)
        })
        .await?;
    let shown = format_amount(sym, unit, units);
    tracing::info!(manager = %me.name, member = %member, credit = %credit, amount = units,
        lot = granted.lot, reason = %reason, "console grant");
    let body = html! {
        section {
            p.ok role="status" { "Granted " (shown) " of " (credit) " to " (member) " (lot " (granted.lot) ")." }
            p { a href=(member_link(&member)) { "Back to " (member) } }
        }
    };
    Ok(me.page(state, "Granted", body))
}
