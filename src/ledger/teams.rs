//! Teams as the grants file last declared them: written by a sync (current
//! membership and shares rewritten, a team no longer in the file closed; the
//! catalog history keeps what was there before), and read by usage (a
//! member's team terms) and by the manager's queries.

use super::{Result, Ts};
use rusqlite::{params, Connection, OptionalExtension};

/// Shares every credit (the `share = "all"` of the grants file).
pub const ALL: &str = "*";

/// One team as a sync writes it.
#[derive(Debug, Clone, Copy)]
pub struct TeamDef<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub payer: &'a str,
    pub members: &'a [String],
    /// Credit ids, or [`ALL`].
    pub shares: &'a [String],
    pub combine: bool,
    pub limit_cents: Option<i64>,
    pub limit_minutes: Option<i64>,
    /// `individual` or `merged`.
    pub billing: &'a str,
}

/// Rewrites the teams: `teams` are the open ones, every other is closed.
/// A member no longer listed stops drawing on the pool from this commit.
pub fn define(conn: &Connection, teams: &[TeamDef<'_>], now: Ts) -> Result<()> {
    conn.prepare_cached("DELETE FROM team_members")?
        .execute([])?;
    conn.prepare_cached("DELETE FROM team_shares")?
        .execute([])?;
    let open: Vec<String> = conn
        .prepare_cached("SELECT id FROM teams WHERE closed_at IS NULL")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in open {
        if !teams.iter().any(|t| t.id == id) {
            conn.prepare_cached("UPDATE teams SET closed_at = ?2 WHERE id = ?1")?
                .execute(params![id, now])?;
        }
    }
    for t in teams {
        conn.prepare_cached(
            "INSERT INTO teams (id, name, payer_id, combine, member_limit_cents, member_limit_minutes, billing, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(id) DO UPDATE SET name = excluded.name, payer_id = excluded.payer_id,
                 combine = excluded.combine, member_limit_cents = excluded.member_limit_cents,
                 member_limit_minutes = excluded.member_limit_minutes, billing = excluded.billing,
                 closed_at = NULL",
        )?
        .execute(params![
            t.id,
            t.name,
            t.payer,
            t.combine,
            t.limit_cents,
            t.limit_minutes,
            t.billing,
            now
        ])?;
        for credit in t.shares {
            conn.prepare_cached("INSERT INTO team_shares (team_id, credit) VALUES (?1, ?2)")?
                .execute(params![t.id, credit])?;
        }
        for member in t.members {
            conn.prepare_cached("INSERT INTO team_members (member_id, team_id) VALUES (?1, ?2)")?
                .execute(params![member, t.id])?;
        }
    }
    Ok(())
}

/// What a member's team lets them draw on, as the ledger holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub team: String,
    pub payer: String,
    pub combine: bool,
    pub limit_cents: Option<i64>,
    pub limit_minutes: Option<i64>,
    pub merged: bool,
}

/// The open team `member` belongs to now, if any.
pub fn terms_of(conn: &Connection, member: &str) -> Result<Option<Terms>> {
    Ok(conn
        .prepare_cached(
            "SELECT t.id, t.payer_id, t.combine, t.member_limit_cents, t.member_limit_minutes, t.billing
             FROM team_members m JOIN teams t ON t.id = m.team_id
             WHERE m.member_id = ?1 AND t.closed_at IS NULL",
        )?
        .query_row([member], |r| {
            Ok(Terms {
                team: r.get(0)?,
                payer: r.get(1)?,
                combine: r.get(2)?,
                limit_cents: r.get(3)?,
                limit_minutes: r.get(4)?,
                merged: r.get::<_, String>(5)? == "merged",
            })
        })
        .optional()?)
}

/// The open teams' ids, with their members now, sorted.
pub fn open_teams(conn: &Connection) -> Result<Vec<(String, Vec<String>)>> {
    let ids: Vec<String> = conn
        .prepare_cached("SELECT id FROM teams WHERE closed_at IS NULL ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::new();
    for id in ids {
        let members = conn
            .prepare_cached(
                "SELECT member_id FROM team_members WHERE team_id = ?1 ORDER BY member_id",
            )?
            .query_map([&id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        out.push((id, members));
    }
    Ok(out)
}

/// One open team as the ledger holds it: what a sync last wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub id: String,
    pub name: String,
    pub payer: String,
    /// Sorted.
    pub members: Vec<String>,
    /// Credit ids or [`ALL`], sorted.
    pub shares: Vec<String>,
    pub combine: bool,
    pub limit_cents: Option<i64>,
    pub limit_minutes: Option<i64>,
    pub billing: String,
}

/// Every open team, by id (`tallyd check-ledger` compares them with the
/// catalog).
pub fn definitions(conn: &Connection) -> Result<Vec<Definition>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, payer_id, combine, member_limit_cents, member_limit_minutes, billing
         FROM teams WHERE closed_at IS NULL ORDER BY id",
    )?;
    let teams = stmt
        .query_map([], |r| {
            Ok(Definition {
                id: r.get(0)?,
                name: r.get(1)?,
                payer: r.get(2)?,
                members: Vec::new(),
                shares: Vec::new(),
                combine: r.get(3)?,
                limit_cents: r.get(4)?,
                limit_minutes: r.get(5)?,
                billing: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let list = |sql: &str, team: &str| -> Result<Vec<String>> {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map([team], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    };
    teams
        .into_iter()
        .map(|mut t| {
            t.members = list(
                "SELECT member_id FROM team_members WHERE team_id = ?1 ORDER BY member_id",
                &t.id,
            )?;
            t.shares = list(
                "SELECT credit FROM team_shares WHERE team_id = ?1 ORDER BY credit",
                &t.id,
            )?;
            Ok(t)
        })
        .collect()
}

/// Members in a team the ledger holds as closed, or in none at all: rows
/// a sync never writes.
pub fn stray_members(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.member_id, m.team_id FROM team_members m LEFT JOIN teams t ON t.id = m.team_id
         WHERE t.id IS NULL OR t.closed_at IS NOT NULL ORDER BY m.member_id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
