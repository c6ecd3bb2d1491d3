//! Held release: a member's tap at a held printer's reader releases their
//! held jobs there, each behind a ledger hold that the job's completion
//! settles; and held jobs past the hold timeout are cancelled, free.

use super::client::{IppClient, IppError, PrinterClients};
use super::jobs::{self, Job, PENDING_HELD};
use super::requests::{job_request, move_job_request, JobsQuery, Which};
use super::state;

use crate::clock::Clock;
use crate::config::PrinterConfig;
use crate::error_chain;
use crate::ledger::writer::WriterHandle;
use crate::ledger::{HoldOutcome, Origin, Payable, UsageRequest};
use crate::site::LiveSite;
use futures_util::future::try_join_all;
use ipp::prelude::Operation;

/// What one tap released.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Released {
    /// Job ids released, oldest first.
    pub jobs: Vec<i32>,
    /// The sum of their estimates, in cents.
    pub estimate: i64,
    /// Of `estimate`, what the members' team pool reserved, in cents.
    pub pooled: i64,
    /// Jobs left held, each with why.
    pub kept: Vec<(i32, String)>,
    /// Follow-me jobs among `jobs`, with the queue each was moved from.
    pub moved: Vec<(i32, String)>,
    /// Why the printer could not print (stopped, jammed, out of paper...):
    /// then nothing was released or reserved, and `kept` lists every held
    /// job of the member.
    pub blocked: Option<String>,
}

/// The member's held jobs at `cfg`, oldest first.
pub fn held_jobs_of(jobs: Vec<Job>, users: &[String]) -> Vec<Job> {
    let mut mine: Vec<Job> = jobs
        .into_iter()
        .filter(|j| j.state == PENDING_HELD)
        .filter(|j| j.owner().is_some_and(|o| users.contains(&o)))
        .collect();
    mine.sort_by_key(oldest_first);
    mine
}

/// Where a held job waits: at the tapped printer's own queue, or at a
/// follow-me queue that lists it.
struct Waiting<'a> {
    job: Job,
    follow_me: Option<&'a PrinterConfig>,
}

/// What asking for more credit at a tap came to (a chain site whose
/// lots the centre issues: `daemon::shipper::escrow::asker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoreCredit {
    /// The centre placed more here: hold again.
    Placed,
    /// The centre has no more to place: the overage policy decides.
    NoMore,
    /// The centre could not be reached: a hold (cents) or a room session
    /// (minutes) may go this far beyond credit on the offline allowance.
    Unreachable { allowance: i64 },
}

/// Asks for at least `shortfall` more of `member`'s credit (`printing` in
/// cents, or a time credit id in minutes).
pub type AskCredit = std::sync::Arc<
    dyn Fn(String, String, i64) -> futures_util::future::BoxFuture<'static, MoreCredit>
        + Send
        + Sync,
>;

/// What a tap at `cfg` needs to know from the printers before it knows
/// whose card it was: the printer's state, and the jobs not completed there
/// and at each follow-me queue that lists it. It owns its configs, so a
/// reader may start one as a card's frame begins (see
/// `daemon::taps::Early`).
pub struct Survey {
    cfg: PrinterConfig,
    printer: state::PrinterState,
    own: Vec<Job>,
    elsewhere: Vec<(PrinterConfig, Vec<Job>)>,
}

/// Asks `cfg`'s printer its state and lists the jobs waiting there and at
/// the `follow_me` queues that list `cfg` in their `release_to`, all at
/// once (the state costs a tap no extra round trip; a tap looks its card up
/// meanwhile).
pub async fn survey(
    cfg: PrinterConfig,
    follow_me: Vec<PrinterConfig>,
    clients: PrinterClients,
) -> Result<Survey, IppError> {
    // Each printer through its own client (its ca_file or fingerprint).
    let client = clients.get(&cfg.id);
    let query = JobsQuery::new(&cfg, Which::NotCompleted)?;
    // Every follow-me queue at once: a tap waits for the slowest, not the sum.
    let elsewhere = try_join_all(follow_me.into_iter().map(|fm| {
        let clients = &clients;
        async move {
            let listed = JobsQuery::new(&fm, Which::NotCompleted)?
                .fetch(clients.get(&fm.id))
                .await?;
            Ok::<_, IppError>((fm, listed))
        }
    }));
    let (printer, own, elsewhere) =
        tokio::join!(state::fetch(&cfg, client), query.fetch(client), elsewhere);
    Ok(Survey {
        printer: printer?,
        own: own?,
        elsewhere: elsewhere?,
        cfg,
    })
}

/// Releases `member`'s held jobs found by `survey` at its printer and at
/// the follow-me queues: unless the printer says it cannot print now (see
/// [`state`]), for each job, oldest first, place a hold for its estimate at
/// the printer's prices (the member's overage policy may refuse it, and
/// later, smaller jobs may still fit), move a follow-me job there with
/// `CUPS-Move-Job`, then send Release-Job; a failed move or release voids
/// the hold and the job stays held. Ledger rows are dated by `clock`.
#[allow(clippy::too_many_arguments)]
pub async fn release(
    survey: Survey,
    clients: &PrinterClients,
    writer: &WriterHandle,
    site: &LiveSite,
    clock: &Clock,
    member: &str,
    users: &[String],
    more: Option<&AskCredit>,
) -> Result<Released, IppError> {
    let Survey {
        cfg,
        printer,
        own,
        elsewhere,
    } = survey;
    let cfg = &cfg;
    let (queues, listings): (Vec<PrinterConfig>, Vec<Vec<Job>>) = elsewhere.into_iter().unzip();
    let elsewhere = queues.iter().zip(listings).flat_map(|(fm, listed)| {
        held_jobs_of(listed, users)
            .into_iter()
            .map(move |job| Waiting {
                job,
                follow_me: Some(fm),
            })
    });
    let mut waiting: Vec<Waiting> = held_jobs_of(own, users)
        .into_iter()
        .map(|job| Waiting {
            job,
            follow_me: None,
        })
        .chain(elsewhere)
        .collect();
    waiting.sort_by_key(|w| oldest_first(&w.job));
    let mut out = Released::default();
    if let Some(why) = printer.blocked() {
        out.kept = waiting
            .iter()
            .map(|w| (w.job.id, "printer cannot print".to_string()))
            .collect();
        out.blocked = Some(why);
        return Ok(out);
    }
    attach_analyses(writer, &cfg.id, &mut waiting).await;
    for w in waiting {
        // What the document holds, when analysed, else what the job asks.
        let asks_colour = match w.job.known {
            Some(k) => k.colour > 0,
            None => w.job.color_mode.as_deref() == Some("color"),
        };
        let unfit = w
            .follow_me
            .and_then(|_| printer.cannot_print(asks_colour, w.job.media.as_deref()));
        if let Some(why) = unfit {
            out.kept.push((w.job.id, why));
            continue;
        }
        let job = w.job;
        let desk = Desk { writer, site, more };
        match release_one(cfg, w.follow_me, clients, &desk, clock, member, &job).await {
            Ok((cents, pooled)) => {
                out.jobs.push(job.id);
                if let Some(fm) = w.follow_me {
                    out.moved.push((job.id, fm.id.clone()));
                }
                // A figure for the log line only (each estimate is at most
                // MAX_UNITS); the holds themselves are in the ledger.
                out.estimate = out.estimate.saturating_add(cents);
                out.pooled = out.pooled.saturating_add(pooled);
            }
            Err(why) => out.kept.push((job.id, why)),
        }
    }
    Ok(out)
}

/// What the spool analysis found in each waiting job's document, if it ran.
async fn attach_analyses(writer: &WriterHandle, printer: &str, waiting: &mut [Waiting<'_>]) {
    let mut jobs: Vec<Job> = waiting.iter().map(|w| w.job.clone()).collect();
    super::analyse::known_for(writer, printer, &mut jobs).await;
    for (w, job) in waiting.iter_mut().zip(jobs) {
        w.job = job;
    }
}

/// The order jobs are released in: oldest first.
fn oldest_first(job: &Job) -> (i64, i32) {
    (job.created_at.or(job.created_tick).unwrap_or(0), job.id)
}

/// Holds `job`'s estimate, moves it from `follow_me` to `cfg` if it waits
/// there, and releases it: its estimate and what of it the team pool
/// reserved, or why it stays held.
async fn release_one(
    cfg: &PrinterConfig,
    follow_me: Option<&PrinterConfig>,
    clients: &PrinterClients,
    desk: &Desk<'_>,
    clock: &Clock,
    member: &str,
    job: &Job,
) -> Result<(i64, i64), String> {
    let writer = desk.writer;
    let client = clients.get(&cfg.id);
    let Some(estimate) = jobs::estimate_job(cfg, job) else {
        return Err("no estimate".into());
    };
    // Keyed at `cfg`: the job finishes there, and its charge settles this.
    let key = job.key(&cfg.id);
    let req = UsageRequest {
        key: key.clone(),
        member: Some(member.to_string()),
        origin: Origin::Print {
            printer: cfg.id.clone(),
        },
        payable: Payable::Printing,
        amount: estimate.cents,
        detail: jobs::estimate_detail(job, &estimate).to_json(),
        at: clock.wall(),
    };
    let placed = desk.hold(member, req).await;
    let pooled = match placed {
        Ok(HoldOutcome::Placed(charge)) => charge.pooled,
        Ok(HoldOutcome::Refused {
            available,
            needed,
            policy,
        }) => {
            return Err(format!(
                "{}: {available} cents available, estimate {needed}",
                policy.as_str()
            ))
        }
        Err(e) => return Err(format!("ledger: {}", error_chain(&e))),
    };
    // Whatever goes wrong from here on voids the hold: the job stays held.
    let sent = match follow_me {
        Some(fm) => match move_job(fm, cfg, clients.get(&fm.id), job.id).await {
            Ok(()) => send_job_op(cfg, client, Operation::ReleaseJob, job.id)
                .await
                .map_err(|e| format!("Release-Job failed: {}", error_chain(&e))),
            Err(e) => Err(format!(
                "CUPS-Move-Job from {} failed: {}",
                fm.id,
                error_chain(&e)
            )),
        },
        None => send_job_op(cfg, client, Operation::ReleaseJob, job.id)
            .await
            .map_err(|e| format!("Release-Job failed: {}", error_chain(&e))),
    };
    let Err(reason) = sent else {
        return Ok((estimate.cents, pooled));
    };
    let (k, r, at) = (key, reason.clone(), clock.wall());
    let voided = writer
        .call_async(move |conn| crate::ledger::usage::void(conn, &k, &r, at))
        .await;
    if let Err(v) = voided {
        tracing::error!(printer = %cfg.id, job_id = job.id, error = %error_chain(&v), "could not void the hold of a job that was not released");
    }
    Err(reason)
}

/// Moves a held job from the follow-me queue `from` to `to` (same CUPS).
async fn move_job(
    from: &PrinterConfig,
    to: &PrinterConfig,
    client: &IppClient,
    job_id: i32,
) -> Result<(), IppError> {
    let request = move_job_request(&from.uri, job_id, &to.uri)?;
    client.send(&from.uri, request, from.timeout).await?;
    Ok(())
}

/// Now, on the clocks a held job's age can be read on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// The printer's `printer-up-time`, when it said.
    pub printer: Option<i64>,
    /// This host's wall clock, when it is trusted.
    pub wall: Option<i64>,
}

/// How long `job` has been held: on the printer's own clock when the
/// printer gave both its up-time and the job's `time-at-creation` (a print
/// server's clock may differ from this host's by hours), else on the wall
/// clock against `date-time-at-creation`; `None` when neither is known.
pub fn held_for(job: &Job, now: Now) -> Option<i64> {
    match (now.printer, job.created_tick) {
        (Some(up), Some(tick)) => Some(up.saturating_sub(tick)),
        _ => Some(now.wall?.saturating_sub(job.created_at?)),
    }
}

/// Cancels held jobs older than the printer's hold timeout (they cost
/// nothing; a hold a crashed release left behind is voided when the
/// cancelled job is next listed). Returns the job ids cancelled.
pub async fn cancel_expired(
    cfg: &PrinterConfig,
    client: &IppClient,
    listed: &[Job],
    now: Now,
) -> Vec<i32> {
    let limit = i64::try_from(cfg.hold_timeout.as_secs()).unwrap_or(i64::MAX);
    let mut cancelled = Vec::new();
    for job in listed.iter().filter(|j| j.state == PENDING_HELD) {
        let Some(held) = held_for(job, now) else {
            continue;
        };
        if held < limit {
            continue;
        }
        match send_job_op(cfg, client, Operation::CancelJob, job.id).await {
            Ok(()) => {
                tracing::info!(printer = %cfg.id, job_id = job.id, user = job.user.as_deref().unwrap_or(""),
                    held_s = held, "held job cancelled after the hold timeout; nothing charged");
                cancelled.push(job.id);
            }
            Err(e) => {
                tracing::warn!(printer = %cfg.id, job_id = job.id, error = %error_chain(&e), "could not cancel an expired held job")
            }
        }
    }
    cancelled
}

/// Sends `op` (Release-Job, Cancel-Job) for one job at `cfg`'s printer.
async fn send_job_op(
    cfg: &PrinterConfig,
    client: &IppClient,
    op: Operation,
    job_id: i32,
) -> Result<(), IppError> {
    let request = job_request(op, &cfg.uri, job_id)?;
    client.send(&cfg.uri, request, cfg.timeout).await?;
    Ok(())
}

/// Where a release places its holds: the ledger, and at a chain site whose
/// lots the centre issues, the centre for what credit here lacks.
struct Desk<'a> {
    writer: &'a WriterHandle,
    site: &'a LiveSite,
    more: Option<&'a AskCredit>,
}

impl Desk<'_> {
    /// Holds `req`'s estimate. Refused for want of credit at a chain site:
    /// asks the centre for the shortfall and holds again, on the offline
    /// allowance if the centre could not be reached.
    async fn hold(&self, member: &str, req: UsageRequest) -> crate::ledger::Result<HoldOutcome> {
        let first = self.hold_on(req.clone(), 0).await?;
        let (
            HoldOutcome::Refused {
                available, needed, ..
            },
            Some(more),
        ) = (&first, self.more)
        else {
            return Ok(first);
        };
        let shortfall = needed.saturating_sub(*available).max(1);
        match more(member.to_string(), "printing".into(), shortfall).await {
            MoreCredit::Placed => self.hold_on(req, 0).await,
            MoreCredit::NoMore => Ok(first),
            MoreCredit::Unreachable { allowance } => self.hold_on(req, allowance).await,
        }
    }

    async fn hold_on(
        &self,
        req: UsageRequest,
        allowance: i64,
    ) -> crate::ledger::Result<HoldOutcome> {
        let site = self.site.get();
        self.writer
            .call_async(move |conn| {
                crate::ledger::usage::hold_on_allowance(conn, &site, &req, allowance)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::{held_for, Job, Now};

    fn job(tick: Option<i64>, at: Option<i64>) -> Job {
        Job {
            created_tick: tick,
            created_at: at,
            ..Job::default()
        }
    }

    #[test]
    fn a_held_jobs_age_is_read_on_the_printers_clock_first() {
        // A print server 12 h behind this host: by its own clock the job
        // waited 60 s, not 12 h.
        let now = Now {
            printer: Some(1_000_060),
            wall: Some(1_043_260),
        };
        assert_eq!(
            held_for(&job(Some(1_000_000), Some(1_000_000)), now),
            Some(60)
        );
        // No tick from the printer: the wall clock against the job's date.
        assert_eq!(held_for(&job(None, Some(1_000_000)), now), Some(43_260));
        // No printer up-time: the same.
        let wall_only = Now {
            printer: None,
            wall: Some(1_000_090),
        };
        assert_eq!(
            held_for(&job(Some(5), Some(1_000_000)), wall_only),
            Some(90)
        );
        // The wall clock not trusted and no printer clock: unknown.
        let neither = Now {
            printer: None,
            wall: None,
        };
        assert_eq!(held_for(&job(Some(5), Some(1_000_000)), neither), None);
        assert_eq!(held_for(&job(None, None), now), None);
    }
}
