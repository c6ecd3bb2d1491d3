//! `cargo bench --bench console`: how long the console's pages take on a
//! big ledger, and how much memory serving them adds.
//!
//! Builds (once; cached under `target/bench-console/`) a ledger of 2,000
//! members and `CONSOLE_USAGES` print debits (default 1,000,000) over five
//! years, with each member's monthly printing lot, through the ledger's own
//! functions. Then serves the console router on loopback (as the tests do),
//! logs in, and times GET of the member page (balance, team, this month's
//! statement), a member's statement of one month in the middle of the
//! ledger, and the monthly report of that month (by member and by
//! printer): the median of 9 runs, end to end over HTTP. It also prints
//! the process's RSS before the console exists, once it is serving idle,
//! and after the pages were rendered. Goal (issue 17): each page under
//! 50 ms at the 10-million-usage ledger.

use std::path::Path;
use std::time::{Duration, Instant};
use tallyd::clock::Clock;
use tallyd::config::Config;
use tallyd::console::{self, password, ConsoleState};
use tallyd::ledger::lots::{self, GrantRequest};
use tallyd::ledger::writer::Writer;
use tallyd::ledger::{usage, Ledger, Origin, Payable, Site, SourceKind, UsageRequest};

const MEMBERS: usize = 2_000;
/// 2021-01-01 00:00 UTC.
const START: i64 = 1_609_459_200;
const MONTHS: usize = 60;
const MONTH: i64 = 2_629_746;
const BATCH: usize = 20_000;
const RUNS: usize = 9;

fn member(m: usize) -> String {
    format!("member-{m:04}")
}

fn build(path: &Path, n: usize) {
    let tmp = path.with_extension("building");
    let _ = std::fs::remove_file(&tmp);
    let mut ledger = Ledger::open(&tmp, Site::default()).expect("open");
    ledger
        .write(|c, _| {
            (0..MEMBERS)
                .try_for_each(|m| lots::ensure_member(c, &member(m), &member(m), START).map(|_| ()))
        })
        .expect("members");
    let per_month = n.div_ceil(MONTHS);
    let mut done = 0;
    let t = Instant::now();
    for month in 0..MONTHS {
        let from = START + month as i64 * MONTH;
        ledger
            .write(|c, _| {
                (0..MEMBERS).try_for_each(|m| {
                    lots::grant(
                        c,
                        &GrantRequest {
                            member: member(m),
                            credit: "printing".into(),
                            amount: 5_000,
                            valid_from: from,
                            expires_at: None,
                            source: SourceKind::Plan,
                            source_key: format!("plan:{m}:{month}"),
                            note: "monthly plan".into(),
                            at: from,
                        },
                    )
                    .map(|_| ())
                })
            })
            .expect("grants");
        let end = (done + per_month).min(n);
        while done < end {
            let upto = (done + BATCH).min(end);
            ledger
                .write(|c, site| {
                    for i in done..upto {
                        let at = from + (i - month * per_month) as i64 * MONTH / per_month as i64;
                        usage::debit(
                            c,
                            site,
                            &UsageRequest {
                                key: format!("u:{i}"),
                                member: Some(member((i * 7919) % MEMBERS)),
                                origin: Origin::Print {
                                    printer: format!("printer-{}", i % 4),
                                },
                                payable: Payable::Printing,
                                amount: 10 + (i % 40) as i64,
                                detail: format!("{{\"job\":{i},\"impressions\":{}}}", 1 + i % 12),
                                at,
                            },
                        )?;
                    }
                    Ok(())
                })
                .expect("usages");
            done = upto;
        }
        if month % 12 == 11 {
            eprintln!(
                "  built {done} of {n} usages ({:.0}/s)",
                done as f64 / t.elapsed().as_secs_f64()
            );
        }
    }
    drop(ledger);
    std::fs::rename(&tmp, path).expect("rename");
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::var("CONSOLE_USAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-console");
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(format!("ledger-{n}.db"));
    if !path.exists() {
        eprintln!("building a ledger of {n} usages at {}", path.display());
        build(&path, n);
    }
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let hash = password::hash("bench password").expect("hash");
    let text = format!(
        "[site]\ntimezone = \"UTC\"\nledger = \"{}\"\n[[console.manager]]\nname = \"bench\"\npassword_hash = \"{hash}\"\n",
        path.display()
    );
    let config = Config::parse(&text, "bench.toml", &dir).expect("config");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let before = rss_kib();
    let ledger = Ledger::open(&path, config.site()).expect("open");
    let writer = Writer::spawn(ledger).expect("writer");
    let state = ConsoleState::new(config, path.clone(), writer.handle(), Clock::system());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    rt.spawn(async move { axum::serve(listener, console::router(state)).await });
    std::thread::sleep(Duration::from_millis(300));
    let idle = rss_kib();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("client");
    let cookie = rt.block_on(async {
        let page = client
            .get(format!("{base}/console/login"))
            .send()
            .await
            .expect("login")
            .text()
            .await
            .expect("body");
        let at = page.find("name=\"csrf\" value=\"").expect("token") + 19;
        let token = &page[at..at + 64];
        let r = client
            .post(format!("{base}/console/login"))
            .form(&[
                ("csrf", token),
                ("name", "bench"),
                ("password", "bench password"),
            ])
            .send()
            .await
            .expect("post");
        let set = r.headers()["set-cookie"]
            .to_str()
            .expect("cookie")
            .to_string();
        set.split(';').next().expect("pair").to_string()
    });
    // A month in the middle of the ledger's five years: 2023-07.
    let pages = [
        (
            "member page (this month)",
            "/console/member?id=member-0042".to_string(),
        ),
        (
            "statement of one month",
            "/console/member?id=member-0042&from=2023-07-01&to=2023-07-31".to_string(),
        ),
        (
            "report of a month by member",
            "/console/report?month=2023-07&by=member".to_string(),
        ),
        (
            "report of a month by printer",
            "/console/report?month=2023-07&by=printer".to_string(),
        ),
        (
            "report CSV of a month",
            "/console/report.csv?month=2023-07&by=member".to_string(),
        ),
    ];
    println!(
        "console pages on a ledger of {n} usages, {MEMBERS} members, {:.0} MiB; median of {RUNS}",
        bytes as f64 / 1048576.0
    );
    for (name, url) in &pages {
        let mut times: Vec<Duration> = (0..RUNS)
            .map(|_| {
                rt.block_on(async {
                    let t = Instant::now();
                    let r = client
                        .get(format!("{base}{url}"))
                        .header("cookie", &cookie)
                        .send()
                        .await
                        .expect("get");
                    assert!(r.status().is_success(), "{url}: {}", r.status());
                    let body = r.bytes().await.expect("body");
                    assert!(!body.is_empty());
                    t.elapsed()
                })
            })
            .collect();
        times.sort();
        println!(
            "{name:32} {:>8.1} ms",
            times[RUNS / 2].as_secs_f64() * 1000.0
        );
    }
    let after = rss_kib();
    println!(
        "RSS: {before} KiB before the console, {idle} KiB serving idle (+{} KiB), {after} KiB after the pages (+{} KiB)",
        idle.saturating_sub(before),
        after.saturating_sub(before)
    );
}
