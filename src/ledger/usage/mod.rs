//! Usage: debits, two-phase holds (hold → settle or void) and refunds.
//!
//! Every usage carries a caller-chosen idempotency key. The same key with the
//! same content returns the first result (stored with the usage) and changes
//! nothing; the same key with different content is
//! [`LedgerError::KeyConflict`](super::LedgerError::KeyConflict) and charges
//! nothing. What credit cannot cover goes to the member's overage account; no
//! lot ever goes below zero.
//!
//! - [`rules`]: the pure decisions (a hold's refusal, what a settle gives
//!   back and in what order, where a refund returns credit);
//! - [`credit`]: what a member can spend, and their policy;
//! - [`entries`]: the rows a usage moves (lots, history, overage);
//! - [`pool`]: a team member's pool, their monthly limit, and the draws;
//! - [`debit`], [`hold`], [`refund`]: the operations, each applying a rule;
//! - [`agree`]: whether a usage agrees with its history and overage rows
//!   (`tallyd check-ledger`);
//! - [`pool_agree`]: whether its pool draws agree with its history on the
//!   pool's lots (`tallyd check-ledger`).

pub mod agree;
mod credit;
mod debit;
mod entries;
mod hold;
pub mod pool;
pub mod pool_agree;
mod refund;
pub mod rules;

pub use credit::{available, candidates, overage_since, policy_of, SPENDABLE};
pub use debit::{debit, fingerprint, hold, hold_on_allowance};
pub use hold::{open_hold, settle, void, OpenHold};
pub use refund::refund;

use crate::money::Unit;
use serde::{Deserialize, Serialize};

use super::Ts;

/// Which kind of credit pays for a usage (the `credit_kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CreditKind {
    Printing,
    Time,
}

impl CreditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CreditKind::Printing => "printing",
            CreditKind::Time => "time",
        }
    }
}

/// What a usage is paid with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "credit")]
pub enum Payable {
    /// Printing credit, in cents.
    Printing,
    /// Time credit valid for this resource type, in minutes.
    Time { resource_type: String },
}

impl Payable {
    pub fn unit(&self) -> Unit {
        match self {
            Payable::Printing => Unit::Cents,
            Payable::Time { .. } => Unit::Minutes,
        }
    }

    pub fn credit_kind(&self) -> CreditKind {
        match self {
            Payable::Printing => CreditKind::Printing,
            Payable::Time { .. } => CreditKind::Time,
        }
    }

    fn resource_type(&self) -> Option<&str> {
        match self {
            Payable::Printing => None,
            Payable::Time { resource_type } => Some(resource_type),
        }
    }

    fn from_row(kind: &str, resource_type: Option<String>) -> Payable {
        match (kind, resource_type) {
            ("time", Some(resource_type)) => Payable::Time { resource_type },
            _ => Payable::Printing,
        }
    }
}

/// What produced a usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "origin")]
pub enum Origin {
    Print { printer: String },
    Session { resource: String },
    Manual,
}

impl Origin {
    fn parts(&self) -> (&'static str, Option<&str>, Option<&str>) {
        match self {
            Origin::Print { printer } => ("print", Some(printer), None),
            Origin::Session { resource } => ("session", None, Some(resource)),
            Origin::Manual => ("manual", None, None),
        }
    }
}

/// One usage to charge (or, as a hold, to reserve).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRequest {
    /// Idempotency key, e.g. `printer:hp-lobby:uuid:…`.
    pub key: String,
    /// `None` records unattributed usage (a print job no member owns).
    pub member: Option<String>,
    pub origin: Origin,
    pub payable: Payable,
    /// Cents or minutes, per `payable`.
    pub amount: i64,
    /// Facts behind the amount (impressions, colour, minutes…), as JSON text
    /// (see [`UsageDetail`](super::detail::UsageDetail)).
    pub detail: String,
    pub at: Ts,
}

/// The result of a debit, hold or settle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Charge {
    pub usage_id: i64,
    /// Taken from lots.
    pub covered: i64,
    /// Recorded on the member's overage account (the payer's, under a
    /// team's merged billing).
    pub overage: i64,
    /// Of `covered`, what came from the member's team pool (net of returns).
    pub pooled: i64,
    /// What the member has left for this kind of usage afterwards: their
    /// own credit plus what their team's pool allows them, after a debit,
    /// hold or settle alike.
    pub balance_after: i64,
    /// True when the key had been seen before and nothing changed.
    pub replayed: bool,
}

/// A hold is placed, or refused by the member's overage policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum HoldOutcome {
    Placed(Charge),
    Refused {
        available: i64,
        needed: i64,
        policy: super::PolicyKind,
    },
}

/// What a refund gave back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refund {
    pub usage_id: i64,
    /// Returned to the lots it came from.
    pub restored: i64,
    /// Granted anew because the original lot had expired or been voided.
    pub regranted: i64,
    /// Taken off the overage account.
    pub overage_reversed: i64,
}
