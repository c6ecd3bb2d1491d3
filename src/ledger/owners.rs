//! Who owns what the printers and readers report: a card, a print user
//! name. The grants file sets both for each member; a card no member has is
//! remembered for `tallyd cards`.

use super::{Result, Ts};
use crate::ids::CardId;
use rusqlite::{params, Connection, OptionalExtension};

/// Whose card it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardOwner {
    Member {
        id: String,
        print_users: Vec<String>,
    },
    Closed {
        id: String,
    },
    Unknown,
}

/// Looks a card up: the grants file's cards first, then the cards enrolled
/// in the console; an unknown card is remembered for `tallyd cards`.
pub fn card_owner(conn: &Connection, card: &CardId, reader: &str, at: Ts) -> Result<CardOwner> {
    let found: Option<(String, Option<i64>)> = conn
        .prepare_cached(
            "SELECT c.member_id, m.closed_at FROM member_cards c
             JOIN members m ON m.id = c.member_id WHERE c.card = ?1",
        )?
        .query_row([card.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match found {
        Some((id, Some(_))) => Ok(CardOwner::Closed { id }),
        Some((id, None)) => Ok(CardOwner::Member {
            print_users: print_users_of(conn, &id)?,
            id,
        }),
        None => match super::enrolments::enrolled_owner(conn, card.as_str())? {
            Some((id, true)) => Ok(CardOwner::Closed { id }),
            Some((id, false)) => Ok(CardOwner::Member {
                print_users: print_users_of(conn, &id)?,
                id,
            }),
            None => unknown(conn, card, reader, at),
        },
    }
}

/// Remembers a card no member has, for `tallyd cards`.
fn unknown(conn: &Connection, card: &CardId, reader: &str, at: Ts) -> Result<CardOwner> {
    conn.prepare_cached("INSERT INTO unknown_cards (card, reader, seen_at) VALUES (?1, ?2, ?3)")?
        .execute(params![card.as_str(), reader, at])?;
    Ok(CardOwner::Unknown)
}

/// The member's print user names.
pub fn print_users_of(conn: &Connection, member: &str) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT user FROM member_print_users WHERE member_id = ?1")?;
    let users = stmt
        .query_map([member], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(users)
}

/// The member whose print user name is `user` (already normalised).
pub fn member_of_print_user(conn: &Connection, user: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT member_id FROM member_print_users WHERE user = ?1")?
        .query_row([user], |r| r.get(0))
        .optional()?)
}

/// Makes `cards` and `print_users` exactly the member's: a card or name
/// another member had moves to this one.
pub fn set_identities(
    conn: &Connection,
    member: &str,
    cards: &[String],
    print_users: &[String],
) -> Result<()> {
    conn.prepare_cached("DELETE FROM member_cards WHERE member_id = ?1")?
        .execute([member])?;
    drop_print_users(conn, member)?;
    for card in cards {
        conn.prepare_cached("INSERT INTO member_cards (card, member_id) VALUES (?1, ?2) ON CONFLICT(card) DO UPDATE SET member_id = excluded.member_id")?
            .execute(params![card, member])?;
    }
    for user in print_users {
        conn.prepare_cached("INSERT INTO member_print_users (user, member_id) VALUES (?1, ?2) ON CONFLICT(user) DO UPDATE SET member_id = excluded.member_id")?
            .execute(params![user, member])?;
    }
    Ok(())
}

/// A closed member's jobs are no longer theirs. Their cards stay, so a tap
/// is refused as a closed member's rather than as unknown.
pub fn drop_print_users(conn: &Connection, member: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM member_print_users WHERE member_id = ?1")?
        .execute([member])?;
    Ok(())
}
