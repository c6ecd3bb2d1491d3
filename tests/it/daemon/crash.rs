//! Crash test: SIGKILL `tallyd run` at random moments while jobs complete at
//! a real ippeveprinter, restart it, and check every job is charged exactly
//! once.

use crate::support;
use crate::support::daemon::{PrinterSpec, Site};
use crate::support::peers::Peers;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const JOBS: u32 = 60;
const MIN_KILLS: u32 = 12;
const USERS: [(&str, &str); 3] = [
    ("alice", "alice"),
    ("bob", "bob@corp.example"),
    ("carol", "CORP\\carol"),
];

#[test]
fn sigkill_at_random_moments_charges_every_job_exactly_once() {
    let _serial = support::serial();
    let peers = Peers::new();
    let eve = peers.eve("crashy");
    let site = Site::new(&[PrinterSpec::direct("crashy", &eve.uri(), "100ms")]);
    // Grants are synced once up front so every start is the same.
    site.cli(&["sync"]);

    let submitter = std::thread::spawn(move || {
        let mut expected: BTreeMap<u32, (&str, i64)> = BTreeMap::new();
        for i in 0..JOBS {
            let (member, user) = USERS[(i % 3) as usize];
            let impressions = i % 3 + 1;
            let id = eve.submit(user, impressions);
            expected.insert(id, (member, i64::from(impressions) * 10));
            std::thread::sleep(Duration::from_millis(40 + u64::from(i % 7) * 15));
        }
        (eve, expected)
    });

    let mut seed = std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    let mut random_ms = |lo: u64, hi: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        lo + seed % (hi - lo)
    };
    let mut kills = 0;
    let started = Instant::now();
    while kills < MIN_KILLS || !submitter.is_finished() {
        let mut daemon = site.start();
        std::thread::sleep(Duration::from_millis(random_ms(80, 500)));
        daemon.kill9();
        kills += 1;
        assert!(
            started.elapsed() < Duration::from_secs(45),
            "jobs are purged by the printer after ~60 s"
        );
    }
    let (eve, expected) = submitter.join().expect("submitter");
    for id in expected.keys() {
        eve.wait_completed(*id, Duration::from_secs(10));
    }

    let mut daemon = site.start();
    site.wait_usages("crashy", JOBS as usize, Duration::from_secs(20));
    daemon.stop();

    let usages = site.usages("crashy");
    assert_eq!(usages.len(), JOBS as usize, "every job charged once");
    let keys: BTreeSet<&String> = usages.iter().map(|u| &u.0).collect();
    assert_eq!(keys.len(), usages.len());
    let mut charged_ids = BTreeSet::new();
    let mut per_member: BTreeMap<String, i64> = BTreeMap::new();
    for (_, member, cents, detail) in &usages {
        let d: serde_json::Value = serde_json::from_str(detail).expect("detail");
        let id = d["job"].as_u64().expect("job id") as u32;
        assert!(charged_ids.insert(id), "job {id} charged twice");
        let (want_member, want_cents) = expected[&id];
        assert_eq!(member.as_deref(), Some(want_member), "job {id}");
        assert_eq!(*cents, want_cents, "job {id}");
        *per_member.entry(want_member.to_string()).or_default() += cents;
    }
    assert_eq!(charged_ids, expected.keys().copied().collect());
    for (member, spent) in per_member {
        assert_eq!(site.printing_balance(&member), 1000 - spent, "{member}");
    }
    println!("daemon crash test: {kills} SIGKILLs, {JOBS} jobs, each charged exactly once");
}
