//! Where the grants file comes from: a path, or an `http(s)://` URL fetched
//! with a conditional GET (ETag / Last-Modified) and a timeout. A server that
//! is down, slow or answers an error keeps the last good grants in force; the
//! caller retries with backoff.

use crate::error_chain;
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
            Source::Url(u) => u.clone(),
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
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} sent more than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("cannot fetch {url}: the file is not UTF-8")]
    NotUtf8 {
        url: String,
        #[source]
        source: std::string::FromUtf8Error,
    },
}

/// Largest grants file accepted over HTTP.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// Reads or fetches the file once.
pub async fn fetch(
    source: &Source,
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
        Source::Url(url) => fetch_url(url, last, timeout).await,
    }
}

async fn fetch_url(url: &str, last: &Validators, timeout: Duration) -> Result<Fetched, FetchError> {
    let http = |source: reqwest::Error| FetchError::Http {
        url: url.to_string(),
        source,
    };
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(http)?;
    let mut req = client.get(url);
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
    last: &Validators,
    timeout: Duration,
    attempts: u32,
    first_wait: Duration,
) -> Result<Fetched, FetchError> {
    let mut wait = first_wait;
    let mut tries = 0;
    loop {
        tries += 1;
        match fetch(source, last, timeout).await {
            Ok(f) => return Ok(f),
            // A missing local file will not appear by waiting a second.
            Err(e @ FetchError::Read { .. }) => return Err(e),
            Err(e) if tries >= attempts => return Err(e),
            Err(e) => {
                tracing::warn!(source = %source.name(), error = %error_chain(&e), retry_in_ms = wait.as_millis() as u64, "grants fetch failed");
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
            }
        }
    }
}
