//! Printer-aware release: a tap at a printer that cannot print (its queue
//! stopped with `cupsdisable -r media-jam`) releases and reserves nothing;
//! once the queue is enabled again the same tap releases and charges.

use crate::support::daemon::{lines_with, PrinterSpec, Site};
use crate::support::pdf::write_pdf;
use crate::support::peers::Peers;
use crate::support::pty::{printer_reader, rdm6300, Pty};

use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
const ALICE: &str = "14008EC793";

fn cups_admin(tool: &str, host: &str, args: &[&str]) {
    let out = Command::new(tool)
        .args(["-h", host])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} is missing (apt-get install cups-client): {e}"));
    assert!(
        out.status.success(),
        "{tool}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_jammed_printer_releases_nothing_until_it_is_back() {
    let _serial = crate::support::serial();
    let peers = Peers::new();
    let eve = peers.eve("behind");
    let cupsd = peers.cupsd();
    cupsd.add_queue("upstairs", &eve.uri(), true);
    let site = Site::new(&[]);
    let desk = Pty::start(site.dir(), "desk");
    site.write_config_with(
        &[PrinterSpec::held(
            "upstairs",
            &cupsd.queue_uri("upstairs"),
            "300ms",
            "4h",
        )],
        &printer_reader("desk", &desk, "upstairs"),
    );
    let mut daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("card reader is up reader=desk", LIMIT);

    let three = write_pdf(peers.dir(), "three", 3);
    let job = cupsd.lp(
        "upstairs",
        "alice",
        &three,
        &["-o", "print-color-mode=monochrome"],
    );
    cupsd.wait_state("upstairs", job, 4, LIMIT);
    cups_admin(
        "cupsdisable",
        &cupsd.host(),
        &["-r", "media-jam", "upstairs"],
    );

    desk.write(&rdm6300(ALICE));
    daemon.wait_log("release refused: the printer cannot print", LIMIT);
    let refused = lines_with(&daemon.log(), &["release refused"]).join("");
    assert!(refused.starts_with("<4>"), "a WARN line: {refused}");
    for part in [
        "member=alice",
        "printer=upstairs",
        "stopped",
        "media-jam",
        &format!("held={job}"),
    ] {
        assert!(refused.contains(part), "{part} in {refused}");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(cupsd.job_state("upstairs", job), 4, "the job stays held");
    assert_eq!(site.printing_balance("alice"), 1000, "nothing reserved");
    let statement = site.cli(&["statement", "alice"]);
    assert!(
        !statement.contains(" hold "),
        "no hold placed:\n{statement}"
    );

    // Back in service: the next tap releases it and it is charged once.
    cups_admin("cupsenable", &cupsd.host(), &["upstairs"]);
    std::thread::sleep(Duration::from_millis(1100)); // the reader's debounce
    desk.write(&rdm6300(ALICE));
    daemon.wait_log("<6>release member=alice", LIMIT);
    cupsd.wait_state("upstairs", job, 9, LIMIT);
    daemon.wait_log("released job settled member=alice", LIMIT);
    assert_eq!(
        site.printing_balance("alice"),
        1000 - 30,
        "{}",
        daemon.log()
    );
    assert_eq!(lines_with(&daemon.log(), &["release refused"]).len(), 1);
    daemon.stop();
}
