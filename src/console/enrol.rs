//! Enrolling a card no member has: the cards tapped lately that nobody
//! owns, and the form that gives one to a member (kept in the ledger with
//! the manager's name and reason; the grants file's cards win).

use super::members::{member_link, query_escape};
use super::{confirmed, pages, text_field, Failure, Me, St};
use crate::clock;
use crate::ids::CardId;
use crate::ledger::enrolments;
use crate::ledger::query;
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

/// How far back the unknown cards listed go.
const UNKNOWN_DAYS: i64 = 30;

/// The unknown cards tapped in the last [`UNKNOWN_DAYS`], each with a link
/// to enrol it (for the members page).
pub async fn unknown_cards(state: &St) -> Result<Markup, Failure> {
    let since = state.now() - UNKNOWN_DAYS * 86_400;
    let cards = state
        .read(move |c, _| query::unknown_cards(c, since))
        .await?;
    let tz = state.config().tz;
    Ok(html! {
        section aria-labelledby="unknown" {
            h2 #unknown { "Unknown cards tapped in the last " (UNKNOWN_DAYS) " days" }
            @if cards.is_empty() { p { "None." } } @else {
                div.scroll { table {
                    thead { tr { th { "Card" } th { "Reader" } th.n { "Taps" } th { "Last seen" } th { span.note { "Action" } } } }
                    tbody { @for u in &cards { tr {
                        td.key { (u.card) } td { (u.reader) } td.n { (u.taps) }
                        td { (clock::format_local(tz, u.last_seen)) }
                        td { a href=(format!("/console/enrol?card={}", query_escape(&u.card))) { "Enrol…" } }
                    } } }
                } }
            }
        }
    })
}

#[derive(Deserialize)]
pub struct CardQuery {
    #[serde(default)]
    card: String,
    #[serde(default)]
    member: String,
}

pub async fn form(state: St, me: Me, Query(q): Query<CardQuery>) -> Response {
    let token = me.token(&state);
    let body = html! {
        section {
            form.stack method="post" action="/console/enrol" {
                (pages::csrf(&token))
                label { "Card (hex, as the reader sends it)" input type="text" name="card" value=(q.card) required; }
                label { "Member id" input type="text" name="member" value=(q.member) required; }
                (pages::reason("Reason"))
                (pages::confirm("I confirm this card is this member's"))
                button type="submit" { "Enrol" }
            }
            p.note { "A card the grants file gives to a member cannot be enrolled here; if the grants file later gives this card to someone, it wins." }
        }
    };
    me.page(&state, "Enrol a card", body)
}

#[derive(Deserialize)]
pub struct EnrolForm {
    csrf: Option<String>,
    #[serde(default)]
    card: String,
    #[serde(default)]
    member: String,
    #[serde(default)]
    reason: String,
    confirm: Option<String>,
}

pub async fn submit(state: St, me: Me, Form(f): Form<EnrolForm>) -> Response {
    match enrol(&state, &me, f).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn enrol(state: &St, me: &Me, f: EnrolForm) -> Result<Response, Failure> {
    me.check_form(state, f.csrf.as_deref())?;
    confirmed(&f.confirm)?;
    let card = CardId::parse(f.card.trim())
        .ok_or_else(|| Failure::bad("the card must be 1 to 32 hex digits"))?;
    let member = text_field("the member", &f.member, 200)?;
    let reason = text_field("a reason", &f.reason, 200)?;
    let (c, m, who, why, at) = (
        card.clone(),
        member.clone(),
        me.name.clone(),
        reason.clone(),
        state.now(),
    );
    let e = state
        .write(move |conn| enrolments::enrol(conn, &c, &m, &who, &why, at))
        .await?;
    tracing::info!(manager = %me.name, card = %card.masked(), member = %member, enrolment = e.id,
        reason = %reason, "console card enrolled");
    let body = html! {
        section {
            p.ok role="status" { "Card " (card.as_str()) " is " (member) "'s now: their next tap finds them." }
            p { a href=(member_link(&member)) { "Back to " (member) } }
        }
    };
    Ok(me.page(state, "Enrolled", body))
}
