//! `[backup]`: the daemon's scheduled backups of the ledger. On unless
//! `enabled = false`; every 24 hours at 03:00 in the site's time zone, the
//! newest 14 kept, in `backups/` beside the ledger unless `dir` says.

use super::{duration_field, ConfigError, ErrAt};
use chrono::NaiveTime;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackup {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    dir: Option<Spanned<String>>,
    #[serde(default)]
    every: Option<Spanned<String>>,
    #[serde(default)]
    keep: Option<Spanned<i64>>,
    #[serde(default)]
    at: Option<Spanned<String>>,
}

/// The scheduled backups' settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupConfig {
    pub enabled: bool,
    /// Where backups go; `None`: `backups/` beside the ledger.
    pub dir: Option<PathBuf>,
    /// From one scheduled backup to the next.
    pub every: Duration,
    /// How many backups are kept; older ones are removed after a new one
    /// passed its check.
    pub keep: usize,
    /// The local time (site time zone) the schedule is anchored at.
    pub at: NaiveTime,
}

/// The most backups `keep` may ask for.
pub const MAX_KEEP: i64 = 10_000;

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            enabled: true,
            dir: None,
            every: Duration::from_secs(24 * 3600),
            keep: 14,
            at: NaiveTime::from_hms_opt(3, 0, 0).unwrap_or(NaiveTime::MIN),
        }
    }
}

pub(super) fn section(
    raw: Option<RawBackup>,
    base: &Path,
    err: &ErrAt<'_>,
) -> Result<BackupConfig, ConfigError> {
    let raw = raw.unwrap_or_default();
    let d = BackupConfig::default();
    let every = duration_field(&raw.every, "backup.every", d.every, err)?;
    if every < Duration::from_secs(60) {
        let span = raw.every.as_ref().map(|e| e.span());
        return Err(err(span, "backup.every", "must be at least 1m".into()));
    }
    let keep = match &raw.keep {
        None => d.keep,
        Some(k) if (1..=MAX_KEEP).contains(k.get_ref()) => *k.get_ref() as usize,
        Some(k) => {
            return Err(err(
                Some(k.span()),
                "backup.keep",
                format!("must be from 1 to {MAX_KEEP}"),
            ))
        }
    };
    let at = match &raw.at {
        None => d.at,
        Some(a) => NaiveTime::parse_from_str(a.get_ref().trim(), "%H:%M").map_err(|_| {
            err(
                Some(a.span()),
                "backup.at",
                format!("`{}` is not a time of day like 03:00", a.get_ref()),
            )
        })?,
    };
    let dir = match &raw.dir {
        Some(p) if p.get_ref().trim().is_empty() => {
            return Err(err(
                Some(p.span()),
                "backup.dir",
                "must not be empty".into(),
            ))
        }
        Some(p) => Some(base.join(p.get_ref())),
        None => None,
    };
    Ok(BackupConfig {
        enabled: raw.enabled.unwrap_or(true),
        dir,
        every,
        keep,
        at,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    fn parse(extra: &str) -> Result<Config, crate::config::ConfigError> {
        let text = format!("[site]\ntimezone = \"UTC\"\n{extra}");
        Config::parse(&text, "test.toml", Path::new("/etc/tallyd"))
    }

    #[test]
    fn backups_are_on_by_default_daily_at_three_keeping_fourteen() {
        let b = parse("").expect("valid").backup;
        assert!(b.enabled);
        assert_eq!(b.dir, None);
        assert_eq!(b.every.as_secs(), 86_400);
        assert_eq!(b.keep, 14);
        assert_eq!(b.at.to_string(), "03:00:00");
        let b = parse("[backup]\ndir = \"bk\"\nevery = \"6h\"\nkeep = 3\nat = \"22:30\"\n")
            .expect("valid")
            .backup;
        assert_eq!(b.dir.as_deref(), Some(Path::new("/etc/tallyd/bk")));
        assert_eq!((b.every.as_secs(), b.keep), (6 * 3600, 3));
        assert_eq!(b.at.to_string(), "22:30:00");
        assert!(!parse("[backup]\nenabled = false\n").unwrap().backup.enabled);
    }

    #[test]
    fn bad_settings_name_their_field_and_line() {
        for (text, field) in [
            ("[backup]\nkeep = 0\n", "backup.keep"),
            ("[backup]\nevery = \"soon\"\n", "backup.every"),
            ("[backup]\nevery = \"30s\"\n", "backup.every"),
            ("[backup]\nat = \"3am\"\n", "backup.at"),
            ("[backup]\nat = \"25:00\"\n", "backup.at"),
            ("[backup]\ndir = \"\"\n", "backup.dir"),
        ] {
            let e = parse(text).expect_err(text);
            assert_eq!((e.field.as_str(), e.line), (field, Some(4)), "{text}: {e}");
        }
    }
}
