//! From the bytes of a `Get-Jobs` answer to priced jobs, as the daemon goes:
//! `printer::listing::read` (framing, then the `ipp` crate per job),
//! `plausible::judge` (charge, nothing, or review), `jobs::finished` (what
//! the ledger records) and, for held queues, `jobs::estimate_job`; for jobs
//! the crate cannot read, `plausible::unreadable`. Each job is judged at
//! three printers: the example's prices, free printing, and a price of
//! `MAX_UNITS` cents an impression with the highest `max_job_impressions`.
//!
//! Checked:
//! - nothing panics;
//! - a charged price is from 0 to `MAX_UNITS` cents and is exactly the
//!   table's prices times the impressions, computed here without overflow;
//! - a charge counts no negative impressions and no more than the printer's
//!   `max_job_impressions`;
//! - an estimate (held jobs) obeys the same bound and product.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;
use tallyd::config::{Config, PrinterConfig};
use tallyd::money::MAX_UNITS;
use tallyd::pricing::Sides;
use tallyd::printer::jobs::{estimate_job, finished, Job, PricedJob};
use tallyd::printer::listing::{self, Record};
use tallyd::printer::plausible::{self, Verdict};

const PRINTERS: &str = r#"
[site]
timezone = "Europe/Lisbon"

[prices.standard]
default_media = "a4"
[prices.standard.media.a4]
mono = { one_sided = 10, two_sided = 8 }
colour = { one_sided = 40, two_sided = 35 }
[prices.standard.media.a3]
mono = { one_sided = 20, two_sided = 16 }
colour = { one_sided = 80, two_sided = 70 }
[prices.standard.media.letter]
mono = { one_sided = 10, two_sided = 8 }
colour = { one_sided = 40, two_sided = 35 }

[prices.free]
default_media = "iso_a4_210x297mm"
[prices.free.media.iso_a4_210x297mm]
mono = { one_sided = 0, two_sided = 0 }
colour = { one_sided = 0, two_sided = 0 }

[prices.dearest]
default_media = "a4"
[prices.dearest.media.a4]
mono = { one_sided = 1000000000, two_sided = 999999999 }
colour = { one_sided = 1000000000, two_sided = 1 }

[[printers]]
id = "lobby"
uri = "ipp://127.0.0.1:8631/ipp/print"
prices = "standard"

[[printers]]
id = "free"
uri = "ipp://127.0.0.1:8632/ipp/print"
mode = "held"
prices = "free"
colour_default = "colour"

[[printers]]
id = "dearest"
uri = "ipp://127.0.0.1:8633/ipp/print"
mode = "held"
prices = "dearest"
page_estimate = 1000000
max_job_impressions = 1000000
"#;

fn printers() -> &'static [PrinterConfig] {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    &CONFIG
        .get_or_init(|| Config::parse(PRINTERS, "fuzz.toml", Path::new("/")).expect("config"))
        .printers
}

/// The price the table gives the priced facts, in `i128` (no overflow).
fn product(cfg: &PrinterConfig, p: &PricedJob) -> i128 {
    let f = &p.facts;
    let prices = cfg
        .prices
        .prices_for(f.media.as_deref())
        .expect("a price table with a default");
    let (mono, colour) = match f.sides {
        Sides::OneSided => (prices.mono.one_sided, prices.colour.one_sided),
        Sides::TwoSided => (prices.mono.two_sided, prices.colour.two_sided),
    };
    i128::from(f.mono_impressions) * i128::from(mono)
        + i128::from(f.colour_impressions) * i128::from(colour)
}

fn check_price(cfg: &PrinterConfig, p: &PricedJob, what: &str) {
    assert!(
        (0..=MAX_UNITS).contains(&p.cents),
        "{what}: absurd price {p:?}"
    );
    assert!(
        p.facts.mono_impressions >= 0 && p.facts.colour_impressions >= 0,
        "{what}: {p:?}"
    );
    assert_eq!(
        i128::from(p.cents),
        product(cfg, p),
        "{what}: price is not the table's"
    );
}

fn check_job(job: &Job) {
    for cfg in printers() {
        let _ = job.key(&cfg.id);
        let _ = job.owner();
        match plausible::judge(cfg, job) {
            Verdict::Charge(p) => {
                check_price(cfg, &p, "charge");
                let impressions = p.facts.impressions().expect("counted impressions");
                assert!(
                    impressions <= cfg.max_job_impressions,
                    "charged {impressions} impressions"
                );
                assert_eq!(finished(&cfg.id, job, &p, 0).cents, p.cents);
            }
            Verdict::Nothing => {}
            Verdict::Review(s) => assert!(!s.reason.is_empty()),
        }
        if let Some(estimate) = estimate_job(cfg, job) {
            check_price(cfg, &estimate, "estimate");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(listing) = listing::read(data) else {
        return;
    };
    for record in &listing.records {
        match record {
            Record::Job(job) => check_job(job),
            Record::Unreadable(u) => {
                let job = u.job.clone().unwrap_or_default();
                let s = plausible::unreadable(&job, &u.error);
                assert!(!s.reason.is_empty());
                if u.job.is_some() {
                    check_job(&job);
                }
            }
        }
    }
});
