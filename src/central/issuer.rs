//! The centre's grants worker: reads the chain's grants file at start and
//! every `sync_every`, issues its lots once ([`super::issue`]), and expires
//! what is left of lots past their date. A file that does not parse
//! changes nothing (the lots stay as the last good file left them) and is
//! an ERROR once per distinct content; a good one again is one line.

use super::issue;
use deadpool_postgres::Pool;
use std::path::PathBuf;
use std::time::Duration;

pub async fn run(
    pool: Pool,
    grants: PathBuf,
    tz: chrono_tz::Tz,
    every: Duration,
    clock: crate::clock::Clock,
) {
    let mut failing: Option<String> = None;
    loop {
        let outcome = once(&pool, &grants, tz, clock.wall()).await;
        match outcome {
            Ok(line) => {
                if failing.take().is_some() {
                    tracing::info!(file = %grants.display(), "central grants sync works again");
                }
                if let Some((c, expired)) = line {
                    tracing::info!(file = %grants.display(), issued = c.issued,
                        adjusted = c.adjusted, voided = c.voided, closed = c.closed,
                        members = c.members, expired, "central grants sync");
                }
            }
            Err(e) => {
                let why = crate::error_chain(&*e);
                if failing.as_deref() != Some(why.as_str()) {
                    tracing::error!(file = %grants.display(), error = %why,
                        "central grants sync failed; the chain's lots stay as they are");
                    failing = Some(why);
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// One sync; `None` when it changed nothing (no line then).
async fn once(
    pool: &Pool,
    grants: &std::path::Path,
    tz: chrono_tz::Tz,
    now: i64,
) -> anyhow::Result<Option<(crate::grants::reconcile::Counts, u64)>> {
    let text = tokio::fs::read_to_string(grants).await?;
    let name = grants.display().to_string();
    let catalog = crate::grants::parse(&name, &text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut client = pool.get().await?;
    let counts = issue::sync(&mut client, &catalog, tz, now).await?;
    let expired = issue::expire(&mut client, now).await?;
    let changed =
        counts.issued + counts.adjusted + counts.voided + counts.closed > 0 || expired > 0;
    Ok(changed.then_some((counts, expired)))
}
