//! What a member can spend: the lots that can pay for a usage, their sum,
//! the member's overage policy, and the overage run up this month.

use super::Payable;
use crate::ledger::allocate::{Candidate, SourceKind};
use crate::ledger::{sum, LedgerError, OveragePolicy, PolicyKind, Result, Site, Ts};
use crate::money::Unit;
use rusqlite::{params, Connection, OptionalExtension};

/// The lots of member `?1` that can be spent at instant `?2`: the one
/// definition both charging and `tallyd balance` use, so the balance a
/// manager sees is exactly what the next charge can take.
pub const SPENDABLE: &str = "member_id = ?1 AND remaining > 0 AND valid_from <= ?2
    AND (expires_at IS NULL OR expires_at > ?2) AND voided_at IS NULL";

/// Lots of `member` that can pay for `payable` at `at`.
pub fn candidates(
    conn: &Connection,
    member: &str,
    payable: &Payable,
    at: Ts,
) -> Result<Vec<Candidate>> {
    let cols =
        format!("SELECT id, remaining, expires_at, source, valid_from FROM lots WHERE {SPENDABLE}");
    let map = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Candidate> {
        let source: String = r.get(3)?;
        Ok(Candidate {
            lot: r.get(0)?,
            remaining: r.get(1)?,
            expires_at: r.get(2)?,
            source: SourceKind::parse(&source).unwrap_or(SourceKind::Adjustment),
            valid_from: r.get(4)?,
        })
    };
    let rows = match payable {
        Payable::Printing => {
            let mut stmt = conn.prepare_cached(&format!("{cols} AND credit = 'printing'"))?;
            let rows = stmt.query_map(params![member, at], map)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        }
        Payable::Time { resource_type } => {
            let mut stmt = conn.prepare_cached(&format!(
                "{cols} AND credit IN (SELECT credit_id FROM time_credit_types WHERE resource_type = ?3)"
            ))?;
            let rows = stmt.query_map(params![member, at, resource_type], map)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        }
    };
    Ok(rows)
}

/// What `member` can spend on `payable` at `at`.
pub fn available(conn: &Connection, member: &str, payable: &Payable, at: Ts) -> Result<i64> {
    sum(candidates(conn, member, payable, at)?
        .iter()
        .map(|c| c.remaining))
}

/// The member's own overage policy, else the site default.
pub fn policy_of(conn: &Connection, site: &Site, member: &str) -> Result<OveragePolicy> {
    let row = conn
        .prepare_cached(
            "SELECT overage_policy, overage_cap_cents, overage_cap_minutes FROM members WHERE id = ?1",
        )?
        .query_row([member], |r| {
            Ok((r.get::<_, Option<String>>(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    match row {
        None => Err(LedgerError::UnknownMember(member.to_string())),
        Some((Some(kind), cap_cents, cap_minutes)) => Ok(OveragePolicy {
            kind: PolicyKind::parse(&kind).unwrap_or(site.default_policy.kind),
            cap_cents,
            cap_minutes,
        }),
        Some((None, _, _)) => Ok(site.default_policy),
    }
}

pub(super) fn member_exists(conn: &Connection, member: &str) -> Result<()> {
    let found: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM members WHERE id = ?1")?
        .query_row([member], |r| r.get(0))
        .optional()?;
    found
        .map(|_| ())
        .ok_or_else(|| LedgerError::UnknownMember(member.to_string()))
}

/// Overage the member has run up in `unit` since `since`.
pub fn overage_since(conn: &Connection, member: &str, unit: Unit, since: Ts) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE(SUM(amount), 0) FROM overage WHERE member_id = ?1 AND unit = ?2 AND at >= ?3",
        )?
        .query_row(params![member, unit.as_str(), since], |r| r.get(0))?)
}
