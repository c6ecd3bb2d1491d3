//! Follow-me release: members print to one virtual held queue; a tap at a
//! held printer listed in its `release_to` moves the member's jobs there
//! (`CUPS-Move-Job`) and releases them at that printer's prices. A private
//! cupsd with the follow-me queue and two held queues, one in front of a
//! colour ippeveprinter and one in front of a mono-only one.

use crate::support::daemon::{lines_with, PrinterSpec, Site};
use crate::support::documents::{write_pdf_of, Mark};
use crate::support::pdf::write_pdf;
use crate::support::peers::Peers;
use crate::support::pty::{printer_reader, rdm6300, Pty};

use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
const ALICE: &str = "14008EC793";

/// The mono-only printer downstairs is cheaper.
const CHEAP: &str = r#"
[prices.cheap]
default_media = "a4"
[prices.cheap.media.a4]
mono = { one_sided = 5, two_sided = 4 }
colour = { one_sided = 40, two_sided = 35 }
[prices.cheap.media.letter]
mono = { one_sided = 5, two_sided = 4 }
colour = { one_sided = 40, two_sided = 35 }
"#;

#[test]
fn a_follow_me_job_comes_out_where_its_owner_taps_at_that_printers_prices() {
    let _serial = crate::support::serial();
    let peers = Peers::new();
    let colour_eve = peers.eve("colour");
    let mono_eve = peers.eve_mono("mono");
    let cupsd = peers.cupsd();
    cupsd.add_queue("upstairs", &colour_eve.uri(), true);
    cupsd.add_queue("downstairs", &mono_eve.uri(), true);
    cupsd.add_queue("anywhere", "file:///dev/null", true);
    let site = Site::new(&[]);
    let up = Pty::start(site.dir(), "up");
    let down = Pty::start(site.dir(), "down");
    let follow_me = PrinterSpec {
        mode: "follow-me",
        extra: "release_to = [\"upstairs\", \"downstairs\"]\nhold_timeout = \"4h\"\npage_estimate = 5\n".into(),
        ..PrinterSpec::direct("anywhere", &cupsd.queue_uri("anywhere"), "300ms")
    };
    let downstairs = PrinterSpec {
        prices: "cheap",
        ..PrinterSpec::held("downstairs", &cupsd.queue_uri("downstairs"), "300ms", "4h")
    };
    site.write_config_with(
        &[
            PrinterSpec::held("upstairs", &cupsd.queue_uri("upstairs"), "300ms", "4h"),
            downstairs,
            follow_me,
        ],
        &format!(
            "{}{}{CHEAP}",
            printer_reader("up", &up, "upstairs"),
            printer_reader("down", &down, "downstairs")
        ),
    );
    let check = site.cli(&["check-config"]);
    assert!(
        check.contains("follow-me, released at upstairs, downstairs"),
        "{check}"
    );
    let mut daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("card reader is up reader=up", LIMIT);
    daemon.wait_log("card reader is up reader=down", LIMIT);

    let three = write_pdf(peers.dir(), "three", 3);
    // A real colour page: the spool analysis agrees with the job's mode.
    let photo: &[Mark] = &[Mark::Photo];
    let one = write_pdf_of(peers.dir(), "photo.pdf", &[photo]);
    let mono = cupsd.lp(
        "anywhere",
        "alice",
        &three,
        &["-o", "print-color-mode=monochrome"],
    );
    let colour = cupsd.lp("anywhere", "alice", &one, &["-o", "print-color-mode=color"]);
    for id in [mono, colour] {
        cupsd.wait_state("anywhere", id, 4, LIMIT);
    }

    // Downstairs is mono-only: the mono job moves there and prints at its
    // prices (3 x 5c); the colour job stays held at the follow-me queue.
    down.write(&rdm6300(ALICE));
    daemon.wait_log("release member=alice printer=downstairs", LIMIT);
    let line = lines_with(&daemon.log(), &["release member=alice printer=downstairs"]).join("");
    assert!(line.starts_with("<4>"), "a job kept back is a WARN: {line}");
    assert!(line.contains(&format!("jobs={mono} ")), "{line}");
    assert!(line.contains(&format!("{mono} from anywhere")), "{line}");
    assert!(
        line.contains(&format!("{colour} (a colour job at a mono-only printer)")),
        "{line}"
    );
    cupsd.wait_state("downstairs", mono, 9, LIMIT);
    daemon.wait_log(
        &format!("released job settled member=alice printer=downstairs job_id={mono}"),
        LIMIT,
    );
    assert_eq!(
        site.printing_balance("alice"),
        1000 - 15,
        "{}",
        daemon.log()
    );
    assert_eq!(cupsd.job_state("anywhere", colour), 4, "still held");
    let at_mono: Vec<_> = mono_eve.jobs("completed");
    assert_eq!(at_mono.len(), 1, "one job came out of the mono printer");

    // Upstairs prints colour: the colour job comes out there (1 x 40c).
    // First a frame's start alone, which goes stale (its early survey is
    // dropped); then the card's frame at the reader's 9600 baud, whose
    // first byte starts the survey the tap then uses.
    up.write(&[0x02]);
    std::thread::sleep(Duration::from_millis(700));
    up.write_at_baud(&rdm6300(ALICE), 9600);
    daemon.wait_log("<6>release member=alice printer=upstairs", LIMIT);
    cupsd.wait_state("upstairs", colour, 9, LIMIT);
    daemon.wait_log(
        &format!("released job settled member=alice printer=upstairs job_id={colour}"),
        LIMIT,
    );
    assert_eq!(
        site.printing_balance("alice"),
        1000 - 15 - 40,
        "{}",
        daemon.log()
    );
    let statement = site.cli(&["statement", "alice"]);
    assert!(
        statement.contains(&format!("print at downstairs job {mono},")),
        "{statement}"
    );
    assert!(
        statement.contains(&format!("print at upstairs job {colour},")),
        "{statement}"
    );
    daemon.stop();
}
