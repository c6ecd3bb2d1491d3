//! `[grants]`: where the central grants file is, how often to sync it, and
//! how to authenticate to it without a secret in the URL (`token_file`,
//! `basic_auth_file`). The secret files are read whenever the config is
//! loaded — at start and on every reload — so systemd's `LoadCredential=`
//! works; a missing, unreadable or empty one is a config error. So is a
//! `ca_file` (the CAs an `https://` source is checked against) that cannot
//! be read or holds no PEM certificate.

use super::credential::{self, GrantsAuth};
use super::{ca_file, duration_field, ConfigError, ErrAt};
use crate::tls::Trust;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGrants {
    source: Spanned<String>,
    #[serde(default)]
    interval: Option<Spanned<String>>,
    #[serde(default)]
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    token_file: Option<Spanned<String>>,
    #[serde(default)]
    basic_auth_file: Option<Spanned<String>>,
    #[serde(default)]
    ca_file: Option<Spanned<String>>,
}

/// Where the central grants file is and how often to sync it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantsConfig {
    /// A path (relative to the config's folder) or an `http(s)://` URL. A
    /// URL may hold a secret: print it through
    /// [`crate::grants::source::redact`].
    pub source: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// How to authenticate to a URL source.
    pub auth: Option<GrantsAuth>,
    /// Whom an `https://` source must be: the system's roots, or `ca_file`.
    pub trust: Trust,
}

/// `[grants]`: a source (a URL, or a path relative to the config's folder),
/// how often to sync it (15 minutes by default), how long a fetch may
/// take (10 seconds), and an optional credential file.
pub(super) fn section(
    g: &RawGrants,
    base: &Path,
    err: &ErrAt<'_>,
) -> Result<GrantsConfig, ConfigError> {
    let duration = |v: &Option<Spanned<String>>, field: &str, default: u64| {
        duration_field(v, field, Duration::from_secs(default), err)
    };
    let source = g.source.get_ref().trim();
    if source.is_empty() {
        return Err(err(
            Some(g.source.span()),
            "grants.source",
            "must not be empty".into(),
        ));
    }
    let is_url = source.starts_with("http://") || source.starts_with("https://");
    let is_https = source.starts_with("https://");
    let source = if is_url {
        source.to_string()
    } else {
        base.join(source).display().to_string()
    };
    Ok(GrantsConfig {
        source,
        interval: duration(&g.interval, "grants.interval", 900)?,
        timeout: duration(&g.timeout, "grants.timeout", 10)?,
        auth: credential::read(
            credential::Fields {
                section: "grants",
                target: "source",
                token_file: g.token_file.as_ref(),
                basic_auth_file: g.basic_auth_file.as_ref(),
            },
            is_url,
            base,
            err,
        )?,
        trust: match &g.ca_file {
            None => Trust::System,
            Some(_) if !is_https => {
                return Err(err(
                    g.ca_file.as_ref().map(Spanned::span),
                    "grants.ca_file",
                    "needs an https:// source".into(),
                ))
            }
            Some(path) => Trust::CaFile(ca_file(path, base, "grants.ca_file", err)?),
        },
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};
    use std::path::Path;

    fn parse(base: &Path, grants: &str) -> Result<Config, ConfigError> {
        let text = format!("[site]\ntimezone = \"UTC\"\n[grants]\n{grants}");
        Config::parse(&text, "test.toml", base)
    }

    #[test]
    fn a_token_file_is_read_beside_the_config_and_never_debug_printed() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), "s3cret\n").expect("write");
        let c = parse(
            dir.path(),
            "source = \"https://h/g.toml\"\ntoken_file = \"token\"\n",
        )
        .expect("valid");
        let g = c.grants.expect("grants");
        assert_eq!(g.auth, Some(super::GrantsAuth::Bearer("s3cret".into())));
        assert!(!format!("{g:?}").contains("s3cret"), "{g:?}");
    }

    #[test]
    fn a_basic_auth_file_holds_user_and_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("basic"), "sync:pa:ss\n").expect("write");
        let c = parse(
            dir.path(),
            "source = \"https://h/g.toml\"\nbasic_auth_file = \"basic\"\n",
        )
        .expect("valid");
        let auth = c.grants.expect("grants").auth.expect("auth");
        assert_eq!(
            auth,
            super::GrantsAuth::Basic {
                user: "sync".into(),
                password: "pa:ss".into()
            }
        );
        assert!(!format!("{auth:?}").contains("pa:ss"));
    }

    #[test]
    fn bad_credential_files_are_config_errors_with_line_and_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("empty"), "\n").expect("write");
        std::fs::write(dir.path().join("nocolon"), "s3cret\n").expect("write");
        std::fs::write(dir.path().join("huge"), "x".repeat(64 * 1024 + 1)).expect("write");
        let url = "source = \"https://h/g.toml\"\n";
        let cases = [
            (
                format!("{url}token_file = \"missing\"\n"),
                "grants.token_file",
                5,
            ),
            (
                format!("{url}token_file = \"empty\"\n"),
                "grants.token_file",
                5,
            ),
            (
                format!("{url}token_file = \"huge\"\n"),
                "grants.token_file",
                5,
            ),
            (
                format!("{url}basic_auth_file = \"nocolon\"\n"),
                "grants.basic_auth_file",
                5,
            ),
            (
                format!("{url}token_file = \"empty\"\nbasic_auth_file = \"empty\"\n"),
                "grants.basic_auth_file",
                6,
            ),
            (
                "source = \"grants.toml\"\ntoken_file = \"empty\"\n".into(),
                "grants.token_file",
                5,
            ),
            (
                format!("{url}ca_file = \"missing.pem\"\n"),
                "grants.ca_file",
                5,
            ),
            (format!("{url}ca_file = \"empty\"\n"), "grants.ca_file", 5),
            (
                "source = \"http://h/g.toml\"\nca_file = \"empty\"\n".into(),
                "grants.ca_file",
                5,
            ),
        ];
        for (text, field, line) in cases {
            let e = parse(dir.path(), &text).expect_err(&text);
            assert_eq!((e.field.as_str(), e.line), (field, Some(line)), "{e}");
            assert!(!e.to_string().contains("s3cret"), "{e}");
        }
    }
}
