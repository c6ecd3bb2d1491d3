//! `tallyd report --central` (issue 18): a site's manager asks the centre
//! for the chain's monthly usage, with the site's token; two sites ship to
//! a real PostgreSQL.

use super::central::{chain_site, outbox, wait_for};
use crate::support::daemon::Site;
use crate::support::postgres::{Central, Postgres};
use crate::support::process::free_port;
use std::time::Duration;

fn charge_as(site: &Site, member: &str, key: &str, units: i64) {
    let units = units.to_string();
    let args = [
        "charge", member, "--units", &units, "--reason", "copier", "--key", key,
    ];
    site.cli(&args);
}

#[test]
fn a_site_reads_the_chains_month_by_member_and_by_site_from_the_centre() {
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let port = free_port();
    let central = Central::start(&pg, port);
    let ber1 = chain_site(port, "ber-1", 500);
    let ber2 = chain_site(port, "ber-2", 500);
    let mut d1 = ber1.start();
    let mut d2 = ber2.start();
    d1.wait_ready();
    d2.wait_ready();
    charge_as(&ber1, "alice", "k1", 10);
    charge_as(&ber1, "bob", "k2", 20);
    ber1.cli(&["refund", "manual:k2", "--reason", "jammed"]);
    charge_as(&ber2, "alice", "k1", 30); // the same key at another site
    charge_as(&ber2, "carol", "k3", 40);
    wait_for("both sites shipped", Duration::from_secs(30), || {
        outbox(&ber1) == (1, 3, 3) && outbox(&ber2) == (1, 2, 2)
    });
    let month = chrono::Utc::now().format("%Y-%m").to_string();

    let json = ber1.cli(&["--json", "report", "--central", "--month", &month]);
    let rows: serde_json::Value = serde_json::from_str(&json).expect("json");
    let got: Vec<(String, i64, i64, i64)> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["key"].as_str().expect("key").to_string(),
                r["usages"].as_i64().expect("usages"),
                r["printing_cents"].as_i64().expect("cents"),
                r["refunds"].as_i64().expect("refunds"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("alice".to_string(), 2, 40, 0),
            ("bob".to_string(), 1, 0, 1),
            ("carol".to_string(), 1, 40, 0),
        ]
    );
    let csv = ber2.cli(&[
        "--csv",
        "report",
        "--central",
        "--month",
        &month,
        "--by",
        "site",
    ]);
    assert_eq!(
        csv,
        "site,usages,printing_cents,minutes,open_holds,refunds\nber-1,2,10,0,0,1\nber-2,2,70,0,0,0\n"
    );
    let table = ber1.cli(&["report", "--central", "--month", &month]);
    assert!(
        table.contains(&format!("Usage in {month} across the chain by member")),
        "{table}"
    );
    let empty = ber1.cli(&["report", "--central", "--month", "2020-01"]);
    assert!(empty.contains("(no usage this month)"), "{empty}");

    // Only with a site's own token, and only across the chain by member or site.
    std::fs::write(ber2.path("central.token"), "not-the-token\n").expect("token");
    let refused = ber2.cli_fails(&["report", "--central", "--month", &month]);
    assert!(refused.contains("refused this site's token"), "{refused}");
    let local = ber1.cli_fails(&["report", "--month", &month, "--by", "site"]);
    assert!(local.contains("--by site needs --central"), "{local}");
    d1.stop();
    d2.stop();
    drop(central);
}
