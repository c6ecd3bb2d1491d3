//! The site's settings that money depends on (the default overage policy and
//! the time zone months are counted in), and [`LiveSite`], the one handle
//! through which every task sees them as last (re)loaded. A leaf.

use chrono_tz::Tz;
use serde::Serialize;
use std::sync::{Arc, PoisonError, RwLock};

/// What happens when credit does not cover a usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// Held jobs and sessions need credit up front; what already happened and
    /// credit cannot cover is still recorded as overage.
    CreditsOnly,
    /// The uncovered part goes to the member's overage account, up to a cap.
    CreditsThenInvoice,
}

impl PolicyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::CreditsOnly => "credits-only",
            PolicyKind::CreditsThenInvoice => "credits-then-invoice",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "credits-only" => Some(PolicyKind::CreditsOnly),
            "credits-then-invoice" => Some(PolicyKind::CreditsThenInvoice),
            _ => None,
        }
    }
}

/// A member's overage policy: the kind and optional monthly caps on overage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OveragePolicy {
    pub kind: PolicyKind,
    /// Most overage in cents a member may run up in one calendar month.
    pub cap_cents: Option<i64>,
    /// Most overage in minutes a member may run up in one calendar month.
    pub cap_minutes: Option<i64>,
}

impl OveragePolicy {
    pub const CREDITS_ONLY: OveragePolicy = OveragePolicy {
        kind: PolicyKind::CreditsOnly,
        cap_cents: None,
        cap_minutes: None,
    };
    pub const INVOICE_UNCAPPED: OveragePolicy = OveragePolicy {
        kind: PolicyKind::CreditsThenInvoice,
        cap_cents: None,
        cap_minutes: None,
    };
}

/// Site settings the ledger needs: the default overage policy and the time
/// zone that calendar months (overage caps, reports) are counted in.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub default_policy: OveragePolicy,
    pub tz: Tz,
}

impl Default for Site {
    fn default() -> Self {
        Site {
            default_policy: OveragePolicy::INVOICE_UNCAPPED,
            tz: chrono_tz::UTC,
        }
    }
}

/// The site settings as last (re)loaded, shared by every task: cheap to
/// clone, read with [`LiveSite::get`] at the moment a decision is made.
#[derive(Debug, Clone, Default)]
pub struct LiveSite(Arc<RwLock<Site>>);

impl LiveSite {
    pub fn new(site: Site) -> LiveSite {
        LiveSite(Arc::new(RwLock::new(site)))
    }

    /// The settings now. The lock is only ever held to copy or replace the
    /// value, so a poisoned lock still holds a whole `Site`.
    pub fn get(&self) -> Site {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the settings (a reload).
    pub fn set(&self, site: Site) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = site;
    }
}

/// Who issues a chain site's lots (`[central] issue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Issue {
    /// The site, from its grants file: single-site mode, and a chain's
    /// shadow phase.
    #[default]
    Site,
    /// The centre, which places slices here.
    Central,
}

impl Issue {
    pub fn as_str(self) -> &'static str {
        match self {
            Issue::Site => "site",
            Issue::Central => "central",
        }
    }
}
