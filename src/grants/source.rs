//! Where the grants file comes from: a path, or an `http(s)://` URL fetched
//! with a conditional GET (ETag / Last-Modified) and a timeout. A server that
//! is down, slow or answers an error keeps the last good grants in force; the
//! caller retries with backoff.
//!
//! A URL may carry a secret in its userinfo (`https://user:pw@host/...`):
//! everything that prints a source goes through [`redact`], and reqwest's
//! errors are kept without their URL.

use crate::config::GrantsAuth;
use crate::error_chain;
use crate::tls::{self, Trust};
use std::path::PathBuf;
use std::time::Duration;

/// A grants file location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Path(PathBuf),
    Url(String),
}

impl Source {
    pub fn parse(text: &str) -> Source {
        if text.starts_with("http://") || text.starts_with("https://") {
            Source::Url(text.to_string())
        } else {
            Source::Path(PathBuf::from(text))
        }
    }

    /// How errors and logs name it.
    pub fn name(&self) -> String {
        match self {
            Source::Path(p) => p.display().to_string(),
            Source::Url(u) => redact(u),
        }
    }
}

/// A URL with its userinfo hidden: `https://user:pw@host/x` →
/// `https://***@host/x`. Anything else comes back as it is.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..scheme_end], &rest[at..]),
        None => url.to_string(),
    }
}

/// How to reach a URL source: the credential sent to it, and whom it must
/// be ([`Trust::System`] by default).
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub auth: Option<&'a GrantsAuth>,
    pub trust: &'a Trust,
}

static SYSTEM: Trust = Trust::System;

impl Default for Access<'_> {
    fn default() -> Self {
        Access {
            auth: None,
            trust: &SYSTEM,
        }
    }
}

impl<'a> Access<'a> {
    /// The `[grants]` section's credential and `ca_file`.
    pub fn of(grants: &'a crate::config::GrantsConfig) -> Access<'a> {
        Access {
            auth: grants.auth.as_ref(),
            trust: &grants.trust,
        }
    }
}

/// What makes a GET conditional: the validators of the last good response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// The result of a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// New content, with the validators to send next time.
    Body {
        text: String,
        validators: Validators,
    },
    /// The server says the last good file is still current.
    NotModified,
}

/// Why a grants file could not be read or downloaded. Each keeps its cause;
/// [`crate::error_chain`] prints it.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// No answer: the server is down or slow, or the HTTP client could not
    /// be set up.
    #[error("cannot fetch {url}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The TLS handshake refused the server's certificate: retrying will
    /// not help.
    #[error("{url}: certificate not trusted: {reason} (check [grants] ca_file)")]
    Certificate { url: String, reason: String },
    #[error("{url} answered HTTP {status}{}", status_hint(*status))]
    Status { url: String, status: u16 },
    /// The TLS setup for `ca_file` failed.
    #[error("cannot set up TLS for {url}")]
    Tls {
        url: String,
        #[source]
        source: rustls::Error,
    },
    #[error("{url} sent more than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("cannot fetch {url}: the file is not UTF-8")]
    NotUtf8 {
        url: String,
        #[source]
        source: std::string::FromUtf8Error,
    },
}

/// What a refusal most likely means, for the error line.
fn status_hint(status: u16) -> &'static str {
    match status {
        401 => " (not authenticated: check [grants] token_file or basic_auth_file)",
        403 => " (forbidden: the credential is not allowed to read it)",
        _ => "",
    }
}

/// Largest grants file accepted over HTTP.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// Reads or fetches the file once; a URL is reached as `access` says.
pub async fn fetch(
    source: &Source,
    access: Access<'_>,
    last: &Validators,
    timeout: Duration,
) -> Result<Fetched, FetchError> {
    match source {
        Source::Path(path) => {
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| FetchError::Read {
                    path: path.display().to_string(),
                    source: e,
                })?;
            Ok(Fetched::Body {
                text,
                validators: Validators::default(),
            })
        }
        Source::Url(url) => fetch_url(url, access, last, timeout).await,
    }
}

async fn fetch_url(
    full_url: &str,
    access: Access<'_>,
    last: &Validators,
    timeout: Duration,
) -> Result<Fetched, FetchError> {
    // Errors name the URL redacted. reqwest moves a URL's userinfo into the
    // Authorization header, so its own errors should not hold it either;
    // they lose their copy of the URL anyway, which ours already names.
    let url = &redact(full_url);
    let http = |source: reqwest::Error| match tls::certificate_problem(&source) {
        Some(reason) => FetchError::Certificate {
            url: url.to_string(),
            reason,
        },
        None => FetchError::Http {
            url: url.to_string(),
            source: source.without_url(),
        },
    };
    let builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout);
    let client = tls::client_builder(access.trust, builder)
        .map_err(|e| FetchError::Tls {
            url: url.to_string(),
            source: e,
        })?
        .build()
        .map_err(http)?;
    let mut req = client.get(full_url);
    match access.auth {
        Some(GrantsAuth::Bearer(token)) => req = req.bearer_auth(token),
        Some(GrantsAuth::Basic { user, password }) => req = req.basic_auth(user, Some(password)),
        None => {}
    }
    if let Some(etag) = &last.etag {
        req = req.header(reqwest::header::IF_NONE_MATCH, etag);
    }
    if let Some(lm) = &last.last_modified {
        req = req.header(reqwest::header::IF_MODIFIED_SINCE, lm);
    }
    let mut resp = req.send().await.map_err(http)?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified);
    }
    if !status.is_success() {
        return Err(FetchError::Status {
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    let header = |name: reqwest::header::HeaderName| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let validators = Validators {
        etag: header(reqwest::header::ETAG),
        last_modified: header(reqwest::header::LAST_MODIFIED),
    };
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(http)? {
        if body.len() + chunk.len() > MAX_BYTES {
            return Err(FetchError::TooLarge {
                url: url.to_string(),
                limit: MAX_BYTES,
            });
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(body).map_err(|source| FetchError::NotUtf8 {
        url: url.to_string(),
        source,
    })?;
    Ok(Fetched::Body { text, validators })
}

/// Fetches with up to `attempts` tries, doubling the wait from `first_wait`
/// between them. Returns the last error if every try failed.
pub async fn fetch_with_retry(
    source: &Source,
    access: Access<'_>,
    last: &Validators,
    timeout: Duration,
    attempts: u32,
    first_wait: Duration,
) -> Result<Fetched, FetchError> {
    let mut wait = first_wait;
    let mut tries = 0;
    loop {
        tries += 1;
        match fetch(source, access, last, timeout).await {
            Ok(f) => return Ok(f),
            // A missing local file will not appear by waiting a second, nor
            // a certificate become trusted.
            Err(e @ (FetchError::Read { .. } | FetchError::Certificate { .. })) => return Err(e),
            Err(e) if tries >= attempts => return Err(e),
            Err(e) => {
                tracing::warn!(source = %source.name(), error = %error_chain(&e), retry_in_ms = wait.as_millis() as u64, "grants fetch failed");
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_userinfo_only() {
        let cases = [
            ("https://user:s3cret@host/x", "https://***@host/x"),
            ("http://user:s3cret@host:8080", "http://***@host:8080"),
            ("http://u:p@ss@host/g?a=b@c", "http://***@host/g?a=b@c"),
            ("https://host/a@b", "https://host/a@b"),
            ("https://host/x", "https://host/x"),
            ("/etc/tallyd/grants.toml", "/etc/tallyd/grants.toml"),
        ];
        for (url, want) in cases {
            assert_eq!(redact(url), want, "{url}");
        }
        assert_eq!(
            Source::parse("http://u:s3cret@h/g").name(),
            "http://***@h/g"
        );
    }
}
