//! Issue 12, point 3: "Nothing forged reaches a log or a table." A printer
//! reports a job's print user (`job-originating-user-name`) as
//! `mallory\n<0>forged`: were it printed as sent, the newline would start a
//! second log line, and `<0>` would make journald read it as an emergency.
//! `tallyd run` in each `--log-format` writes one line per event, and the
//! review table keeps the job on one row. (The `user` field is written
//! quoted, escaped by its Debug form, before `logging`'s own escape of the
//! whole line; `logging::tests` pins that escape for `%` fields too.)

use crate::support::daemon::{lines_with, Daemon, PrinterSpec, Site};
use crate::support::recorded::{fixture, with_attr, Recorded, Script};

use ipp::prelude::*;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);
const FORGED_USER: &str = "mallory\n<0>forged";
/// The jobs of `fixtures/ipp/eve-completed.ipp`: bob's 3 pages, carol's 12.
const BOB_THREE: i32 = 2;
const CAROL_TWELVE: i32 = 3;
const UNATTRIBUTED: &str = "unattributed job";
const REVIEW: &str = "job set aside for review";

/// A printer listing bob's job as `mallory\n<0>forged`'s (no member prints
/// as mallory: unattributed) and carol's as hers too, with a negative count
/// (set aside for review, where the table shows the print user).
fn forged_printer() -> Recorded {
    let forged = || IppValue::new_name_without_language(FORGED_USER).expect("a name");
    let answer = with_attr(
        fixture("eve-completed.ipp"),
        BOB_THREE,
        "job-originating-user-name",
        forged(),
    );
    let answer = with_attr(answer, CAROL_TWELVE, "job-originating-user-name", forged());
    let answer = with_attr(
        answer,
        CAROL_TWELVE,
        "job-impressions-completed",
        IppValue::Integer(-6),
    );
    Recorded::start(Script::finished(&answer))
}

/// `tallyd run --log-format FORMAT` against the forged printer, once it has
/// logged both jobs and polled three more times (a job is logged once).
fn run_as(format: &str) -> (Recorded, Site, Daemon) {
    let server = forged_printer();
    let site = Site::new(&[PrinterSpec::direct("forged", &server.uri(), "300ms")]);
    let daemon = site.start_as(format);
    for needle in [UNATTRIBUTED, REVIEW] {
        daemon.wait_log(needle, LIMIT);
    }
    let start = Instant::now();
    let before = server.get_jobs_answered();
    while server.get_jobs_answered() < before + 3 {
        assert!(start.elapsed() < LIMIT, "the printer is not polled");
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, site, daemon)
}

/// No line of `text` begins with the forged part, in any spelling.
fn nothing_starts_forged(text: &str, what: &str) {
    for line in text.lines() {
        let bare = line.trim_start();
        assert!(
            !bare.starts_with("<0>") && !bare.starts_with("forged"),
            "{what}: a line begins with the forged text: {line:?}\n{text}"
        );
    }
}

#[test]
fn a_print_user_with_a_newline_is_one_log_line_per_event_in_every_format() {
    for format in ["text", "journald", "json"] {
        let (_server, _site, daemon) = run_as(format);
        let log = daemon.log();
        nothing_starts_forged(&log, format);
        for event in [UNATTRIBUTED, REVIEW] {
            let lines = lines_with(&log, &[event]);
            assert_eq!(lines.len(), 1, "{format}: one `{event}` line:\n{log}");
            assert!(lines[0].contains("mallory"), "{format}: {}", lines[0]);
        }
        match format {
            "json" => {
                // Every line is one JSON object, and the user is kept whole.
                for line in log.lines().filter(|l| !l.is_empty()) {
                    let v: serde_json::Value = serde_json::from_str(line)
                        .unwrap_or_else(|e| panic!("json: not one JSON object ({e}): {line:?}"));
                    assert!(v.is_object(), "{line}");
                }
                let warn = lines_with(&log, &[UNATTRIBUTED])[0];
                assert!(warn.contains(r#""mallory\n<0>forged""#), "{warn}");
            }
            _ => {
                let warn = lines_with(&log, &[UNATTRIBUTED])[0];
                assert!(warn.contains(r"mallory\n<0>forged"), "{format}: {warn}");
                if format == "journald" {
                    assert!(warn.starts_with("<4>"), "{warn}");
                }
            }
        }
    }
}

#[test]
fn a_print_user_with_a_newline_stays_on_one_row_of_the_review_table() {
    let (_server, site, _daemon) = run_as("journald");
    let table = site.cli(&["review"]);
    nothing_starts_forged(&table, "tallyd review");
    // A header and the one job in review.
    assert_eq!(table.lines().count(), 2, "{table}");
    let row = table.lines().nth(1).unwrap_or_default();
    assert!(row.contains(r"mallory\n<0>forged"), "{row}");
    assert!(row.contains("a count is negative"), "{row}");
    // CSV quotes the cell (RFC 4180): a CSV reader sees one record, with the
    // name as the printer sent it.
    let csv_text = site.cli(&["--csv", "review"]);
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let user_col = reader
        .headers()
        .expect("a CSV header")
        .iter()
        .position(|h| h == "user")
        .expect("a user column");
    let records: Vec<csv::StringRecord> = reader
        .records()
        .collect::<Result<_, _>>()
        .expect("CSV that parses");
    assert_eq!(records.len(), 1, "{csv_text}");
    assert_eq!(&records[0][user_col], FORGED_USER, "{csv_text}");
    // JSON keeps the name as the printer sent it.
    let listed: serde_json::Value =
        serde_json::from_str(&site.cli(&["--json", "review"])).expect("review json");
    assert_eq!(listed[0]["print_user"], FORGED_USER, "{listed}");
}
