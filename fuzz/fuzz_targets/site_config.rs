//! The site config (`tallyd::config::Config::parse`): arbitrary text →
//! parse → validate, relative paths resolved in an empty folder.
//!
//! Checked:
//! - nothing panics;
//! - a refusal is one line;
//! - an accepted config holds only usable values: price tables that pass
//!   their own check (every price from 0 to `MAX_UNITS`), overage caps from
//!   0 to `MAX_UNITS`, counts within their limits, room lengths within the
//!   bound, and durations the daemon can use as they are (non-zero, whole
//!   seconds that fit the ledger's `i64` timestamps, a poll backoff that
//!   can be computed).

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;
use tallyd::config::{Config, MAX_JOB_IMPRESSIONS_LIMIT, MAX_SESSION_MINUTES};
use tallyd::money::MAX_UNITS;
use tallyd::printer::poller::backoff;

/// An empty folder: the config's relative paths point into it.
fn base() -> &'static PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("tallyd-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the empty base folder");
        dir
    })
}

fn usable(what: &str, d: Duration) {
    assert!(!d.is_zero(), "{what} is zero");
    assert!(
        i64::try_from(d.as_secs()).is_ok(),
        "{what} {d:?} overflows i64 seconds"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match Config::parse(text, "fuzz.toml", base()) {
        Ok(config) => config,
        Err(e) => {
            let line = e.to_string();
            assert!(
                !line.contains(['\n', '\r']),
                "a refusal of two lines: {line:?}"
            );
            return;
        }
    };
    let caps = [
        config.default_policy.cap_cents,
        config.default_policy.cap_minutes,
    ];
    for cap in caps.into_iter().flatten() {
        assert!((0..=MAX_UNITS).contains(&cap), "cap {cap}");
    }
    for table in config.prices.values() {
        table
            .validate()
            .expect("an accepted price table passes its check");
    }
    usable("backup.every", config.backup.every);
    usable("analysis.timeout", config.analysis.timeout);
    if let Some(g) = &config.grants {
        usable("grants.interval", g.interval);
        usable("grants.timeout", g.timeout);
    }
    for p in &config.printers {
        p.prices
            .validate()
            .expect("a printer's price table passes its check");
        let limits = 1..=MAX_JOB_IMPRESSIONS_LIMIT;
        assert!(
            limits.contains(&p.page_estimate),
            "page_estimate {}",
            p.page_estimate
        );
        assert!(limits.contains(&p.max_job_impressions));
        usable("poll_interval", p.poll_interval);
        usable("timeout", p.timeout);
        usable("hold_timeout", p.hold_timeout);
        for failures in [0, 1, 5, 16, 40] {
            backoff(p.poll_interval, failures, 1000);
        }
    }
    for r in &config.readers {
        usable("debounce", r.debounce);
        assert!(
            r.increment.as_secs() % 60 == 0,
            "increment {:?}",
            r.increment
        );
        for d in [r.increment, r.max_session] {
            usable("room length", d);
            assert!(d.as_secs() / 60 <= MAX_SESSION_MINUTES, "room length {d:?}");
        }
    }
});
