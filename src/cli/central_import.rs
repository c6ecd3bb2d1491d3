//! `tallyd central import`: a single-site ledger joins its chain with its
//! history. Every usage, hold resolution and refund written before the
//! outbox existed gets its outbox entry, ahead of newer ones
//! (`ledger::outbox_backfill`); the daemon's shipper then sends them.

use super::output::{write_json, Format};
use super::Ctx;
use crate::ledger::files::lock_for_daemon;
use crate::ledger::outbox_backfill::backfill;
use crate::ledger::LedgerError;
use anyhow::{Context, Result};
use std::io::Write;

/// Back-fills the outbox of the ledger, refused without `[central]` and
/// while the daemon runs (its lock is held here until done, so none starts
/// meanwhile). Idempotent: run again, it adds nothing.
pub fn import(ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    let Some(central) = &ctx.config.central else {
        return Err(LedgerError::OutboxOff.into());
    };
    if !ctx.ledger.exists() {
        return Err(LedgerError::NotFound(ctx.ledger.clone()).into());
    }
    let _lock =
        lock_for_daemon(&ctx.ledger).context("stop the daemon first; nothing was imported")?;
    let mut ledger = super::backup::open_for_writing(ctx)?;
    let done = ledger.write(|c, _| backfill(c))?;
    let site = central.site_id.as_str();
    tracing::info!(
        site,
        epoch = done.epoch,
        added = done.added,
        moved = done.moved,
        "outbox back-filled"
    );
    match ctx.format {
        Format::Json => write_json(
            out,
            &serde_json::json!({
                "site": site,
                "epoch": done.epoch,
                "added": done.added,
                "moved": done.moved,
            }),
        )?,
        _ if done.added == 0 => writeln!(
            out,
            "nothing to import: every usage, hold resolution and refund already has its outbox entry"
        )?,
        _ => writeln!(
            out,
            "imported {} entries into the outbox of site {site} (epoch {}), ahead of {} newer; the daemon ships them when it starts",
            done.added, done.epoch, done.moved
        )?,
    }
    Ok(())
}
