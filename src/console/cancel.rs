//! Cancelling a held job from the now page: a confirmation with a reason,
//! then Cancel-Job at its printer. A held job not yet released has no
//! ledger row, so nothing is charged or given back; the log line names the
//! manager.

use super::{confirmed, held, pages, text_field, Failure, Me, St};
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct JobQuery {
    printer: String,
    job: i32,
}

pub async fn form(state: St, me: Me, Query(q): Query<JobQuery>) -> Response {
    let token = me.token(&state);
    let body = html! {
        section {
            p { "Cancel held job " strong { (q.job) } " at " strong { (q.printer) } ": it will not print, and nothing is charged." }
            form.stack method="post" action="/console/held/cancel" {
                (pages::csrf(&token))
                input type="hidden" name="printer" value=(q.printer);
                input type="hidden" name="job" value=(q.job);
                (pages::reason("Reason"))
                (pages::confirm("I confirm: cancel this job"))
                button type="submit" { "Cancel the job" }
            }
        }
    };
    me.page(&state, "Cancel a held job", body)
}

#[derive(Deserialize)]
pub struct CancelForm {
    csrf: Option<String>,
    #[serde(default)]
    printer: String,
    #[serde(default)]
    job: String,
    #[serde(default)]
    reason: String,
    confirm: Option<String>,
}

pub async fn submit(state: St, me: Me, Form(f): Form<CancelForm>) -> Response {
    match cancel(&state, &me, f).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn cancel(state: &St, me: &Me, f: CancelForm) -> Result<Response, Failure> {
    me.check_form(state, f.csrf.as_deref())?;
    confirmed(&f.confirm)?;
    let printer = text_field("the printer", &f.printer, 200)?;
    let reason = text_field("a reason", &f.reason, 200)?;
    let job: i32 = f
        .job
        .trim()
        .parse()
        .map_err(|_| Failure::bad("the job must be a number"))?;
    let config = state.config();
    let clients = state.clients()?;
    let user = held::cancel(&config, &clients, &printer, job)
        .await
        .map_err(|e| Failure {
            status: axum::http::StatusCode::CONFLICT,
            message: format!("not cancelled: {e}"),
        })?;
    tracing::info!(manager = %me.name, printer = %printer, job_id = job,
        user = %user.unwrap_or_default(), reason = %reason, "console held job cancelled");
    let body = html! {
        section {
            p.ok role="status" { "Cancelled job " (job) " at " (printer) "; nothing was charged." }
            p { a href="/console/now" { "Back to now" } }
        }
    };
    Ok(me.page(state, "Cancelled", body))
}
