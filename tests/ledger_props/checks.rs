//! The invariant checks, over raw SQL on the ledger and against the model.

use rusqlite::params;
use tallyd::ledger::integrity::{self, Chain};
use tallyd::ledger::query::months;
use tallyd::ledger::usage::agree;
use tallyd::ledger::{audit, schema, Charge, UsageRequest};

use crate::model::{Harness, HoldState};
use crate::setup::{unit_name, MEMBERS, RETURNED_TO_VOIDED};
use crate::sql::{
    available, expected_takes, one, spendable_now, spendable_rebuilt, takes_of, LiveLot,
};

impl Harness {
    /// Checks a fresh (not replayed) debit or hold: `covered + overage ==
    /// amount`, balance afterwards, and consumption order in its history rows
    /// of `kind`.
    pub(crate) fn check_fresh_charge(
        &self,
        req: &UsageRequest,
        c: &Charge,
        lots_before: Vec<LiveLot>,
        kind: &str,
    ) {
        assert!(!c.replayed, "{}: a new key is not a replay", req.key);
        match &req.member {
            None => assert_eq!((c.covered, c.overage), (0, 0), "unattributed: no lots"),
            Some(member) => {
                let avail_before: i64 = lots_before.iter().map(|l| l.remaining).sum();
                assert_eq!(c.covered, req.amount.min(avail_before), "{}", req.key);
                assert_eq!(c.covered + c.overage, req.amount, "{}", req.key);
                assert_eq!(
                    c.balance_after,
                    available(self.conn(), member, &req.payable, self.now)
                );
                assert_eq!(c.balance_after, avail_before - c.covered);
            }
        }
        assert_eq!(
            takes_of(self.conn(), c.usage_id, kind),
            expected_takes(lots_before, req.amount),
            "{}: consumption order",
            req.key
        );
    }

    /// Every invariant after an operation (numbered as in the crate doc).
    pub(crate) fn check(&mut self) {
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
        // 2b. Every usage agrees with its rows, and every hash chain holds.
        for totals in agree::totals(conn).expect("usage totals") {
            assert_eq!(agree::disagreement(&totals), None, "{totals:?}");
        }
        for chain in Chain::ALL {
            integrity::verify_whole(conn, chain).expect("the chain holds");
        }
        // 2c. What is kept as totals (overage owed, the monthly roll-up)
        // equals its rows, and a report's period that is not whole UTC
        // months reads the same from them as from the rows.
        for v in audit::derived(conn) {
            assert!(v.ok, "{v:?}");
        }
        let (from, to) = (self.now - 40 * 86_400 + 3_600, self.now + 1);
        assert_eq!(
            months::totals(conn, from, to).expect("totals"),
            months::scanned(conn, from, to).expect("scanned")
        );
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
    pub(crate) fn check_past(&self) {
        for (&at, expect) in &self.past {
            assert_eq!(
                &spendable_rebuilt(self.conn(), at),
                expect,
                "balances rebuilt for {at}"
            );
        }
    }
}
