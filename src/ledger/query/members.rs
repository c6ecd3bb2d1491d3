//! Finding members for the console: by id, name or card, and what the
//! member page shows beside the balance (their cards and team).

use crate::ids::CardId;
use crate::ledger::Result;
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

/// A member as a search lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    pub id: String,
    pub name: String,
    pub closed: bool,
    /// Why it matched: `id`, `name` or `card`.
    pub matched: &'static str,
}

/// Most members a search lists.
pub const MAX_FOUND: usize = 50;

/// Members whose id or card is `text` (a card as hex, as readers send it),
/// then whose id or name contains it (case-insensitive); at most
/// [`MAX_FOUND`], each once.
pub fn find(conn: &Connection, text: &str) -> Result<Vec<Found>> {
    let text = text.trim();
    let mut found: Vec<Found> = Vec::new();
    if text.is_empty() {
        return Ok(found);
    }
    let row = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(String, String, bool)> {
        Ok((r.get(0)?, r.get(1)?, r.get::<_, Option<i64>>(2)?.is_some()))
    };
    let mut push = |(id, name, closed): (String, String, bool), matched| {
        if found.len() < MAX_FOUND && !found.iter().any(|f| f.id == id) {
            found.push(Found {
                id,
                name,
                closed,
                matched,
            });
        }
    };
    if let Some(card) = CardId::parse(text) {
        let by_card = conn
            .prepare_cached(
                "SELECT m.id, m.name, m.closed_at FROM member_cards c
                 JOIN members m ON m.id = c.member_id WHERE c.card = ?1",
            )?
            .query_row([card.as_str()], row)
            .optional()?;
        if let Some(m) = by_card {
            push(m, "card");
        }
    }
    let exact = conn
        .prepare_cached("SELECT id, name, closed_at FROM members WHERE id = ?1")?
        .query_row([text], row)
        .optional()?;
    if let Some(m) = exact {
        push(m, "id");
    }
    let pattern = format!(
        "%{}%",
        text.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, closed_at, id LIKE ?1 ESCAPE '\\' FROM members
         WHERE id LIKE ?1 ESCAPE '\\' OR name LIKE ?1 ESCAPE '\\'
         ORDER BY closed_at IS NOT NULL, id LIMIT ?2",
    )?;
    let rows = stmt.query_map(rusqlite::params![pattern, MAX_FOUND as i64], |r| {
        Ok((row(r)?, r.get::<_, bool>(3)?))
    })?;
    for r in rows {
        let (m, by_id) = r?;
        push(m, if by_id { "id" } else { "name" });
    }
    Ok(found)
}

/// A member's cards (whole ids) and team id, for the member page.
pub fn cards_and_team(conn: &Connection, member: &str) -> Result<(Vec<String>, Option<String>)> {
    let cards = conn
        .prepare_cached("SELECT card FROM member_cards WHERE member_id = ?1 ORDER BY card")?
        .query_map([member], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    let team = conn
        .prepare_cached("SELECT team_id FROM team_members WHERE member_id = ?1")?
        .query_row([member], |r| r.get(0))
        .optional()?;
    Ok((cards, team))
}

/// The time credits the ledger knows, by id (for the grant form).
pub fn time_credit_ids(conn: &Connection) -> Result<Vec<String>> {
    let ids = conn
        .prepare_cached("SELECT id FROM time_credits ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(ids)
}
