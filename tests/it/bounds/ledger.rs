//! The ledger's own last line. Its API refuses an amount outside
//! `0..=MAX_UNITS` (`1..` for a grant) with `InvalidAmount` whoever calls
//! it; and a ledger that already holds lots too large to add up (written
//! before there was a bound) answers a charge with `Overflow`, never a
//! wrapped balance. Neither writes anything.

use super::{refused, site, VALUES};
use crate::support::ledger::dump;
use std::path::Path;
use tallyd::ledger::lots::{self, GrantRequest};
use tallyd::ledger::{usage, Ledger, LedgerError, Origin, Payable, Site, SourceKind, UsageRequest};
use tallyd::money::MAX_UNITS;

const AT: i64 = 1_795_000_000;

fn grant(key: &str, amount: i64) -> GrantRequest {
    GrantRequest {
        member: "alice".into(),
        credit: "printing".into(),
        amount,
        valid_from: AT,
        expires_at: None,
        source: SourceKind::Adjustment,
        source_key: key.into(),
        note: String::new(),
        at: AT,
    }
}

fn usage(key: &str, amount: i64) -> UsageRequest {
    UsageRequest {
        key: key.into(),
        member: Some("alice".into()),
        origin: Origin::Manual,
        payable: Payable::Printing,
        amount,
        detail: "{}".into(),
        at: AT,
    }
}

/// `op` on `ledger` fails with `InvalidAmount` for `amount`, and the ledger
/// at `path` is as it was.
fn invalid<R: std::fmt::Debug>(
    ledger: &mut Ledger,
    path: &Path,
    amount: i64,
    op: impl FnOnce(&rusqlite::Connection, &Site) -> tallyd::ledger::Result<R>,
) {
    let before = dump(path);
    let e = ledger.write(op).expect_err("refused");
    assert!(
        matches!(e, LedgerError::InvalidAmount { amount: a, .. } if a == amount),
        "{amount}: {e}"
    );
    assert_eq!(dump(path), before, "{amount}: {e} wrote something");
}

#[test]
fn the_ledger_refuses_amounts_out_of_bounds_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    let mut ledger = Ledger::open(&path, Site::default()).expect("open");
    let lot = ledger
        .write(|c, _| {
            lots::ensure_member(c, "alice", "Alice", AT)?;
            lots::grant(c, &grant("welcome", 2000))
        })
        .expect("grant")
        .lot;
    ledger.hold(&usage("hold:1", 500)).expect("hold");
    for v in VALUES.into_iter().chain([0, MAX_UNITS + 1]) {
        invalid(&mut ledger, &path, v, |c, _| lots::grant(c, &grant("g", v)));
        invalid(&mut ledger, &path, v, |c, _| {
            lots::insert_lot(c, &grant("g", v))
        });
        if v == 0 {
            // Zero is no grant, but a usage or a lot's new amount may be 0.
            continue;
        }
        invalid(&mut ledger, &path, v, |c, _| {
            lots::adjust_amount(c, lot, v, "edit", AT)
        });
        invalid(&mut ledger, &path, v, |c, s| {
            usage::debit(c, s, &usage("debit:1", v))
        });
        invalid(&mut ledger, &path, v, |c, s| {
            usage::hold(c, s, &usage("hold:2", v))
        });
        invalid(&mut ledger, &path, v, |c, s| {
            usage::settle(c, s, "hold:1", v, "{}", AT)
        });
    }
    // The bound itself is an amount like any other.
    ledger
        .write(|c, _| lots::grant(c, &grant("big", MAX_UNITS)))
        .expect("a grant at the bound");
    ledger
        .settle("hold:1", MAX_UNITS, "{}", AT)
        .expect("a settle at the bound");
}

/// A ledger written before the bound, holding a lot of `i64::MAX` beside
/// alice's $20.00: a charge cannot add up her credit, so it is refused with
/// the overflow named, and nothing is written; `balance`, whose SQL `SUM()`
/// cannot add it up either, fails with SQLite's own integer overflow rather
/// than printing a wrapped number.
#[test]
fn a_ledger_holding_lots_too_large_to_add_up_refuses_to_charge() {
    let site = site();
    let conn = rusqlite::Connection::open(site.ledger()).expect("open the ledger");
    conn.execute_batch(&format!(
        "INSERT INTO lots (member_id, credit, granted, remaining, valid_from, source, source_key, created_at)
         VALUES ('alice', 'printing', {max}, {max}, 0, 'adjustment', 'before-the-bound', 0);
         INSERT INTO history (lot_id, kind, delta, granted_delta, at)
         VALUES (last_insert_rowid(), 'grant', {max}, {max}, 0);",
        max = i64::MAX
    ))
    .expect("write a lot as an unbounded tallyd would have");
    drop(conn);
    refused(
        &site,
        &["charge", "alice", "--amount", "5.05", "--reason", "posters"],
        "tallyd: an amount is too large to add up (integer overflow); nothing was written",
        "",
    );
    refused(
        &site,
        &["balance", "alice"],
        "tallyd: the ledger holds amounts too large to add up (integer overflow)",
        "check-ledger",
    );
}
