//! What the usages sites ship draw from the chain's lots, in the same
//! transaction as the centre applies them: a usage (or hold) takes its
//! amount from its member's lots valid at its time, in the site's own
//! consumption order ([`crate::ledger::allocate`]), and what no lot covers
//! is overage (cause `uncovered`). A settle takes or gives back the
//! difference, a void or refund gives back all of it: overage first, then
//! to the lots it was taken from, newest take first. Every change is a
//! history or overage row naming the usage, so a lot's remaining is always
//! the sum of its history.
//!
//! Sites still spend the lots they issue themselves (escrow, where a site
//! spends only what the centre placed with it, is not built yet); the
//! centre's lots are the chain's account of what was granted and spent.

use super::pg::{self, Pg, Tx};
use crate::ledger::allocate::{allocate, Candidate, SourceKind};
use crate::ledger::Ts;

/// A shipped usage, as spending needs it.
pub struct Usage {
    id: i64,
    member: Option<String>,
    credit_kind: String,
    resource_type: Option<String>,
    amount: i64,
    is_hold: bool,
    at: Ts,
}

impl Usage {
    /// From a row of `id, member_id, credit_kind, resource_type, amount,
    /// is_hold, at` (what applying a usage returns, and [`usage`] reads).
    pub fn from_row(r: &tokio_postgres::Row) -> Usage {
        Usage {
            id: r.get(0),
            member: r.get(1),
            credit_kind: r.get(2),
            resource_type: r.get(3),
            amount: r.get(4),
            is_hold: r.get(5),
            at: r.get(6),
        }
    }
}

async fn usage(tx: &Tx<'_>, site: &str, key: &str) -> Pg<Option<Usage>> {
    let row = pg::query_opt(
        tx,
        "SELECT id, member_id, credit_kind, resource_type, amount, is_hold, at
             FROM usages WHERE site_id = $1 AND key = $2",
        &[&site, &key],
    )
    .await?;
    Ok(row.as_ref().map(Usage::from_row))
}

fn unit(u: &Usage) -> &'static str {
    if u.credit_kind == "time" {
        "minutes"
    } else {
        "cents"
    }
}

/// A usage (or hold) the centre just applied: it draws its amount.
pub async fn on_usage(tx: &Tx<'_>, u: &Usage) -> Pg<()> {
    let kind = if u.is_hold { "hold" } else { "debit" };
    draw(tx, u, u.amount, kind).await
}

/// A hold resolved: settled at `actual`, or voided (given back whole).
pub async fn on_resolution(tx: &Tx<'_>, site: &str, key: &str, settled: Option<i64>) -> Pg<()> {
    let Some(u) = usage(tx, site, key).await? else {
        return Ok(());
    };
    match settled {
        Some(actual) if actual > u.amount => draw(tx, &u, actual - u.amount, "settle").await,
        Some(actual) => give_back(tx, &u, u.amount - actual, "settle").await,
        None => give_back(tx, &u, u.amount, "void").await,
    }
}

/// A usage refunded: all it drew comes back.
pub async fn on_refund(tx: &Tx<'_>, site: &str, key: &str) -> Pg<()> {
    let Some(u) = usage(tx, site, key).await? else {
        return Ok(());
    };
    let drawn =
        "SELECT COALESCE((SELECT -sum(delta) FROM lot_history WHERE usage_id = $1), 0)::bigint
        + COALESCE((SELECT sum(amount) FROM central_overage WHERE usage_id = $1), 0)::bigint";
    let row = pg::query_one(tx, drawn, &[&u.id]).await?;
    give_back(tx, &u, row.get(0), "refund").await
}

/// Takes `amount` from the member's lots that may pay for `u`; the rest is
/// overage.
async fn draw(tx: &Tx<'_>, u: &Usage, amount: i64, kind: &str) -> Pg<()> {
    let Some(member) = u.member.as_deref() else {
        return Ok(());
    };
    if amount <= 0 {
        return Ok(());
    }
    let rows = pg::query(
        tx,
        "SELECT id, remaining, expires_at, source, valid_from FROM lots
             WHERE member_id = $1 AND remaining > 0 AND voided_at IS NULL
               AND valid_from <= $2 AND (expires_at IS NULL OR expires_at > $2)
               AND CASE WHEN $3 = 'printing' THEN credit = 'printing'
                        ELSE credit IN (SELECT credit_id FROM time_credit_types
                                        WHERE resource_type = $4) END
             ORDER BY id FOR UPDATE",
        &[&member, &u.at, &u.credit_kind, &u.resource_type],
    )
    .await?;
    let candidates = rows
        .iter()
        .map(|r| Candidate {
            lot: r.get(0),
            remaining: r.get(1),
            expires_at: r.get(2),
            source: SourceKind::parse(r.get(3)).unwrap_or(SourceKind::Adjustment),
            valid_from: r.get(4),
        })
        .collect();
    let paid = allocate(candidates, amount);
    for (lot, take) in &paid.takes {
        move_credit(tx, *lot, -take, kind, u).await?;
    }
    if paid.uncovered > 0 {
        overage(tx, u, member, paid.uncovered, kind).await?;
    }
    Ok(())
}

/// Gives back `amount` of what `u` drew: its overage first, then to its
/// lots, newest take first.
async fn give_back(tx: &Tx<'_>, u: &Usage, amount: i64, kind: &str) -> Pg<()> {
    let Some(member) = u.member.as_deref() else {
        return Ok(());
    };
    let mut left = amount;
    if left <= 0 {
        return Ok(());
    }
    let owed: i64 = pg::query_one(
        tx,
        "SELECT COALESCE(sum(amount), 0)::bigint FROM central_overage WHERE usage_id = $1",
        &[&u.id],
    )
    .await?
    .get(0);
    let from_overage = owed.clamp(0, left);
    if from_overage > 0 {
        overage(tx, u, member, -from_overage, kind).await?;
        left -= from_overage;
    }
    let takes = pg::query(
        tx,
        "SELECT lot_id, -sum(delta)::bigint, max(id) FROM lot_history WHERE usage_id = $1
             GROUP BY lot_id HAVING sum(delta) < 0 ORDER BY max(id) DESC",
        &[&u.id],
    )
    .await?;
    for t in takes {
        if left == 0 {
            break;
        }
        let (lot, taken): (i64, i64) = (t.get(0), t.get(1));
        let give = taken.min(left);
        move_credit(tx, lot, give, kind, u).await?;
        left -= give;
    }
    Ok(())
}

async fn move_credit(tx: &Tx<'_>, lot: i64, delta: i64, kind: &str, u: &Usage) -> Pg<()> {
    pg::exec(
        tx,
        "UPDATE lots SET remaining = remaining + $2 WHERE id = $1",
        &[&lot, &delta],
    )
    .await?;
    pg::exec(
        tx,
        "INSERT INTO lot_history (lot_id, kind, delta, usage_id, at) VALUES ($1, $2, $3, $4, $5)",
        &[&lot, &kind, &delta, &u.id, &u.at],
    )
    .await?;
    Ok(())
}

async fn overage(tx: &Tx<'_>, u: &Usage, member: &str, amount: i64, kind: &str) -> Pg<()> {
    pg::exec(
        tx,
        "INSERT INTO central_overage (usage_id, member_id, unit, kind, amount, cause, at)
         VALUES ($1, $2, $3, $4, $5, 'uncovered', $6)",
        &[&u.id, &member, &unit(u), &kind, &amount, &u.at],
    )
    .await?;
    Ok(())
}
