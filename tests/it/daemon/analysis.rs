//! The spool analysis end to end: a private cupsd holds jobs on a colour
//! queue in front of an ippeveprinter; tallyd fetches each held job's
//! document with `CUPS-Get-Document`, finds its pages and their colour with
//! Ghostscript, reserves the analysed cost at release and charges the
//! colour split the analysis found; a restart does not analyse again.

use crate::support::daemon::{lines_with, PrinterSpec, Site};
use crate::support::documents::{write_pdf_of, Mark};
use crate::support::peers::Peers;
use crate::support::pty::{printer_reader, rdm6300, Pty};

use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
const ALICE: &str = "14008EC793";

#[test]
fn held_jobs_are_reserved_and_charged_by_what_their_documents_hold() {
    let _serial = crate::support::serial();
    let peers = Peers::new();
    let eve = peers.eve("colour");
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

    // Three pages of black text sent in colour to a colour queue: today's
    // rule would reserve 5 estimated colour impressions (200c) and charge
    // 3 colour (120c).
    let text: &[Mark] = &[Mark::Text];
    let mono = write_pdf_of(peers.dir(), "report.pdf", &[text, text, text]);
    let colour_mode = ["-o", "print-color-mode=color"];
    let report = cupsd.lp("upstairs", "alice", &mono, &colour_mode);
    // Four pages, one with a small colour logo.
    let logo: &[Mark] = &[Mark::Text, Mark::Logo];
    let mixed = write_pdf_of(peers.dir(), "mixed.pdf", &[text, logo, text, text]);
    let brochure = cupsd.lp("upstairs", "alice", &mixed, &colour_mode);
    for id in [report, brochure] {
        cupsd.wait_state("upstairs", id, 4, LIMIT);
    }
    for (id, pages, colour) in [(report, 3, 0), (brochure, 4, 1)] {
        let needle = format!("job analysed printer=upstairs job_id={id} ");
        daemon.wait_log(&needle, LIMIT);
        let line = lines_with(&daemon.log(), &[&needle]).join("");
        assert!(
            line.contains(&format!("pages={pages} colour_pages={colour}")),
            "{line}"
        );
        assert!(line.contains("format=application/pdf"), "{line}");
    }

    // The tap reserves the analysed cost: 3 mono (30c) + 3 mono and 1
    // colour (30c + 40c).
    desk.write(&rdm6300(ALICE));
    daemon.wait_log("<6>release member=alice", LIMIT);
    let release = lines_with(&daemon.log(), &["<6>release member=alice"]).join("");
    assert!(release.contains("estimate_cents=100"), "{release}");
    for id in [report, brochure] {
        cupsd.wait_state("upstairs", id, 9, LIMIT);
        daemon.wait_log(
            &format!("released job settled member=alice printer=upstairs job_id={id}"),
            LIMIT,
        );
    }
    assert_eq!(
        site.printing_balance("alice"),
        1000 - 100,
        "{}",
        daemon.log()
    );
    // Each settle charged what printed, split as the analysis found (the
    // hold was exact, so the statement has no settle line of its own).
    for (id, cents) in [(report, 30), (brochure, 70)] {
        let needle = format!("released job settled member=alice printer=upstairs job_id={id} ");
        let line = lines_with(&daemon.log(), &[&needle]).join("");
        assert!(line.contains(&format!(" cents={cents} ")), "{line}");
    }
    let statement = site.cli(&["statement", "alice"]);
    let hold = |job: u32| {
        statement
            .lines()
            .find(|l| l.contains(" hold ") && l.contains(&format!("job {job},")))
            .unwrap_or_else(|| panic!("no hold of {job}:\n{statement}"))
            .to_string()
    };
    assert!(hold(report).contains("3 impressions mono"), "{statement}");
    assert!(
        hold(report).contains("colour by spool analysis"),
        "{statement}"
    );
    assert!(hold(brochure).contains("(3 mono, 1 colour)"), "{statement}");

    // A job analysed before a restart is not analysed again; one whose
    // analysis a SIGKILL cut short is analysed once, after the restart.
    let later = cupsd.lp("upstairs", "alice", &mono, &colour_mode);
    let before = format!("job analysed printer=upstairs job_id={later} ");
    daemon.wait_log(&before, LIMIT);
    let pages: Vec<&[Mark]> = vec![text; 300];
    let big = write_pdf_of(peers.dir(), "big.pdf", &pages);
    let long = cupsd.lp("upstairs", "alice", &big, &colour_mode);
    cupsd.wait_state("upstairs", long, 4, LIMIT);
    std::thread::sleep(Duration::from_millis(500)); // a poll offers it
    daemon.kill9();
    let mut again = site.start();
    again.wait_ready();
    let cut = format!("job analysed printer=upstairs job_id={long} ");
    let start = std::time::Instant::now();
    while lines_with(&site.log(), &[&cut]).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(90), "{}", site.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500)); // a few more polls
    assert!(
        !again.log().contains(&before),
        "analysed once:\n{}",
        again.log()
    );
    assert_eq!(lines_with(&site.log(), &[&before]).len(), 1);
    let log = site.log();
    let long_line = lines_with(&log, &[&cut]);
    assert_eq!(long_line.len(), 1, "{log}");
    assert!(long_line[0].contains("pages=300"), "{}", long_line[0]);
    again.stop();
}

#[test]
fn a_direct_cups_queue_job_is_analysed_while_it_prints() {
    let _serial = crate::support::serial();
    let peers = Peers::new();
    let eve = peers.eve("lobby-printer");
    let cupsd = peers.cupsd();
    cupsd.add_queue("lobby", &eve.uri(), false);
    let site = Site::new(&[]);
    site.write_config_with(
        &[PrinterSpec::direct(
            "lobby",
            &cupsd.queue_uri("lobby"),
            "300ms",
        )],
        "",
    );
    let mut daemon = site.start();
    daemon.wait_ready();
    // Black text sent in colour, kept printing for 3 s by the printer's
    // job script (`delay=3` in its name): CUPS still has its document.
    let text: &[Mark] = &[Mark::Text];
    let mono = write_pdf_of(peers.dir(), "memo.pdf", &[text, text]);
    let job = cupsd.lp(
        "lobby",
        "alice",
        &mono,
        &["-o", "print-color-mode=color", "-t", "delay=3"],
    );
    daemon.wait_log(&format!("job analysed printer=lobby job_id={job} "), LIMIT);
    daemon.wait_log(
        &format!("charge member=alice printer=lobby job_id={job} "),
        LIMIT,
    );
    let charge = lines_with(&daemon.log(), &["charge member=alice printer=lobby"]).join("");
    assert!(
        charge.contains("colour=mono") && charge.contains(" cents=20 "),
        "{charge}"
    );
    let statement = site.cli(&["statement", "alice"]);
    assert!(
        statement.contains("colour by spool analysis"),
        "{statement}"
    );
    assert_eq!(site.printing_balance("alice"), 1000 - 20);
    daemon.stop();
}
