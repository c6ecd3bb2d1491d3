//! The alert webhook: the alert's JSON POSTed to a URL, with the credential
//! and the trust (`ca_file`) of `[alerts]`, within a time limit. The client
//! is built once per config.

use crate::config::{GrantsAuth, Webhook};
use crate::tls;
use std::time::Duration;

/// Why the webhook did not take an alert.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("cannot set up TLS for {url}")]
    Tls {
        url: String,
        #[source]
        source: rustls::Error,
    },
    #[error("cannot POST to {url}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: certificate not trusted: {reason} (check [alerts] ca_file)")]
    Certificate { url: String, reason: String },
    #[error("{url} answered HTTP {status}{}", hint(*status))]
    Status { url: String, status: u16 },
}

fn hint(status: u16) -> &'static str {
    match status {
        401 => " (not authenticated: check [alerts] token_file or basic_auth_file)",
        403 => " (forbidden: the credential is not allowed to post)",
        _ => "",
    }
}

/// A webhook and the client that reaches it.
#[derive(Clone)]
pub struct Poster {
    hook: Webhook,
    client: reqwest::Client,
}

impl Poster {
    /// A client trusting whom `hook.trust` says, each POST within `limit`.
    pub fn new(hook: &Webhook, limit: Duration) -> Result<Poster, WebhookError> {
        let url = hook.url.clone();
        let builder = reqwest::Client::builder()
            .timeout(limit)
            .connect_timeout(limit);
        let client = tls::client_builder(&hook.trust, builder)
            .map_err(|source| WebhookError::Tls {
                url: url.clone(),
                source,
            })?
            .build()
            .map_err(|source| WebhookError::Http {
                url,
                source: source.without_url(),
            })?;
        Ok(Poster {
            hook: hook.clone(),
            client,
        })
    }

    /// POSTs `json`; Ok on a 2xx answer.
    pub async fn post(&self, json: String) -> Result<(), WebhookError> {
        let url = &self.hook.url;
        let mut req = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(json);
        match &self.hook.auth {
            Some(GrantsAuth::Bearer(token)) => req = req.bearer_auth(token),
            Some(GrantsAuth::Basic { user, password }) => {
                req = req.basic_auth(user, Some(password))
            }
            None => {}
        }
        let resp = req
            .send()
            .await
            .map_err(|source| match tls::certificate_problem(&source) {
                Some(reason) => WebhookError::Certificate {
                    url: url.clone(),
                    reason,
                },
                None => WebhookError::Http {
                    url: url.clone(),
                    source: source.without_url(),
                },
            })?;
        let status = resp.status();
        match status.is_success() {
            true => Ok(()),
            false => Err(WebhookError::Status {
                url: url.clone(),
                status: status.as_u16(),
            }),
        }
    }
}
