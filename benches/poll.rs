//! Polling benchmark (`cargo bench --bench poll`):
//!
//! 1. One private cupsd with 100 queues, each holding completed jobs. Time one
//!    full sweep of all 100 by the daemon's poller (concurrently, as the
//!    daemon's tasks run) and, in the same run, 100 Get-Jobs sent one after
//!    another by the same code. Goal: sweep / sequential under 0.5.
//! 2. `tallyd run` idle for 60 s with 10 printers polled every 5 s: its peak
//!    RSS and CPU time. Goals: under 20 MiB, under 1 s of CPU. Then the
//!    same with `[http]` on and `/metrics` and `/healthz` fetched every
//!    15 s, as a Prometheus server and a health checker would: goal, under
//!    1 MiB more peak RSS, and the same goals.
//!
//! Set `POLL_BENCH_IDLE_SECS` to shorten the idle runs, and
//! `POLL_BENCH_IDLE_ONLY=1` to skip part 1.

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
    if std::env::var("POLL_BENCH_IDLE_ONLY").is_ok_and(|v| v == "1") {
        return idle_with_and_without_http(&peers);
    }
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

    idle_with_and_without_http(&peers);
}

fn idle_with_and_without_http(peers: &Peers) {
    let (rss, _) = idle(peers, None);
    let port = support::process::free_port();
    let (with_http, _) = idle(peers, Some(port));
    println!(
        "  [http] adds:        {:6.2} MiB peak RSS   (goal < 1 MiB)",
        (with_http as f64 - rss as f64) / 1024.0
    );
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

/// `tallyd run` with 10 printers at 5 s intervals, idle; with `[http]` on
/// `http` (scraped every 15 s) when given. Its peak RSS (KiB) and CPU time.
fn idle(peers: &Peers, http: Option<u16>) -> (u64, f64) {
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
    if let Some(port) = http {
        site.write_config_with(
            &specs,
            &format!("\n[http]\nlisten = \"127.0.0.1:{port}\"\n"),
        );
    }
    let mut daemon = site.start();
    daemon.wait_ready();
    let start = Instant::now();
    let mut scrapes = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        if let Some(port) = http {
            let samples = support::http::scrape(port).samples.len();
            assert!(samples > 10, "{samples} samples");
            support::http::get(port, "/healthz");
            scrapes += 1;
        }
        let left = Duration::from_secs(secs).saturating_sub(start.elapsed());
        std::thread::sleep(left.min(Duration::from_secs(15)));
    }
    let rss = daemon.peak_rss_kib();
    let cpu = cpu_seconds(daemon.pid());
    let polls = 10 * (secs / 5 + 1);
    daemon.stop();
    match http {
        None => println!("daemon idle {secs} s, 10 printers every 5 s (~{polls} polls), no [http]:"),
        Some(_) => println!(
            "daemon idle {secs} s, 10 printers every 5 s (~{polls} polls), [http] on, {scrapes} scrapes of /metrics and /healthz:"
        ),
    }
    println!(
        "  peak RSS (VmHWM):  {:6.1} MiB   (goal < 20 MiB)",
        rss as f64 / 1024.0
    );
    println!("  CPU time (user+system): {cpu:6.3} s  (goal < 1 s)");
    (rss, cpu)
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
