//! Ending an open room session from the now page (a member left without
//! tapping out): charged as a tap would end it, for the time so far in the
//! room's increments (at most its maximum length), with the manager and
//! reason as the session's end reason.

use super::{confirmed, noted, pages, text_field, Failure, Me, St};
use crate::config::Binding;
use crate::ledger::{sessions, LedgerError};
use crate::money::format_minutes;
use crate::room::{clock::Now, Room};
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct SessionQuery {
    id: i64,
}

pub async fn form(state: St, me: Me, Query(q): Query<SessionQuery>) -> Response {
    let token = me.token(&state);
    let body = html! {
        section {
            p { "End room session " strong { (q.id) } ": it is charged as if its member had tapped out now." }
            form.stack method="post" action="/console/session/end" {
                (pages::csrf(&token))
                input type="hidden" name="id" value=(q.id);
                (pages::reason("Reason"))
                (pages::confirm("I confirm: end this session"))
                button type="submit" { "End the session" }
            }
        }
    };
    me.page(&state, "End a room session", body)
}

#[derive(Deserialize)]
pub struct EndForm {
    csrf: Option<String>,
    #[serde(default)]
    id: String,
    #[serde(default)]
    reason: String,
    confirm: Option<String>,
}

pub async fn submit(state: St, me: Me, Form(f): Form<EndForm>) -> Response {
    match end(&state, &me, f).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn end(state: &St, me: &Me, f: EndForm) -> Result<Response, Failure> {
    me.check_form(state, f.csrf.as_deref())?;
    confirmed(&f.confirm)?;
    let reason = text_field("a reason", &f.reason, 200)?;
    let id: i64 =
        f.id.trim()
            .parse()
            .map_err(|_| Failure::bad("the session must be a number"))?;
    let config = state.config();
    let site = config.site();
    let now = Now::read(state.clock());
    let why = noted(&reason, &me.name);
    let ended = state
        .write(move |c| {
            let open = sessions::all_open(c)?
                .into_iter()
                .find(|o| o.id == id)
                .ok_or(LedgerError::UnknownSession(id))?;
            let room = config
                .readers
                .iter()
                .find(|r| matches!(&r.binding, Binding::Resource(res) if *res == open.resource))
                .map(Room::of)
                .ok_or(LedgerError::UnknownSession(id))?;
            let secs = now
                .secs_since(open.started_at, open.started_boot_ms, &open.boot_id)
                .clamp(0, room.max_secs);
            sessions::end(c, &site, open, secs, room.increment_minutes, &why, &now)
        })
        .await?;
    tracing::info!(manager = %me.name, session = id, member = %ended.session.member,
        resource = %ended.session.resource, minutes = ended.minutes, reason = %reason,
        "console session ended");
    let body = html! {
        section {
            p.ok role="status" { "Ended " (ended.session.member) "'s session in " (ended.session.resource)
                ": " (format_minutes(ended.minutes)) " charged." }
            p { a href="/console/now" { "Back to now" } }
        }
    };
    Ok(me.page(state, "Session ended", body))
}
