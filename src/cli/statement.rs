//! `tallyd statement MEMBER`: a member's statement, streamed. Its lines are
//! written as the ledger hands them over, never all held: CSV and JSON in
//! one pass, a table in two (the first measures its columns). Everything is
//! read in one snapshot, so both passes and the balances agree while the
//! daemon writes.

use super::output::{Format, Layout, Streamed, Walk};
use super::read::{balance_table, open};
use super::Ctx;
use crate::clock;
use crate::ledger::query::{self, StatementEnds, StatementLine};
use crate::ledger::Ts;
use crate::money::{format_cents, format_minutes};
use anyhow::{anyhow, Result};
use serde::ser::SerializeStruct;
use serde::Serializer;
use std::io::Write;

pub fn statement(
    ctx: &Ctx,
    out: &mut dyn Write,
    member: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<()> {
    let tz = ctx.config.tz;
    let (from_day, to_day) = statement_days(ctx, from, to)?;
    let start = clock::local_midnight(tz, from_day);
    let end = clock::local_midnight(tz, to_day.succ_opt().unwrap_or(to_day));
    let ledger = open(ctx)?;
    let conn = ledger.conn();
    let _snapshot = conn.unchecked_transaction()?;
    let ends = query::statement_ends(conn, member, start, end)?;
    let lines = |emit: &mut dyn FnMut(StatementLine) -> Result<()>| {
        query::statement_lines(conn, &ends.member, start, end, emit)
    };
    match ctx.format {
        Format::Json => write_json(out, &ends, (start, end), &lines),
        Format::Csv => write_csv(ctx, out, &lines),
        Format::Table => {
            writeln!(
                out,
                "Statement for {} ({}), {} to {}",
                ends.member, ends.name, from_day, to_day
            )?;
            writeln!(out, "Opening balance:")?;
            balance_table(ctx, std::slice::from_ref(&ends.opening), false).write(out)?;
            writeln!(out)?;
            write_table(ctx, out, &lines)?;
            writeln!(out)?;
            writeln!(out, "Closing balance:")?;
            balance_table(ctx, std::slice::from_ref(&ends.closing), false).write(out)?;
            Ok(())
        }
    }
}

/// Walks a statement's lines, handing each to its argument.
type Lines<'a> = Walk<'a, StatementLine>;

fn parse_day(ctx: &Ctx, flag: &str, text: &str) -> Result<chrono::NaiveDate> {
    let _ = ctx;
    clock::parse_date(text).ok_or_else(|| anyhow!("{flag} `{text}` is not a date (YYYY-MM-DD)"))
}

/// A statement's first and last day: `--from` (default: the first of this
/// month) and `--to` (default: today), in order.
pub(super) fn statement_days(
    ctx: &Ctx,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(chrono::NaiveDate, chrono::NaiveDate)> {
    let today = clock::local_date(ctx.config.tz, ctx.now);
    let from_day = match from {
        Some(t) => parse_day(ctx, "--from", t)?,
        None => chrono::Datelike::with_day(&today, 1).unwrap_or(today),
    };
    let to_day = match to {
        Some(t) => parse_day(ctx, "--to", t)?,
        None => today,
    };
    if to_day < from_day {
        return Err(anyhow!("--to {to_day} is before --from {from_day}"));
    }
    Ok((from_day, to_day))
}

const CSV_HEADER: [&str; 8] = [
    "at",
    "kind",
    "credit",
    "amount",
    "overage",
    "unit",
    "description",
    "key",
];

/// Statement lines for CSV: RFC 3339 times, integer amounts and their unit.
fn write_csv(ctx: &Ctx, out: &mut dyn Write, lines: &Lines<'_>) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(CSV_HEADER)?;
    lines(&mut |l| {
        w.write_record([
            clock::format_rfc3339(ctx.config.tz, l.at),
            l.kind,
            l.credit,
            l.amount.to_string(),
            l.overage.to_string(),
            l.unit,
            l.description,
            l.usage_key.unwrap_or_default(),
        ])?;
        Ok(())
    })?;
    w.flush()?;
    Ok(())
}

const TABLE_HEADER: [&str; 7] = [
    "date",
    "kind",
    "credit",
    "amount",
    "overage",
    "description",
    "key",
];

/// Statement lines for people, aligned: one pass measures the columns,
/// a second writes the lines.
fn write_table(ctx: &Ctx, out: &mut dyn Write, lines: &Lines<'_>) -> Result<()> {
    let mut layout = Layout::new(&TABLE_HEADER);
    lines(&mut |l| {
        layout.measure(&table_row(ctx, l));
        Ok(())
    })?;
    if layout.is_empty() {
        writeln!(out, "(no changes in this period)")?;
        return Ok(());
    }
    layout.write_header(out)?;
    lines(&mut |l| Ok(layout.write_row(out, &table_row(ctx, l))?))
}

/// A statement line for people: local time, money and hours, no overage
/// shown where there was none.
fn table_row(ctx: &Ctx, l: StatementLine) -> Vec<String> {
    let sym = &ctx.config.currency_symbol;
    let amount = |n: i64| {
        if l.unit == "cents" {
            format_cents(sym, n)
        } else {
            format_minutes(n)
        }
    };
    vec![
        clock::format_local(ctx.config.tz, l.at),
        l.kind.clone(),
        l.credit.clone(),
        amount(l.amount),
        if l.overage == 0 {
            String::new()
        } else {
            amount(l.overage)
        },
        l.description.clone(),
        l.usage_key.clone().unwrap_or_default(),
    ]
}

/// The statement as pretty JSON, its `lines` written one by one as they
/// are read: the same document `query::Statement` serializes to.
fn write_json(
    out: &mut dyn Write,
    ends: &StatementEnds,
    (from, to): (Ts, Ts),
    lines: &Lines<'_>,
) -> Result<()> {
    let mut json = serde_json::Serializer::pretty(&mut *out);
    let mut doc = json.serialize_struct("Statement", 7)?;
    doc.serialize_field("member", &ends.member)?;
    doc.serialize_field("name", &ends.name)?;
    doc.serialize_field("from", &from)?;
    doc.serialize_field("to", &to)?;
    doc.serialize_field("opening", &ends.opening)?;
    doc.serialize_field("lines", &Streamed::new(lines))?;
    doc.serialize_field("closing", &ends.closing)?;
    SerializeStruct::end(doc)?;
    writeln!(out)?;
    Ok(())
}
