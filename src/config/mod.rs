//! The site config (`tallyd.toml`): parsed from a string, validated into a
//! richer type, and every problem reported with file, line and field.

mod alerts;
mod analysis;
mod backup;
mod central;
mod console;
mod credential;
mod grants;
mod http;
mod prices;
mod printers;
mod readers;

pub use alerts::{AlertsConfig, Webhook};
pub use analysis::AnalysisConfig;
pub use backup::BackupConfig;
pub use central::{is_site_id, CentralConfig};
pub use console::{valid_manager_name, ConsoleConfig, Manager};
pub use credential::GrantsAuth;
pub use grants::GrantsConfig;
pub use http::HttpConfig;
pub use printers::{Mode, PrinterConfig, MAX_JOB_IMPRESSIONS_LIMIT};
pub use readers::{Binding, OtherMember, ReaderConfig, MAX_SESSION_MINUTES};

use crate::error::escape_controls;
use crate::money;
use crate::pricing::PriceTable;
use crate::site::{OveragePolicy, PolicyKind, Site};
use chrono_tz::Tz;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;

/// Where a config problem is, and what it is.
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub field: String,
    pub message: String,
    /// The error underneath, when another one said what is wrong (the file
    /// could not be read, JSON did not parse, a price table is not usable);
    /// `message` repeats its text, so the one-line error reads the same with
    /// or without it. A TOML error is not kept: its text is a multi-line
    /// snippet, and `message`, `line` and `field` already say what it says.
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for ConfigError {
    /// One line, whatever the file holds: the field and the message quote
    /// its text (a key with a carriage return in it, a value), so their
    /// control characters are written escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = escape_controls(&self.file);
        let field = escape_controls(&self.field);
        let message = escape_controls(&self.message);
        match self.line {
            Some(line) => write!(f, "{file}:{line}: {field}: {message}"),
            None => write!(f, "{file}: {field}: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The 1-based line holding byte offset `at` of `text`.
pub fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// The dotted name of the field at byte `at` of a TOML document: the key on
/// that line under the nearest table header above it (or the header itself,
/// plus the field a "missing field" message names).
pub fn field_at(text: &str, at: usize, message: &str) -> String {
    let at = at.min(text.len());
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let named = message
        .split('`')
        .nth(1)
        .filter(|_| message.contains("field"));
    if let Some(table) = table_header(line) {
        return match named {
            Some(f) => format!("{table}.{f}"),
            None => table,
        };
    }
    let above: Vec<&str> = text[..line_start].lines().collect();
    // The key is on this line, or (inside a multi-line array or inline
    // table) on the nearest line above that assigns one.
    let key = std::iter::once(line)
        .chain(
            above
                .iter()
                .rev()
                .copied()
                .take_while(|l| table_header(l).is_none()),
        )
        .find_map(key_of);
    let table = above.iter().rev().find_map(|l| table_header(l));
    let key = key.or(named).unwrap_or("(syntax)");
    match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    }
}

/// The key a TOML line assigns (`amount = 5` → `amount`), if any.
fn key_of(line: &str) -> Option<&str> {
    let code = strip_comment(line);
    let (key, _) = code.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && !key.contains(['"', '[', '{', ','])).then_some(key)
}

/// A line without its `# comment` (a `#` inside quotes is kept).
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' | '\'' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The table a header line opens (`[[member.plan]] # x` → `member.plan`).
fn table_header(line: &str) -> Option<String> {
    let l = strip_comment(line).trim();
    let inner = l.strip_prefix("[[").and_then(|r| r.strip_suffix("]]"));
    let inner = inner.or_else(|| l.strip_prefix('[').and_then(|r| r.strip_suffix(']')));
    inner.map(|h| h.trim().to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    site: RawSite,
    #[serde(default)]
    grants: Option<grants::RawGrants>,
    #[serde(default)]
    prices: BTreeMap<String, Spanned<PriceTable>>,
    #[serde(default)]
    printers: Vec<printers::RawPrinter>,
    #[serde(default)]
    readers: Vec<readers::RawReader>,
    #[serde(default)]
    analysis: Option<analysis::RawAnalysis>,
    #[serde(default)]
    backup: Option<backup::RawBackup>,
    #[serde(default)]
    alerts: Option<alerts::RawAlerts>,
    http: Option<http::RawHttp>,
    #[serde(default)]
    console: Option<console::RawConsole>,
    central: Option<central::RawCentral>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    #[serde(default)]
    name: Option<String>,
    timezone: Spanned<String>,
    #[serde(default = "default_symbol")]
    currency_symbol: String,
    #[serde(default)]
    ledger: Option<Spanned<String>>,
    #[serde(default)]
    overage_policy: Option<Spanned<String>>,
    #[serde(default)]
    overage_cap_cents: Option<Spanned<i64>>,
    #[serde(default)]
    overage_cap_minutes: Option<Spanned<i64>>,
}

/// Parses `90s`, `15m`, `2h`, `7d` into a duration.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => return Some(std::time::Duration::from_millis(n)),
        "s" => n,
        "m" | "min" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(secs))
}

/// How a validator builds an error at a span of the file.
pub(crate) type ErrAt<'a> =
    dyn Fn(Option<std::ops::Range<usize>>, &str, String) -> ConfigError + 'a;

/// The longest duration a config field may give: 1000 years, in seconds.
/// The daemon compares durations with `i64` timestamps and multiplies a
/// poll interval for its backoff. Found while writing the site_config fuzz
/// target, whose checks fail on both: `hold_timeout = "9999999999999999999s"`
/// wrapped negative (every held job cancelled at once) and a `poll_interval`
/// of 10^16 s panicked the poller's backoff.
pub const MAX_DURATION_SECS: u64 = 1000 * 365 * 24 * 3600;

/// An optional, non-zero duration field (`30s`, `15m`, `2h`) of at most
/// [`MAX_DURATION_SECS`], else `default`.
fn duration_field(
    value: &Option<Spanned<String>>,
    field: &str,
    default: std::time::Duration,
    err: &ErrAt<'_>,
) -> Result<std::time::Duration, ConfigError> {
    let Some(d) = value else {
        return Ok(default);
    };
    let at = |message: String| err(Some(d.span()), field, message);
    let text = d.get_ref();
    let parsed = parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| at(format!("`{text}` is not a duration like 30s, 15m or 2h")))?;
    if parsed.as_secs() > MAX_DURATION_SECS {
        return Err(at(format!("`{text}` is longer than 1000 years")));
    }
    Ok(parsed)
}

/// A `ca_file` field (relative to the config's folder), read and checked
/// now: an error names the field, its line and the file.
fn ca_file(
    path: &Spanned<String>,
    base: &Path,
    field: &str,
    err: &ErrAt<'_>,
) -> Result<crate::tls::CaFile, ConfigError> {
    let file = base.join(path.get_ref().trim());
    crate::tls::CaFile::load(&file).map_err(|e| {
        let mut error = err(Some(path.span()), field, crate::error_chain(&e));
        error.source = Some(Arc::new(e));
        error
    })
}

fn default_symbol() -> String {
    "$".into()
}

/// The validated site config.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub site_name: String,
    pub tz: Tz,
    pub currency_symbol: String,
    pub ledger: PathBuf,
    pub default_policy: OveragePolicy,
    pub prices: BTreeMap<String, PriceTable>,
    pub grants: Option<GrantsConfig>,
    pub printers: Vec<PrinterConfig>,
    pub readers: Vec<ReaderConfig>,
    pub analysis: AnalysisConfig,
    pub backup: BackupConfig,
    /// `[alerts]`, off unless configured.
    pub alerts: Option<AlertsConfig>,
    /// The HTTP listener, when `[http]` is given.
    pub http: Option<HttpConfig>,
    pub console: ConsoleConfig,
    /// `[central]`: this site ships its outbox to a chain's centre; off
    /// (single-site) unless configured.
    pub central: Option<CentralConfig>,
}

/// Where the ledger lives when the config does not say.
pub const DEFAULT_LEDGER: &str = "/var/lib/tallyd/ledger.db";

impl Config {
    /// Why a manager's grant is refused here, or `None`: at a chain site
    /// whose lots the centre issues (`[central] issue = "central"`), a
    /// local grant would be credit the chain's ledger of record does not
    /// know, so credit is granted in the chain's grants file instead.
    pub fn local_grant_refused(&self) -> Option<&'static str> {
        let central = self.central.as_ref()?;
        (central.issue == crate::site::Issue::Central).then_some(
            "this site spends credit the centre issues ([central] issue = \"central\"): \
             grant it in the chain's grants file (an account grant); nothing was granted",
        )
    }

    /// The settings the ledger needs.
    pub fn site(&self) -> Site {
        Site {
            default_policy: self.default_policy,
            tz: self.tz,
        }
    }

    /// Reads and validates a config file. Relative paths in it are relative
    /// to the file's folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            line: None,
            field: "(file)".into(),
            message: e.to_string(),
            source: Some(Arc::new(e)),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, &path.display().to_string(), base)
    }

    /// Parses and validates config text; `file` names it in errors.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<Config, ConfigError> {
        let err =
            |span: Option<std::ops::Range<usize>>, field: &str, message: String| ConfigError {
                file: file.to_string(),
                line: span.map(|s| line_of(text, s.start)),
                field: field.to_string(),
                message,
                source: None,
            };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let field = e
                .span()
                .map(|span| field_at(text, span.start, e.message()))
                .unwrap_or_else(|| "(syntax)".into());
            err(e.span(), &field, e.message().trim().to_string())
        })?;
        let s = raw.site;
        let tz = site_time_zone(&s.timezone, &err)?;
        let default_policy = site_policy(&s, &err)?;
        let ledger = site_ledger(s.ledger.as_ref(), base, &err)?;
        let prices = prices::price_tables(raw.prices, text, &err)?;
        let grants = match raw.grants {
            None => None,
            Some(g) => Some(grants::section(&g, base, &err)?),
        };
        let printers = printers::validate(raw.printers, &prices, base, &err)?;
        let readers = readers::validate(raw.readers, &printers, base, &err)?;
        let analysis = analysis::section(raw.analysis, &err)?;
        let backup = backup::section(raw.backup, base, &err)?;
        let alerts = match &raw.alerts {
            None => None,
            Some(a) => Some(alerts::section(a, base, &err)?),
        };
        let http = http::section(raw.http, base, &err)?;
        let console = console::section(raw.console, &err)?;
        let central = match &raw.central {
            None => None,
            Some(c) => Some(central::section(c, base, &err)?),
        };
        Ok(Config {
            console,
            alerts,
            central,
            http,
            analysis,
            backup,
            readers,
            grants,
            printers,
            site_name: s.name.unwrap_or_else(|| "tallyd".into()),
            tz,
            currency_symbol: s.currency_symbol,
            ledger,
            default_policy,
            prices,
        })
    }
}

/// `site.timezone`: an IANA zone name.
fn site_time_zone(name: &Spanned<String>, err: &ErrAt<'_>) -> Result<Tz, ConfigError> {
    name.get_ref().parse().map_err(|_| {
        err(
            Some(name.span()),
            "site.timezone",
            format!(
                "unknown time zone `{}` (use an IANA name like Europe/Lisbon)",
                name.get_ref()
            ),
        )
    })
}

/// The site's default overage policy: the kind (credits-then-invoice when
/// unset) and optional monthly caps, each from 0 to
/// [`MAX_UNITS`](money::MAX_UNITS).
fn site_policy(s: &RawSite, err: &ErrAt<'_>) -> Result<OveragePolicy, ConfigError> {
    let kind = match &s.overage_policy {
        None => PolicyKind::CreditsThenInvoice,
        Some(p) => PolicyKind::parse(p.get_ref()).ok_or_else(|| {
            err(
                Some(p.span()),
                "site.overage_policy",
                format!(
                    "`{}` is not `credits-only` or `credits-then-invoice`",
                    p.get_ref()
                ),
            )
        })?,
    };
    let cap = |v: &Option<Spanned<i64>>, field: &str| -> Result<Option<i64>, ConfigError> {
        match v {
            Some(c) => money::non_negative(*c.get_ref())
                .map(Some)
                .map_err(|e| err(Some(c.span()), field, e.to_string())),
            None => Ok(None),
        }
    };
    Ok(OveragePolicy {
        kind,
        cap_cents: cap(&s.overage_cap_cents, "site.overage_cap_cents")?,
        cap_minutes: cap(&s.overage_cap_minutes, "site.overage_cap_minutes")?,
    })
}

/// `site.ledger`, relative to the config's folder; [`DEFAULT_LEDGER`] when
/// unset.
fn site_ledger(
    path: Option<&Spanned<String>>,
    base: &Path,
    err: &ErrAt<'_>,
) -> Result<PathBuf, ConfigError> {
    match path {
        Some(p) if p.get_ref().trim().is_empty() => Err(err(
            Some(p.span()),
            "site.ledger",
            "must not be empty".into(),
        )),
        Some(p) => Ok(base.join(p.get_ref())),
        None => Ok(PathBuf::from(DEFAULT_LEDGER)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "test.toml", Path::new("/etc/tallyd"))
    }

    #[test]
    fn a_minimal_config_uses_defaults() {
        let c = parse("[site]\ntimezone = \"Europe/Lisbon\"\n").expect("valid");
        assert_eq!(c.ledger, PathBuf::from(DEFAULT_LEDGER));
        assert_eq!(c.currency_symbol, "$");
        assert_eq!(c.default_policy.kind, PolicyKind::CreditsThenInvoice);
    }

    #[test]
    fn relative_ledger_paths_are_beside_the_config() {
        let c = parse("[site]\ntimezone = \"UTC\"\nledger = \"ledger.db\"\n").expect("valid");
        assert_eq!(c.ledger, PathBuf::from("/etc/tallyd/ledger.db"));
    }

    /// Found by the `grants_file` fuzz target (`fixtures/fuzz/grants_file/`):
    /// a bare carriage return inside a key made the refusal two lines.
    #[test]
    fn a_refusal_quoting_a_control_character_is_one_line() {
        let e = parse("[site]\ntimezone = \"UTC\"\nnam\re = 1\n").expect_err("bad key");
        let line = e.to_string();
        assert!(!line.contains(['\r', '\n']), "{line:?}");
        assert!(line.starts_with("test.toml:3: site.nam\\re: "), "{line:?}");
    }

    #[test]
    fn a_duration_longer_than_1000_years_is_refused() {
        let printer = |field: &str, value: &str| {
            format!(
                "[site]\ntimezone = \"UTC\"\n[prices.s]\ndefault_media = \"a4\"\n\
                 [prices.s.media.a4]\nmono = {{ one_sided = 1, two_sided = 1 }}\n\
                 colour = {{ one_sided = 1, two_sided = 1 }}\n[[printers]]\nid = \"p\"\n\
                 uri = \"ipp://h/x\"\nprices = \"s\"\n{field} = \"{value}\"\n"
            )
        };
        let years = format!("{MAX_DURATION_SECS}s");
        let c = parse(&printer("hold_timeout", &years)).expect("1000 years");
        assert_eq!(c.printers[0].hold_timeout.as_secs(), MAX_DURATION_SECS);
        for (field, value) in [
            ("hold_timeout", "9999999999999999999s"),
            ("poll_interval", "10000000000000000s"),
            ("timeout", &format!("{}s", MAX_DURATION_SECS + 1)),
        ] {
            let e = parse(&printer(field, value)).expect_err(value);
            assert_eq!(e.field, format!("printers[0].{field}"));
            assert_eq!(e.message, format!("`{value}` is longer than 1000 years"));
        }
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = parse("[site]\n\ntimezone = \"Mars/Olympus\"\n").expect_err("bad zone");
        assert_eq!(e.to_string().split(": ").next(), Some("test.toml:3"));
        assert_eq!(e.field, "site.timezone");

        let e = parse("[site]\ntimezone = \"UTC\"\noverage_policy = \"yolo\"\n")
            .expect_err("bad policy");
        assert_eq!((e.line, e.field.as_str()), (Some(3), "site.overage_policy"));

        let e = parse("[site]\ntimezone = \"UTC\"\ncolour = 1\n").expect_err("unknown field");
        assert_eq!((e.line, e.field.as_str()), (Some(3), "site.colour"));

        let e = parse("[site]\ntimezone = \"UTC\"\noverage_cap_cents = \"lots\"\n")
            .expect_err("wrong type");
        assert_eq!(
            (e.line, e.field.as_str()),
            (Some(3), "site.overage_cap_cents")
        );

        let e =
            parse("[site]\ntimezone = \"UTC\"\noverage_cap_cents = -1\n").expect_err("negative");
        assert_eq!(e.field, "site.overage_cap_cents");

        let e = parse("[site\n").expect_err("syntax");
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn a_file_that_cannot_be_read_keeps_its_io_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tallyd.toml");
        let e = Config::load(&path).expect_err("no such file");
        let io = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .expect("the io error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert_eq!((e.line, e.field.as_str()), (None, "(file)"));
        assert_eq!(crate::error_chain(&e), e.to_string(), "said once");
    }

    #[test]
    fn price_tables_are_validated() {
        let text = "[site]\ntimezone = \"UTC\"\n[prices.std]\ndefault_media = \"a5\"\n[prices.std.media.a4]\nmono = { one_sided = 10, two_sided = 8 }\ncolour = { one_sided = 40, two_sided = 35 }\n";
        let e = parse(text).expect_err("default not listed");
        assert_eq!(e.field, "prices.std");
        assert!(e.message.contains("a5"), "{e}");
    }
}
