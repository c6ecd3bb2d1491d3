//! `tallyd report --central`: the chain's monthly usage, asked of the
//! centre with this site's token (as the shipper sends it) and printed as
//! `tallyd report` prints the site's own.

use super::output::{write_json, Format, Table};
use super::Ctx;
use crate::central::client;
use crate::central::protocol::{ChainReportBy, ChainReportRow, ReportQuery};
use crate::clock;
use crate::config::CentralConfig;
use crate::money::{format_cents, format_minutes};
use anyhow::{anyhow, bail, Context, Result};
use std::io::Write;
use std::time::Duration;

/// Prints the chain's usage in `month` (the site's time zone) by member or
/// by site.
pub fn report(ctx: &Ctx, out: &mut dyn Write, month: &str, by: ChainReportBy) -> Result<()> {
    let Some(central) = &ctx.config.central else {
        bail!("--central needs a `[central]` section in the config");
    };
    let (y, m) =
        clock::parse_month(month).ok_or_else(|| anyhow!("--month `{month}` is not YYYY-MM"))?;
    let (start, end) = clock::month_bounds(ctx.config.tz, y, m)
        .ok_or_else(|| anyhow!("--month `{month}` is out of range"))?;
    let query = ReportQuery {
        site_id: central.site_id.clone(),
        start,
        end,
        by,
    };
    let rows = fetch(central, &query).with_context(|| format!("the centre {}", central.url))?;
    let raw = ctx.format != Format::Table;
    match ctx.format {
        Format::Json => write_json(out, &rows)?,
        Format::Csv => table(&rows, by, raw, &ctx.config.currency_symbol).write_csv(out)?,
        Format::Table => {
            let by_name = match by {
                ChainReportBy::Member => "member",
                ChainReportBy::Site => "site",
            };
            writeln!(out, "Usage in {month} across the chain by {by_name}")?;
            if rows.is_empty() {
                writeln!(out, "(no usage this month)")?;
            } else {
                table(&rows, by, raw, &ctx.config.currency_symbol).write(out)?;
            }
        }
    }
    Ok(())
}

/// The report's table: raw columns name their unit (CSV), as `tallyd
/// report`'s do.
fn table(rows: &[ChainReportRow], by: ChainReportBy, raw: bool, sym: &str) -> Table {
    let key = match by {
        ChainReportBy::Member => "member",
        ChainReportBy::Site => "site",
    };
    let header = if raw {
        [
            key,
            "usages",
            "printing_cents",
            "minutes",
            "open_holds",
            "refunds",
        ]
    } else {
        [key, "usages", "printing", "time", "open holds", "refunds"]
    };
    let mut t = Table::new(header);
    for r in rows {
        let (money, time) = if raw {
            (r.printing_cents.to_string(), r.minutes.to_string())
        } else {
            (
                format_cents(sym, r.printing_cents),
                format_minutes(r.minutes),
            )
        };
        t.push(vec![
            r.key.clone(),
            r.usages.to_string(),
            money,
            time,
            r.open_holds.to_string(),
            r.refunds.to_string(),
        ]);
    }
    t
}

fn fetch(cfg: &CentralConfig, q: &ReportQuery) -> Result<Vec<ChainReportRow>> {
    let by = match q.by {
        ChainReportBy::Member => "member",
        ChainReportBy::Site => "site",
    };
    let (start, end) = (q.start.to_string(), q.end.to_string());
    get_json(
        cfg,
        "/v1/report",
        &[
            ("site_id", q.site_id.as_str()),
            ("start", &start),
            ("end", &end),
            ("by", by),
        ],
    )
    .context("not a report")
}

/// One authenticated GET to the centre ([`client::get_json`]), from the
/// command line: waits up to 30 s.
pub(super) fn get_json<T: serde::de::DeserializeOwned>(
    cfg: &CentralConfig,
    path: &str,
    query: &[(&str, &str)],
) -> Result<T> {
    super::block_on(client::get_json(cfg, path, query, Duration::from_secs(30)))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, usages: i64, cents: i64, refunds: i64) -> ChainReportRow {
        ChainReportRow {
            key: key.into(),
            usages,
            printing_cents: cents,
            minutes: 0,
            open_holds: 0,
            refunds,
        }
    }

    #[test]
    fn the_chains_table_shows_money_and_time_and_csv_raw_units() {
        let rows = [row("ber-1", 2, 10, 1), row("ber-2", 2, 70, 0)];
        let mut text = Vec::new();
        table(&rows, ChainReportBy::Site, false, "$")
            .write(&mut text)
            .expect("table");
        assert_eq!(
            String::from_utf8(text).expect("utf-8"),
            "site   usages  printing    time  open holds  refunds\n\
             ber-1       2     $0.10  0h 00m           0        1\n\
             ber-2       2     $0.70  0h 00m           0        0\n"
        );
        let mut csv = Vec::new();
        table(&rows, ChainReportBy::Site, true, "$")
            .write_csv(&mut csv)
            .expect("csv");
        assert_eq!(
            String::from_utf8(csv).expect("utf-8"),
            "site,usages,printing_cents,minutes,open_holds,refunds\nber-1,2,10,0,0,1\nber-2,2,70,0,0,0\n"
        );
    }
}
