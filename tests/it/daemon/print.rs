//! `tallyd run` against real printers: an ippeveprinter whose job command
//! reports scripted impressions (direct printing), and a private cupsd queue
//! in front of one. Jobs from several users; balances, statements, reports
//! and log lines checked.

use crate::support::daemon::{lines_with, PrinterSpec, Site};
use crate::support::pdf::write_pdf;
use crate::support::peers::Peers;

use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn direct_jobs_are_charged_once_to_their_owners_and_job_ids_after_a_printer_reset_are_new_jobs() {
    let peers = Peers::new();
    let mut eve = peers.eve("lobby");
    let site = Site::new(&[PrinterSpec::direct("lobby", &eve.uri(), "300ms")]);
    let mut daemon = site.start();
    daemon.wait_ready();

    // alice: 3 mono one-sided = 30c; bob (as BOB@corp.example): 2 colour =
    // 80c; carol (as CORP\carol): 5 impressions two-sided = 40c; mallory is
    // no member: unattributed.
    let a = eve.submit("alice", 3);
    eve.submit_with("BOB@corp.example", 2, &[("print-color-mode", "color")]);
    eve.submit_with("CORP\\carol", 5, &[("sides", "two-sided-long-edge")]);
    eve.submit("mallory", 1);
    site.wait_usages("lobby", 4, LIMIT);
    // Each job's line follows the commit of its group.
    for needle in [
        "<6>charge member=alice",
        "<6>charge member=bob",
        "<6>charge member=carol",
        "<4>unattributed job",
    ] {
        daemon.wait_log(needle, LIMIT);
    }
    assert_eq!(site.printing_balance("alice"), 970);
    assert_eq!(site.printing_balance("bob"), 920);
    assert_eq!(site.printing_balance("carol"), 960);

    let log = daemon.log();
    let charge = lines_with(&log, &["charge", "member=alice", "printer=lobby"]);
    assert_eq!(charge.len(), 1, "one charge line for alice:\n{log}");
    for field in [
        &format!("job_id={a}") as &str,
        "impressions=3",
        "colour=mono",
        "sides=one-sided",
        "cents=30",
        "balance_after=970",
    ] {
        assert!(charge[0].contains(field), "{field} in {}", charge[0]);
    }
    assert!(lines_with(&log, &["member=bob", "colour=colour", "cents=80"]).len() == 1);
    assert!(lines_with(&log, &["member=carol", "sides=two-sided", "cents=40"]).len() == 1);
    let unattributed = lines_with(&log, &["<4>", "unattributed", "mallory"]);
    assert_eq!(
        unattributed.len(),
        1,
        "one warning for mallory's job:\n{log}"
    );

    let statement = site.cli(&["statement", "alice", "--from", "2026-01-01"]);
    assert!(
        statement.contains(&format!(
            "print at lobby job {a}, 3 impressions mono one-sided"
        )),
        "{statement}"
    );
    let report = site.cli(&[
        "--json",
        "report",
        "--month",
        &this_month(),
        "--by",
        "printer",
    ]);
    let rows: serde_json::Value = serde_json::from_str(&report).expect("report json");
    let lobby = &rows.as_array().expect("rows")[0];
    assert_eq!(lobby["jobs"], 4, "{report}");
    assert_eq!(lobby["unattributed_cents"], 10, "{report}");
    // By member, JSON and CSV agree on the unattributed row: its printing
    // is the 10 cents no member owns.
    let month = this_month();
    let by_member = ["report", "--month", month.as_str(), "--by", "member"];
    let json: serde_json::Value =
        serde_json::from_str(&site.cli(&[&["--json"][..], &by_member[..]].concat()))
            .expect("report json");
    let nobody = json
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["key"] == "(unattributed)")
        .expect("unattributed row");
    assert_eq!(nobody["printing_cents"], 10, "{json}");
    let csv = site.cli(&[&["--csv"][..], &by_member[..]].concat());
    let row = csv
        .lines()
        .find(|l| l.starts_with("(unattributed),"))
        .expect("unattributed csv row");
    assert_eq!(row.split(',').nth(3), Some("10"), "{csv}");

    // The printer restarts: job ids begin again at 1, with new uuids.
    eve.restart();
    let again = eve.submit("alice", 2);
    assert_eq!(
        again, 1,
        "ippeveprinter numbers jobs from 1 after a restart"
    );
    site.wait_usages("lobby", 5, LIMIT);
    assert_eq!(site.printing_balance("alice"), 950);
    let keys: std::collections::HashSet<String> =
        site.usages("lobby").into_iter().map(|u| u.0).collect();
    assert_eq!(keys.len(), 5);

    // A restart of the daemon sees the same jobs listed and charges none again.
    daemon.stop();
    let daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("printer is up", LIMIT);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(site.usages("lobby").len(), 5, "{}", daemon.log());
    assert_eq!(site.printing_balance("alice"), 950);
}

#[test]
fn a_cupsd_queue_in_front_of_an_ippeveprinter_is_charged_by_what_cups_counts() {
    let peers = Peers::new();
    let eve = peers.eve("behind");
    let cupsd = peers.cupsd();
    cupsd.add_queue("front", &eve.uri(), false);
    let site = Site::new(&[]);
    // What CUPS counts and reports, without the spool analysis (which would
    // race these short jobs: `daemon::analysis` covers it at direct queues).
    site.write_config_with(
        &[PrinterSpec::direct(
            "front",
            &cupsd.queue_uri("front"),
            "500ms",
        )],
        "\n[analysis]\nenabled = false\n",
    );
    let mut daemon = site.start();
    daemon.wait_ready();

    let three = write_pdf(peers.dir(), "three", 3);
    let two = write_pdf(peers.dir(), "two", 2);
    // The queue's default colour mode is colour (the printer has colour):
    // CUPS reports it for every job that does not ask for monochrome.
    cupsd.lp(
        "front",
        "alice",
        &three,
        &["-o", "print-color-mode=monochrome"],
    );
    cupsd.lp(
        "front",
        "bob@corp.example",
        &two,
        &["-n", "2", "-o", "sides=two-sided-long-edge"],
    );
    site.wait_usages("front", 2, Duration::from_secs(40));
    // 3 mono pages one-sided: 3 x 10c. 2 pages x 2 copies two-sided, in the
    // queue's default colour: 4 x 35c.
    assert_eq!(site.printing_balance("alice"), 970, "{}", daemon.log());
    assert_eq!(site.printing_balance("bob"), 860, "{}", daemon.log());
    let statement = site.cli(&["statement", "bob", "--from", "2026-01-01"]);
    assert!(
        statement.contains("4 impressions colour two-sided"),
        "{statement}"
    );
    daemon.stop();
}

fn this_month() -> String {
    chrono::Utc::now().format("%Y-%m").to_string()
}
