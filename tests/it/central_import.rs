//! `tallyd central import` (issue 18): a single-site ledger with history
//! joins a chain at a period boundary, and the centre counts every usage,
//! resolution and refund of that history once, at its final amount.

use super::central::{charge, join_chain, outbox, wait_for};
use crate::support::daemon::Site;
use crate::support::postgres::{Central, Postgres};
use crate::support::process::free_port;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tallyd::ledger::usage::{Origin, Payable, UsageRequest};
use tallyd::ledger::Ledger;

/// A held print settled below its hold, and one voided, written the way
/// the held-release path writes them (the ledger's own operations).
fn holds(site: &Site) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let hold = |key: &str, amount| UsageRequest {
        key: key.into(),
        member: Some("alice".into()),
        origin: Origin::Manual,
        payable: Payable::Printing,
        amount,
        detail: "{}".into(),
        at: now,
    };
    let mut ledger =
        Ledger::open(&site.path("ledger.db"), tallyd::ledger::Site::default()).expect("open");
    ledger.hold(&hold("held:1", 50)).expect("hold");
    ledger.settle("held:1", 30, "{}", now).expect("settle");
    ledger.hold(&hold("held:2", 40)).expect("hold");
    ledger.void("held:2", "cancelled", now).expect("void");
}

#[test]
fn a_single_site_ledger_joins_the_chain_with_its_history_counted_once() {
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let port = free_port();
    // A period of single-site history, before `[central]`.
    let site = Site::new(&[]);
    site.cli(&["sync"]);
    charge(&site, "k1", 10);
    charge(&site, "k2", 20);
    charge(&site, "k3", 30);
    site.cli(&["refund", "manual:k2", "--reason", "jammed"]);
    holds(&site);

    // The cut-over: `[central]`, then the import, before the daemon starts.
    join_chain(&site, &format!("http://127.0.0.1:{port}"), "ber-9", 3, "");
    let said = site.cli(&["central", "import"]);
    assert!(said.contains("imported 8 entries"), "{said}");
    assert_eq!(outbox(&site), (1, 0, 8), "8 entries wait");
    let again = site.cli(&["central", "import"]);
    assert!(again.contains("nothing to import"), "{again}");
    assert_eq!(outbox(&site), (1, 0, 8), "a second import adds nothing");

    let central = Central::start(&pg, port);
    let mut daemon = site.start();
    daemon.wait_ready();
    let refused = site.cli_fails(&["central", "import"]);
    assert!(
        refused.contains("in use by another `tallyd run`"),
        "{refused}"
    );
    wait_for("the history applied", Duration::from_secs(30), || {
        outbox(&site) == (1, 8, 8)
    });
    let finals = "SELECT string_agg(key || '=' || amount || (CASE WHEN refunded THEN ' refunded' ELSE '' END), ', ' ORDER BY key) FROM usage_final WHERE site_id = 'ber-9'";
    assert_eq!(
        pg.query(finals),
        "held:1=30, held:2=0, manual:k1=10, manual:k2=20 refunded, manual:k3=30"
    );
    assert_eq!(pg.count("SELECT count(*) FROM journal"), 8);
    assert_eq!(pg.count("SELECT count(*) FROM ingest_conflicts"), 0);

    // Newer usages follow, and an import after shipping adds nothing.
    charge(&site, "k4", 5);
    wait_for("the newer usage", Duration::from_secs(10), || {
        outbox(&site) == (1, 9, 9)
    });
    daemon.stop();
    let after = site.cli(&["central", "import"]);
    assert!(after.contains("nothing to import"), "{after}");
    assert_eq!(outbox(&site), (1, 9, 9));
    assert_eq!(pg.count("SELECT count(*) FROM usages"), 6);
    drop(central);
}
