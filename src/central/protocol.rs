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
