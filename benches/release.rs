//! Tap-to-release latency (`cargo bench --bench release`): from the moment a
//! tap's last byte is written to the reader's pty to the moment cupsd has
//! accepted `Release-Job` (the daemon's `release` log line, stamped right
//! after cupsd's answer), over 100 taps. Goal: p99 within 3x the floor, the
//! round trip of one bare `Get-Jobs` to the same cupsd.
//!
//! Each round measures, in turn and under the same conditions (daemon
//! running, cupsd idle): one bare `Get-Jobs` (the floor); the tap; and one
//! bare `Release-Job` of another member's held job, which is what cupsd
//! itself takes to accept a release (it starts the job's filters before it
//! answers). Each released job is left to complete before the next step.

// The integration tests' support folder (real peers, `tallyd run` in a
// site folder); a bench uses only part of it.
#[allow(dead_code)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use support::daemon::{Daemon, PrinterSpec, Site};
use support::pdf::write_pdf;
use support::peers::Peers;
use support::pty::{rdm6300, Pty};

use ipp::prelude::Operation;
use std::time::{Duration, Instant, SystemTime};
use tallyd::config::PrinterConfig;
use tallyd::printer::client::IppClient;
use tallyd::printer::requests::{job_request, JobsQuery, Which};

const ROUNDS: usize = 100;
const WAIT: Duration = Duration::from_secs(20);
const HELD: i32 = 4;
const COMPLETED: i32 = 9;

fn main() {
    let peers = Peers::new();
    let cupsd = peers.cupsd_quiet();
    cupsd.add_queue("held", "file:///dev/null", true);
    let site = Site::new(&[]);
    let desk = Pty::start(site.dir(), "desk");
    let printer = PrinterSpec::held("held", &cupsd.queue_uri("held"), "5s", "4h");
    site.write_config_with(
        &[printer],
        &format!(
            "\n[[readers]]\nid = \"desk\"\ndevice = \"{}\"\nframing = \"rdm6300\"\nprinter = \"held\"\ndebounce = \"10ms\"\n",
            desk.reader.display()
        ),
    );
    let cfg = tallyd::config::Config::load(&site.path("tallyd.toml")).expect("config");
    let held = &cfg.printers[0];
    let mut daemon = site.start_as("json");
    daemon.wait_log("tallyd ready", WAIT);
    daemon.wait_log("card reader is up", WAIT);
    let pdf = write_pdf(peers.dir(), "one", 1);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = IppClient::new().expect("client");
    let query = JobsQuery::new(held, Which::NotCompleted).expect("query");
    let (mut taps, mut gets, mut releases) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let alice = cupsd.lp("held", "alice", &pdf, &[]);
        let bob = cupsd.lp("held", "bob@corp.example", &pdf, &[]);
        cupsd.wait_state("held", alice, HELD, WAIT);
        cupsd.wait_state("held", bob, HELD, WAIT);

        let start = Instant::now();
        runtime.block_on(query.fetch(&client)).expect("Get-Jobs");
        gets.push(millis(start.elapsed()));

        taps.push(tap(&daemon, &desk, round));
        cupsd.wait_state("held", alice, COMPLETED, WAIT);

        releases.push(bare_release(&runtime, &client, held, bob));
        cupsd.wait_state("held", bob, COMPLETED, WAIT);
    }
    daemon.stop();

    let (t50, t99) = percentiles(&mut taps);
    let (g50, g99) = percentiles(&mut gets);
    let (r50, r99) = percentiles(&mut releases);
    println!("{ROUNDS} rounds against one cupsd held queue (Generic PDF, file:///dev/null):");
    println!("tap: last byte written -> cupsd accepted Release-Job");
    println!("  p50 {t50:7.2} ms   p99 {t99:7.2} ms");
    println!("floor: bare Get-Jobs round trip");
    println!("  p50 {g50:7.2} ms   p99 {g99:7.2} ms");
    println!("cupsd alone: bare Release-Job round trip");
    println!("  p50 {r50:7.2} ms   p99 {r99:7.2} ms");
    println!(
        "  tap p99 / Get-Jobs p99:      {:6.2}   (goal <= 3)",
        t99 / g99
    );
    println!("  Release-Job p99 / Get-Jobs p99: {:6.2}", r99 / g99);
    println!("  tap p99 / Release-Job p99:   {:6.2}", t99 / r99);
    println!("  tap p50 - Release-Job p50:   {:6.2} ms", t50 - r50);
}

/// Times one Release-Job sent straight to cupsd.
fn bare_release(
    runtime: &tokio::runtime::Runtime,
    client: &IppClient,
    printer: &PrinterConfig,
    job: u32,
) -> f64 {
    let request = job_request(Operation::ReleaseJob, &printer.uri, job as i32).expect("request");
    let start = Instant::now();
    runtime
        .block_on(client.send(&printer.uri, request, Duration::from_secs(5)))
        .expect("Release-Job");
    millis(start.elapsed())
}

/// Taps alice's card and returns the milliseconds from the last byte written
/// to the timestamp of the daemon's `release` line.
fn tap(daemon: &Daemon, desk: &Pty, round: usize) -> f64 {
    let before = release_lines(&daemon.log()).len();
    desk.write(&rdm6300("14008EC793"));
    let written = SystemTime::now();
    let start = Instant::now();
    let line = loop {
        let log = daemon.log();
        let lines = release_lines(&log);
        if lines.len() > before {
            break lines.last().map(|l| l.to_string()).unwrap_or_default();
        }
        assert!(start.elapsed() < WAIT, "round {round}: no release\n{log}");
        // The latency comes from the line's timestamp, so this poll only needs
        // to be slow enough not to compete with the daemon for the CPU.
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        line.contains("\"jobs\":\"") && !line.contains("\"jobs\":\"\""),
        "round {round}: the tap released nothing: {line}"
    );
    let stamped = timestamp(&line).expect("timestamp in the JSON log line");
    millis(stamped.duration_since(written).unwrap_or(Duration::ZERO))
}

fn release_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("\"message\":\"release\""))
        .collect()
}

/// The `timestamp` of a JSON log line (RFC 3339, UTC).
fn timestamp(line: &str) -> Option<SystemTime> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let ts = chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str()?).ok()?;
    let nanos = ts.timestamp_nanos_opt()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos as u64))
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentiles(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}
