//! Executing the operations that resolve, undo or age what was written:
//! settles, voids, re-resolutions, refunds, expiry sweeps and lot voids.

use std::collections::BTreeMap;

use proptest::sample::Index;
use tallyd::ledger::lots;
use tallyd::ledger::usage::Refund;
use tallyd::ledger::LedgerError;

use crate::model::{Harness, HoldState};
use crate::ops::{Again, SettleHow};
use crate::sql::{
    available, expected_takes, gives_of, hold_takes_in_order, live_lots, lot_ids, lot_remaining,
    net_taken, one, snapshot, takes_of,
};

impl Harness {
    pub(crate) fn settle(&mut self, index: &Index, how: &SettleHow) {
        let Some((i, rec)) = self.pick_rec(index, |r| matches!(r.hold, Some(HoldState::Open)))
        else {
            return;
        };
        let member = rec.req.member.clone().expect("holds have members");
        let estimate = rec.req.amount;
        assert_eq!(rec.first.covered + rec.first.overage, estimate);
        let actual = match how {
            SettleHow::Less(q) => estimate * q / 4,
            SettleHow::Same => estimate,
            SettleHow::More(extra) => estimate + extra,
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
        let acc = self.acc_of(&rec.req);
        acc.held -= rec.first.covered;
        acc.used += c.covered;
        acc.overage += c.overage - rec.first.overage;
        self.recs[i].hold = Some(HoldState::Settled { actual, charge: c });
    }

    pub(crate) fn void(&mut self, index: &Index) {
        let Some((i, rec)) = self.pick_rec(index, |r| matches!(r.hold, Some(HoldState::Open)))
        else {
            return;
        };
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
        let acc = self.acc_of(&rec.req);
        acc.held -= rec.first.covered;
        acc.overage -= rec.first.overage;
        self.recs[i].hold = Some(HoldState::Voided);
    }

    pub(crate) fn reresolve(&mut self, index: &Index, again: &Again) {
        let Some((_, rec)) = self.pick_rec(index, |r| {
            matches!(r.hold, Some(HoldState::Settled { .. } | HoldState::Voided))
        }) else {
            return;
        };
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

    pub(crate) fn expire(&mut self) {
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

    pub(crate) fn refund(&mut self, index: &Index) {
        let Some((i, rec)) = self.pick_rec(index, |_| true) else {
            return;
        };
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
        let expect_error = |r: &Result<Refund, LedgerError>, want: &str| {
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
        } else if rec.req.member.is_some() {
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
                let acc = self.acc_of(&rec.req);
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

    pub(crate) fn void_lot(&mut self, index: &Index, prefer_held: bool) {
        let mut ids = if prefer_held {
            lot_ids(
                self.conn(),
                "SELECT DISTINCT h.lot_id FROM history h JOIN usages u ON u.id = h.usage_id
                 WHERE h.kind = 'hold' AND NOT EXISTS
                     (SELECT 1 FROM hold_resolutions r WHERE r.usage_id = u.id)
                 ORDER BY h.lot_id",
            )
        } else {
            Vec::new()
        };
        if ids.is_empty() {
            ids = lot_ids(self.conn(), "SELECT id FROM lots ORDER BY id");
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
}
