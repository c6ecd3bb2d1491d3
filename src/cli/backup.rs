//! `backup` and `restore`: a checked copy of the live ledger (beside the
//! daemon), the backups there are, and a backup put in place of the
//! ledger (refused while the daemon runs).

use super::output::{write_json, Format, Table};
use super::Ctx;
use crate::clock;
use crate::ledger::backup;
use crate::ledger::{Ledger, LedgerError};
use crate::logging::escape_controls;
use anyhow::Result;
use std::io::Write;
use std::path::Path;

/// The ledger opened for writing, backed up into the configured folder
/// first if its schema is older than this build's.
pub fn open_for_writing(ctx: &Ctx) -> Result<Ledger, LedgerError> {
    let dir = backup::dir(ctx.config.backup.dir.as_deref(), &ctx.ledger);
    let mut ledger = Ledger::open_with_backups(&ctx.ledger, ctx.config.site(), &dir)?;
    if let Some(central) = &ctx.config.central {
        // A chain's site keeps its outbox from its first write on, whether
        // the daemon or this command writes first.
        let site = central.site_id.clone();
        ledger.write(move |conn, _| crate::ledger::outbox::enable(conn, &site))?;
    }
    if let Some(w) = ledger.migration_backup() {
        tracing::info!(file = %w.path.display(), bytes = w.bytes,
            seconds = %format!("{:.2}", w.seconds), schema = w.schema,
            reason = %"before-migration", "backup written");
    }
    Ok(ledger)
}

/// `tallyd backup [--to DIR]`: one backup, checked; in the configured
/// folder (then the oldest beyond `keep` are removed), or in DIR (nothing
/// removed).
pub fn take(ctx: &Ctx, out: &mut dyn Write, to: Option<&Path>) -> Result<()> {
    let dir = backup::dir(to.or(ctx.config.backup.dir.as_deref()), &ctx.ledger);
    let w = backup::take(&ctx.ledger, &dir, ctx.now)?;
    tracing::info!(file = %w.path.display(), bytes = w.bytes,
        seconds = %format!("{:.2}", w.seconds), schema = w.schema, reason = %"command",
        "backup written");
    let removed = match to {
        Some(_) => Vec::new(),
        None => backup::prune(&ctx.ledger, &dir, ctx.config.backup.keep)?,
    };
    if ctx.format == Format::Json {
        let removed: Vec<String> = removed.iter().map(|p| p.display().to_string()).collect();
        write_json(
            out,
            &serde_json::json!({
                "file": w.path.display().to_string(),
                "bytes": w.bytes,
                "schema": w.schema,
                "seconds": w.seconds,
                "checks": w.verdicts,
                "removed": removed,
            }),
        )?;
        return Ok(out.flush()?);
    }
    writeln!(out, "backup written: {}", w.path.display())?;
    writeln!(
        out,
        "{} bytes, schema {}, {:.2} s, checked:",
        w.bytes, w.schema, w.seconds
    )?;
    for v in &w.verdicts {
        writeln!(out, "  ok   {}: {}", v.check, escape_controls(&v.detail))?;
    }
    for path in removed {
        writeln!(
            out,
            "removed (beyond keep = {}): {}",
            ctx.config.backup.keep,
            path.display()
        )?;
    }
    Ok(out.flush()?)
}

/// `tallyd backup --list [--to DIR]`: the backups in the folder, oldest
/// first (not checked: `restore` checks the one it restores).
pub fn list(ctx: &Ctx, out: &mut dyn Write, to: Option<&Path>) -> Result<()> {
    let dir = backup::dir(to.or(ctx.config.backup.dir.as_deref()), &ctx.ledger);
    let found = backup::list(&ctx.ledger, &dir)?;
    let tz = ctx.config.tz;
    if ctx.format == Format::Json {
        let rows: Vec<_> = found
            .iter()
            .map(|b| {
                serde_json::json!({
                    "file": b.path.display().to_string(),
                    "taken": clock::format_rfc3339(tz, b.taken),
                    "schema": b.schema,
                    "bytes": b.bytes,
                })
            })
            .collect();
        write_json(out, &rows)?;
        return Ok(out.flush()?);
    }
    let raw = ctx.format == Format::Csv;
    let mut t = Table::new(["backup", "taken", "schema", "bytes"]);
    for b in &found {
        t.push(vec![
            if raw {
                b.path.display().to_string()
            } else {
                b.name.clone()
            },
            if raw {
                clock::format_rfc3339(tz, b.taken)
            } else {
                clock::format_local(tz, b.taken)
            },
            b.schema.to_string(),
            b.bytes.to_string(),
        ]);
    }
    if raw {
        t.write_csv(out)?;
    } else {
        writeln!(out, "{} ({} backups)", dir.display(), found.len())?;
        t.write(out)?;
    }
    Ok(out.flush()?)
}

/// `tallyd restore FILE`.
pub fn restore(ctx: &Ctx, out: &mut dyn Write, file: &Path) -> Result<()> {
    let r = backup::restore(file, &ctx.ledger, ctx.now)?;
    tracing::info!(backup = %r.from.display(), ledger = %r.ledger.display(), schema = r.schema,
        bytes = r.bytes, moved = %r.moved.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(","),
        "ledger restored");
    if ctx.format == Format::Json {
        let moved: Vec<String> = r.moved.iter().map(|p| p.display().to_string()).collect();
        write_json(
            out,
            &serde_json::json!({
                "restored": r.from.display().to_string(),
                "ledger": r.ledger.display().to_string(),
                "schema": r.schema,
                "bytes": r.bytes,
                "moved_aside": moved,
            }),
        )?;
        return Ok(out.flush()?);
    }
    writeln!(
        out,
        "restored {} ({} bytes, schema {}, checked) to {}",
        r.from.display(),
        r.bytes,
        r.schema,
        r.ledger.display()
    )?;
    if r.moved.is_empty() {
        writeln!(out, "there was no ledger to move aside")?;
    }
    for path in &r.moved {
        writeln!(out, "moved aside: {}", path.display())?;
    }
    Ok(out.flush()?)
}
