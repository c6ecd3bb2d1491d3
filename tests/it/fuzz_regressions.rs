//! Inputs the fuzz targets of `fuzz/` found (README, "Fuzzing"), replayed on
//! stable in the normal suite: each file of `fixtures/fuzz/<target>/` goes
//! through the same entry point as in its target and must hold the property
//! the target found broken. A target with no file yet found nothing.

use std::path::{Path, PathBuf};
use tallyd::config::Config;

/// Every file the fuzzers left for `target`, with its bytes.
fn found(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/fuzz")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.expect("list fixtures/fuzz").path())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read a fuzz fixture");
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

/// A refusal of a file is one line: a control character in the file (a
/// carriage return in a key) cannot forge a second log line.
fn one_line(file: &Path, refusal: String) {
    assert!(
        !refusal.contains(['\n', '\r']),
        "{}: a refusal of two lines: {refusal:?}",
        file.display()
    );
}

#[test]
fn grants_file_inputs_are_refused_in_one_line() {
    for (file, bytes) in found("grants_file") {
        let text = String::from_utf8(bytes).expect("a text fixture");
        if let Err(e) = tallyd::grants::parse("fuzz.toml", &text) {
            one_line(&file, e.to_string());
        }
    }
}

/// A config is refused in one line, or its durations are ones the daemon
/// can use: a hold timeout in `i64` seconds, a poll backoff that does not
/// overflow.
#[test]
fn site_config_inputs_are_refused_in_one_line_or_usable() {
    let empty = tempfile::tempdir().expect("tempdir");
    for (file, bytes) in found("site_config") {
        let text = String::from_utf8(bytes).expect("a text fixture");
        let config = match Config::parse(&text, "fuzz.toml", empty.path()) {
            Ok(config) => config,
            Err(e) => {
                one_line(&file, e.to_string());
                continue;
            }
        };
        for p in &config.printers {
            assert!(i64::try_from(p.hold_timeout.as_secs()).is_ok());
            tallyd::printer::poller::backoff(p.poll_interval, 40, 1000);
        }
    }
}

/// The bytes of a `Get-Jobs` answer never panic the reader (nor, through
/// it, the poller) and never price a job above the bound on amounts.
#[test]
fn ipp_jobs_inputs_are_read_and_priced_within_the_bound() {
    use tallyd::printer::listing::{self, Record};
    use tallyd::printer::plausible::{self, Verdict};
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tallyd.toml");
    let config = Config::load(&site).expect("the example config");
    for (file, bytes) in found("ipp_jobs") {
        let Ok(read) = listing::read(&bytes) else {
            continue;
        };
        for record in read.records {
            let job = match record {
                Record::Job(job) => job,
                Record::Unreadable(u) => u.job.unwrap_or_default(),
            };
            for printer in &config.printers {
                if let Verdict::Charge(p) = plausible::judge(printer, &job) {
                    assert!(
                        (0..=tallyd::money::MAX_UNITS).contains(&p.cents),
                        "{}: {p:?}",
                        file.display()
                    );
                }
            }
        }
    }
}
