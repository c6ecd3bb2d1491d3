//! Debits (usage that happened) and holds (an estimate reserved before a
//! usage), both recorded once per idempotency key.

use super::credit::{candidates, member_exists, overage_since, policy_of};
use super::entries::{add_overage, take_from_lot};
use super::rules::{hold_verdict, over_cap, HoldVerdict};
use super::{Charge, HoldOutcome, UsageRequest};
use crate::clock;
use crate::ledger::allocate::{allocate, Allocation};
use crate::ledger::history::HistoryKind;
use crate::ledger::integrity::{self, Chain};
use crate::ledger::{bounded, sub, sum, LedgerError, Result, Site};
use crate::money::Unit;
use rusqlite::{params, Connection, OptionalExtension};

fn fingerprint(req: &UsageRequest, is_hold: bool) -> String {
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
    match record(conn, site, req, false)? {
        HoldOutcome::Placed(charge) => Ok(charge),
        // Invariant: `record` applies the overage policy to holds only.
        HoldOutcome::Refused { .. } => unreachable!("a debit is never refused"),
    }
}

/// Reserves the estimate of a usage about to happen, if the member's overage
/// policy allows it. The estimate is bounded as a debit's amount is.
pub fn hold(conn: &Connection, site: &Site, req: &UsageRequest) -> Result<HoldOutcome> {
    if req.member.is_none() {
        return Err(LedgerError::UnknownMember("(no member)".into()));
    }
    record(conn, site, req, true)
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
                    replayed: true,
                },
            ))
        })
        .optional()?;
    match seen {
        Some((first_fp, _)) if first_fp != fp => Err(LedgerError::KeyConflict(req.key.clone())),
        Some((_, first)) => Ok(Some(first)),
        None => Ok(None),
    }
}

/// What the member could spend before this usage, and how it is paid.
fn pay(conn: &Connection, req: &UsageRequest) -> Result<(i64, Allocation)> {
    let Some(member) = &req.member else {
        return Ok((0, Allocation::default()));
    };
    let lots = candidates(conn, member, &req.payable, req.at)?;
    if lots.is_empty() {
        // Only then can an unknown member hide behind "no credit".
        member_exists(conn, member)?;
    }
    let available = sum(lots.iter().map(|c| c.remaining))?;
    Ok((available, allocate(lots, req.amount)))
}

/// Writes the usage row, its takes from lots and its overage.
fn insert(
    conn: &Connection,
    req: &UsageRequest,
    fp: &str,
    is_hold: bool,
    available: i64,
    allocation: &Allocation,
) -> Result<Charge> {
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
    if let Some(member) = &req.member {
        let unit = req.payable.unit();
        add_overage(
            conn,
            member,
            usage,
            unit,
            kind,
            allocation.uncovered,
            req.at,
        )?;
    }
    Ok(Charge {
        usage_id: usage,
        covered: allocation.covered(),
        overage,
        balance_after,
        replayed: false,
    })
}

fn record(
    conn: &Connection,
    site: &Site,
    req: &UsageRequest,
    is_hold: bool,
) -> Result<HoldOutcome> {
    bounded(req.amount, 0)?;
    let fp = fingerprint(req, is_hold);
    if let Some(first) = replay(conn, req, &fp)? {
        return Ok(HoldOutcome::Placed(first));
    }
    let (available, allocation) = pay(conn, req)?;
    if let (true, Some(member), true) = (is_hold, &req.member, allocation.uncovered > 0) {
        let unit = req.payable.unit();
        if let Some(refusal) = refuse(conn, site, member, unit, req, allocation.uncovered)? {
            return Ok(refusal);
        }
    }
    let charge = insert(conn, req, &fp, is_hold, available, &allocation)?;
    Ok(HoldOutcome::Placed(charge))
}

/// Applies the overage policy to a hold whose estimate leaves `uncovered`.
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
