//! The grants file (`tallyd::grants::parse`: TOML, or JSON when it starts
//! with `{`): arbitrary text → parse → validate, then the sync it would
//! plan into an empty ledger (`reconcile`).
//!
//! Checked:
//! - nothing panics;
//! - a refusal is one line (a control character in the file cannot forge a
//!   second one);
//! - an accepted file holds only amounts from 1 to `MAX_UNITS` and caps
//!   from 0 to `MAX_UNITS`, ids and names without control characters,
//!   canonical card ids and no two member ids that differ only by case;
//!   teams of known members (the payer among them, no member in two) with
//!   limits from 0 to `MAX_UNITS`;
//! - every lot its sync would issue has an amount from 1 to `MAX_UNITS`,
//!   and expires, if ever, after it becomes valid.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;
use tallyd::grants::reconcile::{reconcile, Snapshot};
use tallyd::ledger::OveragePolicy;
use tallyd::money::MAX_UNITS;

/// 2026-11-30 12:00 UTC: "now" for the planned sync.
const NOW: i64 = 1_796_040_000;

fn amount(what: &str, n: i64) {
    assert!((1..=MAX_UNITS).contains(&n), "{what} amount {n}");
}

fn plain(what: &str, text: &str) {
    assert!(!text.chars().any(char::is_control), "{what} {text:?}");
}

fn policy(p: &Option<OveragePolicy>) {
    if let Some(p) = p {
        for cap in [p.cap_cents, p.cap_minutes].into_iter().flatten() {
            assert!((0..=MAX_UNITS).contains(&cap), "cap {cap}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let catalog = match tallyd::grants::parse("fuzz.toml", text) {
        Ok(catalog) => catalog,
        Err(e) => {
            let line = e.to_string();
            assert!(
                !line.contains(['\n', '\r']),
                "a refusal of two lines: {line:?}"
            );
            return;
        }
    };
    plain("printing name", &catalog.printing_name);
    for (id, name) in &catalog.resource_types {
        plain("resource type", id);
        plain("resource type name", name);
    }
    for (id, plan) in &catalog.plans {
        plain("plan", id);
        plain("plan name", &plan.name);
        policy(&plan.policy);
        plan.benefits
            .iter()
            .for_each(|b| amount("benefit", b.amount));
    }
    for (id, product) in &catalog.products {
        plain("product", id);
        product
            .benefits
            .iter()
            .for_each(|b| amount("benefit", b.amount));
    }
    let mut folded = BTreeSet::new();
    for (id, m) in &catalog.members {
        plain("member", id);
        plain("member name", &m.name);
        assert!(
            folded.insert(id.to_lowercase()),
            "member ids differ by case: {id}"
        );
        policy(&m.policy);
        for card in &m.cards {
            let parsed = tallyd::ids::CardId::parse(card);
            assert_eq!(parsed.as_ref().map(|c| c.as_str()), Some(card.as_str()));
        }
        m.print_users.iter().for_each(|u| plain("print user", u));
        m.purchases
            .iter()
            .for_each(|p| plain("reference", &p.reference));
        m.grants
            .iter()
            .for_each(|g| amount("account grant", g.amount));
    }
    let mut in_a_team = BTreeSet::new();
    for (id, team) in &catalog.teams {
        plain("team", id);
        plain("team name", &team.name);
        assert!(
            team.members.contains(&team.payer),
            "team {id}: payer not a member"
        );
        for m in &team.members {
            assert!(
                catalog.members.contains_key(m),
                "team {id}: unknown member {m}"
            );
            assert!(in_a_team.insert(m.clone()), "member {m} in two teams");
        }
        for limit in [team.member_limit_cents, team.member_limit_minutes]
            .into_iter()
            .flatten()
        {
            assert!((0..=MAX_UNITS).contains(&limit), "team {id}: limit {limit}");
        }
    }

    let tz = catalog.tz.unwrap_or(chrono_tz::UTC);
    let plan = reconcile(&catalog, &Snapshot::default(), tz, NOW);
    for issue in &plan.issues {
        let g = &issue.grant;
        amount("issued lot", g.amount);
        if let Some(expires) = g.expires_at {
            assert!(
                expires > g.valid_from,
                "lot expires before it is valid: {g:?}"
            );
        }
    }
});
