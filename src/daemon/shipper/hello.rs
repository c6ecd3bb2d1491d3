//! The shipper's hello: where the site's outbox stands, the epoch the
//! centre answers with, and, for a ledger `tallyd restore` marked, what it
//! lost since its backup imported from the centre (multi-site.md 3.8; see
//! [`outbox_import`]).

use super::{post_json, ShipError};
use crate::central::protocol::{Hello, LostEntry, LostQuery, Welcome};
use crate::central::store::LOST_PAGE;
use crate::config::CentralConfig;
use crate::ledger::outbox::{self, Position};
use crate::ledger::outbox_import::{self, Imported, Lost};
use crate::ledger::writer::WriterHandle;
use crate::site::LiveSite;
use std::path::PathBuf;

/// What a restored ledger needs at its first hello: the mark `tallyd
/// restore` left, and the site's settings to charge the imported usages.
pub(super) struct Restore {
    pub mark: PathBuf,
    pub site: LiveSite,
}

/// Says hello; imports what a restored ledger lost and moves to a new
/// epoch, if the centre gives one, in one transaction. Returns the new
/// epoch, if any.
pub(super) async fn greet(
    http: &reqwest::Client,
    writer: &WriterHandle,
    cfg: &CentralConfig,
    restore: &Restore,
    at: &Position,
) -> Result<Option<i64>, ShipError> {
    let hello = Hello {
        site_id: at.site_id.clone(),
        epoch: at.epoch,
        last_seq: at.last_seq,
    };
    let url = format!("{}/v1/hello", cfg.url);
    let resp = post_json(http, cfg, url, &hello)
        .await?
        .error_for_status()?;
    let w: Welcome = serde_json::from_slice(&resp.bytes().await?)?;
    let restored = restore.mark.exists();
    let lost = match restored {
        true => fetch_lost(http, cfg, at).await?,
        false => Vec::new(),
    };
    let new_epoch = (w.epoch != at.epoch).then_some(w.epoch);
    let site = restore.site.get();
    let imported = writer
        .call_async(move |c| {
            let imported = outbox_import::import(c, &site, &lost)?;
            if let Some(e) = new_epoch {
                outbox::rebase(c, e)?;
                crate::ledger::escrow::forsake(c, chrono::Utc::now().timestamp())?;
            }
            Ok(imported)
        })
        .await?;
    if restored {
        imported_line(at, imported);
        if let Err(e) = std::fs::remove_file(&restore.mark) {
            tracing::warn!(path = %restore.mark.display(), error = %e,
                "cannot remove the restored mark; the next start imports again (nothing twice)");
        }
    }
    Ok(new_epoch)
}

/// Every entry the centre holds from this site after what the ledger
/// knows was acknowledged, page by page (what a restored ledger lost, and
/// what it still holds, which the import finds present).
async fn fetch_lost(
    http: &reqwest::Client,
    cfg: &CentralConfig,
    at: &Position,
) -> Result<Vec<Lost>, ShipError> {
    let mut from = (at.epoch, at.acked_seq);
    let mut lost = Vec::new();
    loop {
        let q = LostQuery {
            site_id: at.site_id.clone(),
            epoch: from.0,
            seq: from.1,
            limit: LOST_PAGE,
        };
        let url = format!("{}/v1/lost", cfg.url);
        let resp = post_json(http, cfg, url, &q).await?.error_for_status()?;
        let entries: Vec<LostEntry> = serde_json::from_slice(&resp.bytes().await?)?;
        let n = entries.len();
        for e in entries {
            from = (e.epoch, e.entry.seq);
            lost.push(Lost {
                kind: e.entry.kind,
                body: e.entry.body,
                at: e.entry.at,
            });
        }
        if (n as i64) < LOST_PAGE {
            return Ok(lost);
        }
    }
}

/// The one line a restored ledger's first hello logs.
fn imported_line(at: &Position, i: Imported) {
    tracing::info!(
        epoch = at.epoch,
        acked_seq = at.acked_seq,
        usages = i.usages,
        resolutions = i.resolutions,
        refunds = i.refunds,
        present = i.present,
        skipped = i.skipped,
        "restored ledger: what it lost since its backup imported from the centre"
    );
}
