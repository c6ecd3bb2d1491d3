//! The review queue end to end: `tallyd run` against small IPP servers
//! ([`Recorded`]) that serve a real recorded `Get-Jobs` answer (an
//! ippeveprinter's, or a private cupsd's held queue) with one attribute
//! changed, and the manager's `tallyd review` commands on what it set aside.
//!
//! The issue this pins (issue 11): "A printer that reported
//! `job-impressions-completed = 2147483647` on a 6-page job was charged
//! $171,798,691.76, recorded as the member's overage." Now that job goes to
//! review, and the healthy jobs beside it are charged as ever.

use crate::support::daemon::{lines_with, Daemon, PrinterSpec, Site};
use crate::support::pdf::write_pdf;
use crate::support::peers::Peers;
use crate::support::pty::{rdm6300, Pty};
use crate::support::recorded::{
    self, fixture, fixture_path, job_attr, with_attr, Recorded, Script,
};

use ipp::prelude::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tallyd::printer::requests::Which;

const LIMIT: Duration = Duration::from_secs(30);

/// The jobs of `fixtures/ipp/eve-completed.ipp` (and of the cupsd ones):
/// alice's 6-page document two-sided (6 impressions, 48c at 8c), bob's 3
/// pages (30c) and carol's 12 pages (120c), all monochrome.
const ALICE_SIX: i32 = 1;
const ALICE: &str = "14008EC793";
const BOB: &str = "0A1B2C3D4E";
const CAROL_TWELVE: i32 = 3;
const WARN: &str =
    "job set aside for review: its counts make no sense; nothing charged (see `tallyd review`)";

/// One printer whose recorded answer has one attribute of one job changed.
struct Bad {
    printer: &'static str,
    job: i32,
    attr: &'static str,
    value: IppValue,
    reason: &'static str,
}

fn int(n: i32) -> IppValue {
    IppValue::Integer(n)
}

/// A PWG 5100.7 impressions collection.
fn impressions_col(members: &[(&str, i32)]) -> IppValue {
    let map: BTreeMap<ipp::value::IppName, IppValue> = members
        .iter()
        .map(|(n, v)| {
            (
                ipp::value::IppName::new(*n).expect("a member name"),
                int(*v),
            )
        })
        .collect();
    IppValue::Collection(map)
}

/// The five ways a printer's counts went wrong in issue 11, one printer each.
fn bad_printers() -> Vec<Bad> {
    vec![
        Bad {
            printer: "huge",
            job: ALICE_SIX,
            attr: "job-impressions-completed",
            value: int(i32::MAX),
            reason: "2147483647 impressions, over this printer's max_job_impressions of 2000",
        },
        Bad {
            printer: "negative",
            job: ALICE_SIX,
            attr: "job-impressions-completed",
            value: int(-6),
            reason: "a count is negative",
        },
        Bad {
            printer: "text",
            job: ALICE_SIX,
            attr: "job-impressions-completed",
            value: IppValue::new_text_without_language("6").expect("text"),
            reason: "`job-impressions-completed` is not an integer",
        },
        Bad {
            printer: "zero",
            job: CAROL_TWELVE,
            attr: "job-impressions-completed",
            value: int(0),
            reason: "completed with nothing printed, but its document has 12 impressions",
        },
        Bad {
            printer: "col",
            job: ALICE_SIX,
            attr: "job-impressions-completed-col",
            value: impressions_col(&[("monochrome", 9), ("full-color", -3)]),
            reason: "a count is negative",
        },
    ]
}

/// The key a job of the recorded answer `fixture_name` is charged (or set
/// aside) under at `printer`.
fn key_in(fixture_name: &str, printer: &str, job: i32) -> String {
    let recorded = fixture(fixture_name);
    match job_attr(&recorded, job, "job-uuid") {
        Some(IppValue::Uri(uuid)) => format!("print:{printer}:{uuid}"),
        other => panic!("no job-uuid for job {job}: {other:?}"),
    }
}

/// The key of a job of `eve-completed.ipp` at `printer`.
fn key(printer: &str, job: i32) -> String {
    key_in("eve-completed.ipp", printer, job)
}

/// Each bad printer serving its answer, a site with all of them, and
/// `tallyd run` once every healthy job is charged and every bad one set aside.
fn site_with_bad_printers() -> (Vec<(Bad, Recorded)>, Site, Daemon) {
    let printers: Vec<(Bad, Recorded)> = bad_printers()
        .into_iter()
        .map(|bad| {
            let answer = with_attr(
                fixture("eve-completed.ipp"),
                bad.job,
                bad.attr,
                bad.value.clone(),
            );
            let server = Recorded::start(Script::finished(&answer));
            (bad, server)
        })
        .collect();
    let specs: Vec<PrinterSpec> = printers
        .iter()
        .map(|(bad, server)| PrinterSpec::direct(bad.printer, &server.uri(), "300ms"))
        .collect();
    let site = Site::new(&specs);
    let daemon = site.start();
    daemon.wait_ready();
    for (bad, _) in &printers {
        site.wait_usages(bad.printer, 2, LIMIT);
        wait_lines(&daemon, &[WARN, &format!("printer={}", bad.printer)], 1);
    }
    (printers, site, daemon)
}

/// Waits until this run's log has `n` lines with all of `parts`.
fn wait_lines(daemon: &Daemon, parts: &[&str], n: usize) {
    let start = Instant::now();
    while lines_with(&daemon.log(), parts).len() < n {
        assert!(
            start.elapsed() < LIMIT,
            "{n} lines with {parts:?} expected:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until every printer has answered `more` further `Get-Jobs`.
fn wait_polls(printers: &[(Bad, Recorded)], more: usize) {
    let start = Instant::now();
    let before: Vec<usize> = printers
        .iter()
        .map(|(_, s)| s.get_jobs_answered())
        .collect();
    while printers
        .iter()
        .zip(&before)
        .any(|((_, s), b)| s.get_jobs_answered() < b + more)
    {
        assert!(start.elapsed() < LIMIT, "the printers are not polled");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn overage_cents(site: &Site, member: &str) -> i64 {
    let out = site.cli(&["--json", "balance", member]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("balance json");
    v[0]["overage_cents"]
        .as_i64()
        .unwrap_or_else(|| panic!("{out}"))
}

#[test]
fn recorded_answers_decode_and_re_encode_byte_for_byte_so_a_test_changes_only_what_it_says() {
    for name in ["eve-completed.ipp", "cupsd-completed.ipp", "cupsd-held.ipp"] {
        let bytes = std::fs::read(fixture_path(name)).expect("fixture");
        let decoded = recorded::decode(bytes.clone());
        assert_eq!(recorded::job_ids(&decoded).len(), 3, "{name}");
        assert_eq!(decoded.to_bytes().as_ref(), &bytes[..], "{name}");
    }
    // One attribute changed: the answer grows by nothing but its value.
    let recorded = fixture("eve-completed.ipp");
    let before = recorded.to_bytes().len();
    let changed = with_attr(
        recorded,
        ALICE_SIX,
        "job-impressions-completed",
        int(i32::MAX),
    );
    assert_eq!(changed.to_bytes().len(), before);
    assert_eq!(
        job_attr(&changed, ALICE_SIX, "job-impressions-completed").map(|v| v.to_string()),
        Some("2147483647".to_string())
    );
}

#[test]
fn absurd_and_garbage_counts_go_to_review_once_and_the_healthy_jobs_beside_them_are_charged() {
    let (printers, site, mut daemon) = site_with_bad_printers();

    // Each bad job: one WARN line with its reason, and no charge at all.
    let log = daemon.log();
    for (bad, _) in &printers {
        let printer = format!("printer={}", bad.printer);
        let warned = lines_with(&log, &[WARN, &printer]);
        assert_eq!(warned.len(), 1, "one WARN for {}:\n{log}", bad.printer);
        assert!(warned[0].starts_with("<4>"), "{}", warned[0]);
        assert!(
            warned[0].contains(&format!("job_id={}", bad.job)),
            "{}",
            warned[0]
        );
        assert!(
            warned[0].contains(&format!("reason={}", bad.reason)),
            "{}",
            warned[0]
        );
        let keys: Vec<String> = site.usages(bad.printer).into_iter().map(|u| u.0).collect();
        assert!(!keys.contains(&key(bad.printer, bad.job)), "{keys:?}");
    }
    // The healthy jobs beside them are charged: alice's 6-page job only at
    // `zero` (48c), bob's at all five (5 x 30c), carol's at the four
    // printers where hers is sound (4 x 120c).
    assert_eq!(site.printing_balance("alice"), 1000 - 48);
    assert_eq!(site.printing_balance("bob"), 1000 - 5 * 30);
    assert_eq!(site.printing_balance("carol"), 1000 - 4 * 120);
    for member in ["alice", "bob", "carol"] {
        assert_eq!(overage_cents(&site, member), 0, "{member} owes nothing");
    }
    // Issue 11's charge is nowhere: no $171,798,691.76 of overage.
    let balance = site.cli(&["balance", "alice"]);
    assert!(!balance.contains("171,798,691"), "{balance}");
    let statement = site.cli(&["statement", "alice", "--from", "2026-01-01"]);
    assert_eq!(
        statement.matches("impressions mono two-sided").count(),
        1,
        "{statement}"
    );

    // Later polls list the same jobs: nothing is set aside or charged again.
    wait_polls(&printers, 3);
    for (bad, _) in &printers {
        let printer = format!("printer={}", bad.printer);
        assert_eq!(lines_with(&daemon.log(), &[WARN, &printer]).len(), 1);
        assert_eq!(site.usages(bad.printer).len(), 2);
    }

    // Nor after a restart.
    daemon.stop();
    let daemon = site.start();
    daemon.wait_ready();
    wait_polls(&printers, 3);
    assert!(!daemon.log().contains(WARN), "{}", daemon.log());
    for (bad, _) in &printers {
        assert_eq!(site.usages(bad.printer).len(), 2, "{}", daemon.log());
    }
    assert_eq!(site.printing_balance("alice"), 1000 - 48);
    let open = site.cli(&["--json", "review"]);
    let open: serde_json::Value = serde_json::from_str(&open).expect("review json");
    assert_eq!(open.as_array().map(Vec::len), Some(5), "{open}");
}

#[test]
fn review_lists_then_charges_or_waives_each_job_once_and_a_restart_changes_nothing() {
    let (printers, site, mut daemon) = site_with_bad_printers();
    let (huge, negative, text, zero, col) = (
        key("huge", ALICE_SIX),
        key("negative", ALICE_SIX),
        key("text", ALICE_SIX),
        key("zero", CAROL_TWELVE),
        key("col", ALICE_SIX),
    );

    // The table: one row per job, open.
    let table = site.cli(&["review"]);
    for header in [
        "key", "printer", "reason", "reported", "proposed", "held", "outcome",
    ] {
        assert!(
            table.lines().next().unwrap_or("").contains(header),
            "{table}"
        );
    }
    for (bad, _) in &printers {
        let k = key(bad.printer, bad.job);
        let row = table
            .lines()
            .find(|l| l.contains(&k))
            .unwrap_or_else(|| panic!("no row for {k}:\n{table}"));
        assert!(row.contains(bad.reason) && row.contains("open"), "{row}");
    }
    // JSON: what the printer reported, and what a charge would bill.
    let listed: serde_json::Value =
        serde_json::from_str(&site.cli(&["--json", "review"])).expect("review json");
    let entry = |k: &str| -> serde_json::Value {
        listed
            .as_array()
            .and_then(|a| a.iter().find(|r| r["key"] == k))
            .cloned()
            .unwrap_or_else(|| panic!("no {k} in {listed}"))
    };
    let h = entry(&huge);
    assert_eq!(h["printer"], "huge");
    assert_eq!(h["member"], "alice");
    assert_eq!(h["proposed"], 6);
    assert_eq!(h["reason"], bad_printers()[0].reason);
    assert!(
        h["reported"]
            .as_str()
            .unwrap_or("")
            .contains("job-impressions-completed=2147483647"),
        "{h}"
    );
    assert!(h["outcome"].is_null(), "{h}");
    assert!(
        entry(&text)["reported"]
            .as_str()
            .unwrap_or("")
            .contains("job-impressions-completed=(not an integer)"),
        "{listed}"
    );
    assert_eq!(entry(&zero)["member"], "carol");
    assert_eq!(entry(&zero)["proposed"], 12);
    assert!(
        entry(&col)["reported"]
            .as_str()
            .unwrap_or("")
            .contains("job-impressions-completed-col=mono 9, colour -3"),
        "{listed}"
    );
    // CSV: a header and five rows, raw values.
    let csv = site.cli(&["--csv", "review"]);
    assert!(
        csv.starts_with("key,printer,job,user,member,reason,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 6, "{csv}");

    // Charged at what its document accounts for: 6 impressions two-sided
    // at the printer's 8c, a statement line, and the balance moves.
    let out = site.cli(&["review", "charge", &huge]);
    assert_eq!(
        out.trim(),
        format!("charged {huge}: 6 impressions, $0.48 to alice")
    );
    assert_eq!(site.printing_balance("alice"), 952 - 48);
    let statement = site.cli(&["statement", "alice", "--from", "2026-01-01"]);
    assert!(
        statement
            .lines()
            .any(|l| l.contains("print at huge job 1, 6 impressions mono two-sided")),
        "{statement}"
    );
    // Charged at what the manager says.
    let out = site.cli(&["review", "charge", &negative, "--impressions", "3"]);
    assert_eq!(
        out.trim(),
        format!("charged {negative}: 3 impressions, $0.24 to alice")
    );
    assert_eq!(site.printing_balance("alice"), 952 - 48 - 24);
    // Waived: nothing charged.
    let out = site.cli(&[
        "review",
        "waive",
        &text,
        "--reason",
        "counter fault, job reprinted",
    ]);
    assert_eq!(out.trim(), format!("waived {text}: nothing charged"));
    assert_eq!(site.printing_balance("alice"), 952 - 48 - 24);
    // Carol's job that printed "nothing" of 12 pages: 12 x 10c.
    let out = site.cli(&["review", "charge", &zero]);
    assert_eq!(
        out.trim(),
        format!("charged {zero}: 12 impressions, $1.20 to carol")
    );
    assert_eq!(site.printing_balance("carol"), 520 - 120);
    for member in ["alice", "carol"] {
        assert_eq!(overage_cents(&site, member), 0, "{member}");
    }

    // Each only once; nothing else is charged or waived.
    let before = crate::support::ledger::dump(&site.path("ledger.db"));
    let again = site.cli_fails(&["review", "charge", &huge]);
    assert!(again.contains("already resolved: charged"), "{again}");
    let again = site.cli_fails(&["review", "waive", &huge, "--reason", "oops"]);
    assert!(again.contains("already resolved: charged"), "{again}");
    let again = site.cli_fails(&["review", "waive", &text, "--reason", "twice"]);
    assert!(again.contains("already resolved: waived"), "{again}");
    let again = site.cli_fails(&["review", "charge", &text]);
    assert!(again.contains("already resolved: waived"), "{again}");
    let none = site.cli_fails(&["review", "charge", "print:huge:no-such-job"]);
    assert!(none.contains("no job in review"), "{none}");
    let zero_n = site.cli_fails(&["review", "charge", &col, "--impressions", "0"]);
    assert!(zero_n.contains("--impressions must be from 1"), "{zero_n}");
    assert_eq!(
        crate::support::ledger::dump(&site.path("ledger.db")),
        before
    );

    // Open: the one left; --all: every review with its outcome.
    let open = site.cli(&["review"]);
    assert_eq!(
        open.lines().filter(|l| l.contains("print:")).count(),
        1,
        "{open}"
    );
    assert!(open.contains(&col), "{open}");
    let all: serde_json::Value =
        serde_json::from_str(&site.cli(&["--json", "review", "--all"])).expect("json");
    let outcomes: Vec<(String, serde_json::Value)> = all
        .as_array()
        .expect("array")
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap_or("").to_string(),
                r["outcome"].clone(),
            )
        })
        .collect();
    for (k, outcome) in [
        (&huge, "charged"),
        (&negative, "charged"),
        (&text, "waived"),
        (&zero, "charged"),
    ] {
        assert!(
            outcomes.contains(&(k.clone(), outcome.into())),
            "{k}: {all}"
        );
    }
    assert!(
        outcomes.contains(&(col.clone(), serde_json::Value::Null)),
        "{all}"
    );

    // A restart lists the same jobs again: none is set aside or charged again.
    daemon.stop();
    let daemon = site.start();
    daemon.wait_ready();
    wait_polls(&printers, 3);
    assert!(!daemon.log().contains(WARN), "{}", daemon.log());
    for (printer, n) in [
        ("huge", 3),
        ("negative", 3),
        ("text", 2),
        ("zero", 3),
        ("col", 2),
    ] {
        assert_eq!(site.usages(printer).len(), n, "{printer}: {}", daemon.log());
    }
    assert_eq!(site.printing_balance("alice"), 952 - 48 - 24);
    assert_eq!(site.printing_balance("carol"), 520 - 120);
}

/// Two held queues whose recorded cupsd answer reports alice's released
/// job as 2147483647 impressions, each with a card reader.
fn held_readers(up: &Pty, down: &Pty) -> String {
    let reader = |id: &str, pty: &Pty, printer: &str| {
        format!(
            "\n[[readers]]\nid = \"{id}\"\ndevice = \"{}\"\nframing = \"rdm6300\"\n\
             printer = \"{printer}\"\ndebounce = \"1s\"\n",
            pty.reader.display()
        )
    };
    reader("desk-up", up, "upstairs") + &reader("desk-down", down, "downstairs")
}

#[test]
fn a_released_job_in_review_keeps_its_hold_until_a_manager_charges_or_waives_it() {
    let held = fixture("cupsd-held.ipp");
    let completed = with_attr(
        fixture("cupsd-completed.ipp"),
        ALICE_SIX,
        "job-impressions-completed",
        int(i32::MAX),
    );
    let upstairs = Recorded::start(Script::held(&held, &completed));
    let downstairs = Recorded::start(Script::held(&held, &completed));
    let site = Site::new(&[]);
    let up = Pty::start(site.dir(), "desk-up");
    let down = Pty::start(site.dir(), "desk-down");
    // The recording's jobs were created the day it was made: a hold
    // timeout of 100 years keeps them from being cancelled as stale.
    site.write_config_with(
        &[
            PrinterSpec::held("upstairs", &upstairs.uri(), "300ms", "876000h"),
            PrinterSpec::held("downstairs", &downstairs.uri(), "300ms", "876000h"),
        ],
        &held_readers(&up, &down),
    );
    let daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("card reader is up reader=desk-up", LIMIT);
    daemon.wait_log("card reader is up reader=desk-down", LIMIT);

    // Alice taps at both: her job is released behind a hold of its estimate
    // (5 pages two-sided, 40c), finishes with an absurd count, and goes to
    // review; the hold stays.
    up.write(&rdm6300(ALICE));
    wait_lines(&daemon, &[WARN, "printer=upstairs"], 1);
    down.write(&rdm6300(ALICE));
    wait_lines(&daemon, &[WARN, "printer=downstairs"], 1);
    assert_eq!(upstairs.released(), vec![ALICE_SIX]);
    assert_eq!(downstairs.released(), vec![ALICE_SIX]);
    assert_eq!(site.printing_balance("alice"), 1000 - 2 * 40);
    let listed: serde_json::Value =
        serde_json::from_str(&site.cli(&["--json", "review"])).expect("json");
    let reviews = listed.as_array().expect("array");
    assert_eq!(reviews.len(), 2, "{listed}");
    assert!(reviews.iter().all(|r| r["held_cents"] == 40), "{listed}");
    assert!(reviews.iter().all(|r| r["proposed"].is_null()), "{listed}");
    assert!(site.cli(&["review"]).contains("$0.40"));
    assert_eq!(open_holds(&site), 2);
    // Bob's released job beside them is healthy: settled at 3 x 10c.
    up.write(&rdm6300(BOB));
    daemon.wait_log("released job settled member=bob printer=upstairs", LIMIT);
    assert_eq!(site.printing_balance("bob"), 970);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(open_holds(&site), 2, "alice's holds stay while in review");

    // cupsd never says how big a document is (no `job-impressions`), so
    // the manager says how many impressions to charge; the hold then
    // settles at 6 impressions (48c).
    let up_key = key_in("cupsd-completed.ipp", "upstairs", ALICE_SIX);
    let no_size = site.cli_fails(&["review", "charge", &up_key]);
    assert!(no_size.contains("give --impressions N"), "{no_size}");
    let out = site.cli(&["review", "charge", &up_key, "--impressions", "6"]);
    assert_eq!(
        out.trim(),
        format!("charged {up_key}: 6 impressions, $0.48 to alice")
    );
    assert_eq!(site.printing_balance("alice"), 1000 - 48 - 40);
    let statement = site.cli(&["statement", "alice", "--from", "2026-01-01"]);
    assert!(
        statement
            .lines()
            .any(|l| l.contains(" settle ") && l.contains("print at upstairs job 1, 6 impressions")),
        "{statement}"
    );
    // Waived: the hold is voided, nothing charged.
    let down_key = key_in("cupsd-completed.ipp", "downstairs", ALICE_SIX);
    let out = site.cli(&["review", "waive", &down_key, "--reason", "counter fault"]);
    assert_eq!(out.trim(), format!("waived {down_key}: nothing charged"));
    assert_eq!(site.printing_balance("alice"), 1000 - 48);
    assert_eq!(open_holds(&site), 0);
    assert_eq!(overage_cents(&site, "alice"), 0);
    assert_eq!(lines_with(&daemon.log(), &[WARN]).len(), 2);
}

fn open_holds(site: &Site) -> i64 {
    let conn = rusqlite::Connection::open(site.path("ledger.db")).expect("ledger");
    conn.query_row(
        "SELECT COUNT(*) FROM usages u LEFT JOIN hold_resolutions r ON r.usage_id = u.id
         WHERE u.is_hold = 1 AND r.usage_id IS NULL",
        [],
        |r| r.get(0),
    )
    .expect("count")
}

/// Records `fixtures/ipp/` from a real private cupsd (see its README):
/// `cargo test --test it record_ipp_fixtures -- --ignored`.
#[test]
#[ignore = "records fixtures/ipp/ from a real cupsd; run by hand"]
fn record_ipp_fixtures() {
    let peers = Peers::new();
    let cupsd = peers.cupsd();
    cupsd.add_queue("front-desk", "file:///dev/null", true);
    let six = write_pdf(peers.dir(), "six", 6);
    let three = write_pdf(peers.dir(), "three", 3);
    let twelve = write_pdf(peers.dir(), "twelve", 12);
    let mono = ["-o", "print-color-mode=monochrome"];
    let jobs = [
        cupsd.lp(
            "front-desk",
            "alice",
            &six,
            &["-o", "sides=two-sided-long-edge", mono[0], mono[1]],
        ),
        cupsd.lp("front-desk", "bob@corp.example", &three, &mono),
        cupsd.lp("front-desk", "CORP\\carol", &twelve, &mono),
    ];
    for id in jobs {
        cupsd.wait_state("front-desk", id, 4, LIMIT);
    }
    let uri = cupsd.queue_uri("front-desk");
    let held = recorded::record(&uri, Which::NotCompleted);
    for id in jobs {
        cupsd.release_job("front-desk", id).expect("release");
    }
    for id in jobs {
        cupsd.wait_state("front-desk", id, 9, LIMIT);
    }
    let completed = recorded::record(&uri, Which::Completed);
    std::fs::write(fixture_path("cupsd-held.ipp"), held).expect("write");
    std::fs::write(fixture_path("cupsd-completed.ipp"), completed).expect("write");

    // An ippeveprinter printing the same documents directly, each job
    // telling its size (`job-impressions`, as a driver sends it) and its
    // script reporting what it printed.
    let eve = peers.eve("lobby");
    let jobs = [
        ("alice", &six, "6", Some("two-sided-long-edge")),
        ("bob@corp.example", &three, "3", None),
        ("CORP\\carol", &twelve, "12", None),
    ];
    for (user, pdf, n, sides) in jobs {
        let name = format!("impressions={n}");
        let mut attrs = vec![
            ("job-name", name.as_str()),
            ("job-impressions", n),
            ("print-color-mode", "monochrome"),
        ];
        if let Some(sides) = sides {
            attrs.push(("sides", sides));
        }
        let id = eve.submit_file(user, pdf, "application/pdf", &attrs);
        eve.wait_completed(id, LIMIT);
    }
    let completed = recorded::record(&eve.uri(), Which::Completed);
    std::fs::write(fixture_path("eve-completed.ipp"), completed).expect("write");
}
