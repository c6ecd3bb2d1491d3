//! The guard over a clock the test sets, and an in-memory ledger.

use super::*;
use crate::ledger::lots::{self, GrantRequest};
use crate::ledger::writer::Writer;
use crate::ledger::{Site, SourceKind, PRINTING};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};

const T: Ts = 1_796_000_000;
const YEAR: Ts = 365 * 86_400;

/// A wall clock and a boot clock the test moves.
#[derive(Clone, Default)]
struct Hands {
    wall: Arc<AtomicI64>,
    boot_ms: Arc<AtomicI64>,
}

impl Hands {
    fn set(&self, wall: Ts, boot_s: i64) {
        self.wall.store(wall, Ordering::SeqCst);
        self.boot_ms.store(boot_s * 1000, Ordering::SeqCst);
    }
}

impl TimeSource for Hands {
    fn wall(&self) -> i64 {
        self.wall.load(Ordering::SeqCst)
    }

    fn boot_ms(&self) -> i64 {
        self.boot_ms.load(Ordering::SeqCst)
    }
}

/// A ledger with one grant dated `at`, and a mark on this boot if given.
fn ledger(at: Ts, mark: Option<(Ts, i64)>) -> Ledger {
    let mut ledger = Ledger::open(Path::new(":memory:"), Site::default()).expect("ledger");
    ledger
        .write(|conn, _| {
            lots::ensure_member(conn, "alice", "Alice", at)?;
            lots::grant(
                conn,
                &GrantRequest {
                    member: "alice".into(),
                    credit: PRINTING.into(),
                    amount: 1000,
                    valid_from: at,
                    expires_at: Some(at + 30 * 86_400),
                    source: SourceKind::Account,
                    source_key: format!("account:alice:{at}"),
                    note: String::new(),
                    at,
                },
            )?;
            if let Some((wall, boot_s)) = mark {
                clock_marks::save_mark(
                    conn,
                    &Mark {
                        wall,
                        boot_ms: boot_s * 1000,
                        boot_id: clock::boot_id(),
                    },
                )?;
            }
            Ok(())
        })
        .expect("grant");
    ledger
}

#[test]
fn a_clock_a_year_ahead_of_the_mark_is_held_and_dated_by_the_boot_clock() {
    let hands = Hands::default();
    hands.set(T + YEAR + 60, 160);
    let guard =
        ClockGuard::open(&ledger(T, Some((T, 100))), Clock::new(hands.clone())).expect("guard");
    let clock = guard.clock();
    assert!(!clock.trusted());
    assert_eq!(clock.wall(), T + 60, "the boot clock's estimate");
    let mut trust = guard.subscribe();
    assert!(!*trust.borrow_and_update());
    // Set right again: trusted, and tasks waiting for it hear so.
    hands.set(T + 120, 220);
    assert!(clock.trusted());
    assert_eq!(clock.wall(), T + 120);
    assert!(trust.has_changed().expect("guard alive"));
    assert!(*trust.borrow_and_update());
}

#[test]
fn no_time_handed_out_is_earlier_than_the_newest_row_or_an_earlier_one() {
    let hands = Hands::default();
    // No mark: the ledger's newest row (T) is the only witness.
    hands.set(T - 3600, 50);
    let guard = ClockGuard::open(&ledger(T, None), Clock::new(hands.clone())).expect("guard");
    let clock = guard.clock();
    assert!(!clock.trusted());
    assert_eq!(clock.wall(), T);
    hands.set(T + 10, 3700);
    assert_eq!(clock.wall(), T + 10);
    // A step back of a minute is within the tolerance: trusted, but the
    // time handed out does not go back.
    hands.set(T - 50, 3710);
    assert!(clock.trusted());
    assert_eq!(clock.wall(), T + 10);
}

#[test]
fn without_a_witness_a_clock_ahead_is_trusted() {
    // No mark on this boot and every row in the past: nothing can tell this
    // clock is a year ahead (expiries it records are reversed later).
    let hands = Hands::default();
    hands.set(T + YEAR, 30);
    let guard = ClockGuard::open(&ledger(T, None), Clock::new(hands)).expect("guard");
    assert!(guard.clock().trusted());
}

#[tokio::test]
async fn the_mark_is_saved_only_after_rows_written_under_a_trusted_clock() {
    let hands = Hands::default();
    hands.set(T, 100);
    let ledger = ledger(T, None);
    let guard = ClockGuard::open(&ledger, Clock::new(hands.clone())).expect("guard");
    let writer = Writer::spawn(ledger).expect("writer");
    let w = writer.handle();
    let mark = || {
        let w = w.clone();
        async move { w.call_async(clock_marks::load_mark).await.expect("mark") }
    };
    guard.refresh(&w).await;
    assert_eq!(mark().await, None, "nothing written since the start");
    // An expiry is dated at its lot's expiry, not by a clock: no mark.
    w.call_async(move |c| crate::ledger::expiry::expire_due(c, T + YEAR))
        .await
        .expect("sweep");
    guard.refresh(&w).await;
    assert_eq!(mark().await, None);
    // A row dated by the clock, under a trusted clock: marked.
    hands.set(T + 10, 110);
    let at = guard.clock().wall();
    w.call_async(move |c| lots::ensure_member(c, "bob", "Bob", at).map(|_| ()))
        .await
        .expect("member");
    w.call_async(move |c| {
        lots::grant(
            c,
            &GrantRequest {
                member: "bob".into(),
                credit: PRINTING.into(),
                amount: 5,
                valid_from: at,
                expires_at: None,
                source: SourceKind::Adjustment,
                source_key: "adjustment:bob".into(),
                note: String::new(),
                at,
            },
        )
        .map(|_| ())
    })
    .await
    .expect("grant");
    guard.refresh(&w).await;
    let saved = mark().await.expect("a mark");
    assert_eq!((saved.wall, saved.boot_ms), (T + 10, 110_000));
    drop((w, guard));
    writer.join();
}
