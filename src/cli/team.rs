//! `balance --team`, `statement --team`, and the pool under a member's
//! `balance`: read-only views of teams.

use super::output::{write_json, Format, Table};
use super::read::{open, statement_days};
use super::Ctx;
use crate::clock;
use crate::ledger::query::team::{pool_available, team_balance, team_statement, PoolLine};
use crate::ledger::query::Balance;
use crate::ledger::PRINTING;
use crate::money::{format_cents, format_minutes};
use anyhow::Result;
use rusqlite::Connection;
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

/// Under a balance table: per team member and credit, what the pool adds.
pub(super) fn write_pools(ctx: &Ctx, out: &mut dyn Write, balances: &[Balance]) -> Result<()> {
    let mut t = Table::new(["member", "team", "credit", "from the pool"]);
    for b in balances {
        let Some(p) = &b.pool else { continue };
        if p.credits.is_empty() {
            t.push(vec![
                b.member.clone(),
                p.team.clone(),
                "-".into(),
                "nothing".into(),
            ]);
        }
        for (credit, n) in &p.credits {
            t.push(vec![
                b.member.clone(),
                p.team.clone(),
                credit.clone(),
                amount(ctx, credit, *n),
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

/// `tallyd statement --team T`.
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
    let lines = team_statement(ledger.conn(), team, start, end)?;
    match ctx.format {
        Format::Json => write_json(out, &lines)?,
        Format::Csv => draws_table(ctx, &lines, true).write_csv(out)?,
        Format::Table => {
            writeln!(out, "Pool draws of team {team}, {from_day} to {to_day}")?;
            if lines.is_empty() {
                writeln!(out, "(no draws in this period)")?;
            } else {
                draws_table(ctx, &lines, false).write(out)?;
            }
        }
    }
    Ok(())
}

fn draws_table(ctx: &Ctx, lines: &[PoolLine], raw: bool) -> Table {
    let mut t = Table::new([
        if raw { "at" } else { "date" },
        "member",
        "kind",
        "credit",
        "from",
        "lot",
        "amount",
        "key",
    ]);
    for l in lines {
        t.push(vec![
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
        ]);
    }
    t
}
