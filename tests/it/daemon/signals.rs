//! Signals to `tallyd run`: SIGUSR1 logs a status line, SIGHUP reloads the
//! config and the grants file without dropping a job (and refuses a broken
//! config), SIGTERM stops gracefully with exit 0, and a second SIGTERM
//! during a slow shutdown exits at once.

use crate::support::daemon::{lines_with, PrinterSpec, Site};
use crate::support::fault::{Fault, FaultServer};
use crate::support::peers::Peers;

use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn usr1_status_hup_reload_and_term_stop() {
    let peers = Peers::new();
    let one = peers.eve("one");
    let two = peers.eve("two");
    let site = Site::new(&[PrinterSpec::direct("one", &one.uri(), "300ms")]);
    let mut daemon = site.start();
    daemon.wait_ready();
    one.submit("alice", 2);
    site.wait_usages("one", 1, LIMIT);
    // The count the status line reads moves after the charge's line.
    daemon.wait_log("<6>charge member=alice", LIMIT);

    daemon.signal("USR1");
    daemon.wait_log("<6>status ", LIMIT);
    let status = lines_with(&daemon.log(), &["<6>status "]).join("\n");
    for part in [
        "printers_up=1",
        "printers_down=0",
        "jobs_charged=1",
        "one=up",
    ] {
        assert!(status.contains(part), "{part} in {status}");
    }

    // Reload: a second printer and a bigger account grant for alice, while
    // jobs keep arriving at the first printer.
    one.submit("alice", 1);
    site.write_config(&[
        PrinterSpec::direct("one", &one.uri(), "300ms"),
        PrinterSpec::direct("two", &two.uri(), "300ms"),
    ]);
    let grants = std::fs::read_to_string(site.path("grants.toml")).expect("grants");
    let grants = grants.replacen("amount = 1000", "amount = 1500", 1);
    std::fs::write(site.path("grants.toml"), grants).expect("write grants");
    daemon.signal("HUP");
    daemon.wait_log("config reloaded", LIMIT);
    daemon.wait_log("adjusted=1", LIMIT);
    let reload = lines_with(&daemon.log(), &["config reloaded"]).join("");
    assert!(reload.contains("added=two"), "{reload}");
    two.submit("bob@corp.example", 4);
    site.wait_usages("two", 1, LIMIT);
    site.wait_usages("one", 2, LIMIT);
    assert_eq!(site.printing_balance("alice"), 1500 - 30);
    assert_eq!(site.printing_balance("bob"), 1000 - 40);
    // The first printer was not restarted: it came up once.
    assert_eq!(
        lines_with(&daemon.log(), &["printer is up", "printer=one "]).len(),
        1
    );

    // A broken config is refused; the running one stays in force.
    std::fs::write(
        site.path("tallyd.toml"),
        "[site]\ntimezone = \"Nowhere/Void\"\n",
    )
    .expect("break config");
    daemon.signal("HUP");
    daemon.wait_log("reload refused", LIMIT);
    let refused = lines_with(&daemon.log(), &["reload refused"]).join("");
    assert!(refused.contains("site.timezone"), "{refused}");
    one.submit("carol@corp.example", 1);
    site.wait_usages("one", 3, LIMIT);

    daemon.stop();
    assert!(daemon.log().contains("tallyd stopped"));
    // The ledger is whole: the CLI opens it (which checks every lot).
    site.write_config(&[PrinterSpec::direct("one", &one.uri(), "300ms")]);
    assert_eq!(site.printing_balance("carol"), 1000 - 10);
}

#[test]
fn a_second_term_during_a_slow_shutdown_exits_at_once() {
    let peers = Peers::new();
    let eve = peers.eve("p");
    let site = Site::new(&[PrinterSpec::direct("p", &eve.uri(), "300ms")]);
    let mut daemon = site.start();
    daemon.wait_ready();
    eve.submit("alice", 1);
    site.wait_usages("p", 1, LIMIT);

    // Point the grants at a server that never answers and reload: the
    // syncer is then waiting on it, which a graceful stop waits for.
    let hang = FaultServer::start(Fault::Hang);
    let config = std::fs::read_to_string(site.path("tallyd.toml")).expect("config");
    let config = config.replace(
        "source = \"grants.toml\"\ninterval = \"1h\"\ntimeout = \"5s\"",
        &format!(
            "source = \"http://127.0.0.1:{}/grants.toml\"\ninterval = \"1h\"\ntimeout = \"8s\"",
            hang.port
        ),
    );
    std::fs::write(site.path("tallyd.toml"), config).expect("write config");
    daemon.signal("HUP");
    daemon.wait_log("config reloaded", LIMIT);
    let waited = Instant::now();
    while hang.accepted() == 0 {
        assert!(waited.elapsed() < LIMIT, "the syncer never asked");
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon.signal("TERM");
    daemon.wait_log("stopping", LIMIT);
    std::thread::sleep(Duration::from_millis(300));
    let second = Instant::now();
    daemon.signal("TERM");
    let code = daemon.wait_exit(Duration::from_secs(5));
    assert!(
        second.elapsed() < Duration::from_secs(2),
        "{:?}",
        second.elapsed()
    );
    assert_eq!(code, Some(1), "{}", daemon.log());
    assert!(daemon.log().contains("second stop signal"));
    // Nothing half-written: the ledger opens and verifies, the charge is there.
    assert_eq!(site.printing_balance("alice"), 990);
}
