//! The chain's monthly report, read from the usages every site shipped at
//! their final amounts (the `usage_final` view).

use super::protocol::{ChainReportBy, ChainReportRow, ReportQuery};
use tokio_postgres::Client;

const REPORT: &str = "
    SELECT COALESCE(CASE WHEN $3 = 'site' THEN f.site_id ELSE f.member_id END, '(unattributed)'),
        count(*)::bigint,
        COALESCE(sum(f.amount) FILTER (WHERE f.credit_kind = 'printing' AND NOT f.refunded), 0)::bigint,
        COALESCE(sum(f.amount) FILTER (WHERE f.credit_kind = 'time' AND NOT f.refunded), 0)::bigint,
        count(*) FILTER (WHERE f.open_hold)::bigint,
        count(*) FILTER (WHERE f.refunded)::bigint
    FROM usage_final f JOIN usages u ON u.site_id = f.site_id AND u.key = f.key
    WHERE u.at >= $1 AND u.at < $2
    GROUP BY 1 ORDER BY 1";

/// One row per member (or site) with a usage made in the query's period,
/// in key order.
pub async fn report(
    client: &Client,
    q: &ReportQuery,
) -> Result<Vec<ChainReportRow>, tokio_postgres::Error> {
    let by = match q.by {
        ChainReportBy::Member => "member",
        ChainReportBy::Site => "site",
    };
    let rows = client.query(REPORT, &[&q.start, &q.end, &by]).await?;
    Ok(rows
        .iter()
        .map(|r| ChainReportRow {
            key: r.get(0),
            usages: r.get(1),
            printing_cents: r.get(2),
            minutes: r.get(3),
            open_holds: r.get(4),
            refunds: r.get(5),
        })
        .collect())
}
