//! Deterministic cases: the same rules as the property test, pinned on small
//! hand-written ledgers.

use tallyd::ledger::lots::{self, GrantRequest};
use tallyd::ledger::{
    schema, HoldOutcome, Ledger, LedgerError, Payable, PolicyKind, SourceKind, UsageRequest,
};

use crate::setup::{fresh_ledger, origin_of, T0};
use crate::sql::{lot_remaining, snapshot};

/// Grants a lot valid from `T0` under source key `key`; returns the lot id.
fn grant(
    ledger: &mut Ledger,
    key: &str,
    member: &str,
    credit: &str,
    amount: i64,
    expires_at: Option<i64>,
    source: SourceKind,
) -> i64 {
    let g = GrantRequest {
        member: member.into(),
        credit: credit.into(),
        amount,
        valid_from: T0,
        expires_at,
        source,
        source_key: key.into(),
        note: String::new(),
        at: T0,
    };
    ledger
        .write(|conn, _| lots::grant(conn, &g))
        .expect("grant")
        .lot
}

/// A usage of `payable` by `member`, from its usual origin.
fn usage_req(key: &str, member: &str, payable: Payable, amount: i64, at: i64) -> UsageRequest {
    UsageRequest {
        key: key.into(),
        member: Some(member.into()),
        origin: origin_of(&payable),
        payable,
        amount,
        detail: "{}".into(),
        at,
    }
}

fn print_req(key: &str, member: &str, amount: i64, at: i64) -> UsageRequest {
    usage_req(key, member, Payable::Printing, amount, at)
}

fn time_req(key: &str, member: &str, resource_type: &str, amount: i64, at: i64) -> UsageRequest {
    let payable = Payable::Time {
        resource_type: resource_type.into(),
    };
    usage_req(key, member, payable, amount, at)
}

fn remaining_of(ledger: &Ledger, lots: &[i64]) -> Vec<i64> {
    lots.iter()
        .map(|&l| lot_remaining(ledger.conn(), l))
        .collect()
}

#[test]
fn plan_then_product_then_account_on_equal_expiry() {
    let (_dir, mut ledger) = fresh_ledger();
    let e = Some(T0 + 1000);
    // Granted in the "wrong" order so only the source decides.
    let account = grant(
        &mut ledger,
        "a",
        "m0",
        "printing",
        50,
        e,
        SourceKind::Account,
    );
    let plan = grant(&mut ledger, "p", "m0", "printing", 50, e, SourceKind::Plan);
    let product = grant(
        &mut ledger,
        "q",
        "m0",
        "printing",
        50,
        e,
        SourceKind::Product,
    );
    let never = grant(
        &mut ledger,
        "n",
        "m0",
        "printing",
        50,
        None,
        SourceKind::Plan,
    );
    let sooner = grant(
        &mut ledger,
        "s",
        "m0",
        "printing",
        10,
        Some(T0 + 500),
        SourceKind::Adjustment,
    );

    let c = ledger
        .debit(&print_req("d1", "m0", 80, T0 + 1))
        .expect("debit");
    assert_eq!((c.covered, c.overage, c.balance_after), (80, 0, 130));
    // Earliest expiry first (even an adjustment), then plan, then product.
    assert_eq!(
        remaining_of(&ledger, &[sooner, plan, product, account, never]),
        vec![0, 0, 30, 50, 50]
    );

    let c = ledger
        .debit(&print_req("d2", "m0", 100, T0 + 2))
        .expect("debit");
    assert_eq!((c.covered, c.overage, c.balance_after), (100, 0, 30));
    // Then the account grant, and the lot that never expires last.
    assert_eq!(
        remaining_of(&ledger, &[sooner, plan, product, account, never]),
        vec![0, 0, 0, 0, 30]
    );

    // Beyond the credit, the rest is overage; no lot goes below zero.
    let c = ledger
        .debit(&print_req("d3", "m0", 45, T0 + 3))
        .expect("debit");
    assert_eq!((c.covered, c.overage, c.balance_after), (30, 15, 0));
    schema::verify(ledger.conn()).expect("verify");
}

#[test]
fn hold_settled_for_more_debits_the_difference() {
    let (_dir, mut ledger) = fresh_ledger();
    let lot = grant(
        &mut ledger,
        "p",
        "m0",
        "printing",
        150,
        None,
        SourceKind::Plan,
    );

    let HoldOutcome::Placed(h) = ledger.hold(&print_req("h1", "m0", 100, T0)).expect("hold") else {
        panic!("refused");
    };
    assert_eq!((h.covered, h.overage, h.balance_after), (100, 0, 50));

    let s = ledger.settle("h1", 130, "{}", T0 + 10).expect("settle");
    assert_eq!(
        (s.covered, s.overage, s.balance_after, s.replayed),
        (130, 0, 20, false)
    );
    assert_eq!(lot_remaining(ledger.conn(), lot), 20);

    // The same settle again is a replay; a different amount is an error.
    let again = ledger
        .settle("h1", 130, "{}", T0 + 20)
        .expect("settle replay");
    assert!(again.replayed);
    assert_eq!((again.covered, again.overage), (130, 0));
    assert!(matches!(
        ledger.settle("h1", 131, "{}", T0 + 20),
        Err(LedgerError::AlreadyResolved { ref outcome, .. }) if outcome == "settled"
    ));
    assert!(matches!(
        ledger.void("h1", "late", T0 + 20),
        Err(LedgerError::AlreadyResolved { ref outcome, .. }) if outcome == "settled"
    ));

    // Settling for more than there is credit puts the rest on overage.
    ledger
        .hold(&print_req("h2", "m0", 10, T0 + 30))
        .expect("hold");
    let s = ledger.settle("h2", 50, "{}", T0 + 40).expect("settle");
    assert_eq!((s.covered, s.overage, s.balance_after), (20, 30, 0));
    schema::verify(ledger.conn()).expect("verify");
}

#[test]
fn voided_hold_restores_the_exact_lots() {
    let (_dir, mut ledger) = fresh_ledger();
    let a = grant(
        &mut ledger,
        "a",
        "m2",
        "coworking",
        30,
        Some(T0 + 500),
        SourceKind::Plan,
    );
    let b = grant(
        &mut ledger,
        "b",
        "m2",
        "coworking",
        40,
        Some(T0 + 900),
        SourceKind::Plan,
    );
    let c = grant(
        &mut ledger,
        "c",
        "m2",
        "coworking",
        50,
        None,
        SourceKind::Account,
    );
    ledger
        .debit(&time_req("d", "m2", "desk", 10, T0 + 1))
        .expect("debit");
    let before = remaining_of(&ledger, &[a, b, c]);
    assert_eq!(before, vec![20, 40, 50]);

    let req = time_req("h", "m2", "room", 70, T0 + 2);
    // m2 is credits-only: 120 minutes is too much and writes nothing.
    let too_much = UsageRequest {
        key: "h-big".into(),
        amount: 120,
        ..req.clone()
    };
    let snap = snapshot(ledger.conn());
    assert_eq!(
        ledger.hold(&too_much).expect("hold"),
        HoldOutcome::Refused {
            available: 110,
            needed: 120,
            policy: PolicyKind::CreditsOnly
        }
    );
    assert_eq!(snapshot(ledger.conn()), snap);

    let HoldOutcome::Placed(h) = ledger.hold(&req).expect("hold") else {
        panic!("refused")
    };
    assert_eq!((h.covered, h.overage), (70, 0));
    assert_eq!(remaining_of(&ledger, &[a, b, c]), vec![0, 0, 40]);

    ledger.void("h", "cancelled", T0 + 3).expect("void");
    assert_eq!(remaining_of(&ledger, &[a, b, c]), before);
    // Voiding twice is a no-op; settling a voided hold is an error.
    let snap = snapshot(ledger.conn());
    ledger.void("h", "again", T0 + 4).expect("void twice");
    assert!(matches!(
        ledger.settle("h", 0, "{}", T0 + 4),
        Err(LedgerError::AlreadyResolved { ref outcome, .. }) if outcome == "voided"
    ));
    assert_eq!(snapshot(ledger.conn()), snap);
    // A voided hold has nothing to refund.
    assert!(matches!(
        ledger.refund("h", "x", T0 + 5),
        Err(LedgerError::NothingToRefund(_))
    ));
    // The key is spent: a different estimate under it is a conflict.
    let changed = UsageRequest { amount: 71, ..req };
    assert!(matches!(
        ledger.hold(&changed),
        Err(LedgerError::KeyConflict(_))
    ));
    assert_eq!(snapshot(ledger.conn()), snap);
}

#[test]
fn refund_after_the_lot_expired_regrants_into_a_new_lot() {
    let (_dir, mut ledger) = fresh_ledger();
    let lot = grant(
        &mut ledger,
        "p",
        "m1",
        "printing",
        100,
        Some(T0 + 100),
        SourceKind::Product,
    );
    let c = ledger
        .debit(&print_req("d", "m1", 40, T0 + 10))
        .expect("debit");
    assert_eq!((c.covered, c.overage), (40, 0));
    let swept = ledger.expire_due(T0 + 200).expect("expire");
    assert_eq!((swept.lots, swept.amount), (1, 60));

    let r = ledger
        .refund("d", "jammed printer", T0 + 300)
        .expect("refund");
    assert_eq!((r.restored, r.regranted, r.overage_reversed), (0, 40, 0));
    assert_eq!(
        lot_remaining(ledger.conn(), lot),
        0,
        "the dead lot stays empty"
    );
    let (new_lot, granted, remaining, expires, source): (i64, i64, i64, Option<i64>, String) =
        ledger
            .conn()
            .query_row(
                "SELECT id, granted, remaining, expires_at, source FROM lots WHERE id <> ?1",
                [lot],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .expect("new lot");
    assert_ne!(new_lot, lot);
    assert_eq!(
        (granted, remaining, expires, source.as_str()),
        (40, 40, None, "adjustment")
    );

    let snap = snapshot(ledger.conn());
    assert!(matches!(
        ledger.refund("d", "again", T0 + 400),
        Err(LedgerError::AlreadyRefunded(_))
    ));
    assert_eq!(snapshot(ledger.conn()), snap);
    // The replayed debit reports exactly what it first answered, refund or not.
    let again = ledger
        .debit(&print_req("d", "m1", 40, T0 + 500))
        .expect("replay");
    assert!(again.replayed);
    assert_eq!(
        (again.covered, again.overage, again.balance_after),
        (40, 0, 60)
    );
    schema::verify(ledger.conn()).expect("verify");
}

/// Regression test: settling for less after the lot a hold reserved from was
/// voided counts only what was actually spent. 50 are reserved, the lot is
/// voided (taking the other 50), and the hold settles for 20: the 30 given
/// back land on the dead lot and are voided there at once, as the lot's loss,
/// not the usage's. So `covered` is 20, and the refund (the lot being dead)
/// regrants only those 20 into a new lot.
#[test]
fn settle_for_less_after_its_lot_was_voided() {
    let (_dir, mut ledger) = fresh_ledger();
    let lot = grant(
        &mut ledger,
        "p",
        "m0",
        "printing",
        100,
        None,
        SourceKind::Plan,
    );
    ledger
        .hold(&print_req("h", "m0", 50, T0 + 1))
        .expect("hold");
    let voided = ledger
        .write(|conn, _| lots::void_lot(conn, lot, "member left", T0 + 2))
        .expect("void lot");
    assert_eq!(voided, 50, "only the 50 not reserved are voided now");

    let s = ledger.settle("h", 20, "{}", T0 + 3).expect("settle");
    assert_eq!(
        (s.covered, s.overage),
        (20, 0),
        "settled for 20, so 20 are covered"
    );
    let r = ledger.refund("h", "jammed", T0 + 4).expect("refund");
    assert_eq!(
        (r.restored, r.regranted),
        (0, 20),
        "the refund gives back what was paid"
    );
    let (granted, remaining): (i64, i64) = ledger
        .conn()
        .query_row("SELECT SUM(granted), SUM(remaining) FROM lots", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("sums");
    // 100 granted, 80 voided with the lot, 20 paid then refunded.
    assert_eq!((granted, remaining), (120, 20));
}
