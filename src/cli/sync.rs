//! `tallyd sync [--dry-run]`: one sync of the central grants file.

use super::output::{write_json, Format, Table};
use super::sync_output::SyncOutput;
use super::Ctx;
use crate::clock;
use crate::grants::{self, source};
use crate::ledger::Ledger;
use anyhow::{anyhow, Result};
use std::io::Write;
use std::time::Duration;

pub fn sync(ctx: &Ctx, out: &mut dyn Write, source_arg: Option<&str>, dry_run: bool) -> Result<()> {
    // The config's credential and ca_file go only to the config's URL.
    let (source, timeout, access) = match (source_arg, &ctx.config.grants) {
        (Some(s), g) => (
            s.to_string(),
            g.as_ref().map_or(Duration::from_secs(10), |g| g.timeout),
            g.as_ref()
                .filter(|g| g.source == s)
                .map(source::Access::of)
                .unwrap_or_default(),
        ),
        (None, Some(g)) => (g.source.clone(), g.timeout, source::Access::of(g)),
        (None, None) => {
            return Err(anyhow!(
                "the config has no [grants] source (or pass --source PATH|URL)"
            ))
        }
    };
    let src = source::Source::parse(&source);
    let mut ledger = if dry_run && !ctx.ledger.exists() {
        Ledger::open(std::path::Path::new(":memory:"), ctx.config.site())?
    } else {
        super::backup::open_for_writing(ctx)?
    };
    let last = grants::last_good(ledger.conn(), &src.name())?;
    let grants::Fetched {
        name,
        text,
        validators,
        catalog,
    } = super::block_on(grants::fetch(&src, access, last, timeout))??;
    let now = ctx.now;
    let report = ledger.write(|conn, site| {
        grants::apply(
            conn,
            site.tz,
            &catalog,
            &name,
            &text,
            &validators,
            now,
            dry_run,
        )
    })?;
    let c = report.counts;
    if !dry_run {
        tracing::info!(source = %report.source, digest = %report.digest, issued = c.issued, adjusted = c.adjusted,
            voided = c.voided, closed = c.closed, members = catalog.members.len(), "grants sync");
        crate::grants::log_overridden(&report);
    }
    let output = SyncOutput::new(
        &report.plan,
        dry_run,
        &report.source,
        &report.digest,
        catalog.members.len(),
    );
    match ctx.format {
        Format::Json => write_json(out, &output)?,
        Format::Csv => {
            let mut t = Table::new([
                "action",
                "member",
                "credit",
                "amount",
                "valid_from",
                "expires_at",
                "what",
            ]);
            output.rows().into_iter().for_each(|r| t.push(r));
            t.write_csv(out)?;
        }
        Format::Table => {
            let verb = if dry_run { "would issue" } else { "issued" };
            writeln!(
                out,
                "{} {verb} {} lots, adjusted {}, voided {}, closed {} members ({} members in file, digest {})",
                if dry_run { "dry run:" } else { "synced:" },
                c.issued, c.adjusted, c.voided, c.closed, catalog.members.len(), &report.digest[..12]
            )?;
            if dry_run {
                dry_run_details(ctx, out, &report.plan)?;
            }
        }
    }
    Ok(())
}

fn dry_run_details(
    ctx: &Ctx,
    out: &mut dyn Write,
    plan: &grants::reconcile::SyncPlan,
) -> Result<()> {
    let tz = ctx.config.tz;
    let sym = &ctx.config.currency_symbol;
    let show = |credit: &str, n: i64| {
        let unit = if credit == crate::ledger::PRINTING {
            crate::money::Unit::Cents
        } else {
            crate::money::Unit::Minutes
        };
        crate::money::format_amount(sym, unit, n)
    };
    for (member, issues) in plan.issues_by_member() {
        for i in issues {
            let g = &i.grant;
            let until = g
                .expires_at
                .map(|e| clock::format_local(tz, e))
                .unwrap_or_else(|| "never".into());
            writeln!(
                out,
                "  issue   {member}: {} {} ({}), valid {} until {until}",
                show(&g.credit, g.amount),
                g.credit,
                g.note,
                clock::format_local(tz, g.valid_from)
            )?;
        }
    }
    for e in &plan.edits {
        writeln!(
            out,
            "  adjust  {}: account grant {} {} -> {}",
            e.member,
            e.after.id,
            show(&e.after.credit, e.before.amount),
            show(&e.after.credit, e.after.amount)
        )?;
    }
    for v in &plan.voids {
        writeln!(
            out,
            "  void    {}: account grant {} (lot {})",
            v.member, v.before.id, v.lot
        )?;
    }
    for m in &plan.closes {
        writeln!(out, "  close   {m}: removed from the grants file")?;
    }
    for t in crate::grants::reconcile::team_changes::team_changes(&plan.changes) {
        writeln!(out, "  team    {}", t.describe())?;
    }
    Ok(())
}
