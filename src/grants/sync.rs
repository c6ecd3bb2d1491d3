//! Applying a reconcile plan to the ledger: read the snapshot, compute the
//! plan, write it in the caller's transaction. A file that failed to parse
//! never gets here, so a bad file changes nothing.

use super::model::Catalog;
use super::reconcile::{kind, reconcile, AppliedGrant, CatalogRow, Counts, Snapshot, SyncPlan};
use crate::ledger::{lots, Result, Ts};
use chrono_tz::Tz;
use rusqlite::{params, Connection};

/// Reads what a sync needs from the ledger.
pub fn load_snapshot(conn: &Connection) -> Result<Snapshot> {
    let mut snap = Snapshot::default();
    let mut stmt = conn.prepare("SELECT kind, id, body, first_seen FROM catalog")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        snap.catalog.insert(
            (r.get(0)?, r.get(1)?),
            CatalogRow {
                body: r.get(2)?,
                first_seen: r.get(3)?,
            },
        );
    }
    let mut stmt =
        conn.prepare("SELECT source_key FROM lots WHERE source IN ('plan', 'product')")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        snap.lot_keys.insert(r.get(0)?);
    }
    let mut stmt = conn.prepare("SELECT id, closed_at IS NOT NULL FROM members")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        snap.members.insert(r.get(0)?, r.get(1)?);
    }
    Ok(snap)
}

/// Computes the plan for `catalog` against the ledger, without writing.
pub fn plan(conn: &Connection, catalog: &Catalog, tz: Tz, now: Ts) -> Result<SyncPlan> {
    let snap = load_snapshot(conn)?;
    Ok(reconcile(catalog, &snap, catalog.tz.unwrap_or(tz), now))
}

/// Writes a plan; the caller owns the transaction.
pub fn apply(conn: &Connection, catalog: &Catalog, plan: &SyncPlan, now: Ts) -> Result<Counts> {
    if plan.definitions_changed {
        write_definitions(conn, catalog)?;
    }
    for (member, policy) in &plan.members {
        lots::upsert_member(conn, &member.id, &member.name, *policy, now)?;
        conn.prepare_cached("DELETE FROM member_cards WHERE member_id = ?1")?
            .execute([&member.id])?;
        conn.prepare_cached("DELETE FROM member_print_users WHERE member_id = ?1")?
            .execute([&member.id])?;
        for card in &member.cards {
            conn.prepare_cached("INSERT INTO member_cards (card, member_id) VALUES (?1, ?2) ON CONFLICT(card) DO UPDATE SET member_id = excluded.member_id")?
                .execute(params![card, member.id])?;
        }
        for user in &member.print_users {
            conn.prepare_cached("INSERT INTO member_print_users (user, member_id) VALUES (?1, ?2) ON CONFLICT(user) DO UPDATE SET member_id = excluded.member_id")?
                .execute(params![user, member.id])?;
        }
    }
    for id in &plan.closes {
        lots::close_member(conn, id, now)?;
        // Cards stay: a tap by a closed member's card is refused as closed.
        conn.prepare_cached("DELETE FROM member_print_users WHERE member_id = ?1")?
            .execute([id])?;
    }
    for (k, id) in &plan.catalog_drop {
        conn.prepare_cached("DELETE FROM catalog WHERE kind = ?1 AND id = ?2")?
            .execute(params![k, id])?;
    }
    for (k, id, body, first_seen) in &plan.catalog_put {
        conn.prepare_cached(
            "INSERT INTO catalog (kind, id, body, first_seen) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(kind, id) DO UPDATE SET body = excluded.body, first_seen = excluded.first_seen",
        )?
        .execute(params![k, id, body, first_seen])?;
    }
    for c in &plan.changes {
        conn.prepare_cached(
            "INSERT INTO catalog_changes (at, kind, subject, change, before, after) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![now, c.kind, c.subject, c.change, c.before, c.after])?;
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
    conn.prepare_cached(
        "INSERT INTO catalog (kind, id, body, first_seen) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(kind, id) DO UPDATE SET body = excluded.body",
    )?
    .execute(params![kind::ACCOUNT_GRANT, id, body, now])?;
    Ok(())
}

fn write_definitions(conn: &Connection, catalog: &Catalog) -> Result<()> {
    conn.execute("DELETE FROM resource_types", [])?;
    conn.execute("DELETE FROM resources", [])?;
    for (id, name) in &catalog.resource_types {
        conn.execute(
            "INSERT INTO resource_types (id, name) VALUES (?1, ?2)",
            params![id, name],
        )?;
    }
    for (id, rt) in &catalog.resources {
        conn.execute(
            "INSERT INTO resources (id, resource_type) VALUES (?1, ?2)",
            params![id, rt],
        )?;
    }
    // A time credit dropped from the file keeps its lots but pays for nothing
    // new; one listed is redefined (rule 7: the list is a live definition).
    let known: Vec<String> = conn
        .prepare("SELECT id FROM time_credits")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in known {
        if !catalog.time_credits.contains_key(&id) {
            lots::define_time_credit(conn, &id, &id, &[])?;
        }
    }
    for (id, tc) in &catalog.time_credits {
        lots::define_time_credit(conn, id, &tc.name, &tc.resource_types)?;
    }
    Ok(())
}
