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

/// The site's manual grants (`tallyd grant`), which no grants file holds,
/// become chain lots at the import, once each; the centre must be reached
/// then, and must know their members, or nothing is imported. The usages
/// shipped after draw on them. A site whose lots the centre issues refuses
/// a local grant.
#[test]
fn a_joining_sites_manual_grants_become_chain_lots_once() {
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let site = Site::new(&[]);
    site.cli(&["sync"]);
    let desk = [
        "grant",
        "alice",
        "--units",
        "300",
        "--reason",
        "cash at the desk",
        "--key",
        "desk-1",
    ];
    site.cli(&desk);
    let walk_in = [
        "grant", "walkin", "--name", "Walk-in", "--units", "100", "--reason", "day pass", "--key",
        "desk-2",
    ];
    site.cli(&walk_in);
    charge(&site, "k1", 10);
    join_chain(&site, &url, "ber-9", 3, "");
    let adjustments = "SELECT count(*) FROM lots WHERE source = 'adjustment'";

    // The centre down: nothing imported.
    let down = site.cli_fails(&["central", "import"]);
    assert!(down.contains("nothing was imported"), "{down}");

    // The chain's grants file lacks the walk-in member: refused, naming them.
    let grants = std::fs::read_to_string(site.path("grants.toml")).expect("grants");
    let central = Central::start_with_grants(&pg, port, &grants);
    let unknown = site.cli_fails(&["central", "import"]);
    assert!(
        unknown.contains("has no member walkin") && unknown.contains("nothing was imported"),
        "{unknown}"
    );
    assert_eq!(pg.count(adjustments), 0);

    // Added there: both grants become chain lots, once.
    central.write_grants(&format!(
        "{grants}\n[[member]]\nid = \"walkin\"\nname = \"Walk-in\"\n"
    ));
    wait_for("the centre knows walkin", Duration::from_secs(20), || {
        pg.count("SELECT count(*) FROM members WHERE id = 'walkin'") == 1
    });
    let said = site.cli(&["central", "import"]);
    assert!(
        said.contains("2 manual grants made chain credit (0 were already)")
            && said.contains("imported 1 entries"),
        "{said}"
    );
    let again = site.cli(&["central", "import"]);
    assert!(
        again.contains("0 manual grants made chain credit (2 were already)"),
        "{again}"
    );
    assert_eq!(
        pg.query(
            "SELECT string_agg(member_id || ' ' || source_key || ' ' || granted, ', ' ORDER BY source_key)
             FROM lots WHERE source = 'adjustment'"
        ),
        "alice site:ber-9:adjustment:desk-1 300, walkin site:ber-9:adjustment:desk-2 100"
    );
    assert!(pg
        .query("SELECT note FROM lot_history h JOIN lots l ON l.id = h.lot_id WHERE l.source_key = 'site:ber-9:adjustment:desk-1'")
        .contains("cash at the desk (granted at site ber-9)"));

    // Shipped, alice's usage draws on the chain's credit: nothing owed.
    let mut daemon = site.start();
    daemon.wait_ready();
    wait_for("the usage applied", Duration::from_secs(30), || {
        outbox(&site) == (1, 1, 1)
    });
    daemon.stop();
    assert_eq!(
        pg.count("SELECT COALESCE(sum(amount), 0) FROM central_overage"),
        0
    );
    assert_eq!(
        pg.count("SELECT -sum(delta) FROM lot_history h JOIN usages u ON u.id = h.usage_id"),
        10
    );

    assert_eq!(
        pg.count("SELECT count(*) FROM lots WHERE source = 'adjustment' AND voided_at IS NULL"),
        2,
        "the centre's grants sync leaves them be"
    );

    // A site whose lots the centre issues grants nothing of its own.
    let escrow = Site::new(&[]);
    join_chain(&escrow, &url, "ber-8", 3, "issue = \"central\"\n");
    let refused = escrow.cli_fails(&desk);
    assert!(
        refused.contains("grant it in the chain's grants file"),
        "{refused}"
    );
    drop(central);
}
