//! `[central]`: this site is one of a chain whose ledger of record is the
//! centre (`tallyd central`, issue 18). Off unless configured; with it the
//! ledger keeps an outbox and the daemon ships it to `url`, with the
//! site's secret token from `token_file` (required: the centre refuses a
//! site without it). An `https://` centre is checked against the system's
//! roots, a `ca_file` or a pinned `tls_fingerprint`, as printers are.

use super::credential::{self, GrantsAuth};
use super::{ca_file, duration_field, ConfigError, ErrAt};
use crate::site::Issue;
use crate::tls::{Fingerprint, ServerIdentity, Trust};
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
    ca_file: Option<Spanned<String>>,
    #[serde(default)]
    tls_fingerprint: Option<Spanned<String>>,
    #[serde(default)]
    cert_file: Option<Spanned<String>>,
    #[serde(default)]
    key_file: Option<Spanned<String>>,
    #[serde(default)]
    batch: Option<Spanned<i64>>,
    #[serde(default)]
    max_backoff: Option<Spanned<String>>,
    #[serde(default)]
    retention: Option<Spanned<String>>,
    #[serde(default)]
    issue: Option<Spanned<String>>,
    #[serde(default)]
    escrow_cents: Option<Spanned<i64>>,
    #[serde(default)]
    escrow_minutes: Option<Spanned<i64>>,
    #[serde(default)]
    allowance_cents: Option<Spanned<i64>>,
    #[serde(default)]
    allowance_minutes: Option<Spanned<i64>>,
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
    /// Whom an `https://` centre must be.
    pub trust: Trust,
    /// The certificate and key this site presents to a centre that asks
    /// for one (mutual TLS, the centre's `client_ca_file`); `https://` only.
    pub identity: Option<ServerIdentity>,
    /// Most entries in one request.
    pub batch: usize,
    /// The longest wait between two attempts while the centre is away.
    pub max_backoff: Duration,
    /// How long an acknowledged outbox entry is kept before it is pruned.
    pub retention: Duration,
    /// Who issues this site's lots: the site from its grants file
    /// (`"site"`, the default) or the centre, which places slices of the
    /// chain's lots here (`"central"`).
    pub issue: Issue,
    /// The escrow this site keeps for each member who used it in the last
    /// 7 days, topped up when it falls below 30%: printing (cents) and
    /// each time credit they booked (minutes).
    pub escrow_cents: i64,
    pub escrow_minutes: i64,
    /// How far beyond credit a print release's hold (cents) or a room
    /// session (minutes) may go per member while the centre cannot be
    /// reached, until it acknowledges that use (0: not at all, the
    /// default: credits-only stays strict).
    pub allowance_cents: i64,
    pub allowance_minutes: i64,
}

/// The largest escrow target or offline allowance: $10,000, or 10,000
/// hours.
const MAX_ESCROW: i64 = 1_000_000;

fn amount(
    field: &Option<Spanned<i64>>,
    name: &str,
    default: i64,
    err: &ErrAt<'_>,
) -> Result<i64, ConfigError> {
    match field {
        None => Ok(default),
        Some(v) if (0..=MAX_ESCROW).contains(v.get_ref()) => Ok(*v.get_ref()),
        Some(v) => Err(err(
            Some(v.span()),
            name,
            format!("must be from 0 to {MAX_ESCROW}"),
        )),
    }
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
    if !is_site_id(&site_id) {
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
    let trust = trust(raw, &url, base, err)?;
    if let (Some(cert), false) = (&raw.cert_file, url.starts_with("https://")) {
        let msg = "is for an https:// centre: plain HTTP has no certificates".into();
        return Err(err(Some(cert.span()), "central.cert_file", msg));
    }
    let identity = super::http::identity(
        "central",
        raw.cert_file.as_ref(),
        raw.key_file.as_ref(),
        base,
        err,
    )?;
    let batch = match &raw.batch {
        None => 500,
        Some(b) if (1..=MAX_BATCH).contains(b.get_ref()) => *b.get_ref() as usize,
        Some(b) => {
            let msg = format!("must be from 1 to {MAX_BATCH}");
            return Err(err(Some(b.span()), "central.batch", msg));
        }
    };
    // A minute, not the design note's 5: a site must be back within about
    // a minute and a quarter of the centre for a day's outage to be
    // recovered in under 2 minutes (multi-site.md 5); one hello a minute
    // per site while the centre is away costs it nothing.
    let one_minute = Duration::from_secs(60);
    let max_backoff = duration_field(&raw.max_backoff, "central.max_backoff", one_minute, err)?;
    if max_backoff < Duration::from_secs(1) {
        let span = raw.max_backoff.as_ref().map(|m| m.span());
        return Err(err(
            span,
            "central.max_backoff",
            "must be at least 1s".into(),
        ));
    }
    let seven_days = Duration::from_secs(7 * 86_400);
    let retention = duration_field(&raw.retention, "central.retention", seven_days, err)?;
    let issue = match raw.issue.as_ref().map(|i| (i.get_ref().as_str(), i.span())) {
        None | Some(("site", _)) => Issue::Site,
        Some(("central", _)) => Issue::Central,
        Some((_, span)) => {
            let msg = "must be \"site\" (this site issues its lots from its grants file) or \"central\" (the centre does, and places escrow here)".into();
            return Err(err(Some(span), "central.issue", msg));
        }
    };
    Ok(CentralConfig {
        url,
        site_id,
        token,
        trust,
        identity,
        batch,
        max_backoff,
        retention,
        issue,
        escrow_cents: amount(&raw.escrow_cents, "central.escrow_cents", 200, err)?,
        escrow_minutes: amount(&raw.escrow_minutes, "central.escrow_minutes", 60, err)?,
        allowance_cents: amount(&raw.allowance_cents, "central.allowance_cents", 0, err)?,
        allowance_minutes: amount(&raw.allowance_minutes, "central.allowance_minutes", 0, err)?,
    })
}

/// `ca_file` or `tls_fingerprint` (not both, and only for an `https://`
/// url), else the system's roots.
fn trust(raw: &RawCentral, url: &str, base: &Path, err: &ErrAt<'_>) -> Result<Trust, ConfigError> {
    let (field, span) = match (&raw.ca_file, &raw.tls_fingerprint) {
        (None, None) => return Ok(Trust::System),
        (Some(_), Some(f)) => {
            let msg = "set ca_file or tls_fingerprint, not both".into();
            return Err(err(Some(f.span()), "central.tls_fingerprint", msg));
        }
        (Some(c), None) => ("central.ca_file", c.span()),
        (None, Some(f)) => ("central.tls_fingerprint", f.span()),
    };
    if !url.starts_with("https://") {
        return Err(err(Some(span), field, "needs an https:// url".into()));
    }
    if let Some(path) = &raw.ca_file {
        return ca_file(path, base, field, err).map(Trust::CaFile);
    }
    let text = raw.tls_fingerprint.as_ref().map_or("", |f| f.get_ref());
    Fingerprint::parse(text).map(Trust::Pinned).ok_or_else(|| {
        let msg = format!(
            "`{text}` is not a SHA-256 fingerprint (64 hex digits, colons optional, like sha256:AB:CD:…)"
        );
        err(Some(span), field, msg)
    })
}

/// Whether `id` is a site id: 1 to 64 letters, digits, `-`, `_` or `.`
/// (`[central] site_id`, a member's `home_site`).
pub fn is_site_id(id: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    !id.is_empty() && id.len() <= 64 && id.chars().all(allowed)
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
        assert_eq!(
            central.retention,
            std::time::Duration::from_secs(7 * 86_400)
        );
        let e = parse(dir.path(), "").expect_err("no token_file");
        assert_eq!(e.field, "central.token_file", "{e}");
        let e = parse(dir.path(), "token_file = \"missing\"\n").expect_err("missing");
        assert_eq!((e.field.as_str(), e.line), ("central.token_file", Some(6)));
    }

    #[test]
    fn an_https_centre_takes_a_ca_file_or_a_pin_not_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), "s3cret\n").expect("write");
        let pin = format!("tls_fingerprint = \"{}\"\n", "ab".repeat(32));
        let c = parse(dir.path(), &format!("token_file = \"token\"\n{pin}")).expect("pin");
        assert!(matches!(
            c.central.expect("central").trust,
            crate::tls::Trust::Pinned(_)
        ));
        let cases = [
            (
                format!("{pin}ca_file = \"token\"\n"),
                "central.tls_fingerprint",
            ),
            ("ca_file = \"missing.pem\"\n".to_string(), "central.ca_file"),
            (
                "tls_fingerprint = \"ab:cd\"\n".to_string(),
                "central.tls_fingerprint",
            ),
        ];
        for (more, field) in cases {
            let e = parse(dir.path(), &format!("token_file = \"token\"\n{more}")).expect_err(&more);
            assert_eq!(e.field, field, "{e}");
        }
        let text = "[site]\ntimezone = \"UTC\"\n[central]\nurl = \"http://c\"\nsite_id = \"a\"\ntoken_file = \"token\"\nca_file = \"x\"\n";
        let e = Config::parse(text, "t.toml", dir.path()).expect_err("http");
        assert_eq!(e.field, "central.ca_file", "{e}");
    }

    #[test]
    fn a_client_certificate_needs_its_key_and_an_https_centre() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), "s3cret\n").expect("write");
        let cases = [
            (
                "cert_file = \"c.pem\"\n",
                "central.key_file",
                "is needed with cert_file",
            ),
            (
                "key_file = \"k.pem\"\n",
                "central.cert_file",
                "is needed with key_file",
            ),
            (
                "cert_file = \"c.pem\"\nkey_file = \"k.pem\"\n",
                "central.cert_file",
                "cannot read",
            ),
        ];
        for (more, field, says) in cases {
            let e = parse(dir.path(), &format!("token_file = \"token\"\n{more}")).expect_err(more);
            assert_eq!(e.field, field, "{e}");
            assert!(e.to_string().contains(says), "{e}");
        }
        let text = "[site]\ntimezone = \"UTC\"\n[central]\nurl = \"http://c\"\nsite_id = \"a\"\n\
                    token_file = \"token\"\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n";
        let e = Config::parse(text, "t.toml", dir.path()).expect_err("plain http");
        assert_eq!(e.field, "central.cert_file", "{e}");
        assert!(e.to_string().contains("is for an https:// centre"), "{e}");
    }

    #[test]
    fn escrow_is_off_by_default_and_its_amounts_are_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), "s3cret\n").expect("write");
        let c = parse(dir.path(), "token_file = \"token\"\n").expect("valid");
        let central = c.central.expect("central");
        assert_eq!(central.issue, crate::site::Issue::Site);
        assert_eq!(
            (
                central.escrow_cents,
                central.escrow_minutes,
                central.allowance_cents
            ),
            (200, 60, 0)
        );
        let on = "token_file = \"token\"\nissue = \"central\"\nallowance_cents = 300\n";
        let central = parse(dir.path(), on)
            .expect("valid")
            .central
            .expect("central");
        assert_eq!(
            (central.issue, central.allowance_cents),
            (crate::site::Issue::Central, 300)
        );
        let cases = [
            ("issue = \"chain\"\n", "central.issue", "must be \"site\""),
            ("escrow_cents = -1\n", "central.escrow_cents", "from 0 to"),
            (
                "allowance_cents = 9999999\n",
                "central.allowance_cents",
                "from 0 to",
            ),
        ];
        for (more, field, says) in cases {
            let e = parse(dir.path(), &format!("token_file = \"token\"\n{more}")).expect_err(more);
            assert_eq!(e.field, field, "{e}");
            assert!(e.to_string().contains(says), "{e}");
        }
    }
}
