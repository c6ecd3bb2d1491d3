//! One broken printer never delays another: a healthy ippeveprinter polled
//! beside printers that refuse connections, never answer, answer garbage,
//! HTTP 401 or 500, an IPP error status, or a 64 MiB response.

use crate::support;
use crate::support::daemon::{lines_with, PrinterSpec, Site};
use crate::support::fault::{Fault, FaultServer};
use crate::support::peers::Peers;

use std::time::{Duration, Instant};

#[test]
fn broken_printers_are_logged_once_and_never_delay_the_healthy_one() {
    let _serial = support::serial();
    let peers = Peers::new();
    let mut eve = peers.eve("healthy");
    let faults = [
        ("refuses", Fault::Refuse),
        ("hangs", Fault::Hang),
        ("garbage", Fault::Garbage),
        ("http401", Fault::Http(401)),
        ("http500", Fault::Http(500)),
        ("ipperror", Fault::IppStatus(0x0400)),
        ("huge", Fault::Huge(64 << 20)),
    ];
    let servers: Vec<(&str, FaultServer)> = faults
        .into_iter()
        .map(|(id, f)| (id, FaultServer::start(f)))
        .collect();
    let mut printers = vec![PrinterSpec::direct("healthy", &eve.uri(), "1s")];
    for (id, server) in &servers {
        let mut p = PrinterSpec::direct(id, &server.uri(), "1s");
        p.timeout = "1s";
        printers.push(p);
    }
    let site = Site::new(&printers);
    let mut daemon = site.start();
    daemon.wait_ready();
    for (id, _) in &servers {
        daemon.wait_log(
            &format!("printer is down; retrying with backoff printer={id} "),
            Duration::from_secs(10),
        );
    }

    // With every broken printer failing at once, a job at the healthy one
    // is charged within two poll intervals of completing.
    let job = eve.submit("alice", 3);
    eve.wait_completed(job, Duration::from_secs(10));
    let done = Instant::now();
    site.wait_usages("healthy", 1, Duration::from_secs(10));
    let took = done.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "charged {took:?} after completion"
    );
    assert_eq!(site.printing_balance("alice"), 970);

    // Several more tries at each broken printer (backoff 1 s, 2 s, 4 s ...).
    std::thread::sleep(Duration::from_secs(6));
    let log = daemon.log();
    for (id, server) in &servers {
        let down = lines_with(&log, &["<4>printer is down", &format!("printer={id} ")]);
        assert_eq!(down.len(), 1, "{id} logged down once:\n{log}");
        if !matches!(server.fault, Fault::Refuse) {
            assert!(server.accepted() >= 2, "{id} was tried again");
        }
    }
    let reasons = [
        ("refuses", "cannot connect"),
        ("hangs", "no answer within 1s"),
        ("garbage", "not an IPP response"),
        ("http401", "HTTP status 401"),
        ("http500", "HTTP status 500"),
        ("ipperror", "IPP status"),
        ("huge", "response larger than 8 MiB"),
    ];
    for (id, reason) in reasons {
        let line = lines_with(&log, &["printer is down", &format!("printer={id} ")]);
        assert!(line[0].contains(reason), "{id}: {reason} in {}", line[0]);
    }
    assert!(!log.contains("panicked"), "{log}");
    let rss = daemon.peak_rss_kib();
    assert!(
        rss > 0 && rss < 64 * 1024,
        "peak RSS {rss} KiB stays bounded"
    );

    // The healthy printer goes away and comes back: one line each.
    eve.stop();
    daemon.wait_log(
        "printer is down; retrying with backoff printer=healthy",
        Duration::from_secs(10),
    );
    eve.restart();
    daemon.wait_log("printer is back printer=healthy", Duration::from_secs(70));
    eve.submit("bob@corp.example", 1);
    site.wait_usages("healthy", 2, Duration::from_secs(10));
    let log = daemon.log();
    assert_eq!(
        lines_with(&log, &["printer is down", "printer=healthy "]).len(),
        1,
        "{log}"
    );
    assert_eq!(
        lines_with(&log, &["printer is back", "printer=healthy "]).len(),
        1,
        "{log}"
    );
    daemon.stop();
}
