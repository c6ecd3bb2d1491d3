//! The site protocol, as JSON over HTTP: what a site sends the centre and
//! what the centre answers. Shared by the centre and the site's shipper.

use serde::{Deserialize, Serialize};

/// `POST /v1/hello`: where the site's outbox stands, at start and after the
/// centre was away.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Hello {
    pub site_id: String,
    pub epoch: i64,
    /// The highest seq the site wrote in `epoch`.
    pub last_seq: i64,
}

/// The centre's answer to a hello: the epoch to ship in and the highest
/// seq it applied there. An epoch other than the site's means: move the
/// unacknowledged entries to it (the ledger was restored or cloned).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Welcome {
    pub epoch: i64,
    pub high_water: i64,
}

/// One journal entry on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WireEntry {
    pub seq: i64,
    pub kind: String,
    pub body: serde_json::Value,
    /// Unix seconds, the site's clock.
    pub at: i64,
}

/// `POST /v1/journal`: the oldest unacknowledged entries, in seq order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Batch {
    pub site_id: String,
    pub epoch: i64,
    pub entries: Vec<WireEntry>,
}

/// The centre's answer to a batch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BatchReply {
    /// Applied (or already applied) up to `high_water`.
    Applied { high_water: i64 },
    /// The batch does not follow `high_water`: send from `high_water + 1`.
    Gap { high_water: i64 },
    /// Ship in `epoch` from seq 1: this sender's epoch is closed, or it
    /// reused seqs with other content (a clone, a restored backup).
    NewEpoch { epoch: i64 },
    /// The centre does not know this epoch: say hello first.
    Hello,
}

/// `POST /v1/status`: where the site's outbox stands, sent by its shipper
/// about every half minute while it reaches the centre (also when nothing
/// is shipped), so the centre knows each site's backlog and when it last
/// heard from it. Answered 204; nothing in the journal changes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SiteStatus {
    pub site_id: String,
    pub epoch: i64,
    /// The highest seq the site wrote in `epoch`.
    pub last_seq: i64,
    /// The highest seq the centre acknowledged in `epoch`.
    pub acked_seq: i64,
    /// When the oldest unacknowledged entry was written (Unix seconds, the
    /// site's clock); `None` when nothing waits.
    pub oldest_at: Option<i64>,
    /// The site's clock when it sent this (Unix seconds).
    pub site_time: i64,
}

/// `GET /v1/sites?site_id=…`: what the centre knows of every site of the
/// chain, asked by a site with its token (the console's chain page).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SitesQuery {
    pub site_id: String,
}

/// One site as the centre knows it (`None`: not known): its newest epoch
/// and high water there, and from what it last said of its outbox, how
/// long ago that was, how many entries waited and how old the oldest was.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChainSite {
    pub site: String,
    pub epoch: Option<i64>,
    pub high_water: Option<i64>,
    pub heard_seconds_ago: Option<i64>,
    pub unacknowledged: Option<i64>,
    pub ack_lag_seconds: Option<i64>,
}

/// `POST /v1/lost`: the journal entries the centre holds from this site
/// after `(epoch, seq)`, in order, at most `limit`: what a ledger restored
/// from a backup lost (multi-site.md 3.8).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LostQuery {
    pub site_id: String,
    pub epoch: i64,
    pub seq: i64,
    pub limit: i64,
}

/// One journal entry the centre holds, with the epoch it came in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LostEntry {
    pub epoch: i64,
    #[serde(flatten)]
    pub entry: WireEntry,
}

/// How the chain's monthly report is grouped.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChainReportBy {
    Member,
    Site,
}

/// `GET /v1/report?site_id=…&start=…&end=…&by=…`: the chain's usage made in
/// `[start, end)` (Unix seconds: the asking site's month), asked by a site
/// with its token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReportQuery {
    pub site_id: String,
    pub start: i64,
    pub end: i64,
    pub by: ChainReportBy,
}

/// One row of the chain's report: a member's (or a site's) usages at their
/// final amounts (a settled hold at what was settled, a voided hold and a
/// refunded usage at 0).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChainReportRow {
    /// Member id (`(unattributed)` for usages no member owns) or site id.
    pub key: String,
    pub usages: i64,
    pub printing_cents: i64,
    pub minutes: i64,
    /// Holds neither settled nor voided yet (counted at their held amount).
    pub open_holds: i64,
    pub refunds: i64,
}

/// `GET /v1/balance?site_id=…[&member=…]`: what each member (or one) has
/// left of the chain's lots now, and owes as overage, asked by a site with
/// its token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BalanceQuery {
    pub site_id: String,
    #[serde(default)]
    pub member: Option<String>,
}

/// One member's credit across the chain: per credit (`printing` in cents,
/// each time credit in minutes) what its live lots hold, and the overage
/// no lot covered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChainBalance {
    pub member: String,
    pub name: String,
    pub closed: bool,
    pub credits: std::collections::BTreeMap<String, i64>,
    pub overage_cents: i64,
    pub overage_minutes: i64,
}

/// `GET /v1/statement?site_id=…&member=…&start=…&end=…`: every change to
/// a member's chain lots and overage in `[start, end)`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatementQuery {
    pub site_id: String,
    pub member: String,
    pub start: i64,
    pub end: i64,
}

/// One change: a lot's history row (`grant`, `debit`, `hold`, `settle`,
/// `void`, `refund`, `expire`, `adjust`) or an overage row (`credit` is
/// `overage`, in cents or minutes), with the site and usage key it was for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChainStatementLine {
    pub at: i64,
    pub kind: String,
    pub credit: String,
    pub unit: String,
    pub amount: i64,
    pub site: Option<String>,
    pub usage_key: Option<String>,
    pub note: String,
}

/// A member's statement across the chain: what the lots held (and the
/// overage owed) before `start` and before `end`, and the changes between.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChainStatement {
    pub member: String,
    pub name: String,
    pub opening: std::collections::BTreeMap<String, i64>,
    pub lines: Vec<ChainStatementLine>,
    pub closing: std::collections::BTreeMap<String, i64>,
}

/// `POST /v1/escrow`: a site asks for `want` of a member's credit
/// (`printing` in cents, or a time credit id in minutes) to spend offline.
/// `request_id` makes a retry get the same slices. A `shortfall` is asked
/// at a tap, for a release credit must cover now; otherwise it tops up
/// what the site holds ahead of use, within the centre's escrow share.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EscrowAsk {
    pub site_id: String,
    pub request_id: String,
    pub member: String,
    pub credit: String,
    pub want: i64,
    #[serde(default)]
    pub shortfall: bool,
}

/// One slice of a chain lot placed with the asking site: the site keeps it
/// as a local lot keyed `escrow:<id>`, with the lot's source and validity,
/// and an expiry 10 minutes before the lot's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EscrowSlice {
    pub id: i64,
    pub credit: String,
    pub amount: i64,
    pub source: String,
    pub valid_from: i64,
    pub expires_at: Option<i64>,
}

/// The centre's answer to an escrow ask: the slices placed (none when the
/// member has no credit left to place).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EscrowGrant {
    pub slices: Vec<EscrowSlice>,
}

/// `POST /v1/escrow/return`: the site holds these slices no more (their
/// local lots expired): what they still held goes back to their lots.
/// Sent only once every entry that spent from them is acknowledged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EscrowReturn {
    pub site_id: String,
    pub slices: Vec<i64>,
}

/// `GET /v1/feed?site_id=..&after=..`: what the centre tells the asking
/// site, after the last entry it applied (multi-site.md 3.4).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FeedQuery {
    pub site_id: String,
    #[serde(default)]
    pub after: i64,
}

/// One entry of a site's feed. `recall`: return this slice (its lot's
/// grant was shrunk or deleted). A site skips a kind it does not know.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FeedEntry {
    /// Where the site's cursor stands once it applied this entry.
    pub cursor: i64,
    pub kind: String,
    pub slice: i64,
    pub note: String,
}

/// The centre's answer to a feed read: at most [`FEED_PAGE`] entries, in
/// order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Feed {
    pub entries: Vec<FeedEntry>,
}

/// The most entries one feed read returns.
pub const FEED_PAGE: i64 = 200;

/// `POST /v1/import/grants`: a joining site's manual grants (`tallyd
/// grant`, the console's grant), which no grants file holds, made chain
/// credit by `tallyd central import`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GrantsImport {
    pub site_id: String,
    pub grants: Vec<SiteGrant>,
}

/// One manual grant as the site's ledger holds it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SiteGrant {
    /// The site's key for it (its lot's source key, `adjustment:…`).
    pub key: String,
    pub member: String,
    pub credit: String,
    /// What was granted (cents or minutes).
    pub amount: i64,
    pub valid_from: i64,
    pub expires_at: Option<i64>,
    /// The reason given.
    pub note: String,
    /// When it was granted (the site's clock).
    pub at: i64,
}

/// The centre's answer: grants made chain lots now, and those it had
/// already. With members the chain does not know, nothing is imported.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct GrantsImported {
    pub added: u64,
    pub already: u64,
    pub unknown_members: Vec<String>,
}
