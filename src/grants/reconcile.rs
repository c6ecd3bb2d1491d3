//! The reconcile plan: a pure function from the grants file, what the ledger
//! already holds and "now" to the list of changes a sync makes. Every sync
//! rule of `design.md` is decided here, so tests drive it with plain values.

use super::model::{AccountGrant, Benefit, Catalog, Expiry, Member};
use super::periods::period_date;
use crate::clock::{local_date, local_midnight};
use crate::ledger::lots::GrantRequest;
use crate::ledger::{OveragePolicy, SourceKind, Ts};
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Kinds of catalog rows: what the file said, as last applied.
pub mod kind {
    pub const RESOURCE_TYPE: &str = "resource_type";
    pub const RESOURCE: &str = "resource";
    pub const TIME_CREDIT: &str = "time_credit";
    pub const PLAN: &str = "plan";
    pub const BENEFIT: &str = "plan_benefit";
    pub const PRODUCT: &str = "product";
    pub const MEMBER: &str = "member";
    pub const ACCOUNT_GRANT: &str = "account_grant";
    pub const TEAM: &str = "team";
}

pub mod team_changes;

pub use crate::ledger::catalog::CatalogRow;

/// What the ledger holds that a sync needs to know.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub catalog: HashMap<(String, String), CatalogRow>,
    /// Source keys of plan and product lots already issued.
    pub lot_keys: HashSet<String>,
    /// Members known to the ledger, and whether each is closed.
    pub members: HashMap<String, bool>,
}

/// An account grant's catalog body: the grant as applied and its lot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AppliedGrant {
    pub grant: AccountGrant,
    pub lot: i64,
}

/// A lot to issue; account grants also record which grant it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub grant: GrantRequest,
    pub account: Option<(String, AccountGrant)>,
}

/// An edited account grant: its lot is adjusted, as history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub member: String,
    pub lot: i64,
    pub before: AccountGrant,
    pub after: AccountGrant,
    pub valid_from: Ts,
    pub expires_at: Option<Ts>,
}

/// A deleted account grant: what is left of its lot is voided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Void {
    pub member: String,
    pub lot: i64,
    pub before: AccountGrant,
}

/// A row of catalog history: what was there before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub kind: &'static str,
    pub subject: String,
    pub change: &'static str,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Everything a sync will do.
#[derive(Debug, Clone, Default)]
pub struct SyncPlan {
    pub catalog_put: Vec<(&'static str, String, String, Ts)>,
    pub catalog_drop: Vec<(&'static str, String)>,
    pub changes: Vec<Change>,
    /// Definitions changed: rewrite resource types, resources, time credits.
    pub definitions_changed: bool,
    /// Teams changed (added, edited, removed): rewrite them.
    pub teams_changed: bool,
    /// Members to create or update, with their effective overage policy.
    pub members: Vec<(Member, Option<OveragePolicy>)>,
    pub closes: Vec<String>,
    pub issues: Vec<Issue>,
    pub edits: Vec<Edit>,
    pub voids: Vec<Void>,
}

fn body<T: Serialize>(value: &T) -> String {
    // Invariant: catalog types serialize infallibly (no maps with non-string keys).
    serde_json::to_string(value).unwrap_or_default()
}

/// A composite catalog id that cannot be confused: `["alice","g1"]`.
fn pair(a: &str, b: &str) -> String {
    body(&[a, b])
}

impl SyncPlan {
    /// Diffs one entity against its catalog row; records the put and the change.
    /// Returns whether it was new or changed.
    fn diff(
        &mut self,
        snap: &Snapshot,
        kind: &'static str,
        id: &str,
        now_body: String,
        first_seen: Ts,
    ) -> bool {
        match snap.catalog.get(&(kind.to_string(), id.to_string())) {
            Some(row) if row.body == now_body => false,
            Some(row) => {
                self.changes.push(Change {
                    kind,
                    subject: id.into(),
                    change: "edited",
                    before: Some(row.body.clone()),
                    after: Some(now_body.clone()),
                });
                self.catalog_put
                    .push((kind, id.into(), now_body, row.first_seen));
                true
            }
            None => {
                self.changes.push(Change {
                    kind,
                    subject: id.into(),
                    change: "added",
                    before: None,
                    after: Some(now_body.clone()),
                });
                self.catalog_put
                    .push((kind, id.into(), now_body, first_seen));
                true
            }
        }
    }

    /// Diffs every entity of one kind, deletions included; returns whether
    /// anything was added, edited or deleted.
    fn diff_all<T: Serialize>(
        &mut self,
        snap: &Snapshot,
        kind: &'static str,
        now_all: &BTreeMap<String, T>,
        now: Ts,
    ) -> bool {
        let mut changed = false;
        for (id, entity) in now_all {
            changed |= self.diff(snap, kind, id, body(entity), now);
        }
        let present = now_all.keys().cloned().collect();
        !self.deletions(snap, kind, &present).is_empty() || changed
    }

    /// Records deletion of every catalog row of `kind` not in `present`.
    fn deletions(
        &mut self,
        snap: &Snapshot,
        kind: &'static str,
        present: &HashSet<String>,
    ) -> Vec<(String, String)> {
        let mut gone: Vec<(String, String)> = snap
            .catalog
            .iter()
            .filter(|((k, id), _)| k == kind && !present.contains(id))
            .map(|((_, id), row)| (id.clone(), row.body.clone()))
            .collect();
        gone.sort();
        for (id, before) in &gone {
            self.changes.push(Change {
                kind,
                subject: id.clone(),
                change: "deleted",
                before: Some(before.clone()),
                after: None,
            });
            self.catalog_drop.push((kind, id.clone()));
        }
        gone
    }
}

fn midnight_after(tz: Tz, day: NaiveDate) -> Ts {
    local_midnight(tz, day.succ_opt().unwrap_or(day))
}

/// When a benefit's lot issued at local date `from` (period `[from, period_end)`) expires.
fn expiry(tz: Tz, benefit: &Benefit, from: NaiveDate, period_end: Option<Ts>) -> Option<Ts> {
    match benefit.expires {
        Expiry::Never => None,
        Expiry::Period => period_end,
        Expiry::After(span) => span.add_to(from, 1).map(|d| local_midnight(tz, d)),
    }
}

/// Computes what a sync of `cat` into a ledger holding `snap` does at `now`.
pub fn reconcile(cat: &Catalog, snap: &Snapshot, tz: Tz, now: Ts) -> SyncPlan {
    let mut plan = SyncPlan::default();
    definitions(&mut plan, cat, snap, now);
    let first_seen = offerings(&mut plan, cat, snap, now);
    let today = local_date(tz, now);
    let mut present = HashSet::new();
    let mut grants_present = HashSet::new();
    for (id, member) in &cat.members {
        present.insert(id.clone());
        let known_open = snap.members.get(id).is_some_and(|closed| !closed);
        if plan.diff(snap, kind::MEMBER, id, body(member), now) || !known_open {
            plan.members
                .push((member.clone(), effective_policy(cat, member, today)));
        }
        subscriptions(&mut plan, cat, snap, tz, now, member, &first_seen);
        purchases(&mut plan, cat, snap, tz, now, member);
        account_grants(&mut plan, snap, tz, now, member, &mut grants_present);
    }
    plan.teams_changed = plan.diff_all(snap, kind::TEAM, &cat.teams, now);
    for (id, _) in plan.deletions(snap, kind::MEMBER, &present) {
        if snap.members.get(&id).is_some_and(|closed| !closed) {
            plan.closes.push(id);
        }
    }
    // Account grants of members still in the file but no longer listed.
    let gone = plan.deletions(snap, kind::ACCOUNT_GRANT, &grants_present);
    for (id, before) in gone {
        let member: Vec<String> = serde_json::from_str(&id).unwrap_or_default();
        let Some(member) = member.first().cloned() else {
            continue;
        };
        if !present.contains(&member) {
            // A removed member is closed; their lots stay as they were.
            plan.catalog_drop
                .retain(|(k, i)| !(*k == kind::ACCOUNT_GRANT && *i == id));
            plan.changes
                .retain(|c| !(c.kind == kind::ACCOUNT_GRANT && c.subject == id));
            continue;
        }
        if let Ok(applied) = serde_json::from_str::<AppliedGrant>(&before) {
            plan.voids.push(Void {
                member,
                lot: applied.lot,
                before: applied.grant,
            });
        }
    }
    plan
}

fn definitions(plan: &mut SyncPlan, cat: &Catalog, snap: &Snapshot, now: Ts) {
    let types = plan.diff_all(snap, kind::RESOURCE_TYPE, &cat.resource_types, now);
    let resources = plan.diff_all(snap, kind::RESOURCE, &cat.resources, now);
    let credits = plan.diff_all(snap, kind::TIME_CREDIT, &cat.time_credits, now);
    plan.definitions_changed = types || resources || credits;
}

/// Diffs plans, their benefits and products; returns when each plan benefit
/// was first seen (rule 4: a benefit added to a known plan reaches existing
/// subscribers from their next renewal on).
fn offerings(
    plan: &mut SyncPlan,
    cat: &Catalog,
    snap: &Snapshot,
    now: Ts,
) -> HashMap<(String, String), Ts> {
    let mut first_seen = HashMap::new();
    let mut benefits_present = HashSet::new();
    for (id, p) in &cat.plans {
        let plan_known = snap
            .catalog
            .contains_key(&(kind::PLAN.to_string(), id.clone()));
        plan.diff(snap, kind::PLAN, id, body(p), now);
        for b in &p.benefits {
            let key = pair(id, &b.id);
            let seen = match snap.catalog.get(&(kind::BENEFIT.to_string(), key.clone())) {
                Some(row) => row.first_seen,
                // Benefits of a plan seen for the first time count as always there.
                None if !plan_known => Ts::MIN,
                None => now,
            };
            plan.diff(snap, kind::BENEFIT, &key, body(b), seen);
            benefits_present.insert(key);
            first_seen.insert((id.clone(), b.id.clone()), seen);
        }
    }
    plan.deletions(snap, kind::PLAN, &cat.plans.keys().cloned().collect());
    plan.deletions(snap, kind::BENEFIT, &benefits_present);
    plan.diff_all(snap, kind::PRODUCT, &cat.products, now);
    first_seen
}

/// The member's own policy, else that of a plan they are subscribed to today.
fn effective_policy(cat: &Catalog, member: &Member, today: NaiveDate) -> Option<OveragePolicy> {
    member.policy.or_else(|| {
        member
            .subscriptions
            .iter()
            .filter(|s| s.start <= today && s.end.is_none_or(|e| e > today))
            .find_map(|s| cat.plans.get(&s.plan).and_then(|p| p.policy))
    })
}

fn subscriptions(
    plan: &mut SyncPlan,
    cat: &Catalog,
    snap: &Snapshot,
    tz: Tz,
    now: Ts,
    member: &Member,
    first_seen: &HashMap<(String, String), Ts>,
) {
    for sub in &member.subscriptions {
        let Some(p) = cat.plans.get(&sub.plan) else {
            continue;
        };
        for n in 0u32.. {
            let Some(from) = period_date(sub.start, p.renews, n) else {
                break;
            };
            let start = local_midnight(tz, from);
            if start > now || sub.end.is_some_and(|e| from >= e) {
                break;
            }
            let end = period_date(sub.start, p.renews, n + 1).map(|d| local_midnight(tz, d));
            for b in &p.benefits {
                let added = first_seen
                    .get(&(sub.plan.clone(), b.id.clone()))
                    .copied()
                    .unwrap_or(Ts::MIN);
                if !reaches(tz, added, start, sub.start) {
                    continue;
                }
                let expires_at = expiry(tz, b, from, end);
                if expires_at.is_some_and(|e| e <= now) {
                    continue;
                }
                let source_key = format!("plan:{}:{}:{}:{start}", member.id, sub.plan, b.id);
                if snap.lot_keys.contains(&source_key) {
                    continue;
                }
                plan.issues.push(Issue {
                    grant: GrantRequest {
                        member: member.id.clone(),
                        credit: b.credit.clone(),
                        amount: b.amount,
                        valid_from: start,
                        expires_at,
                        source: SourceKind::Plan,
                        source_key,
                        note: format!("plan {} benefit {}, period from {from}", sub.plan, b.id),
                        at: now,
                    },
                    account: None,
                });
            }
        }
    }
}

/// Rule 4: a benefit added to a plan at `added` reaches a period starting at
/// `start` when that period began after it was added, or when the member
/// subscribed on or after the day it was added (their first period, even
/// though it began at that day's midnight, before the sync that added it).
fn reaches(tz: Tz, added: Ts, start: Ts, subscribed: NaiveDate) -> bool {
    start >= added || subscribed >= local_date(tz, added)
}

fn purchases(
    plan: &mut SyncPlan,
    cat: &Catalog,
    snap: &Snapshot,
    tz: Tz,
    now: Ts,
    member: &Member,
) {
    for pu in &member.purchases {
        let Some(product) = cat.products.get(&pu.product) else {
            continue;
        };
        let start = local_midnight(tz, pu.date);
        if start > now {
            continue;
        }
        for b in &product.benefits {
            let expires_at = expiry(tz, b, pu.date, None);
            if expires_at.is_some_and(|e| e <= now) {
                continue;
            }
            let source_key = format!(
                "product:{}:{}:{}:{}",
                member.id, pu.product, pu.reference, b.id
            );
            if snap.lot_keys.contains(&source_key) {
                continue;
            }
            plan.issues.push(Issue {
                grant: GrantRequest {
                    member: member.id.clone(),
                    credit: b.credit.clone(),
                    amount: b.amount,
                    valid_from: start,
                    expires_at,
                    source: SourceKind::Product,
                    source_key,
                    note: format!("product {} ({}) benefit {}", pu.product, pu.reference, b.id),
                    at: now,
                },
                account: None,
            });
        }
    }
}

fn account_grants(
    plan: &mut SyncPlan,
    snap: &Snapshot,
    tz: Tz,
    now: Ts,
    member: &Member,
    present: &mut HashSet<String>,
) {
    for g in &member.grants {
        let id = pair(&member.id, &g.id);
        present.insert(id.clone());
        let valid_from = local_midnight(tz, g.from);
        let expires_at = g.until.map(|u| midnight_after(tz, u));
        let applied = snap
            .catalog
            .get(&(kind::ACCOUNT_GRANT.to_string(), id.clone()))
            .and_then(|row| serde_json::from_str::<AppliedGrant>(&row.body).ok());
        match applied {
            Some(a) if a.grant == *g => {}
            Some(a) if a.grant.credit != g.credit => {
                // A grant moved to another credit: void the old lot, issue anew.
                plan.voids.push(Void {
                    member: member.id.clone(),
                    lot: a.lot,
                    before: a.grant,
                });
                push_account_issue(plan, member, g, valid_from, expires_at, now);
            }
            Some(a) => plan.edits.push(Edit {
                member: member.id.clone(),
                lot: a.lot,
                before: a.grant,
                after: g.clone(),
                valid_from,
                expires_at,
            }),
            None if expires_at.is_some_and(|e| e <= now) => {}
            None => push_account_issue(plan, member, g, valid_from, expires_at, now),
        }
    }
}

fn push_account_issue(
    plan: &mut SyncPlan,
    member: &Member,
    g: &AccountGrant,
    valid_from: Ts,
    expires_at: Option<Ts>,
    now: Ts,
) {
    plan.issues.push(Issue {
        grant: GrantRequest {
            member: member.id.clone(),
            credit: g.credit.clone(),
            amount: g.amount,
            valid_from,
            expires_at,
            source: SourceKind::Account,
            source_key: format!("account:{}:{}:{now}", member.id, g.id),
            note: format!("account grant {}", g.id),
            at: now,
        },
        account: Some((member.id.clone(), g.clone())),
    });
}

/// Counts for the sync's log line and `--dry-run`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub issued: usize,
    pub adjusted: usize,
    pub voided: usize,
    pub closed: usize,
    pub members: usize,
    pub changes: usize,
}

impl SyncPlan {
    pub fn counts(&self) -> Counts {
        Counts {
            issued: self.issues.len(),
            adjusted: self.edits.len(),
            voided: self.voids.len(),
            closed: self.closes.len(),
            members: self.members.len(),
            changes: self.changes.len(),
        }
    }

    /// Lots to issue, grouped by member, for `--dry-run`.
    pub fn issues_by_member(&self) -> BTreeMap<&str, Vec<&Issue>> {
        let mut out: BTreeMap<&str, Vec<&Issue>> = BTreeMap::new();
        for i in &self.issues {
            out.entry(i.grant.member.as_str()).or_default().push(i);
        }
        out
    }
}

#[cfg(test)]
mod tests;
