//! Card readers end to end: `socat` pseudo-terminals as readers, a private
//! cupsd with held queues in front of an ippeveprinter, `tallyd run` between.

use crate::support::daemon::{lines_with, PrinterSpec, Site};
use crate::support::pdf::write_pdf;
use crate::support::peers::Peers;
use crate::support::pty::{rdm6300, Pty};

use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
const ALICE: &str = "14008EC793";
const BOB: &str = "0A1B2C3D4E";
const DAVE: &str = "00DA7E0001";

fn readers(desk: &Pty, door: &Pty) -> String {
    format!(
        r#"
[[readers]]
id = "desk"
device = "{}"
framing = "rdm6300"
printer = "upstairs"
debounce = "1s"

[[readers]]
id = "door"
device = "{}"
framing = "rdm6300"
resource = "room-a"
debounce = "1s"
increment = "15m"
"#,
        desk.reader.display(),
        door.reader.display()
    )
}

#[test]
fn taps_release_only_the_members_held_jobs_and_time_room_sessions() {
    let peers = Peers::new();
    let eve = peers.eve("behind");
    let cupsd = peers.cupsd();
    cupsd.add_queue("upstairs", &eve.uri(), true);
    cupsd.add_queue("stale", "file:///dev/null", true);
    let site = Site::new(&[]);
    let mut desk = Pty::start(site.dir(), "desk");
    let door = Pty::start(site.dir(), "door");
    site.write_config_with(
        &[
            PrinterSpec::held("upstairs", &cupsd.queue_uri("upstairs"), "300ms", "4h"),
            PrinterSpec::held("stale", &cupsd.queue_uri("stale"), "300ms", "2s"),
        ],
        &readers(&desk, &door),
    );
    let mut daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("card reader is up reader=desk", LIMIT);
    daemon.wait_log("card reader is up reader=door", LIMIT);

    let three = write_pdf(peers.dir(), "three", 3);
    let one = write_pdf(peers.dir(), "one", 1);
    let mono = ["-o", "print-color-mode=monochrome"];
    let a1 = cupsd.lp("upstairs", "alice", &three, &mono);
    let a2 = cupsd.lp("upstairs", "alice", &one, &mono);
    let b1 = cupsd.lp("upstairs", "bob@corp.example", &one, &mono);
    let d1 = cupsd.lp("upstairs", "dave", &one, &mono);
    for id in [a1, a2, b1, d1] {
        cupsd.wait_state("upstairs", id, 4, LIMIT);
    }

    // Alice taps: her two jobs are released, completed and charged their
    // real cost (3 + 1 mono pages); Bob's and Dave's stay held.
    desk.write(&rdm6300(ALICE));
    daemon.wait_log("<6>release member=alice", LIMIT);
    cupsd.wait_state("upstairs", a1, 9, LIMIT);
    cupsd.wait_state("upstairs", a2, 9, LIMIT);
    daemon.wait_log(
        &format!("released job settled member=alice printer=upstairs job_id={a2}"),
        LIMIT,
    );
    daemon.wait_log(
        &format!("released job settled member=alice printer=upstairs job_id={a1}"),
        LIMIT,
    );
    assert_eq!(
        site.printing_balance("alice"),
        1000 - 40,
        "{}",
        daemon.log()
    );
    assert_eq!(cupsd.job_state("upstairs", b1), 4);
    assert_eq!(cupsd.job_state("upstairs", d1), 4);
    let release = lines_with(&daemon.log(), &["<6>release member=alice"]).join("");
    assert!(
        release.contains(&format!("jobs={a1},{a2}")),
        "oldest first: {release}"
    );
    assert!(
        release.contains("estimate_cents=100"),
        "2 jobs x 5 pages x 10c: {release}"
    );
    // The statement: each hold with its estimate, each settle with what
    // really printed.
    let statement = site.cli(&["statement", "alice"]);
    let line = |kind: &str, job: u32| {
        let needle = format!("print at upstairs job {job},");
        statement
            .lines()
            .find(|l| l.contains(&format!(" {kind} ")) && l.contains(&needle))
            .unwrap_or_else(|| panic!("no {kind} line for job {job}:\n{statement}"))
            .to_string()
    };
    assert!(
        line("hold", a1).contains("estimated 5 impressions"),
        "{statement}"
    );
    assert!(
        line("settle", a1).contains(", 3 impressions"),
        "{statement}"
    );
    assert!(
        line("settle", a2).contains(", 1 impression "),
        "{statement}"
    );

    // Dave is credits-only with 5 cents: his job (estimated 50c) stays held,
    // and the refusal is a WARN line, for staff to act on.
    desk.write(&rdm6300(DAVE));
    daemon.wait_log("<4>release member=dave", LIMIT);
    let release = lines_with(&daemon.log(), &["<4>release member=dave"]).join("");
    assert!(
        release.contains("jobs= ") || release.contains("jobs=\"\""),
        "{release}"
    );
    assert!(release.contains("credits-only"), "{release}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(cupsd.job_state("upstairs", d1), 4);
    assert_eq!(site.printing_balance("dave"), 5);

    // A held job past the hold timeout is cancelled and costs nothing.
    let s1 = cupsd.lp("stale", "alice", &one, &mono);
    cupsd.wait_state("stale", s1, 7, LIMIT);
    daemon.wait_log("held job cancelled after the hold timeout", LIMIT);
    assert_eq!(site.printing_balance("alice"), 960);

    // Reader faults: a bad checksum, garbage, a frame split across writes
    // (an unknown card, listed for enrolment), then the device vanishes and
    // comes back, and Bob's tap works.
    let mut bad = rdm6300(BOB);
    bad[11] = b'0';
    bad[12] = b'0';
    desk.write(&bad);
    daemon.wait_log("bad checksum", LIMIT);
    desk.write(b"\xff\x13garbage\x03");
    let unknown = rdm6300("0000ABCDEF");
    desk.write(&unknown[..6]);
    std::thread::sleep(Duration::from_millis(30));
    desk.write(&unknown[6..]);
    daemon.wait_log("unknown card", LIMIT);
    assert!(!daemon.log().contains("0000ABCDEF"), "logs mask card ids");
    let cards = site.cli(&["cards"]);
    assert!(
        cards.contains("0000ABCDEF") && cards.contains("desk"),
        "{cards}"
    );
    desk.unplug();
    daemon.wait_log(
        "card reader is gone; reopening with backoff reader=desk",
        LIMIT,
    );
    desk.replug();
    daemon.wait_log("card reader is back reader=desk", LIMIT);
    desk.write(&rdm6300(BOB));
    daemon.wait_log("<6>release member=bob", LIMIT);
    cupsd.wait_state("upstairs", b1, 9, LIMIT);
    daemon.wait_log("released job settled member=bob", LIMIT);
    assert_eq!(site.printing_balance("bob"), 990);

    // A room session: 37 minutes on the test clock, charged as 45.
    door.write(&rdm6300(ALICE));
    daemon.wait_log("session started member=alice resource=room-a", LIMIT);
    door.write(&rdm6300(ALICE)); // a bounce: the same card again at once
    site.set_clock_offset(37 * 60);
    std::thread::sleep(Duration::from_millis(1200));
    // Bob cannot end Alice's session.
    door.write(&rdm6300(BOB));
    daemon.wait_log("another member's session is open", LIMIT);
    std::thread::sleep(Duration::from_millis(1200));
    door.write(&rdm6300(ALICE));
    daemon.wait_log("session ended member=alice resource=room-a", LIMIT);
    let ended = lines_with(&daemon.log(), &["session ended member=alice"]).join("");
    assert!(ended.contains("minutes=45"), "{ended}");
    assert_eq!(site.time_balance("alice", "room-hours"), 600 - 45);
    assert_eq!(lines_with(&daemon.log(), &["session ended"]).len(), 1);

    daemon.stop();
    // Every hold resolved.
    let open_holds = open_holds(&site);
    assert_eq!(open_holds, 0);
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
