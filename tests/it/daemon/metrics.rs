//! The HTTP listener of `[http]` on a real daemon: `/metrics` scraped and
//! parsed as the Prometheus text format while real printers charge real
//! jobs, a poller panics and is restarted, a printer and a reader go away,
//! a room session opens; `/healthz`
//! while grants go stale and while another process holds the ledger's write
//! lock; an address in use refuses the start.

use crate::support::daemon::{PrinterSpec, Site};
use crate::support::http::{get, sample, scrape, value, wait_status, wait_value};
use crate::support::pdf::write_pdf;
use crate::support::peers::Peers;
use crate::support::process::free_port;
use crate::support::pty::{rdm6300, Pty};
use prometheus_parse::Value;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
const ALICE: &str = "14008EC793";

fn http(port: u16, extra: &str) -> String {
    format!("\n[http]\nlisten = \"127.0.0.1:{port}\"\n{extra}")
}

fn door(pty: &Pty) -> String {
    format!(
        "\n[[readers]]\nid = \"door\"\ndevice = \"{}\"\nframing = \"rdm6300\"\nresource = \"room-a\"\ndebounce = \"1s\"\n",
        pty.reader.display()
    )
}

#[test]
fn metrics_move_with_real_charges_and_show_printers_and_readers_going_down() {
    let _serial = crate::support::serial();
    let peers = Peers::new();
    let mut eve = peers.eve("lobby");
    let cupsd = peers.cupsd();
    cupsd.add_queue("upstairs", "file:///dev/null", true);
    let site = Site::new(&[]);
    let mut pty = Pty::start(site.dir(), "door");
    let port = free_port();
    site.write_config_with(
        &[
            PrinterSpec::direct("lobby", &eve.uri(), "300ms"),
            PrinterSpec::held("upstairs", &cupsd.queue_uri("upstairs"), "300ms", "4h"),
        ],
        &format!("{}{}", door(&pty), http(port, "")),
    );
    // The lobby's poller panics once (a test hook): one restart counted.
    let mut daemon = site.start_with("journald", &[("TALLYD_TEST_PANIC_PRINTER", "lobby")]);
    daemon.wait_ready();
    daemon.wait_log(
        &format!(
            "HTTP listener started (/metrics, /healthz, /console) listen=127.0.0.1:{port} tls=false"
        ),
        LIMIT,
    );

    let lobby = [("printer", "lobby")];
    wait_value(port, "tallyd_printer_up", &lobby, 1.0, LIMIT);
    wait_value(port, "tallyd_reader_up", &[("reader", "door")], 1.0, LIMIT);
    let first = scrape(port);
    let restarts = [("task", "printer:lobby")];
    assert_eq!(
        value(&first, "tallyd_task_restarts_total", &restarts),
        Some(1.0)
    );
    let build = sample(&first, "tallyd_build_info", &[]).expect("build info");
    assert_eq!(build.labels.get("version"), Some(env!("CARGO_PKG_VERSION")));
    assert!(build
        .labels
        .get("schema")
        .is_some_and(|s| s.parse::<u32>().is_ok()));
    assert_eq!(
        value(&first, "tallyd_grants_syncs_total", &[("result", "ok")]),
        Some(1.0)
    );
    assert!(value(&first, "tallyd_grants_last_success_timestamp_seconds", &[]).is_some());
    assert_eq!(value(&first, "tallyd_room_sessions_open", &[]), Some(0.0));
    // The grants sync committed at least one batch.
    match &sample(&first, "tallyd_ledger_commit_duration_seconds", &[])
        .expect("histogram")
        .value
    {
        Value::Histogram(buckets) => {
            let all = buckets.last().expect("+Inf bucket");
            assert!(
                all.less_than.is_infinite() && all.count >= 1.0,
                "{buckets:?}"
            );
            let counts: Vec<f64> = buckets.iter().map(|b| b.count).collect();
            assert!(counts.is_sorted(), "buckets are cumulative: {buckets:?}");
        }
        other => panic!("not a histogram: {other:?}"),
    }
    let charged = [("printer", "lobby"), ("outcome", "charged")];
    assert_eq!(value(&first, "tallyd_print_jobs_total", &charged), None);

    // alice: 3 mono impressions, 30 cents; mallory is no member: 1
    // impression, 10 cents, unattributed.
    eve.submit("alice", 3);
    eve.submit("mallory", 1);
    site.wait_usages("lobby", 2, LIMIT);
    wait_value(port, "tallyd_print_jobs_total", &charged, 1.0, LIMIT);
    let unattributed = [("printer", "lobby"), ("outcome", "unattributed")];
    wait_value(port, "tallyd_print_jobs_total", &unattributed, 1.0, LIMIT);
    let after = scrape(port);
    assert_eq!(
        value(&after, "tallyd_print_impressions_total", &charged),
        Some(3.0)
    );
    assert_eq!(
        value(&after, "tallyd_print_cents_total", &charged),
        Some(30.0)
    );
    assert_eq!(
        value(&after, "tallyd_print_jobs_total", &unattributed),
        Some(1.0)
    );
    assert_eq!(
        value(&after, "tallyd_print_cents_total", &unattributed),
        Some(10.0)
    );

    // A job held at the held queue, then a room session opened by a tap.
    let pdf = write_pdf(peers.dir(), "two", 2);
    cupsd.lp("upstairs", "alice", &pdf, &[]);
    wait_value(
        port,
        "tallyd_held_jobs",
        &[("printer", "upstairs")],
        1.0,
        LIMIT,
    );
    pty.write(&rdm6300(ALICE));
    daemon.wait_log("session started", LIMIT);
    wait_value(port, "tallyd_room_sessions_open", &[], 1.0, LIMIT);

    // The printer and the reader go away.
    eve.stop();
    wait_value(port, "tallyd_printer_up", &lobby, 0.0, LIMIT);
    pty.unplug();
    wait_value(port, "tallyd_reader_up", &[("reader", "door")], 0.0, LIMIT);
    daemon.stop();
}

#[test]
fn healthz_fails_with_its_reason_while_grants_are_stale_or_the_ledger_cannot_be_written() {
    let _serial = crate::support::serial();
    let site = Site::new(&[]);
    let port = free_port();
    site.write_config_with(&[], &http(port, "grants_max_age = \"2s\"\n"));
    let mut daemon = site.start();
    daemon.wait_ready();
    assert_eq!(get(port, "/healthz"), (200, "ok\n".to_string()));

    // Syncs fail from now on (SIGHUP syncs at once): after 2 s without a
    // good one, unhealthy, saying why.
    std::fs::write(site.path("grants.toml"), "not = [valid").expect("break grants");
    daemon.signal("HUP");
    let why = wait_status(port, "/healthz", 503, LIMIT);
    assert!(why.starts_with("grants: no good sync for "), "{why}");
    assert!(why.contains("(max 2s); last error: "), "{why}");
    assert_eq!(why.lines().count(), 1, "{why}");
    let failed = value(
        &scrape(port),
        "tallyd_grants_syncs_total",
        &[("result", "failed")],
    );
    assert!(failed >= Some(1.0), "{failed:?}");

    // Good again once a sync works.
    std::fs::write(site.path("grants.toml"), crate::support::daemon::GRANTS).expect("grants");
    daemon.signal("HUP");
    wait_status(port, "/healthz", 200, LIMIT);

    // Another process holds the ledger's write lock: the writer cannot
    // answer in time.
    let holder = rusqlite::Connection::open(site.path("ledger.db")).expect("open ledger");
    holder
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("take the write lock");
    let why = wait_status(port, "/healthz", 503, LIMIT);
    assert!(why.starts_with("ledger: the writer "), "{why}");
    holder.execute_batch("ROLLBACK").expect("release");
    drop(holder);
    wait_status(port, "/healthz", 200, LIMIT);
    daemon.stop();
}

#[test]
fn an_http_address_in_use_refuses_the_start_naming_it() {
    let site = Site::new(&[]);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    site.write_config_with(&[], &http(port, ""));
    let mut daemon = site.start();
    assert_ne!(daemon.wait_exit(LIMIT), Some(0));
    let log = daemon.log();
    assert!(
        log.contains(&format!(
            "cannot listen for HTTP on 127.0.0.1:{port}: Address already in use"
        )),
        "{log}"
    );
    assert!(!log.contains("tallyd ready"), "{log}");
}
