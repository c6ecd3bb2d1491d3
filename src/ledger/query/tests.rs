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

/// A ledger with usages of every kind, in two UTC months: debits (one
/// with overage), a hold settled in the next month, a refund, one
/// unattributed print job.
fn used_ledger() -> Ledger {
    use crate::ledger::lots::{self, GrantRequest};
    use crate::ledger::{Origin, Payable, SourceKind, UsageRequest};
    let mut ledger = Ledger::open(std::path::Path::new(":memory:"), Site::default())
        .expect("an in-memory ledger");
    ledger
        .write(|c, _| {
            lots::ensure_member(c, "alice", "Alice", 0)?;
            lots::grant(
                c,
                &GrantRequest {
                    member: "alice".into(),
                    credit: PRINTING.into(),
                    amount: 1000,
                    valid_from: 0,
                    expires_at: None,
                    source: SourceKind::Adjustment,
                    source_key: "g1".into(),
                    note: "welcome".into(),
                    at: 10,
                },
            )
            .map(|_| ())
        })
        .expect("grant");
    // 2025-06-30 23:00 UTC, an hour before July.
    let june = 1_751_324_400;
    let req = |key: &str, member: Option<&str>, amount, at| UsageRequest {
        key: key.into(),
        member: member.map(Into::into),
        origin: Origin::Print {
            printer: "lobby".into(),
        },
        payable: Payable::Printing,
        amount,
        detail: r#"{"impressions":3}"#.into(),
        at,
    };
    ledger
        .debit(&req("d1", Some("alice"), 300, june))
        .expect("debit");
    ledger
        .debit(&req("d2", Some("alice"), 900, june + 60))
        .expect("debit with overage");
    ledger
        .debit(&req("d3", None, 70, june + 120))
        .expect("unattributed");
    ledger
        .hold(&req("h1", Some("alice"), 50, june + 180))
        .expect("hold");
    ledger
        .settle("h1", 40, r#"{"impressions":2}"#, june + 7200)
        .expect("settle in July");
    ledger
        .refund("d1", "misprint", june + 7300)
        .expect("refund");
    ledger
}

#[test]
fn migrations_13_and_14_back_fill_what_triggers_keep_after() {
    let ledger = used_ledger();
    let conn = ledger.conn();
    let kept = |conn: &Connection| {
        let owed: Vec<(String, String, i64)> = conn
            .prepare("SELECT member_id, unit, amount FROM overage_owed ORDER BY 1, 2")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        owed
    };
    let by_triggers = kept(conn);
    assert_eq!(by_triggers, [("alice".into(), "cents".into(), 240)]);
    for v in crate::ledger::audit::derived(conn) {
        assert!(v.ok, "{v:?}");
    }
    // As a ledger of schema 12 would be: no totals; migrated again.
    conn.execute_batch(
        "DROP TRIGGER overage_owed_add; DROP TABLE overage_owed; PRAGMA user_version = 12;",
    )
    .expect("schema 11");
    let (mut conn, _, _) = ledger.into_parts();
    crate::ledger::schema::migrate(&mut conn).expect("migrate");
    assert_eq!(kept(&conn), by_triggers);
}
