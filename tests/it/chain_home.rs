//! The home site (issue 18, multi-site.md 3.5): a member's `home_site` in
//! the grants file may hold all of their unescrowed credit in escrow; any
//! other site at most the centre's `escrow_share` (50%). A real
//! PostgreSQL, `tallyd central`, and two site daemons.

use super::central::{join_chain, outbox, wait_for};
use crate::support::daemon::{Site, CATALOG};
use crate::support::postgres::{Central, Postgres};
use crate::support::process::free_port;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// fay: at home at ber-1, 1,000 cents for the chain.
fn grants() -> String {
    format!(
        r#"{CATALOG}
[[member]]
id = "fay"
name = "Fay"
print_users = ["fay"]
home_site = "ber-1"
  [[member.grant]]
  id = "start"
  credit = "printing"
  amount = 1000
  from = 2026-01-01
"#
    )
}

fn site(port: u16, site_id: &str) -> Site {
    let site = Site::new(&[]);
    std::fs::write(site.path("grants.toml"), grants()).expect("grants file");
    let url = format!("http://127.0.0.1:{port}");
    let more = "issue = \"central\"\nescrow_cents = 800\n";
    join_chain(&site, &url, site_id, 50, more);
    site
}

fn charge(site: &Site, key: &str) {
    site.cli(&[
        "charge", "fay", "--units", "10", "--reason", "copier", "--key", key,
    ]);
}

/// What fay's slices at `site` were granted.
fn placed_here(site: &Site) -> i64 {
    rusqlite::Connection::open(site.path("ledger.db"))
        .expect("open ledger")
        .query_row(
            "SELECT COALESCE(SUM(granted), 0) FROM lots WHERE source_key LIKE 'escrow:%'",
            [],
            |r| r.get(0),
        )
        .expect("escrow lots")
}

#[test]
fn the_home_site_may_hold_all_of_a_members_credit_and_another_site_half() {
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let port = free_port();
    let central = Central::start_with_grants(&pg, port, &grants());
    central.wait_log("central grants sync", LIMIT);
    assert_eq!(
        pg.query("SELECT home_site FROM members WHERE id = 'fay'"),
        "ber-1"
    );
    let (home, away) = (site(port, "ber-1"), site(port, "ber-2"));
    let mut d1 = home.start();
    d1.wait_ready();
    // At home: the whole 800-cent target, more than half of the 990 left.
    charge(&home, "h1");
    wait_for("fay's escrow at home", LIMIT, || placed_here(&home) > 0);
    wait_for("acknowledged", LIMIT, || {
        let (_, acked, last) = outbox(&home);
        acked == last
    });
    assert_eq!(placed_here(&home), 800);
    // Away: half of what is not escrowed (1,000 - 10 - 800, less a1 once
    // the centre has it).
    let mut d2 = away.start();
    d2.wait_ready();
    charge(&away, "a1");
    wait_for("fay's escrow away", LIMIT, || placed_here(&away) > 0);
    let away_placed = placed_here(&away);
    assert!(
        (90..=95).contains(&away_placed),
        "half of 180 or 190: {away_placed}"
    );
    assert!(central.log().contains("escrow placed"), "{}", central.log());
    d1.stop();
    d2.stop();
}
