//! The chain's lots (issue 18): the centre issues the grants file's lots
//! once for the whole chain, each usage any site ships draws from them
//! (what no lot covers is overage), a refund gives it back, and `tallyd
//! balance --central` shows it. Today's sites still issue their own lots
//! from the same file and charge against those, so a member who prints at
//! two sites spends more there than the chain granted: the centre's
//! account shows the difference as overage.

use super::central::{chain_site, outbox, wait_for};
use crate::support::daemon::{Site, GRANTS};
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

/// (printing left, room minutes left, overage cents) of `member`, from the
/// centre.
fn central_balance(site: &Site, member: &str) -> (i64, i64, i64) {
    let json = site.cli(&["--json", "balance", "--central", member]);
    let rows: serde_json::Value = serde_json::from_str(&json).expect("json");
    let b = &rows[0];
    (
        b["credits"]["printing"].as_i64().unwrap_or(0),
        b["credits"]["room-hours"].as_i64().unwrap_or(0),
        b["overage_cents"].as_i64().expect("overage"),
    )
}

/// The centre on `port`, issuing [`GRANTS`]' lots; once it has.
fn centre_with_lots(pg: &Postgres, port: u16) -> Central {
    let central = Central::start_with_grants(pg, port, GRANTS);
    wait_for(
        "the centre issued the lots",
        Duration::from_secs(20),
        || central.log().contains("central grants sync"),
    );
    central
}

/// Lots whose remaining is not the sum of their history (must be none).
fn lots_off_history(pg: &Postgres) -> i64 {
    pg.count(
        "SELECT count(*) FROM lots l WHERE remaining <>
            (SELECT COALESCE(sum(delta), 0) FROM lot_history h WHERE h.lot_id = l.id)",
    )
}

#[test]
fn the_centre_issues_each_lot_once_and_every_sites_usage_draws_from_it() {
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let port = free_port();
    let central = centre_with_lots(&pg, port);
    let lots = pg.count("SELECT count(*) FROM lots");
    assert!(lots >= 4, "alice's two grants, bob's, carol's: {lots}");
    let ber1 = chain_site(port, "ber-1", 500);
    let ber2 = chain_site(port, "ber-2", 500);
    let mut d1 = ber1.start();
    let mut d2 = ber2.start();
    d1.wait_ready();
    d2.wait_ready();
    assert_eq!(central_balance(&ber1, "alice"), (1000, 600, 0));

    // Each site holds alice's 1,000 of its own and charges 600 from it;
    // the chain granted 1,000 once: 200 is overage at the centre.
    // One after the other, so the centre applies ber-1's first.
    charge_as(&ber1, "alice", "k1", 600);
    wait_for("ber-1 shipped", Duration::from_secs(30), || {
        outbox(&ber1) == (1, 1, 1)
    });
    charge_as(&ber2, "alice", "k2", 600);
    wait_for("ber-2 shipped", Duration::from_secs(30), || {
        outbox(&ber2) == (1, 1, 1)
    });
    assert_eq!(central_balance(&ber2, "alice"), (0, 600, 200));
    assert_eq!(lots_off_history(&pg), 0);

    // A refund gives back the overage first, then the lot.
    ber2.cli(&["refund", "manual:k2", "--reason", "jammed"]);
    wait_for("the refund shipped", Duration::from_secs(30), || {
        outbox(&ber2) == (1, 2, 2)
    });
    assert_eq!(central_balance(&ber1, "alice"), (400, 600, 0));
    assert_eq!(lots_off_history(&pg), 0);
    assert_eq!(
        pg.count("SELECT count(*) FROM lot_history WHERE kind = 'refund'"),
        1
    );

    // The statement across the chain: each change once, with its site.
    let json = ber1.cli(&[
        "--json",
        "statement",
        "--central",
        "alice",
        "--from",
        "2026-01-01",
    ]);
    let st: serde_json::Value = serde_json::from_str(&json).expect("json");
    let lines: Vec<(String, String, i64, String)> = st["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().unwrap_or("").to_string(),
                l["credit"].as_str().unwrap_or("").to_string(),
                l["amount"].as_i64().unwrap_or(0),
                l["site"].as_str().unwrap_or("").to_string(),
            )
        })
        .filter(|l| l.0 != "grant")
        .collect();
    let line = |k: &str, c: &str, a: i64, s: &str| (k.to_string(), c.to_string(), a, s.to_string());
    for want in [
        line("debit", "printing", -600, "ber-1"),
        line("debit", "printing", -400, "ber-2"),
        line("debit", "overage", 200, "ber-2"),
        line("refund", "overage", -200, "ber-2"),
        line("refund", "printing", 400, "ber-2"),
    ] {
        assert!(lines.contains(&want), "{want:?} in {lines:?}");
    }
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(st["closing"]["printing"], 400, "{st}");
    assert_eq!(st["closing"]["overage-cents"], 0, "{st}");
    let table = ber2.cli(&["statement", "--central", "alice", "--from", "2026-01-01"]);
    assert!(
        table.contains("Statement across the chain for alice (Alice)"),
        "{table}"
    );
    assert!(table.contains("manual:k2"), "{table}");

    // The centre restarted reads the same file: nothing is issued twice.
    drop(central);
    let central = Central::start_with_grants(&pg, port, GRANTS);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        pg.count("SELECT count(*) FROM lots"),
        lots,
        "{}",
        central.log()
    );
    assert_eq!(central_balance(&ber1, "alice"), (400, 600, 0));

    // The centre's own check: lots against history, each usage drawn once.
    let (ok, text) = central.check();
    assert!(ok, "{text}");
    assert!(text.contains("ok   lots against history: "), "{text}");
    assert!(
        text.contains("ok   usages drawn once: 2 usages agree"),
        "{text}"
    );
    // A lot changed behind the centre's back is named.
    pg.query("UPDATE lots SET remaining = remaining - 1 WHERE member_id = 'alice' AND credit = 'printing'");
    let (ok, text) = central.check();
    assert!(!ok, "{text}");
    assert!(
        text.contains("FAIL lots against history: lot ") && text.contains("failed a check"),
        "{text}"
    );

    // A member the centre does not know is a clear error.
    let err = ber1.cli_fails(&["balance", "--central", "nobody"]);
    assert!(err.contains("the centre knows no member"), "{err}");
    d1.stop();
    d2.stop();
}

/// A journal entry from `ber-3` about bob, as a site's shipper sends it.
fn entry(seq: i64, kind: &str, body: &str) -> String {
    let at = chrono::Utc::now().timestamp();
    format!(r#"{{"seq":{seq},"kind":"{kind}","at":{at},"body":{{{body},"at":{at}}}}}"#)
}

fn hold(seq: i64, key: &str, amount: i64) -> String {
    let body = format!(
        r#""key":"{key}","fingerprint":"f-{key}","member":"bob","origin":"print","credit_kind":"printing","resource_type":null,"amount":{amount},"is_hold":1,"covered":{amount},"overage":0"#
    );
    entry(seq, "usage", &body)
}

/// Holds draw their estimate; a settle takes or gives back the difference;
/// a void gives all of it back, overage first; a replayed batch changes
/// nothing.
#[test]
fn holds_draw_their_estimate_and_settles_and_voids_change_the_draw_once() {
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let port = free_port();
    let central = centre_with_lots(&pg, port);
    let token = crate::support::postgres::site_token("ber-3");
    let post = |path: &str, body: &str| central.post(path, body, Some(&token));
    let hello = r#"{"site_id":"ber-3","epoch":1,"last_seq":0}"#;
    assert_eq!(post("/v1/hello", hello).0, 200);
    let batch = |entries: &[String]| {
        format!(
            r#"{{"site_id":"ber-3","epoch":1,"entries":[{}]}}"#,
            entries.join(",")
        )
    };
    let bob_left = || {
        pg.count(
            "SELECT COALESCE(sum(remaining), 0) FROM lots WHERE member_id = 'bob' AND credit = 'printing'",
        )
    };
    let bob_owes =
        || pg.count("SELECT COALESCE(sum(amount), 0) FROM central_overage WHERE member_id = 'bob'");

    let first = batch(&[
        hold(1, "h1", 300),
        entry(2, "settle", r#""key":"h1","actual":500"#),
    ]);
    assert_eq!(post("/v1/journal", &first).0, 200);
    assert_eq!((bob_left(), bob_owes()), (500, 0), "settled up by 200");
    assert_eq!(post("/v1/journal", &first).0, 200, "a replay");
    assert_eq!(
        (bob_left(), bob_owes()),
        (500, 0),
        "a replay changes nothing"
    );

    let second = batch(&[hold(3, "h2", 700)]);
    assert_eq!(post("/v1/journal", &second).0, 200);
    assert_eq!(
        (bob_left(), bob_owes()),
        (0, 200),
        "500 from the lot, 200 overage"
    );
    let void = batch(&[entry(4, "void", r#""key":"h2","actual":0"#)]);
    assert_eq!(post("/v1/journal", &void).0, 200);
    assert_eq!(
        (bob_left(), bob_owes()),
        (500, 0),
        "the void gave all 700 back"
    );
    let down = batch(&[
        hold(5, "h3", 400),
        entry(6, "settle", r#""key":"h3","actual":100"#),
    ]);
    assert_eq!(post("/v1/journal", &down).0, 200);
    assert_eq!((bob_left(), bob_owes()), (400, 0), "settled down to 100");
    assert_eq!(lots_off_history(&pg), 0);
    assert_eq!(
        pg.count("SELECT count(*) FROM lot_history WHERE usage_id IS NOT NULL"),
        6,
        "h1 hold + settle, h2 hold + void (its overage apart), h3 hold + settle: {}",
        pg.query("SELECT kind, delta FROM lot_history WHERE usage_id IS NOT NULL ORDER BY id")
    );
    let (ok, text) = central.check();
    assert!(
        ok && text.contains("ok   usages drawn once: 3 usages agree"),
        "{text}"
    );
}

/// A lot past its date loses what is left through an `expire` row, by the
/// centre's clock; a usage shipped late, made while the lot was valid,
/// finds nothing left and is overage.
#[test]
fn the_centre_expires_lots_past_their_date_and_a_late_usage_is_overage() {
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let port = free_port();
    let central = centre_with_lots(&pg, port);
    // A grants file never issues a lot already past its date, so the test
    // writes one as the centre would have in January: 300 until February.
    pg.query(
        "INSERT INTO members (id, name) VALUES ('erin', 'Erin');
         INSERT INTO lots (member_id, credit, granted, remaining, valid_from, expires_at,
                           source, source_key, issued_at)
             VALUES ('erin', 'printing', 300, 300, 1767225600, 1769904000, 'account',
                     'account:erin:january', 1767225600);
         INSERT INTO lot_history (lot_id, kind, delta, granted_delta, note, at)
             SELECT id, 'grant', 300, 300, 'january', 1767225600 FROM lots
             WHERE source_key = 'account:erin:january';",
    );
    let expired = |what: &str| {
        pg.count(&format!(
            "SELECT COALESCE(sum(h.delta), 0) FROM lot_history h JOIN lots l ON l.id = h.lot_id
             WHERE l.member_id = 'erin' AND h.kind = '{what}'"
        ))
    };
    wait_for("erin's lot expired", Duration::from_secs(20), || {
        expired("expire") == -300
    });
    assert_eq!(
        pg.count("SELECT remaining FROM lots WHERE member_id = 'erin'"),
        0
    );
    // The sync's line follows its commit.
    central.wait_log("expired=1", Duration::from_secs(20));

    // A usage of January 15th, shipped now.
    let token = crate::support::postgres::site_token("ber-4");
    let post = |path: &str, body: &str| central.post(path, body, Some(&token));
    assert_eq!(
        post("/v1/hello", r#"{"site_id":"ber-4","epoch":1,"last_seq":0}"#).0,
        200
    );
    let at = 1_768_478_400; // 2026-01-15T12:00:00Z
    let usage = format!(
        r#"{{"site_id":"ber-4","epoch":1,"entries":[{{"seq":1,"kind":"usage","at":{at},"body":{{"key":"late","fingerprint":"f-late","member":"erin","origin":"manual","credit_kind":"printing","resource_type":null,"amount":120,"is_hold":0,"covered":120,"overage":0,"at":{at}}}}}]}}"#
    );
    assert_eq!(post("/v1/journal", &usage).0, 200);
    assert_eq!(
        pg.count("SELECT COALESCE(sum(amount), 0) FROM central_overage WHERE member_id = 'erin'"),
        120
    );
    assert_eq!(lots_off_history(&pg), 0);
}
