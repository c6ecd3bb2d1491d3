//! Logging in and out. A login form carries its own one-time token; a
//! name or address with too many recent failures is refused before the
//! password is checked; a good login starts a session whose token is the
//! cookie (HttpOnly, SameSite=Strict, Secure when configured or under the
//! listener's TLS).

use super::guard::Attempt;
use super::{html_page, pages, password, Failure, Me, St, COOKIE};
use crate::config::valid_manager_name;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::html;
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Instant;

pub async fn form(state: St) -> Response {
    let token = state.guard().login_token(Instant::now());
    login_page(&state, &token, None, StatusCode::OK)
}

fn login_page(state: &St, token: &str, error: Option<&str>, status: StatusCode) -> Response {
    let site = state.config().site_name.clone();
    let body = html! {
        section {
            @if let Some(e) = error { p.err role="alert" { (e) } }
            form.stack method="post" action="/console/login" {
                (pages::csrf(token))
                label { "Manager name" input type="text" name="name" autocomplete="username" required autofocus; }
                label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { "Log in" }
            }
        }
    };
    let mut r = html_page(pages::page(&site, "Log in", None, body));
    *r.status_mut() = status;
    r
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

pub async fn submit(
    state: St,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Form(f): Form<LoginForm>,
) -> Response {
    let address = peer.map(|Extension(ConnectInfo(a))| a.ip().to_string());
    let now = Instant::now();
    if let Err(r) = state.guard().use_login_token(f.csrf.as_deref(), now) {
        return Failure::form(r).into_response();
    }
    let retry = |message: &str, status| {
        let token = state.guard().login_token(Instant::now());
        login_page(&state, &token, Some(message), status)
    };
    let name = f.name.trim().to_string();
    // Only a well-formed name reaches the log as typed.
    let shown = match valid_manager_name(&name) {
        true => name.clone(),
        false => "(not a manager name)".into(),
    };
    let attempt = state.guard().may_attempt(&name, address.as_deref(), now);
    if let Attempt::Limited(wait) = attempt {
        tracing::warn!(manager = %shown, address = address.as_deref().unwrap_or(""),
            retry_in_s = wait.as_secs(), "console login refused: too many failures");
        let message = format!(
            "too many failed logins: try again in {} minutes",
            wait.as_secs().div_ceil(60)
        );
        return retry(&message, StatusCode::TOO_MANY_REQUESTS);
    }
    let config = state.config();
    let hash = config
        .console
        .managers
        .iter()
        .find(|m| m.name == name)
        .map(|m| m.password_hash.clone());
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| password::decoy().to_string());
    let typed = f.password;
    let good = tokio::task::spawn_blocking(move || password::verify(&typed, &hash))
        .await
        .unwrap_or(false);
    if !(good && known) {
        state
            .guard()
            .failed(&name, address.as_deref(), Instant::now());
        tracing::warn!(manager = %shown, address = address.as_deref().unwrap_or(""), "console login failed");
        return retry("wrong name or password", StatusCode::UNAUTHORIZED);
    }
    let session = state.guard().log_in(&name, Instant::now());
    tracing::info!(manager = %name, address = address.as_deref().unwrap_or(""), "console login");
    // Under the listener's own TLS the cookie is `Secure` whatever
    // `secure_cookies` says.
    let tls = config.http.as_ref().is_some_and(|h| h.tls.is_some());
    let secure = match config.console.secure_cookies || tls {
        true => "; Secure",
        false => "",
    };
    let cookie = format!("{COOKIE}={session}; Path=/console; HttpOnly; SameSite=Strict{secure}");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/console/now")).into_response()
}

#[derive(Deserialize)]
pub struct TokenOnly {
    csrf: Option<String>,
}

pub async fn logout(state: St, me: Me, _h: HeaderMap, Form(f): Form<TokenOnly>) -> Response {
    if let Err(e) = me.check_form(&state, f.csrf.as_deref()) {
        return e.into_response();
    }
    state.guard().log_out(&me.session);
    tracing::info!(manager = %me.name, "console logout");
    let cookie = format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0");
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/console/login"),
    )
        .into_response()
}
