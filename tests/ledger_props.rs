//! Property tests of the ledger's accounting rules.
//!
//! A random sequence of grants, debits, replays, key conflicts, holds, settles,
//! voids, re-resolutions, expiry sweeps, lot voids and refunds runs against a
//! fresh ledger while the clock only moves forward. After every operation the
//! test checks, with raw SQL on the ledger and against an independent model
//! kept here:
//!
//! 1. no lot has `remaining < 0` or `remaining > granted`;
//! 2. `schema::verify` passes (every lot equals the sums of its history);
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
//! plus: lots are consumed in the documented order, refunds give back exactly
//! what was taken (regranting what sits on dead lots) and refund once, and
//! `query::balances` rebuilt for every past instant equals what was spendable
//! at that instant.
//!
//! A few deterministic tests at the end pin the same rules on small cases.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;
use rusqlite::{params, Connection};
use tallyd::ledger::lots::{self, GrantRequest};
use tallyd::ledger::{
    query, schema, Charge, HoldOutcome, Ledger, LedgerError, Origin, OveragePolicy, Payable,
    PolicyKind, Site, SourceKind, UsageRequest,
};
use tempfile::TempDir;

const T0: i64 = 1_700_000_000;
/// `m0` and `m1` use the site default (credits-then-invoice, uncapped);
/// `m2` and `m3` are credits-only; `m4` is credits-then-invoice with monthly
/// caps of [`CAP_CENTS`] and [`CAP_MINUTES`].
const MEMBERS: [&str; 5] = ["m0", "m1", "m2", "m3", "m4"];
const POLICIES: [Policy; 5] = [
    Policy::SiteDefault,
    Policy::SiteDefault,
    Policy::CreditsOnly,
    Policy::CreditsOnly,
    Policy::Capped,
];
const CAP_CENTS: i64 = 150;
const CAP_MINUTES: i64 = 90;
/// 2023-11-01T00:00:00Z: every instant in these tests is in November 2023
/// (UTC, the default site zone), so overage caps count from here.
const MONTH_START: i64 = 1_698_796_800;
const MONTH_END: i64 = 1_701_388_800;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    SiteDefault,
    CreditsOnly,
    Capped,
}

/// Grantable credits. `coworking` pays for desk and room, `studio` for studio
/// and room, so a room session can draw on lots of both time credits.
const CREDITS: [&str; 3] = ["printing", "coworking", "studio"];
/// Payables by index: 0 is printing, the rest are time for a resource type.
/// `phonebooth` is listed by no time credit.
const RESOURCE_TYPES: [&str; 4] = ["desk", "room", "studio", "phonebooth"];
const PAYABLES: usize = 1 + RESOURCE_TYPES.len();
const SOURCES: [SourceKind; 4] = [
    SourceKind::Plan,
    SourceKind::Product,
    SourceKind::Account,
    SourceKind::Adjustment,
];
const RETURNED_TO_VOIDED: &str = "returned to a voided lot";

/// Known bug in `src/ledger/usage.rs`, reproduced by the ignored test
/// `settle_for_less_after_its_lot_was_voided`: settling a hold for less than
/// its estimate after a lot it reserved from was voided reports the credit
/// that went back to the dead lot as still covered, and a refund then
/// regrants it. While this is `true` the property test settles such holds
/// for the estimate instead; set it to `false` to let the property test find
/// the bug (it shrinks to grant, hold, void the lot, settle for less).
const AVOID_KNOWN_BUG_SETTLE_LESS_ON_VOIDED_LOT: bool = false;

// ---------------------------------------------------------------------------
// Small helpers over raw SQL
// ---------------------------------------------------------------------------

fn payable(i: usize) -> Payable {
    match i {
        0 => Payable::Printing,
        i => Payable::Time {
            resource_type: RESOURCE_TYPES[i - 1].to_string(),
        },
    }
}

/// 0 for cents (printing), 1 for minutes (time).
fn unit_of(p: &Payable) -> usize {
    match p {
        Payable::Printing => 0,
        Payable::Time { .. } => 1,
    }
}

fn unit_name(unit: usize) -> &'static str {
    if unit == 0 {
        "cents"
    } else {
        "minutes"
    }
}

fn member_index(member: &str) -> usize {
    MEMBERS
        .iter()
        .position(|m| *m == member)
        .expect("known member")
}

fn one(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> i64 {
    conn.query_row(sql, args, |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Everything a write could change, to prove that a replay or a refused or
/// failed call changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    history: i64,
    overage_rows: i64,
    usages: i64,
    resolutions: i64,
    refunds: i64,
    lots: i64,
    remaining: i64,
    granted: i64,
    overage_sum: i64,
}

fn snapshot(conn: &Connection) -> Snapshot {
    conn.query_row(
        "SELECT (SELECT COUNT(*) FROM history), (SELECT COUNT(*) FROM overage),
                (SELECT COUNT(*) FROM usages), (SELECT COUNT(*) FROM hold_resolutions),
                (SELECT COUNT(*) FROM refunds), (SELECT COUNT(*) FROM lots),
                (SELECT COALESCE(SUM(remaining), 0) FROM lots),
                (SELECT COALESCE(SUM(granted), 0) FROM lots),
                (SELECT COALESCE(SUM(amount), 0) FROM overage)",
        [],
        |r| {
            Ok(Snapshot {
                history: r.get(0)?,
                overage_rows: r.get(1)?,
                usages: r.get(2)?,
                resolutions: r.get(3)?,
                refunds: r.get(4)?,
                lots: r.get(5)?,
                remaining: r.get(6)?,
                granted: r.get(7)?,
                overage_sum: r.get(8)?,
            })
        },
    )
    .expect("snapshot")
}

/// A lot that can pay for a payable at an instant, as the spec sees it.
#[derive(Debug, Clone)]
struct LiveLot {
    id: i64,
    remaining: i64,
    expires_at: Option<i64>,
    source: String,
    valid_from: i64,
}

fn source_rank(source: &str) -> u8 {
    match source {
        "plan" => 0,
        "product" => 1,
        "account" => 2,
        _ => 3,
    }
}

/// The member's lots that can pay for `p` at `at`: valid, unexpired, not
/// voided, with credit left, of a credit that covers the payable.
fn live_lots(conn: &Connection, member: &str, p: &Payable, at: i64) -> Vec<LiveLot> {
    let rt = match p {
        Payable::Printing => None,
        Payable::Time { resource_type } => Some(resource_type.clone()),
    };
    let mut stmt = conn
        .prepare(
            "SELECT id, remaining, expires_at, source, valid_from FROM lots
             WHERE member_id = ?1 AND remaining > 0 AND valid_from <= ?2
               AND (expires_at IS NULL OR expires_at > ?2) AND voided_at IS NULL
               AND CASE WHEN ?3 IS NULL THEN credit = 'printing'
                        ELSE credit IN (SELECT credit_id FROM time_credit_types
                                        WHERE resource_type = ?3) END
             ORDER BY id",
        )
        .expect("prepare live lots");
    stmt.query_map(params![member, at, rt], |r| {
        Ok(LiveLot {
            id: r.get(0)?,
            remaining: r.get(1)?,
            expires_at: r.get(2)?,
            source: r.get(3)?,
            valid_from: r.get(4)?,
        })
    })
    .expect("live lots")
    .collect::<rusqlite::Result<Vec<_>>>()
    .expect("live lots rows")
}

fn available(conn: &Connection, member: &str, p: &Payable, at: i64) -> i64 {
    live_lots(conn, member, p, at)
        .iter()
        .map(|l| l.remaining)
        .sum()
}

/// What the documented consumption order takes from `lots` for `amount`:
/// earliest expiry first, then plan < product < account < adjustment, then
/// oldest, then lot id; never-expiring lots last.
fn expected_takes(mut lots: Vec<LiveLot>, amount: i64) -> BTreeMap<i64, i64> {
    lots.sort_by_key(|l| {
        (
            l.expires_at.is_none(),
            l.expires_at.unwrap_or(0),
            source_rank(&l.source),
            l.valid_from,
            l.id,
        )
    });
    let mut left = amount;
    let mut out = BTreeMap::new();
    for l in lots {
        if left == 0 {
            break;
        }
        let take = l.remaining.min(left);
        out.insert(l.id, take);
        left -= take;
    }
    out
}

/// What a usage took from each lot in history rows of `kind`.
fn takes_of(conn: &Connection, usage: i64, kind: &str) -> BTreeMap<i64, i64> {
    let mut stmt = conn
        .prepare(
            "SELECT lot_id, -SUM(delta) FROM history
             WHERE usage_id = ?1 AND kind = ?2 AND delta < 0 GROUP BY lot_id",
        )
        .expect("prepare takes");
    stmt.query_map(params![usage, kind], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("takes")
        .collect::<rusqlite::Result<BTreeMap<i64, i64>>>()
        .expect("takes rows")
}

/// What a hold took from each lot, in the order it took them.
fn hold_takes_in_order(conn: &Connection, usage: i64) -> Vec<(i64, i64)> {
    let mut stmt = conn
        .prepare(
            "SELECT lot_id, -SUM(delta) FROM history WHERE usage_id = ?1 AND kind = 'hold'
             GROUP BY lot_id ORDER BY MIN(id)",
        )
        .expect("prepare hold takes");
    stmt.query_map([usage], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("hold takes")
        .collect::<rusqlite::Result<Vec<_>>>()
        .expect("hold take rows")
}

/// What a usage gave back to each lot in history rows of `kind`.
fn gives_of(conn: &Connection, usage: i64, kind: &str) -> BTreeMap<i64, i64> {
    let mut stmt = conn
        .prepare(
            "SELECT lot_id, SUM(delta) FROM history
             WHERE usage_id = ?1 AND kind = ?2 AND delta > 0 GROUP BY lot_id",
        )
        .expect("prepare gives");
    stmt.query_map(params![usage, kind], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("gives")
        .collect::<rusqlite::Result<BTreeMap<i64, i64>>>()
        .expect("gives rows")
}

/// What a usage really holds on each lot now: what it took minus what it gave
/// back, not counting credit that went back to a dead lot and was expired or
/// voided there at once. With whether that lot is dead (expired or voided) at
/// `at`.
fn net_taken(conn: &Connection, usage: i64, at: i64) -> Vec<(i64, i64, bool)> {
    let mut stmt = conn
        .prepare(
            "SELECT h.lot_id, -SUM(h.delta),
                    (l.voided_at IS NOT NULL OR (l.expires_at IS NOT NULL AND l.expires_at <= ?2))
             FROM history h JOIN lots l ON l.id = h.lot_id
             WHERE h.usage_id = ?1 AND h.kind IN ('debit', 'hold', 'settle', 'void')
               AND h.note <> ?3
             GROUP BY h.lot_id ORDER BY h.lot_id",
        )
        .expect("prepare net");
    stmt.query_map(params![usage, at, RETURNED_TO_VOIDED], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .expect("net")
    .collect::<rusqlite::Result<Vec<_>>>()
    .expect("net rows")
}

fn ids_all(conn: &Connection) -> Vec<i64> {
    let mut stmt = conn
        .prepare("SELECT id FROM lots ORDER BY id")
        .expect("prepare lots");
    stmt.query_map([], |r| r.get(0))
        .expect("lots")
        .collect::<rusqlite::Result<Vec<_>>>()
        .expect("lot rows")
}

fn lot_remaining(conn: &Connection, lot: i64) -> i64 {
    one(conn, "SELECT remaining FROM lots WHERE id = ?1", [lot])
}

/// Spendable credit per member and credit id at `at`, from the lots table.
type Spendable = BTreeMap<(String, String), i64>;

fn spendable_now(conn: &Connection, at: i64) -> Spendable {
    let mut stmt = conn
        .prepare(
            "SELECT member_id, credit, SUM(remaining) FROM lots
             WHERE valid_from <= ?1 AND (expires_at IS NULL OR expires_at > ?1)
               AND voided_at IS NULL
             GROUP BY member_id, credit HAVING SUM(remaining) <> 0",
        )
        .expect("prepare spendable");
    stmt.query_map([at], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .expect("spendable")
        .collect::<rusqlite::Result<Spendable>>()
        .expect("spendable rows")
}

/// The same, as `query::balances` rebuilds it from history for instant `at`.
fn spendable_rebuilt(conn: &Connection, at: i64) -> Spendable {
    let mut out = Spendable::new();
    for b in query::balances(conn, None, at).expect("balances") {
        if b.printing_cents != 0 {
            out.insert((b.member.clone(), "printing".into()), b.printing_cents);
        }
        for (credit, minutes) in b.time_minutes {
            if minutes != 0 {
                out.insert((b.member.clone(), credit), minutes);
            }
        }
    }
    out
}

fn open_ledger(dir: &Path) -> Ledger {
    let mut ledger = Ledger::open(&dir.join("ledger.db"), Site::default()).expect("open ledger");
    ledger
        .write(|conn, _| {
            for (i, m) in MEMBERS.iter().enumerate() {
                match POLICIES[i] {
                    Policy::SiteDefault => {
                        lots::ensure_member(conn, m, m, T0)?;
                    }
                    Policy::CreditsOnly => {
                        lots::upsert_member(conn, m, m, Some(OveragePolicy::CREDITS_ONLY), T0)?;
                    }
                    Policy::Capped => {
                        let capped = OveragePolicy {
                            kind: PolicyKind::CreditsThenInvoice,
                            cap_cents: Some(CAP_CENTS),
                            cap_minutes: Some(CAP_MINUTES),
                        };
                        lots::upsert_member(conn, m, m, Some(capped), T0)?;
                    }
                }
            }
            lots::define_time_credit(
                conn,
                "coworking",
                "Coworking hours",
                &["desk".to_string(), "room".to_string()],
            )?;
            lots::define_time_credit(
                conn,
                "studio",
                "Studio hours",
                &["studio".to_string(), "room".to_string()],
            )?;
            Ok(())
        })
        .expect("setup");
    ledger
}

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum SettleHow {
    /// Settle for `quarters`/4 of the estimate (0..=3, so strictly less unless
    /// the estimate is 0).
    Less(i64),
    Same,
    More(i64),
}

#[derive(Debug, Clone)]
enum Again {
    /// Settle with the amount the hold resolved with (0 for a voided hold).
    SettleSame,
    /// Settle with a different amount.
    SettleOther(i64),
    Void,
}

#[derive(Debug, Clone)]
enum Op {
    Grant {
        member: usize,
        credit: usize,
        amount: i64,
        source: usize,
        starts_in: i64,
        expires_after: Option<i64>,
    },
    /// The same grant again (same source key): grants once.
    GrantAgain(Index),
    Debit {
        member: Option<usize>,
        payable: usize,
        amount: i64,
        manual: bool,
    },
    Hold {
        member: usize,
        payable: usize,
        amount: i64,
    },
    /// An earlier debit or placed hold, sent again with the same content.
    Replay(Index),
    /// An earlier key with different content: amount changed, or a debit sent
    /// as a hold (or the reverse).
    Conflict {
        pick: Index,
        bump: i64,
        swap_kind: bool,
    },
    Settle(Index, SettleHow),
    Void(Index),
    /// Settle or void a hold that is already resolved.
    Reresolve(Index, Again),
    /// Settle or void a debit, or an unknown key.
    WrongTarget(Index),
    Expire,
    Refund(Index),
    /// Void a lot; when the flag is set, preferably one an open hold has
    /// reserved from.
    VoidLot(Index, bool),
}

#[derive(Debug, Clone)]
struct Step {
    dt: i64,
    op: Op,
}

fn settle_how() -> impl Strategy<Value = SettleHow> {
    prop_oneof![
        (0..4i64).prop_map(SettleHow::Less),
        Just(SettleHow::Same),
        (1..200i64).prop_map(SettleHow::More),
    ]
}

fn again() -> impl Strategy<Value = Again> {
    prop_oneof![
        Just(Again::SettleSame),
        (1..50i64).prop_map(Again::SettleOther),
        Just(Again::Void),
    ]
}

/// Mostly payables some credit covers; now and then the unlisted one.
fn payable_index() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 0..PAYABLES - 1, 1 => Just(PAYABLES - 1)]
}

fn grant_op() -> impl Strategy<Value = Op> {
    (
        0..MEMBERS.len(),
        0..CREDITS.len(),
        1..500i64,
        0..SOURCES.len(),
        prop_oneof![3 => Just(0i64), 1 => 1..120i64],
        proptest::option::weighted(0.7, 1..600i64),
    )
        .prop_map(
            |(member, credit, amount, source, starts_in, expires_after)| Op::Grant {
                member,
                credit,
                amount,
                source,
                starts_in,
                expires_after,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    let grant = grant_op();
    let debit = (
        proptest::option::weighted(0.85, 0..MEMBERS.len()),
        payable_index(),
        0..200i64,
        proptest::bool::weighted(0.15),
    )
        .prop_map(|(member, payable, amount, manual)| Op::Debit {
            member,
            payable,
            amount,
            manual,
        });
    let hold =
        (0..MEMBERS.len(), payable_index(), 0..150i64).prop_map(|(member, payable, amount)| {
            Op::Hold {
                member,
                payable,
                amount,
            }
        });
    prop_oneof![
        7 => grant,
        1 => any::<Index>().prop_map(Op::GrantAgain),
        5 => debit,
        5 => hold,
        2 => any::<Index>().prop_map(Op::Replay),
        2 => (any::<Index>(), 1..50i64, any::<bool>())
            .prop_map(|(pick, bump, swap_kind)| Op::Conflict { pick, bump, swap_kind }),
        5 => (any::<Index>(), settle_how()).prop_map(|(i, h)| Op::Settle(i, h)),
        3 => any::<Index>().prop_map(Op::Void),
        2 => (any::<Index>(), again()).prop_map(|(i, a)| Op::Reresolve(i, a)),
        1 => any::<Index>().prop_map(Op::WrongTarget),
        2 => Just(Op::Expire),
        3 => any::<Index>().prop_map(Op::Refund),
        2 => (any::<Index>(), any::<bool>()).prop_map(|(i, held)| Op::VoidLot(i, held)),
    ]
}

/// Some opening grants at the start, so members have credit to spend and
/// holds are placed, then the random operations.
fn steps() -> impl Strategy<Value = Vec<Step>> {
    let opening = proptest::collection::vec(grant_op().prop_map(|op| Step { dt: 0, op }), 4..16);
    let ops =
        proptest::collection::vec((0..60i64, op()).prop_map(|(dt, op)| Step { dt, op }), 1..40);
    (opening, ops).prop_map(|(mut opening, ops)| {
        opening.extend(ops);
        opening
    })
}

// ---------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------

/// Per member and unit, what the test expects from the API's own answers.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    /// Granted by grants and refund regrants.
    granted: i64,
    /// Taken from lots by debits and settled holds, less refunds restored.
    used: i64,
    /// Reserved on lots by open holds.
    held: i64,
    /// On the overage account.
    overage: i64,
}

#[derive(Debug, Clone)]
enum HoldState {
    Open,
    Settled { actual: i64, charge: Charge },
    Voided,
}

#[derive(Debug, Clone)]
struct Rec {
    req: UsageRequest,
    is_hold: bool,
    first: Charge,
    /// `Some` for holds.
    hold: Option<HoldState>,
    refunded: bool,
}

struct Harness {
    _dir: TempDir,
    ledger: Ledger,
    now: i64,
    seq: u64,
    acc: [[Acc; 2]; MEMBERS.len()],
    recs: Vec<Rec>,
    grants: Vec<(GrantRequest, i64)>,
    /// Spendable credit right after the last operation at each instant.
    past: BTreeMap<i64, Spendable>,
}

fn pick<'a, T>(items: &'a [T], index: &Index, keep: impl Fn(&T) -> bool) -> Option<usize>
where
    T: 'a,
{
    let matching: Vec<usize> = (0..items.len()).filter(|&i| keep(&items[i])).collect();
    if matching.is_empty() {
        None
    } else {
        Some(matching[index.index(matching.len())])
    }
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = open_ledger(dir.path());
        // Durability is the crash test's business; without an fsync per
        // commit this test is bound by CPU, not by the disk.
        ledger
            .conn()
            .pragma_update(None, "synchronous", "OFF")
            .expect("synchronous off");
        Harness {
            _dir: dir,
            ledger,
            now: T0,
            seq: 0,
            acc: [[Acc::default(); 2]; MEMBERS.len()],
            recs: Vec::new(),
            grants: Vec::new(),
            past: BTreeMap::new(),
        }
    }

    fn conn(&self) -> &Connection {
        self.ledger.conn()
    }

    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn acc_mut(&mut self, member: &str, unit: usize) -> &mut Acc {
        &mut self.acc[member_index(member)][unit]
    }

    fn run(&mut self, step: &Step) {
        self.now += step.dt;
        match &step.op {
            Op::Grant {
                member,
                credit,
                amount,
                source,
                starts_in,
                expires_after,
            } => self.grant(
                *member,
                *credit,
                *amount,
                *source,
                *starts_in,
                *expires_after,
            ),
            Op::GrantAgain(i) => self.grant_again(i),
            Op::Debit {
                member,
                payable,
                amount,
                manual,
            } => self.debit(*member, *payable, *amount, *manual),
            Op::Hold {
                member,
                payable,
                amount,
            } => self.hold(*member, *payable, *amount),
            Op::Replay(i) => self.replay(i),
            Op::Conflict {
                pick,
                bump,
                swap_kind,
            } => self.conflict(pick, *bump, *swap_kind),
            Op::Settle(i, how) => self.settle(i, how),
            Op::Void(i) => self.void(i),
            Op::Reresolve(i, again) => self.reresolve(i, again),
            Op::WrongTarget(i) => self.wrong_target(i),
            Op::Expire => self.expire(),
            Op::Refund(i) => self.refund(i),
            Op::VoidLot(i, held) => self.void_lot(i, *held),
        }
        self.check();
    }

    fn grant(
        &mut self,
        member: usize,
        credit: usize,
        amount: i64,
        source: usize,
        starts_in: i64,
        expires_after: Option<i64>,
    ) {
        let n = self.next();
        let valid_from = self.now + starts_in;
        let g = GrantRequest {
            member: MEMBERS[member].to_string(),
            credit: CREDITS[credit].to_string(),
            amount,
            valid_from,
            expires_at: expires_after.map(|e| valid_from + e),
            source: SOURCES[source],
            source_key: format!("grant:{n}"),
            note: String::new(),
            at: self.now,
        };
        let got = self
            .ledger
            .write(|conn, _| lots::grant(conn, &g))
            .expect("grant");
        assert!(got.created, "a new source key makes a new lot");
        let unit = usize::from(credit != 0);
        self.acc_mut(MEMBERS[member], unit).granted += amount;
        self.grants.push((g, got.lot));
    }

    fn grant_again(&mut self, index: &Index) {
        let Some(i) = pick(&self.grants, index, |_| true) else {
            return;
        };
        let (mut g, lot) = self.grants[i].clone();
        g.at = self.now;
        let before = snapshot(self.conn());
        let got = self
            .ledger
            .write(|conn, _| lots::grant(conn, &g))
            .expect("grant again");
        assert!(!got.created, "the same source key grants once");
        assert_eq!(got.lot, lot);
        assert_eq!(snapshot(self.conn()), before);
    }

    fn usage_request(
        &mut self,
        prefix: &str,
        member: Option<usize>,
        p: usize,
        amount: i64,
        manual: bool,
    ) -> UsageRequest {
        let n = self.next();
        let payable = payable(p);
        let origin = match (&payable, manual) {
            (_, true) => Origin::Manual,
            (Payable::Printing, false) => Origin::Print {
                printer: "hp-lobby".into(),
            },
            (Payable::Time { resource_type }, false) => Origin::Session {
                resource: format!("{resource_type}-1"),
            },
        };
        UsageRequest {
            key: format!("{prefix}:{n}"),
            member: member.map(|m| MEMBERS[m].to_string()),
            origin,
            payable,
            amount,
            detail: format!("{{\"job\":{n},\"impressions\":{}}}", amount / 10),
            at: self.now,
        }
    }

    /// Checks a fresh (not replayed) debit or hold: consumption order,
    /// `covered + overage == amount`, balance afterwards.
    fn check_fresh_charge(&self, req: &UsageRequest, c: &Charge, lots_before: &[LiveLot]) {
        assert!(!c.replayed, "{}: a new key is not a replay", req.key);
        let Some(member) = &req.member else {
            assert_eq!((c.covered, c.overage), (0, 0), "unattributed: no lots");
            return;
        };
        let avail_before: i64 = lots_before.iter().map(|l| l.remaining).sum();
        assert_eq!(c.covered, req.amount.min(avail_before), "{}", req.key);
        assert_eq!(c.covered + c.overage, req.amount, "{}", req.key);
        assert_eq!(
            c.balance_after,
            available(self.conn(), member, &req.payable, self.now)
        );
        assert_eq!(c.balance_after, avail_before - c.covered);
    }

    fn debit(&mut self, member: Option<usize>, p: usize, amount: i64, manual: bool) {
        let req = self.usage_request("debit", member, p, amount, manual);
        let lots_before = match &req.member {
            Some(m) => live_lots(self.conn(), m, &req.payable, self.now),
            None => Vec::new(),
        };
        let before = snapshot(self.conn());
        let c = self.ledger.debit(&req).expect("debit");
        self.check_fresh_charge(&req, &c, &lots_before);
        assert_eq!(
            takes_of(self.conn(), c.usage_id, "debit"),
            expected_takes(lots_before, amount),
            "{}: consumption order",
            req.key
        );
        if req.payable == payable(4) {
            assert_eq!(c.covered, 0, "no time credit lists phonebooth");
        }
        match &req.member {
            Some(m) => {
                let unit = unit_of(&req.payable);
                let acc = self.acc_mut(m, unit);
                acc.used += c.covered;
                acc.overage += c.overage;
            }
            None => {
                let after = snapshot(self.conn());
                assert_eq!(after.remaining, before.remaining);
                assert_eq!(after.history, before.history);
                assert_eq!(after.overage_rows, before.overage_rows);
            }
        }
        self.recs.push(Rec {
            req,
            is_hold: false,
            first: c,
            hold: None,
            refunded: false,
        });
    }

    fn hold(&mut self, member: usize, p: usize, amount: i64) {
        let req = self.usage_request("hold", Some(member), p, amount, false);
        let m = MEMBERS[member];
        let lots_before = live_lots(self.conn(), m, &req.payable, self.now);
        let avail: i64 = lots_before.iter().map(|l| l.remaining).sum();
        let unit = unit_of(&req.payable);
        let uncovered = (amount - avail).max(0);
        // Overage this month so far (all of it: the tests stay in one month).
        assert!(self.now < MONTH_END);
        let so_far = one(
            self.conn(),
            "SELECT COALESCE(SUM(amount), 0) FROM overage
             WHERE member_id = ?1 AND unit = ?2 AND at >= ?3",
            params![m, unit_name(unit), MONTH_START],
        );
        let cap = if unit == 0 { CAP_CENTS } else { CAP_MINUTES };
        let refused_as = match POLICIES[member] {
            Policy::SiteDefault => None,
            Policy::CreditsOnly => (uncovered > 0).then_some(PolicyKind::CreditsOnly),
            Policy::Capped => (uncovered > 0 && so_far + uncovered > cap)
                .then_some(PolicyKind::CreditsThenInvoice),
        };
        let before = snapshot(self.conn());
        let out = self.ledger.hold(&req).expect("hold");
        if let Some(policy) = refused_as {
            assert_eq!(
                out,
                HoldOutcome::Refused {
                    available: avail,
                    needed: amount,
                    policy,
                },
                "{}",
                req.key
            );
            assert_eq!(
                snapshot(self.conn()),
                before,
                "a refused hold writes nothing"
            );
            return;
        }
        let HoldOutcome::Placed(c) = out else {
            panic!("{}: hold refused: {out:?}", req.key);
        };
        self.check_fresh_charge(&req, &c, &lots_before);
        assert_eq!(
            takes_of(self.conn(), c.usage_id, "hold"),
            expected_takes(lots_before, amount),
            "{}: consumption order",
            req.key
        );
        let acc = self.acc_mut(m, unit);
        acc.held += c.covered;
        acc.overage += c.overage;
        self.recs.push(Rec {
            req,
            is_hold: true,
            first: c,
            hold: Some(HoldState::Open),
            refunded: false,
        });
    }

    fn replay(&mut self, index: &Index) {
        let Some(i) = pick(&self.recs, index, |_| true) else {
            return;
        };
        let rec = self.recs[i].clone();
        let mut req = rec.req.clone();
        // A retry comes later; the instant is not part of the content.
        req.at = self.now;
        let before = snapshot(self.conn());
        let c = if rec.is_hold {
            match self.ledger.hold(&req).expect("hold replay") {
                HoldOutcome::Placed(c) => c,
                other => panic!("{}: replayed hold refused: {other:?}", req.key),
            }
        } else {
            self.ledger.debit(&req).expect("debit replay")
        };
        assert_eq!(snapshot(self.conn()), before, "{}: replay wrote", req.key);
        assert!(c.replayed, "{}", req.key);
        assert_eq!(c.usage_id, rec.first.usage_id);
        let open = matches!(rec.hold, None | Some(HoldState::Open));
        if open {
            assert_eq!(
                (c.covered, c.overage),
                (rec.first.covered, rec.first.overage),
                "{}: a replay returns the first result",
                req.key
            );
        }
        if let Some(m) = &req.member {
            assert_eq!(
                c.balance_after,
                available(self.conn(), m, &req.payable, self.now)
            );
        }
    }

    fn conflict(&mut self, index: &Index, bump: i64, swap_kind: bool) {
        let Some(i) = pick(&self.recs, index, |_| true) else {
            return;
        };
        let rec = self.recs[i].clone();
        let mut req = rec.req.clone();
        req.at = self.now;
        let before = snapshot(self.conn());
        let swap = swap_kind && req.member.is_some();
        if !swap {
            req.amount += bump;
        }
        let as_hold = rec.is_hold != swap;
        let err = if as_hold {
            self.ledger.hold(&req).map(|_| ()).expect_err("conflict")
        } else {
            self.ledger.debit(&req).map(|_| ()).expect_err("conflict")
        };
        match err {
            LedgerError::KeyConflict(k) => assert_eq!(k, req.key),
            other => panic!("{}: expected KeyConflict, got {other:?}", req.key),
        }
        assert_eq!(
            snapshot(self.conn()),
            before,
            "a key conflict writes nothing"
        );
    }

    fn settle(&mut self, index: &Index, how: &SettleHow) {
        let Some(i) = pick(&self.recs, index, |r| {
            matches!(r.hold, Some(HoldState::Open))
        }) else {
            return;
        };
        let rec = self.recs[i].clone();
        let member = rec.req.member.clone().expect("holds have members");
        let estimate = rec.req.amount;
        assert_eq!(rec.first.covered + rec.first.overage, estimate);
        let actual = match how {
            SettleHow::Less(q) => estimate * q / 4,
            SettleHow::Same => estimate,
            SettleHow::More(extra) => estimate + extra,
        };
        let actual = if AVOID_KNOWN_BUG_SETTLE_LESS_ON_VOIDED_LOT
            && actual < estimate
            && one(
                self.conn(),
                "SELECT COUNT(*) FROM history h JOIN lots l ON l.id = h.lot_id
                 WHERE h.usage_id = ?1 AND h.kind = 'hold' AND l.voided_at IS NOT NULL",
                [rec.first.usage_id],
            ) > 0
        {
            estimate
        } else {
            actual
        };
        let lots_before = live_lots(self.conn(), &member, &rec.req.payable, self.now);
        let c = self
            .ledger
            .settle(&rec.req.key, actual, "{\"impressions\":1}", self.now)
            .expect("settle");
        assert!(!c.replayed);
        assert_eq!(c.usage_id, rec.first.usage_id);
        assert_eq!(
            c.covered + c.overage,
            actual,
            "{}: settled for {actual} but covered {} + overage {}",
            rec.req.key,
            c.covered,
            c.overage
        );
        if actual >= estimate {
            let extra = actual - estimate;
            let takes = expected_takes(lots_before, extra);
            let extra_covered: i64 = takes.values().sum();
            assert_eq!(takes_of(self.conn(), c.usage_id, "settle"), takes);
            assert_eq!(c.covered, rec.first.covered + extra_covered);
            assert_eq!(c.overage, rec.first.overage + extra - extra_covered);
        } else {
            // What goes back comes off the overage first, then the lots.
            let back = estimate - actual;
            let from_overage = back.min(rec.first.overage);
            assert_eq!(
                c.overage,
                rec.first.overage - from_overage,
                "{}",
                rec.req.key
            );
            assert_eq!(
                c.covered,
                rec.first.covered - (back - from_overage),
                "{}",
                rec.req.key
            );
            // ... and to the lots it came from, last-taken first.
            let mut left = back - from_overage;
            let mut expect = BTreeMap::new();
            for (lot, took) in hold_takes_in_order(self.conn(), c.usage_id)
                .into_iter()
                .rev()
            {
                if left == 0 {
                    break;
                }
                let give = took.min(left);
                expect.insert(lot, give);
                left -= give;
            }
            assert_eq!(gives_of(self.conn(), c.usage_id, "settle"), expect);
        }
        assert_eq!(
            c.balance_after,
            available(self.conn(), &member, &rec.req.payable, self.now)
        );
        let unit = unit_of(&rec.req.payable);
        let acc = self.acc_mut(&member, unit);
        acc.held -= rec.first.covered;
        acc.used += c.covered;
        acc.overage += c.overage - rec.first.overage;
        self.recs[i].hold = Some(HoldState::Settled { actual, charge: c });
    }

    fn void(&mut self, index: &Index) {
        let Some(i) = pick(&self.recs, index, |r| {
            matches!(r.hold, Some(HoldState::Open))
        }) else {
            return;
        };
        let rec = self.recs[i].clone();
        let member = rec.req.member.clone().expect("holds have members");
        let usage = rec.first.usage_id;
        let taken: Vec<(i64, i64, bool, i64)> = net_taken(self.conn(), usage, self.now)
            .into_iter()
            .map(|(lot, n, dead)| (lot, n, dead, lot_remaining(self.conn(), lot)))
            .collect();
        self.ledger
            .void(&rec.req.key, "cancelled", self.now)
            .expect("void");
        // Exactly the lots it took from get it back (unless they died since).
        for (lot, n, dead, was) in taken {
            let expect = if dead { was } else { was + n };
            assert_eq!(lot_remaining(self.conn(), lot), expect, "lot {lot}");
        }
        let net: i64 = net_taken(self.conn(), usage, self.now)
            .iter()
            .map(|(_, n, _)| n)
            .sum();
        assert_eq!(net, 0, "a voided hold holds nothing");
        assert_eq!(
            one(
                self.conn(),
                "SELECT COALESCE(SUM(amount), 0) FROM overage WHERE usage_id = ?1",
                [usage]
            ),
            0
        );
        // Voiding again is a no-op.
        let before = snapshot(self.conn());
        self.ledger
            .void(&rec.req.key, "again", self.now)
            .expect("void twice");
        assert_eq!(snapshot(self.conn()), before);
        let unit = unit_of(&rec.req.payable);
        let acc = self.acc_mut(&member, unit);
        acc.held -= rec.first.covered;
        acc.overage -= rec.first.overage;
        self.recs[i].hold = Some(HoldState::Voided);
    }

    fn reresolve(&mut self, index: &Index, again: &Again) {
        let Some(i) = pick(&self.recs, index, |r| {
            matches!(r.hold, Some(HoldState::Settled { .. } | HoldState::Voided))
        }) else {
            return;
        };
        let rec = self.recs[i].clone();
        let key = rec.req.key.clone();
        let before = snapshot(self.conn());
        let state = rec.hold.clone().expect("a hold");
        let (resolved_actual, outcome) = match &state {
            HoldState::Settled { actual, .. } => (*actual, "settled"),
            _ => (0, "voided"),
        };
        let already = |r: Result<(), LedgerError>| match r {
            Err(LedgerError::AlreadyResolved { key: k, outcome: o }) => {
                assert_eq!(k, key);
                assert_eq!(o, outcome);
            }
            other => panic!("{key}: expected AlreadyResolved({outcome}), got {other:?}"),
        };
        match (again, &state) {
            (Again::SettleSame, HoldState::Settled { charge, .. }) => {
                let c = self
                    .ledger
                    .settle(&key, resolved_actual, "again", self.now)
                    .expect("settle replay");
                assert!(c.replayed);
                assert_eq!((c.covered, c.overage), (charge.covered, charge.overage));
            }
            (Again::SettleSame, _) => already(
                self.ledger
                    .settle(&key, resolved_actual, "", self.now)
                    .map(|_| ()),
            ),
            (Again::SettleOther(bump), _) => already(
                self.ledger
                    .settle(&key, resolved_actual + bump, "", self.now)
                    .map(|_| ()),
            ),
            (Again::Void, HoldState::Voided) => self
                .ledger
                .void(&key, "again", self.now)
                .expect("void twice"),
            (Again::Void, _) => already(self.ledger.void(&key, "too late", self.now)),
        }
        assert_eq!(snapshot(self.conn()), before, "{key}: re-resolving wrote");
        let resolutions = one(
            self.conn(),
            "SELECT COUNT(*) FROM hold_resolutions WHERE usage_id = ?1",
            [rec.first.usage_id],
        );
        assert_eq!(resolutions, 1);
    }

    fn wrong_target(&mut self, index: &Index) {
        let before = snapshot(self.conn());
        match pick(&self.recs, index, |r| !r.is_hold) {
            Some(i) => {
                let key = self.recs[i].req.key.clone();
                let e = self
                    .ledger
                    .settle(&key, 1, "", self.now)
                    .expect_err("settle");
                assert!(
                    matches!(e, LedgerError::NotAHold(ref k) if *k == key),
                    "{e:?}"
                );
                let e = self.ledger.void(&key, "", self.now).expect_err("void");
                assert!(
                    matches!(e, LedgerError::NotAHold(ref k) if *k == key),
                    "{e:?}"
                );
            }
            None => {
                let e = self
                    .ledger
                    .settle("no-such-key", 1, "", self.now)
                    .expect_err("settle");
                assert!(matches!(e, LedgerError::UnknownUsage(_)), "{e:?}");
                let e = self
                    .ledger
                    .refund("no-such-key", "", self.now)
                    .expect_err("refund");
                assert!(matches!(e, LedgerError::UnknownUsage(_)), "{e:?}");
            }
        }
        // Unknown members, bad amounts: errors that write nothing.
        let ghost = UsageRequest {
            key: format!("ghost:{}", self.next()),
            member: Some("ghost".into()),
            origin: Origin::Manual,
            payable: Payable::Printing,
            amount: 5,
            detail: "{}".into(),
            at: self.now,
        };
        let e = self.ledger.debit(&ghost).expect_err("unknown member");
        assert!(
            matches!(e, LedgerError::UnknownMember(ref m) if m == "ghost"),
            "{e:?}"
        );
        let e = self.ledger.hold(&ghost).expect_err("unknown member");
        assert!(
            matches!(e, LedgerError::UnknownMember(ref m) if m == "ghost"),
            "{e:?}"
        );
        let nobody = UsageRequest {
            member: None,
            ..ghost.clone()
        };
        let e = self.ledger.hold(&nobody).expect_err("hold without member");
        assert!(matches!(e, LedgerError::UnknownMember(_)), "{e:?}");
        let negative = UsageRequest {
            member: Some("m0".into()),
            amount: -1,
            ..ghost
        };
        let e = self.ledger.debit(&negative).expect_err("negative amount");
        assert!(
            matches!(e, LedgerError::InvalidAmount { amount: -1, .. }),
            "{e:?}"
        );
        assert_eq!(snapshot(self.conn()), before);
    }

    fn expire(&mut self) {
        let (due_lots, due_amount) = self
            .conn()
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(remaining), 0) FROM lots
                 WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ?1",
                [self.now],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )
            .expect("due");
        let got = self.ledger.expire_due(self.now).expect("expire");
        assert_eq!((got.lots, got.amount), (due_lots, due_amount));
        assert_eq!(
            one(
                self.conn(),
                "SELECT COUNT(*) FROM lots WHERE remaining > 0 AND expires_at <= ?1",
                [self.now]
            ),
            0
        );
        // A second sweep at the same instant finds nothing.
        let again = self.ledger.expire_due(self.now).expect("expire again");
        assert_eq!((again.lots, again.amount), (0, 0));
    }

    fn refund(&mut self, index: &Index) {
        let Some(i) = pick(&self.recs, index, |_| true) else {
            return;
        };
        let rec = self.recs[i].clone();
        let key = rec.req.key.clone();
        let usage = rec.first.usage_id;
        let before = snapshot(self.conn());
        // What it holds on each lot and on the overage account before.
        let taken = net_taken(self.conn(), usage, self.now);
        let restored: i64 = taken.iter().filter(|t| !t.2).map(|t| t.1).sum();
        let regranted: i64 = taken.iter().filter(|t| t.2).map(|t| t.1).sum();
        let overage = one(
            self.conn(),
            "SELECT COALESCE(SUM(amount), 0) FROM overage WHERE usage_id = ?1 AND kind <> 'refund'",
            [usage],
        );
        let result = self.ledger.refund(&key, "manager", self.now);
        let expect_error = |r: &Result<tallyd::ledger::usage::Refund, LedgerError>, want: &str| {
            let ok = matches!(
                (r, want),
                (Err(LedgerError::AlreadyRefunded(k)), "already") if *k == key
            ) || matches!(
                (r, want),
                (Err(LedgerError::HoldOpen(k)), "open") if *k == key
            ) || matches!(
                (r, want),
                (Err(LedgerError::NothingToRefund(k)), "nothing") if *k == key
            );
            assert!(ok, "{key}: expected {want}, got {r:?}");
        };
        if rec.refunded {
            expect_error(&result, "already");
        } else if matches!(rec.hold, Some(HoldState::Open)) {
            expect_error(&result, "open");
        } else if matches!(rec.hold, Some(HoldState::Voided)) {
            expect_error(&result, "nothing");
        } else if let Some(member) = rec.req.member.clone() {
            let charged = match &rec.hold {
                Some(HoldState::Settled { charge, .. }) => charge.clone(),
                _ => rec.first.clone(),
            };
            assert_eq!(
                restored + regranted,
                charged.covered,
                "{key}: refundable credit differs from what the charge said it covered"
            );
            if restored + regranted + overage == 0 {
                expect_error(&result, "nothing");
            } else {
                let r = result.expect("refund");
                assert_eq!(r.usage_id, usage);
                assert_eq!(
                    (r.restored, r.regranted, r.overage_reversed),
                    (restored, regranted, overage),
                    "{key}"
                );
                let after = snapshot(self.conn());
                assert_eq!(after.remaining, before.remaining + restored + regranted);
                assert_eq!(after.granted, before.granted + regranted);
                assert_eq!(after.overage_sum, before.overage_sum - overage);
                let unit = unit_of(&rec.req.payable);
                let acc = self.acc_mut(&member, unit);
                acc.used -= restored;
                acc.granted += regranted;
                acc.overage -= overage;
                self.recs[i].refunded = true;
            }
        } else if rec.req.amount == 0 {
            expect_error(&result, "nothing");
        } else {
            let r = result.expect("unattributed refund");
            assert_eq!((r.restored, r.regranted, r.overage_reversed), (0, 0, 0));
            self.recs[i].refunded = true;
        }
        if !self.recs[i].refunded {
            assert_eq!(
                snapshot(self.conn()),
                before,
                "{key}: a failed refund wrote"
            );
        } else {
            // Each usage refunds once.
            let mid = snapshot(self.conn());
            let again = self.ledger.refund(&key, "twice", self.now);
            expect_error(&again, "already");
            assert_eq!(snapshot(self.conn()), mid);
        }
    }

    fn void_lot(&mut self, index: &Index, prefer_held: bool) {
        let ids = |sql: &str| -> Vec<i64> {
            let mut stmt = self.conn().prepare(sql).expect("prepare lots");
            stmt.query_map([], |r| r.get(0))
                .expect("lots")
                .collect::<rusqlite::Result<Vec<_>>>()
                .expect("lot rows")
        };
        let mut ids = if prefer_held {
            ids(
                "SELECT DISTINCT h.lot_id FROM history h JOIN usages u ON u.id = h.usage_id
                 WHERE h.kind = 'hold' AND NOT EXISTS
                     (SELECT 1 FROM hold_resolutions r WHERE r.usage_id = u.id)
                 ORDER BY h.lot_id",
            )
        } else {
            Vec::new()
        };
        if ids.is_empty() {
            ids = ids_all(self.conn());
        }
        if ids.is_empty() {
            return;
        }
        let lot = ids[index.index(ids.len())];
        let state = lots::lot_state(self.conn(), lot).expect("lot state");
        let now = self.now;
        let voided = self
            .ledger
            .write(|conn, _| lots::void_lot(conn, lot, "closed", now))
            .expect("void lot");
        let expect = if state.voided { 0 } else { state.remaining };
        assert_eq!(voided, expect);
        assert_eq!(lot_remaining(self.conn(), lot), 0);
    }

    fn check(&mut self) {
        let conn = self.ledger.conn();
        // 1. Lots stay within [0, granted].
        assert_eq!(
            one(
                conn,
                "SELECT COUNT(*) FROM lots WHERE remaining < 0 OR remaining > granted",
                []
            ),
            0
        );
        // 2. Every lot equals the sums of its history.
        schema::verify(conn).expect("verify");
        // 4. Conservation, per member and unit.
        for (mi, member) in MEMBERS.iter().enumerate() {
            for unit in 0..2 {
                let printing = unit == 0;
                let (granted, remaining): (i64, i64) = conn
                    .query_row(
                        "SELECT COALESCE(SUM(granted), 0), COALESCE(SUM(remaining), 0) FROM lots
                         WHERE member_id = ?1 AND (credit = 'printing') = ?2",
                        params![member, printing],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .expect("lot sums");
                let by_kind = |filter: &str| -> i64 {
                    one(
                        conn,
                        &format!(
                            "SELECT COALESCE(-SUM(h.delta), 0) FROM history h
                             JOIN lots l ON l.id = h.lot_id
                             WHERE l.member_id = ?1 AND (l.credit = 'printing') = ?2 AND {filter}"
                        ),
                        params![member, printing],
                    )
                };
                let expired = by_kind("h.kind = 'expire'");
                let voided = by_kind(&format!(
                    "h.kind = 'void' AND (h.usage_id IS NULL OR h.note = '{RETURNED_TO_VOIDED}')"
                ));
                let held = by_kind(
                    "h.usage_id IN (SELECT u.id FROM usages u WHERE u.is_hold = 1
                       AND NOT EXISTS (SELECT 1 FROM hold_resolutions r WHERE r.usage_id = u.id))",
                );
                let overage = one(
                    conn,
                    "SELECT COALESCE(SUM(amount), 0) FROM overage WHERE member_id = ?1 AND unit = ?2",
                    params![member, unit_name(unit)],
                );
                let a = self.acc[mi][unit];
                let what = format!("{member} {}", unit_name(unit));
                assert_eq!(granted, a.granted, "{what}: granted");
                assert_eq!(held, a.held, "{what}: held by open holds");
                assert_eq!(overage, a.overage, "{what}: overage");
                assert_eq!(
                    granted,
                    remaining + a.used + a.held + expired + voided,
                    "{what}: granted {granted} != remaining {remaining} + used {} + held {} + expired {expired} + voided {voided}",
                    a.used,
                    a.held
                );
            }
        }
        // 5. Only holds resolve, each at most once, and exactly the ones the
        // model resolved.
        assert_eq!(
            one(
                conn,
                "SELECT COUNT(*) FROM hold_resolutions r JOIN usages u ON u.id = r.usage_id
                 WHERE u.is_hold = 0",
                []
            ),
            0
        );
        let resolved = self
            .recs
            .iter()
            .filter(|r| matches!(r.hold, Some(HoldState::Settled { .. } | HoldState::Voided)))
            .count() as i64;
        assert_eq!(
            one(conn, "SELECT COUNT(*) FROM hold_resolutions", []),
            resolved
        );
        let refunded = self.recs.iter().filter(|r| r.refunded).count() as i64;
        assert_eq!(one(conn, "SELECT COUNT(*) FROM refunds", []), refunded);
        // No usage ends up owing negative overage.
        assert_eq!(
            one(
                conn,
                "SELECT COUNT(*) FROM (SELECT usage_id FROM overage GROUP BY usage_id
                                       HAVING SUM(amount) < 0)",
                []
            ),
            0
        );
        // The balance rebuilt from history equals the spendable lots.
        let now = spendable_now(conn, self.now);
        assert_eq!(
            spendable_rebuilt(conn, self.now),
            now,
            "balances at {}",
            self.now
        );
        self.past.insert(self.now, now);
    }

    /// Balances rebuilt for every past instant equal what was spendable then.
    fn check_past(&self) {
        for (&at, expect) in &self.past {
            assert_eq!(
                &spendable_rebuilt(self.conn(), at),
                expect,
                "balances rebuilt for {at}"
            );
        }
    }
}

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
        for step in &steps {
            h.run(step);
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

// ---------------------------------------------------------------------------
// Deterministic cases
// ---------------------------------------------------------------------------

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

fn print_req(key: &str, member: &str, amount: i64, at: i64) -> UsageRequest {
    UsageRequest {
        key: key.into(),
        member: Some(member.into()),
        origin: Origin::Print {
            printer: "hp-lobby".into(),
        },
        payable: Payable::Printing,
        amount,
        detail: "{}".into(),
        at,
    }
}

fn remaining_of(ledger: &Ledger, lots: &[i64]) -> Vec<i64> {
    lots.iter()
        .map(|&l| lot_remaining(ledger.conn(), l))
        .collect()
}

#[test]
fn plan_then_product_then_account_on_equal_expiry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ledger = open_ledger(dir.path());
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
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ledger = open_ledger(dir.path());
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
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ledger = open_ledger(dir.path());
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
        .debit(&UsageRequest {
            key: "d".into(),
            member: Some("m2".into()),
            origin: Origin::Session {
                resource: "desk-1".into(),
            },
            payable: Payable::Time {
                resource_type: "desk".into(),
            },
            amount: 10,
            detail: "{}".into(),
            at: T0 + 1,
        })
        .expect("debit");
    let before = remaining_of(&ledger, &[a, b, c]);
    assert_eq!(before, vec![20, 40, 50]);

    let req = UsageRequest {
        key: "h".into(),
        member: Some("m2".into()),
        origin: Origin::Session {
            resource: "room-1".into(),
        },
        payable: Payable::Time {
            resource_type: "room".into(),
        },
        amount: 70,
        detail: "{}".into(),
        at: T0 + 2,
    };
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
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ledger = open_ledger(dir.path());
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
    // The replayed debit still reports what it first charged.
    let again = ledger
        .debit(&print_req("d", "m1", 40, T0 + 500))
        .expect("replay");
    assert!(again.replayed);
    assert_eq!(
        (again.covered, again.overage, again.balance_after),
        (40, 0, 40)
    );
    schema::verify(ledger.conn()).expect("verify");
}

/// Known bug, see [`AVOID_KNOWN_BUG_SETTLE_LESS_ON_VOIDED_LOT`]. `give_back`
/// returns the unused part of a hold to a voided lot and voids it again at
/// once with a `void` history row that carries the hold's `usage_id`;
/// `totals` (and so `Charge::covered`) and `refund` count `void` rows of the
/// usage as credit it took, so that re-voided credit is counted as spent by
/// the member. Here 50 are reserved, the lot is voided, the hold settles for
/// 20: the member really paid 20, yet `covered` says 50, and the refund
/// regrants 50, creating 30 minutes of credit from nothing.
#[test]
fn settle_for_less_after_its_lot_was_voided() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ledger = open_ledger(dir.path());
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
