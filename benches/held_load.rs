//! Held load (`cargo bench --bench held_load`): one private cupsd with 20
//! held queues and 100 held jobs in each (2,000, one-page PDFs from
//! `guest` users, so they stay held; PaperCut calls 1,500 held jobs on one
//! server a red flag), and `tallyd run` polling all 20 with the spool
//! analysis on (as it is when `[analysis]` is absent).
//!
//! 1. The analysis backlog: from the daemon's start to its 2,000th `job
//!    analysed` line (one worker, one document at a time).
//! 2. Idle polling, once the backlog is done: the daemon's CPU (utime +
//!    stime from `/proc/PID/stat`) over 60 s of 20 queues polled every 5 s,
//!    as a share of one core and per sweep of the 20 queues. Goal: < 2%.
//! 3. The tap rounds of `benches/release.rs` (see `taps`) at the first
//!    queue, among the 2,000 held jobs, after a restart of the daemon that
//!    polls that queue every second (so each round's jobs are analysed
//!    without a long wait) and the others every 5 s. Goal: the tap's p99
//!    within 1.5x cupsd's own bare `Release-Job` p99 of the same run.
//!
//! `HELD_LOAD_PER_QUEUE`, `HELD_LOAD_IDLE_SECS` and `HELD_LOAD_ROUNDS`
//! shorten it.

// The integration tests' support folder (real peers, `tallyd run` in a
// site folder); a bench uses only part of it.
#[allow(dead_code)]
#[path = "../tests/it/support/mod.rs"]
mod support;
mod taps;

use support::cupsd::Cupsd;
use support::daemon::{PrinterSpec, Site};
use support::pdf::write_pdf;
use support::peers::Peers;
use support::pty::Pty;

use ipp::operation::IppOperation;
use ipp::prelude::{IppOperationBuilder, IppPayload};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tallyd::config::{Config, PrinterConfig};
use tallyd::printer::client::IppClient;
use tallyd::printer::requests::{JobsQuery, Which};
use taps::Tail;

const QUEUES: usize = 20;
/// Print-Jobs in flight while the held jobs are submitted.
const SUBMITTERS: usize = 8;
const SWEEP: &str = "5s";
const SWEEP_SECS: f64 = 5.0;

fn main() {
    let per_queue = setting("HELD_LOAD_PER_QUEUE", 100);
    let idle_secs = setting("HELD_LOAD_IDLE_SECS", 60);
    let rounds = setting("HELD_LOAD_ROUNDS", 100);
    let total = QUEUES * per_queue;

    let peers = Peers::new();
    // cupsd keeps at most 500 jobs by default (MaxJobs), completed ones
    // included (PreserveJobHistory); 0 is no limit.
    let cupsd = peers.cupsd_quiet_with("MaxJobs 0\n");
    let queues: Vec<String> = (0..QUEUES).map(|i| format!("h{i:02}")).collect();
    for q in &queues {
        cupsd.add_queue(q, "file:///dev/null", true);
    }
    let site = Site::new(&[]);
    let desk = Pty::start(site.dir(), "desk");
    write_config(&site, &cupsd, &queues, &desk, SWEEP);
    let cfg = Config::load(&site.path("tallyd.toml")).expect("config");
    assert!(cfg.analysis.enabled, "the spool analysis is on by default");
    let pdf = write_pdf(peers.dir(), "one", 1);

    let submitted = Instant::now();
    submit(&cfg.printers, per_queue, &pdf);
    let held = count_held(&cfg.printers);
    assert_eq!(held, total, "every job held");
    println!(
        "cupsd (MaxJobs 0) with {QUEUES} held queues, {held} held one-page PDFs from guests, \
         submitted in {:.1} s",
        submitted.elapsed().as_secs_f64()
    );

    // 1. The analysis backlog.
    let log = site.path("daemon.log");
    let mut tail = Tail::new(&log);
    let mut daemon = site.start_as("json");
    let started = Instant::now();
    let (analysed, fell_back) = wait_backlog(&mut tail, total);
    let backlog = started.elapsed().as_secs_f64();
    let cpu_backlog = cpu_seconds(daemon.pid());
    println!(
        "analysis backlog: {analysed} analysed, {fell_back} fell back, in {backlog:.1} s \
         ({:.1} jobs/s; daemon CPU {cpu_backlog:.2} s, Ghostscript apart)",
        total as f64 / backlog
    );

    // 2. Idle polling, the backlog done.
    std::thread::sleep(Duration::from_secs(2));
    let (cpu0, t0) = (cpu_seconds(daemon.pid()), Instant::now());
    std::thread::sleep(Duration::from_secs(idle_secs as u64));
    let (cpu1, wall) = (cpu_seconds(daemon.pid()), t0.elapsed().as_secs_f64());
    let rss = daemon.peak_rss_kib();
    let logged = tail.lines();
    daemon.stop();
    let cpu = cpu1 - cpu0;
    let sweeps = wall / SWEEP_SECS;
    println!(
        "daemon idle {wall:.0} s after the backlog, {QUEUES} queues x {per_queue} held jobs \
         every {SWEEP} (~{sweeps:.0} sweeps):"
    );
    println!(
        "  CPU (user+system) {cpu:.2} s = {:.2}% of one core (goal < 2%); \
         {:.1} ms per sweep of {QUEUES} queues; peak RSS {:.1} MiB",
        100.0 * cpu / wall,
        1e3 * cpu / sweeps,
        rss as f64 / 1024.0
    );
    println!("  log lines while idle: {}", logged.len());
    for line in logged.iter().take(3) {
        println!("    {line}");
    }

    // 3. Taps among the held jobs.
    write_config(&site, &cupsd, &queues, &desk, "1s");
    let mut daemon = site.start_as("json");
    daemon.wait_log("tallyd ready", taps::WAIT);
    daemon.wait_log("card reader is up", taps::WAIT);
    // Let the first sweep (and the worker's check that every job is
    // already analysed) pass before the first round.
    std::thread::sleep(Duration::from_secs(6));
    let bench = taps::Bench {
        cupsd: &cupsd,
        printer: &cfg.printers[0],
        log: &log,
        desk: &desk,
        pdf: &pdf,
    };
    let mut figures = bench.run(rounds);
    daemon.stop();
    figures.print(&format!(
        "queue h00 of one cupsd holding {total} jobs in {QUEUES} held queues, all polled, analysis on"
    ));
}

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The 20 held queues (the first, `h00`, polled every `first_poll`, the
/// others every [`SWEEP`]) and alice's reader at `h00`.
fn write_config(
    site: &Site,
    cupsd: &Cupsd,
    queues: &[String],
    desk: &Pty,
    first_poll: &'static str,
) {
    let printers: Vec<PrinterSpec> = queues
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let poll = if i == 0 { first_poll } else { SWEEP };
            PrinterSpec::held(q, &cupsd.queue_uri(q), poll, "4h")
        })
        .collect();
    site.write_config_with(
        &printers,
        &format!(
            "\n[[readers]]\nid = \"desk\"\ndevice = \"{}\"\nframing = \"rdm6300\"\nprinter = \"{}\"\ndebounce = \"10ms\"\n",
            desk.reader.display(),
            queues[0]
        ),
    );
}

/// Submits `per_queue` one-page PDFs to each printer with IPP Print-Job,
/// [`SUBMITTERS`] at a time, from ten guest users no member prints as.
fn submit(printers: &[PrinterConfig], per_queue: usize, pdf: &Path) {
    let document = bytes::Bytes::from(std::fs::read(pdf).expect("read the PDF"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let client = IppClient::new().expect("client");
    let limit = Arc::new(tokio::sync::Semaphore::new(SUBMITTERS));
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for n in 0..per_queue {
            for p in printers {
                let (client, limit, document) = (client.clone(), limit.clone(), document.clone());
                let uri = p.uri.clone();
                let user = format!("guest{}", n % 10);
                tasks.push(tokio::spawn(async move {
                    let _slot = limit.acquire().await.expect("semaphore");
                    print_job(&client, &uri, &user, document).await;
                }));
            }
        }
        for t in tasks {
            t.await.expect("submitter");
        }
    });
}

async fn print_job(client: &IppClient, uri: &str, user: &str, document: bytes::Bytes) {
    let request = IppOperationBuilder::print_job(uri.parse().expect("uri"), IppPayload::empty())
        .user_name(user)
        .job_title("held-load")
        .document_format("application/pdf")
        .build()
        .expect("Print-Job")
        .into_ipp_request();
    let mut body = request.to_bytes().to_vec();
    body.extend_from_slice(&document);
    let url = tallyd::ipp_uri::http_url(uri).expect("http url");
    client
        .send_encoded(&url, body.into(), Duration::from_secs(30))
        .await
        .expect("Print-Job accepted");
}

/// Held jobs across all printers, by Get-Jobs (not-completed).
fn count_held(printers: &[PrinterConfig]) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = IppClient::new().expect("client");
    printers
        .iter()
        .map(|p| {
            let query = JobsQuery::new(p, Which::NotCompleted).expect("query");
            let jobs = runtime.block_on(query.fetch(&client)).expect("Get-Jobs");
            jobs.iter()
                .filter(|j| j.state == tallyd::printer::jobs::PENDING_HELD)
                .count()
        })
        .sum()
}

/// Waits until `total` jobs have an analysis line; returns how many were
/// analysed and how many fell back.
fn wait_backlog(tail: &mut Tail, total: usize) -> (usize, usize) {
    let limit = Duration::from_secs(3600);
    let start = Instant::now();
    let (mut analysed, mut fell_back) = (0, 0);
    let mut reported = 0;
    while analysed + fell_back < total {
        for line in tail.lines() {
            if line.contains("\"message\":\"job analysed\"") {
                analysed += 1;
            } else if taps::not_analysed(&line) {
                fell_back += 1;
            }
        }
        if start.elapsed().as_secs() >= reported + 60 {
            reported = start.elapsed().as_secs();
            eprintln!(
                "  ... {} of {total} analysed after {reported} s",
                analysed + fell_back
            );
        }
        assert!(start.elapsed() < limit, "backlog not done after {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    (analysed, fell_back)
}

/// utime + stime of a process in seconds, from /proc/PID/stat.
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
