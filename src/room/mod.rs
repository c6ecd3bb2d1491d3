//! Room sessions paid in time credits: the first tap at a room's reader
//! starts a session, the same member's next tap ends it, and its minutes,
//! rounded up to the increment, are debited from time credits valid for the
//! room's resource type.
//!
//! - this file: the pure rules (what a tap does, how minutes are counted);
//! - [`clock`]: the clocks a session is measured on.
//!
//! The ledger applies them (`ledger::sessions`), inside the writer.

pub mod clock;

use crate::config::{OtherMember, ReaderConfig};

/// A room as a reader at its door sees it: the rules a session there runs by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// The reader's id, recorded with each session.
    pub reader: String,
    /// Sessions are charged in whole increments of this many minutes.
    pub increment_minutes: i64,
    /// Sessions are closed (and charged) at this length, in seconds.
    pub max_secs: i64,
    pub other_member: OtherMember,
}

impl Room {
    pub fn of(reader: &ReaderConfig) -> Room {
        Room {
            reader: reader.id.clone(),
            increment_minutes: i64::try_from(reader.increment.as_secs() / 60).unwrap_or(i64::MAX),
            max_secs: i64::try_from(reader.max_session.as_secs()).unwrap_or(i64::MAX),
            other_member: reader.other_member,
        }
    }
}

/// A tap within this long of a session's start never ends it (a bounce).
pub const BOUNCE_SECS: i64 = 10;

/// Minutes charged for `elapsed_secs`: whole increments, rounded up. A
/// session of no time costs nothing. `None` if the minutes are too many to
/// count (an overflow), never a wrapped count.
pub fn charged_minutes(elapsed_secs: i64, increment_minutes: i64) -> Option<i64> {
    if elapsed_secs <= 0 || increment_minutes <= 0 {
        return Some(0);
    }
    let step = increment_minutes.checked_mul(60)?;
    // Both are above zero, so this rounds up without overflowing.
    let increments = (elapsed_secs - 1) / step + 1;
    increments.checked_mul(increment_minutes)
}

/// What a tap at a room does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapDecision {
    /// No session is open: start one for the tapping member.
    Start,
    /// The session's own member tapped again: end it.
    End,
    /// The session's member tapped again right after starting it: ignore.
    Bounce,
    /// Another member tapped while a session is open: refuse.
    RefuseOther { open_by: String },
    /// Another member tapped and the room is set to end the open session.
    EndOther { open_by: String },
}

/// The rules for a tap by `member` at a room whose open session (if any) is
/// `open_by`, started `elapsed_secs` ago.
pub fn decide(open: Option<(&str, i64)>, member: &str, other: OtherMember) -> TapDecision {
    match open {
        None => TapDecision::Start,
        Some((by, elapsed)) if by == member && elapsed < BOUNCE_SECS => TapDecision::Bounce,
        Some((by, _)) if by == member => TapDecision::End,
        Some((by, _)) => match other {
            OtherMember::Refuse => TapDecision::RefuseOther {
                open_by: by.to_string(),
            },
            OtherMember::End => TapDecision::EndOther {
                open_by: by.to_string(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_round_up_to_the_increment() {
        let cases = [
            (0, 15, 0),
            (1, 15, 15),
            (15 * 60, 15, 15),
            (15 * 60 + 1, 15, 30),
            (37 * 60, 15, 45),
            (37 * 60, 1, 37),
            (37 * 60 + 1, 1, 38),
            (-5, 15, 0),
            (8 * 3600, 30, 480),
        ];
        for (secs, inc, want) in cases {
            assert_eq!(charged_minutes(secs, inc), Some(want), "{secs}s by {inc}m");
        }
        // Too many minutes to count is no count, never a wrapped one.
        assert_eq!(charged_minutes(i64::MAX, i64::MAX), None);
        assert_eq!(charged_minutes(i64::MAX, 1), Some(i64::MAX / 60 + 1));
        assert_eq!(charged_minutes(1, i64::MAX / 60 + 1), None);
    }

    #[test]
    fn taps_start_end_bounce_and_refuse() {
        use OtherMember::*;
        assert_eq!(decide(None, "alice", Refuse), TapDecision::Start);
        assert_eq!(
            decide(Some(("alice", 2)), "alice", Refuse),
            TapDecision::Bounce
        );
        assert_eq!(
            decide(Some(("alice", 600)), "alice", Refuse),
            TapDecision::End
        );
        assert_eq!(
            decide(Some(("alice", 600)), "bob", Refuse),
            TapDecision::RefuseOther {
                open_by: "alice".into()
            }
        );
        assert_eq!(
            decide(Some(("alice", 600)), "bob", End),
            TapDecision::EndOther {
                open_by: "alice".into()
            }
        );
    }
}
