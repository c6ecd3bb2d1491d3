//! What a tap does: find the card's member, then release their held jobs at
//! the reader's printer or start/end their session in the reader's room.

use crate::clock::Clock;
use crate::config::{Binding, Mode, PrinterConfig, ReaderConfig};
use crate::ledger::owners::{card_owner, CardOwner};
use crate::ledger::sessions::{self, TapOutcome};
use crate::ledger::writer::WriterHandle;
use crate::observe::Observer;
use crate::printer::client::IppError;
use crate::printer::client::PrinterClients;
use crate::printer::release::{self, MoreCredit};
use crate::reader::port::Tap;
use crate::room::clock::Now;
use crate::room::Room;
use crate::site::LiveSite;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Everything a tap needs.
#[derive(Clone)]
pub struct TapContext {
    pub readers: Vec<ReaderConfig>,
    pub printers: Vec<PrinterConfig>,
    pub clients: PrinterClients,
    pub writer: WriterHandle,
    pub site: LiveSite,
    /// Where taps and the session sweep read the time.
    pub clock: Clock,
    /// Told of readers up and down and of open sessions.
    pub observer: Observer,
    /// At a chain site whose lots the centre issues: asks the centre for
    /// what a release's holds lack here.
    pub more_credit: Option<crate::printer::release::AskCredit>,
}

/// How long a survey started as a frame began stays good for its tap. A
/// frame takes about 15 ms; a partial frame goes stale after 500 ms.
const EARLY_FRESH: Duration = Duration::from_millis(500);

/// A survey of a printer started as a card's frame began at its reader
/// ([`Seen::Arriving`](crate::reader::port::Seen)), so that by the frame's
/// last byte (about 15 ms later at 9600 baud) the printer's state and jobs
/// are known, and the tap waits only for the card's member and the hold.
pub struct Early {
    started: Instant,
    survey: Option<JoinHandle<Result<release::Survey, IppError>>>,
}

impl Early {
    /// Starts surveying `reader`'s printer, if it is bound to one.
    pub fn start(ctx: &TapContext, reader: &ReaderConfig) -> Option<Early> {
        let Binding::Printer(printer) = &reader.binding else {
            return None;
        };
        let cfg = ctx.printers.iter().find(|p| &p.id == printer)?.clone();
        let follow_me = follow_me_for(ctx, printer);
        let survey = tokio::spawn(release::survey(cfg, follow_me, ctx.clients.clone()));
        Some(Early {
            started: Instant::now(),
            survey: Some(survey),
        })
    }

    /// The survey, if it is still fresh; else `None` (and it is stopped).
    fn take(mut self) -> Option<JoinHandle<Result<release::Survey, IppError>>> {
        if self.started.elapsed() <= EARLY_FRESH {
            self.survey.take()
        } else {
            None
        }
    }
}

impl Drop for Early {
    fn drop(&mut self) {
        // Not used (stale, or a frame that never ended): stop asking.
        if let Some(survey) = &self.survey {
            survey.abort();
        }
    }
}

/// The follow-me queues that release to `printer`.
fn follow_me_for(ctx: &TapContext, printer: &str) -> Vec<PrinterConfig> {
    ctx.printers
        .iter()
        .filter(|p| p.mode == Mode::FollowMe && p.release_to.iter().any(|t| t == printer))
        .cloned()
        .collect()
}

/// Handles one tap; logs one line for what it did. At a printer, the
/// printer is asked about its jobs while the card is looked up, unless
/// `early` already asked as the card's frame began.
pub async fn handle(ctx: &TapContext, tap: Tap, early: Option<Early>) {
    let Some(reader) = ctx.readers.iter().find(|r| r.id == tap.reader).cloned() else {
        return;
    };
    let now = Now::read(&ctx.clock);
    let (card, reader_id, at) = (tap.card.clone(), reader.id.clone(), now.wall);
    let lookup = ctx
        .writer
        .call_async(move |conn| card_owner(conn, &card, &reader_id, at));
    match &reader.binding {
        Binding::Printer(printer) => {
            let Some(cfg) = ctx.printers.iter().find(|p| &p.id == printer) else {
                return;
            };
            let early = early.and_then(Early::take);
            let survey = async {
                if let Some(asked) = early {
                    // Unless its task panicked: then ask again.
                    if let Ok(surveyed) = asked.await {
                        return surveyed;
                    }
                }
                release::survey(
                    cfg.clone(),
                    follow_me_for(ctx, printer),
                    ctx.clients.clone(),
                )
                .await
            };
            let (owner, survey) = tokio::join!(lookup, survey);
            if let Some((member, users)) = member_of(owner, &reader, &tap) {
                release_at(ctx, &reader, printer, &member, &users, survey).await
            }
        }
        Binding::Resource(resource) => {
            if let Some((member, _)) = member_of(lookup.await, &reader, &tap) {
                session_at(ctx, &reader, resource, &member, now).await
            }
        }
    }
}

/// The tapping member and their print user names, or `None` (logged) for a
/// closed member's or an unknown card, or a ledger that cannot be read.
fn member_of(
    owner: crate::ledger::Result<CardOwner>,
    reader: &ReaderConfig,
    tap: &Tap,
) -> Option<(String, Vec<String>)> {
    let card = tap.card.masked();
    match owner {
        Ok(CardOwner::Member { id, print_users }) => Some((id, print_users)),
        Ok(CardOwner::Closed { id }) => {
            tracing::warn!(reader = %reader.id, card = %card, member = %id, "tap refused: the member is closed");
            None
        }
        Ok(CardOwner::Unknown) => {
            tracing::warn!(reader = %reader.id, card = %card, "tap refused: unknown card (see `tallyd cards` to enrol it)");
            None
        }
        Err(e) => {
            tracing::error!(reader = %reader.id, card = %card, error = %e, "tap failed: cannot read the ledger");
            None
        }
    }
}

async fn release_at(
    ctx: &TapContext,
    reader: &ReaderConfig,
    printer: &str,
    member: &str,
    users: &[String],
    survey: Result<release::Survey, IppError>,
) {
    let released = async {
        release::release(
            survey?,
            &ctx.clients,
            &ctx.writer,
            &ctx.site,
            &ctx.clock,
            member,
            users,
            ctx.more_credit.as_ref(),
        )
        .await
    };
    match released.await {
        Ok(r) if r.blocked.is_some() => {
            let held: Vec<String> = r.kept.iter().map(|(j, _)| j.to_string()).collect();
            tracing::warn!(member = %member, printer = %printer, reader = %reader.id,
                reason = %r.blocked.unwrap_or_default(), held = %held.join(","),
                "release refused: the printer cannot print; jobs stay held, nothing reserved")
        }
        Ok(r) if r.jobs.is_empty() && r.kept.is_empty() => {
            tracing::info!(member = %member, printer = %printer, reader = %reader.id, "release: no held jobs")
        }
        Ok(r) => {
            let jobs: Vec<String> = r.jobs.iter().map(i32::to_string).collect();
            let kept: Vec<String> = r
                .kept
                .iter()
                .map(|(j, why)| format!("{j} ({why})"))
                .collect();
            // Jobs kept back (credits-only, a cap, a failed Release-Job) are
            // for staff to act on: WARN.
            let moved: Vec<String> = r
                .moved
                .iter()
                .map(|(j, from)| format!("{j} from {from}"))
                .collect();
            let moved = moved.join(", ");
            if kept.is_empty() {
                tracing::info!(member = %member, printer = %printer, reader = %reader.id, jobs = %jobs.join(","),
                    estimate_cents = r.estimate, pool_cents = r.pooled, moved = %moved, kept = "", "release");
            } else {
                tracing::warn!(member = %member, printer = %printer, reader = %reader.id, jobs = %jobs.join(","),
                    estimate_cents = r.estimate, pool_cents = r.pooled, moved = %moved, kept = %kept.join("; "), "release");
            }
        }
        Err(e) => {
            tracing::warn!(member = %member, printer = %printer, reader = %reader.id, error = %crate::error_chain(&e), "release failed: cannot list held jobs; nothing released")
        }
    }
}

async fn session_at(
    ctx: &TapContext,
    reader: &ReaderConfig,
    resource: &str,
    member: &str,
    now: Now,
) {
    let mut tapped = tap_room(ctx, reader, resource, member, now.clone(), 0).await;
    if let (Ok((first_overlong, TapOutcome::Refused { .. })), Some(more)) =
        (&tapped, &ctx.more_credit)
    {
        // The first tap may have closed an overlong session: keep it to log.
        let first_overlong = first_overlong.clone();
        let allowance = match more_minutes(ctx, more, resource, member).await {
            MoreCredit::Placed => Some(0),
            MoreCredit::Unreachable { allowance } if allowance > 0 => Some(allowance),
            _ => None,
        };
        if let Some(allowance) = allowance {
            tapped = tap_room(ctx, reader, resource, member, now, allowance)
                .await
                .map(|(overlong, outcome)| (first_overlong.or(overlong), outcome));
        }
    }
    let outcome = match tapped {
        Ok((overlong, outcome)) => {
            if let Some(e) = &overlong {
                ctx.observer.session_changed(false);
                log_ended(e);
            }
            outcome
        }
        Err(e) => {
            tracing::error!(member = %member, resource = %resource, error = %e, "session tap failed");
            return;
        }
    };
    match outcome {
        TapOutcome::Started { session } => {
            ctx.observer.session_changed(true);
            tracing::info!(member = %member, resource = %resource, reader = %reader.id, session, "session started")
        }
        TapOutcome::Refused { reason } => {
            tracing::warn!(member = %member, resource = %resource, reader = %reader.id, reason = %reason, "session not started")
        }
        TapOutcome::Bounce => {
            tracing::debug!(member = %member, resource = %resource, "tap right after the start ignored")
        }
        TapOutcome::Busy { open_by } => {
            tracing::warn!(member = %member, resource = %resource, reader = %reader.id, open_by = %open_by,
                "tap refused: another member's session is open in this room")
        }
        TapOutcome::Ended(e) | TapOutcome::EndedOther(e) => {
            ctx.observer.session_changed(false);
            log_ended(&e)
        }
    }
}

/// A tap at a room, in the ledger; `allowance`: the offline allowance it
/// may start a session on (minutes; 0: none).
async fn tap_room(
    ctx: &TapContext,
    reader: &ReaderConfig,
    resource: &str,
    member: &str,
    now: Now,
    allowance: i64,
) -> crate::ledger::Result<(Option<sessions::Ended>, TapOutcome)> {
    let (room, res, m) = (Room::of(reader), resource.to_string(), member.to_string());
    let site = ctx.site.get();
    ctx.writer
        .call_async(move |conn| {
            sessions::tap_on_allowance(conn, &site, &room, &res, &m, &now, allowance)
        })
        .await
}

/// At a chain site whose lots the centre issues, a session refused for
/// want of minutes asks the centre for some of each time credit that pays
/// for the room: placed if any was; else unreachable (with the minutes
/// allowance) if the centre could not be asked.
async fn more_minutes(
    ctx: &TapContext,
    more: &crate::printer::release::AskCredit,
    resource: &str,
    member: &str,
) -> MoreCredit {
    let res = resource.to_string();
    let credits = ctx
        .writer
        .call_async(move |c| crate::ledger::escrow::credits_for_resource(c, &res))
        .await
        .unwrap_or_default();
    let mut outcome = MoreCredit::NoMore;
    for credit in credits {
        match more(member.to_string(), credit, 1).await {
            MoreCredit::Placed => return MoreCredit::Placed,
            MoreCredit::NoMore => {}
            unreachable => outcome = unreachable,
        }
    }
    outcome
}

/// One line per ended session.
pub fn log_ended(e: &sessions::Ended) {
    tracing::info!(member = %e.session.member, resource = %e.session.resource, session = e.session.id,
        seconds = e.secs, minutes = e.minutes, reason = %e.reason, covered = e.charge.covered,
        overage = e.charge.overage, balance_after = e.charge.balance_after, "session ended");
}

/// Ends sessions that reached their room's maximum length; tells the
/// observer how many stay open.
pub async fn close_overlong(ctx: &TapContext) {
    let readers = ctx.readers.clone();
    let site = ctx.site.get();
    let now = Now::read(&ctx.clock);
    let ended = ctx
        .writer
        .call_async(move |conn| {
            let mut ended = Vec::new();
            let all = sessions::all_open(conn)?;
            let count = all.len();
            for open in all {
                let binding = Binding::Resource(open.resource.clone());
                let Some(r) = readers.iter().find(|r| r.binding == binding) else {
                    continue;
                };
                let room = Room::of(r);
                if sessions::reached_max(&room, &open, &now) {
                    ended.push(sessions::end_at_max(conn, &site, &room, open, &now)?);
                }
            }
            Ok((count, ended))
        })
        .await;
    match ended {
        Ok((count, list)) => {
            let open = count.saturating_sub(list.len());
            ctx.observer.open_sessions(open as u64);
            list.iter().for_each(log_ended)
        }
        Err(e) => tracing::error!(error = %e, "could not close overlong sessions"),
    }
}
