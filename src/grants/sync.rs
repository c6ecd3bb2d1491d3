//! Applying a reconcile plan to the ledger: read the snapshot, compute the
//! plan, write it in the caller's transaction. A file that failed to parse
//! never gets here, so a bad file changes nothing.

use super::model::{Catalog, Share};
use super::reconcile::{kind, reconcile, AppliedGrant, Counts, Snapshot, SyncPlan};
use crate::ledger::catalog::{self, ChangeRow, TimeCreditDef};
use crate::ledger::teams::{self, TeamDef};
use crate::ledger::{lots, owners, Result, Ts};
use chrono_tz::Tz;
use rusqlite::Connection;

/// Reads what a sync needs from the ledger.
pub fn load_snapshot(conn: &Connection) -> Result<Snapshot> {
    Ok(Snapshot {
        catalog: catalog::rows(conn)?,
        lot_keys: catalog::issued_lot_keys(conn)?,
        members: catalog::members(conn)?,
    })
}

/// Computes the plan for `catalog` against the ledger, without writing. At
/// a site whose lots the centre issues (`[central] issue = "central"`),
/// the file gives only the catalog (members, cards, resources, time
/// credits, teams, policies): the centre issues, edits and voids the lots,
/// and places slices of them here.
pub fn plan(conn: &Connection, catalog: &Catalog, tz: Tz, now: Ts) -> Result<SyncPlan> {
    let snap = load_snapshot(conn)?;
    let mut plan = reconcile(catalog, &snap, catalog.tz.unwrap_or(tz), now);
    if crate::ledger::escrow::issued_centrally(conn)? {
        plan.issues.clear();
        plan.edits.clear();
        plan.voids.clear();
        if plan.teams_changed && !catalog.teams.is_empty() {
            tracing::warn!(teams = catalog.teams.len(),
                "team pools are not drawn at a site whose lots the centre issues (issue = \"central\"): the centre keeps no pools yet, so members spend their own escrow");
        }
    }
    Ok(plan)
}

/// Writes a plan; the caller owns the transaction.
pub fn apply(conn: &Connection, catalog: &Catalog, plan: &SyncPlan, now: Ts) -> Result<Counts> {
    if plan.definitions_changed {
        write_definitions(conn, catalog)?;
    }
    for (member, policy) in &plan.members {
        lots::upsert_member(
            conn,
            &member.id,
            &member.name,
            *policy,
            member.home_site.as_deref(),
            now,
        )?;
        owners::set_identities(conn, &member.id, &member.cards, &member.print_users)?;
    }
    if plan.teams_changed {
        write_teams(conn, catalog, now)?;
    }
    for id in &plan.closes {
        lots::close_member(conn, id, now)?;
        owners::drop_print_users(conn, id)?;
    }
    for (k, id) in &plan.catalog_drop {
        catalog::remove(conn, k, id)?;
    }
    for (k, id, body, first_seen) in &plan.catalog_put {
        catalog::put(conn, k, id, body, *first_seen)?;
    }
    for c in &plan.changes {
        let row = ChangeRow {
            kind: c.kind,
            subject: &c.subject,
            change: c.change,
            before: c.before.as_deref(),
            after: c.after.as_deref(),
        };
        catalog::record_change(conn, &row, now)?;
    }
    for v in &plan.voids {
        let reason = format!(
            "account grant {} removed from the grants file (was {} of {})",
            v.before.id, v.before.amount, v.before.credit
        );
        lots::void_lot(conn, v.lot, &reason, now)?;
    }
    for e in &plan.edits {
        let reason = format!("account grant {} edited in the grants file", e.after.id);
        if e.before.amount != e.after.amount {
            lots::adjust_amount(conn, e.lot, e.after.amount, &reason, now)?;
        }
        lots::adjust_validity(conn, e.lot, e.valid_from, e.expires_at, &reason, now)?;
        record_account(conn, &e.member, &e.after, e.lot, now)?;
    }
    for issue in &plan.issues {
        let granted = lots::insert_lot(conn, &issue.grant)?;
        if let Some((member, grant)) = &issue.account {
            record_account(conn, member, grant, granted.lot, now)?;
        }
    }
    Ok(plan.counts())
}

fn record_account(
    conn: &Connection,
    member: &str,
    grant: &super::model::AccountGrant,
    lot: i64,
    now: Ts,
) -> Result<()> {
    let id = serde_json::to_string(&[member, grant.id.as_str()]).unwrap_or_default();
    let body = serde_json::to_string(&AppliedGrant {
        grant: grant.clone(),
        lot,
    })
    .unwrap_or_default();
    catalog::put_body(conn, kind::ACCOUNT_GRANT, &id, &body, now)
}

fn write_teams(conn: &Connection, cat: &Catalog, now: Ts) -> Result<()> {
    let all = vec![teams::ALL.to_string()];
    let defs: Vec<TeamDef<'_>> = cat
        .teams
        .iter()
        .map(|(id, t)| TeamDef {
            id,
            name: &t.name,
            payer: &t.payer,
            members: &t.members,
            shares: match &t.share {
                Share::All => &all,
                Share::Credits(c) => c,
            },
            combine: t.combine,
            limit_cents: t.member_limit_cents,
            limit_minutes: t.member_limit_minutes,
            billing: t.billing.as_str(),
        })
        .collect();
    teams::define(conn, &defs, now)
}

fn write_definitions(conn: &Connection, cat: &Catalog) -> Result<()> {
    let credits: Vec<TimeCreditDef<'_>> = cat
        .time_credits
        .iter()
        .map(|(id, tc)| TimeCreditDef {
            id,
            name: &tc.name,
            resource_types: &tc.resource_types,
        })
        .collect();
    catalog::define(conn, &cat.resource_types, &cat.resources, &credits)
}
