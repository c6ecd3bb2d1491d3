//! The manager's web console: server-rendered pages under `/console/`,
//! served by the daemon's HTTP listener ([`router`]).
//!
//! Every read opens the ledger read-only (as `tallyd balance` does); every
//! action is the ledger operation the CLI runs (`usage::refund`,
//! `lots::grant`, `review::charge`, `review::waive`), sent to the ledger
//! writer, with the manager's name in the history row's note and in one
//! log line. Who may: manager accounts in `[console]` (argon2 hashes,
//! [`password`]); sessions, one-time form tokens and login limits in
//! [`guard`].

mod actions;
mod cancel;
mod chain;
mod enrol;
pub mod guard;
mod held;
mod login;
mod members;
pub mod pages;
pub mod password;
mod report;
mod review;
mod rooms;

use crate::clock::Clock;
use crate::config::Config;
use crate::ledger::writer::WriterHandle;
use crate::ledger::{Ledger, LedgerError};
use crate::observe::Observer;
use crate::printer::client::PrinterClients;
use axum::extract::{FromRequestParts, State};
use axum::http::{header, request::Parts, HeaderMap, Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use guard::{FormRefusal, Guard};
use maud::{html, Markup};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// The session cookie's name.
pub const COOKIE: &str = "tallyd_console";

/// What the console's handlers share: the live config, the ledger (read
/// from its file, written through the writer), the clock and the guard.
#[derive(Clone)]
pub struct ConsoleState(Arc<Inner>);

struct Inner {
    config: RwLock<Arc<Config>>,
    ledger: PathBuf,
    writer: WriterHandle,
    clock: Clock,
    guard: Mutex<Guard>,
    /// The IPP clients the now page asks held printers with, made at its
    /// first use and again after a reload.
    clients: Mutex<Option<Arc<PrinterClients>>>,
    /// What the daemon's tasks observe (printers and readers up or down),
    /// when the console runs inside the daemon.
    observer: Option<Observer>,
}

impl ConsoleState {
    pub fn new(config: Config, ledger: PathBuf, writer: WriterHandle, clock: Clock) -> Self {
        ConsoleState(Arc::new(Inner {
            config: RwLock::new(Arc::new(config)),
            ledger,
            writer,
            clock,
            guard: Mutex::new(Guard::default()),
            clients: Mutex::new(None),
            observer: None,
        }))
    }

    /// As [`ConsoleState::new`], inside the daemon: the now page shows
    /// what `observer` says of the printers and readers.
    pub fn in_daemon(
        config: Config,
        ledger: PathBuf,
        writer: WriterHandle,
        clock: Clock,
        observer: Observer,
    ) -> Self {
        let mut state = ConsoleState::new(config, ledger, writer, clock);
        if let Some(inner) = Arc::get_mut(&mut state.0) {
            inner.observer = Some(observer);
        }
        state
    }

    fn observer(&self) -> Option<&Observer> {
        self.0.observer.as_ref()
    }

    /// Applies a reloaded config (managers added or removed take effect;
    /// sessions of a removed manager end at their next request).
    pub fn set_config(&self, config: Config) {
        let mut c = self.0.config.write().unwrap_or_else(|e| e.into_inner());
        *c = Arc::new(config);
        *self.0.clients.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The printers' IPP clients (made now if not yet).
    fn clients(&self) -> Result<Arc<PrinterClients>, Failure> {
        let mut slot = self.0.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let made = PrinterClients::new(&self.config().printers).map_err(|(printer, e)| {
            Failure::internal(&format!(
                "cannot set up the IPP client of printer {printer}: {}",
                crate::error_chain(&e)
            ))
        })?;
        let made = Arc::new(made);
        *slot = Some(made.clone());
        Ok(made)
    }

    fn config(&self) -> Arc<Config> {
        self.0
            .config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, Guard> {
        self.0.guard.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> i64 {
        self.0.clock.wall()
    }

    fn clock(&self) -> &Clock {
        &self.0.clock
    }

    /// Runs a read-only query on its own connection, off the async threads.
    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection, &Config) -> Result<R, LedgerError> + Send + 'static,
    ) -> Result<R, Failure> {
        let config = self.config();
        let path = self.0.ledger.clone();
        let out = tokio::task::spawn_blocking(move || {
            let ledger = Ledger::open_read_only(&path, config.site())?;
            f(ledger.conn(), &config).map_err(|e| e.at(&path))
        })
        .await
        .map_err(|_| Failure::internal("the query stopped"))?;
        out.map_err(Failure::from)
    }

    /// Runs a write in the ledger writer and waits for its commit.
    async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<R, LedgerError> + Send + 'static,
    ) -> Result<R, Failure> {
        self.0.writer.call_async(f).await.map_err(Failure::from)
    }
}

/// The console's routes, all under `/console/`.
pub fn router(state: ConsoleState) -> Router {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/now") }))
        .route("/console/", get(|| async { Redirect::to("/console/now") }))
        .route("/console/style.css", get(style))
        .route("/console/login", get(login::form).post(login::submit))
        .route("/console/logout", post(login::logout))
        .route("/console/now", get(members::now))
        .route("/console/members", get(members::search))
        .route("/console/member", get(members::member))
        .route("/console/grant", post(actions::grant))
        .route(
            "/console/refund",
            get(actions::refund_form).post(actions::refund),
        )
        .route(
            "/console/held/cancel",
            get(cancel::form).post(cancel::submit),
        )
        .route("/console/session/end", get(rooms::form).post(rooms::submit))
        .route("/console/enrol", get(enrol::form).post(enrol::submit))
        .route("/console/report", get(report::page))
        .route("/console/chain", get(chain::page))
        .route("/console/report.csv", get(report::csv))
        .route("/console/review", get(review::list))
        .route("/console/review/resolve", get(review::resolve_form))
        .route("/console/review/charge", post(review::charge))
        .route("/console/review/waive", post(review::waive))
        .with_state(state)
}

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        pages::STYLE,
    )
}

/// The session cookie's value, if the request has one.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .map(str::to_string)
}

/// A logged-in manager: the request's session is live and its manager is
/// still in the config. A page request without one is sent to the login
/// form; anything else is refused (403).
pub struct Me {
    pub name: String,
    session: String,
}

impl FromRequestParts<ConsoleState> for Me {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        let refuse = || match parts.method {
            Method::GET | Method::HEAD => Redirect::to("/console/login").into_response(),
            _ => Failure {
                status: StatusCode::FORBIDDEN,
                message: "not logged in (or the session ended): log in again".into(),
            }
            .into_response(),
        };
        let Some(session) = session_cookie(&parts.headers) else {
            return Err(refuse());
        };
        let config = state.config();
        let idle = config.console.session_idle;
        let mut guard = state.guard();
        let name = guard.manager(&session, idle, Instant::now());
        match name {
            Some(name) if config.console.managers.iter().any(|m| m.name == name) => {
                Ok(Me { name, session })
            }
            Some(_) => {
                guard.log_out(&session);
                Err(refuse())
            }
            None => Err(refuse()),
        }
    }
}

impl Me {
    /// A one-time token for a form on the page being rendered.
    fn token(&self, state: &ConsoleState) -> String {
        state.guard().form_token(&self.session, Instant::now())
    }

    /// Uses up the token a posted form carried; refused if missing or used.
    fn check_form(&self, state: &ConsoleState, token: Option<&str>) -> Result<(), Failure> {
        let used = state
            .guard()
            .use_form_token(&self.session, token, Instant::now());
        used.map_err(|r| {
            tracing::warn!(manager = %self.name, refusal = ?r, "console form refused");
            Failure::form(r)
        })
    }

    /// A whole page for this manager.
    fn page(&self, state: &ConsoleState, title: &str, body: Markup) -> Response {
        self.page_refreshed(state, title, body, None)
    }

    /// A page that reloads itself every `refresh` seconds (the now page's
    /// short poll: no JavaScript).
    fn page_refreshed(
        &self,
        state: &ConsoleState,
        title: &str,
        body: Markup,
        refresh: Option<u32>,
    ) -> Response {
        let token = self.token(state);
        let viewer = pages::Viewer {
            manager: &self.name,
            logout_token: &token,
            refresh,
            chain: state.config().central.is_some(),
        };
        let site = state.config().site_name.clone();
        html_page(pages::page(&site, title, Some(&viewer), body))
    }
}

fn html_page(markup: Markup) -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
            ),
        ],
        Html(markup.into_string()),
    )
        .into_response()
}

/// Why a request failed, as a page with a status.
#[derive(Debug)]
pub struct Failure {
    status: StatusCode,
    message: String,
}

impl Failure {
    fn internal(message: &str) -> Failure {
        Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Failure {
        Failure {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    fn form(r: FormRefusal) -> Failure {
        Failure {
            status: StatusCode::FORBIDDEN,
            message: match r {
                FormRefusal::Missing => "the form came without its token: refused".into(),
                FormRefusal::Used => {
                    "this form was sent already, or has expired: nothing was done; open the page again"
                        .into()
                }
            },
        }
    }

    /// The confirmation box was not ticked.
    fn unconfirmed() -> Failure {
        Failure::bad("not confirmed: tick the confirmation box; nothing was done")
    }
}

impl From<LedgerError> for Failure {
    fn from(e: LedgerError) -> Self {
        let status = match e.is_file_failure() {
            true => StatusCode::INTERNAL_SERVER_ERROR,
            false => StatusCode::CONFLICT,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %crate::error_chain(&e), "console: ledger failed");
        }
        Failure {
            status,
            message: crate::error_chain(&e),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = html! {
            section {
                p.err role="alert" { (self.message) }
                p { a href="/console/now" { "Back to the console" } }
            }
        };
        let mut r = html_page(pages::page("tallyd", "Not done", None, body));
        *r.status_mut() = self.status;
        r
    }
}

/// Whether a posted `confirm` box was ticked.
/// A confirmed form about one usage or job (`key`) with the manager's
/// reason: a refund, a waived review.
#[derive(serde::Deserialize)]
pub struct KeyedForm {
    csrf: Option<String>,
    #[serde(default)]
    key: String,
    #[serde(default)]
    reason: String,
    confirm: Option<String>,
}

impl KeyedForm {
    /// The key and the reason, once the form's token, the confirmation and
    /// both fields are good.
    fn accept(&self, state: &St, me: &Me) -> Result<(String, String), Failure> {
        me.check_form(state, self.csrf.as_deref())?;
        confirmed(&self.confirm)?;
        let key = text_field("the key", &self.key, 500)?;
        let reason = text_field("a reason", &self.reason, 200)?;
        Ok((key, reason))
    }
}

fn confirmed(confirm: &Option<String>) -> Result<(), Failure> {
    match confirm.as_deref() {
        Some("yes") => Ok(()),
        _ => Err(Failure::unconfirmed()),
    }
}

/// A free-text field a manager typed (a reason, a member id): trimmed, 1 to
/// `max` characters, no control character (it reaches log lines and the
/// ledger's history).
fn text_field(what: &str, value: &str, max: usize) -> Result<String, Failure> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Failure::bad(format!("{what} is required")));
    }
    if v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(Failure::bad(format!(
            "{what} must be at most {max} characters, without control characters"
        )));
    }
    Ok(v.to_string())
}

/// A reason as the ledger's history keeps it: the manager's words and who.
fn noted(reason: &str, manager: &str) -> String {
    format!("{reason} (by {manager}, console)")
}

/// `State` re-exported for the handlers.
type St = State<ConsoleState>;
