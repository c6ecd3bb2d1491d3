//! `[alerts]`: whom the daemon tells when something needs a person. A
//! `command` (run with the alert's JSON on stdin) and/or a `webhook` (the
//! JSON POSTed to it, with the same `token_file`/`basic_auth_file` and
//! `ca_file` as the grants URL); `after` (5 minutes) is how long a printer
//! or reader is down, or grants syncs fail, before it alerts; `repeat` (1
//! hour) the least time between two alerts of one condition; `timeout` (10
//! seconds) how long one delivery may take; `central_lag` (1 hour) how old
//! a chain site's oldest unacknowledged outbox entry may grow before it
//! alerts.

use super::credential::{self, GrantsAuth};
use super::{ca_file, duration_field, ConfigError, ErrAt};
use crate::tls::Trust;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlerts {
    #[serde(default)]
    command: Option<Spanned<String>>,
    #[serde(default)]
    webhook: Option<Spanned<String>>,
    #[serde(default)]
    token_file: Option<Spanned<String>>,
    #[serde(default)]
    basic_auth_file: Option<Spanned<String>>,
    #[serde(default)]
    ca_file: Option<Spanned<String>>,
    #[serde(default)]
    after: Option<Spanned<String>>,
    #[serde(default)]
    repeat: Option<Spanned<String>>,
    #[serde(default)]
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    central_lag: Option<Spanned<String>>,
}

/// Where alerts go and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertsConfig {
    /// A program (relative to the config's folder), run without a shell or
    /// arguments, the alert on its stdin.
    pub command: Option<PathBuf>,
    /// An `http(s)://` URL the alert is POSTed to (no userinfo in it).
    pub webhook: Option<Webhook>,
    /// How long a condition lasts before it alerts.
    pub after: Duration,
    /// The least time between two firing alerts of one condition.
    pub repeat: Duration,
    /// The most one delivery (the command, the POST) may take.
    pub timeout: Duration,
    /// How old a chain site's oldest unacknowledged outbox entry may grow
    /// before it alerts.
    pub central_lag: Duration,
}

/// The webhook: its URL, credential and whom it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub auth: Option<GrantsAuth>,
    pub trust: Trust,
}

pub(super) fn section(
    raw: &RawAlerts,
    base: &Path,
    err: &ErrAt<'_>,
) -> Result<AlertsConfig, ConfigError> {
    let duration = |v: &Option<Spanned<String>>, field: &str, default: u64| {
        duration_field(v, field, Duration::from_secs(default), err)
    };
    let command = match &raw.command {
        None => None,
        Some(c) => Some(command(c, base, err)?),
    };
    let webhook = webhook(raw, base, err)?;
    if command.is_none() && webhook.is_none() {
        return Err(err(
            None,
            "alerts",
            "set a command, a webhook or both".into(),
        ));
    }
    Ok(AlertsConfig {
        command,
        webhook,
        after: duration(&raw.after, "alerts.after", 300)?,
        repeat: duration(&raw.repeat, "alerts.repeat", 3600)?,
        timeout: duration(&raw.timeout, "alerts.timeout", 10)?,
        central_lag: duration(&raw.central_lag, "alerts.central_lag", 3600)?,
    })
}

/// `command`: a program that exists now (a typo shows at `check-config`,
/// not at the first outage).
fn command(c: &Spanned<String>, base: &Path, err: &ErrAt<'_>) -> Result<PathBuf, ConfigError> {
    let at = |message: String| err(Some(c.span()), "alerts.command", message);
    let text = c.get_ref().trim();
    if text.is_empty() {
        return Err(at("must not be empty".into()));
    }
    let path = base.join(text);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(path),
        Ok(_) => Err(at(format!("{} is not a file", path.display()))),
        Err(e) => Err(at(format!("cannot use {}: {e}", path.display()))),
    }
}

/// `webhook` with its credential and `ca_file`.
fn webhook(raw: &RawAlerts, base: &Path, err: &ErrAt<'_>) -> Result<Option<Webhook>, ConfigError> {
    let url = raw.webhook.as_ref().map(|w| (w.get_ref().trim(), w.span()));
    let is_url = url.is_some();
    let auth = credential::read(
        credential::Fields {
            section: "alerts",
            target: "webhook",
            token_file: raw.token_file.as_ref(),
            basic_auth_file: raw.basic_auth_file.as_ref(),
        },
        is_url,
        base,
        err,
    )?;
    let is_https = url.as_ref().is_some_and(|(u, _)| u.starts_with("https://"));
    let trust = match &raw.ca_file {
        None => Trust::System,
        Some(c) if !is_https => {
            return Err(err(
                Some(c.span()),
                "alerts.ca_file",
                "needs an https:// webhook".into(),
            ))
        }
        Some(c) => Trust::CaFile(ca_file(c, base, "alerts.ca_file", err)?),
    };
    let Some((url, span)) = url else {
        return Ok(None);
    };
    let at = |message: &str| err(Some(span.clone()), "alerts.webhook", message.into());
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return Err(at("must be an http:// or https:// URL"));
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.is_empty() {
        return Err(at("has no host"));
    }
    if authority.contains('@') {
        return Err(at(
            "must not hold a user or password: put the credential in token_file or basic_auth_file",
        ));
    }
    Ok(Some(Webhook {
        url: url.to_string(),
        auth,
        trust,
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};
    use std::path::Path;

    fn parse(base: &Path, alerts: &str) -> Result<Config, ConfigError> {
        let text = format!("[site]\ntimezone = \"UTC\"\n[alerts]\n{alerts}");
        Config::parse(&text, "test.toml", base)
    }

    #[test]
    fn alerts_are_off_unless_configured_and_default_to_5m_1h_10s() {
        let dir = tempfile::tempdir().expect("tempdir");
        let none = Config::parse("[site]\ntimezone = \"UTC\"\n", "t.toml", dir.path());
        assert_eq!(none.expect("valid").alerts, None);
        std::fs::write(dir.path().join("notify"), "#!/bin/sh\n").expect("write");
        let a = parse(dir.path(), "command = \"notify\"\n")
            .expect("valid")
            .alerts
            .expect("alerts");
        assert_eq!(a.command, Some(dir.path().join("notify")));
        assert_eq!(a.webhook, None);
        let secs = (a.after.as_secs(), a.repeat.as_secs(), a.timeout.as_secs());
        assert_eq!(secs, (300, 3600, 10));
    }

    #[test]
    fn a_webhook_takes_the_grants_credential_and_ca_file_options() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), "s3cret\n").expect("write");
        let text = "webhook = \"https://h:8443/hook\"\ntoken_file = \"token\"\nafter = \"2s\"\n";
        let a = parse(dir.path(), text)
            .expect("valid")
            .alerts
            .expect("alerts");
        let hook = a.webhook.expect("webhook");
        assert_eq!(hook.url, "https://h:8443/hook");
        assert_eq!(hook.auth, Some(super::GrantsAuth::Bearer("s3cret".into())));
        assert!(!format!("{hook:?}").contains("s3cret"));
        assert_eq!(a.after.as_secs(), 2);
    }

    #[test]
    fn bad_settings_name_their_field_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), "s3cret\n").expect("write");
        std::fs::write(dir.path().join("notify"), "#!/bin/sh\n").expect("write");
        let cases = [
            ("after = \"5m\"\n", "alerts", None),
            ("command = \"missing\"\n", "alerts.command", Some(4)),
            ("command = \"\"\n", "alerts.command", Some(4)),
            ("command = \".\"\n", "alerts.command", Some(4)),
            ("webhook = \"ftp://h/x\"\n", "alerts.webhook", Some(4)),
            ("webhook = \"https://u:p@h/x\"\n", "alerts.webhook", Some(4)),
            (
                "command = \"notify\"\ntoken_file = \"token\"\n",
                "alerts.token_file",
                Some(5),
            ),
            (
                "webhook = \"http://h/x\"\nca_file = \"token\"\n",
                "alerts.ca_file",
                Some(5),
            ),
            (
                "webhook = \"https://h/x\"\nca_file = \"token\"\n",
                "alerts.ca_file",
                Some(5),
            ),
            (
                "command = \"notify\"\nrepeat = \"often\"\n",
                "alerts.repeat",
                Some(5),
            ),
            (
                "command = \"notify\"\ntimeout = \"0s\"\n",
                "alerts.timeout",
                Some(5),
            ),
        ];
        for (text, field, line) in cases {
            let e = parse(dir.path(), text).expect_err(text);
            assert_eq!((e.field.as_str(), e.line), (field, line), "{text}: {e}");
            assert!(!e.to_string().contains("s3cret"), "{e}");
        }
    }
}
