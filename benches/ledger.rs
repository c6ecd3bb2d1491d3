//! `cargo bench --bench ledger`: ledger throughput on 10,000 members x 5 lots.
//!
//! Prints, all measured in the same run on the same disk:
//! - the raw rate of 4 KiB write + fdatasync (the floor every commit pays);
//! - durable single debits per second (one transaction each) and their ratio
//!   to that raw rate (goal: 0.5 or better), with what one debit is made
//!   of: its time without the fdatasync (`synchronous=OFF`) and the WAL
//!   pages each commit writes, and what the disk alone takes to write and
//!   sync that many WAL frames (the best ratio a commit that size allows);
//! - hold + settle jobs per second (two transactions each);
//! - durable single debits of team members with no lots of their own, paid
//!   from their team's pool (100 teams of 10), as a ratio to personal
//!   debits measured in interleaved rounds (goal: 0.8 or better);
//! - balance query p50 and p99;
//! - a burst of 10,000 debits queued at once through the group-commit writer
//!   (goal: 20,000/s or more);
//! - what the hash chains add to one debit (tip reads and SHA-256 of its
//!   usage and history rows), as a fraction of one durable debit (goal:
//!   0.05 or less) and of one debit of the burst;
//! - the plausibility check a finished job passes before its charge
//!   (`printer::plausible::judge`, which prices it too) per job, beside
//!   pricing alone, as a fraction of one durable debit (goal: nothing
//!   measurable, under 0.001);
//! - a chain site's outbox (issue 18): single debits and group-commit
//!   bursts with it on, as a ratio to the same with it off, in interleaved
//!   rounds (goal: 0.85 or better, within 15%).

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use tallyd::ledger::chain::Field;
use tallyd::ledger::integrity::{self, Chain};
use tallyd::ledger::lots::{self, GrantRequest};
use tallyd::ledger::outbox;
use tallyd::ledger::query;
use tallyd::ledger::teams::{self, TeamDef};
use tallyd::ledger::writer::{Writer, WriterHandle};
use tallyd::ledger::{usage, HoldOutcome, Ledger, Origin, Payable, Site, SourceKind, UsageRequest};
use tallyd::printer::jobs::{price_job, Job, COMPLETED};
use tallyd::printer::plausible::{judge, Verdict};

const MEMBERS: usize = 10_000;
const LOTS_PER_MEMBER: usize = 5;
const NOW: i64 = 1_800_000_000;

fn populate(path: &Path) -> Ledger {
    let mut ledger = Ledger::open(path, Site::default()).expect("open ledger");
    ledger
        .write(|conn, _| {
            lots::define_time_credit(
                conn,
                "room-hours",
                "Room hours",
                &["meeting-room".to_string()],
            )?;
            for m in 0..MEMBERS {
                let id = format!("member-{m:05}");
                lots::ensure_member(conn, &id, &id, 0)?;
                let sources = [
                    SourceKind::Plan,
                    SourceKind::Product,
                    SourceKind::Account,
                    SourceKind::Plan,
                    SourceKind::Adjustment,
                ];
                for (l, source) in sources.iter().enumerate().take(LOTS_PER_MEMBER) {
                    lots::grant(
                        conn,
                        &GrantRequest {
                            member: id.clone(),
                            credit: if l == 4 {
                                "room-hours".into()
                            } else {
                                "printing".into()
                            },
                            amount: 1_000_000,
                            valid_from: 0,
                            expires_at: if l == 3 {
                                None
                            } else {
                                Some(NOW + 86_400 * (l as i64 + 1))
                            },
                            source: *source,
                            source_key: format!("bench:{id}:{l}"),
                            note: String::new(),
                            at: 0,
                        },
                    )?;
                }
            }
            Ok(())
        })
        .expect("populate");
    ledger
}

/// Time for `n` rounds of 4 KiB write + fdatasync to a preallocated file.
fn fdatasync_time(dir: &Path, n: usize) -> Duration {
    let path = dir.join("fdatasync.probe");
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&path)
        .expect("probe file");
    let block = [0x5au8; 4096];
    // Preallocate so the loop measures data sync, not file growth.
    f.write_all(&block).expect("write");
    f.sync_all().expect("sync");
    let start = Instant::now();
    for _ in 0..n {
        f.seek(SeekFrom::Start(0)).expect("seek");
        f.write_all(&block).expect("write");
        f.sync_data().expect("fdatasync");
    }
    start.elapsed()
}

/// Time for `n` commits shaped like a debit's in SQLite's WAL: `frames`
/// frames (a 24-byte header then a 4 KiB page, two writes each) at
/// advancing offsets in a preallocated 64 MiB file, then one fdatasync.
/// What the disk alone charges a commit of that many pages.
fn wal_commit_time(dir: &Path, frames: usize, n: usize) -> Duration {
    const FRAME: u64 = 24 + 4096;
    const SIZE: u64 = 64 << 20;
    let path = dir.join("wal.probe");
    let f = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(false)
        .open(&path)
        .expect("probe file");
    if f.metadata().expect("probe size").len() < SIZE {
        let mib = vec![0u8; 1 << 20];
        for i in 0..64 {
            f.write_all_at(&mib, i << 20).expect("preallocate");
        }
        f.sync_all().expect("sync");
    }
    let (header, page) = ([0x11u8; 24], [0x33u8; 4096]);
    let mut offset = 32;
    let start = Instant::now();
    for _ in 0..n {
        if offset + frames as u64 * FRAME > SIZE {
            offset = 32;
        }
        for _ in 0..frames {
            f.write_all_at(&header, offset).expect("write");
            f.write_all_at(&page, offset + 24).expect("write");
            offset += FRAME;
        }
        f.sync_data().expect("fdatasync");
    }
    start.elapsed()
}

fn debit(i: usize, key: String) -> UsageRequest {
    UsageRequest {
        key,
        member: Some(format!("member-{:05}", (i * 7919) % MEMBERS)),
        origin: Origin::Print {
            printer: "bench".into(),
        },
        payable: Payable::Printing,
        amount: 10 + (i % 90) as i64,
        detail: "{\"impressions\":3}".into(),
        at: NOW,
    }
}

const TEAMS: usize = 100;
const TEAM_SIZE: usize = 10;

/// 100 teams: each paid by a bench member (with lots), with 9 more members
/// who have no lots of their own. A limit far above what the bench draws,
/// so every pool debit reads what its member drew this month.
fn add_teams(ledger: &mut Ledger) {
    let members: Vec<Vec<String>> = (0..TEAMS)
        .map(|t| {
            std::iter::once(format!("member-{:05}", t * 100))
                .chain((1..TEAM_SIZE).map(|j| format!("team-{t:03}-{j}")))
                .collect()
        })
        .collect();
    let ids: Vec<String> = (0..TEAMS).map(|t| format!("team-{t:03}")).collect();
    let shares = vec!["printing".to_string()];
    ledger
        .write(|conn, _| {
            for m in members.iter().flat_map(|t| t.iter().skip(1)) {
                lots::ensure_member(conn, m, m, 0)?;
            }
            let defs: Vec<TeamDef<'_>> = (0..TEAMS)
                .map(|t| TeamDef {
                    id: &ids[t],
                    name: &ids[t],
                    payer: &members[t][0],
                    members: &members[t],
                    shares: &shares,
                    combine: false,
                    limit_cents: Some(1_000_000_000),
                    limit_minutes: None,
                    billing: "individual",
                })
                .collect();
            teams::define(conn, &defs, 0)
        })
        .expect("teams");
}

/// A debit by a team member with no lots: the pool pays.
fn pool_debit(i: usize, key: String) -> UsageRequest {
    UsageRequest {
        member: Some(format!(
            "team-{:03}-{}",
            (i * 7) % TEAMS,
            1 + i % (TEAM_SIZE - 1)
        )),
        ..debit(i, key)
    }
}

/// A printer as a site configures one (the default max_job_impressions).
fn printer() -> tallyd::config::PrinterConfig {
    let text = r#"
[site]
name = "Bench"
timezone = "UTC"
ledger = "ledger.db"
[prices.standard]
default_media = "a4"
[prices.standard.media.a4]
mono = { one_sided = 10, two_sided = 8 }
colour = { one_sided = 40, two_sided = 35 }
[[printers]]
id = "lobby"
uri = "ipp://127.0.0.1:631/printers/lobby"
prices = "standard"
"#;
    let config =
        tallyd::config::Config::parse(text, "bench.toml", Path::new(".")).expect("bench config");
    config.printers[0].clone()
}

/// Finished jobs as printers report them: 1 to 40 pages, 1 to 3 copies,
/// one- or two-sided, mono or colour; one in 50 with an absurd count.
fn finished_jobs(n: usize) -> Vec<Job> {
    (0..n)
        .map(|i| {
            let pages = 1 + (i * 7) as i64 % 40;
            let copies = 1 + (i % 3) as i64;
            let mut job = Job {
                id: i as i32,
                state: COMPLETED,
                user: Some(format!("member-{i:05}")),
                impressions: Some(pages),
                impressions_completed: Some(pages * copies),
                copies: Some(copies),
                sides: Some(
                    if i % 2 == 0 {
                        "one-sided"
                    } else {
                        "two-sided-long-edge"
                    }
                    .into(),
                ),
                color_mode: Some(if i % 5 == 0 { "color" } else { "monochrome" }.into()),
                ..Job::default()
            };
            if i % 50 == 0 {
                job.impressions_completed = Some(i64::from(i32::MAX));
            }
            job
        })
        .collect()
}

/// Seconds per call of `f` over every job, repeated `rounds` times.
fn per_job(jobs: &[Job], rounds: usize, mut f: impl FnMut(&Job) -> usize) -> f64 {
    let t = Instant::now();
    let mut kept = 0;
    for _ in 0..rounds {
        for job in jobs {
            kept += f(std::hint::black_box(job));
        }
    }
    std::hint::black_box(kept);
    t.elapsed().as_secs_f64() / (rounds * jobs.len()) as f64
}

/// Seconds per debit of the chain's work: the usage chain's and the history
/// chain's `integrity::next` (tip read and SHA-256 of a typical row), in one
/// transaction as the writer runs them (the history row's tip read shares
/// its statement with the lot's owner in the real path).
fn chain_cost(ledger: &mut Ledger, rounds: usize) -> f64 {
    ledger
        .write(|conn, _| Ok(chain_rounds(conn, rounds)))
        .expect("chain rounds")
}

/// `rounds` of [`chain_cost`]'s work, inside the caller's transaction.
fn chain_rounds(conn: &rusqlite::Connection, rounds: usize) -> f64 {
    let detail = "{\"impressions\":3}";
    let t = Instant::now();
    for i in 0..rounds {
        let key = format!("chain:{i}");
        let usage = integrity::next(conn, Chain::Usages, |id| {
            vec![
                id.into(),
                key.as_str().into(),
                detail.into(),
                "member-00001".into(),
                "print".into(),
                "bench".into(),
                Field::Null,
                "printing".into(),
                Field::Null,
                42.into(),
                0.into(),
                detail.into(),
                NOW.into(),
                42.into(),
                0.into(),
                1000.into(),
            ]
        })
        .expect("usage chain");
        let history = integrity::next(conn, Chain::History, |id| {
            vec![
                id.into(),
                7.into(),
                "member-00001".into(),
                "printing".into(),
                "debit".into(),
                (-42).into(),
                0.into(),
                usage.0.into(),
                "".into(),
                NOW.into(),
            ]
        })
        .expect("history chain");
        std::hint::black_box(history);
    }
    t.elapsed().as_secs_f64() / rounds as f64
}

/// What one durable debit is made of, outside the timed rounds: the WAL
/// frames (pages) each debit's commit writes, counted between two passive
/// checkpoints (the WAL restarts in place, its file keeps its size), and
/// the seconds per debit with `synchronous=OFF` (everything but the
/// fdatasync: statements, hashing, the WAL's writes).
fn debit_parts(ledger: &mut Ledger, n: usize) -> (f64, f64) {
    let wal_frames = |ledger: &Ledger| -> i64 {
        ledger
            .conn()
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
            .expect("checkpoint")
    };
    wal_frames(ledger);
    for i in 0..n {
        ledger
            .debit(&debit(i, format!("frames:{i}")))
            .expect("debit");
    }
    let frames = wal_frames(ledger) as f64 / n as f64;
    let sync = |ledger: &Ledger, mode: &str| {
        ledger
            .conn()
            .pragma_update(None, "synchronous", mode)
            .expect("synchronous");
    };
    sync(ledger, "OFF");
    let t = Instant::now();
    for i in 0..n {
        ledger
            .debit(&debit(i, format!("unsynced:{i}")))
            .expect("debit");
    }
    let unsynced = t.elapsed().as_secs_f64() / n as f64;
    sync(ledger, "FULL");
    (frames, unsynced)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

/// Turns a chain site's outbox on (its `outbox_site` row) or off (none).
fn outbox_on(ledger: &mut Ledger, on: bool) {
    ledger
        .write(move |conn, _| {
            if on {
                outbox::enable(conn, "bench-site")
            } else {
                conn.execute("DELETE FROM outbox_site", [])?;
                Ok(())
            }
        })
        .expect("outbox switch");
}

/// `n` debits queued at once through the writer; how long until all committed.
fn timed_burst(handle: &WriterHandle, site: &Site, n: usize, tag: &str) -> Duration {
    let requests: Vec<UsageRequest> = (0..n).map(|i| debit(i, format!("{tag}:{i}"))).collect();
    let t = Instant::now();
    let pending: Vec<_> = requests
        .into_iter()
        .map(|req| {
            let site = site.clone();
            handle.submit(move |conn| usage::debit(conn, &site, &req))
        })
        .collect();
    for rx in pending {
        rx.blocking_recv()
            .expect("writer answers")
            .expect("debit commits");
    }
    t.elapsed()
}

fn main() {
    let base = std::env::var("CARGO_TARGET_TMPDIR").unwrap_or_else(|_| "target".into());
    let dir = tempfile::tempdir_in(&base).expect("tempdir");
    let path = dir.path().join("ledger.db");

    let t = Instant::now();
    let mut ledger = populate(&path);
    println!(
        "setup: {MEMBERS} members x {LOTS_PER_MEMBER} lots in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // Warm up: a daemon runs for months, so measure with the WAL already at
    // its working size, not growing from empty.
    for i in 0..3000 {
        ledger.debit(&debit(i, format!("warm:{i}"))).expect("debit");
    }
    // The raw fdatasync rate and single debits are measured in interleaved
    // rounds, so a noisy neighbour slows both alike and the ratio holds.
    let n = 2000;
    let rounds = 8;
    let (mut sync_time, mut direct_time) = (Duration::ZERO, Duration::ZERO);
    for round in 0..rounds {
        sync_time += fdatasync_time(dir.path(), n / rounds);
        let t = Instant::now();
        for i in round * (n / rounds)..(round + 1) * (n / rounds) {
            ledger
                .debit(&debit(i, format!("direct:{i}")))
                .expect("debit");
        }
        direct_time += t.elapsed();
    }
    let sync_rate = n as f64 / sync_time.as_secs_f64();
    let direct_rate = n as f64 / direct_time.as_secs_f64();
    let (frames, unsynced_s) = debit_parts(&mut ledger, 500);
    // The disk's own price of a commit that size, against one page, in
    // interleaved rounds: the best ratio a debit of that many pages can
    // reach with no CPU at all.
    let (mut page_time, mut commit_time) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        page_time += fdatasync_time(dir.path(), n / rounds);
        commit_time += wal_commit_time(dir.path(), frames.round() as usize, n / rounds);
    }
    let floor_ratio = page_time.as_secs_f64() / commit_time.as_secs_f64();

    // Team pool debits against personal ones, in interleaved rounds.
    add_teams(&mut ledger);
    let (mut own_time, mut pool_time) = (Duration::ZERO, Duration::ZERO);
    for round in 0..rounds {
        let span = round * (n / rounds)..(round + 1) * (n / rounds);
        let t = Instant::now();
        for i in span.clone() {
            ledger.debit(&debit(i, format!("own:{i}"))).expect("debit");
        }
        own_time += t.elapsed();
        let t = Instant::now();
        for i in span {
            let c = ledger
                .debit(&pool_debit(i, format!("pool:{i}")))
                .expect("pool debit");
            assert_eq!(c.pooled, c.covered, "own lots empty: the pool pays");
        }
        pool_time += t.elapsed();
    }
    let own_rate = n as f64 / own_time.as_secs_f64();
    let pool_rate = n as f64 / pool_time.as_secs_f64();

    // A chain's site (issue 18) writes an outbox entry with each debit, by
    // trigger, once `outbox_site` has its row: single debits with the
    // outbox off and on, in interleaved rounds on the same ledger.
    let (mut off_time, mut on_time) = (Duration::ZERO, Duration::ZERO);
    for round in 0..rounds {
        let span = round * (n / rounds)..(round + 1) * (n / rounds);
        outbox_on(&mut ledger, false);
        let t = Instant::now();
        for i in span.clone() {
            ledger.debit(&debit(i, format!("off:{i}"))).expect("debit");
        }
        off_time += t.elapsed();
        outbox_on(&mut ledger, true);
        let t = Instant::now();
        for i in span {
            ledger
                .debit(&debit(i, format!("outbox:{i}")))
                .expect("debit");
        }
        on_time += t.elapsed();
    }
    outbox_on(&mut ledger, false);
    let off_rate = n as f64 / off_time.as_secs_f64();
    let outbox_rate = n as f64 / on_time.as_secs_f64();

    let jobs = 1000;
    let t = Instant::now();
    for i in 0..jobs {
        let key = format!("held:{i}");
        match ledger.hold(&debit(i, key.clone())).expect("hold") {
            HoldOutcome::Placed(_) => {}
            HoldOutcome::Refused { .. } => panic!("bench members have credit"),
        }
        ledger
            .settle(&key, 5 + (i % 50) as i64, "{}", NOW)
            .expect("settle");
    }
    let hold_rate = jobs as f64 / t.elapsed().as_secs_f64();

    let mut times = Vec::with_capacity(5000);
    for i in 0..5000 {
        let member = format!("member-{:05}", (i * 104_729) % MEMBERS);
        let t = Instant::now();
        let b = query::balances(ledger.conn(), Some(&member), NOW).expect("balance");
        times.push(t.elapsed());
        assert_eq!(b.len(), 1);
    }
    times.sort();

    // What the hash chains add to a debit: the tip read and the hash of its
    // usage row and of its history row (a debit within credit writes no
    // overage row), on this ledger, outside any commit.
    let chain_s = chain_cost(&mut ledger, 20_000);

    let site = ledger.site().clone();
    let writer = Writer::spawn(ledger).expect("writer");
    let handle = writer.handle();
    // The daemon's path: one caller at a time through the writer, so each
    // debit is its own transaction, with checkpoints off the commit path.
    let t = Instant::now();
    for i in 0..n {
        let req = debit(i, format!("single:{i}"));
        let site = site.clone();
        handle
            .call(move |conn| usage::debit(conn, &site, &req))
            .expect("debit");
    }
    let single_rate = n as f64 / t.elapsed().as_secs_f64();
    let burst = 10_000;
    let requests: Vec<UsageRequest> = (0..burst).map(|i| debit(i, format!("burst:{i}"))).collect();
    let t = Instant::now();
    let pending: Vec<_> = requests
        .into_iter()
        .map(|req| {
            let site = site.clone();
            handle.submit(move |conn| usage::debit(conn, &site, &req))
        })
        .collect();
    for rx in pending {
        rx.blocking_recv()
            .expect("writer answers")
            .expect("debit commits");
    }
    let burst_rate = burst as f64 / t.elapsed().as_secs_f64();
    // Group commit with and without the outbox, alternating bursts.
    let (mut burst_off, mut burst_on) = (Duration::ZERO, Duration::ZERO);
    for round in 0..4 {
        let on = round % 2 == 1;
        handle
            .call(move |conn| {
                if on {
                    outbox::enable(conn, "bench-site")
                } else {
                    conn.execute("DELETE FROM outbox_site", [])?;
                    Ok(())
                }
            })
            .expect("outbox switch");
        let took = timed_burst(&handle, &site, burst / 2, &format!("burst{round}"));
        *(if on { &mut burst_on } else { &mut burst_off }) += took;
    }
    let burst_off_rate = burst as f64 / burst_off.as_secs_f64();
    let burst_on_rate = burst as f64 / burst_on.as_secs_f64();
    drop(handle);
    writer.join();

    // The charge path judges each finished job before its debit: pure code
    // over plain values, measured beside pricing alone (what it was before).
    let cfg = printer();
    let jobs = finished_jobs(1000);
    let reviewed = jobs
        .iter()
        .filter(|j| matches!(judge(&cfg, j), Verdict::Review(_)))
        .count();
    assert_eq!(reviewed, 20, "one job in 50 is absurd");
    let (judge_s, price_s) = (
        per_job(&jobs, 500, |j| {
            usize::from(matches!(judge(&cfg, j), Verdict::Charge(_)))
        }),
        per_job(&jobs, 500, |j| usize::from(price_job(&cfg, j).is_some())),
    );

    println!("raw 4 KiB write + fdatasync:        {sync_rate:>9.0} /s");
    println!("durable single debits (1 tx each):  {direct_rate:>9.0} /s");
    println!("  same, one at a time via the writer:  {single_rate:>8.0} /s");
    println!(
        "ratio single debits / fdatasync:    {:>9.2}   (goal >= 0.50)",
        direct_rate / sync_rate
    );
    println!(
        "  one debit {:.0} us: {:.0} us without fdatasync (synchronous=OFF), {frames:.1} WAL pages per commit; one fdatasync {:.0} us",
        1e6 / direct_rate,
        unsynced_s * 1e6,
        1e6 / sync_rate
    );
    println!(
        "  disk alone, a commit of {:.0} WAL pages + fdatasync: {:.0} us, against {:.0} us for one page: best ratio with no CPU {floor_ratio:.2}",
        frames.round(),
        commit_time.as_secs_f64() * 1e6 / n as f64,
        page_time.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "single debits, outbox off / on:    {off_rate:>9.0} / {outbox_rate:.0} /s   (ratio {:.3}, goal >= 0.85)",
        outbox_rate / off_rate
    );
    println!(
        "group commit, outbox off / on:     {burst_off_rate:>9.0} / {burst_on_rate:.0} debits/s   (ratio {:.3}, goal >= 0.85)",
        burst_on_rate / burst_off_rate
    );
    println!("hold + settle jobs (2 tx each):     {hold_rate:>9.0} /s");
    println!("team pool debits (own lots empty):  {pool_rate:>9.0} /s   (personal, same rounds: {own_rate:.0} /s)");
    println!(
        "ratio team pool / personal debits:  {:>9.2}   (goal >= 0.80)",
        pool_rate / own_rate
    );
    println!(
        "balance query:                      p50 {:>6} us   p99 {:>6} us",
        percentile(&times, 0.50).as_micros(),
        percentile(&times, 0.99).as_micros()
    );
    println!("group commit, burst of {burst} queued: {burst_rate:>9.0} debits/s   (goal >= 20000)");
    let debit_s = 1.0 / direct_rate;
    println!(
        "plausibility judge per job:         {:>9.0} ns   (pricing alone {:.0} ns; one durable debit {:.0} us)",
        judge_s * 1e9,
        price_s * 1e9,
        debit_s * 1e6
    );
    println!(
        "hash chains per debit:              {:>9.2} us   (ratio to one durable debit {:.4}, goal <= 0.05; to one burst debit {:.3})",
        chain_s * 1e6,
        chain_s / debit_s,
        chain_s * burst_rate
    );
    println!(
        "ratio judge / single debit:         {:>9.5}   (goal < 0.001: nothing measurable on the charge path)",
        judge_s / debit_s
    );
}
