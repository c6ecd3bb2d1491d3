//! Property tests of the ledger's accounting rules.
//!
//! A random sequence of grants, debits, replays, key conflicts, holds, settles,
//! voids, re-resolutions, expiry sweeps, lot voids and refunds runs against a
//! fresh ledger while the clock only moves forward. After every operation the
//! test checks, with raw SQL on the ledger and against an independent model
//! kept here:
//!
//! 1. no lot has `remaining < 0` or `remaining > granted`;
//! 2. `schema::verify` passes (every lot equals the sums of its history),
//!    every usage agrees with its history and overage rows
//!    (`usage::agree`), and the hash chains verify from their first rows;
//! 3. a replay (same key, same content) and a key conflict change nothing;
//! 4. conservation, per member and unit: everything granted is remaining, used
//!    (as the API reported it), held by open holds, expired or voided;
//! 5. a hold resolves exactly once, and re-resolving behaves as `usage.rs`
//!    documents (settle again with the same amount is a replay, voiding twice
//!    is a no-op, anything else is `AlreadyResolved`);
//! 6. `covered + overage == amount` for every attributed debit, hold and
//!    settle; a credits-only member's under-covered hold is refused and writes
//!    nothing;
//!
//! 7. the balance a manager sees is what a charge can use, at any instant
//!    (`agree.rs`);
//!
//! plus: lots are consumed in the documented order, refunds give back exactly
//! what was taken (regranting what sits on dead lots) and refund once, and
//! `query::balances` rebuilt for every past instant equals what was spendable
//! at that instant.
//!
//! A few deterministic tests in `cases.rs` pin the same rules on small cases.
//! `teams.rs` runs its own property test of team pools (limits, `combine`,
//! membership changes, exact-lot returns) and a concurrent test of one pool
//! under the group-committing writer.
//!
//! Layout: `setup.rs` (members, credits, the starting ledger), `sql.rs` (raw
//! SQL helpers), `model.rs` (the independent model and the harness),
//! `ops.rs` (operation generation and dispatch), `spend.rs` and `resolve.rs`
//! (operation execution), `checks.rs` (the invariant checks), `cases.rs`.

mod agree;
mod cases;
mod checks;
mod model;
mod ops;
mod resolve;
mod setup;
mod spend;
mod sql;
mod teams;

use proptest::prelude::*;
use tallyd::ledger::{Ledger, Site};

use model::Harness;
use ops::steps;

proptest! {
    // Failures print the shrunk sequence; no regression file is written
    // next to this one.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(192)
    })]

    #[test]
    fn ledger_keeps_its_books(steps in steps()) {
        let mut h = Harness::new();
        for (i, step) in steps.iter().enumerate() {
            h.run(step);
            h.check_balance_agrees(i);
        }
        // A final sweep far in the future: everything that can expire does,
        // and the books still balance.
        h.now += 10_000;
        h.expire();
        h.check();
        h.check_past();
        // Reopening verifies every lot against its history again.
        let path = h._dir.path().join("ledger.db");
        drop(Ledger::open(&path, Site::default()).expect("reopen"));
    }
}
