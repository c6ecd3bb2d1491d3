//! Crash test for held release: SIGKILL the daemon between Release-Job and
//! the job's completion, at least 10 times; restart; every released job is
//! charged exactly once and no hold is left unresolved.

use crate::support;
use crate::support::daemon::{PrinterSpec, Site};
use crate::support::pdf::write_pdf;
use crate::support::peers::Peers;
use crate::support::pty::{printer_reader, rdm6300, Pty};

use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
const ALICE: &str = "14008EC793";
const ROUNDS: usize = 10;

#[test]
fn sigkill_between_release_and_completion_charges_each_released_job_once() {
    let _serial = support::serial();
    let peers = Peers::new();
    let cupsd = peers.cupsd();
    // A held queue whose jobs take a moment to print after release.
    cupsd.add_queue("held", "file:///dev/null", true);
    let site = Site::new(&[]);
    let desk = Pty::start(site.dir(), "desk");
    site.write_config_with(
        &[PrinterSpec::held(
            "held",
            &cupsd.queue_uri("held"),
            "200ms",
            "4h",
        )],
        &printer_reader("desk", &desk, "held"),
    );
    let pdf = write_pdf(peers.dir(), "two", 2);
    let mono = ["-o", "print-color-mode=monochrome"];
    let mut released = Vec::new();
    let mut kills = 0;
    for round in 0..ROUNDS {
        let job = cupsd.lp("held", "alice", &pdf, &mono);
        cupsd.wait_state("held", job, 4, LIMIT);
        let mut daemon = site.start();
        daemon.wait_ready();
        daemon.wait_log("card reader is up reader=desk", LIMIT);
        desk.write(&rdm6300(ALICE));
        // Kill as soon as the release is sent: the job is then released
        // (or about to be) and not yet finished, or just finished.
        daemon.wait_log("<6>release member=alice", LIMIT);
        daemon.kill9();
        kills += 1;
        released.push(job);
        cupsd.wait_state("held", job, 9, LIMIT);
        if round % 3 == 2 {
            // Sometimes restart only after several jobs piled up.
            continue;
        }
        let mut daemon = site.start();
        site.wait_usages("held", released.len(), LIMIT);
        daemon.wait_log("released job settled", LIMIT);
        daemon.kill9();
        kills += 1;
    }
    let mut daemon = site.start();
    daemon.wait_ready();
    site.wait_usages("held", ROUNDS, LIMIT);
    // Let it poll a few more times, then stop gracefully.
    std::thread::sleep(Duration::from_millis(800));
    daemon.stop();

    let usages = site.usages("held");
    assert_eq!(usages.len(), ROUNDS, "one usage (a hold) per released job");
    let conn = rusqlite::Connection::open(site.path("ledger.db")).expect("ledger");
    let (open, settled): (i64, i64) = conn
        .query_row(
            "SELECT SUM(r.usage_id IS NULL), SUM(r.outcome = 'settled') FROM usages u
             LEFT JOIN hold_resolutions r ON r.usage_id = u.id WHERE u.is_hold = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("holds");
    assert_eq!(open, 0, "no hold left unresolved");
    assert_eq!(settled, ROUNDS as i64, "every released job settled once");
    // 2 mono pages at 10c each, per job.
    assert_eq!(site.printing_balance("alice"), 1000 - 20 * ROUNDS as i64);
    println!("release crash test: {kills} SIGKILLs, {ROUNDS} released jobs, each charged exactly once, no open hold");
}
