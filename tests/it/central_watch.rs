//! The centre's own `/metrics` and `/healthz` (`metrics_listen` in
//! central.toml), against a real PostgreSQL and a real site daemon: each
//! site's epoch and high water, what its shipper last told the centre of
//! its backlog (`POST /v1/status`) and how long ago; a configured site
//! never heard has no such lines (and `tallyd central sites` says
//! "never"); PostgreSQL stopped turns `/healthz` to 503 and `postgres_up`
//! to 0.

use super::central::{chain_site, charge, outbox, wait_for};
use crate::support::http::{get, scrape, value};
use crate::support::postgres::{Central, Postgres, SITES};
use crate::support::process::free_port;
use std::time::Duration;

/// `name` (without the `tallyd_central_` prefix) for `site`, or alone.
fn at(port: u16, name: &str, site: Option<&str>) -> Option<i64> {
    let labels: Vec<(&str, &str)> = site.map(|s| ("site", s)).into_iter().collect();
    value(&scrape(port), &format!("tallyd_central_{name}"), &labels).map(|v| v as i64)
}

#[test]
fn the_centres_metrics_show_each_sites_high_water_backlog_and_when_it_was_heard() {
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let (port, metrics) = (free_port(), free_port());
    let more = format!("metrics_listen = \"127.0.0.1:{metrics}\"\n");
    let central = Central::start_with_toml(&pg, port, None, &more);
    central.wait_log(
        "central serving /metrics and /healthz",
        Duration::from_secs(10),
    );
    assert_eq!(get(metrics, "/healthz").0, 200);

    // Five charges wait in ber-1's outbox before its daemon starts; with
    // one entry a batch, its shipper tells the centre, after the first
    // batch, that four still wait, the oldest at least 2 s old.
    let ber1 = chain_site(port, "ber-1", 1);
    ber1.cli(&["sync"]);
    for k in 1..=5 {
        charge(&ber1, &format!("k{k}"), 10);
    }
    std::thread::sleep(Duration::from_millis(2100));
    let mut daemon = ber1.start();
    daemon.wait_ready();
    let ber = Some("ber-1");
    wait_for("the centre heard ber-1", Duration::from_secs(30), || {
        at(metrics, "site_unacknowledged_entries", ber).is_some()
    });
    let text = get(metrics, "/metrics").1;
    assert_eq!(
        at(metrics, "site_unacknowledged_entries", ber),
        Some(4),
        "{text}"
    );
    let lag = at(metrics, "site_ack_lag_seconds", ber);
    assert!(lag.is_some_and(|s| s >= 2), "{text}");
    let heard = at(metrics, "site_heard_seconds", ber);
    assert!(heard.is_some_and(|s| s <= 5), "{text}");
    assert_eq!(at(metrics, "site_epoch", ber), Some(1), "{text}");
    assert_eq!(at(metrics, "sites", None), Some(SITES.len() as i64));
    assert_eq!(at(metrics, "postgres_up", None), Some(1));
    assert_eq!(at(metrics, "conflicts_total", None), Some(0));
    assert!(
        !text.contains("site=\"ber-2\""),
        "a site never heard has no lines: {text}"
    );
    wait_for("ber-1 shipped all", Duration::from_secs(30), || {
        outbox(&ber1) == (1, 5, 5)
    });
    assert_eq!(at(metrics, "site_high_water", ber), Some(5));

    // The same from the command line: `tallyd central sites`.
    let (ok, json) = central.command(&["--json", "central", "sites"]);
    assert!(ok, "{json}");
    let rows: serde_json::Value = serde_json::from_str(&json).expect("json");
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), SITES.len(), "{json}");
    let one = rows.iter().find(|r| r["site"] == "ber-1").expect("ber-1");
    assert_eq!(
        (&one["epoch"], &one["high_water"]),
        (&1.into(), &5.into()),
        "{json}"
    );
    assert!(
        one["heard_seconds_ago"].as_i64().is_some_and(|s| s <= 35),
        "{json}"
    );
    let two = rows.iter().find(|r| r["site"] == "ber-2").expect("ber-2");
    assert!(
        two["epoch"].is_null() && two["heard_seconds_ago"].is_null(),
        "{json}"
    );
    let (ok, table) = central.command(&["central", "sites"]);
    assert!(ok && table.contains("conflicts recorded: 0"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("ber-2") && l.contains("never")),
        "{table}"
    );

    // PostgreSQL gone: the centre says so, and is back when it is.
    pg.stop_immediate();
    let (status, body) = get(metrics, "/healthz");
    assert_eq!(status, 503, "{body}");
    let text = get(metrics, "/metrics").1;
    assert_eq!(at(metrics, "postgres_up", None), Some(0), "{text}");
    assert!(!text.contains("site=\"ber-1\""), "{text}");
    pg.start_again();
    wait_for("PostgreSQL answers again", Duration::from_secs(30), || {
        get(metrics, "/healthz").0 == 200
    });
    daemon.stop();
    drop(central);
}
