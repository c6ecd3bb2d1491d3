//! Debits (usage that happened) and holds (an estimate reserved before a
//! usage), both recorded once per idempotency key.

use super::credit::{member_exists, overage_since, policy_of};
use super::entries::{add_overage, pooled_of, take_from_lot};
use super::pool::{self, Draw, Paying, TeamUse};
use super::rules::{hold_verdict, over_cap, HoldVerdict};
use super::{Charge, HoldOutcome, UsageRequest};
use crate::clock;
use crate::ledger::allocate::Allocation;
use crate::ledger::escrow;
use crate::ledger::history::HistoryKind;
use crate::ledger::integrity::{self, Chain};
use crate::ledger::{bounded, sub, LedgerError, Result, Site};
use crate::money::Unit;
use rusqlite::{params, Connection, OptionalExtension};

/// The content a usage key is checked against: `[member, origin, payable,
/// amount, is_hold, detail]` as JSON (a restored ledger rebuilds a lost
/// usage from it, see [`outbox_import`](crate::ledger::outbox_import)).
pub fn fingerprint(req: &UsageRequest, is_hold: bool) -> String {
    serde_json::json!([
        req.member,
        req.origin,
        req.payable,
        req.amount,
        is_hold,
        req.detail
    ])
    .to_string()
}

/// Charges a usage that already happened. What credit cannot cover is
/// recorded as overage whatever the policy: usage is never lost. The amount
/// is from 0 to [`MAX_UNITS`](crate::money::MAX_UNITS).
pub fn debit(conn: &Connection, site: &Site, req: &UsageRequest) -> Result<Charge> {
    match record(conn, site, req, false, 0)? {
        HoldOutcome::Placed(charge) => Ok(charge),
        // Invariant: `record` applies the overage policy to holds only.
        HoldOutcome::Refused { .. } => unreachable!("a debit is never refused"),
    }
}

/// Reserves the estimate of a usage about to happen, if the member's overage
/// policy allows it. The estimate is bounded as a debit's amount is.
pub fn hold(conn: &Connection, site: &Site, req: &UsageRequest) -> Result<HoldOutcome> {
    hold_on_allowance(conn, site, req, 0)
}

/// As [`hold`], at a site of a chain that could not reach the centre for
/// more credit: a hold its member's policy would refuse is placed all the
/// same when what credit leaves uncovered fits in what is left of the
/// offline `allowance` (in the estimate's unit; 0: none), and that use is
/// recorded, so the centre books it as `offline` overage if the chain's
/// credit cannot pay it (multi-site.md 3.6).
pub fn hold_on_allowance(
    conn: &Connection,
    site: &Site,
    req: &UsageRequest,
    allowance: i64,
) -> Result<HoldOutcome> {
    if req.member.is_none() {
        return Err(LedgerError::UnknownMember("(no member)".into()));
    }
    record(conn, site, req, true, allowance.max(0))
}

/// The first charge under `req`'s key, if there was one: the same content
/// replays it, other content is a conflict.
fn replay(conn: &Connection, req: &UsageRequest, fp: &str) -> Result<Option<Charge>> {
    let seen: Option<(String, Charge)> = conn
        .prepare_cached(
            "SELECT fingerprint, id, covered, overage, balance_after FROM usages WHERE key = ?1",
        )?
        .query_row([&req.key], |r| {
            Ok((
                r.get(0)?,
                Charge {
                    usage_id: r.get(1)?,
                    covered: r.get(2)?,
                    overage: r.get(3)?,
                    balance_after: r.get(4)?,
                    pooled: 0,
                    replayed: true,
                },
            ))
        })
        .optional()?;
    match seen {
        Some((first_fp, _)) if first_fp != fp => Err(LedgerError::KeyConflict(req.key.clone())),
        Some((_, first)) => Ok(Some(Charge {
            pooled: match &req.member {
                Some(m) => pooled_of(conn, first.usage_id, m)?,
                None => 0,
            },
            ..first
        })),
        None => Ok(None),
    }
}

/// How a usage is paid: what the member could spend before it (own lots and
/// what their team's pool allows), the allocation, and the team it is made
/// in, if any.
struct Paid {
    available: i64,
    allocation: Allocation,
    team: Option<TeamUse>,
    /// Who owes what credit does not cover.
    owes: Option<String>,
}

fn pay(conn: &Connection, site: &Site, req: &UsageRequest) -> Result<Paid> {
    let Some(member) = &req.member else {
        return Ok(Paid {
            available: 0,
            allocation: Allocation::default(),
            team: None,
            owes: None,
        });
    };
    let paying: Paying = pool::paying(conn, site.tz, member, &req.payable, req.at)?;
    if paying.own.is_empty() && paying.team.is_none() {
        // Only then can an unknown member hide behind "no credit".
        member_exists(conn, member)?;
    }
    let available = paying.available()?;
    let owes = Some(paying.billed_to(member).to_string());
    let team = paying.team.clone();
    Ok(Paid {
        available,
        allocation: paying.allocate(req.amount),
        team,
        owes,
    })
}

/// Writes the usage row, its takes from lots and its overage.
fn insert(
    conn: &Connection,
    req: &UsageRequest,
    fp: &str,
    is_hold: bool,
    paid: &Paid,
) -> Result<Charge> {
    let (available, allocation) = (paid.available, &paid.allocation);
    let (origin, printer, resource) = req.origin.parts();
    // Unattributed usage is recorded, but owed by nobody.
    let overage = if req.member.is_some() {
        allocation.uncovered
    } else {
        0
    };
    let balance_after = sub(available, allocation.covered())?;
    let credit_kind = req.payable.credit_kind().as_str();
    let resource_type = req.payable.resource_type();
    let covered = allocation.covered();
    let (usage, hash) = integrity::next(conn, Chain::Usages, |id| {
        vec![
            id.into(),
            req.key.as_str().into(),
            fp.into(),
            req.member.as_deref().into(),
            origin.into(),
            printer.into(),
            resource.into(),
            credit_kind.into(),
            resource_type.into(),
            req.amount.into(),
            i64::from(is_hold).into(),
            req.detail.as_str().into(),
            req.at.into(),
            covered.into(),
            overage.into(),
            balance_after.into(),
        ]
    })?;
    conn.prepare_cached(
        "INSERT INTO usages (id, key, fingerprint, member_id, origin, printer, resource, credit_kind,
                             resource_type, amount, is_hold, detail, at, covered, overage, balance_after, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?
    .execute(params![
        usage,
        req.key,
        fp,
        req.member,
        origin,
        printer,
        resource,
        credit_kind,
        resource_type,
        req.amount,
        is_hold,
        req.detail,
        req.at,
        covered,
        overage,
        balance_after,
        hash.as_slice()
    ])?;
    let kind = if is_hold {
        HistoryKind::Hold
    } else {
        HistoryKind::Debit
    };
    for &(lot, take) in &allocation.takes {
        take_from_lot(conn, lot, take, kind, Some(usage), "", req.at)?;
    }
    if let (Some(member), Some(team)) = (&req.member, &paid.team) {
        pool::record_team_usage(conn, usage, member, team)?;
        for &(lot, amount) in allocation.pool_takes() {
            let draw = Draw {
                usage,
                member,
                lot,
                unit: req.payable.unit(),
                kind,
                amount,
                at: req.at,
            };
            pool::record_new_draw(conn, &draw, team)?;
        }
    }
    if let Some(owes) = &paid.owes {
        let unit = req.payable.unit();
        add_overage(conn, owes, usage, unit, kind, allocation.uncovered, req.at)?;
    }
    Ok(Charge {
        usage_id: usage,
        covered: allocation.covered(),
        overage,
        balance_after,
        pooled: allocation.pooled(),
        replayed: false,
    })
}

fn record(
    conn: &Connection,
    site: &Site,
    req: &UsageRequest,
    is_hold: bool,
    allowance: i64,
) -> Result<HoldOutcome> {
    bounded(req.amount, 0)?;
    let fp = fingerprint(req, is_hold);
    if let Some(first) = replay(conn, req, &fp)? {
        return Ok(HoldOutcome::Placed(first));
    }
    let paid = pay(conn, site, req)?;
    let uncovered = paid.allocation.uncovered;
    if let (true, Some(owes), true) = (is_hold, &paid.owes, uncovered > 0) {
        let unit = req.payable.unit();
        if let Some(refusal) = refuse(conn, site, owes, unit, req, uncovered)? {
            let left = match allowance {
                0 => 0,
                a => escrow::allowance_left(conn, owes, unit, a)?,
            };
            if uncovered > left {
                return Ok(refusal);
            }
            let charge = insert(conn, req, &fp, is_hold, &paid)?;
            escrow::use_allowance(conn, charge.usage_id, owes, unit, uncovered)?;
            return Ok(HoldOutcome::Placed(charge));
        }
    }
    let charge = insert(conn, req, &fp, is_hold, &paid)?;
    Ok(HoldOutcome::Placed(charge))
}

/// Applies the overage policy of the member who owes the overage (the payer
/// under a team's merged billing) to a hold whose estimate leaves
/// `uncovered`.
fn refuse(
    conn: &Connection,
    site: &Site,
    member: &str,
    unit: Unit,
    req: &UsageRequest,
    uncovered: i64,
) -> Result<Option<HoldOutcome>> {
    let policy = policy_of(conn, site, member)?;
    let refused = match hold_verdict(policy, unit, uncovered) {
        HoldVerdict::Allow => false,
        HoldVerdict::Refuse => true,
        HoldVerdict::WithinCap(cap) => {
            let so_far = overage_since(conn, member, unit, clock::month_start(site.tz, req.at))?;
            over_cap(cap, so_far, uncovered)
        }
    };
    Ok(refused.then_some(HoldOutcome::Refused {
        available: sub(req.amount, uncovered)?,
        needed: req.amount,
        policy: policy.kind,
    }))
}
