//! `balance`, `statement` and `report`: read-only views of the ledger.

use super::output::{write_json, Format, Table};
use super::Ctx;
use crate::clock;
use crate::ledger::query::columns::{report_cells, report_header, ReportUnits};
use crate::ledger::query::{self, Balance, ReportBy};
use crate::ledger::Ledger;
use crate::money::{format_cents, format_minutes};
use anyhow::{anyhow, Result};
use std::collections::BTreeSet;
use std::io::Write;

pub(super) fn open(ctx: &Ctx) -> Result<Ledger> {
    Ok(Ledger::open_read_only(&ctx.ledger, ctx.config.site())?)
}

pub(super) fn balance_table(ctx: &Ctx, balances: &[Balance], raw: bool) -> Table {
    let credits: BTreeSet<&String> = balances
        .iter()
        .flat_map(|b| b.time_minutes.keys())
        .collect();
    let mut header = vec!["member".to_string(), "name".into()];
    if raw {
        header.push("closed".into());
        header.push("printing_cents".into());
        header.extend(credits.iter().map(|c| format!("{c}_minutes")));
        header.push("overage_cents".into());
        header.push("overage_minutes".into());
        header.extend(super::team::pool_csv_header(balances));
    } else {
        header.push("printing".into());
        header.extend(credits.iter().map(|c| c.to_string()));
        header.push("overage owed".into());
    }
    let mut t = Table::new(header);
    let sym = &ctx.config.currency_symbol;
    for b in balances {
        let name = if b.closed && !raw {
            format!("{} (closed)", b.name)
        } else {
            b.name.clone()
        };
        let mut row = vec![b.member.clone(), name];
        if raw {
            row.push(b.closed.to_string());
            row.push(b.printing_cents.to_string());
            row.extend(
                credits
                    .iter()
                    .map(|c| b.time_minutes.get(*c).copied().unwrap_or(0).to_string()),
            );
            row.push(b.overage_cents.to_string());
            row.push(b.overage_minutes.to_string());
            row.extend(super::team::pool_csv_row(balances, b));
        } else {
            row.push(format_cents(sym, b.printing_cents));
            row.extend(
                credits
                    .iter()
                    .map(|c| format_minutes(b.time_minutes.get(*c).copied().unwrap_or(0))),
            );
            let mut owed = format_cents(sym, b.overage_cents);
            if b.overage_minutes != 0 {
                owed.push_str(&format!(" + {}", format_minutes(b.overage_minutes)));
            }
            row.push(owed);
        }
        t.push(row);
    }
    t
}

pub fn balance(
    ctx: &Ctx,
    out: &mut dyn Write,
    member: Option<&str>,
    at: Option<&str>,
) -> Result<()> {
    let ledger = open(ctx)?;
    let now = at.is_none();
    // Now: what the next charge can use. A past instant: rebuilt from history.
    let (at, mut balances) = match at {
        Some(text) => {
            let at = clock::parse_datetime(ctx.config.tz, text).ok_or_else(|| {
                anyhow!("--at `{text}` is not a date (YYYY-MM-DD) or date-time (YYYY-MM-DD HH:MM)")
            })?;
            (at, query::balances(ledger.conn(), member, at)?)
        }
        None => (
            ctx.now,
            query::balances_now(ledger.conn(), member, ctx.now)?,
        ),
    };
    if now {
        super::team::add_pools(ctx, ledger.conn(), &mut balances)?;
    }
    match ctx.format {
        Format::Json => write_json(out, &balances)?,
        Format::Csv => balance_table(ctx, &balances, true).write_csv(out)?,
        Format::Table => {
            writeln!(
                out,
                "Balances at {}",
                clock::format_local(ctx.config.tz, at)
            )?;
            balance_table(ctx, &balances, false).write(out)?;
            write_next_expiries(ctx, out, &balances)?;
            super::team::write_pools(ctx, out, &balances)?;
        }
    }
    Ok(())
}

/// Under the table: per member and credit, what expires next and when.
fn write_next_expiries(ctx: &Ctx, out: &mut dyn Write, balances: &[Balance]) -> Result<()> {
    let mut t = Table::new(["member", "credit", "expires", "next to expire"]);
    for b in balances {
        for e in &b.next_expiry {
            let amount = if e.credit == crate::ledger::PRINTING {
                format_cents(&ctx.config.currency_symbol, e.amount)
            } else {
                format_minutes(e.amount)
            };
            t.push(vec![
                b.member.clone(),
                e.credit.clone(),
                clock::format_local(ctx.config.tz, e.at),
                amount,
            ]);
        }
    }
    if !t.rows.is_empty() {
        writeln!(out)?;
        t.write(out)?;
    }
    Ok(())
}

pub fn report(ctx: &Ctx, out: &mut dyn Write, month: &str, by: ReportBy) -> Result<()> {
    let (y, m) =
        clock::parse_month(month).ok_or_else(|| anyhow!("--month `{month}` is not YYYY-MM"))?;
    let (start, end) = clock::month_bounds(ctx.config.tz, y, m)
        .ok_or_else(|| anyhow!("--month `{month}` is out of range"))?;
    let ledger = open(ctx)?;
    let rows = query::report(ledger.conn(), start, end, by)?;
    let units = ReportUnits {
        raw: ctx.format != Format::Table,
        sym: &ctx.config.currency_symbol,
    };
    match ctx.format {
        Format::Json => write_json(out, &rows)?,
        Format::Csv | Format::Table => {
            let mut t = Table::new(report_header(by, units.raw));
            for r in &rows {
                t.push(report_cells(by, r, &units));
            }
            if ctx.format == Format::Csv {
                t.write_csv(out)?;
            } else {
                writeln!(
                    out,
                    "Usage in {month} by {}",
                    format!("{by:?}").to_lowercase()
                )?;
                if rows.is_empty() {
                    writeln!(out, "(no usage this month)")?;
                } else {
                    t.write(out)?;
                }
            }
        }
    }
    Ok(())
}

/// `tallyd cards`: recent unknown cards (whole ids, for enrolment).
pub fn cards(ctx: &Ctx, out: &mut dyn Write, days: i64) -> Result<()> {
    let ledger = open(ctx)?;
    let since = days
        .checked_mul(86_400)
        .and_then(|secs| ctx.now.checked_sub(secs))
        .ok_or_else(|| anyhow::anyhow!("--days {days} is too many days back"))?;
    let rows = query::unknown_cards(ledger.conn(), since)?;
    match ctx.format {
        Format::Json => write_json(out, &rows)?,
        _ => {
            let mut t = Table::new(["card", "reader", "last seen", "taps"]);
            for r in &rows {
                t.push(vec![
                    r.card.clone(),
                    r.reader.clone(),
                    clock::format_local(ctx.config.tz, r.last_seen),
                    r.taps.to_string(),
                ]);
            }
            if ctx.format == Format::Csv {
                t.write_csv(out)?;
            } else if rows.is_empty() {
                writeln!(out, "(no unknown cards in the last {days} days)")?;
            } else {
                t.write(out)?;
            }
        }
    }
    Ok(())
}

/// `tallyd lots MEMBER`: every lot of the member, with its source, its
/// validity and what is left.
pub fn lots(ctx: &Ctx, out: &mut dyn Write, member: &str) -> Result<()> {
    let ledger = open(ctx)?;
    let lots = query::lots_of(ledger.conn(), member, ctx.now)?;
    if ctx.format == Format::Json {
        return Ok(write_json(out, &lots)?);
    }
    let raw = ctx.format == Format::Csv;
    let mut t = Table::new([
        "lot",
        "credit",
        "source",
        "granted",
        "remaining",
        "valid_from",
        "expires",
        "status",
        "source_key",
    ]);
    let tz = ctx.config.tz;
    let when = |ts: Option<i64>| match (ts, raw) {
        (None, _) => String::new(),
        (Some(ts), true) => ts.to_string(),
        (Some(ts), false) => clock::format_local(tz, ts),
    };
    for l in &lots {
        let amount = |n: i64| match (raw, l.credit == crate::ledger::PRINTING) {
            (true, _) => n.to_string(),
            (false, true) => format_cents(&ctx.config.currency_symbol, n),
            (false, false) => format_minutes(n),
        };
        t.push(vec![
            l.lot.to_string(),
            l.credit.clone(),
            l.source.clone(),
            amount(l.granted),
            amount(l.remaining),
            when(Some(l.valid_from)),
            when(l.expires_at),
            l.status.as_str().to_string(),
            l.source_key.clone(),
        ]);
    }
    if raw {
        t.write_csv(out)?;
    } else {
        writeln!(
            out,
            "Lots of {member} at {}",
            clock::format_local(tz, ctx.now)
        )?;
        t.write(out)?;
    }
    Ok(())
}
