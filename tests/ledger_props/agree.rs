//! 7. `tallyd balance` and charging agree: at the harness's instant and at
//!    instants around it (a second before: a clock that stepped back; 40 days
//!    ahead: one that jumped forward, past expiries), the balance of
//!    each member's printing credit, and of each time credit whose resource
//!    type no other credit pays for, is exactly what a debit of that whole
//!    amount covers, with no overage. The debit runs in a transaction that is
//!    rolled back, so the run goes on unchanged. Every member's balances,
//!    read together, are each one's own.

use crate::model::Harness;
use crate::setup::MEMBERS;
use tallyd::ledger::usage::{self, Origin, Payable, UsageRequest};
use tallyd::ledger::{query, LedgerError, Site};

/// (credit id in `balance`, the payable only it pays for).
fn probes() -> [(&'static str, Payable); 3] {
    let time = |rt: &str| Payable::Time {
        resource_type: rt.to_string(),
    };
    [
        ("printing", Payable::Printing),
        ("coworking", time("desk")),
        ("studio", time("studio")),
    ]
}

impl Harness {
    /// Checks one member per step, in turn, to keep the run short.
    pub(crate) fn check_balance_agrees(&mut self, step: usize) {
        let member = MEMBERS[step % MEMBERS.len()];
        // Every member's balances (read together) are each one's own.
        let conn = self.ledger.conn();
        let all = query::balances_now(conn, None, self.now).expect("balances");
        for one in MEMBERS {
            let alone = query::balances_now(conn, Some(one), self.now).expect("balance");
            let among = all.iter().find(|b| b.member == one).expect("listed");
            assert_eq!(among, &alone[0], "{one}");
        }
        for at in [self.now, self.now - 1, self.now + 86_400 * 40] {
            for (credit, payable) in probes() {
                self.agree_at(member, credit, payable, at);
            }
        }
    }

    fn agree_at(&mut self, member: &str, credit: &str, payable: Payable, at: i64) {
        let conn = self.ledger.conn();
        let b = query::balances_now(conn, Some(member), at).expect("balance");
        let shown = match credit {
            "printing" => b[0].printing_cents,
            c => b[0].time_minutes.get(c).copied().unwrap_or(0),
        };
        let req = UsageRequest {
            key: format!("agree:{member}:{credit}:{at}"),
            member: Some(member.to_string()),
            origin: Origin::Manual,
            payable,
            amount: shown,
            detail: String::new(),
            at,
        };
        // Debit the whole balance, look, and roll back.
        let seen = self.ledger.write(|c, site: &Site| {
            let charge = usage::debit(c, site, &req)?;
            Err::<(), _>(LedgerError::AlreadyRefunded(format!(
                "{}/{}",
                charge.covered, charge.overage
            )))
        });
        let Err(LedgerError::AlreadyRefunded(seen)) = seen else {
            panic!("debit of the balance failed: {seen:?}");
        };
        assert_eq!(
            seen,
            format!("{shown}/0"),
            "{member} {credit} at {at}: balance {shown}, a debit of it covered/overage {seen}"
        );
    }
}
