//! The rules of usage that decide money, as pure functions over plain
//! values: whether a hold is refused, what a settle gives back and in what
//! order, and where a refund returns credit. The operations read the rows,
//! ask these, and apply the answer.

use crate::money::Unit;
use crate::site::{OveragePolicy, PolicyKind};

/// What the overage policy says of a hold that credit does not cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldVerdict {
    Allow,
    Refuse,
    /// Allowed only if this month's overage stays within the cap: see
    /// [`over_cap`].
    WithinCap(i64),
}

/// A hold whose estimate leaves `uncovered` unpaid by credit: credits-only
/// refuses it, credits-then-invoice allows it up to a monthly cap.
pub fn hold_verdict(policy: OveragePolicy, unit: Unit, uncovered: i64) -> HoldVerdict {
    if uncovered == 0 {
        return HoldVerdict::Allow;
    }
    let cap = match unit {
        Unit::Cents => policy.cap_cents,
        Unit::Minutes => policy.cap_minutes,
    };
    match (policy.kind, cap) {
        (PolicyKind::CreditsOnly, _) => HoldVerdict::Refuse,
        (PolicyKind::CreditsThenInvoice, None) => HoldVerdict::Allow,
        (PolicyKind::CreditsThenInvoice, Some(cap)) => HoldVerdict::WithinCap(cap),
    }
}

/// Whether adding `uncovered` to the month's overage `so_far` passes `cap`
/// (a sum too large to represent passes it).
pub fn over_cap(cap: i64, so_far: i64, uncovered: i64) -> bool {
    so_far
        .checked_add(uncovered)
        .is_none_or(|total| total > cap)
}

/// Why a room session may not start, if it may not: with no time credit
/// left, a credits-only member cannot start one, and neither can a member
/// already at their monthly overage cap in minutes (under either policy).
pub fn session_refusal(
    policy: OveragePolicy,
    available: i64,
    overage_this_month: i64,
) -> Option<String> {
    if available > 0 {
        return None;
    }
    if policy.kind == PolicyKind::CreditsOnly {
        return Some("credits-only and no time credit valid for this room".into());
    }
    match policy.cap_minutes {
        Some(cap) if overage_this_month >= cap => Some(format!(
            "no time credit left and this month's overage is at the cap of {cap} minutes"
        )),
        _ => None,
    }
}

/// What a team member may still take from the pool this month: the limit
/// less what they drew (net of returns, holds included); `None` when the
/// team sets no limit. Never below 0, even when a lowered limit is
/// already passed.
pub fn pool_allowance(limit: Option<i64>, drawn: i64) -> Option<i64> {
    limit.map(|l| l.saturating_sub(drawn).max(0))
}

/// Who owes a team member's overage: the payer under merged billing.
pub fn billed_to<'a>(member: &'a str, payer: &'a str, merged: bool) -> &'a str {
    if merged {
        payer
    } else {
        member
    }
}

/// How a hold settles to the real cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettlePlan {
    /// It cost at least what was reserved: take `extra` more, like any usage.
    TakeMore { extra: i64 },
    /// It cost less: take `overage` off the overage account first, then give
    /// back to lots, `(lot, amount)`, the last taken first.
    GiveBack { overage: i64, lots: Vec<(i64, i64)> },
}

/// The plan for settling to `actual` a hold that reserved `lots` (`(lot,
/// amount)` in the order taken) and `held_overage`. A void is a settle to 0.
/// `None` if the amounts are too large to add up.
pub fn settle_plan(lots: &[(i64, i64)], held_overage: i64, actual: i64) -> Option<SettlePlan> {
    let held = lots
        .iter()
        .try_fold(held_overage, |sum, (_, n)| sum.checked_add(*n))?;
    if actual >= held {
        return Some(SettlePlan::TakeMore {
            extra: actual.checked_sub(held)?,
        });
    }
    let mut back = held.checked_sub(actual)?;
    // From here on each step takes at most what is left of `back`.
    let overage = back.min(held_overage);
    back -= overage;
    let mut give = Vec::new();
    for &(lot, took) in lots.iter().rev() {
        if back == 0 {
            break;
        }
        let amount = took.min(back);
        give.push((lot, amount));
        back -= amount;
    }
    Some(SettlePlan::GiveBack {
        overage,
        lots: give,
    })
}

/// What a refunded usage took from one lot, net of what it gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub lot: i64,
    pub net: i64,
    pub credit: String,
    /// The lot has expired or been voided since.
    pub dead: bool,
}

/// Where a refund returns credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundStep {
    /// Back to the lot it came from.
    Restore { lot: i64, amount: i64 },
    /// That lot can no longer be spent: a new lot of the same credit that
    /// never expires.
    Regrant {
        lot: i64,
        credit: String,
        amount: i64,
    },
}

/// A refund returns to each lot what the usage took from it, or grants it
/// anew where the lot is dead; lots it took nothing from net are skipped.
pub fn refund_plan(taken: Vec<Taken>) -> Vec<RefundStep> {
    taken
        .into_iter()
        .filter(|t| t.net > 0)
        .map(|t| match t.dead {
            false => RefundStep::Restore {
                lot: t.lot,
                amount: t.net,
            },
            true => RefundStep::Regrant {
                lot: t.lot,
                credit: t.credit,
                amount: t.net,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONLY: OveragePolicy = OveragePolicy::CREDITS_ONLY;
    const INVOICE: OveragePolicy = OveragePolicy::INVOICE_UNCAPPED;

    #[test]
    fn holds_are_refused_by_credits_only_and_capped_invoice() {
        assert_eq!(hold_verdict(ONLY, Unit::Cents, 0), HoldVerdict::Allow);
        assert_eq!(hold_verdict(ONLY, Unit::Cents, 1), HoldVerdict::Refuse);
        assert_eq!(hold_verdict(INVOICE, Unit::Cents, 500), HoldVerdict::Allow);
        let capped = OveragePolicy {
            cap_cents: Some(300),
            ..INVOICE
        };
        assert_eq!(
            hold_verdict(capped, Unit::Cents, 50),
            HoldVerdict::WithinCap(300)
        );
        // The cap on cents does not limit minutes.
        assert_eq!(hold_verdict(capped, Unit::Minutes, 50), HoldVerdict::Allow);
        assert!(!over_cap(300, 250, 50));
        assert!(over_cap(300, 251, 50));
        assert!(over_cap(300, i64::MAX, 1));
    }

    #[test]
    fn the_pool_allows_the_limit_less_this_months_draws() {
        assert_eq!(pool_allowance(None, 5_000), None);
        assert_eq!(pool_allowance(Some(1000), 300), Some(700));
        assert_eq!(pool_allowance(Some(1000), 1000), Some(0));
        // A limit lowered below what was drawn allows nothing, never less.
        assert_eq!(pool_allowance(Some(100), 300), Some(0));
        assert_eq!(billed_to("bob", "acme-boss", true), "acme-boss");
        assert_eq!(billed_to("bob", "acme-boss", false), "bob");
    }

    #[test]
    fn a_session_needs_credit_or_room_under_the_cap() {
        let capped = OveragePolicy {
            cap_minutes: Some(60),
            ..INVOICE
        };
        assert_eq!(session_refusal(ONLY, 15, 0), None);
        assert!(session_refusal(ONLY, 0, 0).is_some());
        assert_eq!(session_refusal(INVOICE, 0, 10_000), None);
        assert_eq!(session_refusal(capped, 0, 59), None);
        assert_eq!(
            session_refusal(capped, 0, 60).as_deref(),
            Some("no time credit left and this month's overage is at the cap of 60 minutes")
        );
        assert_eq!(session_refusal(capped, 30, 600), None);
    }

    #[test]
    fn a_settle_gives_back_overage_first_then_the_last_lot_taken() {
        let lots = [(1, 30), (2, 20)];
        assert_eq!(
            settle_plan(&lots, 10, 75),
            Some(SettlePlan::TakeMore { extra: 15 })
        );
        assert_eq!(
            settle_plan(&lots, 10, 60),
            Some(SettlePlan::TakeMore { extra: 0 })
        );
        assert_eq!(
            settle_plan(&lots, 10, 55),
            Some(SettlePlan::GiveBack {
                overage: 5,
                lots: vec![]
            })
        );
        assert_eq!(
            settle_plan(&lots, 10, 25),
            Some(SettlePlan::GiveBack {
                overage: 10,
                lots: vec![(2, 20), (1, 5)]
            })
        );
        // A void is a settle to zero: everything goes back.
        assert_eq!(
            settle_plan(&lots, 10, 0),
            Some(SettlePlan::GiveBack {
                overage: 10,
                lots: vec![(2, 20), (1, 30)]
            })
        );
    }

    #[test]
    fn a_settle_of_amounts_too_large_to_add_up_is_no_plan() {
        assert_eq!(settle_plan(&[(1, i64::MAX)], 1, 0), None);
        assert_eq!(settle_plan(&[(1, i64::MAX), (2, 1)], 0, 5), None);
        assert_eq!(settle_plan(&[(1, 5)], 0, -(i64::MAX)), None);
    }

    #[test]
    fn a_refund_restores_live_lots_and_regrants_dead_ones() {
        let taken = vec![
            Taken {
                lot: 1,
                net: 30,
                credit: "printing".into(),
                dead: false,
            },
            Taken {
                lot: 2,
                net: 0,
                credit: "printing".into(),
                dead: false,
            },
            Taken {
                lot: 3,
                net: 12,
                credit: "room-hours".into(),
                dead: true,
            },
        ];
        assert_eq!(
            refund_plan(taken),
            vec![
                RefundStep::Restore { lot: 1, amount: 30 },
                RefundStep::Regrant {
                    lot: 3,
                    credit: "room-hours".into(),
                    amount: 12
                },
            ]
        );
    }
}
