//! Executing the operations that write usage: grants, debits, holds, replays,
//! key conflicts, and calls aimed at the wrong target.

use std::fmt::Debug;

use proptest::sample::Index;
use rusqlite::params;
use tallyd::ledger::lots::{self, GrantRequest};
use tallyd::ledger::{HoldOutcome, LedgerError, Origin, Payable, PolicyKind, UsageRequest};

use crate::model::{pick, Harness, Rec};
use crate::setup::{
    origin_of, payable, unit_name, unit_of, Policy, CAP_CENTS, CAP_MINUTES, CREDITS, MEMBERS,
    MONTH_END, MONTH_START, POLICIES, SOURCES,
};
use crate::sql::{live_lots, one, snapshot};

/// Asserts that `r` failed with an error `expected` accepts.
#[track_caller]
fn assert_err<T: Debug>(r: Result<T, LedgerError>, expected: impl Fn(&LedgerError) -> bool) {
    match r {
        Err(e) => assert!(expected(&e), "{e:?}"),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

impl Harness {
    pub(crate) fn grant(
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
        self.acc[member][unit].granted += amount;
        self.grants.push((g, got.lot));
    }

    pub(crate) fn grant_again(&mut self, index: &Index) {
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
        let origin = if manual {
            Origin::Manual
        } else {
            origin_of(&payable)
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

    pub(crate) fn debit(&mut self, member: Option<usize>, p: usize, amount: i64, manual: bool) {
        let req = self.usage_request("debit", member, p, amount, manual);
        let lots_before = match &req.member {
            Some(m) => live_lots(self.conn(), m, &req.payable, self.now),
            None => Vec::new(),
        };
        let before = snapshot(self.conn());
        let c = self.ledger.debit(&req).expect("debit");
        self.check_fresh_charge(&req, &c, lots_before, "debit");
        if req.payable == payable(4) {
            assert_eq!(c.covered, 0, "no time credit lists phonebooth");
        }
        if req.member.is_some() {
            let acc = self.acc_of(&req);
            acc.used += c.covered;
            acc.overage += c.overage;
        } else {
            let after = snapshot(self.conn());
            assert_eq!(after.remaining, before.remaining);
            assert_eq!(after.history, before.history);
            assert_eq!(after.overage_rows, before.overage_rows);
        }
        self.recs.push(Rec::new(req, c, false));
    }

    pub(crate) fn hold(&mut self, member: usize, p: usize, amount: i64) {
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
        self.check_fresh_charge(&req, &c, lots_before, "hold");
        let acc = self.acc_of(&req);
        acc.held += c.covered;
        acc.overage += c.overage;
        self.recs.push(Rec::new(req, c, true));
    }

    pub(crate) fn replay(&mut self, index: &Index) {
        let Some((_, rec)) = self.pick_rec(index, |_| true) else {
            return;
        };
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
        // Whatever happened since (settle, void, refund), a replay returns
        // the first result exactly as it was first answered.
        assert_eq!(
            (c.covered, c.overage, c.balance_after),
            (
                rec.first.covered,
                rec.first.overage,
                rec.first.balance_after
            ),
            "{}: a replay returns the first result",
            req.key
        );
    }

    pub(crate) fn conflict(&mut self, index: &Index, bump: i64, swap_kind: bool) {
        let Some((_, rec)) = self.pick_rec(index, |_| true) else {
            return;
        };
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

    pub(crate) fn wrong_target(&mut self, index: &Index) {
        let before = snapshot(self.conn());
        match pick(&self.recs, index, |r| !r.is_hold) {
            Some(i) => {
                let key = self.recs[i].req.key.clone();
                let not_a_hold =
                    |e: &LedgerError| matches!(e, LedgerError::NotAHold(k) if *k == key);
                assert_err(self.ledger.settle(&key, 1, "", self.now), not_a_hold);
                assert_err(self.ledger.void(&key, "", self.now), not_a_hold);
            }
            None => {
                let unknown = |e: &LedgerError| matches!(e, LedgerError::UnknownUsage(_));
                assert_err(self.ledger.settle("no-such-key", 1, "", self.now), unknown);
                assert_err(self.ledger.refund("no-such-key", "", self.now), unknown);
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
        let unknown_ghost =
            |e: &LedgerError| matches!(e, LedgerError::UnknownMember(m) if m == "ghost");
        assert_err(self.ledger.debit(&ghost), unknown_ghost);
        assert_err(self.ledger.hold(&ghost), unknown_ghost);
        let nobody = UsageRequest {
            member: None,
            ..ghost.clone()
        };
        assert_err(self.ledger.hold(&nobody), |e| {
            matches!(e, LedgerError::UnknownMember(_))
        });
        let negative = UsageRequest {
            member: Some("m0".into()),
            amount: -1,
            ..ghost
        };
        assert_err(self.ledger.debit(&negative), |e| {
            matches!(e, LedgerError::InvalidAmount { amount: -1, .. })
        });
        assert_eq!(snapshot(self.conn()), before);
    }
}
