//! `[[printers]]`: the printers and CUPS queues the daemon polls.

use super::{ca_file, duration_field, ConfigError, ErrAt};
use crate::pricing::PriceTable;
use crate::tls::{Fingerprint, Trust};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrinter {
    id: Spanned<String>,
    uri: Spanned<String>,
    #[serde(default)]
    mode: Option<Spanned<String>>,
    prices: Spanned<String>,
    #[serde(default)]
    poll_interval: Option<Spanned<String>>,
    #[serde(default)]
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    colour_default: Option<Spanned<String>>,
    #[serde(default)]
    page_estimate: Option<Spanned<i64>>,
    #[serde(default)]
    max_job_impressions: Option<Spanned<i64>>,
    #[serde(default)]
    hold_timeout: Option<Spanned<String>>,
    #[serde(default)]
    release_to: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    ca_file: Option<Spanned<String>>,
    #[serde(default)]
    tls_fingerprint: Option<Spanned<String>>,
}

/// How jobs reach the printer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Jobs print at once; completed jobs are charged.
    Direct,
    /// Jobs wait held at the queue until their owner taps a card.
    Held,
    /// A virtual held queue members print to from anywhere: a tap at any of
    /// its `release_to` printers moves the member's jobs there
    /// (`CUPS-Move-Job`) and releases them at that printer's prices.
    FollowMe,
}

/// One printer or CUPS queue.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterConfig {
    /// Names the printer in the ledger, in logs and in reports.
    pub id: String,
    /// `ipp://`, `ipps://`, `http://` or `https://`.
    pub uri: String,
    pub mode: Mode,
    pub prices: PriceTable,
    pub poll_interval: Duration,
    /// For every request to this printer.
    pub timeout: Duration,
    /// Whether a job that reports no colour mode at all printed in colour.
    pub colour_default: bool,
    /// Impressions assumed for a held job whose size the queue does not know.
    pub page_estimate: i64,
    /// Held jobs older than this are cancelled.
    pub hold_timeout: Duration,
    /// A finished job reporting more impressions than this goes to review.
    pub max_job_impressions: i64,
    /// Follow-me queues: the held printers (ids) where their jobs may come
    /// out; empty for the others.
    pub release_to: Vec<String>,
    /// Whom an `ipps://` or `https://` printer must be: the system's roots,
    /// its `ca_file`, or its pinned `tls_fingerprint`.
    pub trust: Trust,
}

/// The most `max_job_impressions` may be set to.
pub const MAX_JOB_IMPRESSIONS_LIMIT: i64 = 1_000_000;

/// An optional whole number within `min..=max`, else `default`.
fn count_field(
    v: &Option<Spanned<i64>>,
    field: &str,
    default: i64,
    (min, max): (i64, i64),
    err: &ErrAt<'_>,
) -> Result<i64, ConfigError> {
    match v {
        None => Ok(default),
        Some(n) if (min..=max).contains(n.get_ref()) => Ok(*n.get_ref()),
        Some(n) => Err(err(
            Some(n.span()),
            field,
            format!("must be from {min} to {max}"),
        )),
    }
}

/// The `[[printers]]` entries; relative `ca_file` paths are in `base`.
pub(super) fn validate(
    raw: Vec<RawPrinter>,
    prices: &BTreeMap<String, PriceTable>,
    base: &Path,
    err: &ErrAt<'_>,
) -> Result<Vec<PrinterConfig>, ConfigError> {
    let mut out: Vec<PrinterConfig> = Vec::new();
    let mut targets = Vec::new();
    for (i, mut p) in raw.into_iter().enumerate() {
        targets.push(p.release_to.take());
        let printer = printer(i, p, &out, prices, base, err)?;
        out.push(printer);
    }
    for (i, release_to) in targets.into_iter().enumerate() {
        out[i].release_to = release_to_field(i, release_to, &out, err)?;
    }
    Ok(out)
}

/// A follow-me queue's `release_to`: at least one held printer, each
/// configured, on the same CUPS server (a job moves only within one);
/// other printers have none.
fn release_to_field(
    i: usize,
    raw: Option<Spanned<Vec<String>>>,
    printers: &[PrinterConfig],
    err: &ErrAt<'_>,
) -> Result<Vec<String>, ConfigError> {
    let field = format!("printers[{i}].release_to");
    let me = &printers[i];
    let Some(raw) = raw else {
        if me.mode == Mode::FollowMe {
            let why =
                "a follow-me queue needs `release_to`, the held printers where its jobs come out";
            return Err(err(None, &field, why.into()));
        }
        return Ok(Vec::new());
    };
    let span = Some(raw.span());
    if me.mode != Mode::FollowMe {
        return Err(err(
            span,
            &field,
            "only a `follow-me` queue has `release_to`".into(),
        ));
    }
    let ids = raw.into_inner();
    if ids.is_empty() {
        return Err(err(span, &field, "lists no printer".into()));
    }
    for id in &ids {
        let Some(target) = printers.iter().find(|p| &p.id == id) else {
            return Err(err(span, &field, format!("no printer `{id}`")));
        };
        if target.mode != Mode::Held {
            return Err(err(
                span,
                &field,
                format!("printer `{id}` is not a `held` printer"),
            ));
        }
        if crate::ipp_uri::origin(&target.uri) != crate::ipp_uri::origin(&me.uri) {
            let why = format!("printer `{id}` is on another server than this queue (`CUPS-Move-Job` moves a job only within one CUPS)");
            return Err(err(span, &field, why));
        }
    }
    Ok(ids)
}

/// The `i`th `[[printers]]` entry; `earlier` are the ones before it.
fn printer(
    i: usize,
    p: RawPrinter,
    earlier: &[PrinterConfig],
    prices: &BTreeMap<String, PriceTable>,
    base: &Path,
    err: &ErrAt<'_>,
) -> Result<PrinterConfig, ConfigError> {
    let field = |name: &str| format!("printers[{i}].{name}");
    let id = printer_id(&p.id, &field("id"), earlier, err)?;
    let uri = p.uri.get_ref().trim().to_string();
    if crate::ipp_uri::http_url(&uri).is_none() {
        return Err(err(
            Some(p.uri.span()),
            &field("uri"),
            format!("`{uri}` is not an ipp://, ipps://, http:// or https:// URI with a host"),
        ));
    }
    let mode = mode(p.mode.as_ref(), &field("mode"), err)?;
    let table = prices.get(p.prices.get_ref()).ok_or_else(|| {
        err(
            Some(p.prices.span()),
            &field("prices"),
            format!("no price table `[prices.{}]`", p.prices.get_ref()),
        )
    })?;
    let duration = |v: &Option<Spanned<String>>, name: &str, default: Duration| {
        duration_field(v, &field(name), default, err)
    };
    let colour_default = colour_default(p.colour_default.as_ref(), &field("colour_default"), err)?;
    let limit = (1, MAX_JOB_IMPRESSIONS_LIMIT);
    let page_estimate = count_field(&p.page_estimate, &field("page_estimate"), 5, limit, err)?;
    let max_job_impressions = count_field(
        &p.max_job_impressions,
        &field("max_job_impressions"),
        2000,
        limit,
        err,
    )?;
    let trust = trust(&p, &id, &uri, base, &field, err)?;
    Ok(PrinterConfig {
        trust,
        id,
        uri,
        mode,
        prices: table.clone(),
        poll_interval: duration(&p.poll_interval, "poll_interval", Duration::from_secs(10))?,
        timeout: duration(&p.timeout, "timeout", Duration::from_secs(5))?,
        colour_default,
        page_estimate,
        max_job_impressions,
        hold_timeout: duration(
            &p.hold_timeout,
            "hold_timeout",
            Duration::from_secs(4 * 3600),
        )?,
        release_to: Vec::new(),
    })
}

/// Whom the printer must be: its `ca_file` or its `tls_fingerprint` (not
/// both, and only for a printer reached over TLS), else the system's roots.
/// Errors name the printer, and the file.
fn trust(
    p: &RawPrinter,
    id: &str,
    uri: &str,
    base: &Path,
    field: &dyn Fn(&str) -> String,
    err: &ErrAt<'_>,
) -> Result<Trust, ConfigError> {
    let tls = uri.starts_with("ipps://") || uri.starts_with("https://");
    let (name, span) = match (&p.ca_file, &p.tls_fingerprint) {
        (None, None) => return Ok(Trust::System),
        (Some(_), Some(f)) => {
            return Err(err(
                Some(f.span()),
                &field("tls_fingerprint"),
                format!("printer `{id}`: set ca_file or tls_fingerprint, not both"),
            ))
        }
        (Some(c), None) => ("ca_file", c.span()),
        (None, Some(f)) => ("tls_fingerprint", f.span()),
    };
    if !tls {
        return Err(err(
            Some(span),
            &field(name),
            format!("printer `{id}`: needs an ipps:// or https:// uri, not `{uri}`"),
        ));
    }
    if let Some(path) = &p.ca_file {
        return ca_file(path, base, &field("ca_file"), err)
            .map(Trust::CaFile)
            .map_err(|mut e| {
                e.message = format!("printer `{id}`: {}", e.message);
                e
            });
    }
    let text = p.tls_fingerprint.as_ref().map_or("", |f| f.get_ref());
    Fingerprint::parse(text).map(Trust::Pinned).ok_or_else(|| {
        err(
            Some(span),
            &field("tls_fingerprint"),
            format!(
                "printer `{id}`: `{text}` is not a SHA-256 fingerprint (64 hex digits, colons \
                 optional, like sha256:AB:CD:…)"
            ),
        )
    })
}

/// A printer's id: letters, digits, `-`, `_` or `.`, and no earlier
/// printer's.
fn printer_id(
    raw: &Spanned<String>,
    field: &str,
    earlier: &[PrinterConfig],
    err: &ErrAt<'_>,
) -> Result<String, ConfigError> {
    let id = raw.get_ref().trim().to_string();
    let id_ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if !id_ok {
        return Err(err(
            Some(raw.span()),
            field,
            format!("`{id}` must be letters, digits, `-`, `_` or `.`"),
        ));
    }
    if earlier.iter().any(|o| o.id == id) {
        return Err(err(
            Some(raw.span()),
            field,
            format!("printer `{id}` is configured twice"),
        ));
    }
    Ok(id)
}

/// `direct` (the default), `held` or `follow-me`.
fn mode(raw: Option<&Spanned<String>>, field: &str, err: &ErrAt<'_>) -> Result<Mode, ConfigError> {
    match raw.map(|m| m.get_ref().as_str()) {
        None | Some("direct") => Ok(Mode::Direct),
        Some("held") => Ok(Mode::Held),
        Some("follow-me") => Ok(Mode::FollowMe),
        Some(other) => Err(err(
            raw.map(Spanned::span),
            field,
            format!("`{other}` is not `direct`, `held` or `follow-me`"),
        )),
    }
}

/// Whether a job that reports no colour mode printed in colour: `mono` (the
/// default) or `colour` (`color` too).
fn colour_default(
    raw: Option<&Spanned<String>>,
    field: &str,
    err: &ErrAt<'_>,
) -> Result<bool, ConfigError> {
    match raw.map(|c| c.get_ref().as_str()) {
        None | Some("mono") => Ok(false),
        Some("colour") | Some("color") => Ok(true),
        Some(other) => Err(err(
            raw.map(Spanned::span),
            field,
            format!("`{other}` is not `mono` or `colour`"),
        )),
    }
}

#[cfg(test)]
mod follow_me_tests {
    use crate::config::{Config, Mode};
    use std::path::Path;

    const HEAD: &str = r#"
[site]
timezone = "UTC"
[prices.standard]
default_media = "a4"
[prices.standard.media.a4]
mono = { one_sided = 10, two_sided = 8 }
colour = { one_sided = 40, two_sided = 35 }
[[printers]]
id = "upstairs"
uri = "ipp://localhost/printers/upstairs"
mode = "held"
prices = "standard"
[[printers]]
id = "lobby"
uri = "ipp://localhost/printers/lobby"
prices = "standard"
"#;

    fn with(entry: &str) -> Result<Config, crate::config::ConfigError> {
        let text = format!("{HEAD}[[printers]]\nid = \"anywhere\"\nprices = \"standard\"\n{entry}");
        Config::parse(&text, "test.toml", Path::new("/etc/tallyd"))
    }

    #[test]
    fn a_follow_me_queue_releases_to_held_printers_of_its_own_cups() {
        let c = with("uri = \"ipp://localhost:631/printers/anywhere\"\nmode = \"follow-me\"\nrelease_to = [\"upstairs\"]\n")
            .expect("valid");
        assert_eq!(c.printers[2].mode, Mode::FollowMe);
        assert_eq!(c.printers[2].release_to, ["upstairs"]);
    }

    #[test]
    fn a_bad_release_to_is_refused_with_its_reason() {
        let uri = "uri = \"ipp://localhost/printers/anywhere\"\n";
        let cases = [
            ("mode = \"follow-me\"\n", "needs `release_to`"),
            (
                "mode = \"follow-me\"\nrelease_to = []\n",
                "lists no printer",
            ),
            (
                "mode = \"follow-me\"\nrelease_to = [\"attic\"]\n",
                "no printer `attic`",
            ),
            (
                "mode = \"follow-me\"\nrelease_to = [\"lobby\"]\n",
                "not a `held` printer",
            ),
            (
                "mode = \"held\"\nrelease_to = [\"upstairs\"]\n",
                "only a `follow-me` queue",
            ),
        ];
        for (entry, why) in cases {
            let e = with(&format!("{uri}{entry}")).expect_err(entry);
            assert!(e.to_string().contains(why), "{entry}: {e}");
            assert_eq!(e.field, "printers[2].release_to");
        }
        let elsewhere = "uri = \"ipp://print-server.lan/printers/anywhere\"\nmode = \"follow-me\"\nrelease_to = [\"upstairs\"]\n";
        let e = with(elsewhere).expect_err("another server");
        assert!(e.to_string().contains("another server"), "{e}");
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};
    use crate::tls::{Fingerprint, Trust};
    use std::path::Path;

    fn parse(base: &Path, printer: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "[site]\ntimezone = \"UTC\"\n[prices.std]\ndefault_media = \"a4\"\n\
             [prices.std.media.a4]\nmono = {{ one_sided = 10, two_sided = 8 }}\n\
             colour = {{ one_sided = 40, two_sided = 35 }}\n\
             [[printers]]\nid = \"lobby\"\nprices = \"std\"\n{printer}"
        );
        Config::parse(&text, "test.toml", base)
    }

    const IPPS: &str = "uri = \"ipps://printer.local/ipp/print\"\n";

    #[test]
    fn a_pinned_fingerprint_is_read_with_or_without_colons() {
        let dir = Path::new("/nonexistent");
        let hex = "0a".repeat(32);
        let c = parse(dir, &format!("{IPPS}tls_fingerprint = \"{hex}\"\n")).expect("valid");
        let want = Trust::Pinned(Fingerprint::parse(&hex).expect("hex"));
        assert_eq!(c.printers[0].trust, want);
        let colons = format!("sha256:{}", vec!["0A"; 32].join(":"));
        let c = parse(dir, &format!("{IPPS}tls_fingerprint = \"{colons}\"\n")).expect("valid");
        assert_eq!(c.printers[0].trust, want);
        let c = parse(dir, IPPS).expect("valid");
        assert_eq!(c.printers[0].trust, Trust::System);
    }

    #[test]
    fn bad_trust_settings_are_config_errors_naming_the_printer() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("key.pem"),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .expect("write");
        let hex = "ab".repeat(32);
        let cases = [
            (
                format!("{IPPS}tls_fingerprint = \"sha256:AB:CD\"\n"),
                "printers[0].tls_fingerprint",
                "printer `lobby`: `sha256:AB:CD` is not a SHA-256 fingerprint",
            ),
            (
                format!("{IPPS}ca_file = \"missing.pem\"\n"),
                "printers[0].ca_file",
                "printer `lobby`: cannot read ",
            ),
            (
                format!("{IPPS}ca_file = \"key.pem\"\n"),
                "printers[0].ca_file",
                "key.pem holds no certificate",
            ),
            (
                format!("{IPPS}ca_file = \"key.pem\"\ntls_fingerprint = \"{hex}\"\n"),
                "printers[0].tls_fingerprint",
                "set ca_file or tls_fingerprint, not both",
            ),
            (
                format!("uri = \"ipp://printer.local/ipp/print\"\ntls_fingerprint = \"{hex}\"\n"),
                "printers[0].tls_fingerprint",
                "needs an ipps:// or https:// uri",
            ),
        ];
        for (text, field, message) in cases {
            let e = parse(dir.path(), &text).expect_err(&text);
            assert_eq!(e.field, field, "{e}");
            assert!(e.line.is_some(), "{e}");
            assert!(e.message.contains(message), "{e}");
        }
        let e =
            parse(dir.path(), &format!("{IPPS}ca_file = \"missing.pem\"\n")).expect_err("missing");
        let line = crate::error_chain(&e);
        assert!(
            line.contains(&dir.path().join("missing.pem").display().to_string()),
            "{line}"
        );
        assert!(line.contains("No such file"), "{line}");
    }
}
