//! A usage's takes from escrow slices, as its site reports them: taken
//! from a slice's open part (a slice's lot loses them from both remaining
//! and escrowed) or given back to it. A take the slice cannot cover (a
//! slice of another site or member, closed, or spent out) is not taken
//! here: the usage draws it from unescrowed credit instead.

use super::escrow::moved;
use super::pg::{self, Pg, Tx};
use super::spend::Usage;

/// Takes up to `amount` for `u` from `slice`; what it took.
pub async fn take(tx: &Tx<'_>, u: &Usage, slice: i64, amount: i64, kind: &str) -> Pg<i64> {
    let row = pg::query_opt(
        tx,
        "SELECT lot_id, amount - consumed - returned FROM escrow_slices
         WHERE id = $1 AND site_id = $2 AND member_id = $3 AND closed_at IS NULL FOR UPDATE",
        &[&slice, &u.site, &u.member],
    )
    .await?;
    let Some(row) = row else {
        return Ok(0);
    };
    let (lot, open): (i64, i64) = (row.get(0), row.get(1));
    let take = amount.min(open);
    if take <= 0 {
        return Ok(0);
    }
    pg::exec(
        tx,
        "UPDATE escrow_slices SET consumed = consumed + $2 WHERE id = $1",
        &[&slice, &take],
    )
    .await?;
    pg::exec(
        tx,
        "UPDATE lots SET remaining = remaining - $2, escrowed = escrowed - $2,
             shrink_pending = LEAST(shrink_pending, escrowed - $2) WHERE id = $1",
        &[&lot, &take],
    )
    .await?;
    history(tx, lot, slice, kind, -take, u).await?;
    moved(tx, slice, "consume", take, Some(u.id), u.at).await?;
    Ok(take)
}

/// Gives `amount` of what `u` took from `slice` back to it: to its open
/// part while the site holds it, else to its lot's unescrowed credit.
pub async fn restore(tx: &Tx<'_>, u: &Usage, slice: i64, amount: i64, kind: &str) -> Pg<()> {
    let row = pg::query_one(
        tx,
        "SELECT lot_id, closed_at IS NOT NULL FROM escrow_slices WHERE id = $1 FOR UPDATE",
        &[&slice],
    )
    .await?;
    let (lot, closed): (i64, bool) = (row.get(0), row.get(1));
    let (slice_sql, lot_sql) = if closed {
        (
            "UPDATE escrow_slices SET consumed = consumed - $2, returned = returned + $2 WHERE id = $1",
            "UPDATE lots SET remaining = remaining + $2 WHERE id = $1",
        )
    } else {
        (
            "UPDATE escrow_slices SET consumed = consumed - $2 WHERE id = $1",
            "UPDATE lots SET remaining = remaining + $2, escrowed = escrowed + $2 WHERE id = $1",
        )
    };
    pg::exec(tx, slice_sql, &[&slice, &amount]).await?;
    pg::exec(tx, lot_sql, &[&lot, &amount]).await?;
    history(tx, lot, slice, kind, amount, u).await?;
    moved(tx, slice, "restore", amount, Some(u.id), u.at).await?;
    if closed {
        pay_pending_cut(tx, lot, amount, u).await?;
        let voided: bool = pg::query_one(
            tx,
            "SELECT voided_at IS NOT NULL FROM lots WHERE id = $1",
            &[&lot],
        )
        .await?
        .get(0);
        if voided {
            super::escrow::void_given_back(tx, lot, amount, u.at).await?;
        }
    }
    Ok(())
}

/// Credit given back to a lot outside escrow pays its pending cut first
/// (a grant shrunk while its slices were out), as a returned slice does.
async fn pay_pending_cut(tx: &Tx<'_>, lot: i64, amount: i64, u: &Usage) -> Pg<()> {
    let row = pg::query_one(
        tx,
        "SELECT COALESCE((SELECT shrink_pending FROM lots WHERE id = $1 AND voided_at IS NULL), 0)",
        &[&lot],
    )
    .await?;
    let cut = row.get::<_, i64>(0).min(amount);
    if cut <= 0 {
        return Ok(());
    }
    pg::exec(
        tx,
        "UPDATE lots SET granted = granted - $2, remaining = remaining - $2,
             shrink_pending = shrink_pending - $2 WHERE id = $1",
        &[&lot, &cut],
    )
    .await?;
    super::escrow::shrunk(tx, lot, cut, &u.site, u.at).await
}

async fn history(tx: &Tx<'_>, lot: i64, slice: i64, kind: &str, delta: i64, u: &Usage) -> Pg<()> {
    pg::exec(
        tx,
        "INSERT INTO lot_history (lot_id, kind, delta, usage_id, at, slice_id)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&lot, &kind, &delta, &u.id, &u.at, &slice],
    )
    .await?;
    Ok(())
}
