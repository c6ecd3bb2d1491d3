//! Tap-to-release latency (`cargo bench --bench release`) against one idle
//! cupsd held queue, with the spool analysis on (as it is when `[analysis]`
//! is absent): every held job is a real PDF, analysed before the tap.
//!
//! Over 100 rounds (see `taps`): the tap, from its last byte written to the
//! reader's pty to cupsd's accepting `Release-Job`; the floor, one bare
//! `Get-Jobs`; and cupsd's own bare `Release-Job`. Goal: the tap's p99
//! within 1.5x the bare `Release-Job` p99 of the same run.
//!
//! The queue is polled every second (so each round's jobs are offered to
//! the analysis without a long wait); `RELEASE_BENCH_ROUNDS` changes the
//! number of rounds.

// The integration tests' support folder (real peers, `tallyd run` in a
// site folder); a bench uses only part of it.
#[allow(dead_code)]
#[path = "../tests/it/support/mod.rs"]
mod support;
mod taps;

use support::daemon::{PrinterSpec, Site};
use support::pdf::write_pdf;
use support::peers::Peers;
use support::pty::Pty;

fn main() {
    let rounds: usize = std::env::var("RELEASE_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let peers = Peers::new();
    let cupsd = peers.cupsd_quiet();
    cupsd.add_queue("held", "file:///dev/null", true);
    let site = Site::new(&[]);
    let desk = Pty::start(site.dir(), "desk");
    let printer = PrinterSpec::held("held", &cupsd.queue_uri("held"), "1s", "4h");
    site.write_config_with(
        &[printer],
        &format!(
            "\n[[readers]]\nid = \"desk\"\ndevice = \"{}\"\nframing = \"rdm6300\"\nprinter = \"held\"\ndebounce = \"10ms\"\n",
            desk.reader.display()
        ),
    );
    let cfg = tallyd::config::Config::load(&site.path("tallyd.toml")).expect("config");
    assert!(cfg.analysis.enabled, "the spool analysis is on by default");
    let mut daemon = site.start_as("json");
    daemon.wait_log("tallyd ready", taps::WAIT);
    daemon.wait_log("card reader is up", taps::WAIT);
    let pdf = write_pdf(peers.dir(), "one", 1);

    let bench = taps::Bench {
        cupsd: &cupsd,
        printer: &cfg.printers[0],
        log: &site.path("daemon.log"),
        desk: &desk,
        pdf: &pdf,
    };
    let mut figures = bench.run(rounds);
    daemon.stop();
    figures.print("one idle cupsd held queue (Generic PDF, file:///dev/null), analysis on");
}
