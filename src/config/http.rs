//! `[http]`: the optional HTTP listener (`/metrics`, `/healthz`, and what
//! else the daemon serves there). Off unless `listen` is given. With
//! `cert_file` and `key_file` (both or neither) it speaks TLS only; the two
//! files are read and checked here, at start and on every reload.

use super::{duration_field, ConfigError, ErrAt};
use crate::tls::server::{IdentityError, Part, ServerIdentity};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    listen: Spanned<String>,
    #[serde(default)]
    grants_max_age: Option<Spanned<String>>,
    #[serde(default)]
    backup_max_age: Option<Spanned<String>>,
    #[serde(default)]
    cert_file: Option<Spanned<String>>,
    #[serde(default)]
    key_file: Option<Spanned<String>>,
}

/// The HTTP listener's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Where it listens (`127.0.0.1:9477`).
    pub listen: SocketAddr,
    /// `/healthz` fails once the last good grants sync is older; `None`:
    /// three grants intervals.
    pub grants_max_age: Option<Duration>,
    /// `/healthz` fails once the last good backup is older; `None`: two
    /// backup intervals.
    pub backup_max_age: Option<Duration>,
    /// `cert_file` and `key_file`: the listener speaks TLS, presenting
    /// them; `None`: plain HTTP.
    pub tls: Option<ServerIdentity>,
}

impl HttpConfig {
    /// How old the last good grants sync may be, when syncs run every
    /// `interval`.
    pub fn grants_max_age(&self, interval: Duration) -> Duration {
        self.grants_max_age.unwrap_or(interval.saturating_mul(3))
    }

    /// How old the last good backup may be, when one is taken every `every`.
    pub fn backup_max_age(&self, every: Duration) -> Duration {
        self.backup_max_age.unwrap_or(every.saturating_mul(2))
    }
}

pub(super) fn section(
    raw: Option<RawHttp>,
    base: &Path,
    err: &ErrAt<'_>,
) -> Result<Option<HttpConfig>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let text = raw.listen.get_ref().trim();
    let listen = text.parse::<SocketAddr>().map_err(|_| {
        err(
            Some(raw.listen.span()),
            "http.listen",
            format!("`{text}` is not an address and port like 127.0.0.1:9477"),
        )
    })?;
    let optional = |value: &Option<Spanned<String>>, field: &str| {
        value
            .as_ref()
            .map(|_| duration_field(value, field, Duration::ZERO, err))
            .transpose()
    };
    Ok(Some(HttpConfig {
        listen,
        grants_max_age: optional(&raw.grants_max_age, "http.grants_max_age")?,
        backup_max_age: optional(&raw.backup_max_age, "http.backup_max_age")?,
        tls: identity(
            "http",
            raw.cert_file.as_ref(),
            raw.key_file.as_ref(),
            base,
            err,
        )?,
    }))
}

/// `cert_file` and `key_file` (both or neither) of `section`, relative to
/// `base`, read and checked now.
pub(super) fn identity(
    section: &str,
    cert: Option<&Spanned<String>>,
    key: Option<&Spanned<String>>,
    base: &Path,
    err: &ErrAt<'_>,
) -> Result<Option<ServerIdentity>, ConfigError> {
    let cert_field = format!("{section}.cert_file");
    let key_field = format!("{section}.key_file");
    let (cert, key) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(c), Some(k)) => (c, k),
        (Some(c), None) => {
            return Err(err(
                Some(c.span()),
                &key_field,
                "is needed with cert_file (set both for TLS, or neither)".into(),
            ))
        }
        (None, Some(k)) => {
            return Err(err(
                Some(k.span()),
                &cert_field,
                "is needed with key_file (set both for TLS, or neither)".into(),
            ))
        }
    };
    let file = |s: &Spanned<String>| base.join(s.get_ref().trim());
    ServerIdentity::load(&file(cert), &file(key))
        .map(Some)
        .map_err(|e: IdentityError| {
            let (at, field) = match e.part() {
                Part::Cert => (cert, &cert_field),
                Part::Key => (key, &key_field),
            };
            let mut error = err(Some(at.span()), field, crate::error_chain(&e));
            error.source = Some(Arc::new(e));
            error
        })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;
    use std::time::Duration;

    fn parse(extra: &str) -> Result<Config, crate::config::ConfigError> {
        let text = format!("[site]\ntimezone = \"UTC\"\n{extra}");
        Config::parse(&text, "test.toml", Path::new("/etc/tallyd"))
    }

    #[test]
    fn http_is_off_unless_configured_and_its_bounds_default_to_the_intervals() {
        assert_eq!(parse("").expect("config").http, None);
        let http = parse("[http]\nlisten = \"127.0.0.1:9477\"\n")
            .expect("config")
            .http
            .expect("http on");
        assert_eq!(http.listen.to_string(), "127.0.0.1:9477");
        let m = Duration::from_secs(60);
        assert_eq!(http.grants_max_age(m), 3 * m);
        assert_eq!(http.backup_max_age(m), 2 * m);
        let http = parse("[http]\nlisten = \"[::1]:80\"\ngrants_max_age = \"2h\"\n")
            .expect("config")
            .http
            .expect("http on");
        assert_eq!(http.grants_max_age(m), Duration::from_secs(7200));
    }

    #[test]
    fn cert_file_and_key_file_go_together_and_a_missing_one_is_named() {
        let listen = "[http]\nlisten = \"127.0.0.1:9477\"\n";
        let e = parse(&format!("{listen}cert_file = \"c.pem\"\n")).expect_err("refused");
        assert_eq!(
            e.to_string(),
            "test.toml:5: http.key_file: is needed with cert_file (set both for TLS, or neither)"
        );
        let e = parse(&format!("{listen}key_file = \"k.pem\"\n")).expect_err("refused");
        assert_eq!(
            e.to_string(),
            "test.toml:5: http.cert_file: is needed with key_file (set both for TLS, or neither)"
        );
        let e = parse(&format!(
            "{listen}cert_file = \"/nonexistent/c.pem\"\nkey_file = \"k.pem\"\n"
        ))
        .expect_err("refused");
        assert!(
            e.to_string()
                .starts_with("test.toml:5: http.cert_file: cannot read /nonexistent/c.pem: "),
            "{e}"
        );
        assert_eq!(parse(listen).expect("config").http.expect("http").tls, None);
    }

    #[test]
    fn a_bad_address_or_bound_names_its_line_and_field() {
        let e = parse("[http]\nlisten = \"localhost\"\n").expect_err("refused");
        assert_eq!(
            e.to_string(),
            "test.toml:4: http.listen: `localhost` is not an address and port like 127.0.0.1:9477"
        );
        let e = parse("[http]\nlisten = \"127.0.0.1:1\"\nbackup_max_age = \"soon\"\n")
            .expect_err("refused");
        assert!(
            e.to_string()
                .starts_with("test.toml:5: http.backup_max_age: `soon`"),
            "{e}"
        );
    }
}
