//! The shipper of a chain's site: sends the ledger's outbox to the centre
//! in seq order, in batches, marks what the centre acknowledged, and moves
//! to the epoch the centre gives. Charging never waits on it: the outbox is
//! written with each change, and the centre being away only lets it grow.

use crate::central::protocol::{Batch, BatchReply, WireEntry};
use crate::config::{CentralConfig, GrantsAuth};
use crate::ledger::outbox::{self, Entry};
use crate::ledger::writer::WriterHandle;
use crate::observe::{CentralBacklog, Observer};
use crate::site::LiveSite;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub mod escrow;
mod hello;
mod status;

/// The longest the shipper waits when everything is acknowledged.
const IDLE: Duration = Duration::from_secs(1);
/// How often, while idle, it looks whether the ledger changed (one
/// `PRAGMA data_version` on a read connection: no writer job).
const PEEK: Duration = Duration::from_millis(20);
/// The first wait after a failure; doubled up to `max_backoff`.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// How often acknowledged entries past retention are looked for.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Most entries one prune deletes (one write, short).
const PRUNE_BATCH: usize = 500;

/// Why a round did not ship.
#[derive(Debug, thiserror::Error)]
enum ShipError {
    #[error("the centre is unreachable")]
    Http(#[from] reqwest::Error),
    #[error("the ledger")]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error("a journal entry or the centre's answer is not the JSON expected")]
    Body(#[from] serde_json::Error),
    #[error(
        "the centre's certificate is not trusted: {0} (check [central] ca_file or tls_fingerprint)"
    )]
    Certificate(String),
    #[error("the TLS setup for [central] ca_file or tls_fingerprint")]
    Tls(#[from] rustls::Error),
    #[error("[central] url does not make a valid request URL")]
    BadUrl,
    #[error("the centre refused this site's token (check [central] token_file and the centre's [[sites]])")]
    Refused,
    #[error("the centre refused this site's client certificate: {0} (check [central] cert_file and key_file, and the centre's client_ca_file)")]
    OwnCertificate(String),
    #[error("the centre refused this site's client certificate: it does not name site_id (check [central] cert_file and site_id)")]
    NotThisSite,
}

/// What one round did.
enum Round {
    /// Shipped this many entries (0: nothing was waiting).
    Shipped(usize),
    /// The centre changed the epoch or asked for a hello: go again now.
    Again,
}

/// What the shipper works with.
#[derive(Clone)]
pub struct Shipper {
    pub writer: WriterHandle,
    pub ledger: PathBuf,
    pub cfg: CentralConfig,
    pub observer: Observer,
    pub site: LiveSite,
    /// Set once the centre answered a hello (and a restored ledger
    /// imported what it lost).
    pub greeted: watch::Sender<bool>,
}

/// The shipper task: runs until `stop`. After each round it tells the
/// observer what waits (metrics, the lag alert); when idle or backing off
/// it prunes acknowledged entries past `retention`.
pub async fn shipper(ship: Shipper, stop: CancellationToken) {
    let Shipper {
        writer,
        ledger,
        cfg,
        observer,
        site,
        greeted: said,
    } = ship;
    let mut peek = outbox::ChangeWatch::open(&ledger);
    let restore = hello::Restore {
        mark: crate::ledger::files::restored_mark(&ledger),
        site,
    };
    let builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
    let built = crate::tls::client_builder_as(&cfg.trust, cfg.identity.as_ref(), builder)
        .map_err(ShipError::from)
        .and_then(|b| Ok(b.build()?));
    let http = match built {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %crate::error_chain(&e), "central shipper cannot start");
            return;
        }
    };
    let mut greeted = false;
    let mut streak = Streak::default();
    let mut pruned_at: Option<i64> = None;
    let mut told_at: Option<tokio::time::Instant> = None;
    let mut kept_at: Option<tokio::time::Instant> = None;
    let mut keep_failing = false;
    let mut empty = escrow::Empty::new();
    loop {
        let wait = match round(&http, &writer, &cfg, &restore, &mut greeted).await {
            Ok(Round::Shipped(n)) => {
                streak.ended(&cfg.url);
                (n == 0).then_some(IDLE)
            }
            Ok(Round::Again) => None,
            Err(e) => {
                greeted = false;
                told_at = None;
                Some(streak.failed(&e, &cfg))
            }
        };
        let backoff = streak.backoff;
        if greeted {
            said.send_replace(true);
        }
        report(&writer, &observer).await;
        if backoff.is_none() && greeted && told_at.is_none_or(|t| t.elapsed() >= status::EVERY) {
            told_at = Some(tokio::time::Instant::now());
            if let Err(e) = status::tell(&http, &writer, &cfg, observer.now()).await {
                tracing::debug!(error = %crate::error_chain(&e), "outbox status not told to the centre");
            }
        }
        if backoff.is_none() && greeted && kept_at.is_none_or(|t| t.elapsed() >= escrow::EVERY) {
            kept_at = Some(tokio::time::Instant::now());
            match escrow::keep(&http, &writer, &cfg, observer.now(), &mut empty).await {
                Err(e) if !keep_failing => {
                    keep_failing = true;
                    tracing::warn!(error = %crate::error_chain(&e), "escrow not kept up; tried again every few seconds");
                }
                Err(_) => {}
                Ok(()) if keep_failing => {
                    keep_failing = false;
                    tracing::info!("escrow kept up again");
                }
                Ok(()) => {}
            }
        }
        let Some(wait) = wait else { continue };
        prune_when_due(&writer, &cfg, &observer, &mut pruned_at).await;
        if backoff.is_none() {
            // Idle: ship as soon as anything (this daemon's writer or a
            // `tallyd charge`) commits, or after `wait` at the latest.
            peek.changed();
            let deadline = tokio::time::Instant::now() + wait;
            while tokio::time::Instant::now() < deadline && !peek.changed() {
                tokio::select! {
                    _ = tokio::time::sleep(PEEK) => {}
                    _ = stop.cancelled() => return,
                }
            }
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// The rounds failing one after another: how long to wait, and why they
/// fail as last said (each new reason is said once, not each round).
#[derive(Default)]
struct Streak {
    backoff: Option<Duration>,
    said: Option<String>,
}

impl Streak {
    /// A round failed with `e`: says so if it is the first or a new
    /// reason; the wait before the next round.
    fn failed(&mut self, e: &ShipError, cfg: &CentralConfig) -> Duration {
        if self.is_news(e.to_string()) {
            tracing::warn!(url = %cfg.url, error = %crate::error_chain(e),
                "central unreachable; charging goes on, the outbox waits");
        }
        let next = self
            .backoff
            .map_or(FIRST_BACKOFF, |b| (b * 2).min(cfg.max_backoff));
        self.backoff = Some(next);
        jitter(next)
    }

    /// Whether a failure for `reason` is to be said: the streak's first,
    /// or a reason other than the last said.
    fn is_news(&mut self, reason: String) -> bool {
        let news = self.backoff.is_none() || self.said.as_ref() != Some(&reason);
        self.said = Some(reason);
        news
    }

    /// A round shipped: says the centre is back if rounds had failed.
    fn ended(&mut self, url: &str) {
        self.said = None;
        if self.backoff.take().is_some() {
            tracing::info!(url = %url, "central reachable again, shipping");
        }
    }
}

/// Tells the observer what waits for the centre.
async fn report(writer: &WriterHandle, observer: &Observer) {
    match writer.call_async(outbox::backlog).await {
        Ok(Some(b)) => observer.central_backlog(CentralBacklog {
            unacknowledged: u64::try_from(b.unacknowledged).unwrap_or(0),
            oldest_at: b.oldest_at,
        }),
        Ok(None) => {}
        Err(e) => tracing::debug!(error = %crate::error_chain(&e), "outbox backlog not read"),
    }
}

/// Prunes acknowledged entries older than `retention`, in batches of
/// [`PRUNE_BATCH`] (each its own write, so charges go in between), at most
/// once per [`PRUNE_EVERY`] (or `retention`, if shorter).
async fn prune_when_due(
    writer: &WriterHandle,
    cfg: &CentralConfig,
    observer: &Observer,
    pruned_at: &mut Option<i64>,
) {
    let now = observer.now();
    let every = PRUNE_EVERY.min(cfg.retention).as_secs() as i64;
    if pruned_at.is_some_and(|t| now - t < every) {
        return;
    }
    *pruned_at = Some(now);
    let before = now.saturating_sub(cfg.retention.as_secs() as i64);
    let mut total = 0;
    loop {
        let n = match writer
            .call_async(move |c| outbox::prune(c, before, PRUNE_BATCH))
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %crate::error_chain(&e), "cannot prune the outbox");
                return;
            }
        };
        total += n;
        if n < PRUNE_BATCH {
            break;
        }
        tokio::task::yield_now().await;
    }
    if total > 0 {
        tracing::debug!(pruned = total, before, "acknowledged outbox entries pruned");
    }
}

/// `d` give or take a quarter, so sites do not all come back at once.
fn jitter(d: Duration) -> Duration {
    let ms = d.as_millis() as u64;
    Duration::from_millis(ms - ms / 4 + fastrand::u64(0..=ms / 2))
}

/// One round: a hello when needed, then the oldest unacknowledged batch.
async fn round(
    http: &reqwest::Client,
    writer: &WriterHandle,
    cfg: &CentralConfig,
    restore: &hello::Restore,
    greeted: &mut bool,
) -> Result<Round, ShipError> {
    let Some(at) = writer.call_async(outbox::position).await? else {
        return Ok(Round::Shipped(0));
    };
    if !*greeted {
        if let Some(epoch) = hello::greet(http, writer, cfg, restore, &at).await? {
            *greeted = true;
            tracing::warn!(old_epoch = at.epoch, epoch,
                "the centre gave this ledger a new epoch (restored or cloned); unacknowledged entries move to it");
            return Ok(Round::Again);
        }
        *greeted = true;
        // The high water is not taken as an acknowledgement: a clone wrote
        // the same seqs with other content, and only the entries, compared
        // by the centre, tell it apart. Entries sent again are dropped.
    }
    let limit = cfg.batch;
    let pending = writer
        .call_async(move |c| outbox::pending(c, limit))
        .await?;
    if pending.is_empty() {
        return Ok(Round::Shipped(0));
    }
    let batch = Batch {
        site_id: at.site_id.clone(),
        epoch: at.epoch,
        entries: pending.iter().map(wire).collect::<Result<_, _>>()?,
    };
    let url = format!("{}/v1/journal", cfg.url);
    let resp = post_json(http, cfg, url, &batch).await?;
    if resp.status().is_server_error() {
        resp.error_for_status_ref()?;
    }
    let reply: BatchReply = serde_json::from_slice(&resp.bytes().await?)?;
    answer(writer, at.epoch, pending.len(), reply, greeted).await
}

/// POSTs `body` with the site's token; a 401 is [`ShipError::Refused`], a
/// 403 (the client certificate names another site) [`ShipError::NotThisSite`].
async fn post_json<T: serde::Serialize>(
    http: &reqwest::Client,
    cfg: &CentralConfig,
    url: String,
    body: &T,
) -> Result<reqwest::Response, ShipError> {
    let body = serde_json::to_vec(body)?;
    let req = http
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    send(req, cfg).await
}

/// GETs the centre's `path` with `query`, as this site.
async fn get_query(
    http: &reqwest::Client,
    cfg: &CentralConfig,
    path: &str,
    query: &[(&str, &str)],
) -> Result<reqwest::Response, ShipError> {
    let url = reqwest::Url::parse_with_params(&format!("{}{path}", cfg.url), query)
        .map_err(|_| ShipError::BadUrl)?;
    send(http.get(url), cfg).await
}

/// Sends `req` with this site's credentials; the centre refusing them is
/// an error of its own.
async fn send(
    mut req: reqwest::RequestBuilder,
    cfg: &CentralConfig,
) -> Result<reqwest::Response, ShipError> {
    req = match &cfg.token {
        GrantsAuth::Bearer(token) => req.bearer_auth(token),
        GrantsAuth::Basic { user, password } => req.basic_auth(user, Some(password)),
    };
    let resp = crate::tls::send(req).await.map_err(|e| {
        if let Some(reason) = crate::tls::certificate_problem(&e) {
            ShipError::Certificate(reason)
        } else if let Some(alert) = crate::tls::own_certificate_refused(&e) {
            ShipError::OwnCertificate(alert)
        } else {
            ShipError::Http(e)
        }
    })?;
    match resp.status() {
        reqwest::StatusCode::UNAUTHORIZED => Err(ShipError::Refused),
        reqwest::StatusCode::FORBIDDEN => Err(ShipError::NotThisSite),
        _ => Ok(resp),
    }
}

fn wire(e: &Entry) -> Result<WireEntry, serde_json::Error> {
    Ok(WireEntry {
        seq: e.seq,
        kind: e.kind.clone(),
        body: serde_json::from_str(&e.body)?,
        at: e.at,
    })
}

/// Acts on the centre's reply to a batch of `sent` entries.
async fn answer(
    writer: &WriterHandle,
    epoch: i64,
    sent: usize,
    reply: BatchReply,
    greeted: &mut bool,
) -> Result<Round, ShipError> {
    match reply {
        BatchReply::Applied { high_water } => {
            writer
                .call_async(move |c| outbox::acknowledge(c, epoch, high_water))
                .await?;
            tracing::debug!(epoch, high_water, sent, "journal batch acknowledged");
            Ok(Round::Shipped(sent))
        }
        BatchReply::Gap { high_water } => {
            writer
                .call_async(move |c| outbox::resend_after(c, epoch, high_water))
                .await?;
            tracing::warn!(
                epoch,
                high_water,
                "the centre lacks entries this site counted as acknowledged; resending them"
            );
            Ok(Round::Again)
        }
        BatchReply::NewEpoch { epoch: new } => {
            let moved = writer
                .call_async(move |c| {
                    let moved = outbox::rebase(c, new)?;
                    crate::ledger::escrow::forsake(c, chrono::Utc::now().timestamp())?;
                    Ok(moved)
                })
                .await?;
            tracing::warn!(old_epoch = epoch, epoch = new, moved,
                "the centre gave this ledger a new epoch (its seqs forked); unacknowledged entries move to it");
            Ok(Round::Again)
        }
        BatchReply::Hello => {
            *greeted = false;
            Ok(Round::Again)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing(streak: &mut Streak, e: ShipError) -> bool {
        let news = streak.is_news(e.to_string());
        streak.backoff = Some(FIRST_BACKOFF);
        news
    }

    #[test]
    fn a_streak_says_its_first_failure_and_each_new_reason_once() {
        let mut streak = Streak::default();
        assert!(failing(&mut streak, ShipError::BadUrl), "the first");
        assert!(!failing(&mut streak, ShipError::BadUrl), "the same again");
        let alert = || ShipError::OwnCertificate("CertificateRequired".into());
        assert!(failing(&mut streak, alert()), "a new reason");
        assert!(!failing(&mut streak, alert()));
        assert!(failing(&mut streak, ShipError::Refused));
        streak.ended("https://centre");
        assert!(streak.backoff.is_none());
        assert!(failing(&mut streak, ShipError::Refused), "a new streak");
    }
}
