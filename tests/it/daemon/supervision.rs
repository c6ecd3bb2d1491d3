//! Supervision in `tallyd run`: a printer's poller that panics (the test
//! hook `TALLYD_TEST_PANIC_PRINTER`, built only with the `test-hooks`
//! feature) is logged at ERROR with its name and cause, restarted after a
//! backoff, and its printer's next job, on a real ippeveprinter, is still
//! charged exactly once; SIGUSR1's status line counts the restart.

use crate::support::daemon::{lines_with, PrinterSpec, Site};
use crate::support::peers::Peers;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn a_printer_task_that_panics_is_restarted_and_its_next_job_is_charged_once() {
    let peers = Peers::new();
    let eve = peers.eve("lobby");
    let site = Site::new(&[PrinterSpec::direct("lobby", &eve.uri(), "300ms")]);
    let mut daemon = site.start_with("journald", &[("TALLYD_TEST_PANIC_PRINTER", "lobby")]);
    daemon.wait_ready();

    // The first poll panics; the poller is back after the 1 s backoff.
    daemon.wait_log("task failed; restarting", LIMIT);
    let failed = lines_with(&daemon.log(), &["<3>task failed; restarting"]).join("\n");
    for part in [
        "task=printer:lobby",
        "panicked: test hook: the poller of printer lobby panics at its first poll",
        "restarts=1",
        "delay_ms=1000",
    ] {
        assert!(failed.contains(part), "{part} in {failed}");
    }
    daemon.wait_log("printer is up printer=lobby", LIMIT);

    let job = eve.submit("alice", 2);
    site.wait_usages("lobby", 1, LIMIT);
    assert_eq!(site.printing_balance("alice"), 1000 - 20);
    // More polls list the same job: it stays charged once.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(site.usages("lobby").len(), 1, "{}", daemon.log());
    let log = daemon.log();
    let charge = lines_with(&log, &["<6>charge ", "member=alice", "printer=lobby"]);
    assert_eq!(charge.len(), 1, "one charge line:\n{log}");
    assert!(
        charge[0].contains(&format!("job_id={job} ")),
        "{}",
        charge[0]
    );
    // One ERROR line for the one restart: the hook panics once per process.
    assert_eq!(lines_with(&log, &["task failed"]).len(), 1, "{log}");

    daemon.signal("USR1");
    daemon.wait_log("<6>status ", LIMIT);
    let status = lines_with(&daemon.log(), &["<6>status "]).join("\n");
    for part in ["restarts=printer:lobby=1 ", "jobs_charged=1", "lobby=up"] {
        assert!(status.contains(part), "{part} in {status}");
    }

    daemon.stop();
    assert!(daemon.log().contains("tallyd stopped"));
    assert_eq!(site.printing_balance("alice"), 1000 - 20);
}
