//! `[central]`: this site is one of a chain whose ledger of record is the
//! centre (`tallyd central`, issue 18). Off unless configured; with it the
//! ledger keeps an outbox and the daemon ships it to `url`, with the
//! site's secret token from `token_file` (required: the centre refuses a
//! site without it).

use super::credential::{self, GrantsAuth};
use super::{duration_field, ConfigError, ErrAt};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCentral {
    url: Spanned<String>,
    site_id: Spanned<String>,
    #[serde(default)]
    token_file: Option<Spanned<String>>,
    #[serde(default)]
    batch: Option<Spanned<i64>>,
    #[serde(default)]
    max_backoff: Option<Spanned<String>>,
}

/// Where and how the site ships its outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CentralConfig {
    /// The centre's base URL, `http://host:port`.
    pub url: String,
    /// This site's stable id in the chain.
    pub site_id: String,
    /// The site's token, sent as `Authorization: Bearer` (never shown by
    /// `Debug`).
    pub token: GrantsAuth,
    /// Most entries in one request.
    pub batch: usize,
    /// The longest wait between two attempts while the centre is away.
    pub max_backoff: Duration,
}

/// Most entries one request may carry.
pub const MAX_BATCH: i64 = 5_000;

pub(super) fn section(
    raw: &RawCentral,
    base: &Path,
    err: &ErrAt<'_>,
) -> Result<CentralConfig, ConfigError> {
    let url = raw.url.get_ref().trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        let msg = "must start with http:// or https://".into();
        return Err(err(Some(raw.url.span()), "central.url", msg));
    }
    let site_id = raw.site_id.get_ref().clone();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if site_id.is_empty() || site_id.len() > 64 || !site_id.chars().all(allowed) {
        let msg = "must be 1 to 64 letters, digits, `-`, `_` or `.`".into();
        return Err(err(Some(raw.site_id.span()), "central.site_id", msg));
    }
    let fields = credential::Fields {
        section: "central",
        target: "url",
        token_file: raw.token_file.as_ref(),
        basic_auth_file: None,
    };
    let Some(token) = credential::read(fields, true, base, err)? else {
        let msg = "is required: the file holding this site's secret token".into();
        return Err(err(None, "central.token_file", msg));
    };
    let batch = match &raw.batch {
        None => 500,
        Some(b) if (1..=MAX_BATCH).contains(b.get_ref()) => *b.get_ref() as usize,
        Some(b) => {
            let msg = format!("must be from 1 to {MAX_BATCH}");
            return Err(err(Some(b.span()), "central.batch", msg));
        }
    };
    let five_minutes = Duration::from_secs(300);
    let max_backoff = duration_field(&raw.max_backoff, "central.max_backoff", five_minutes, err)?;
    if max_backoff < Duration::from_secs(1) {
        let span = raw.max_backoff.as_ref().map(|m| m.span());
        return Err(err(
            span,
            "central.max_backoff",
            "must be at least 1s".into(),
        ));
    }
    Ok(CentralConfig {
        url,
        site_id,
        token,
        batch,
        max_backoff,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, GrantsAuth};
    use std::path::Path;

    fn parse(base: &Path, central: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "[site]\ntimezone = \"UTC\"\n[central]\nurl = \"https://c.example\"\nsite_id = \"ber-1\"\n{central}"
        );
        Config::parse(&text, "test.toml", base)
    }

    #[test]
    fn the_token_file_is_required_read_beside_the_config_and_never_debug_printed() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), "s3cret\n").expect("write");
        let c = parse(dir.path(), "token_file = \"token\"\n").expect("valid");
        let central = c.central.expect("central");
        assert_eq!(central.token, GrantsAuth::Bearer("s3cret".into()));
        assert!(!format!("{central:?}").contains("s3cret"), "{central:?}");
        let e = parse(dir.path(), "").expect_err("no token_file");
        assert_eq!(e.field, "central.token_file", "{e}");
        let e = parse(dir.path(), "token_file = \"missing\"\n").expect_err("missing");
        assert_eq!((e.field.as_str(), e.line), ("central.token_file", Some(6)));
    }
}
