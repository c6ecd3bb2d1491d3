//! A chain's site shipping its outbox to `tallyd central` in front of a
//! real PostgreSQL (issue 18, first slice): the centre down then up, a
//! replayed and a forked batch, a site SIGKILLed mid-shipping.

use crate::support::daemon::Site;
use crate::support::postgres::{site_token, Central, Postgres};
use crate::support::process::free_port;
use std::time::{Duration, Instant};

/// A site (no printers) shipping to `127.0.0.1:port` as `site_id`, with
/// its token.
pub(super) fn chain_site(port: u16, site_id: &str, batch: usize) -> Site {
    chain_site_with(&format!("http://127.0.0.1:{port}"), site_id, batch, "")
}

/// A site shipping to `url` as `site_id` with its token; `more`: more
/// `[central]` lines.
fn chain_site_with(url: &str, site_id: &str, batch: usize, more: &str) -> Site {
    let site = Site::new(&[]);
    join_chain(&site, url, site_id, batch, more);
    site
}

/// Adds `[central]` to `site`'s config: shipping to `url` as `site_id`
/// with its token; `more`: more `[central]` lines.
pub(super) fn join_chain(site: &Site, url: &str, site_id: &str, batch: usize, more: &str) {
    std::fs::write(site.path("central.token"), site_token(site_id) + "\n").expect("token file");
    let central = format!(
        "\n[central]\nurl = \"{url}\"\nsite_id = \"{site_id}\"\ntoken_file = \"central.token\"\nbatch = {batch}\nmax_backoff = \"1s\"\n{more}"
    );
    site.write_config_with(&[], &central);
}

pub(super) fn charge(site: &Site, key: &str, units: i64) {
    let units = units.to_string();
    let args = [
        "charge", "alice", "--units", &units, "--reason", "copier", "--key", key,
    ];
    site.cli(&args);
}

/// The site's outbox: (epoch, acknowledged seq, last seq written; 0 for
/// none yet, as in an epoch the centre gave when nothing waited).
pub(super) fn outbox(site: &Site) -> (i64, i64, i64) {
    let conn = rusqlite::Connection::open(site.path("ledger.db")).expect("open ledger");
    conn.query_row(
        "SELECT epoch, acked_seq,
                COALESCE((SELECT MAX(seq) FROM outbox o WHERE o.epoch = s.epoch), 0)
         FROM outbox_site s",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .expect("outbox position")
}

pub(super) fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "{what} not reached within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn usages_charged_while_the_centre_is_down_are_counted_once_when_it_returns() {
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let port = free_port();
    let site = chain_site(port, "ber-1", 7);
    let mut daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("central unreachable", Duration::from_secs(10));
    for i in 0..20 {
        charge(&site, &format!("k{i}"), 5);
    }
    charge(&site, "k3", 5); // a replay: charged once, one entry
    site.cli(&["refund", "manual:k0", "--reason", "jammed"]);
    assert_eq!(
        outbox(&site),
        (1, 0, 21),
        "21 entries wait, none acknowledged"
    );

    let central = Central::start(&pg, port);
    wait_for("every entry applied", Duration::from_secs(30), || {
        pg.count("SELECT COALESCE(MAX(high_water), 0) FROM site_epochs WHERE site_id = 'ber-1'")
            == 21
    });
    assert_eq!(
        pg.count("SELECT count(*) FROM usages WHERE site_id = 'ber-1'"),
        20
    );
    assert_eq!(pg.count("SELECT count(DISTINCT key) FROM usages"), 20);
    assert_eq!(pg.count("SELECT sum(amount) FROM usage_final"), 100);
    assert_eq!(pg.query("SELECT key FROM refunds"), "manual:k0");
    assert_eq!(pg.count("SELECT count(*) FROM journal"), 21);
    wait_for(
        "the site marks the acknowledgement",
        Duration::from_secs(10),
        || outbox(&site) == (1, 21, 21),
    );
    let log = daemon.log();
    assert_eq!(
        log.matches("central unreachable").count(),
        1,
        "logged once:\n{log}"
    );
    assert!(log.contains("central reachable again"), "{log}");

    // More charges with the centre up are shipped as they come.
    charge(&site, "k20", 7);
    wait_for("the new usage", Duration::from_secs(10), || {
        pg.count("SELECT count(*) FROM usages") == 21
    });
    // The centre's tables are append-only, as the site's.
    assert!(
        pg_refuses(&pg, "UPDATE usages SET amount = 0"),
        "usages are append-only"
    );
    daemon.stop();
    drop(central);
}

fn pg_refuses(pg: &Postgres, sql: &str) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pg.query(sql))).is_err()
}

/// POSTs as site `ber-2`, with its token.
fn post(central: &Central, path: &str, body: &str) -> (u16, String) {
    central.post(path, body, Some(&site_token("ber-2")))
}

fn usage_entry(seq: i64, key: &str, amount: i64) -> String {
    format!(
        r#"{{"seq":{seq},"kind":"usage","at":1780000000,"body":{{"key":"{key}","fingerprint":"f-{key}-{amount}","member":"alice","origin":"manual","credit_kind":"printing","resource_type":null,"amount":{amount},"is_hold":0,"covered":{amount},"overage":0,"at":1780000000}}}}"#
    )
}

fn batch(epoch: i64, entries: &[String]) -> String {
    format!(
        r#"{{"site_id":"ber-2","epoch":{epoch},"entries":[{}]}}"#,
        entries.join(",")
    )
}

#[test]
fn a_replayed_batch_is_applied_once_and_a_forked_one_gets_a_new_epoch() {
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let central = Central::start(&pg, free_port());
    let hello = r#"{"site_id":"ber-2","epoch":1,"last_seq":0}"#;
    assert_eq!(
        post(&central, "/v1/hello", hello),
        (200, r#"{"epoch":1,"high_water":0}"#.into())
    );
    let first = batch(1, &[usage_entry(1, "a", 10), usage_entry(2, "b", 20)]);
    let applied = (200, r#"{"status":"applied","high_water":2}"#.to_string());
    assert_eq!(post(&central, "/v1/journal", &first), applied);
    assert_eq!(
        post(&central, "/v1/journal", &first),
        applied,
        "a replay changes nothing"
    );
    assert_eq!(pg.count("SELECT count(*) FROM usages"), 2);
    assert_eq!(pg.count("SELECT sum(amount) FROM usages"), 30);

    let gap = batch(1, &[usage_entry(5, "e", 1)]);
    let (status, body) = post(&central, "/v1/journal", &gap);
    assert_eq!(
        (status, body.as_str()),
        (409, r#"{"status":"gap","high_water":2}"#)
    );

    // Seq 2 again with other content: a clone. It gets epoch 2, where its
    // entries are applied by usage key: `a` again is not counted twice.
    let fork = batch(1, &[usage_entry(2, "c", 30)]);
    let (status, body) = post(&central, "/v1/journal", &fork);
    assert_eq!(
        (status, body.as_str()),
        (409, r#"{"status":"new_epoch","epoch":2}"#)
    );
    let moved = batch(2, &[usage_entry(1, "a", 10), usage_entry(2, "c", 30)]);
    let (status, body) = post(&central, "/v1/journal", &moved);
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"status":"applied","high_water":2}"#)
    );
    assert_eq!(
        pg.query("SELECT string_agg(key, ',' ORDER BY key) FROM usages"),
        "a,b,c"
    );
    assert_eq!(pg.count("SELECT sum(amount) FROM usages"), 60);

    // The same key with another fingerprint is a conflict, never a charge.
    let other = batch(2, &[usage_entry(3, "b", 99)]);
    assert_eq!(post(&central, "/v1/journal", &other).0, 200);
    assert_eq!(pg.count("SELECT sum(amount) FROM usages"), 60);
    assert_eq!(
        pg.query("SELECT key || ':' || what FROM ingest_conflicts"),
        "b:same usage key, other fingerprint"
    );
    // The refund of that other usage is not one of `b` (found by the chain
    // simulation: a clone refunding its own usage refunded its twin's).
    let refund = r#"{"seq":4,"kind":"refund","at":1780000000,"body":{"key":"b","fingerprint":"f-b-99","reason":"jammed","at":1780000000}}"#;
    assert_eq!(
        post(&central, "/v1/journal", &batch(2, &[refund.to_string()])).0,
        200
    );
    assert_eq!(pg.count("SELECT count(*) FROM refunds"), 0);
    assert_eq!(
        pg.query("SELECT string_agg(key || ':' || what, ',' ORDER BY id) FROM ingest_conflicts"),
        "b:same usage key, other fingerprint,b:refund of another usage under this key"
    );
    // Of `b` itself (or from a site that names no fingerprint), it applies.
    let refund = r#"{"seq":5,"kind":"refund","at":1780000000,"body":{"key":"b","fingerprint":"f-b-20","reason":"jammed","at":1780000000}}"#;
    assert_eq!(
        post(&central, "/v1/journal", &batch(2, &[refund.to_string()])).0,
        200
    );
    assert_eq!(pg.query("SELECT key FROM refunds"), "b");

    // A restored ledger (it wrote less than the centre applied) gets a new
    // epoch and the old one closes.
    let restored = r#"{"site_id":"ber-2","epoch":2,"last_seq":1}"#;
    assert_eq!(
        post(&central, "/v1/hello", restored),
        (200, r#"{"epoch":3,"high_water":0}"#.into())
    );
    assert_eq!(
        pg.count("SELECT count(*) FROM site_epochs WHERE closed_at IS NOT NULL"),
        1
    );
}

#[test]
fn a_site_killed_mid_shipping_catches_up_without_duplicates() {
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let port = free_port();
    let site = chain_site(port, "ber-3", 1);
    let mut daemon = site.start();
    daemon.wait_ready();
    let total = 150;
    for i in 0..total {
        charge(&site, &format!("k{i}"), 3);
    }
    let central = Central::start(&pg, port);
    wait_for("shipping under way", Duration::from_secs(30), || {
        pg.count("SELECT count(*) FROM usages") >= 10
    });
    daemon.kill9();
    let at_kill = pg.count("SELECT count(*) FROM usages");
    assert!(
        at_kill < total,
        "killed mid-shipping ({at_kill} of {total} applied)"
    );

    let mut daemon = site.start();
    daemon.wait_ready();
    wait_for("the rest applied", Duration::from_secs(60), || {
        pg.count("SELECT count(*) FROM usages") == total
    });
    wait_for("acknowledged", Duration::from_secs(10), || {
        outbox(&site) == (1, total, total)
    });
    assert_eq!(pg.count("SELECT count(DISTINCT key) FROM usages"), total);
    assert_eq!(pg.count("SELECT count(*) FROM journal"), total);
    assert_eq!(pg.count("SELECT sum(amount) FROM usages"), 3 * total);
    daemon.stop();
    drop(central);
}

/// Copies a stopped site's ledger (with its WAL, if any) into `to`.
pub(super) fn clone_ledger(from: &Site, to: &Site) {
    for name in ["ledger.db", "ledger.db-wal"] {
        if from.path(name).exists() {
            std::fs::copy(from.path(name), to.path(name)).expect("copy the ledger");
        }
    }
}

#[test]
fn a_cloned_ledger_gets_a_new_epoch_and_counts_nothing_twice() {
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let port = free_port();
    let central = Central::start(&pg, port);
    let original = chain_site(port, "ber-4", 500);
    let mut daemon = original.start();
    daemon.wait_ready();
    for i in 0..5 {
        charge(&original, &format!("k{i}"), 2);
    }
    wait_for(
        "the first five acknowledged",
        Duration::from_secs(20),
        || outbox(&original) == (1, 5, 5),
    );
    daemon.stop();
    let clone = chain_site(port, "ber-4", 500);
    clone_ledger(&original, &clone);
    for i in 0..3 {
        charge(&original, &format!("a{i}"), 10);
    }
    for i in 0..4 {
        charge(&clone, &format!("b{i}"), 100);
    }
    assert_eq!(outbox(&clone), (1, 5, 9), "the clone reuses seqs 6 to 9");

    let mut daemon = original.start();
    daemon.wait_ready();
    wait_for("the original's entries", Duration::from_secs(20), || {
        outbox(&original) == (1, 8, 8)
    });
    let mut twin = clone.start();
    twin.wait_ready();
    wait_for(
        "the clone's entries in a new epoch",
        Duration::from_secs(20),
        || outbox(&clone) == (2, 4, 4),
    );
    twin.wait_log("new epoch", Duration::from_secs(5));
    assert_eq!(pg.count("SELECT count(*) FROM usages"), 12);
    assert_eq!(
        pg.count("SELECT sum(amount) FROM usages"),
        5 * 2 + 3 * 10 + 4 * 100
    );
    let epochs =
        "SELECT string_agg(epoch || ':' || high_water, ',' ORDER BY epoch) FROM site_epochs";
    assert_eq!(pg.query(epochs), "1:8,2:4");
    assert_eq!(pg.count("SELECT count(*) FROM ingest_conflicts"), 0);
    daemon.stop();
    twin.stop();
    drop(central);
}

#[test]
fn a_site_restored_from_an_older_backup_gets_a_new_epoch_imports_what_it_lost_and_counts_nothing_twice(
) {
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let port = free_port();
    let central = Central::start(&pg, port);
    let site = chain_site(port, "ber-5", 500);
    let mut daemon = site.start();
    daemon.wait_ready();
    for i in 0..5 {
        charge(&site, &format!("k{i}"), 2);
    }
    wait_for(
        "the first five acknowledged",
        Duration::from_secs(20),
        || outbox(&site) == (1, 5, 5),
    );
    let backups = site.path("old-backups");
    site.cli(&["backup", "--to", backups.to_str().expect("utf-8")]);
    for i in 5..8 {
        charge(&site, &format!("k{i}"), 2);
    }
    wait_for("eight acknowledged", Duration::from_secs(20), || {
        outbox(&site) == (1, 8, 8)
    });
    daemon.stop();
    let file = std::fs::read_dir(&backups)
        .expect("backups")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "db"))
        .expect("a backup file");
    site.cli(&["restore", file.to_str().expect("utf-8")]);
    assert_eq!(
        outbox(&site),
        (1, 5, 5),
        "the restored ledger is back at seq 5"
    );
    // Charged again after the restore: one key the centre already counted
    // (from the lost tail), one new.
    charge(&site, "k5", 2);
    charge(&site, "r0", 50);

    assert!(site.path("ledger.db.restored").exists(), "restore marks it");

    // The first hello imports k6 and k7 from the centre (k5 is there
    // again) before the printers are polled; all four entries then ship
    // in the new epoch and change nothing the centre counted.
    let mut daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log(
        "restored ledger: what it lost since its backup imported from the centre epoch=1 acked_seq=5 usages=2 resolutions=0 refunds=0 present=1 skipped=0",
        Duration::from_secs(20),
    );
    wait_for(
        "the restored ledger in a new epoch",
        Duration::from_secs(20),
        || outbox(&site) == (2, 4, 4),
    );
    assert!(
        !site.path("ledger.db.restored").exists(),
        "the mark is removed"
    );
    let conn = rusqlite::Connection::open(site.path("ledger.db")).expect("ledger");
    let local: (i64, i64) = conn
        .query_row("SELECT count(*), sum(amount) FROM usages", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("usages");
    assert_eq!(local, (9, 8 * 2 + 50), "the site holds all it charged");
    assert_eq!(pg.count("SELECT count(*) FROM usages"), 9);
    assert_eq!(pg.count("SELECT sum(amount) FROM usages"), 8 * 2 + 50);
    assert_eq!(pg.count("SELECT count(*) FROM ingest_conflicts"), 0);
    let epochs = "SELECT string_agg(epoch || ':' || high_water || ':' || (closed_at IS NOT NULL), ',' ORDER BY epoch) FROM site_epochs";
    assert_eq!(pg.query(epochs), "1:8:true,2:4:false");
    daemon.stop();
    drop(central);
}

#[test]
fn the_centre_refuses_a_request_without_the_claimed_sites_token_and_applies_nothing() {
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let port = free_port();
    let central = Central::start(&pg, port);
    let hello = r#"{"site_id":"ber-6","epoch":1,"last_seq":0}"#;
    let one = format!(
        r#"{{"site_id":"ber-6","epoch":1,"entries":[{}]}}"#,
        usage_entry(1, "a", 10)
    );
    let other_sites = site_token("ber-7");
    for token in [None, Some("guess-123"), Some(other_sites.as_str())] {
        assert_eq!(central.post("/v1/hello", hello, token).0, 401, "{token:?}");
        assert_eq!(central.post("/v1/journal", &one, token).0, 401, "{token:?}");
    }
    let forged = r#"{"site_id":"x\n<4>central serving forged","epoch":1,"last_seq":0}"#;
    assert_eq!(central.post("/v1/hello", forged, Some("guess-123")).0, 401);
    let applied = || {
        pg.count("SELECT (SELECT count(*) FROM site_epochs) + (SELECT count(*) FROM journal) + (SELECT count(*) FROM usages)")
    };
    assert_eq!(applied(), 0, "nothing applied for a refused request");
    let log = central.log();
    assert_eq!(
        log.matches("central refused a request").count(),
        3,
        "one WARN line a minute per claimed site and reason (ber-6 without a token, ber-6 with a wrong one four times, the forged id):\n{log}"
    );
    assert!(
        !log.contains("guess-123") && !log.contains(&other_sites),
        "{log}"
    );
    assert!(
        log.lines()
            .filter(|l| l.contains("forged"))
            .all(|l| l.contains("central refused")),
        "a claimed site id cannot forge a line:\n{log}"
    );

    let right = site_token("ber-6");
    assert_eq!(
        central.post("/v1/hello", hello, Some(&right)),
        (200, r#"{"epoch":1,"high_water":0}"#.into())
    );
    assert_eq!(
        central.post("/v1/journal", &one, Some(&right)),
        (200, r#"{"status":"applied","high_water":1}"#.into())
    );
    assert_eq!(pg.count("SELECT count(*) FROM usages"), 1);

    // A site daemon with a wrong token ships nothing, and says why once.
    let site = chain_site(port, "ber-8", 500);
    std::fs::write(site.path("central.token"), "not-the-token\n").expect("token file");
    let mut daemon = site.start();
    daemon.wait_ready();
    charge(&site, "w0", 5);
    daemon.wait_log("refused this site's token", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        pg.count("SELECT count(*) FROM usages WHERE site_id = 'ber-8'"),
        0
    );
    assert_eq!(outbox(&site), (1, 0, 1), "the entry waits");
    let log = daemon.log();
    assert_eq!(log.matches("refused this site's token").count(), 1, "{log}");
    assert!(!log.contains("not-the-token"), "{log}");
    daemon.stop();
    drop(central);
}

#[test]
fn a_centre_serving_https_is_trusted_by_ca_file_or_pin_and_refused_otherwise() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = crate::support::tls::Certs::new(dir.path());
    let pg = Postgres::start();
    let port = free_port();
    let central = Central::start_with(&pg, port, Some(&certs.leaf));
    assert!(
        central.log().contains("scheme=\"https\"") || central.log().contains("scheme=https"),
        "{}",
        central.log()
    );
    let url = format!("https://127.0.0.1:{port}");
    let ca = format!("ca_file = \"{}\"\n", certs.ca.cert.display());
    let pin = format!("tls_fingerprint = \"{}\"\n", certs.leaf.fingerprint());
    let by_ca = chain_site_with(&url, "ber-1", 500, &ca);
    let pinned = chain_site_with(&url, "ber-2", 500, &pin);
    let untrusted = chain_site_with(&url, "ber-3", 500, "");
    let daemons = start_and_charge(&[(&by_ca, "c0"), (&pinned, "p0"), (&untrusted, "u0")]);
    wait_for(
        "the trusting sites shipped",
        Duration::from_secs(20),
        || outbox(&by_ca) == (1, 1, 1) && outbox(&pinned) == (1, 1, 1),
    );
    daemons[2].wait_log("certificate is not trusted", Duration::from_secs(10));
    assert_eq!(
        pg.query("SELECT string_agg(site_id || ':' || key, ',' ORDER BY key) FROM usages"),
        "ber-1:manual:c0,ber-2:manual:p0",
        "nothing from the site that does not trust the centre"
    );
    assert_eq!(outbox(&untrusted), (1, 0, 1));
    // Plain HTTP to the HTTPS port is not served.
    let (status, _) = std::panic::catch_unwind(|| {
        central.post(
            "/v1/hello",
            r#"{"site_id":"ber-1","epoch":1,"last_seq":0}"#,
            Some(&site_token("ber-1")),
        )
    })
    .unwrap_or((0, String::new()));
    assert_ne!(status, 200, "plain HTTP refused");
    for mut d in daemons {
        d.stop();
    }
    drop(central);
}

/// Starts each site's daemon and charges 4 cents under its key there.
fn start_and_charge(sites: &[(&Site, &str)]) -> Vec<crate::support::daemon::Daemon> {
    let mut daemons = Vec::new();
    for (site, key) in sites {
        let d = site.start();
        d.wait_ready();
        charge(site, key, 4);
        daemons.push(d);
    }
    daemons
}

/// Mutual TLS: with `client_ca_file`, a site ships only on a connection
/// whose client certificate the CA signed and that names the site it
/// claims; no certificate, a stranger's, or another site's applies nothing.
#[test]
fn a_centre_asking_for_site_certificates_takes_each_sites_own_only() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = crate::support::tls::Certs::new(dir.path());
    let pg = Postgres::start();
    let port = free_port();
    let clients = format!("client_ca_file = \"{}\"\n", certs.ca.cert.display());
    let central = Central::start_with_toml(&pg, port, Some(&certs.leaf), &clients);
    assert!(
        central.log().contains("site_certificates=true"),
        "{}",
        central.log()
    );
    let url = format!("https://127.0.0.1:{port}");
    let ca = format!("ca_file = \"{}\"\n", certs.ca.cert.display());
    let presenting = |c: &crate::support::tls::Cert| {
        format!(
            "{ca}cert_file = \"{}\"\nkey_file = \"{}\"\n",
            c.cert.display(),
            c.key.display()
        )
    };
    let ber1_cert = certs.client(dir.path(), "ber-1");
    let own = chain_site_with(&url, "ber-1", 500, &presenting(&ber1_cert));
    let borrowed = chain_site_with(&url, "ber-2", 500, &presenting(&ber1_cert));
    let without = chain_site_with(&url, "ber-3", 500, &ca);
    let stranger = chain_site_with(&url, "ber-4", 500, &presenting(&certs.self_signed));
    let daemons = start_and_charge(&[
        (&own, "o0"),
        (&borrowed, "b0"),
        (&without, "w0"),
        (&stranger, "s0"),
    ]);
    wait_for(
        "the site with its own certificate shipped",
        Duration::from_secs(20),
        || outbox(&own) == (1, 1, 1),
    );
    let limit = Duration::from_secs(10);
    daemons[1].wait_log("does not name site_id", limit);
    daemons[2].wait_log(
        "refused this site's client certificate: CertificateRequired",
        limit,
    );
    daemons[3].wait_log("refused this site's client certificate: ", limit);
    central.wait_log(
        "its client certificate does not name the site it claims",
        limit,
    );
    assert_eq!(
        pg.query("SELECT string_agg(site_id || ':' || key, ',' ORDER BY key) FROM usages"),
        "ber-1:manual:o0",
        "nothing from a site without its own certificate"
    );
    for refused in [&borrowed, &without, &stranger] {
        assert_eq!(outbox(refused).2, 1, "the entry waits");
        assert_eq!(outbox(refused).1, 0, "nothing acknowledged");
    }
    // The manager's reads go over the same connection.
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let report = own.cli(&["--json", "report", "--central", "--month", &month]);
    assert!(report.contains("\"usages\": 1"), "{report}");
    let err = without.cli_fails(&["report", "--central", "--month", &month]);
    assert!(err.contains("CertificateRequired"), "{err}");
    for mut d in daemons {
        d.stop();
    }
    drop(central);
}

/// Rows left in the site's outbox.
fn outbox_rows(site: &Site) -> i64 {
    let conn = rusqlite::Connection::open(site.path("ledger.db")).expect("open ledger");
    conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
        .expect("outbox rows")
}

#[test]
fn lag_shows_in_metrics_alerts_once_each_way_and_acknowledged_entries_are_pruned() {
    use crate::support::http::{scrape, value, wait_value};
    use std::os::unix::fs::PermissionsExt;
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let port = free_port();
    let http = free_port();
    let more = format!(
        "retention = \"1s\"\n\n[http]\nlisten = \"127.0.0.1:{http}\"\n\n\
         [alerts]\ncommand = \"notify.sh\"\ncentral_lag = \"2s\"\n"
    );
    let site = chain_site_with(&format!("http://127.0.0.1:{port}"), "ber-9", 500, &more);
    let alerts = site.path("alerts.jsonl");
    let notify = site.path("notify.sh");
    std::fs::write(
        &notify,
        format!("#!/bin/sh\ncat >> '{}'\n", alerts.display()),
    )
    .expect("notify.sh");
    std::fs::set_permissions(&notify, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let recorded = || -> Vec<(String, String)> {
        std::fs::read_to_string(&alerts)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
            .map(|v| (v["kind"].to_string(), v["state"].to_string()))
            .collect()
    };
    let mut daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("central unreachable", Duration::from_secs(10));
    for i in 0..3 {
        charge(&site, &format!("l{i}"), 2);
    }
    let limit = Duration::from_secs(15);
    wait_value(
        http,
        "tallyd_central_unacknowledged_entries",
        &[],
        3.0,
        limit,
    );
    wait_for("the lag alert", limit, || !recorded().is_empty());
    let lag = value(&scrape(http), "tallyd_central_ack_lag_seconds", &[]).expect("lag");
    assert!(lag >= 2.0, "the oldest entry is {lag}s old");
    let firing = ("\"central_lagging\"".to_string(), "\"firing\"".to_string());
    assert_eq!(recorded(), std::slice::from_ref(&firing));

    let central = Central::start(&pg, port);
    wait_for("acknowledged", Duration::from_secs(20), || {
        outbox(&site) == (1, 3, 3)
    });
    wait_value(
        http,
        "tallyd_central_unacknowledged_entries",
        &[],
        0.0,
        limit,
    );
    wait_value(http, "tallyd_central_ack_lag_seconds", &[], 0.0, limit);
    wait_for("the resolved alert", limit, || recorded().len() == 2);
    let resolved = (
        "\"central_lagging\"".to_string(),
        "\"resolved\"".to_string(),
    );
    assert_eq!(recorded(), [firing, resolved]);
    // The daemon logs an alert once its command has taken it, so the
    // second line may follow the second record by a moment.
    let lagging = |log: &str| {
        log.lines()
            .filter(|l| l.contains("central_lagging"))
            .count()
    };
    wait_for("the resolved alert's log line", limit, || {
        lagging(&daemon.log()) >= 2
    });
    let log = daemon.log();
    assert_eq!(
        lagging(&log),
        2,
        "logged once when it starts, once when it clears:\n{log}"
    );

    // Past the 1 s retention the acknowledged entries go, but the newest.
    wait_for("pruned", limit, || outbox_rows(&site) == 1);
    charge(&site, "l3", 2);
    wait_for("seq 4 applied", limit, || {
        pg.count("SELECT high_water FROM site_epochs WHERE site_id = 'ber-9'") == 4
    });
    assert_eq!(pg.count("SELECT count(*) FROM usages"), 4);
    assert_eq!(pg.count("SELECT count(*) FROM ingest_conflicts"), 0);
    daemon.stop();
    drop(central);
}

/// A reload takes a new `[central]` without a restart: a site shipping to
/// an address where nothing listens ships to the centre once its config
/// names it and it is reloaded; a new `site_id` is refused on reload (the
/// ledger ships as one site for good) with one ERROR, and the old section
/// keeps shipping.
#[test]
fn a_reload_takes_a_new_central_url_and_refuses_a_new_site_id() {
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let port = free_port();
    let central = Central::start(&pg, port);
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let site = chain_site_with(&nowhere, "ber-7", 500, "");
    let mut daemon = site.start();
    daemon.wait_ready();
    charge(&site, "k0", 2);
    charge(&site, "k1", 3);
    daemon.wait_log("central unreachable", Duration::from_secs(10));
    assert_eq!(outbox(&site), (1, 0, 2), "nothing acknowledged");

    join_chain(&site, &format!("http://127.0.0.1:{port}"), "ber-7", 500, "");
    daemon.signal("HUP");
    daemon.wait_log(
        "central shipper restarted with the reloaded [central]",
        Duration::from_secs(10),
    );
    wait_for("both acknowledged", Duration::from_secs(20), || {
        outbox(&site) == (1, 2, 2)
    });
    assert_eq!(
        pg.count("SELECT count(*) FROM usages WHERE site_id = 'ber-7'"),
        2
    );

    join_chain(&site, &format!("http://127.0.0.1:{port}"), "ber-8", 500, "");
    daemon.signal("HUP");
    daemon.wait_log(
        "[central] site_id cannot change on reload; the old [central] is kept",
        Duration::from_secs(10),
    );
    // `tallyd charge` reads the same config and refuses it too.
    let refused = site.cli_fails(&[
        "charge", "alice", "--units", "4", "--reason", "copier", "--key", "k2",
    ]);
    assert!(
        refused.contains("ships to the centre as site `ber-7`"),
        "{refused}"
    );
    join_chain(&site, &format!("http://127.0.0.1:{port}"), "ber-7", 500, "");
    charge(&site, "k2", 4);
    wait_for("k2 acknowledged as ber-7", Duration::from_secs(20), || {
        outbox(&site) == (1, 3, 3)
    });
    assert_eq!(
        pg.count("SELECT count(*) FROM usages WHERE site_id = 'ber-7'"),
        3
    );
    assert_eq!(
        pg.count("SELECT count(*) FROM usages WHERE site_id = 'ber-8'"),
        0
    );
    daemon.stop();
    drop(central);
}
