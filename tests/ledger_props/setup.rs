//! The world every run starts in: members and their overage policies, credits,
//! payables, the clock, and a fresh ledger with all of it set up.

use tallyd::ledger::lots;
use tallyd::ledger::{Ledger, Origin, OveragePolicy, Payable, PolicyKind, Site, SourceKind};
use tempfile::TempDir;

pub(crate) const T0: i64 = 1_700_000_000;
/// `m0` and `m1` use the site default (credits-then-invoice, uncapped);
/// `m2` and `m3` are credits-only; `m4` is credits-then-invoice with monthly
/// caps of [`CAP_CENTS`] and [`CAP_MINUTES`].
pub(crate) const MEMBERS: [&str; 5] = ["m0", "m1", "m2", "m3", "m4"];
pub(crate) const POLICIES: [Policy; 5] = [
    Policy::SiteDefault,
    Policy::SiteDefault,
    Policy::CreditsOnly,
    Policy::CreditsOnly,
    Policy::Capped,
];
pub(crate) const CAP_CENTS: i64 = 150;
pub(crate) const CAP_MINUTES: i64 = 90;
/// 2023-11-01T00:00:00Z: every instant in these tests is in November 2023
/// (UTC, the default site zone), so overage caps count from here.
pub(crate) const MONTH_START: i64 = 1_698_796_800;
pub(crate) const MONTH_END: i64 = 1_701_388_800;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    SiteDefault,
    CreditsOnly,
    Capped,
}

/// Grantable credits. `coworking` pays for desk and room, `studio` for studio
/// and room, so a room session can draw on lots of both time credits.
pub(crate) const CREDITS: [&str; 3] = ["printing", "coworking", "studio"];
/// Payables by index: 0 is printing, the rest are time for a resource type.
/// `phonebooth` is listed by no time credit.
pub(crate) const RESOURCE_TYPES: [&str; 4] = ["desk", "room", "studio", "phonebooth"];
pub(crate) const PAYABLES: usize = 1 + RESOURCE_TYPES.len();
pub(crate) const SOURCES: [SourceKind; 4] = [
    SourceKind::Plan,
    SourceKind::Product,
    SourceKind::Account,
    SourceKind::Adjustment,
];
pub(crate) const RETURNED_TO_VOIDED: &str = "returned to a voided lot";

pub(crate) fn payable(i: usize) -> Payable {
    match i {
        0 => Payable::Printing,
        i => Payable::Time {
            resource_type: RESOURCE_TYPES[i - 1].to_string(),
        },
    }
}

/// Where a (not manual) usage of `p` comes from: the lobby printer, or a
/// session on the first resource of its type.
pub(crate) fn origin_of(p: &Payable) -> Origin {
    match p {
        Payable::Printing => Origin::Print {
            printer: "hp-lobby".into(),
        },
        Payable::Time { resource_type } => Origin::Session {
            resource: format!("{resource_type}-1"),
        },
    }
}

/// 0 for cents (printing), 1 for minutes (time).
pub(crate) fn unit_of(p: &Payable) -> usize {
    match p {
        Payable::Printing => 0,
        Payable::Time { .. } => 1,
    }
}

pub(crate) fn unit_name(unit: usize) -> &'static str {
    if unit == 0 {
        "cents"
    } else {
        "minutes"
    }
}

pub(crate) fn member_index(member: &str) -> usize {
    MEMBERS
        .iter()
        .position(|m| *m == member)
        .expect("known member")
}

/// A fresh ledger in a new temporary directory, with the members and time
/// credits above.
pub(crate) fn fresh_ledger() -> (TempDir, Ledger) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ledger =
        Ledger::open(&dir.path().join("ledger.db"), Site::default()).expect("open ledger");
    ledger
        .write(|conn, _| {
            for (i, m) in MEMBERS.iter().enumerate() {
                match POLICIES[i] {
                    Policy::SiteDefault => {
                        lots::ensure_member(conn, m, m, T0)?;
                    }
                    Policy::CreditsOnly => {
                        lots::upsert_member(
                            conn,
                            m,
                            m,
                            Some(OveragePolicy::CREDITS_ONLY),
                            None,
                            T0,
                        )?;
                    }
                    Policy::Capped => {
                        let capped = OveragePolicy {
                            kind: PolicyKind::CreditsThenInvoice,
                            cap_cents: Some(CAP_CENTS),
                            cap_minutes: Some(CAP_MINUTES),
                        };
                        lots::upsert_member(conn, m, m, Some(capped), None, T0)?;
                    }
                }
            }
            lots::define_time_credit(
                conn,
                "coworking",
                "Coworking hours",
                &["desk".to_string(), "room".to_string()],
            )?;
            lots::define_time_credit(
                conn,
                "studio",
                "Studio hours",
                &["studio".to_string(), "room".to_string()],
            )?;
            Ok(())
        })
        .expect("setup");
    (dir, ledger)
}
