//! The chain's balances, read from the centre's lots and overage.

use super::protocol::{BalanceQuery, ChainBalance};
use std::collections::BTreeMap;
use tokio_postgres::Client;

/// Every member (or the one asked for) in id order, at `now`.
pub async fn balances(
    client: &Client,
    q: &BalanceQuery,
    now: i64,
) -> Result<Vec<ChainBalance>, tokio_postgres::Error> {
    let members = client
        .query(
            "SELECT id, name, closed_at IS NOT NULL FROM members
             WHERE $1::text IS NULL OR id = $1 ORDER BY id",
            &[&q.member],
        )
        .await?;
    let mut out: BTreeMap<String, ChainBalance> = members
        .iter()
        .map(|r| {
            let id: String = r.get(0);
            let b = ChainBalance {
                member: id.clone(),
                name: r.get(1),
                closed: r.get(2),
                credits: BTreeMap::new(),
                overage_cents: 0,
                overage_minutes: 0,
            };
            (id, b)
        })
        .collect();
    let live = client
        .query(
            "SELECT member_id, credit, sum(remaining)::bigint FROM lots
             WHERE ($1::text IS NULL OR member_id = $1) AND voided_at IS NULL
               AND valid_from <= $2 AND (expires_at IS NULL OR expires_at > $2)
             GROUP BY 1, 2",
            &[&q.member, &now],
        )
        .await?;
    for r in live {
        if let Some(b) = out.get_mut(r.get::<_, &str>(0)) {
            b.credits.insert(r.get(1), r.get(2));
        }
    }
    let owed = client
        .query(
            "SELECT member_id, unit, sum(amount)::bigint FROM central_overage
             WHERE $1::text IS NULL OR member_id = $1 GROUP BY 1, 2",
            &[&q.member],
        )
        .await?;
    for r in owed {
        if let Some(b) = out.get_mut(r.get::<_, &str>(0)) {
            match r.get::<_, &str>(1) {
                "minutes" => b.overage_minutes = r.get(2),
                _ => b.overage_cents = r.get(2),
            }
        }
    }
    Ok(out.into_values().collect())
}
