//! `tallyd review`: the jobs set aside because their counts made no sense,
//! and the manager's word on each: charge it (at the impressions its
//! document accounts for, or as many as the manager says) or waive it.

use super::output::{write_json, Format, Table};
use super::Ctx;
use crate::clock;
use crate::config::MAX_JOB_IMPRESSIONS_LIMIT;
use crate::ledger::jobs::review::{self, Review};
use crate::ledger::jobs::Recorded;
use crate::ledger::Ledger;
use crate::money::format_cents;
use anyhow::{anyhow, Result};
use std::io::Write;

/// What a manager does with a job in review.
#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Charge it: at the impressions its document accounts for, or `--impressions N`.
    Charge {
        key: String,
        #[arg(long)]
        impressions: Option<i64>,
        #[arg(long, default_value = "charged after review")]
        reason: String,
    },
    /// Charge nothing for it; a hold it had is given back.
    Waive {
        key: String,
        #[arg(long)]
        reason: String,
    },
}

fn open_ledger(ctx: &Ctx) -> Result<Ledger> {
    if !ctx.ledger.exists() {
        return Err(crate::ledger::LedgerError::NotFound(ctx.ledger.clone()).into());
    }
    Ok(super::backup::open_for_writing(ctx)?)
}

/// Lists the jobs in review (with `all`, resolved ones too).
pub fn list(ctx: &Ctx, out: &mut dyn Write, all: bool) -> Result<()> {
    let ledger = Ledger::open_read_only(&ctx.ledger, ctx.config.site())?;
    let reviews = review::list(ledger.conn(), !all)?;
    if ctx.format == Format::Json {
        return Ok(write_json(out, &reviews)?);
    }
    let raw = ctx.format == Format::Csv;
    let mut t = Table::new([
        "key", "printer", "job", "user", "member", "reason", "reported", "proposed", "held", "at",
        "outcome",
    ]);
    for r in &reviews {
        t.push(row(ctx, r, raw));
    }
    if raw {
        t.write_csv(out)?;
    } else if reviews.is_empty() {
        writeln!(out, "no jobs in review")?;
    } else {
        t.write(out)?;
    }
    Ok(())
}

fn row(ctx: &Ctx, r: &Review, raw: bool) -> Vec<String> {
    let held = r.held_cents.map_or(String::new(), |c| match raw {
        true => c.to_string(),
        false => format_cents(&ctx.config.currency_symbol, c),
    });
    let at = match raw {
        true => r.at.to_string(),
        false => clock::format_local(ctx.config.tz, r.at),
    };
    vec![
        r.key.clone(),
        r.printer.clone(),
        r.job_id.to_string(),
        r.print_user.clone().unwrap_or_default(),
        r.member.clone().unwrap_or_default(),
        r.reason.clone(),
        r.reported.clone(),
        r.proposed.map_or(String::new(), |n| n.to_string()),
        held,
        at,
        r.outcome.clone().unwrap_or_else(|| "open".into()),
    ]
}

pub fn act(ctx: &Ctx, out: &mut dyn Write, action: &Action) -> Result<()> {
    let mut ledger = open_ledger(ctx)?;
    match action {
        Action::Charge {
            key,
            impressions,
            reason,
        } => {
            let r = review::get(ledger.conn(), key)?;
            let (n, cents) = review::charge_of(&ctx.config.printers, &r, *impressions)
                .map_err(|e| match e {
                    review::PriceError::SizeUnknown(_) => anyhow!(
                        "the printer did not say how big `{key}` is: give --impressions N"
                    ),
                    review::PriceError::OutOfRange => anyhow!(
                        "--impressions must be from 1 to {MAX_JOB_IMPRESSIONS_LIMIT} (waive a job that printed nothing)"
                    ),
                    e => anyhow!(e),
                })?;
            let recorded =
                ledger.write(|c, s| review::charge(c, s, key, n, cents, reason, ctx.now))?;
            let member = member_of(&recorded).unwrap_or_default();
            tracing::info!(key = %key, printer = %r.printer, job_id = r.job_id, member = %member,
                impressions = n, cents, reason = %reason, "review charged");
            let amount = format_cents(&ctx.config.currency_symbol, cents);
            writeln!(
                out,
                "charged {key}: {n} impressions, {amount}{}",
                to(&member)
            )?;
        }
        Action::Waive { key, reason } => {
            let r = review::get(ledger.conn(), key)?;
            ledger.write(|c, _| review::waive(c, key, reason, ctx.now))?;
            tracing::info!(key = %key, printer = %r.printer, job_id = r.job_id, reason = %reason, "review waived");
            writeln!(out, "waived {key}: nothing charged")?;
        }
    }
    Ok(())
}

fn member_of(recorded: &Recorded) -> Option<String> {
    match recorded {
        Recorded::Charged { member, .. } => member.clone(),
        Recorded::Settled { member, .. } | Recorded::Voided { member, .. } => Some(member.clone()),
        _ => None,
    }
}

fn to(member: &str) -> String {
    if member.is_empty() {
        " (unattributed: no member has its print user name)".into()
    } else {
        format!(" to {member}")
    }
}
