//! Recalls (issue 18, multi-site.md 3.4-3.5): a chain grant shrunk or
//! deleted in the centre's grants file while a site holds slices of its
//! lot. The centre takes unescrowed credit at once, keeps the rest of a
//! cut pending, and recalls slices through the site's feed (`GET
//! /v1/feed`); the site stops spending them and returns them once its
//! spends are acknowledged; what comes back pays the cut, or lapses with
//! a deleted grant. A real PostgreSQL, `tallyd central`, and a site daemon
//! behind a proxy the test cuts.

use super::central::{join_chain, outbox, wait_for};
use crate::support::daemon::{Site, CATALOG};
use crate::support::postgres::{Central, Postgres};
use crate::support::process::free_port;
use crate::support::tcp_proxy::{Mode, TcpProxy};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// dee: an account grant of `dee` printing cents; eve, with `eve` of them
/// if given, else none.
fn grants(dee: i64, eve: Option<i64>) -> String {
    let eve = eve.map_or(String::new(), |n| {
        format!(
            "  [[member.grant]]\n  id = \"start\"\n  credit = \"printing\"\n  amount = {n}\n  from = 2026-01-01\n"
        )
    });
    format!(
        r#"{CATALOG}
[[member]]
id = "dee"
name = "Dee"
print_users = ["dee"]
  [[member.grant]]
  id = "start"
  credit = "printing"
  amount = {dee}
  from = 2026-01-01

[[member]]
id = "eve"
name = "Eve"
print_users = ["eve"]
{eve}"#
    )
}

fn charge_as(site: &Site, member: &str, key: &str, units: i64) {
    let units = units.to_string();
    let args = [
        "charge", member, "--units", &units, "--reason", "copier", "--key", key,
    ];
    site.cli(&args);
}

/// What `member`'s escrow lots at `site` hold now.
fn held_here(site: &Site, member: &str) -> i64 {
    rusqlite::Connection::open(site.path("ledger.db"))
        .expect("open ledger")
        .query_row(
            "SELECT COALESCE(SUM(remaining), 0) FROM lots
             WHERE member_id = ?1 AND source_key LIKE 'escrow:%'",
            [member],
            |r| r.get(0),
        )
        .expect("escrow lots")
}

fn all_acknowledged(site: &Site) -> bool {
    let (_, acked, last) = outbox(site);
    acked == last
}

/// `member`'s chain lot: granted, remaining, escrowed, pending cut, voided.
fn chain_lot(pg: &Postgres, member: &str) -> String {
    pg.query(&format!(
        "SELECT granted || ' ' || remaining || ' ' || escrowed || ' ' || shrink_pending
                || ' ' || (voided_at IS NOT NULL)
         FROM lots WHERE member_id = '{member}'"
    ))
}

#[test]
fn a_grant_shrunk_or_deleted_recalls_its_escrow_and_spent_stays_spent() {
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let port = free_port();
    let central = Central::start_with_grants(&pg, port, &grants(1000, Some(400)));
    central.wait_log("central grants sync", LIMIT);
    let proxy = TcpProxy::start(port);
    let site = Site::new(&[]);
    std::fs::write(site.path("grants.toml"), grants(1000, Some(400))).expect("grants file");
    let url = format!("http://127.0.0.1:{}", proxy.port);
    join_chain(
        &site,
        &url,
        "ber-1",
        50,
        "issue = \"central\"\nescrow_cents = 600\n",
    );
    let mut daemon = site.start();
    daemon.wait_ready();

    // A first usage each; then the site keeps slices of their credit.
    charge_as(&site, "dee", "d1", 10);
    charge_as(&site, "eve", "e1", 10);
    wait_for("slices placed and everything acknowledged", LIMIT, || {
        held_here(&site, "dee") > 200 && held_here(&site, "eve") > 0 && all_acknowledged(&site)
    });

    // Cut off, the site spends 200 of dee's slice; meanwhile the manager
    // cuts dee's grant to 100 and deletes eve's.
    proxy.set(Mode::Cut);
    charge_as(&site, "dee", "d2", 200);
    central.write_grants(&grants(100, None));
    wait_for("the centre applied the edit", LIMIT, || {
        chain_lot(&pg, "eve").ends_with("true")
    });
    // The centre took dee's unescrowed credit at once, and recalled.
    let dee = chain_lot(&pg, "dee");
    let v: Vec<i64> = dee
        .split(' ')
        .take(4)
        .map(|n| n.parse().expect("number"))
        .collect();
    let (granted, remaining, escrowed, pending) = (v[0], v[1], v[2], v[3]);
    assert_eq!(remaining, escrowed, "no unescrowed credit left: {dee}");
    assert_eq!(granted - pending, 100, "the cut, part pending: {dee}");
    assert!(pending > 0, "{dee}");
    assert!(
        central.log().contains("escrow recalled"),
        "{}",
        central.log()
    );

    // Healed: the spend arrives first, then the recall voids the slices
    // here and they are returned.
    proxy.set(Mode::Pass);
    wait_for("the slices recalled and returned", LIMIT, || {
        pg.count("SELECT count(*) FROM escrow_slices WHERE closed_at IS NULL") == 0
    });
    assert!(
        site.log().contains("escrow recalled by the centre"),
        "{}",
        site.log()
    );
    assert_eq!(held_here(&site, "dee"), 0);
    assert_eq!(held_here(&site, "eve"), 0);
    // Spent stays spent: dee's grant floors at the 210 used, nothing left,
    // nothing owed; eve's voided lot keeps nothing.
    assert_eq!(chain_lot(&pg, "dee"), "210 0 0 0 false");
    assert_eq!(
        pg.count("SELECT count(*) FROM central_overage WHERE member_id = 'dee'"),
        0
    );
    assert!(
        chain_lot(&pg, "eve").starts_with("400 0 0 0"),
        "{}",
        chain_lot(&pg, "eve")
    );
    // The cut taken from the returned slice is an `adjust` history row.
    let adjusts = pg.count(
        "SELECT count(*) FROM lot_history h JOIN lots l ON l.id = h.lot_id
         WHERE l.member_id = 'dee' AND h.kind = 'adjust' AND h.note LIKE 'grant shrunk%'",
    );
    assert_eq!(adjusts, 1);
    let (ok, out) = central.check();
    assert!(ok, "central check failed:\n{out}");
    daemon.stop();
}
