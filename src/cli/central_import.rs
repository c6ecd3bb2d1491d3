//! `tallyd central import`: a single-site ledger joins its chain with its
//! history. Its manual grants (`tallyd grant`, the console's), which no
//! grants file holds, become chain lots first (the centre must be
//! reachable then; `central::site_grants`); the lots its grants file gave
//! the centre issues itself from the chain's grants file. Then every
//! usage, hold resolution and refund written before the outbox existed
//! gets its outbox entry, ahead of newer ones (`ledger::outbox_backfill`);
//! the daemon's shipper then sends them, and each draws on the chain's lots.

use super::output::{write_json, Format};
use super::Ctx;
use crate::central::protocol::{GrantsImport, GrantsImported, SiteGrant};
use crate::config::CentralConfig;
use crate::ledger::files::lock_for_daemon;
use crate::ledger::lots::{manual_grants, GrantRequest};
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
    let grants = manual_grants(ledger.conn())?;
    let carried = carry_grants(central, &grants)
        .context("the manual grants could not be made chain credit; nothing was imported")?;
    let done = ledger.write(|c, _| backfill(c))?;
    let site = central.site_id.as_str();
    tracing::info!(
        site,
        epoch = done.epoch,
        added = done.added,
        moved = done.moved,
        grants_added = carried.added,
        grants_already = carried.already,
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
                "grants_added": carried.added,
                "grants_already": carried.already,
            }),
        )?,
        _ => said(out, site, &done, &carried)?,
    }
    Ok(())
}

/// Makes `grants` chain lots at the centre (none: nothing asked).
fn carry_grants(central: &CentralConfig, grants: &[GrantRequest]) -> Result<GrantsImported> {
    if grants.is_empty() {
        return Ok(GrantsImported::default());
    }
    let body = GrantsImport {
        site_id: central.site_id.clone(),
        grants: grants.iter().map(site_grant).collect(),
    };
    super::block_on(crate::central::client::post_json(
        central,
        "/v1/import/grants",
        &body,
        std::time::Duration::from_secs(30),
    ))?
    .with_context(|| format!("the centre {}", central.url))
}

fn site_grant(g: &GrantRequest) -> SiteGrant {
    SiteGrant {
        key: g.source_key.clone(),
        member: g.member.clone(),
        credit: g.credit.clone(),
        amount: g.amount,
        valid_from: g.valid_from,
        expires_at: g.expires_at,
        note: g.note.clone(),
        at: g.at,
    }
}

/// The import's lines, for a person.
fn said(
    out: &mut dyn Write,
    site: &str,
    done: &crate::ledger::outbox_backfill::Backfill,
    carried: &GrantsImported,
) -> Result<()> {
    if carried.added + carried.already > 0 {
        writeln!(
            out,
            "{} manual grants made chain credit ({} were already)",
            carried.added, carried.already
        )?;
    }
    match done.added {
        0 => writeln!(
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
