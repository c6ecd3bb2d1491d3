//! A chain site's escrow (`[central] issue = "central"`; multi-site.md
//! 3.4-3.6): asking the centre for slices of a member's credit and keeping
//! them as local lots, ahead of use (a top-up, while the centre is
//! reached) and at a tap whose release credit here does not cover (a
//! shortfall, waiting at most [`TAP_WAIT`]); and returning the slices
//! whose local lots expired, or whose member has not used this site for 7
//! days, or that the centre recalled through its feed (a chain grant
//! shrunk or deleted), once every spend from them is acknowledged.

use super::{get_query, post_json, ShipError};
use crate::central::protocol::{
    EscrowAsk, EscrowGrant, EscrowReturn, EscrowSlice, Feed, FEED_PAGE,
};
use crate::clock::Clock;
use crate::config::CentralConfig;
use crate::ledger::escrow::{self, Issue, Slice};
use crate::ledger::outbox;
use crate::ledger::writer::WriterHandle;
use crate::printer::release::{AskCredit, MoreCredit};
use std::sync::Arc;
use std::time::Duration;

/// How often a reachable centre is asked for top-ups, and slices returned.
pub(super) const EVERY: Duration = Duration::from_secs(5);
/// The longest a tap waits for the centre to place what its release lacks.
pub const TAP_WAIT: Duration = Duration::from_secs(2);
/// A member who used this site in this many seconds keeps escrow here when
/// it is their home site (or they have none)...
const ACTIVE_HOME: i64 = 7 * 86_400;
/// ...and this many when their home is another site (multi-site.md 3.5).
const ACTIVE_AWAY: i64 = 86_400;

/// Who keeps escrow at this site at `now`.
fn active(cfg: &CentralConfig, now: i64) -> escrow::Active {
    escrow::Active {
        here: cfg.site_id.clone(),
        home_since: now - ACTIVE_HOME,
        away_since: now - ACTIVE_AWAY,
    }
}

/// One escrow request: whose credit, how much, and whether a tap waits.
struct Want<'a> {
    member: &'a str,
    credit: &'a str,
    amount: i64,
    shortfall: bool,
}

/// Asks for `want` and keeps what the centre placed, dated `now` (the
/// site's clock); how much of it is spendable now.
async fn ask(
    http: &reqwest::Client,
    writer: &WriterHandle,
    cfg: &CentralConfig,
    want: Want<'_>,
    now: i64,
) -> Result<i64, ShipError> {
    let Want {
        member,
        credit,
        amount: want,
        shortfall,
    } = want;
    let (m, c) = (member.to_string(), credit.to_string());
    let request = writer
        .call_async(move |conn| {
            let epoch = outbox::position(conn)?.map_or(1, |p| p.epoch);
            escrow::next_request(conn, epoch, &m, &c)
        })
        .await?;
    let body = EscrowAsk {
        site_id: cfg.site_id.clone(),
        request_id: request.clone(),
        member: member.to_string(),
        credit: credit.to_string(),
        want,
        shortfall,
    };
    let url = format!("{}/v1/escrow", cfg.url);
    let resp = post_json(http, cfg, url, &body).await?.error_for_status()?;
    let grant: EscrowGrant = serde_json::from_slice(&resp.bytes().await?)?;
    let slices: Vec<Slice> = grant.slices.into_iter().map(local).collect();
    // Slices past their date by this site's clock are kept (and returned)
    // but count for nothing: a clock far ahead of the centre's.
    let live: i64 = slices
        .iter()
        .filter(|s| s.expires_at.is_none_or(|e| e > now))
        .map(|s| s.amount)
        .sum();
    let member = member.to_string();
    let placed = writer
        .call_async(move |conn| escrow::place(conn, &member, &request, &slices, now))
        .await?;
    if placed > 0 {
        tracing::info!(member = %body.member, credit = %body.credit, want, placed, shortfall,
            "escrow placed at this site");
    }
    if placed > live {
        tracing::warn!(member = %body.member, expired = placed - live,
            "escrow placed already past its date by this site's clock: check the clocks of this site and the centre");
    }
    Ok(live.min(placed))
}

fn local(s: EscrowSlice) -> Slice {
    Slice {
        id: s.id,
        credit: s.credit,
        amount: s.amount,
        source: s.source,
        valid_from: s.valid_from,
        expires_at: s.expires_at,
    }
}

/// One round of keeping escrow, while the centre is reached: applies the
/// centre's feed (recalls), returns the slices due back (only when nothing
/// waits in the outbox, so every spend from them reached the centre
/// first), then tops up each member and credit used here lately whose
/// slices fell below 30% of the target.
pub(super) async fn keep(
    http: &reqwest::Client,
    writer: &WriterHandle,
    cfg: &CentralConfig,
    now: i64,
    empty: &mut Empty,
) -> Result<(), ShipError> {
    if cfg.issue != Issue::Central {
        return Ok(());
    }
    read_feed(http, writer, cfg, now).await?;
    return_due(http, writer, cfg, now).await?;
    top_up(http, writer, cfg, now, empty).await
}

/// Returns the slices due back (expired here, recalled, or their member
/// idle here), once nothing waits in the outbox.
async fn return_due(
    http: &reqwest::Client,
    writer: &WriterHandle,
    cfg: &CentralConfig,
    now: i64,
) -> Result<(), ShipError> {
    let active_here = active(cfg, now);
    let (due, waiting) = writer
        .call_async(move |c| {
            let waiting = outbox::backlog(c)?.map_or(0, |b| b.unacknowledged);
            if waiting == 0 {
                escrow::retire_idle(c, &active_here, now)?;
            }
            Ok((escrow::due_back(c, now)?, waiting))
        })
        .await?;
    if due.is_empty() || waiting > 0 {
        return Ok(());
    }
    let body = EscrowReturn {
        site_id: cfg.site_id.clone(),
        slices: due.clone(),
    };
    let url = format!("{}/v1/escrow/return", cfg.url);
    post_json(http, cfg, url, &body).await?.error_for_status()?;
    let n = due.len();
    writer
        .call_async(move |c| escrow::returned(c, &due, now))
        .await?;
    tracing::info!(
        slices = n,
        "escrow returned to the centre (expired here, recalled, or its member idle here)"
    );
    Ok(())
}

/// Tops up each member and credit active here whose slices fell below 30%
/// of the target, but for those the centre lately had nothing for.
async fn top_up(
    http: &reqwest::Client,
    writer: &WriterHandle,
    cfg: &CentralConfig,
    now: i64,
    empty: &mut Empty,
) -> Result<(), ShipError> {
    let (cents, minutes) = (cfg.escrow_cents, cfg.escrow_minutes);
    let active = active(cfg, now);
    let needs = writer
        .call_async(move |c| escrow::needs(c, &active, now, cents, minutes))
        .await?;
    empty.retain(|_, until| *until > now);
    for need in needs {
        let id = (need.member, need.credit);
        if empty.contains_key(&id) {
            continue;
        }
        let want = Want {
            member: &id.0,
            credit: &id.1,
            amount: need.want,
            shortfall: false,
        };
        if ask(http, writer, cfg, want, now).await? == 0 {
            empty.insert(id, now + EMPTY_WAIT);
        }
    }
    Ok(())
}

/// Reads the centre's feed after this site's cursor and applies it (a
/// recall voids its slice here, returned below once its spends are
/// acknowledged), page by page until none is left.
async fn read_feed(
    http: &reqwest::Client,
    writer: &WriterHandle,
    cfg: &CentralConfig,
    now: i64,
) -> Result<(), ShipError> {
    loop {
        let after = writer.call_async(escrow::feed_cursor).await?.to_string();
        let query = [("site_id", cfg.site_id.as_str()), ("after", after.as_str())];
        let resp = get_query(http, cfg, "/v1/feed", &query)
            .await?
            .error_for_status()?;
        let feed: Feed = serde_json::from_slice(&resp.bytes().await?)?;
        let full = feed.entries.len() as i64 >= FEED_PAGE;
        let entries: Vec<escrow::FeedEntry> = feed
            .entries
            .into_iter()
            .map(|e| escrow::FeedEntry {
                cursor: e.cursor,
                kind: e.kind,
                slice: e.slice,
            })
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        let recalled = writer
            .call_async(move |c| escrow::apply_feed(c, &entries, now))
            .await?;
        if !recalled.is_empty() {
            tracing::info!(slices = ?recalled,
                "escrow recalled by the centre (a chain grant shrunk or deleted): spent no more here, returned once acknowledged");
        }
        if !full {
            return Ok(());
        }
    }
}

/// Members and credits the centre had nothing to place for, until when
/// (Unix seconds): not topped up again before then (a tap still asks).
pub(super) type Empty = std::collections::HashMap<(String, String), i64>;

/// How long a top-up that placed nothing waits before it is asked again.
const EMPTY_WAIT: i64 = 300;

/// What a tap asks when its release (or room session) lacks credit here:
/// the shortfall (at least the escrow target), from the centre, within
/// [`TAP_WAIT`]. Placed: hold again. The centre has
/// none to place: the policy decides. The centre not reached: the offline
/// allowance may cover it.
pub fn asker(cfg: &CentralConfig, writer: &WriterHandle, clock: &Clock) -> Option<AskCredit> {
    if cfg.issue != Issue::Central {
        return None;
    }
    let builder = reqwest::Client::builder().timeout(TAP_WAIT);
    let http = crate::tls::client_builder_as(&cfg.trust, cfg.identity.as_ref(), builder)
        .ok()?
        .build()
        .ok()?;
    let (cfg, writer, clock) = (cfg.clone(), writer.clone(), clock.clone());
    Some(Arc::new(
        move |member: String, credit: String, shortfall: i64| {
            let (http, cfg, writer) = (http.clone(), cfg.clone(), writer.clone());
            let now = clock.wall();
            Box::pin(async move {
                // At least the target: the next taps need not ask again.
                let want = Want {
                    member: &member,
                    credit: &credit,
                    amount: shortfall.max(per_credit(
                        &credit,
                        cfg.escrow_cents,
                        cfg.escrow_minutes,
                    )),
                    shortfall: true,
                };
                match ask(&http, &writer, &cfg, want, now).await {
                    Ok(placed) if placed > 0 => MoreCredit::Placed,
                    Ok(_) => MoreCredit::NoMore,
                    Err(e) => {
                        tracing::warn!(member = %member, shortfall, error = %crate::error_chain(&e),
                        "escrow not reached at a tap; the offline allowance may cover it");
                        MoreCredit::Unreachable {
                            allowance: per_credit(
                                &credit,
                                cfg.allowance_cents,
                                cfg.allowance_minutes,
                            ),
                        }
                    }
                }
            })
        },
    ))
}

/// `cents` for printing, `minutes` for a time credit.
fn per_credit(credit: &str, cents: i64, minutes: i64) -> i64 {
    match credit {
        "printing" => cents,
        _ => minutes,
    }
}
