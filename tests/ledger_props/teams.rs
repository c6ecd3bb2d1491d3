//! Teams: random sequences of grants, debits, holds, settles, voids,
//! refunds, expiries, month changes and membership changes across two teams
//! (limits and `combine` drawn at random) on a fresh ledger. After every
//! step, with raw SQL and a small model of what the API reported:
//!
//! 1. no lot leaves `0..=granted`, every lot equals its history, and every
//!    pool draw agrees with the history it stands for (`check-ledger`);
//! 2. no member's net draws on their pool in a calendar month pass the
//!    team's monthly limit (or go below 0);
//! 3. conservation, per unit: every unit granted is remaining, used or held
//!    (as the API reported it), expired or voided;
//! 4. a pool draw is made only once the member's own credit for it is
//!    spent, from a lot of a shared credit owned by the payer or (with
//!    `combine`) a member's plan lot;
//! 5. a void or refund returns every unit to the exact lot it came from
//!    (or, for a dead lot, into a regrant to that lot's owner).
//!
//! `pool_is_never_spent_twice_under_the_writer` runs concurrent debits of
//! two members on one pool through the group-committing writer.

use proptest::prelude::*;
use rusqlite::{params, Connection};
use tallyd::ledger::lots::{self, GrantRequest};
use tallyd::ledger::teams::{self, TeamDef};
use tallyd::ledger::usage::{self, pool_agree, HoldOutcome, Origin, Payable, UsageRequest};
use tallyd::ledger::writer::Writer;
use tallyd::ledger::{schema, Ledger, OveragePolicy, Site, SourceKind};

/// 2023-11-27: a few steps cross into December, where limits start again.
const T0: i64 = 1_701_043_200;
const DAY: i64 = 86_400;
/// `p0` pays for team `ta` (shares all), `p3` for `tb` (shares printing);
/// `a1` and `p3` are credits-only.
const MEMBERS: [&str; 5] = ["p0", "a1", "a2", "p3", "b4"];
const TEAM_OF: [usize; 5] = [0, 0, 0, 1, 1];
const PAYERS: [&str; 2] = ["p0", "p3"];

#[derive(Debug, Clone)]
struct Terms {
    combine: [bool; 2],
    limit_cents: [Option<i64>; 2],
    limit_minutes: [Option<i64>; 2],
    merged: [bool; 2],
}

#[derive(Debug, Clone)]
enum Op {
    Grant {
        owner: usize,
        time: bool,
        plan: bool,
        amount: i64,
        days: Option<i64>,
    },
    Debit {
        member: usize,
        time: bool,
        amount: i64,
    },
    Hold {
        member: usize,
        time: bool,
        amount: i64,
    },
    Settle {
        hold: usize,
        actual: i64,
    },
    Void {
        hold: usize,
    },
    Refund {
        usage: usize,
    },
    /// Advance the clock by hours and sweep expiries.
    Later {
        hours: i64,
    },
    /// A non-payer leaves or rejoins their team.
    Toggle {
        member: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        // Payers get most grants, so members run out of their own first.
        3 => (prop::sample::select(vec![0usize, 0, 0, 3, 3, 1, 2, 4]), any::<bool>(), any::<bool>(), 1..300i64, prop::option::of(1..6i64))
            .prop_map(|(owner, time, plan, amount, days)| Op::Grant { owner, time, plan, amount, days }),
        4 => (0..5usize, any::<bool>(), 0..250i64)
            .prop_map(|(member, time, amount)| Op::Debit { member, time, amount }),
        3 => (0..5usize, any::<bool>(), 0..250i64)
            .prop_map(|(member, time, amount)| Op::Hold { member, time, amount }),
        2 => (0..8usize, 0..300i64).prop_map(|(hold, actual)| Op::Settle { hold, actual }),
        1 => (0..8usize).prop_map(|hold| Op::Void { hold }),
        1 => (0..12usize).prop_map(|usage| Op::Refund { usage }),
        1 => (1..60i64).prop_map(|hours| Op::Later { hours }),
        1 => prop::sample::select(vec![1usize, 2, 4]).prop_map(|member| Op::Toggle { member }),
    ]
}

fn terms() -> impl Strategy<Value = Terms> {
    let limit = || prop::option::of(0..400i64);
    (
        any::<[bool; 2]>(),
        [limit(), limit()],
        [limit(), limit()],
        any::<[bool; 2]>(),
    )
        .prop_map(|(combine, limit_cents, limit_minutes, merged)| Terms {
            combine,
            limit_cents,
            limit_minutes,
            merged,
        })
}

/// One usage as the API reported it.
#[derive(Debug, Clone)]
struct Used {
    key: String,
    unit: usize,
    is_hold: bool,
    /// Taken from lots, as last reported; 0 once voided or refunded.
    covered: i64,
    open: bool,
    done: bool,
}

struct World {
    _dir: tempfile::TempDir,
    ledger: Ledger,
    terms: Terms,
    inside: [bool; 5],
    now: i64,
    granted: [i64; 2],
    used: Vec<Used>,
    seq: usize,
}

fn payable(time: bool) -> Payable {
    if time {
        Payable::Time {
            resource_type: "desk".into(),
        }
    } else {
        Payable::Printing
    }
}

impl World {
    fn new(terms: Terms) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ledger =
            Ledger::open(&dir.path().join("ledger.db"), Site::default()).expect("open");
        ledger
            .write(|c, _| {
                for m in MEMBERS {
                    let policy = matches!(m, "a1" | "p3").then_some(OveragePolicy::CREDITS_ONLY);
                    lots::upsert_member(c, m, m, policy, None, T0)?;
                }
                lots::define_time_credit(c, "hours", "Hours", &["desk".to_string()])
            })
            .expect("setup");
        let mut w = World {
            _dir: dir,
            ledger,
            terms,
            inside: [true; 5],
            now: T0,
            granted: [0, 0],
            used: Vec::new(),
            seq: 0,
        };
        w.define();
        w
    }

    fn define(&mut self) {
        let members: Vec<Vec<String>> = (0..2)
            .map(|t| {
                (0..5)
                    .filter(|&i| TEAM_OF[i] == t && self.inside[i])
                    .map(|i| MEMBERS[i].to_string())
                    .collect()
            })
            .collect();
        let shares = [vec![teams::ALL.to_string()], vec!["printing".to_string()]];
        let t = self.terms.clone();
        let defs: Vec<TeamDef<'_>> = (0..2)
            .map(|i| TeamDef {
                id: ["ta", "tb"][i],
                name: ["ta", "tb"][i],
                payer: PAYERS[i],
                members: &members[i],
                shares: &shares[i],
                combine: t.combine[i],
                limit_cents: t.limit_cents[i],
                limit_minutes: t.limit_minutes[i],
                billing: if t.merged[i] { "merged" } else { "individual" },
            })
            .collect();
        let now = self.now;
        self.ledger
            .write(|c, _| teams::define(c, &defs, now))
            .expect("define teams");
    }

    fn conn(&self) -> &Connection {
        self.ledger.conn()
    }

    fn request(&mut self, member: usize, time: bool, amount: i64) -> UsageRequest {
        self.seq += 1;
        UsageRequest {
            key: format!("u{}", self.seq),
            member: Some(MEMBERS[member].to_string()),
            origin: Origin::Manual,
            payable: payable(time),
            amount,
            detail: String::new(),
            at: self.now,
        }
    }

    fn run(&mut self, op: &Op) {
        match *op {
            Op::Grant {
                owner,
                time,
                plan,
                amount,
                days,
            } => {
                self.seq += 1;
                let g = GrantRequest {
                    member: MEMBERS[owner].to_string(),
                    credit: if time { "hours" } else { "printing" }.to_string(),
                    amount,
                    valid_from: self.now,
                    expires_at: days.map(|d| self.now + d * DAY),
                    source: if plan {
                        SourceKind::Plan
                    } else {
                        SourceKind::Account
                    },
                    source_key: format!("g{}", self.seq),
                    note: String::new(),
                    at: self.now,
                };
                self.ledger.write(|c, _| lots::grant(c, &g)).expect("grant");
                self.granted[time as usize] += amount;
            }
            Op::Debit {
                member,
                time,
                amount,
            } => {
                let req = self.request(member, time, amount);
                let charge = self.ledger.debit(&req).expect("debit");
                assert_eq!(charge.covered + charge.overage, amount);
                self.after_charge(&req, member, charge.pooled);
                self.used.push(Used {
                    key: req.key,
                    unit: time as usize,
                    is_hold: false,
                    covered: charge.covered,
                    open: false,
                    done: false,
                });
            }
            Op::Hold {
                member,
                time,
                amount,
            } => {
                let req = self.request(member, time, amount);
                match self.ledger.hold(&req).expect("hold") {
                    HoldOutcome::Placed(charge) => {
                        self.after_charge(&req, member, charge.pooled);
                        self.used.push(Used {
                            key: req.key,
                            unit: time as usize,
                            is_hold: true,
                            covered: charge.covered,
                            open: true,
                            done: false,
                        });
                    }
                    HoldOutcome::Refused { .. } => {
                        let n: i64 =
                            self.one("SELECT COUNT(*) FROM usages WHERE key = ?1", &req.key);
                        assert_eq!(n, 0, "a refused hold writes nothing");
                    }
                }
            }
            Op::Settle { hold, actual } => {
                let Some(i) = self.nth_open_hold(hold) else {
                    return;
                };
                let key = self.used[i].key.clone();
                let charge = self
                    .ledger
                    .settle(&key, actual, "", self.now)
                    .expect("settle");
                assert_eq!(charge.covered + charge.overage, actual);
                self.used[i].covered = charge.covered;
                self.used[i].open = false;
            }
            Op::Void { hold } => {
                let Some(i) = self.nth_open_hold(hold) else {
                    return;
                };
                let key = self.used[i].key.clone();
                self.ledger.void(&key, "", self.now).expect("void");
                self.used[i].covered = 0;
                self.used[i].open = false;
                self.used[i].done = true;
                self.check_returned(&key);
            }
            Op::Refund { usage } => {
                if self.used.is_empty() {
                    return;
                }
                let i = usage % self.used.len();
                let u = self.used[i].clone();
                if u.open || u.done {
                    return;
                }
                match self.ledger.refund(&u.key, "", self.now) {
                    Ok(r) => {
                        assert_eq!(r.restored + r.regranted, u.covered);
                        // A regrant moves what sits on a dead lot into a
                        // new one: no unit is added.
                        self.used[i].covered = 0;
                        self.used[i].done = true;
                        self.check_returned(&u.key);
                    }
                    Err(tallyd::ledger::LedgerError::NothingToRefund(_)) => {
                        assert_eq!(u.covered, 0);
                    }
                    Err(e) => panic!("refund {}: {e}", u.key),
                }
            }
            Op::Later { hours } => {
                self.now += hours * 3600;
                self.ledger.expire_due(self.now).expect("expire");
            }
            Op::Toggle { member } => {
                self.inside[member] = !self.inside[member];
                self.define();
                if !self.inside[member] {
                    let p = usage::pool::paying(
                        self.conn(),
                        chrono_tz::UTC,
                        MEMBERS[member],
                        &Payable::Printing,
                        self.now,
                    )
                    .expect("paying");
                    assert!(p.team.is_none() && p.pool.is_empty(), "left: no pool");
                }
            }
        }
    }

    fn nth_open_hold(&self, n: usize) -> Option<usize> {
        let open: Vec<usize> = (0..self.used.len())
            .filter(|&i| self.used[i].is_hold && self.used[i].open)
            .collect();
        (!open.is_empty()).then(|| open[n % open.len()])
    }

    fn one(&self, sql: &str, key: &str) -> i64 {
        self.conn()
            .query_row(sql, [key], |r| r.get(0))
            .expect("query")
    }

    /// Rule 4: the pool pays only once own credit for this usage is spent,
    /// from lots it may draw on.
    fn after_charge(&self, req: &UsageRequest, member: usize, pooled: i64) {
        let m = MEMBERS[member];
        if pooled > 0 {
            let own = usage::available(self.conn(), m, &req.payable, req.at).expect("own");
            assert_eq!(
                own, 0,
                "{m} drew {pooled} from the pool with {own} of their own"
            );
        }
        let team = TEAM_OF[member];
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT l.member_id, l.source, l.credit FROM pool_draws d JOIN lots l ON l.id = d.lot_id
                 JOIN usages u ON u.id = d.usage_id WHERE u.key = ?1 AND d.amount > 0",
            )
            .expect("prepare");
        let rows: Vec<(String, String, String)> = stmt
            .query_map([&req.key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("draws")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        for (owner, source, credit) in rows {
            assert_ne!(owner, m, "a member's own lot is not a pool draw");
            let by_payer = owner == PAYERS[team];
            let combined = self.terms.combine[team] && source == "plan";
            assert!(by_payer || combined, "{m} drew on {owner}'s {source} lot");
            assert!(team == 0 || credit == "printing", "tb shares printing only");
            assert!(self.inside[member], "{m} is outside their team");
        }
    }

    /// Rule 5: after a void or refund, the usage's net on every lot is 0,
    /// or the lot is dead and a regrant to its owner holds the rest.
    fn check_returned(&self, key: &str) {
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT h.lot_id, SUM(h.delta), l.member_id, u.id FROM history h JOIN usages u ON u.id = h.usage_id
                 JOIN lots l ON l.id = h.lot_id
                 WHERE u.key = ?1 AND h.kind IN ('debit', 'hold', 'settle', 'void', 'refund')
                 GROUP BY h.lot_id",
            )
            .expect("prepare");
        let rows: Vec<(i64, i64, String, i64)> = stmt
            .query_map([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("net")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        for (lot, net, owner, usage) in rows {
            if net == 0 {
                continue;
            }
            let (granted, to): (i64, String) = self
                .conn()
                .query_row(
                    "SELECT granted, member_id FROM lots WHERE source_key = ?1",
                    [format!("refund:{usage}:lot:{lot}")],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap_or_else(|_| panic!("{key}: lot {lot} is short {net} with no regrant"));
            assert_eq!((granted, to), (-net, owner), "{key}: regrant of lot {lot}");
        }
    }

    fn check(&self) {
        let c = self.conn();
        schema::verify(c).expect("lots equal their history");
        for v in tallyd::ledger::audit::derived(c) {
            assert!(v.ok, "{v:?}");
        }
        let bad: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM lots WHERE remaining < 0 OR remaining > granted",
                [],
                |r| r.get(0),
            )
            .expect("bounds");
        assert_eq!(bad, 0);
        // Every pool draw agrees with the history it stands for
        // (`check-ledger`), refunds' regrants of dead lots included.
        for t in pool_agree::pool_totals(c).expect("pool totals") {
            assert_eq!(pool_agree::pool_disagreement(&t), None, "{t:?}");
        }
        self.check_limits();
        for unit in 0..2 {
            self.check_conservation(unit);
        }
    }

    /// Rule 2.
    fn check_limits(&self) {
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT member_id, unit, month, SUM(amount) FROM pool_draws GROUP BY member_id, unit, month",
            )
            .expect("prepare");
        let rows: Vec<(String, String, i64, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("draws")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        for (member, unit, month, drawn) in rows {
            let team = TEAM_OF[MEMBERS.iter().position(|m| *m == member).expect("member")];
            let limit = match unit.as_str() {
                "cents" => self.terms.limit_cents[team],
                _ => self.terms.limit_minutes[team],
            };
            assert!(drawn >= 0, "{member} {unit} {month}: drew {drawn}");
            if let Some(l) = limit {
                assert!(
                    drawn <= l,
                    "{member} drew {drawn} {unit} in {month}, limit {l}"
                );
            }
        }
    }

    /// Rule 3, for the whole ledger (a pool moves credit between members).
    fn check_conservation(&self, unit: usize) {
        let credit = ["printing", "hours"][unit];
        let q = |sql: &str| -> i64 {
            self.conn()
                .query_row(sql, params![credit], |r| r.get(0))
                .expect("sum")
        };
        let remaining = q("SELECT COALESCE(SUM(remaining), 0) FROM lots WHERE credit = ?1");
        let expired = q(
            "SELECT COALESCE(-SUM(h.delta), 0) FROM history h JOIN lots l ON l.id = h.lot_id
             WHERE l.credit = ?1 AND h.kind = 'expire'",
        );
        let voided = q(
            "SELECT COALESCE(-SUM(h.delta), 0) FROM history h JOIN lots l ON l.id = h.lot_id
             WHERE l.credit = ?1 AND h.kind = 'void' AND h.usage_id IS NULL",
        );
        let in_use: i64 = self
            .used
            .iter()
            .filter(|u| u.unit == unit)
            .map(|u| u.covered)
            .sum();
        assert_eq!(
            self.granted[unit],
            remaining + in_use + expired + voided,
            "{credit}: granted = remaining {remaining} + used/held {in_use} + expired {expired} + voided {voided}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(128)
    })]

    #[test]
    fn teams_keep_their_books(terms in terms(), ops in prop::collection::vec(op(), 1..60)) {
        let mut w = World::new(terms);
        for op in &ops {
            w.run(op);
            w.check();
        }
        w.now += 30 * DAY;
        w.ledger.expire_due(w.now).expect("expire");
        w.check();
    }
}

/// Two members debit one pool at once through the group-committing writer:
/// the pool pays at most what it holds and what each limit allows.
#[test]
fn pool_is_never_spent_twice_under_the_writer() {
    let mut w = World::new(Terms {
        combine: [false, false],
        limit_cents: [Some(700), None],
        limit_minutes: [None, None],
        merged: [false, false],
    });
    w.run(&Op::Grant {
        owner: 0,
        time: false,
        plan: false,
        amount: 1000,
        days: None,
    });
    let World { _dir, ledger, .. } = w;
    let writer = Writer::spawn(ledger).expect("writer");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let h = writer.handle();
            std::thread::spawn(move || {
                let member = ["a1", "a2"][t % 2];
                let mut pooled = 0;
                for i in 0..20 {
                    let req = UsageRequest {
                        key: format!("w{t}:{i}"),
                        member: Some(member.to_string()),
                        origin: Origin::Manual,
                        payable: Payable::Printing,
                        amount: 30,
                        detail: String::new(),
                        at: T0,
                    };
                    let c = h
                        .call(move |c| usage::debit(c, &Site::default(), &req))
                        .expect("debit");
                    pooled += c.pooled;
                }
                (member, pooled)
            })
        })
        .collect();
    let mut by_member = std::collections::BTreeMap::new();
    for t in threads {
        let (m, p) = t.join().expect("thread");
        *by_member.entry(m).or_insert(0) += p;
    }
    let total: i64 = by_member.values().sum();
    assert_eq!(total, 1000, "the pool pays out exactly what it holds once");
    for (m, p) in &by_member {
        assert!(*p <= 700, "{m} drew {p}, limit 700");
    }
    writer.join();
}
