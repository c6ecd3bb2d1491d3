//! Whether each usage agrees with the history and overage rows it moved:
//! the totals read in one pass (SQL), judged by a pure rule.

use crate::ledger::Result;
use rusqlite::Connection;

/// A usage as recorded, beside the sums of its rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageTotals {
    pub id: i64,
    pub key: String,
    pub attributed: bool,
    pub is_hold: bool,
    pub amount: i64,
    /// The first result, stored with the usage.
    pub covered: i64,
    pub overage: i64,
    /// `settled` or `voided` with the settled amount, for a resolved hold.
    pub resolution: Option<(String, i64)>,
    pub refunded: bool,
    /// Taken from lots by the debit or hold rows.
    pub first_taken: i64,
    /// Taken from lots by its debit, hold, settle and void rows.
    pub net_taken: i64,
    /// Given back to lots by its refund rows.
    pub refund_restored: i64,
    /// Overage of the debit or hold rows, of all but refunds, of refunds.
    pub first_overage: i64,
    pub net_overage: i64,
    pub refund_overage: i64,
}

/// What is wrong with a usage, if anything.
pub fn disagreement(u: &UsageTotals) -> Option<String> {
    if !u.attributed {
        let sums = [
            u.covered,
            u.overage,
            u.net_taken,
            u.net_overage,
            u.refund_restored,
            u.refund_overage,
        ];
        return (sums != [0; 6])
            .then(|| "unattributed, yet it has credit or overage rows".to_string());
    }
    if u.first_taken != u.covered {
        return Some(format!(
            "covered {} but its history takes {}",
            u.covered, u.first_taken
        ));
    }
    if u.first_overage != u.overage {
        return Some(format!(
            "overage {} but its overage rows sum to {}",
            u.overage, u.first_overage
        ));
    }
    if u.covered.checked_add(u.overage) != Some(u.amount) {
        return Some(format!(
            "amount {} is not covered {} + overage {}",
            u.amount, u.covered, u.overage
        ));
    }
    let Some(net) = u.net_taken.checked_add(u.net_overage) else {
        return Some("its rows sum past the integer bound".into());
    };
    let expected = match (&u.resolution, u.is_hold) {
        (None, _) => u.amount,
        (Some((outcome, actual)), true) if outcome == "settled" => *actual,
        (Some((outcome, _)), true) if outcome == "voided" => 0,
        (Some((outcome, _)), _) => return Some(format!("resolved `{outcome}`, yet not a hold")),
    };
    if net != expected {
        return Some(format!(
            "its rows charge {net} in all but it was charged {expected}"
        ));
    }
    refund_disagreement(u)
}

fn refund_disagreement(u: &UsageTotals) -> Option<String> {
    if !u.refunded {
        return (u.refund_restored != 0 || u.refund_overage != 0)
            .then(|| "not refunded, yet it has refund rows".to_string());
    }
    if u.refund_overage.checked_add(u.net_overage) != Some(0) {
        return Some(format!(
            "refunded, but its overage {} is reversed by {}",
            u.net_overage, u.refund_overage
        ));
    }
    // What no longer fits its lot is granted anew, so at most all comes back.
    (!(0..=u.net_taken).contains(&u.refund_restored)).then(|| {
        format!(
            "refunded {} to lots, but it took {}",
            u.refund_restored, u.net_taken
        )
    })
}

/// Every usage with the sums of its rows, in id order.
pub fn totals(conn: &Connection) -> Result<Vec<UsageTotals>> {
    let mut stmt = conn.prepare(
        "SELECT u.id, u.key, u.member_id IS NOT NULL, u.is_hold, u.amount, u.covered, u.overage,
                r.outcome, r.actual, EXISTS (SELECT 1 FROM refunds f WHERE f.usage_id = u.id),
                COALESCE(h.first, 0), COALESCE(h.net, 0), COALESCE(h.refund, 0),
                COALESCE(o.first, 0), COALESCE(o.net, 0), COALESCE(o.refund, 0)
         FROM usages u
         LEFT JOIN hold_resolutions r ON r.usage_id = u.id
         LEFT JOIN (SELECT usage_id,
                       -SUM(CASE WHEN kind IN ('debit', 'hold') THEN delta ELSE 0 END) AS first,
                       -SUM(CASE WHEN kind IN ('debit', 'hold', 'settle', 'void') THEN delta ELSE 0 END) AS net,
                       SUM(CASE WHEN kind = 'refund' THEN delta ELSE 0 END) AS refund
                    FROM history WHERE usage_id IS NOT NULL GROUP BY usage_id) h
                ON h.usage_id = u.id
         LEFT JOIN (SELECT usage_id,
                       SUM(CASE WHEN kind IN ('debit', 'hold') THEN amount ELSE 0 END) AS first,
                       SUM(CASE WHEN kind <> 'refund' THEN amount ELSE 0 END) AS net,
                       SUM(CASE WHEN kind = 'refund' THEN amount ELSE 0 END) AS refund
                    FROM overage GROUP BY usage_id) o
                ON o.usage_id = u.id
         ORDER BY u.id",
    )?;
    let rows = stmt.query_map([], |r| {
        let outcome: Option<String> = r.get(7)?;
        let actual: Option<i64> = r.get(8)?;
        Ok(UsageTotals {
            id: r.get(0)?,
            key: r.get(1)?,
            attributed: r.get(2)?,
            is_hold: r.get(3)?,
            amount: r.get(4)?,
            covered: r.get(5)?,
            overage: r.get(6)?,
            resolution: outcome.map(|o| (o, actual.unwrap_or(0))),
            refunded: r.get(9)?,
            first_taken: r.get(10)?,
            net_taken: r.get(11)?,
            refund_restored: r.get(12)?,
            first_overage: r.get(13)?,
            net_overage: r.get(14)?,
            refund_overage: r.get(15)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debit(amount: i64, covered: i64) -> UsageTotals {
        let overage = amount - covered;
        UsageTotals {
            id: 1,
            key: "k".into(),
            attributed: true,
            amount,
            covered,
            overage,
            first_taken: covered,
            net_taken: covered,
            first_overage: overage,
            net_overage: overage,
            ..UsageTotals::default()
        }
    }

    #[test]
    fn a_debit_agrees_with_its_rows_and_not_with_edited_ones() {
        assert_eq!(disagreement(&debit(30, 20)), None);
        let mut edited = debit(30, 20);
        edited.covered = 10;
        assert!(disagreement(&edited).unwrap().contains("covered 10"));
        let mut edited = debit(30, 20);
        edited.amount = 40;
        assert!(disagreement(&edited).unwrap().contains("amount 40"));
        let mut edited = debit(30, 20);
        edited.first_overage = 0;
        assert!(disagreement(&edited).unwrap().contains("overage 10"));
    }

    #[test]
    fn holds_agree_with_what_they_settled_to() {
        let mut hold = debit(30, 30);
        hold.is_hold = true;
        assert_eq!(disagreement(&hold), None, "open");
        hold.resolution = Some(("settled".into(), 25));
        hold.net_taken = 25;
        assert_eq!(disagreement(&hold), None, "settled");
        hold.resolution = Some(("settled".into(), 26));
        assert!(disagreement(&hold).is_some());
        hold.resolution = Some(("voided".into(), 0));
        hold.net_taken = 0;
        assert_eq!(disagreement(&hold), None, "voided");
    }

    #[test]
    fn refunds_reverse_overage_and_give_back_at_most_what_was_taken() {
        let mut u = debit(30, 20);
        u.refunded = true;
        u.refund_overage = -10;
        u.refund_restored = 20;
        assert_eq!(disagreement(&u), None);
        u.refund_restored = 21;
        assert!(disagreement(&u).is_some());
        let mut u = debit(30, 20);
        u.refund_restored = 5;
        assert!(disagreement(&u).unwrap().contains("not refunded"));
    }

    #[test]
    fn unattributed_usage_has_no_rows() {
        let u = UsageTotals {
            amount: 40,
            ..UsageTotals::default()
        };
        assert_eq!(disagreement(&u), None);
        let u = UsageTotals {
            amount: 40,
            net_overage: 1,
            ..UsageTotals::default()
        };
        assert!(disagreement(&u).is_some());
    }
}
