//! A member's statement across the chain, read from the centre's lot
//! history and overage rows.

use super::protocol::{ChainStatement, ChainStatementLine, StatementQuery};
use std::collections::BTreeMap;
use tokio_postgres::{Client, Error};

/// The statement, or `None` for a member the centre does not know.
pub async fn statement(
    client: &Client,
    q: &StatementQuery,
) -> Result<Option<ChainStatement>, Error> {
    let Some(who) = client
        .query_opt("SELECT name FROM members WHERE id = $1", &[&q.member])
        .await?
    else {
        return Ok(None);
    };
    let rows = client
        .query(
            "SELECT h.at, h.kind, l.credit, CASE WHEN l.credit = 'printing' THEN 'cents' ELSE 'minutes' END,
                    h.delta, u.site_id, u.key, h.note, h.id, 0
             FROM lot_history h JOIN lots l ON l.id = h.lot_id LEFT JOIN usages u ON u.id = h.usage_id
             WHERE l.member_id = $1 AND h.at >= $2 AND h.at < $3
             UNION ALL
             SELECT o.at, o.kind, 'overage', o.unit, o.amount, u.site_id, u.key, o.cause, o.id, 1
             FROM central_overage o JOIN usages u ON u.id = o.usage_id
             WHERE o.member_id = $1 AND o.at >= $2 AND o.at < $3
             ORDER BY 1, 10, 9",
            &[&q.member, &q.start, &q.end],
        )
        .await?;
    let lines = rows
        .iter()
        .map(|r| ChainStatementLine {
            at: r.get(0),
            kind: r.get(1),
            credit: r.get(2),
            unit: r.get(3),
            amount: r.get(4),
            site: r.get(5),
            usage_key: r.get(6),
            note: r.get(7),
        })
        .collect();
    Ok(Some(ChainStatement {
        member: q.member.clone(),
        name: who.get(0),
        opening: held_before(client, &q.member, q.start).await?,
        lines,
        closing: held_before(client, &q.member, q.end).await?,
    }))
}

/// What the member's lots held, per credit, and the overage owed
/// (`overage-cents`, `overage-minutes`), from the rows before `at`.
async fn held_before(
    client: &Client,
    member: &str,
    at: i64,
) -> Result<BTreeMap<String, i64>, Error> {
    let rows = client
        .query(
            "SELECT l.credit, sum(h.delta)::bigint FROM lot_history h JOIN lots l ON l.id = h.lot_id
             WHERE l.member_id = $1 AND h.at < $2 GROUP BY 1
             UNION ALL
             SELECT 'overage-' || unit, sum(amount)::bigint FROM central_overage
             WHERE member_id = $1 AND at < $2 GROUP BY unit",
            &[&member, &at],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
