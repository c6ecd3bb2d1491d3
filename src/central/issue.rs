//! The chain's lots, issued once from the grants file: the site's own pure
//! reconcile ([`crate::grants::reconcile`]) run against the centre's
//! PostgreSQL, written in one transaction under an advisory lock (so two
//! centres never issue the same period twice; `lots.source_key` is UNIQUE
//! besides), and the expiry of what is left of lots past their date.
//! Team pools are not kept at the centre yet: teams in the file are
//! ignored here. A grant shrunk or deleted recalls escrow ([`super::feed`]).

use crate::grants::model::{AccountGrant, Catalog};
use crate::grants::reconcile::{kind, reconcile, AppliedGrant, Counts, Snapshot, SyncPlan};
use crate::ledger::catalog::CatalogRow;
use crate::ledger::lots::GrantRequest;
use crate::ledger::Ts;
use anyhow::{Context, Result};
use chrono_tz::Tz;
use std::collections::{HashMap, HashSet};
use tokio_postgres::{Client, Transaction};

/// The lock the chain's issuer holds for its transaction: one sync at a
/// time across every centre (and every writer of the feed, [`super::feed`]).
pub const ISSUER_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('tallyd-central-issuer'))";

/// Reconciles `catalog` into the centre's lots; what it did.
pub async fn sync(client: &mut Client, catalog: &Catalog, tz: Tz, now: Ts) -> Result<Counts> {
    let tx = client.transaction().await?;
    tx.execute(ISSUER_LOCK, &[]).await?;
    let snap = snapshot(&tx).await?;
    let plan = reconcile(catalog, &snap, catalog.tz.unwrap_or(tz), now);
    apply(&tx, catalog, &plan, now).await?;
    tx.commit().await?;
    Ok(plan.counts())
}

async fn snapshot(tx: &Transaction<'_>) -> Result<Snapshot> {
    let mut catalog = HashMap::new();
    for r in tx
        .query("SELECT kind, id, body, first_seen FROM catalog", &[])
        .await?
    {
        let row = CatalogRow {
            body: r.get(2),
            first_seen: r.get(3),
        };
        catalog.insert((r.get(0), r.get(1)), row);
    }
    let lot_keys: HashSet<String> = tx
        .query(
            "SELECT source_key FROM lots WHERE source IN ('plan', 'product')",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let members = tx
        .query("SELECT id, closed_at IS NOT NULL FROM members", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(Snapshot {
        catalog,
        lot_keys,
        members,
    })
}

async fn apply(tx: &Transaction<'_>, cat: &Catalog, plan: &SyncPlan, now: Ts) -> Result<()> {
    if plan.definitions_changed {
        tx.execute("DELETE FROM time_credit_types", &[]).await?;
        for (id, tc) in &cat.time_credits {
            for rt in &tc.resource_types {
                tx.execute(
                    "INSERT INTO time_credit_types (credit_id, resource_type) VALUES ($1, $2)",
                    &[id, rt],
                )
                .await?;
            }
        }
    }
    for (m, _) in &plan.members {
        tx.execute(
            "INSERT INTO members (id, name, home_site) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, home_site = excluded.home_site,
                 closed_at = NULL",
            &[&m.id, &m.name, &m.home_site],
        )
        .await?;
    }
    for id in &plan.closes {
        tx.execute(
            "UPDATE members SET closed_at = $2 WHERE id = $1 AND closed_at IS NULL",
            &[id, &now],
        )
        .await?;
    }
    for (k, id) in &plan.catalog_drop {
        tx.execute("DELETE FROM catalog WHERE kind = $1 AND id = $2", &[k, id])
            .await?;
    }
    for (k, id, body, first_seen) in &plan.catalog_put {
        tx.execute(
            "INSERT INTO catalog (kind, id, body, first_seen) VALUES ($1, $2, $3, $4)
             ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body, first_seen = excluded.first_seen",
            &[k, id, body, first_seen],
        )
        .await?;
    }
    for v in &plan.voids {
        let note = format!(
            "account grant {} removed from the grants file (was {} of {})",
            v.before.id, v.before.amount, v.before.credit
        );
        void_lot(tx, v.lot, &note, now).await?;
    }
    for e in &plan.edits {
        let note = format!("account grant {} edited in the grants file", e.after.id);
        if e.before.amount != e.after.amount {
            adjust_amount(tx, e.lot, e.after.amount, &note, now).await?;
        }
        tx.execute(
            "UPDATE lots SET valid_from = $2, expires_at = $3 WHERE id = $1",
            &[&e.lot, &e.valid_from, &e.expires_at],
        )
        .await?;
        record_account(tx, &e.member, &e.after, e.lot, now).await?;
    }
    for issue in &plan.issues {
        let lot = insert_lot(tx, &issue.grant).await?;
        if let Some((member, grant)) = &issue.account {
            record_account(tx, member, grant, lot, now).await?;
        }
    }
    Ok(())
}

/// Issues a lot once per source key (a rerun finds the one there); its id.
async fn insert_lot(tx: &Transaction<'_>, g: &GrantRequest) -> Result<i64> {
    if let Some(lot) = new_lot(tx, g).await? {
        return Ok(lot);
    }
    let row = tx
        .query_one(
            "SELECT id FROM lots WHERE source_key = $1",
            &[&g.source_key],
        )
        .await?;
    Ok(row.get(0))
}

/// Issues `g` as a lot with its `grant` history row, unless a lot has its
/// source key already (`None` then).
pub async fn new_lot(
    tx: &Transaction<'_>,
    g: &GrantRequest,
) -> std::result::Result<Option<i64>, tokio_postgres::Error> {
    let made = tx
        .query_opt(
            "INSERT INTO lots (member_id, credit, granted, remaining, valid_from, expires_at,
                 source, source_key, issued_at)
             VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (source_key) DO NOTHING RETURNING id",
            &[
                &g.member,
                &g.credit,
                &g.amount,
                &g.valid_from,
                &g.expires_at,
                &g.source.as_str(),
                &g.source_key,
                &g.at,
            ],
        )
        .await?;
    let Some(row) = made else {
        return Ok(None);
    };
    let lot: i64 = row.get(0);
    history(tx, lot, "grant", g.amount, g.amount, &g.note, g.at).await?;
    Ok(Some(lot))
}

async fn history(
    tx: &Transaction<'_>,
    lot: i64,
    kind: &str,
    delta: i64,
    granted_delta: i64,
    note: &str,
    at: Ts,
) -> std::result::Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO lot_history (lot_id, kind, delta, granted_delta, note, at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&lot, &kind, &delta, &granted_delta, &note, &at],
    )
    .await?;
    Ok(())
}

/// What is left of a lot is voided (its history says so); spent stays spent,
/// and its open slices are recalled: what they hold is voided as their
/// sites return it.
async fn void_lot(tx: &Transaction<'_>, lot: i64, note: &str, at: Ts) -> Result<()> {
    let row = tx
        .query_opt(
            "UPDATE lots l SET remaining = o.escrowed, voided_at = $2, shrink_pending = 0
             FROM (SELECT id, remaining, escrowed FROM lots
                   WHERE id = $1 AND voided_at IS NULL FOR UPDATE) o
             WHERE l.id = o.id RETURNING o.remaining - o.escrowed",
            &[&lot, &at],
        )
        .await?;
    if let Some(r) = row {
        let was: i64 = r.get(0);
        history(tx, lot, "void", -was, 0, note, at).await?;
        super::feed::recall(tx, lot, None, note, at).await?;
    }
    Ok(())
}

/// A lot's grant changed to `amount` (multi-site.md 3.5). Spent stays
/// spent, so the grant never drops below it (remaining floors at 0, the
/// site's rule, `ledger::lots::adjust_amount`). A cut takes unescrowed
/// credit first; the rest waits as the lot's `shrink_pending`, and slices
/// holding it are recalled: what they return pays it. A raise cancels a
/// pending cut first.
async fn adjust_amount(
    tx: &Transaction<'_>,
    lot: i64,
    amount: i64,
    note: &str,
    at: Ts,
) -> Result<()> {
    let r = tx
        .query_one(
            "SELECT granted, remaining, escrowed, shrink_pending FROM lots WHERE id = $1 FOR UPDATE",
            &[&lot],
        )
        .await?;
    let lot_now = LotAmounts {
        granted: r.get(0),
        remaining: r.get(1),
        escrowed: r.get(2),
        pending: r.get(3),
    };
    let cut = lot_now.change(amount).context("lot amounts out of range")?;
    if cut.now == 0 && cut.pending == lot_now.pending {
        return Ok(());
    }
    tx.execute(
        "UPDATE lots SET granted = granted + $2, remaining = remaining + $2, shrink_pending = $3
         WHERE id = $1",
        &[&lot, &cut.now, &cut.pending],
    )
    .await?;
    if cut.now != 0 {
        let note = format!(
            "{note}; was granted {} with {} remaining",
            lot_now.granted, lot_now.remaining
        );
        history(tx, lot, "adjust", cut.now, cut.now, &note, at).await?;
    }
    if cut.pending > lot_now.pending {
        let why = format!("{note}: {} more to take from escrow", cut.pending);
        super::feed::recall(tx, lot, Some(cut.pending), &why, at).await?;
    }
    Ok(())
}

/// A chain lot's amounts, as a grant edit finds them.
#[derive(Debug, Clone, Copy)]
struct LotAmounts {
    granted: i64,
    remaining: i64,
    escrowed: i64,
    pending: i64,
}

/// What a grant edit does to a lot: `now` added to granted and remaining
/// (negative for a cut), and the lot's pending cut after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Change {
    now: i64,
    pending: i64,
}

impl LotAmounts {
    /// The change that brings the grant to `amount`, never below what was
    /// spent: a cut takes unescrowed credit now and leaves the rest
    /// pending on escrow; a raise cancels a pending cut first. `None` when
    /// the amounts are out of range.
    fn change(self, amount: i64) -> Option<Change> {
        let spent = self.granted.checked_sub(self.remaining)?;
        let target = amount.max(spent);
        let effective = self.granted.checked_sub(self.pending)?;
        let delta = target.checked_sub(effective)?;
        if delta >= 0 {
            let cancel = delta.min(self.pending);
            return Some(Change {
                now: delta - cancel,
                pending: self.pending - cancel,
            });
        }
        let cut = delta.checked_neg()?;
        let free = self.remaining.checked_sub(self.escrowed)?.max(0);
        let now = cut.min(free);
        Some(Change {
            now: -now,
            pending: self.pending.checked_add(cut - now)?,
        })
    }
}

async fn record_account(
    tx: &Transaction<'_>,
    member: &str,
    grant: &AccountGrant,
    lot: i64,
    now: Ts,
) -> Result<()> {
    let id = serde_json::to_string(&[member, grant.id.as_str()])?;
    let body = serde_json::to_string(&AppliedGrant {
        grant: grant.clone(),
        lot,
    })?;
    tx.execute(
        "INSERT INTO catalog (kind, id, body, first_seen) VALUES ($1, $2, $3, $4)
         ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
        &[&kind::ACCOUNT_GRANT, &id, &body, &now],
    )
    .await?;
    Ok(())
}

/// Records the expiry of what is left of every lot past its date at `now`
/// (the centre's clock): one `expire` history row each. How many expired.
/// What a lot's open slices hold expires when its site returns them
/// ([`super::escrow::close`]).
pub async fn expire(client: &mut Client, now: Ts) -> Result<u64> {
    let tx = client.transaction().await?;
    let rows = tx
        .query(
            "UPDATE lots l SET remaining = o.escrowed
             FROM (SELECT id, remaining, escrowed FROM lots
                   WHERE expires_at <= $1 AND remaining > escrowed AND voided_at IS NULL
                   FOR UPDATE) o
             WHERE l.id = o.id RETURNING l.id, o.remaining - o.escrowed",
            &[&now],
        )
        .await?;
    for r in &rows {
        let (lot, was): (i64, i64) = (r.get(0), r.get(1));
        history(&tx, lot, "expire", -was, 0, "expired", now).await?;
    }
    tx.commit().await?;
    Ok(rows.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::{Change, LotAmounts};

    fn lot(granted: i64, remaining: i64, escrowed: i64, pending: i64) -> LotAmounts {
        LotAmounts {
            granted,
            remaining,
            escrowed,
            pending,
        }
    }

    fn change(now: i64, pending: i64) -> Option<Change> {
        Some(Change { now, pending })
    }

    #[test]
    fn a_cut_takes_unescrowed_credit_first_and_leaves_the_rest_pending_on_escrow() {
        // 1000 granted, 200 spent, 300 of the 800 left in escrow.
        assert_eq!(lot(1000, 800, 300, 0).change(400), change(-500, 100));
        // Within what is unescrowed: nothing pending.
        assert_eq!(lot(1000, 800, 300, 0).change(700), change(-300, 0));
    }

    #[test]
    fn spent_stays_spent_so_a_cut_floors_at_what_was_spent() {
        assert_eq!(lot(1000, 800, 300, 0).change(0), change(-500, 300));
        // The same edit again changes nothing.
        assert_eq!(lot(500, 300, 300, 300).change(0), change(0, 300));
    }

    #[test]
    fn a_raise_cancels_a_pending_cut_first() {
        // Granted 500 with 100 of it still to cut: 400 in effect.
        assert_eq!(lot(500, 300, 300, 100).change(550), change(50, 0));
        assert_eq!(lot(500, 300, 300, 100).change(500), change(0, 0));
        assert_eq!(lot(500, 300, 300, 100).change(420), change(0, 80));
    }

    #[test]
    fn amounts_out_of_range_are_refused() {
        assert_eq!(lot(i64::MIN, i64::MAX, 0, 0).change(10), None);
    }
}
