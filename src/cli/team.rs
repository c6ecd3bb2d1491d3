//! `balance --team`, `statement --team`, and the pool under a member's
//! `balance`: read-only views of teams.

use super::output::{write_json, Format, Layout, Streamed, Table};
use super::read::open;
use super::statement::statement_days;
use super::Ctx;
use crate::clock;
use crate::ledger::query::team::{pool_available, team_balance, team_statement, PoolLine};
use crate::ledger::query::Balance;
use crate::ledger::PRINTING;
use crate::money::{format_cents, format_minutes};
use anyhow::Result;
use rusqlite::Connection;
use std::collections::BTreeSet;
use std::io::Write;

fn amount(ctx: &Ctx, credit: &str, n: i64) -> String {
    if credit == PRINTING {
        format_cents(&ctx.config.currency_symbol, n)
    } else {
        format_minutes(n)
    }
}

fn limit(ctx: &Ctx, unit_cents: bool, left: Option<i64>) -> String {
    match (left, unit_cents) {
        (None, _) => "no limit".into(),
        (Some(n), true) => format_cents(&ctx.config.currency_symbol, n),
        (Some(n), false) => format_minutes(n),
    }
}

/// Fills in, for each member in a team, what its pool makes available now.
pub(super) fn add_pools(ctx: &Ctx, conn: &Connection, balances: &mut [Balance]) -> Result<()> {
    let month = clock::month_start(ctx.config.tz, ctx.now);
    for b in balances {
        b.pool = pool_available(conn, &b.member, month, ctx.now)?;
    }
    Ok(())
}

/// The pool's credits any of `balances` can draw on, sorted.
fn pool_credit_ids(balances: &[Balance]) -> BTreeSet<&str> {
    balances
        .iter()
        .filter_map(|b| b.pool.as_ref())
        .flat_map(|p| p.credits.keys().map(String::as_str))
        .collect()
}

fn unit_suffix(credit: &str) -> &'static str {
    if credit == PRINTING {
        "cents"
    } else {
        "minutes"
    }
}

/// The pool columns of `balance --csv` (none when no member listed is in a
/// team): the team, what the pool makes available per credit, and the
/// monthly limit left (empty: no limit).
pub(super) fn pool_csv_header(balances: &[Balance]) -> Vec<String> {
    if balances.iter().all(|b| b.pool.is_none()) {
        return Vec::new();
    }
    let mut header = vec!["team".to_string()];
    header.extend(
        pool_credit_ids(balances)
            .into_iter()
            .map(|c| format!("pool_{c}_{}", unit_suffix(c))),
    );
    header.push("pool_limit_left_cents".into());
    header.push("pool_limit_left_minutes".into());
    header
}

/// One member's pool columns, matching [`pool_csv_header`].
pub(super) fn pool_csv_row(balances: &[Balance], b: &Balance) -> Vec<String> {
    if balances.iter().all(|b| b.pool.is_none()) {
        return Vec::new();
    }
    let credits = pool_credit_ids(balances);
    let opt = |o: Option<i64>| o.map_or_else(String::new, |n| n.to_string());
    let Some(p) = &b.pool else {
        return std::iter::repeat_n(String::new(), credits.len() + 3).collect();
    };
    let mut row = vec![p.team.clone()];
    row.extend(
        credits
            .into_iter()
            .map(|c| p.credits.get(c).copied().unwrap_or(0).to_string()),
    );
    row.push(opt(p.limit_left_cents));
    row.push(opt(p.limit_left_minutes));
    row
}

/// Under a balance table: per team member and credit, what the pool adds.
pub(super) fn write_pools(ctx: &Ctx, out: &mut dyn Write, balances: &[Balance]) -> Result<()> {
    let mut t = Table::new(["member", "team", "credit", "from the pool", "limit left"]);
    for b in balances {
        let Some(p) = &b.pool else { continue };
        if p.credits.is_empty() {
            t.push(vec![
                b.member.clone(),
                p.team.clone(),
                "-".into(),
                "nothing".into(),
                String::new(),
            ]);
        }
        for (credit, n) in &p.credits {
            let cents = credit == PRINTING;
            let left = if cents {
                p.limit_left_cents
            } else {
                p.limit_left_minutes
            };
            t.push(vec![
                b.member.clone(),
                p.team.clone(),
                credit.clone(),
                amount(ctx, credit, *n),
                limit(ctx, cents, left),
            ]);
        }
    }
    if !t.rows.is_empty() {
        writeln!(out)?;
        t.write(out)?;
    }
    Ok(())
}

/// `tallyd balance --team T`.
pub fn balance(ctx: &Ctx, out: &mut dyn Write, team: &str) -> Result<()> {
    let ledger = open(ctx)?;
    let month = clock::month_start(ctx.config.tz, ctx.now);
    let tb = team_balance(ledger.conn(), team, month, ctx.now)?;
    if ctx.format == Format::Json {
        write_json(out, &tb)?;
        return Ok(());
    }
    let raw = ctx.format == Format::Csv;
    let mut t = Table::new([
        "member",
        "payer",
        if raw {
            "own_printing_cents"
        } else {
            "own printing"
        },
        if raw { "own_minutes" } else { "own time" },
        if raw {
            "drawn_cents"
        } else {
            "drawn this month"
        },
        if raw { "drawn_minutes" } else { "drawn time" },
        if raw {
            "limit_left_cents"
        } else {
            "limit left"
        },
        if raw {
            "limit_left_minutes"
        } else {
            "time limit left"
        },
    ]);
    for m in &tb.members {
        let minutes: i64 = m.own.time_minutes.values().sum();
        let opt = |o: Option<i64>| o.map_or_else(String::new, |n| n.to_string());
        t.push(if raw {
            vec![
                m.member.clone(),
                m.payer.to_string(),
                m.own.printing_cents.to_string(),
                minutes.to_string(),
                m.drawn_cents.to_string(),
                m.drawn_minutes.to_string(),
                opt(m.limit_left_cents),
                opt(m.limit_left_minutes),
            ]
        } else {
            vec![
                m.member.clone(),
                if m.payer { "yes".into() } else { String::new() },
                format_cents(&ctx.config.currency_symbol, m.own.printing_cents),
                format_minutes(minutes),
                format_cents(&ctx.config.currency_symbol, m.drawn_cents),
                format_minutes(m.drawn_minutes),
                limit(ctx, true, m.limit_left_cents),
                limit(ctx, false, m.limit_left_minutes),
            ]
        });
    }
    if raw {
        return Ok(t.write_csv(out)?);
    }
    writeln!(
        out,
        "Team {} ({}) at {}: payer {}, billing {}, combine {}",
        tb.team,
        tb.name,
        clock::format_local(ctx.config.tz, ctx.now),
        tb.payer,
        tb.billing,
        if tb.combine { "on" } else { "off" }
    )?;
    let pool: Vec<String> = tb
        .pool
        .iter()
        .map(|(c, n)| format!("{c} {}", amount(ctx, c, *n)))
        .collect();
    let pool = if pool.is_empty() {
        "empty".into()
    } else {
        pool.join(", ")
    };
    writeln!(out, "Pool: {pool}")?;
    t.write(out)?;
    Ok(())
}

/// `tallyd statement --team T`: the pool's draws, streamed as the ledger
/// hands them over (a table in two passes, the first measuring its
/// columns), all read in one snapshot.
pub fn statement(
    ctx: &Ctx,
    out: &mut dyn Write,
    team: &str,
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
    let draws =
        |emit: &mut dyn FnMut(PoolLine) -> Result<()>| team_statement(conn, team, start, end, emit);
    match ctx.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &Streamed::new(&draws))?;
            writeln!(out)?;
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut *out);
            w.write_record(draws_header(true))?;
            draws(&mut |l| Ok(w.write_record(draw_row(ctx, &l, true))?))?;
            w.flush()?;
        }
        Format::Table => {
            writeln!(out, "Pool draws of team {team}, {from_day} to {to_day}")?;
            let mut layout = Layout::new(&draws_header(false));
            draws(&mut |l| {
                layout.measure(&draw_row(ctx, &l, false));
                Ok(())
            })?;
            if layout.is_empty() {
                writeln!(out, "(no draws in this period)")?;
            } else {
                layout.write_header(out)?;
                draws(&mut |l| Ok(layout.write_row(out, &draw_row(ctx, &l, false))?))?;
            }
        }
    }
    Ok(())
}

fn draws_header(raw: bool) -> [&'static str; 8] {
    [
        if raw { "at" } else { "date" },
        "member",
        "kind",
        "credit",
        "from",
        "lot",
        "amount",
        "key",
    ]
}

/// A draw as a row: raw (Unix time, integer amount) for CSV, else local
/// time and money or hours.
fn draw_row(ctx: &Ctx, l: &PoolLine, raw: bool) -> Vec<String> {
    vec![
        if raw {
            l.at.to_string()
        } else {
            clock::format_local(ctx.config.tz, l.at)
        },
        l.member.clone(),
        l.kind.clone(),
        l.credit.clone(),
        l.owner.clone(),
        l.lot.to_string(),
        if raw {
            l.amount.to_string()
        } else {
            amount(ctx, &l.credit, l.amount)
        },
        l.usage_key.clone(),
    ]
}
