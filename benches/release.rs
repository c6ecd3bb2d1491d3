//! Tap-to-release latency (`cargo bench --bench release`): from the moment a
//! tap's last byte is written to the reader's pty to the moment cupsd has
//! accepted `Release-Job` (the daemon's `release` log line, stamped right
//! after cupsd's answer), over 100 taps; and in the same run the round trip
//! of one bare `Get-Jobs` to the same cupsd, as the floor. Goal: p99 within
//! 3x the floor.

#[path = "../tests/daemonctl/mod.rs"]
mod daemonctl;
#[path = "../tests/peers/mod.rs"]
mod peers;

use daemonctl::{rdm6300, PrinterSpec, Pty, Site};
use std::time::{Duration, Instant, SystemTime};
use tallyd::printer::client::IppClient;
use tallyd::printer::jobs::Which;
use tallyd::printer::poller::JobsQuery;

const TAPS: usize = 100;

fn main() {
    let peers = peers::Peers::new();
    let cupsd = peers.cupsd_quiet();
    cupsd.add_queue("held", "file:///dev/null", true);
    let site = Site::new(&[]);
    let desk = Pty::start(site.dir.path(), "desk");
    let printer = PrinterSpec::held("held", &cupsd.queue_uri("held"), "5s", "4h");
    site.write_config_with(
        &[printer],
        &format!(
            "\n[[readers]]\nid = \"desk\"\ndevice = \"{}\"\nframing = \"rdm6300\"\nprinter = \"held\"\ndebounce = \"10ms\"\n",
            desk.reader.display()
        ),
    );
    let mut daemon = site.start_as("json");
    daemon.wait_log("tallyd ready", Duration::from_secs(20));
    daemon.wait_log("card reader is up", Duration::from_secs(20));
    let pdf = peers::write_pdf(peers.dir(), "one", 1);

    let mut latencies = Vec::with_capacity(TAPS);
    for i in 0..TAPS {
        let job = cupsd.lp("held", "alice", &pdf, &[]);
        cupsd.wait_state("held", job, 4, Duration::from_secs(20));
        let before = count_releases(&daemon.log());
        desk.write(&rdm6300("14008EC793"));
        let written = SystemTime::now();
        let start = Instant::now();
        let line = loop {
            let log = daemon.log();
            if count_releases(&log) > before {
                break release_lines(&log)
                    .last()
                    .map(|l| l.to_string())
                    .unwrap_or_default();
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "tap {i}: no release\n{log}"
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        let stamped = timestamp(&line).expect("timestamp in the JSON log line");
        let latency = stamped.duration_since(written).unwrap_or(Duration::ZERO);
        latencies.push(latency.as_secs_f64() * 1e3);
    }
    daemon.stop();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cfg = tallyd::config::Config::load(&site.path("tallyd.toml")).expect("config");
    let query = JobsQuery::new(&cfg.printers[0], Which::NotCompleted).expect("query");
    let client = IppClient::new().expect("client");
    let mut floor = Vec::new();
    for _ in 0..TAPS {
        let start = Instant::now();
        runtime.block_on(query.fetch(&client)).expect("Get-Jobs");
        floor.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let (p50, p99) = percentiles(&mut latencies);
    let (f50, f99) = percentiles(&mut floor);
    println!("{TAPS} taps, last byte written -> cupsd accepted Release-Job:");
    println!("  p50 {p50:7.2} ms   p99 {p99:7.2} ms");
    println!("bare Get-Jobs round trip to the same cupsd (floor), {TAPS} times:");
    println!("  p50 {f50:7.2} ms   p99 {f99:7.2} ms");
    println!("  tap p99 / floor p99: {:5.2}   (goal <= 3)", p99 / f99);
}

fn release_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("\"message\":\"release\""))
        .collect()
}

fn count_releases(log: &str) -> usize {
    release_lines(log).len()
}

/// The `timestamp` of a JSON log line (RFC 3339, UTC).
fn timestamp(line: &str) -> Option<SystemTime> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let ts = chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str()?).ok()?;
    let nanos = ts.timestamp_nanos_opt()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos as u64))
}

fn percentiles(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}
