//! Consumption order and allocation: which lots pay for a usage, and how much
//! each gives. Pure functions over plain values, so the order `design.md`
//! prescribes is tested without a database.

use super::Ts;
use std::cmp::Ordering;

/// Where a lot came from; also the tie-break rank in consumption order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    Plan,
    Product,
    Account,
    /// A local adjustment made with `tallyd grant` (or a refund's new lot).
    Adjustment,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Plan => "plan",
            SourceKind::Product => "product",
            SourceKind::Account => "account",
            SourceKind::Adjustment => "adjustment",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "plan" => Some(SourceKind::Plan),
            "product" => Some(SourceKind::Product),
            "account" => Some(SourceKind::Account),
            "adjustment" => Some(SourceKind::Adjustment),
            _ => None,
        }
    }
}

/// A lot that could pay for a usage, reduced to what ordering needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub lot: i64,
    pub remaining: i64,
    pub expires_at: Option<Ts>,
    pub source: SourceKind,
    pub valid_from: Ts,
}

/// The order lots are consumed in: earliest expiry first; on a tie plan, then
/// product, then account grant (then local adjustment); then oldest; lots that
/// never expire last (in the same tie-break order among themselves).
pub fn consumption_order(a: &Candidate, b: &Candidate) -> Ordering {
    let expiry = match (a.expires_at, b.expires_at) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    expiry
        .then(a.source.cmp(&b.source))
        .then(a.valid_from.cmp(&b.valid_from))
        .then(a.lot.cmp(&b.lot))
}

/// How a usage was paid: amounts taken from lots, in order, and what no lot
/// covered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Allocation {
    pub takes: Vec<(i64, i64)>,
    pub uncovered: i64,
    /// The sum of `takes`, counted down from the amount (so never summed,
    /// never overflowing).
    covered: i64,
    /// `takes[pool_from..]` came from a team's pool.
    pool_from: usize,
    /// What the pool paid (part of `covered`).
    pooled: i64,
}

impl Allocation {
    /// What the lots paid: the amount allocated less what they left uncovered.
    pub fn covered(&self) -> i64 {
        self.covered
    }

    /// The takes from a team's pool, `(lot, amount)`.
    pub fn pool_takes(&self) -> &[(i64, i64)] {
        self.takes.get(self.pool_from..).unwrap_or(&[])
    }

    /// What a team's pool paid.
    pub fn pooled(&self) -> i64 {
        self.pooled
    }
}

/// Takes `amount` from `candidates` in consumption order. Never takes more than
/// a lot has; what is left over is `uncovered`.
pub fn allocate(mut candidates: Vec<Candidate>, amount: i64) -> Allocation {
    candidates.sort_by(consumption_order);
    let amount = amount.max(0);
    let mut left = amount;
    let mut takes = Vec::new();
    for c in candidates {
        if left == 0 {
            break;
        }
        // At most what is left: `left` only falls, and stays from 0 to
        // `amount`, so neither subtraction here can overflow.
        let take = c.remaining.min(left);
        if take > 0 {
            takes.push((c.lot, take));
            left -= take;
        }
    }
    let pool_from = takes.len();
    Allocation {
        takes,
        uncovered: left,
        covered: amount - left,
        pool_from,
        pooled: 0,
    }
}

/// Takes `amount` from a team member's `own` lots in consumption order,
/// then what is left, up to `allowance` (the member's pool limit left this
/// month; `None`: no limit), from the pool's tiers in turn (the payer's
/// lots, then the other members' plan lots), each in consumption order.
pub fn allocate_pooled(
    own: Vec<Candidate>,
    pool: Vec<Vec<Candidate>>,
    allowance: Option<i64>,
    amount: i64,
) -> Allocation {
    let mut paid = allocate(own, amount);
    let want = match allowance {
        Some(a) => paid.uncovered.min(a.max(0)),
        None => paid.uncovered,
    };
    // `rest` stays from 0 to `want`, which is at most `uncovered`.
    let mut rest = want;
    for tier in pool {
        if rest == 0 {
            break;
        }
        let part = allocate(tier, rest);
        paid.takes.extend(part.takes);
        rest = part.uncovered;
    }
    let pooled = want - rest;
    paid.uncovered -= pooled;
    paid.covered += pooled;
    paid.pooled = pooled;
    paid
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lot(
        lot: i64,
        remaining: i64,
        expires_at: Option<Ts>,
        source: SourceKind,
        from: Ts,
    ) -> Candidate {
        Candidate {
            lot,
            remaining,
            expires_at,
            source,
            valid_from: from,
        }
    }

    #[test]
    fn earliest_expiry_is_consumed_first() {
        let lots = vec![
            lot(1, 100, Some(300), SourceKind::Plan, 0),
            lot(2, 100, Some(200), SourceKind::Account, 0),
        ];
        assert_eq!(allocate(lots, 150).takes, vec![(2, 100), (1, 50)]);
    }

    #[test]
    fn on_equal_expiry_plan_then_product_then_account() {
        let lots = vec![
            lot(1, 10, Some(500), SourceKind::Account, 0),
            lot(2, 10, Some(500), SourceKind::Product, 0),
            lot(3, 10, Some(500), SourceKind::Plan, 0),
            lot(4, 10, Some(500), SourceKind::Adjustment, 0),
        ];
        assert_eq!(
            allocate(lots, 40).takes,
            vec![(3, 10), (2, 10), (1, 10), (4, 10)]
        );
    }

    #[test]
    fn then_oldest_first() {
        let lots = vec![
            lot(1, 10, Some(500), SourceKind::Plan, 50),
            lot(2, 10, Some(500), SourceKind::Plan, 10),
        ];
        assert_eq!(allocate(lots, 15).takes, vec![(2, 10), (1, 5)]);
    }

    #[test]
    fn never_expiring_lots_last() {
        let lots = vec![
            lot(1, 10, None, SourceKind::Plan, 0),
            lot(2, 10, Some(10_000), SourceKind::Account, 99),
        ];
        assert_eq!(allocate(lots, 15).takes, vec![(2, 10), (1, 5)]);
    }

    #[test]
    fn uncovered_is_what_no_lot_pays() {
        let lots = vec![lot(1, 10, None, SourceKind::Plan, 0)];
        let a = allocate(lots, 25);
        assert_eq!(a.takes, vec![(1, 10)]);
        assert_eq!(a.uncovered, 15);
        assert_eq!(a.covered(), 10);
    }

    #[test]
    fn a_pool_pays_after_own_lots_tier_by_tier() {
        let own = vec![lot(1, 10, None, SourceKind::Plan, 0)];
        let payer = vec![
            lot(2, 10, None, SourceKind::Account, 0),
            lot(3, 10, Some(50), SourceKind::Plan, 0),
        ];
        let others = vec![lot(4, 100, Some(10), SourceKind::Plan, 0)];
        let a = allocate_pooled(own.clone(), vec![payer.clone(), others.clone()], None, 35);
        // Own first; then the payer's in consumption order; then others,
        // even though lot 4 expires before every other lot.
        assert_eq!(a.takes, vec![(1, 10), (3, 10), (2, 10), (4, 5)]);
        assert_eq!(a.pool_takes(), &[(3, 10), (2, 10), (4, 5)]);
        assert_eq!((a.covered(), a.pooled(), a.uncovered), (35, 25, 0));
        // A limit of 12 left this month: the pool pays 12, the rest is uncovered.
        let a = allocate_pooled(own, vec![payer, others], Some(12), 35);
        assert_eq!(a.takes, vec![(1, 10), (3, 10), (2, 2)]);
        assert_eq!((a.covered(), a.pooled(), a.uncovered), (22, 12, 13));
    }

    #[test]
    fn a_spent_limit_or_no_pool_is_a_personal_allocation() {
        let own = vec![lot(1, 10, None, SourceKind::Plan, 0)];
        let pool = vec![vec![lot(2, 10, None, SourceKind::Plan, 0)]];
        assert_eq!(
            allocate_pooled(own.clone(), pool, Some(-3), 15),
            allocate(own.clone(), 15)
        );
        assert_eq!(
            allocate_pooled(own.clone(), vec![], None, 15),
            allocate(own, 15)
        );
    }

    #[test]
    fn empty_lots_and_zero_amounts_take_nothing() {
        let lots = vec![
            lot(1, 0, None, SourceKind::Plan, 0),
            lot(2, 5, None, SourceKind::Plan, 1),
        ];
        assert_eq!(allocate(lots.clone(), 0), Allocation::default());
        assert_eq!(allocate(lots, 3).takes, vec![(2, 3)]);
    }
}
