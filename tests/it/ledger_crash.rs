//! Crash test: a child process streams keyed debits through the group-commit
//! writer and prints each key once its commit returned; the test kills it with
//! SIGKILL at random moments, again and again, then checks that every printed
//! key is in the ledger exactly once, nothing was charged twice, and every
//! invariant holds.
//!
//! The child is this same test binary, re-run with `TALLYD_CRASH_CHILD` set
//! and only this test selected.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tallyd::ledger::lots::{self, GrantRequest};
use tallyd::ledger::writer::Writer;
use tallyd::ledger::{schema, Ledger, Origin, Payable, Site, SourceKind, UsageRequest};

const CHILD: &str = "TALLYD_CRASH_CHILD";
const ROUND: &str = "TALLYD_CRASH_ROUND";
const MEMBERS: usize = 10;
const THREADS: usize = 4;
const KILLS: usize = 25;

/// Content is a pure function of the key's numbers, so a replay of a key is
/// always the same content.
fn request(round: usize, thread: usize, i: usize) -> UsageRequest {
    UsageRequest {
        key: format!("r{round}-t{thread}-{i}"),
        member: Some(format!("m{}", i % MEMBERS)),
        origin: Origin::Print {
            printer: format!("p{thread}"),
        },
        payable: Payable::Printing,
        amount: 1 + (i % 7) as i64,
        detail: format!("{{\"job\":{i}}}"),
        at: 1_800_000_000,
    }
}

fn child(path: &Path, round: usize) {
    let ledger = Ledger::open(path, Site::default()).expect("child opens ledger");
    let writer = Writer::spawn(ledger).expect("writer starts");
    let mut threads = Vec::new();
    for t in 0..THREADS {
        let handle = writer.handle();
        threads.push(std::thread::spawn(move || {
            // Replay the previous round's first keys: each must be a replay
            // (or new, if that round was killed before reaching it).
            let replays = (0..20).map(|i| (round.saturating_sub(1), i));
            let fresh = (0..).map(|i| (round, i));
            for (r, i) in replays.chain(fresh) {
                let req = request(r, t, i);
                let key = req.key.clone();
                match handle
                    .call(move |conn| tallyd::ledger::usage::debit(conn, &Site::default(), &req))
                {
                    Ok(_) => {
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "ACK {key}");
                        let _ = out.flush();
                    }
                    Err(e) => panic!("debit {key} failed: {e}"),
                }
            }
        }));
    }
    for t in threads {
        let _ = t.join();
    }
}

fn setup(path: &Path) {
    let mut ledger = Ledger::open(path, Site::default()).expect("open");
    ledger
        .write(|conn, _| {
            for m in 0..MEMBERS {
                let id = format!("m{m}");
                lots::ensure_member(conn, &id, &id, 0)?;
                lots::grant(
                    conn,
                    &GrantRequest {
                        member: id.clone(),
                        credit: "printing".into(),
                        amount: 10_000_000,
                        valid_from: 0,
                        expires_at: None,
                        source: SourceKind::Account,
                        source_key: format!("seed:{id}"),
                        note: String::new(),
                        at: 0,
                    },
                )?;
            }
            Ok(())
        })
        .expect("seed");
}

/// This test's name as libtest lists it (`ledger_crash::sigkill_…`, the
/// module path without the crate), so that the child runs only this test.
fn this_test() -> String {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    format!("{module}::sigkill_loses_no_acknowledged_debit_and_charges_none_twice")
}

/// A small deterministic generator for kill delays (no extra crates).
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn sigkill_loses_no_acknowledged_debit_and_charges_none_twice() {
    if let Ok(path) = std::env::var(CHILD) {
        let round = std::env::var(ROUND)
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        child(Path::new(&path), round);
        return;
    }
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    setup(&path);
    let exe = std::env::current_exe().expect("test binary path");
    let mut acked: HashSet<String> = HashSet::new();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
    let mut kills = 0;
    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args(["--exact", &this_test(), "--nocapture", "--test-threads=1"])
            .env(CHILD, &path)
            .env(ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(key) = line.strip_prefix("ACK ") {
                    let _ = tx.send(key.to_string());
                }
            }
        });
        // Wait for the first acknowledgement so every kill lands mid-stream,
        // then a random 5–150 ms more.
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("child acknowledges a debit");
        acked.insert(first);
        let delay = Duration::from_millis(5 + next(&mut seed) % 145);
        let until = Instant::now() + delay;
        while Instant::now() < until {
            std::thread::yield_now();
        }
        child.kill().expect("SIGKILL child");
        let status = child.wait().expect("reap child");
        assert!(!status.success(), "child was killed, not finished");
        kills += 1;
        let _ = reader.join();
        acked.extend(rx.try_iter());
    }
    assert_eq!(kills, KILLS);

    let ledger = Ledger::open(&path, Site::default()).expect("reopen after kills verifies history");
    let conn = ledger.conn();
    schema::verify(conn).expect("every lot equals its history");
    for key in &acked {
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM usages WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .expect("count");
        assert_eq!(n, 1, "acknowledged key {key} is in the ledger exactly once");
    }
    // Nothing charged twice: every usage took exactly its amount, once.
    let wrong: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM usages u
             LEFT JOIN (SELECT usage_id, -SUM(delta) AS spent FROM history GROUP BY usage_id) h
                    ON h.usage_id = u.id
             WHERE u.amount <> COALESCE(h.spent, 0)",
            [],
            |r| r.get(0),
        )
        .expect("sum check");
    assert_eq!(wrong, 0, "a usage was charged other than once");
    let (granted, remaining, spent): (i64, i64, i64) = conn
        .query_row(
            "SELECT (SELECT SUM(granted) FROM lots), (SELECT SUM(remaining) FROM lots), (SELECT SUM(amount) FROM usages)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("totals");
    assert_eq!(
        granted - remaining,
        spent,
        "every cent spent is one usage's"
    );
    let negative: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM lots WHERE remaining < 0 OR remaining > granted",
            [],
            |r| r.get(0),
        )
        .expect("bounds");
    assert_eq!(negative, 0);
    eprintln!(
        "crash test: {kills} SIGKILLs, {} acknowledged debits, all present exactly once",
        acked.len()
    );
}
