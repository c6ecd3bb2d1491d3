//! One bad job never blocks a printer (issue 11, point 6). A printer's job
//! list is read a page at a time, so the daemon's memory stays bounded with
//! 20,000 finished jobs at one printer; a job whose record cannot be read
//! (a `job-name` longer than IPP allows, a record too large to send) goes to
//! the review queue with why, every other job is charged, and the printer is
//! never logged down for it; and a real cupsd, which lists a 300-byte job
//! name after `lp -t`, does the same.

use crate::support;
use crate::support::daemon::{lines_with, PrinterSpec, Site};
use crate::support::ipp_server::{JobServer, ServedJob};
use crate::support::pdf::write_pdf;
use crate::support::peers::Peers;

use rusqlite::{Connection, OpenFlags};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Print user names of alice, bob and carol (see `support::daemon::GRANTS`).
const USERS: [&str; 3] = ["alice", "bob@corp.example", "CORP\\carol"];

/// (usages, distinct keys) recorded for `printer`.
fn charged(site: &Site, printer: &str) -> (i64, i64) {
    let Ok(conn) =
        Connection::open_with_flags(site.path("ledger.db"), OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return (0, 0);
    };
    conn.query_row(
        "SELECT count(*), count(DISTINCT key) FROM usages WHERE printer = ?1",
        [printer],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap_or((0, 0))
}

/// Waits until `printer` has `n` usages; returns how long that took.
fn wait_charged(site: &Site, printer: &str, n: i64, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (got, _) = charged(site, printer);
        if got >= n {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{printer}: {got} of {n} jobs charged after {limit:?}\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until the server has answered `more` Get-Jobs more than `from`.
fn wait_requests(server: &JobServer, from: usize, more: usize, limit: Duration) {
    let start = Instant::now();
    while server.served.requests.load(Ordering::SeqCst) < from + more {
        assert!(
            start.elapsed() < limit,
            "{more} more Get-Jobs within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Open reviews, from `tallyd --json review`.
fn reviews(site: &Site) -> Vec<serde_json::Value> {
    let out = site.cli(&["--json", "review"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("review json");
    v.as_array().expect("a list").clone()
}

fn review_of<'a>(reviews: &'a [serde_json::Value], key: &str) -> &'a serde_json::Value {
    reviews
        .iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no review for {key} in {reviews:?}"))
}

#[test]
fn twenty_thousand_jobs_at_one_printer_are_charged_once_in_bounded_memory() {
    let _serial = support::serial();
    // Newest first, as cupsd lists finished jobs: 1 impression each, 10c.
    let jobs = (1..=20_000)
        .rev()
        .map(|id| ServedJob::completed(id, USERS[id as usize % 3], 1))
        .collect();
    let server = JobServer::start(jobs);
    let mut printer = PrinterSpec::direct("busy", &server.uri(), "1s");
    printer.timeout = "5s";
    let site = Site::new(&[printer]);
    let mut daemon = site.start();
    daemon.wait_ready();

    let took = wait_charged(&site, "busy", 20_000, Duration::from_secs(120));
    // Two more whole walks (41 pages each) charge nothing again.
    let asked = server.served.requests.load(Ordering::SeqCst);
    wait_requests(&server, asked, 2 * 41, Duration::from_secs(30));
    assert_eq!(charged(&site, "busy"), (20_000, 20_000));
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let report = site.cli(&["--json", "report", "--month", &month, "--by", "printer"]);
    let rows: serde_json::Value = serde_json::from_str(&report).expect("report json");
    assert_eq!(rows[0]["jobs"], 20_000, "{report}");
    assert_eq!(rows[0]["impressions"], 20_000, "{report}");

    let rss = daemon.peak_rss_kib();
    let served = &server.served;
    let most = served.most_jobs.load(Ordering::SeqCst);
    let requests = served.requests.load(Ordering::SeqCst);
    eprintln!(
        "20,000 jobs charged in {took:?}; daemon peak RSS (VmHWM) {rss} KiB; \
         {requests} Get-Jobs, at most {most} jobs in one answer"
    );
    assert!(rss > 0 && rss < 64 * 1024, "peak RSS {rss} KiB");
    assert!(most <= 500, "pages of at most 500 jobs, saw {most}");
    assert_eq!(
        served.paged.load(Ordering::SeqCst),
        requests,
        "every Get-Jobs is paged"
    );
    let log = daemon.log();
    assert!(!log.contains("printer is down"), "{log}");
    assert_eq!(
        lines_with(&log, &["printer is up", "printer=busy "]).len(),
        1
    );
    daemon.stop();
}

#[test]
fn a_job_whose_record_cannot_be_read_goes_to_review_and_every_other_job_is_charged() {
    // 1,200 jobs, newest first (three pages): job 500 is named with 65,000
    // bytes, job 300's record is 12 MiB (over the 8 MiB response cap).
    let jobs: Vec<ServedJob> = (1..=1200)
        .rev()
        .map(|id| {
            let job = ServedJob::completed(id, USERS[id as usize % 3], 2);
            match id {
                500 => job.named(65_000),
                300 => job.padded(12 << 20),
                _ => job,
            }
        })
        .collect();
    let key = |id: usize| format!("print:shelf:{}", jobs[1200 - id].uuid());
    let (long_name, too_large) = (key(500), key(300));
    let server = JobServer::start(jobs);
    let site = Site::new(&[PrinterSpec::direct("shelf", &server.uri(), "500ms")]);
    let mut daemon = site.start();
    daemon.wait_ready();

    wait_charged(&site, "shelf", 1198, Duration::from_secs(60));
    for key in [&long_name, &too_large] {
        daemon.wait_log(&format!("key={key} "), Duration::from_secs(10));
    }
    // Several more polls: each broken job is set aside once, never charged.
    let asked = server.served.requests.load(Ordering::SeqCst);
    wait_requests(&server, asked, 20, Duration::from_secs(30));
    assert_eq!(charged(&site, "shelf"), (1198, 1198));

    let open = reviews(&site);
    assert_eq!(open.len(), 2, "{open:?}");
    let named = review_of(&open, &long_name);
    assert_eq!(named["job_id"], 500);
    assert_eq!(named["member"], "carol");
    assert_eq!(
        named["reason"],
        "the printer's record of this job cannot be read: \
         job-name: invalid string length: 65000, max: 255"
    );
    assert_eq!(
        named["reported"],
        "job-impressions-completed=2, job-impressions=2, copies=1"
    );
    assert_eq!(named["proposed"], 2);
    let large = review_of(&open, &too_large);
    assert_eq!(large["job_id"], 300);
    assert_eq!(
        large["reason"],
        "the printer's record of this job cannot be read: response larger than 8 MiB"
    );
    let table = site.cli(&["review"]);
    assert!(
        table.contains("job-name: invalid string length: 65000"),
        "{table}"
    );

    let log = daemon.log();
    assert!(!log.contains("printer is down"), "{log}");
    for key in [&long_name, &too_large] {
        let set_aside = lines_with(&log, &["set aside for review", &format!("key={key} ")]);
        assert_eq!(set_aside.len(), 1, "{key} set aside once:\n{log}");
    }
    assert!(daemon.peak_rss_kib() < 64 * 1024);
    daemon.stop();
}

#[test]
fn a_cups_job_titled_with_300_bytes_goes_to_review_and_its_queue_stays_up() {
    let peers = Peers::new();
    let cupsd = peers.cupsd();
    cupsd.add_queue("front", "file:///dev/null", false);
    let site = Site::new(&[PrinterSpec::direct(
        "front",
        &cupsd.queue_uri("front"),
        "500ms",
    )]);
    let mut daemon = site.start();
    daemon.wait_ready();

    let two = write_pdf(peers.dir(), "two", 2);
    let mono = ["-o", "print-color-mode=monochrome"];
    let title = "n".repeat(300);
    cupsd.lp("front", "alice", &two, &mono);
    let long = cupsd.lp(
        "front",
        "bob@corp.example",
        &two,
        &[&mono[..], &["-t", title.as_str()]].concat(),
    );
    cupsd.lp("front", "CORP\\carol", &two, &mono);
    site.wait_usages("front", 2, Duration::from_secs(40));
    daemon.wait_log("set aside for review", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(1200));

    assert_eq!(site.printing_balance("alice"), 980, "{}", daemon.log());
    assert_eq!(site.printing_balance("carol"), 980);
    assert_eq!(site.printing_balance("bob"), 1000, "bob's job is in review");
    let open = reviews(&site);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["job_id"], long);
    assert_eq!(open[0]["member"], "bob");
    assert_eq!(
        open[0]["reason"],
        "the printer's record of this job cannot be read: \
         job-name: invalid string length: 300, max: 255"
    );
    let log = daemon.log();
    assert!(!log.contains("printer is down"), "{log}");
    assert_eq!(
        lines_with(&log, &["set aside for review"]).len(),
        1,
        "{log}"
    );
    daemon.stop();
}
