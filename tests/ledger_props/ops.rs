//! The operations: what they are, how proptest generates them, and how the
//! harness dispatches one (the execution is in `spend.rs` and `resolve.rs`).

use proptest::prelude::*;
use proptest::sample::Index;

use crate::model::Harness;
use crate::setup::{CREDITS, MEMBERS, PAYABLES, SOURCES};

#[derive(Debug, Clone)]
pub(crate) enum SettleHow {
    /// Settle for `quarters`/4 of the estimate (0..=3, so strictly less unless
    /// the estimate is 0).
    Less(i64),
    Same,
    More(i64),
}

#[derive(Debug, Clone)]
pub(crate) enum Again {
    /// Settle with the amount the hold resolved with (0 for a voided hold).
    SettleSame,
    /// Settle with a different amount.
    SettleOther(i64),
    Void,
}

#[derive(Debug, Clone)]
pub(crate) enum Op {
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
pub(crate) struct Step {
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
pub(crate) fn steps() -> impl Strategy<Value = Vec<Step>> {
    let opening = proptest::collection::vec(grant_op().prop_map(|op| Step { dt: 0, op }), 4..16);
    let ops =
        proptest::collection::vec((0..60i64, op()).prop_map(|(dt, op)| Step { dt, op }), 1..40);
    (opening, ops).prop_map(|(mut opening, ops)| {
        opening.extend(ops);
        opening
    })
}

impl Harness {
    /// Moves the clock, runs one operation, then checks every invariant.
    pub(crate) fn run(&mut self, step: &Step) {
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
}
