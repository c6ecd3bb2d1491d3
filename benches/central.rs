//! `cargo bench --bench central`: a chain's centre (issue 18, point 5),
//! against a real PostgreSQL (a cluster of its own on 127.0.0.1, commits
//! synced: `fsync=on`) and the real `tallyd central` and `tallyd run` (the
//! binary Cargo builds for the bench, optimised as `--release`). The
//! centre issues the chain's lots from a grants file (100 members per
//! ingesting site, and the catch-up sites' members), so every usage it
//! applies also draws from its member's lots (then is overage), as in a
//! chain.
//!
//! Prints, all measured in the same run:
//! - central ingestion: entries per second applying 500-entry batches of
//!   usage entries, their bodies the shipper's own (read from a real
//!   ledger's outbox), from one site and from six sites in parallel; then
//!   checks that PostgreSQL holds exactly the usages sent (goal: 2,000/s or
//!   more on a 4-vCPU SSD PostgreSQL);
//! - catch-up: a site daemon (`tallyd run`) whose outbox holds 3 days
//!   charged while the centre was down, from the centre serving to every
//!   entry acknowledged, for a large site (300 entries a day: 900) and a
//!   very busy one (10,000 a day: 30,000); split into the wait for the
//!   shipper's next retry (`max_backoff = "1s"` here; 1 minute by
//!   default) and the drain from its hello on (goal: 500 entries/s or
//!   more, 3 days in under a minute);
//! - escrow: one site's members each ask for a slice (a tap's shortfall)
//!   and a top-up, each request timed (goal: p99 under 300 ms); then the
//!   site ships 5,000 usages each taking from its member's slice, timed
//!   as an ingestion, beside the 1-site rate without escrow;
//! - commit to acknowledgement on loopback, p50 and p99: usages charged
//!   one at a time at random intervals on the large site, each timed from
//!   its commit to the outbox marking it acknowledged (goal: p50 under
//!   2 s, p99 under 10 s at 100 ms RTT).
//!
//! The local debits with the outbox on (within 15% of the single and
//! group-commit rates) are `cargo bench --bench ledger`'s. Without
//! PostgreSQL (`initdb`, `pg_ctl`) the bench says so and exits 1.
//! `CENTRAL_BENCH_SAMPLES` changes the number of latency samples (200).

// The integration tests' support folder (PostgreSQL, `tallyd central`,
// `tallyd run` in a site folder); a bench uses only part of it.
#[allow(dead_code)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use support::daemon::{Daemon, Site, GRANTS};
use support::postgres::{site_token, Central, Postgres};
use support::process::free_port;
use tallyd::central::protocol::{
    Batch, BatchReply, EscrowAsk, EscrowGrant, Hello, Welcome, WireEntry,
};
use tallyd::config::Config;
use tallyd::ledger::lots::{self, GrantRequest};
use tallyd::ledger::{outbox, usage, Ledger, Origin, Payable, SourceKind, UsageRequest};

/// Entries per batch, the shipper's default `[central] batch`.
const BATCH: usize = 500;
const DAY: i64 = 86_400;
/// The members of the daemon tests' grants file.
const MEMBERS: [&str; 3] = ["alice", "bob", "carol"];
/// Entries each site ships in the ingestion runs.
const INGEST_ONE: usize = 10_000;
const INGEST_EACH: usize = 5_000;
const PARALLEL: [&str; 6] = ["ber-2", "ber-3", "ber-4", "ber-5", "ber-6", "ber-7"];
/// Three days of a large site (multi-site.md: 100-300 entries a day) and
/// of a very busy one.
const LARGE_SITE: usize = 900;
const BUSY_SITE: usize = 30_000;
/// Longest wait for anything the bench waits on (a stuck shipper fails it).
const STUCK: Duration = Duration::from_secs(120);

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Usage `i` at `at`, members in turn: 85% print debits of 1 to 12
/// impressions on one of four printers, 15% room sessions.
fn usage_request(i: usize, at: i64) -> UsageRequest {
    let member = Some(MEMBERS[i % MEMBERS.len()].to_string());
    let printer = format!("printer-{}", i % 4);
    if i % 20 < 17 {
        let impressions = 1 + i % 12;
        UsageRequest {
            key: format!("printer:{printer}:urn:uuid:{i:08x}-7d1c-4b4e-9a8f-{at:012x}"),
            member,
            origin: Origin::Print { printer },
            payable: Payable::Printing,
            amount: 10 * impressions as i64,
            detail: format!(r#"{{"job":{i},"impressions":{impressions},"colour":false}}"#),
            at,
        }
    } else {
        UsageRequest {
            key: format!("session:room-a:{i}:{at}"),
            member,
            origin: Origin::Session {
                resource: "room-a".into(),
            },
            payable: Payable::Time {
                resource_type: "meeting-room".into(),
            },
            amount: 15 * (1 + i % 8) as i64,
            detail: "{}".into(),
            at,
        }
    }
}

/// Charges usages `first..first + n`, spread evenly over `[from, from +
/// span)`, in transactions of [`BATCH`] (as the daemon's group commit
/// would under load).
fn charge(ledger: &mut Ledger, first: usize, n: usize, from: i64, span: i64) {
    let mut done = 0;
    while done < n {
        let upto = (done + BATCH).min(n);
        ledger
            .write(|conn, site| {
                for i in done..upto {
                    let at = from + i as i64 * span / n as i64;
                    usage::debit(conn, site, &usage_request(first + i, at))?;
                }
                Ok(())
            })
            .expect("charge");
        done = upto;
    }
}

/// `n` usage entries as the shipper sends them: charged on a ledger of
/// their own with its outbox on, read back with the shipper's query.
fn shipped_entries(n: usize) -> Vec<WireEntry> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ledger = Ledger::open(&dir.path().join("source.db"), Default::default()).expect("open");
    let start = unix_now() - 3 * DAY;
    ledger
        .write(|conn, _| {
            let rooms = ["meeting-room".to_string()];
            lots::define_time_credit(conn, "room-hours", "Room hours", &rooms)?;
            for m in MEMBERS {
                lots::ensure_member(conn, m, m, start)?;
                for (credit, amount) in [("printing", 100_000), ("room-hours", 6_000)] {
                    lots::grant(
                        conn,
                        &GrantRequest {
                            member: m.into(),
                            credit: credit.into(),
                            amount,
                            valid_from: start,
                            expires_at: None,
                            source: SourceKind::Plan,
                            source_key: format!("plan:{m}:{credit}"),
                            note: "plan".into(),
                            at: start,
                        },
                    )?;
                }
            }
            outbox::enable(conn, "source")
        })
        .expect("source ledger");
    charge(&mut ledger, 0, n, start, 3 * DAY);
    let entries = outbox::pending(ledger.conn(), n).expect("pending");
    assert_eq!(entries.len(), n, "one outbox entry per usage");
    entries
        .iter()
        .map(|e| WireEntry {
            seq: e.seq,
            kind: e.kind.clone(),
            body: serde_json::from_str(&e.body).expect("an entry's body is JSON"),
            at: e.at,
        })
        .collect()
}

/// POSTs `body` as `site` with its token; the answer's JSON.
async fn post<T: serde::Serialize, R: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: String,
    site: &str,
    body: &T,
) -> R {
    let resp = http
        .post(url)
        .header("content-type", "application/json")
        .bearer_auth(site_token(site))
        .body(serde_json::to_vec(body).expect("json"))
        .send()
        .await
        .expect("the centre answers");
    let bytes = resp.bytes().await.expect("the centre's answer");
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "not the answer expected ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    })
}

/// Ships all of `entries` as `site`, a batch at a time in seq order, each
/// sent when the one before was applied (as one site's shipper does);
/// returns the number of batches.
async fn ship(
    http: reqwest::Client,
    base: String,
    site: String,
    entries: Arc<Vec<WireEntry>>,
) -> usize {
    let mut batches = 0;
    for chunk in entries.chunks(BATCH) {
        let batch = Batch {
            site_id: site.clone(),
            epoch: 1,
            entries: chunk.to_vec(),
        };
        let reply: BatchReply = post(&http, format!("{base}/v1/journal"), &site, &batch).await;
        let last = chunk.last().expect("a batch is never empty").seq;
        assert_eq!(
            reply,
            BatchReply::Applied { high_water: last },
            "site {site}"
        );
        batches += 1;
    }
    batches
}

/// What one ingestion run took.
struct Ingestion {
    entries: usize,
    batches: usize,
    took: Duration,
}

/// A runtime, an HTTP client and the centre's base URL, to talk to it as
/// sites do.
fn client_of(central: &Central) -> (tokio::runtime::Runtime, reqwest::Client, String) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client");
    (rt, http, format!("http://127.0.0.1:{}", central.port))
}

/// Every site of `sites` says hello (untimed), then ships `entries` (as
/// its own members: [`as_site`]), all sites at once.
fn ingest(central: &Central, sites: &[&str], entries: &[WireEntry]) -> Ingestion {
    let shipped: Vec<Arc<Vec<WireEntry>>> = sites
        .iter()
        .map(|s| Arc::new(as_site(entries, s)))
        .collect();
    let (rt, http, base) = client_of(central);
    rt.block_on(async {
        for site in sites {
            let hello = Hello {
                site_id: site.to_string(),
                epoch: 1,
                last_seq: entries.len() as i64,
            };
            let w: Welcome = post(&http, format!("{base}/v1/hello"), site, &hello).await;
            assert_eq!(
                w,
                Welcome {
                    epoch: 1,
                    high_water: 0
                },
                "a new site"
            );
        }
        let t = Instant::now();
        let runs: Vec<_> = sites
            .iter()
            .zip(&shipped)
            .map(|(s, entries)| {
                let run = ship(http.clone(), base.clone(), s.to_string(), entries.clone());
                tokio::spawn(run)
            })
            .collect();
        let mut batches = 0;
        for run in runs {
            batches += run.await.expect("a site's shipping");
        }
        Ingestion {
            entries: entries.len() * sites.len(),
            batches,
            took: t.elapsed(),
        }
    })
}

/// Escrow on one site that already shipped `shipped` entries: each of its
/// members asks for a 1,500-cent slice (a tap's shortfall) and then for a
/// 50-cent top-up, each request timed (ms, sorted); then the site ships
/// `entries` again under new keys, each usage taking its amount from its
/// member's slice, timed as an ingestion.
fn escrow(
    central: &Central,
    site: &str,
    shipped: usize,
    entries: &[WireEntry],
) -> (Vec<f64>, Ingestion) {
    let (rt, http, base) = client_of(central);
    rt.block_on(async {
        let mut times = Vec::new();
        let mut slice_of = Vec::new();
        for (round, (want, shortfall)) in [(1500, true), (50, false)].into_iter().enumerate() {
            for k in 0..SITE_MEMBERS {
                let ask = EscrowAsk {
                    site_id: site.into(),
                    request_id: format!("bench-{round}-{k}"),
                    member: site_member(site, k),
                    credit: "printing".into(),
                    want,
                    shortfall,
                };
                let t = Instant::now();
                let grant: EscrowGrant = post(&http, format!("{base}/v1/escrow"), site, &ask).await;
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                if round == 0 {
                    slice_of.push(grant.slices.first().map(|s| s.id));
                }
            }
        }
        times.sort_by(f64::total_cmp);
        let taking: Vec<WireEntry> = as_site(entries, site)
            .into_iter()
            .enumerate()
            .map(|(i, mut e)| {
                // The slice of the member `as_site` gave the entry.
                let slice = slice_of[e.seq as usize % SITE_MEMBERS];
                e.seq = (shipped + i + 1) as i64;
                let key = format!("{}-escrow", e.body["key"].as_str().unwrap_or(""));
                e.body["key"] = serde_json::Value::String(key);
                let amount = e.body["amount"].as_i64().unwrap_or(0);
                e.body["slices"] = match slice {
                    Some(slice) => serde_json::json!([[slice, amount]]),
                    None => serde_json::json!([]),
                };
                e.body["allowance"] = serde_json::json!(0);
                e
            })
            .collect();
        let t = Instant::now();
        let batches = ship(http.clone(), base.clone(), site.into(), Arc::new(taking)).await;
        let ingestion = Ingestion {
            entries: entries.len(),
            batches,
            took: t.elapsed(),
        };
        (times, ingestion)
    })
}

/// Members of each ingesting site, at the centre.
const SITE_MEMBERS: usize = 100;

/// Site `site`'s member `k` (`ber-1-m007`).
fn site_member(site: &str, k: usize) -> String {
    format!("{site}-m{k:03}")
}

/// `entries` as `site` ships them: each usage by one of the site's own
/// members in turn (members mostly charge at their home site; were the
/// sites' usages all by the same members, their batches would wait for
/// each other on those members' lots).
fn as_site(entries: &[WireEntry], site: &str) -> Vec<WireEntry> {
    entries
        .iter()
        .map(|e| {
            let mut e = e.clone();
            let member = site_member(site, e.seq as usize % SITE_MEMBERS);
            e.body["member"] = serde_json::Value::String(member);
            e
        })
        .collect()
}

/// The chain's grants file: the daemon tests' (alice, bob, carol, dave:
/// the catch-up sites' members) and [`SITE_MEMBERS`] members of each
/// ingesting site, each with $20.00 of printing and 10 room hours.
fn chain_grants(sites: &[&str]) -> String {
    let mut text = GRANTS.to_string();
    for site in sites {
        for k in 0..SITE_MEMBERS {
            let id = site_member(site, k);
            text += &format!(
                "\n[[member]]\nid = \"{id}\"\nname = \"{id}\"\n  [[member.grant]]\n  id = \"start\"\n  credit = \"printing\"\n  amount = 2000\n  from = 2026-01-01\n  [[member.grant]]\n  id = \"rooms\"\n  credit = \"room-hours\"\n  amount = 600\n  from = 2026-01-01\n"
            );
        }
    }
    text
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn quoted(sites: &[&str]) -> String {
    sites
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `tallyd central` on `port`, issuing the chain's lots from `grants`
/// (read again every 5 minutes, the default), as a chain's centre does:
/// each usage applied draws from its member's lots, then is overage.
/// Waits until the lots are issued (at the first start).
fn centre(pg: &Postgres, port: u16, grants: &str) -> Central {
    let central = Central::start_with_grants_every(pg, port, grants, "5m");
    let t = Instant::now();
    while pg.count("SELECT count(*) FROM lots") == 0 {
        assert!(t.elapsed() < STUCK, "no lots issued:\n{}", central.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    central
}

/// A chain's site: `tallyd run` shipping to a centre on `port` (not
/// started yet), the bench's own writer on its ledger (as `tallyd charge`
/// is), and a read-only connection that watches its outbox.
struct ChainSite {
    id: &'static str,
    port: u16,
    site: Site,
    daemon: Daemon,
    ledger: Ledger,
    watch: Connection,
}

impl ChainSite {
    /// Starts the daemon and waits until it found the centre away.
    fn start(id: &'static str) -> ChainSite {
        ChainSite::start_on(id, free_port(), "max_backoff = \"1s\"\n")
    }

    /// As [`ChainSite::start`], shipping to `port`, with `more` lines of
    /// `[central]` (none: the default `max_backoff`).
    fn start_on(id: &'static str, port: u16, more: &str) -> ChainSite {
        let site = Site::new(&[]);
        std::fs::write(site.path("central.token"), site_token(id) + "\n").expect("token file");
        site.write_config_with(
            &[],
            &format!(
                "\n[central]\nurl = \"http://127.0.0.1:{port}\"\nsite_id = \"{id}\"\ntoken_file = \"central.token\"\nbatch = {BATCH}\n{more}"
            ),
        );
        let daemon = site.start();
        daemon.wait_ready();
        daemon.wait_log("central unreachable", Duration::from_secs(20));
        let config = Config::load(&site.path("tallyd.toml")).expect("the site's config");
        let ledger = Ledger::open(&site.path("ledger.db"), config.site()).expect("open");
        let watch =
            Connection::open_with_flags(site.path("ledger.db"), OpenFlags::SQLITE_OPEN_READ_ONLY)
                .expect("open the ledger read-only");
        ChainSite {
            id,
            port,
            site,
            daemon,
            ledger,
            watch,
        }
    }

    /// The outbox: (acknowledged seq, last seq written), in epoch 1 (a new
    /// epoch here would be a bug: nothing was restored or cloned).
    fn outbox(&self) -> (i64, i64) {
        let (epoch, acked, last) = self
            .watch
            .query_row(
                "SELECT epoch, acked_seq,
                        COALESCE((SELECT MAX(seq) FROM outbox o WHERE o.epoch = s.epoch), 0)
                 FROM outbox_site s",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("outbox position");
        assert_eq!(epoch, 1, "site {} moved to epoch {epoch}", self.id);
        (acked, last)
    }
}

/// What a catch-up took, from the centre serving.
struct CatchUp {
    entries: usize,
    /// Until the site's hello reached the centre (its next retry).
    retry: Duration,
    /// Until every entry was acknowledged.
    total: Duration,
}

/// Charges `n` usages over the 3 days before now while the centre is
/// away, starts the centre and times the catch-up.
fn catch_up(pg: &Postgres, grants: &str, cs: &mut ChainSite, n: usize) -> (Central, CatchUp) {
    charge(&mut cs.ledger, 0, n, unix_now() - 3 * DAY, 3 * DAY);
    assert_eq!(cs.outbox(), (0, n as i64), "{n} entries wait");
    let central = centre(pg, cs.port, grants);
    let t = Instant::now();
    let mut retry = None;
    loop {
        if retry.is_none() && central.log().contains("site registered") {
            retry = Some(t.elapsed());
        }
        let (acked, last) = cs.outbox();
        if acked == last {
            break;
        }
        assert!(
            t.elapsed() < STUCK,
            "site {}: {acked} of {last} acknowledged after {STUCK:?}:\n{}",
            cs.id,
            cs.site.log()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let total = t.elapsed();
    let retry = retry.unwrap_or(total);
    let held = pg.count(&format!(
        "SELECT count(*) FROM usages WHERE site_id = '{}'",
        cs.id
    ));
    assert_eq!(held, n as i64, "site {}: usages at the centre", cs.id);
    (
        central,
        CatchUp {
            entries: n,
            retry,
            total,
        },
    )
}

/// Charges `samples` usages one at a time, each after a random pause of
/// 50-300 ms (so each meets the shipper at a random point of its wait),
/// and times each from its commit to its acknowledgement in the outbox,
/// watched every millisecond. Returns the times in milliseconds, sorted.
///
/// What it is made of (src/daemon/shipper.rs): while idle the shipper
/// looks every `PEEK` (20 ms) whether the ledger changed (`PRAGMA
/// data_version`), so a commit waits 0-20 ms for it; then one round: the
/// outbox read, a POST applied in one PostgreSQL transaction (synced, with
/// the usage's draw from lots), and the acknowledgement written to the
/// ledger (synced). A round that shipped something is followed at once by
/// another.
fn latency(cs: &mut ChainSite, samples: usize) -> Vec<f64> {
    let mut waiting: VecDeque<(i64, Instant)> = VecDeque::new();
    let mut times = Vec::with_capacity(samples);
    let mut charged = 0;
    let mut next = Instant::now();
    while times.len() < samples {
        if charged < samples && Instant::now() >= next {
            let req = usage_request(1_000_000 + charged, unix_now());
            cs.ledger.debit(&req).expect("debit");
            let committed = Instant::now();
            let (_, seq) = cs.outbox();
            waiting.push_back((seq, committed));
            charged += 1;
            next = committed + Duration::from_millis(fastrand::u64(50..=300));
        }
        let (acked, _) = cs.outbox();
        let now = Instant::now();
        while let Some(&(seq, committed)) = waiting.front() {
            if seq > acked {
                assert!(
                    now - committed < STUCK,
                    "site {}: seq {seq} not acknowledged after {STUCK:?}",
                    cs.id
                );
                break;
            }
            times.push((now - committed).as_secs_f64() * 1000.0);
            waiting.pop_front();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    times.sort_by(f64::total_cmp);
    times
}

/// The `p`th percentile (0-100) of sorted `v`, nearest rank.
fn percentile(v: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn print_catch_up(what: &str, c: &CatchUp) {
    let drain = c.total.saturating_sub(c.retry);
    println!(
        "catch-up, 3 days of a {what} ({} entries): {:.2} s from the centre serving to all acknowledged = retry wait {:.2} s + drain {:.2} s ({:.0} entries/s; goal >= 500)",
        c.entries,
        c.total.as_secs_f64(),
        c.retry.as_secs_f64(),
        drain.as_secs_f64(),
        rate(c.entries, drain)
    );
}

/// Sites in the outage measurement, each a large site's day (300 entries).
const OUTAGE_SITES: [&str; 6] = ["ber-1", "ber-2", "ber-3", "ber-4", "ber-5", "ber-6"];
const OUTAGE_DAY: usize = 300;

/// With `CENTRAL_BENCH_OUTAGE=SECS`: [`OUTAGE_SITES`] on their own
/// PostgreSQL, shipping with the default `max_backoff`, each charging a
/// day's entries while the centre is away for SECS (long enough for the
/// backoff to reach its cap: from then on a longer outage looks the same
/// to a site); then each timed from the centre serving until its last
/// entry is acknowledged. Sorted.
fn outage(secs: u64, grants: &str) -> Vec<f64> {
    let pg = Postgres::start_durable();
    let port = free_port();
    let away = Instant::now();
    let mut sites: Vec<ChainSite> = OUTAGE_SITES
        .iter()
        .map(|id| ChainSite::start_on(id, port, ""))
        .collect();
    for cs in &mut sites {
        charge(&mut cs.ledger, 0, OUTAGE_DAY, unix_now() - DAY, DAY);
    }
    std::thread::sleep(Duration::from_secs(secs).saturating_sub(away.elapsed()));
    let central = centre(&pg, port, grants);
    let t = Instant::now();
    let mut done: Vec<Option<f64>> = vec![None; sites.len()];
    while done.iter().any(Option::is_none) {
        for (cs, d) in sites.iter().zip(done.iter_mut()) {
            let (acked, last) = cs.outbox();
            if d.is_none() && acked == last {
                *d = Some(t.elapsed().as_secs_f64());
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(600),
            "not all acknowledged after 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for cs in &mut sites {
        cs.daemon.stop();
    }
    drop(central);
    let mut times: Vec<f64> = done.into_iter().flatten().collect();
    times.sort_by(f64::total_cmp);
    times
}

fn main() {
    if support::postgres::installed().is_none() {
        eprintln!(
            "central bench: PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin); apt-get install postgresql"
        );
        std::process::exit(1);
    }
    let samples: usize = std::env::var("CENTRAL_BENCH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    if let Some(secs) = std::env::var("CENTRAL_BENCH_OUTAGE")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        let times = outage(secs, &chain_grants(&[]));
        let each: Vec<String> = times.iter().map(|t| format!("{t:.1}")).collect();
        println!(
            "\na central outage of {secs} s (the backoff at its cap, as in a day's), {} sites at the default max_backoff (1m), {OUTAGE_DAY} entries each: all acknowledged {:.1} s after the centre served (each site: {} s; goal: a day's outage recovered in under 120 s)",
            times.len(),
            times.last().copied().unwrap_or(0.0),
            each.join(", ")
        );
        return;
    }
    let pg = Postgres::start_durable();

    // Central ingestion: one site, then six at once.
    let all = [&["ber-1"][..], &PARALLEL[..]].concat();
    let grants = chain_grants(&all);
    let entries = shipped_entries(INGEST_ONE);
    let central = centre(&pg, free_port(), &grants);
    let single = ingest(&central, &["ber-1"], &entries);
    let parallel = ingest(&central, &PARALLEL, &entries[..INGEST_EACH]);
    let (escrow_times, escrowed) = escrow(&central, "ber-1", INGEST_ONE, &entries[..INGEST_EACH]);
    drop(central);
    let sent = (single.entries + parallel.entries + escrowed.entries) as i64;
    let sites = quoted(&all);
    let held = pg.count(&format!(
        "SELECT count(*) FROM usages WHERE site_id IN ({sites})"
    ));
    let journal = pg.count(&format!(
        "SELECT count(*) FROM journal WHERE site_id IN ({sites})"
    ));
    let conflicts = pg.count("SELECT count(*) FROM ingest_conflicts");
    assert_eq!(
        (held, journal, conflicts),
        (sent, sent, 0),
        "PostgreSQL holds every usage sent, once"
    );
    // Every usage drew its whole amount once: from lots, and overage beyond.
    let spent = |sql: &str| {
        pg.count(&format!(
            "SELECT COALESCE(sum({sql}), 0) FROM usages u WHERE u.site_id IN ({sites})"
        ))
    };
    let charged = spent("u.amount");
    let drawn =
        spent("(SELECT COALESCE(sum(-h.delta), 0) FROM lot_history h WHERE h.usage_id = u.id)");
    let overage =
        spent("(SELECT COALESCE(sum(o.amount), 0) FROM central_overage o WHERE o.usage_id = u.id)");
    assert_eq!(
        drawn + overage,
        charged,
        "usages charged {charged}: {drawn} drawn from lots, {overage} overage"
    );

    let slice_takes = pg.count("SELECT COALESCE(sum(consumed), 0) FROM escrow_slices");
    let slice_placed = pg.count("SELECT COALESCE(sum(amount), 0) FROM escrow_slices");
    let slice_history =
        pg.count("SELECT COALESCE(-sum(delta), 0) FROM lot_history WHERE slice_id IS NOT NULL");
    assert_eq!(
        slice_takes, slice_history,
        "each slice's consumed is its history"
    );
    assert!(slice_takes > 0, "usages took from slices");

    // Catch-up: the very busy site, then the large one, which goes on
    // shipping for the latency.
    let mut busy = ChainSite::start("ber-9");
    let (central, busy_catch_up) = catch_up(&pg, &grants, &mut busy, BUSY_SITE);
    busy.daemon.stop();
    drop(central);
    let mut large = ChainSite::start("ber-8");
    let (central, large_catch_up) = catch_up(&pg, &grants, &mut large, LARGE_SITE);
    let times = latency(&mut large, samples);
    let held = pg.count("SELECT count(*) FROM usages WHERE site_id = 'ber-8'");
    assert_eq!(
        held,
        (LARGE_SITE + samples) as i64,
        "ber-8's usages at the centre"
    );
    large.daemon.stop();
    drop(central);

    println!(
        "\ncentral ingestion, 1 site:   {:>6.0} entries/s   ({} entries, {} batches of {BATCH}, {:.2} s)",
        rate(single.entries, single.took),
        single.entries,
        single.batches,
        single.took.as_secs_f64()
    );
    println!(
        "central ingestion, 6 sites:  {:>6.0} entries/s   ({} entries, {} batches of {BATCH}, {:.2} s; goal >= 2000)",
        rate(parallel.entries, parallel.took),
        parallel.entries,
        parallel.batches,
        parallel.took.as_secs_f64()
    );
    println!(
        "  PostgreSQL holds {sent} usages and {sent} journal entries for them: every one sent, once"
    );
    println!(
        "  they drew {charged} (cents and minutes): {drawn} from the chain's lots, {overage} overage"
    );
    println!(
        "central ingestion, escrow takes, 1 site: {:>6.0} entries/s   ({} entries, {} batches of {BATCH}, {:.2} s; each usage taking from its member's slice; {:.2} of the 1-site rate without)",
        rate(escrowed.entries, escrowed.took),
        escrowed.entries,
        escrowed.batches,
        escrowed.took.as_secs_f64(),
        rate(escrowed.entries, escrowed.took) / rate(single.entries, single.took)
    );
    println!(
        "  slices consumed {slice_takes} of {slice_placed} placed; history rows naming a slice take {slice_history}",
    );
    println!(
        "escrow fetch, loopback: p50 {:.0} ms, p99 {:.0} ms   ({} requests: a 1,500-cent shortfall and a 50-cent top-up per member; max {:.0} ms; goal p99 < 300 ms)",
        percentile(&escrow_times, 50.0),
        percentile(&escrow_times, 99.0),
        escrow_times.len(),
        escrow_times.last().copied().unwrap_or(0.0)
    );
    print_catch_up("large site at 300/day", &large_catch_up);
    print_catch_up("very busy site at 10,000/day", &busy_catch_up);
    println!(
        "commit to acknowledgement, loopback: p50 {:.0} ms, p99 {:.0} ms   ({samples} usages one at a time; max {:.0} ms; goal p50 < 2 s, p99 < 10 s at 100 ms RTT)",
        percentile(&times, 50.0),
        percentile(&times, 99.0),
        times.last().copied().unwrap_or(0.0)
    );
}
