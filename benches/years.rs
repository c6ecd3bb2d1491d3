//! `cargo bench --bench years`: is tallyd still fast after years of use?
//!
//! Builds (once; cached under `target/bench-years/`) a ledger of 2,000
//! members and N usages over five years, through the ledger's own functions
//! in big transactions: print debits, room sessions, holds and settles,
//! refunds, a monthly printing and room-time grant per member and the
//! expiry sweep of last month's lots. Sizes: 100,000 usages and
//! `YEARS_LARGE` (default 10,000,000).
//!
//! Then, against each ledger in the same run, it times the release binary
//! (`target/release/tallyd`, built first, or `YEARS_BIN`): `balance MEMBER`, `balance`,
//! `statement MEMBER` for one month, `report --month` by each grouping,
//! `charge`, `grant`, `refund` and `tallyd run` (no printers) to READY,
//! with each command's peak RSS (`wait4`); SQLite's `quick_check` on its
//! own line (time and MB/s: it reads every page); and bytes per usage.
//! The last column is large / small. Goals at the large size: every
//! command under 100 ms, start under 1 s, RSS under 64 MiB, and no more
//! than 3x the small ledger's value.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tallyd::ledger::integrity;
use tallyd::ledger::lots::{self, GrantRequest};
use tallyd::ledger::{
    expiry, usage, HoldOutcome, Ledger, Origin, Payable, Site, SourceKind, UsageRequest,
};

const MEMBERS: usize = 2_000;
/// 2021-01-01 00:00 UTC: five years of history end before 2026.
const START: i64 = 1_609_459_200;
const MONTHS: usize = 60;
const MONTH: i64 = 2_629_746; // an average month, in seconds
const SMALL: usize = 100_000;
/// Usages per transaction while building.
const BATCH: usize = 20_000;
/// Runs of each command; the median time and the highest RSS are shown.
const RUNS: usize = 5;

fn member(m: usize) -> String {
    format!("member-{m:04}")
}

fn month_start(month: usize) -> i64 {
    START + month as i64 * MONTH
}

/// Each member's monthly printing and room-time lots, expiring at the end
/// of the month, after the sweep of the month before.
fn month_grants(conn: &rusqlite::Connection, month: usize) -> tallyd::ledger::Result<()> {
    let (from, to) = (month_start(month), month_start(month + 1));
    expiry::expire_due(conn, from)?;
    for m in 0..MEMBERS {
        for (credit, amount) in [("printing", 2_000), ("room-hours", 600)] {
            lots::grant(
                conn,
                &GrantRequest {
                    member: member(m),
                    credit: credit.into(),
                    amount,
                    valid_from: from,
                    expires_at: Some(to),
                    source: SourceKind::Plan,
                    source_key: format!("plan:{}:{credit}:{month}", member(m)),
                    note: "monthly plan".into(),
                    at: from,
                },
            )?;
        }
    }
    Ok(())
}

/// Usage `i` of `n` in month `month`: 70% print debits, 15% room
/// sessions, 10% held print jobs settled, and a refund of the last print
/// debit for every 20th usage (5%).
fn one_usage(
    conn: &rusqlite::Connection,
    site: &Site,
    i: usize,
    at: i64,
    last_print: &mut Option<String>,
) -> tallyd::ledger::Result<()> {
    let who = Some(member((i * 7919) % MEMBERS));
    let key = format!("u:{i}");
    let print = |amount: i64| UsageRequest {
        key: key.clone(),
        member: who.clone(),
        origin: Origin::Print {
            printer: format!("printer-{}", i % 4),
        },
        payable: Payable::Printing,
        amount,
        detail: format!("{{\"job\":{i},\"impressions\":{}}}", 1 + i % 12),
        at,
    };
    match i % 20 {
        0..=13 => {
            usage::debit(conn, site, &print(10 + (i % 40) as i64 * 5))?;
            *last_print = Some(key.clone());
        }
        14..=16 => {
            let req = UsageRequest {
                origin: Origin::Session {
                    resource: format!("room-{}", i % 3),
                },
                payable: Payable::Time {
                    resource_type: "meeting-room".into(),
                },
                amount: 15 + (i % 8) as i64 * 15,
                detail: "{}".into(),
                ..print(0)
            };
            usage::debit(conn, site, &req)?;
        }
        17 | 18 => {
            if let HoldOutcome::Placed(_) = usage::hold(conn, site, &print(200))? {
                let detail = format!("{{\"job\":{i},\"impressions\":{}}}", 1 + i % 12);
                usage::settle(conn, site, &key, 20 + (i % 30) as i64 * 5, &detail, at + 60)?;
            }
        }
        _ => {
            usage::debit(conn, site, &print(50))?;
            if let Some(k) = last_print.take() {
                usage::refund(conn, &k, "misprint", at + 30)?;
            }
        }
    }
    Ok(())
}

/// Builds a ledger of `n` usages at `path` (via a temporary file, so an
/// interrupted build is not reused); returns usages per second.
fn build(path: &Path, n: usize) -> f64 {
    let tmp = path.with_extension("building");
    for f in [tmp.clone(), tmp.with_extension("building-wal")] {
        let _ = std::fs::remove_file(f);
    }
    let mut ledger = Ledger::open(&tmp, Site::default()).expect("open");
    // Building only: a page cache that holds the whole ledger, and no
    // fsync per batch (an interrupted build is thrown away anyway).
    let conn = ledger.conn();
    conn.pragma_update(None, "cache_size", -4_000_000)
        .and_then(|()| conn.pragma_update(None, "synchronous", "OFF"))
        .expect("build pragmas");
    ledger
        .write(|conn, _| {
            lots::define_time_credit(
                conn,
                "room-hours",
                "Room hours",
                &["meeting-room".to_string()],
            )?;
            (0..MEMBERS).try_for_each(|m| {
                lots::ensure_member(conn, &member(m), &member(m), START).map(|_| ())
            })
        })
        .expect("members");
    let t = Instant::now();
    let per_month = n.div_ceil(MONTHS);
    let mut last_print = None;
    let mut done = 0;
    for month in 0..MONTHS {
        ledger.write(|c, _| month_grants(c, month)).expect("grants");
        let end = (done + per_month).min(n);
        while done < end {
            let upto = (done + BATCH).min(end);
            ledger
                .write(|conn, site| {
                    for i in done..upto {
                        let into = (i - month * per_month) as i64 * MONTH / per_month as i64;
                        one_usage(conn, site, i, month_start(month) + into, &mut last_print)?;
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
    let rate = n as f64 / t.elapsed().as_secs_f64();
    // As a daemon that ran all along would have: the chains' tips recorded.
    integrity::verify_since_recorded(ledger.conn()).expect("chains");
    ledger
        .conn()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    drop(ledger);
    // The build wrote without fsync: flush it now, or the first timed
    // commands' commits would pay for writing back the whole file (the
    // write commands measured 64 ms at 1,000,000 usages right after a
    // build, and 5 ms once the kernel had written it back).
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .expect("sync the built ledger");
    std::fs::rename(&tmp, path).expect("rename");
    rate
}

/// A config on `ledger`, no printers.
fn config(dir: &Path, ledger: &Path) -> PathBuf {
    let path = dir.join(format!(
        "{}.toml",
        ledger.file_stem().unwrap().to_string_lossy()
    ));
    let text = format!(
        "[site]\nname = \"Bench\"\ntimezone = \"UTC\"\nledger = \"{}\"\n",
        ledger.display()
    );
    std::fs::write(&path, text).expect("config");
    path
}

/// Waits for `child` with `wait4`: its exit status and peak RSS in KiB.
fn reap(pid: u32) -> (i32, u64) {
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own unreaped child; both pointers are valid.
    let r = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
    assert_eq!(r, pid as i32, "wait4");
    (status, usage.ru_maxrss as u64)
}

/// One run of `tallyd ARGS` on `config`: wall time and peak RSS (KiB).
#[allow(clippy::zombie_processes)] // reaped by `reap` (wait4), for its rusage
fn run_once(bin: &Path, config: &Path, args: &[String]) -> (Duration, u64) {
    let t = Instant::now();
    let child = Command::new(bin)
        .args(args)
        .env("TALLYD_CONFIG", config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tallyd");
    let (status, rss) = reap(child.id());
    let took = t.elapsed();
    assert_eq!(status, 0, "tallyd {args:?} failed");
    (took, rss)
}

/// `tallyd run` to its `tallyd ready` line, then SIGTERM: time and RSS.
#[allow(clippy::zombie_processes)] // reaped by `reap` (wait4), for its rusage
fn start_once(bin: &Path, config: &Path) -> (Duration, u64) {
    let t = Instant::now();
    let mut child = Command::new(bin)
        .args(["run", "--log-format", "text"])
        .env("TALLYD_CONFIG", config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tallyd run");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let ready = loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("tallyd ready") => break t.elapsed(),
            Some(_) => {}
            None => panic!("tallyd run exited before ready"),
        }
    };
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    std::thread::spawn(move || lines.for_each(drop));
    let (_, rss) = reap(child.id());
    (ready, rss)
}

/// Median time and highest RSS of [`RUNS`] runs of `f(run)`.
fn measure(mut f: impl FnMut(usize) -> (Duration, u64)) -> (Duration, u64) {
    let mut times = Vec::new();
    let mut rss = 0;
    for run in 0..RUNS {
        let (t, r) = f(run);
        times.push(t);
        rss = rss.max(r);
    }
    times.sort();
    (times[RUNS / 2], rss)
}

struct Figures {
    usages: usize,
    bytes: u64,
    rows: Vec<(String, Duration, u64)>,
    quick_check: Duration,
}

fn commands(bin: &Path, dir: &Path, ledger: &Path, usages: usize) -> Figures {
    let config = config(dir, ledger);
    let who = member(17);
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // One write first, untimed: it migrates a ledger built by an older
    // tallyd, as the first command after an upgrade would.
    run_once(
        bin,
        &config,
        &s(&["grant", &who, "--amount", "1.00", "--reason", "warm-up"]),
    );
    let mut rows = Vec::new();
    let mut read = |name: &str, args: Vec<String>| {
        let (t, rss) = measure(|_| run_once(bin, &config, &args));
        rows.push((name.to_string(), t, rss));
    };
    read("balance MEMBER", s(&["balance", &who]));
    read("balance", s(&["balance"]));
    read(
        "statement MEMBER (1 month)",
        s(&[
            "statement",
            &who,
            "--from",
            "2025-06-01",
            "--to",
            "2025-06-30",
        ]),
    );
    for by in ["member", "printer", "resource", "team"] {
        read(
            &format!("report --month --by {by}"),
            s(&["report", "--month", "2025-06", "--by", by]),
        );
    }
    let key = |what: &str, run: usize| format!("bench:{what}:{stamp}:{run}");
    let (t, rss) = measure(|run| {
        run_once(
            bin,
            &config,
            &s(&[
                "charge",
                &who,
                "--amount",
                "0.10",
                "--reason",
                "bench",
                "--key",
                &key("charge", run),
            ]),
        )
    });
    rows.push(("charge".into(), t, rss));
    let (t, rss) = measure(|run| {
        run_once(
            bin,
            &config,
            &s(&[
                "grant",
                &who,
                "--amount",
                "1.00",
                "--reason",
                "bench",
                "--key",
                &key("grant", run),
            ]),
        )
    });
    rows.push(("grant".into(), t, rss));
    let (t, rss) = measure(|run| {
        let charged = format!("manual:{}", key("charge", run));
        run_once(bin, &config, &s(&["refund", &charged, "--reason", "bench"]))
    });
    rows.push(("refund".into(), t, rss));
    let (t, rss) = measure(|_| start_once(bin, &config));
    rows.push(("run: start to READY".into(), t, rss));

    let conn = rusqlite::Connection::open(ledger).expect("open");
    let t = Instant::now();
    let verdict: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .expect("quick_check");
    let quick_check = t.elapsed();
    assert_eq!(verdict, "ok");
    Figures {
        usages,
        bytes: std::fs::metadata(ledger).expect("size").len(),
        rows,
        quick_check,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Set to N, the bench builds the ledger of N usages and exits.
const BUILD_ONLY: &str = "YEARS_BUILD_ONLY";

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-years");
    if let Some(n) = std::env::var(BUILD_ONLY).ok().and_then(|v| v.parse().ok()) {
        let rate = build(&dir.join(format!("ledger-{n}.db")), n);
        println!("ledger of {n} usages: built at {rate:.0} usages/s");
        return;
    }
    let large: usize = std::env::var("YEARS_LARGE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // YEARS_BIN: time another build of tallyd (say, the one before a
    // change) against the same ledgers.
    let bin = match std::env::var_os("YEARS_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => {
            let status = Command::new(env!("CARGO"))
                .args(["build", "--release", "--bin", "tallyd"])
                .status()
                .expect("cargo build");
            assert!(status.success(), "cargo build --release");
            root.join("target/release/tallyd")
        }
    };
    std::fs::create_dir_all(&dir).expect("cache dir");

    let mut figures = Vec::new();
    for n in [SMALL, large] {
        let path = dir.join(format!("ledger-{n}.db"));
        if path.exists() {
            println!("ledger of {n} usages: cached at {}", path.display());
        } else {
            // In a process of its own: a command's peak RSS (wait4) counts
            // the memory of the process that spawned it, which the build's
            // page cache would swell.
            let status = Command::new(std::env::current_exe().expect("own path"))
                .env(BUILD_ONLY, format!("{n}"))
                .status()
                .expect("build");
            assert!(status.success(), "build of {n} usages");
        }
        figures.push(commands(&bin, &dir, &path, n));
    }
    let (small, big) = (&figures[0], &figures[1]);
    println!(
        "\n{:<28} {:>20} {:>20} {:>7}",
        "",
        format!("{} usages", small.usages),
        format!("{} usages", big.usages),
        "ratio"
    );
    for ((name, ts, rs), (_, tb, rb)) in small.rows.iter().zip(&big.rows) {
        println!(
            "{name:<28} {:>9} {:>4} MiB {:>9} {:>4} MiB {:>6.2}x",
            ms(*ts),
            rs / 1024,
            ms(*tb),
            rb / 1024,
            tb.as_secs_f64() / ts.as_secs_f64()
        );
    }
    let mbs = |f: &Figures| f.bytes as f64 / 1e6 / f.quick_check.as_secs_f64();
    println!(
        "{:<28} {:>9} {:>4.0} MB/s {:>8} {:>4.0} MB/s {:>6.2}x",
        "SQLite quick_check",
        ms(small.quick_check),
        mbs(small),
        ms(big.quick_check),
        mbs(big),
        big.quick_check.as_secs_f64() / small.quick_check.as_secs_f64()
    );
    let per = |f: &Figures| f.bytes as f64 / f.usages as f64;
    println!(
        "{:<28} {:>9.0} B ({:.0} MB) {:>6.0} B ({:.0} MB) {:>4.2}x",
        "bytes per usage (file/N)",
        per(small),
        small.bytes as f64 / 1e6,
        per(big),
        big.bytes as f64 / 1e6,
        per(big) / per(small)
    );
}
