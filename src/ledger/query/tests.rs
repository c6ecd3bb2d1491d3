//! The read side's queries against a real (in-memory) ledger.

use super::*;
use crate::ledger::{Ledger, Site};

#[test]
fn unknown_cards_are_one_row_per_card_and_reader_newest_first() {
    let ledger = Ledger::open(std::path::Path::new(":memory:"), Site::default())
        .expect("an in-memory ledger");
    for (card, reader, at) in [
        ("04A1B2C3D4", "desk", 100),
        ("04A1B2C3D4", "desk", 300),
        ("04A1B2C3D4", "door", 200),
        ("FF00112233", "door", 50),
    ] {
        ledger
            .conn()
            .execute(
                "INSERT INTO unknown_cards (card, reader, seen_at) VALUES (?1, ?2, ?3)",
                params![card, reader, at],
            )
            .expect("insert");
    }
    let seen: Vec<(String, String, Ts, i64)> = unknown_cards(ledger.conn(), 60)
        .expect("query")
        .into_iter()
        .map(|c| (c.card, c.reader, c.last_seen, c.taps))
        .collect();
    assert_eq!(
        seen,
        [
            ("04A1B2C3D4".into(), "desk".into(), 300, 2),
            ("04A1B2C3D4".into(), "door".into(), 200, 1),
        ]
    );
}
