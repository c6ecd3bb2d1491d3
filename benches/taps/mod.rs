//! Tap-to-release rounds, shared by `benches/release.rs` (one idle held
//! queue) and `benches/held_load.rs` (the same queue among 2,000 held jobs).
//!
//! Each round submits one PDF for alice (the member who taps) and one for
//! bob, waits until both are held and the daemon's spool analysis has logged
//! `job analysed` for both (so the tap meets an analysed job, and the worker
//! is idle while it is timed), then times, in turn and under the same
//! conditions: one bare `Get-Jobs` (the floor); the tap, its RDM6300 frame
//! written at the reader's 9600 baud (one byte every 1.04 ms, as a real
//! reader sends it; `TAP_BURST=1` writes it at once), from its last byte
//! written to the reader's pty to the daemon's `release` line (stamped right
//! after cupsd's answer to `Release-Job`); and one bare `Release-Job` of
//! bob's job, which is what cupsd itself takes to accept a release (it
//! starts the job's filters before it answers). Each released job is left to
//! complete before the next step. The tap and the bare `Release-Job` take
//! turns going first: cupsd answers the first release after the analysis
//! wait (idle for most of a second) about 2 ms slower at the median than
//! one right after a job finished (2.85 ms against 0.84 ms, probed inside
//! the daemon), so a fixed order charged that to the tap.

use crate::support::cupsd::Cupsd;
use crate::support::pty::{rdm6300, Pty};

use ipp::prelude::Operation;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use tallyd::config::PrinterConfig;
use tallyd::printer::client::IppClient;
use tallyd::printer::requests::{job_request, JobsQuery, Which};

pub const WAIT: Duration = Duration::from_secs(30);
const HELD: i32 = 4;
const COMPLETED: i32 = 9;
/// alice's card (see tests/it/support/daemon.rs).
const ALICE_CARD: &str = "14008EC793";

/// What the rounds measured, in milliseconds.
#[derive(Default)]
pub struct Figures {
    pub taps: Vec<f64>,
    pub gets: Vec<f64>,
    pub releases: Vec<f64>,
    /// How long each job waited, after it was held, for its analysis.
    pub analysis_waits: Vec<f64>,
}

/// One held queue, its reader, and the log of the daemon polling it.
pub struct Bench<'a> {
    pub cupsd: &'a Cupsd,
    pub printer: &'a PrinterConfig,
    /// The daemon's log (`daemon.log` in its site folder).
    pub log: &'a Path,
    pub desk: &'a Pty,
    pub pdf: &'a Path,
}

impl Bench<'_> {
    pub fn run(&self, rounds: usize) -> Figures {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = IppClient::new().expect("client");
        let query = JobsQuery::new(self.printer, Which::NotCompleted).expect("query");
        let queue = self.printer.id.as_str();
        let mut f = Figures::default();
        for round in 0..rounds {
            let mut tail = Tail::new(self.log);
            let alice = self.cupsd.lp(queue, "alice", self.pdf, &[]);
            let bob = self.cupsd.lp(queue, "bob@corp.example", self.pdf, &[]);
            self.cupsd.wait_state(queue, alice, HELD, WAIT);
            self.cupsd.wait_state(queue, bob, HELD, WAIT);
            let held = Instant::now();
            let mut waiting = vec![alice, bob];
            while !waiting.is_empty() {
                let line = tail.wait_for(
                    &format!("round {round}: job analysed"),
                    WAIT,
                    |l| waiting.iter().any(|&j| analysed(l, queue, j)),
                    not_analysed,
                );
                waiting.retain(|&j| !analysed(&line, queue, j));
            }
            f.analysis_waits.push(millis(held.elapsed()));

            let start = Instant::now();
            runtime.block_on(query.fetch(&client)).expect("Get-Jobs");
            f.gets.push(millis(start.elapsed()));

            // Which goes first alternates: the first release after the
            // analysis wait meets a cupsd that has been idle for most of a
            // second, the second one a cupsd that just finished a job.
            if round % 2 == 0 {
                f.taps.push(tap(self.log, self.desk, round));
                self.cupsd.wait_state(queue, alice, COMPLETED, WAIT);
            }
            f.releases
                .push(bare_release(&runtime, &client, self.printer, bob));
            self.cupsd.wait_state(queue, bob, COMPLETED, WAIT);
            if round % 2 == 1 {
                f.taps.push(tap(self.log, self.desk, round));
                self.cupsd.wait_state(queue, alice, COMPLETED, WAIT);
            }
        }
        f
    }
}

impl Figures {
    /// The figures as one block; `what` says against which cupsd.
    pub fn print(&mut self, what: &str) {
        let rounds = self.taps.len();
        let (t50, t99) = percentiles(&mut self.taps);
        let (g50, g99) = percentiles(&mut self.gets);
        let (r50, r99) = percentiles(&mut self.releases);
        let (a50, a99) = percentiles(&mut self.analysis_waits);
        println!("{rounds} rounds against {what}:");
        let frame = if burst() {
            "frame written at once, TAP_BURST=1"
        } else {
            "frame at 9600 baud"
        };
        println!(
            "tap: last byte written -> cupsd accepted Release-Job (job analysed first; {frame})"
        );
        println!("  p50 {t50:7.2} ms   p99 {t99:7.2} ms");
        println!("floor: bare Get-Jobs round trip");
        println!("  p50 {g50:7.2} ms   p99 {g99:7.2} ms");
        println!("cupsd alone: bare Release-Job round trip");
        println!("  p50 {r50:7.2} ms   p99 {r99:7.2} ms");
        println!("held -> both jobs analysed (not timed in the tap)");
        println!("  p50 {a50:7.0} ms   p99 {a99:7.0} ms");
        println!("  tap p99 / Get-Jobs p99:         {:6.2}", t99 / g99);
        println!("  Release-Job p99 / Get-Jobs p99: {:6.2}", r99 / g99);
        println!(
            "  tap p99 / Release-Job p99:      {:6.2}   (goal <= 1.5)",
            t99 / r99
        );
        println!("  tap p50 - Release-Job p50:      {:6.2} ms", t50 - r50);
    }
}

/// The daemon's log from a point on, read a piece at a time: with
/// thousands of analysis lines in it, reading it whole every 20 ms would
/// compete with the daemon for the CPU.
pub struct Tail {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl Tail {
    /// From the log's current end.
    pub fn new(path: &Path) -> Tail {
        let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Tail {
            path: path.to_path_buf(),
            offset,
            partial: String::new(),
        }
    }

    /// The whole lines written since the last call.
    pub fn lines(&mut self) -> Vec<String> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let mut bytes = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut bytes).is_err()
        {
            return Vec::new();
        }
        self.offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let Some(end) = self.partial.rfind('\n') else {
            return Vec::new();
        };
        let rest = self.partial.split_off(end + 1);
        let done = std::mem::replace(&mut self.partial, rest);
        done.lines().map(str::to_string).collect()
    }

    /// Waits for a line for which `found` is true, and returns it; panics
    /// after `limit`, or at once on a line for which `fails` is true.
    pub fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        found: impl Fn(&str) -> bool,
        fails: impl Fn(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        loop {
            for line in self.lines() {
                if found(&line) {
                    return line;
                }
                assert!(!fails(&line), "{what}: {line}");
            }
            assert!(start.elapsed() < limit, "no {what} after {limit:?}");
            // Timings come from the lines' timestamps, so this poll only
            // needs to be slow enough not to compete with the daemon.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether `line` is the daemon's `job analysed` line for `job` at `printer`.
pub fn analysed(line: &str, printer: &str, job: u32) -> bool {
    line.contains("\"message\":\"job analysed\"")
        && line.contains(&format!("\"printer\":\"{printer}\""))
        && line.contains(&format!("\"job_id\":{job},"))
}

/// Whether `line` says a job was not analysed (it fell back).
pub fn not_analysed(line: &str) -> bool {
    line.contains("\"message\":\"job not analysed")
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
fn tap(log: &Path, desk: &Pty, round: usize) -> f64 {
    let mut tail = Tail::new(log);
    if burst() {
        desk.write(&rdm6300(ALICE_CARD));
    } else {
        desk.write_at_baud(&rdm6300(ALICE_CARD), 9600);
    }
    let written = SystemTime::now();
    let line = tail.wait_for(
        &format!("round {round}: release"),
        WAIT,
        |l| l.contains("\"message\":\"release\""),
        |_| false,
    );
    assert!(
        line.contains("\"jobs\":\"") && !line.contains("\"jobs\":\"\""),
        "round {round}: the tap released nothing: {line}"
    );
    let stamped = timestamp(&line).expect("timestamp in the JSON log line");
    millis(stamped.duration_since(written).unwrap_or(Duration::ZERO))
}

/// Whether taps write the card's frame at once (`TAP_BURST=1`) rather
/// than at an RDM6300's 9600 baud (about 15 ms a frame).
pub fn burst() -> bool {
    std::env::var_os("TAP_BURST").is_some_and(|v| v == "1")
}

/// The `timestamp` of a JSON log line (RFC 3339, UTC).
fn timestamp(line: &str) -> Option<SystemTime> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let ts = chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str()?).ok()?;
    let nanos = ts.timestamp_nanos_opt()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos as u64))
}

pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentiles(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}
