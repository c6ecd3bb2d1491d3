//! `[[printers]]`: the printers and CUPS queues the daemon polls.

use super::{duration_field, ConfigError, ErrAt};
use crate::pricing::PriceTable;
use serde::Deserialize;
use std::collections::BTreeMap;
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

pub(super) fn validate(
    raw: Vec<RawPrinter>,
    prices: &BTreeMap<String, PriceTable>,
    err: &ErrAt<'_>,
) -> Result<Vec<PrinterConfig>, ConfigError> {
    let mut out: Vec<PrinterConfig> = Vec::new();
    let mut targets = Vec::new();
    for (i, mut p) in raw.into_iter().enumerate() {
        targets.push(p.release_to.take());
        let printer = printer(i, p, &out, prices, err)?;
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
    Ok(PrinterConfig {
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
