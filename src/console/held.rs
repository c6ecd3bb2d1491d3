//! Held jobs per printer, for the now page: each held or follow-me queue is
//! asked for its jobs not completed (the `Get-Jobs` a tap sends), and each
//! job waiting held is shown with its owner (the member whose print user
//! name it has) and its estimate at the printer's prices (what a release
//! would hold). A printer that does not answer is shown as such.

use crate::config::{Config, Mode};
use crate::ledger::owners;
use crate::printer::client::PrinterClients;
use crate::printer::jobs::{self, PENDING_HELD};
use crate::printer::requests::{JobsQuery, Which};

/// One held job.
pub struct HeldJob {
    pub id: i32,
    pub name: Option<String>,
    pub user: Option<String>,
    pub member: Option<String>,
    /// Cents a release would hold; `None` if it cannot be priced.
    pub estimate: Option<i64>,
    pub created_at: Option<i64>,
}

/// What one held printer said.
pub struct HeldAt {
    pub printer: String,
    pub jobs: Vec<HeldJob>,
    /// Why it could not be asked, if it could not.
    pub error: Option<String>,
}

/// Asks every held and follow-me printer of `config` for its held jobs.
pub async fn survey(config: &Config, clients: &PrinterClients) -> Vec<HeldAt> {
    let mut out = Vec::new();
    for cfg in config.printers.iter().filter(|p| p.mode != Mode::Direct) {
        let listed = match JobsQuery::new(cfg, Which::NotCompleted) {
            Ok(q) => q.fetch(clients.get(&cfg.id)).await,
            Err(e) => Err(e),
        };
        let (jobs, error) = match listed {
            Ok(jobs) => (jobs, None),
            Err(e) => (Vec::new(), Some(crate::error_chain(&e))),
        };
        let held = jobs
            .into_iter()
            .filter(|j| j.state == PENDING_HELD)
            .map(|j| HeldJob {
                id: j.id,
                name: j.name.clone(),
                user: j.owner(),
                member: None,
                estimate: jobs::estimate_job(cfg, &j).map(|e| e.cents),
                created_at: j.created_at,
            })
            .collect();
        out.push(HeldAt {
            printer: cfg.id.clone(),
            jobs: held,
            error,
        });
    }
    out
}

/// Fills in each held job's member, from its print user name.
pub fn owners_of(
    conn: &rusqlite::Connection,
    held: &mut [HeldAt],
) -> Result<(), crate::ledger::LedgerError> {
    for job in held.iter_mut().flat_map(|h| h.jobs.iter_mut()) {
        if let Some(user) = &job.user {
            job.member = owners::member_of_print_user(conn, user)?;
        }
    }
    Ok(())
}

/// Cancels held job `job_id` at `printer` (Cancel-Job), after checking it
/// is still waiting held there; returns its print user. A held job that was
/// never released has no ledger row: nothing is charged or given back.
pub async fn cancel(
    config: &Config,
    clients: &PrinterClients,
    printer: &str,
    job_id: i32,
) -> Result<Option<String>, String> {
    let cfg = config
        .printers
        .iter()
        .find(|p| p.id == printer && p.mode != Mode::Direct)
        .ok_or_else(|| format!("`{printer}` is not a held printer in the config"))?;
    let client = clients.get(&cfg.id);
    let listed = JobsQuery::new(cfg, Which::NotCompleted)
        .map_err(|e| crate::error_chain(&e))?
        .fetch(client)
        .await
        .map_err(|e| crate::error_chain(&e))?;
    let job = listed
        .into_iter()
        .find(|j| j.id == job_id && j.state == PENDING_HELD)
        .ok_or_else(|| format!("job {job_id} is not waiting held at {printer} (any more)"))?;
    let request =
        crate::printer::requests::job_request(ipp::prelude::Operation::CancelJob, &cfg.uri, job_id)
            .map_err(|e| crate::error_chain(&e))?;
    client
        .send(&cfg.uri, request, cfg.timeout)
        .await
        .map_err(|e| crate::error_chain(&e))?;
    Ok(job.owner())
}
