//! Polling benchmark (`cargo bench --bench poll`):
//!
//! 1. One private cupsd with 100 queues, each holding completed jobs. Time one
//!    full sweep of all 100 by the daemon's poller (concurrently, as the
//!    daemon's tasks run) and, in the same run, 100 Get-Jobs sent one after
//!    another by the same code. Goal: sweep / sequential under 0.5.
//! 2. `tallyd run` idle for 60 s with 10 printers polled every 5 s: its peak
//!    RSS and CPU time. Goals: under 20 MiB, under 1 s of CPU.
//!
//! Set `POLL_BENCH_IDLE_SECS` to shorten the idle run.

// The integration tests' support folder (real peers, `tallyd run` in a
// site folder); a bench uses only part of it.
#[allow(dead_code)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use support::daemon::{PrinterSpec, Site};
use support::pdf::write_pdf;
use support::peers::Peers;

use std::time::{Duration, Instant};
use tallyd::config::{Mode, PrinterConfig};
use tallyd::printer::client::IppClient;
use tallyd::printer::requests::{JobsQuery, Which};

const QUEUES: usize = 100;
const ROUNDS: usize = 7;

fn main() {
    let peers = Peers::new();
    let cupsd = peers.cupsd_quiet();
    let pdf = write_pdf(peers.dir(), "doc", 2);
    let setup = Instant::now();
    let mut printers = Vec::new();
    for i in 0..QUEUES {
        let name = format!("q{i:03}");
        cupsd.add_queue(&name, "file:///dev/null", false);
        printers.push(printer(&name, &cupsd.queue_uri(&name)));
    }
    let mut last = (String::new(), 0);
    for (i, p) in printers.iter().enumerate() {
        for user in ["alice", "bob"] {
            last = (p.id.clone(), cupsd.lp(&p.id, user, &pdf, &[]));
        }
        if i % 20 == 19 {
            cupsd.wait_state(&last.0, last.1, 9, Duration::from_secs(60));
        }
    }
    cupsd.wait_state(&last.0, last.1, 9, Duration::from_secs(60));
    println!(
        "cupsd with {QUEUES} queues, 2 completed jobs each, set up in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let client = IppClient::new().expect("client");
    let mut sweeps = Vec::new();
    let mut sequential = Vec::new();
    for _ in 0..ROUNDS {
        sweeps.push(runtime.block_on(sweep(&client, &printers)));
        sequential.push(runtime.block_on(one_by_one(&client, &printers)));
    }
    let (sweep_ms, seq_ms) = (median(&mut sweeps), median(&mut sequential));
    println!("one sweep of {QUEUES} queues, concurrent (median of {ROUNDS}): {sweep_ms:8.1} ms");
    println!("{QUEUES} Get-Jobs one after another (median of {ROUNDS}):    {seq_ms:8.1} ms");
    println!(
        "  sweep / sequential:                           {:8.2}   (goal < 0.5)",
        sweep_ms / seq_ms
    );
    drop(cupsd);

    idle(&peers);
}

fn printer(id: &str, uri: &str) -> PrinterConfig {
    let prices = toml::from_str(
        "default_media = \"a4\"\n[media.a4]\nmono = { one_sided = 10, two_sided = 8 }\ncolour = { one_sided = 40, two_sided = 35 }\n",
    )
    .expect("prices");
    PrinterConfig {
        id: id.into(),
        uri: uri.into(),
        mode: Mode::Direct,
        prices,
        poll_interval: Duration::from_secs(5),
        timeout: Duration::from_secs(10),
        colour_default: false,
        page_estimate: 5,
        hold_timeout: Duration::from_secs(3600),
        max_job_impressions: 2000,
        release_to: Vec::new(),
        trust: tallyd::tls::Trust::System,
    }
}

/// All printers at once, one task each, as the daemon polls them.
async fn sweep(client: &IppClient, printers: &[PrinterConfig]) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = printers
        .iter()
        .map(|p| {
            let c = client.clone();
            let query = JobsQuery::new(p, Which::Completed).expect("query");
            tokio::spawn(async move { query.fetch(&c).await })
        })
        .collect();
    for t in tasks {
        let jobs = t.await.expect("task").expect("Get-Jobs");
        assert_eq!(jobs.len(), 2);
    }
    start.elapsed().as_secs_f64() * 1e3
}

async fn one_by_one(client: &IppClient, printers: &[PrinterConfig]) -> f64 {
    let start = Instant::now();
    for p in printers {
        let query = JobsQuery::new(p, Which::Completed).expect("query");
        let jobs = query.fetch(client).await.expect("Get-Jobs");
        assert_eq!(jobs.len(), 2);
    }
    start.elapsed().as_secs_f64() * 1e3
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `tallyd run` with 10 printers at 5 s intervals, idle.
fn idle(peers: &Peers) {
    let secs: u64 = std::env::var("POLL_BENCH_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let cupsd = peers.cupsd_quiet();
    let mut specs = Vec::new();
    for i in 0..10 {
        let name = format!("idle{i}");
        cupsd.add_queue(&name, "file:///dev/null", false);
        specs.push(PrinterSpec::direct(&name, &cupsd.queue_uri(&name), "5s"));
    }
    let site = Site::new(&specs);
    let mut daemon = site.start();
    daemon.wait_ready();
    std::thread::sleep(Duration::from_secs(secs));
    let rss = daemon.peak_rss_kib();
    let cpu = cpu_seconds(daemon.pid());
    let polls = 10 * (secs / 5 + 1);
    daemon.stop();
    println!("daemon idle {secs} s, 10 printers every 5 s (~{polls} polls):");
    println!(
        "  peak RSS (VmHWM):  {:6.1} MiB   (goal < 20 MiB)",
        rss as f64 / 1024.0
    );
    println!("  CPU time (user+system): {cpu:6.3} s  (goal < 1 s)");
}

/// utime + stime of a process, from /proc/PID/stat.
fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}
