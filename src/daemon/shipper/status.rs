//! The shipper's word to the centre about where the outbox stands (`POST
//! /v1/status`), about every half minute while the centre is reached, also
//! when nothing is shipped: the centre's metrics show from it each site's
//! backlog and how long ago it was heard.

use super::{post_json, ShipError};
use crate::central::protocol::SiteStatus;
use crate::config::CentralConfig;
use crate::ledger::outbox;
use crate::ledger::writer::WriterHandle;
use std::time::Duration;

/// How often the shipper tells the centre where it stands.
pub(super) const EVERY: Duration = Duration::from_secs(30);

/// Sends where the outbox stands, at `now` on the site's clock.
pub(super) async fn tell(
    http: &reqwest::Client,
    writer: &WriterHandle,
    cfg: &CentralConfig,
    now: i64,
) -> Result<(), ShipError> {
    let read = writer
        .call_async(|c| Ok((outbox::position(c)?, outbox::backlog(c)?)))
        .await?;
    let (Some(at), Some(backlog)) = read else {
        return Ok(());
    };
    let status = SiteStatus {
        site_id: at.site_id,
        epoch: at.epoch,
        last_seq: at.last_seq,
        acked_seq: at.acked_seq,
        oldest_at: backlog.oldest_at,
        site_time: now,
    };
    let url = format!("{}/v1/status", cfg.url);
    post_json(http, cfg, url, &status)
        .await?
        .error_for_status()?;
    Ok(())
}
