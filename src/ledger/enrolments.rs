//! Cards enrolled in the console: a manager gives a card no member has to
//! a member. Kept append-only with who, why and when. The grants file's
//! cards win: a tap looks there first ([`owners::card_owner`]), an
//! enrolment of a card the file already gives is refused, and an enrolment
//! a later grants file overrides is noted once ([`note_overridden`]) for
//! the sync to log.
//!
//! [`owners::card_owner`]: super::owners::card_owner

use super::{LedgerError, Result, Ts};
use crate::ids::CardId;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// An enrolment as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enrolment {
    pub id: i64,
    pub card: String,
    pub member: String,
    pub manager: String,
    pub reason: String,
    pub at: Ts,
}

/// An enrolment the grants file overrode: it gives the card to `file_member`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overridden {
    pub enrolment: Enrolment,
    pub file_member: String,
}

/// Gives `card` to `member`, for a tap to find. Refused for a member who is
/// unknown or closed, and for a card the grants file gives to a member.
pub fn enrol(
    conn: &Connection,
    card: &CardId,
    member: &str,
    manager: &str,
    reason: &str,
    at: Ts,
) -> Result<Enrolment> {
    let closed: Option<Option<i64>> = conn
        .prepare_cached("SELECT closed_at FROM members WHERE id = ?1")?
        .query_row([member], |r| r.get(0))
        .optional()?;
    match closed {
        None => return Err(LedgerError::UnknownMember(member.to_string())),
        Some(Some(_)) => return Err(LedgerError::MemberClosed(member.to_string())),
        Some(None) => {}
    }
    if let Some(owner) = file_owner(conn, card.as_str())? {
        return Err(LedgerError::CardInGrantsFile {
            card: card.masked(),
            member: owner,
        });
    }
    conn.prepare_cached(
        "INSERT INTO card_enrolments (card, member_id, manager, reason, at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![card.as_str(), member, manager, reason, at])?;
    Ok(Enrolment {
        id: conn.last_insert_rowid(),
        card: card.as_str().to_string(),
        member: member.to_string(),
        manager: manager.to_string(),
        reason: reason.to_string(),
        at,
    })
}

/// The member the grants file gives `card` to.
fn file_owner(conn: &Connection, card: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT member_id FROM member_cards WHERE card = ?1")?
        .query_row([card], |r| r.get(0))
        .optional()?)
}

/// The member `card` was last enrolled to, with whether they are closed.
pub fn enrolled_owner(conn: &Connection, card: &str) -> Result<Option<(String, bool)>> {
    Ok(conn
        .prepare_cached(
            "SELECT e.member_id, m.closed_at IS NOT NULL FROM card_enrolments e
             JOIN members m ON m.id = e.member_id
             WHERE e.card = ?1 ORDER BY e.id DESC LIMIT 1",
        )?
        .query_row([card], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// A member's enrolled cards, newest first (for the member page).
pub fn of_member(conn: &Connection, member: &str) -> Result<Vec<Enrolment>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, card, member_id, manager, reason, at FROM card_enrolments
         WHERE member_id = ?1 ORDER BY id DESC",
    )?;
    let rows = stmt.query_map([member], enrolment)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn enrolment(r: &rusqlite::Row<'_>) -> rusqlite::Result<Enrolment> {
    Ok(Enrolment {
        id: r.get(0)?,
        card: r.get(1)?,
        member: r.get(2)?,
        manager: r.get(3)?,
        reason: r.get(4)?,
        at: r.get(5)?,
    })
}

/// Notes, once each, the enrolments whose card the grants file now gives
/// to a member (the newest enrolment of each card); returns them, for the
/// sync to log. Runs in the sync's transaction.
pub fn note_overridden(conn: &Connection, at: Ts) -> Result<Vec<Overridden>> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.id, e.card, e.member_id, e.manager, e.reason, e.at, c.member_id
         FROM card_enrolments e JOIN member_cards c ON c.card = e.card
         WHERE e.id = (SELECT MAX(id) FROM card_enrolments WHERE card = e.card)
           AND NOT EXISTS (SELECT 1 FROM card_enrolment_overrides o WHERE o.enrolment_id = e.id)",
    )?;
    let found = stmt
        .query_map([], |r| {
            Ok(Overridden {
                enrolment: enrolment(r)?,
                file_member: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for o in &found {
        conn.prepare_cached(
            "INSERT INTO card_enrolment_overrides (enrolment_id, file_member_id, at)
             VALUES (?1, ?2, ?3)",
        )?
        .execute(params![o.enrolment.id, o.file_member, at])?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::owners::{card_owner, set_identities, CardOwner};
    use crate::ledger::{lots, schema};

    fn ledger() -> Connection {
        let mut conn = Connection::open_in_memory().expect("open");
        schema::migrate(&mut conn).expect("migrate");
        for m in ["alice", "bob"] {
            lots::ensure_member(&conn, m, m, 0).expect("member");
        }
        set_identities(&conn, "alice", &["14008EC793".into()], &[]).expect("cards");
        conn
    }

    fn owner(conn: &Connection, card: &CardId) -> Option<String> {
        match card_owner(conn, card, "desk", 10).expect("owner") {
            CardOwner::Member { id, .. } => Some(id),
            _ => None,
        }
    }

    #[test]
    fn an_enrolled_card_is_found_until_the_grants_file_gives_it_to_someone() {
        let conn = ledger();
        let card = CardId::parse("c0ffee1234").expect("card");
        assert_eq!(owner(&conn, &card), None, "unknown at first");
        let e = enrol(&conn, &card, "bob", "maria", "new badge", 5).expect("enrol");
        assert_eq!((e.card.as_str(), e.member.as_str()), ("C0FFEE1234", "bob"));
        assert_eq!(owner(&conn, &card), Some("bob".into()));
        assert!(note_overridden(&conn, 6).expect("note").is_empty());
        // The grants file gives it to alice: she wins, noted once.
        set_identities(
            &conn,
            "alice",
            &["14008EC793".into(), "C0FFEE1234".into()],
            &[],
        )
        .expect("cards");
        assert_eq!(owner(&conn, &card), Some("alice".into()));
        let noted = note_overridden(&conn, 7).expect("note");
        assert_eq!(noted.len(), 1);
        assert_eq!(
            (
                noted[0].enrolment.member.as_str(),
                noted[0].file_member.as_str()
            ),
            ("bob", "alice")
        );
        assert!(note_overridden(&conn, 8).expect("note").is_empty(), "once");
        let e = conn.execute("DELETE FROM card_enrolments", []);
        assert!(e.is_err(), "append-only");
    }

    #[test]
    fn a_card_of_the_grants_file_or_a_missing_member_is_refused() {
        let conn = ledger();
        let alices = CardId::parse("14008EC793").expect("card");
        let e = enrol(&conn, &alices, "bob", "maria", "x", 5).expect_err("the file's");
        assert!(matches!(e, LedgerError::CardInGrantsFile { ref member, .. } if member == "alice"));
        let card = CardId::parse("C0FFEE1234").expect("card");
        let e = enrol(&conn, &card, "zed", "maria", "x", 5).expect_err("no such member");
        assert!(matches!(e, LedgerError::UnknownMember(_)));
    }
}
