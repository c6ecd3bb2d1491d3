//! The read side's queries against a real (in-memory) ledger.

use super::*;
use crate::ledger::{Ledger, Site, PRINTING};
use rusqlite::params;

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
    let rolled = |conn: &Connection| months::rolled_up(conn, 0, i64::MAX / 2).expect("rolled");
    let rolled_by_triggers = rolled(conn);
    assert_eq!(
        rolled_by_triggers,
        months::scanned(conn, 0, i64::MAX / 2).unwrap()
    );
    // June: d1 refunded, d2, d3 unattributed, h1 settled in July for 40.
    let june = months::month_floor(1_751_324_400);
    let july = months::next_month(june);
    let report_june = report(conn, june, july, ReportBy::Member).expect("report");
    let row = |key: &str| report_june.iter().find(|r| r.key == key).cloned().unwrap();
    let alice = row("alice");
    assert_eq!(
        (
            alice.jobs,
            alice.impressions,
            alice.printing_cents,
            alice.refunds
        ),
        (3, 3 + 2, 900 + 40, 1)
    );
    // Overage goes by its own time: d2's 200 and the hold's 50 in June,
    // the settle's -10 in July.
    assert_eq!(alice.overage_cents, 250);
    let nobody = row("(unattributed)");
    assert_eq!((nobody.jobs, nobody.unattributed_cents), (1, 70));
    let july_report = report(conn, july, months::next_month(july), ReportBy::Member).unwrap();
    assert!(july_report.is_empty(), "no usage in July: {july_report:?}");

    // As a ledger of schema 12 would be: no totals; migrated again.
    conn.execute_batch(
        "DROP TRIGGER overage_owed_add; DROP TABLE overage_owed;
         DROP TRIGGER usage_months_usage; DROP TRIGGER usage_months_team;
         DROP TRIGGER usage_months_settle; DROP TRIGGER usage_months_refund;
         DROP TRIGGER usage_months_overage; DROP TABLE usage_months;
         PRAGMA user_version = 12;",
    )
    .expect("schema 11");
    let (mut conn, _, _) = ledger.into_parts();
    crate::ledger::schema::migrate(&mut conn).expect("migrate");
    assert_eq!(kept(&conn), by_triggers);
    assert_eq!(rolled(&conn), rolled_by_triggers);
}

/// A report for a month of a site east or west of UTC reads the UTC
/// months from the roll-up and the hours between from the usages: the
/// same as reading every usage of the site's month.
#[test]
fn a_report_off_utc_equals_reading_its_usages() {
    let ledger = used_ledger();
    let conn = ledger.conn();
    for tz in [
        chrono_tz::Asia::Tokyo,
        chrono_tz::America::Los_Angeles,
        chrono_tz::Asia::Kathmandu,
    ] {
        for month in [6, 7] {
            let (start, end) = crate::clock::month_bounds(tz, 2025, month).unwrap();
            assert_eq!(
                months::totals(conn, start, end).unwrap(),
                months::scanned(conn, start, end).unwrap(),
                "{tz} 2025-{month}"
            );
        }
    }
    // A range shorter than a month, inside one.
    let (a, b) = (1_751_324_400 - 100, 1_751_324_400 + 200);
    assert_eq!(
        months::totals(conn, a, b).unwrap(),
        months::scanned(conn, a, b).unwrap()
    );
}

/// The roll-up's triggers must never fail a usage: a detail that is not
/// JSON, or impressions that are not a whole number, count 0 (or whole)
/// impressions, read the same from the roll-up and the rows.
#[test]
fn a_usage_whose_detail_is_not_json_is_charged_and_rolled_up() {
    use crate::ledger::{Origin, Payable, UsageRequest};
    let mut ledger = used_ledger();
    for (key, detail) in [
        ("odd1", "not json"),
        ("odd2", r#"{"impressions":"x"}"#),
        ("odd3", r#"{"impressions":2.5}"#),
    ] {
        let req = UsageRequest {
            key: key.into(),
            member: None,
            origin: Origin::Print {
                printer: "odd".into(),
            },
            payable: Payable::Printing,
            amount: 10,
            detail: detail.into(),
            at: 1_751_324_400,
        };
        ledger.debit(&req).expect("charged");
    }
    let conn = ledger.conn();
    for v in crate::ledger::audit::derived(conn) {
        assert!(v.ok, "{v:?}");
    }
    let june = months::month_floor(1_751_324_400);
    let rows = report(conn, june, months::next_month(june), ReportBy::Printer).unwrap();
    let odd = rows.iter().find(|r| r.key == "odd").expect("odd printer");
    assert_eq!((odd.jobs, odd.impressions, odd.printing_cents), (3, 2, 30));
}

#[test]
fn a_statement_line_carries_its_usage_s_overage_and_an_uncovered_usage_has_its_own() {
    let ledger = used_ledger();
    let st = statement(ledger.conn(), "alice", 0, i64::MAX / 2).expect("statement");
    let lines: Vec<(&str, &str, i64, i64)> = st
        .lines
        .iter()
        .map(|l| {
            (
                l.usage_key.as_deref().unwrap_or(""),
                l.kind.as_str(),
                l.amount,
                l.overage,
            )
        })
        .collect();
    // d2 took the 700 left after d1 and owes 200: one line with both.
    assert!(lines.contains(&("d2", "debit", -700, 200)), "{lines:?}");
    assert_eq!(
        lines.iter().filter(|l| l.0 == "d2").count(),
        1,
        "one line per usage and kind: {lines:?}"
    );
    // The hold found no credit left: its line changes only the overage.
    assert!(lines.contains(&("h1", "hold", 0, 50)), "{lines:?}");
}

/// The daily chart sums whole quarter hours from the usages' time index
/// and the settle and refund adjustments, and reads a period's ragged ends
/// from the usages: the same as reading every usage of each day, in zones
/// east and west of UTC and on the half and three-quarter hour. Migration
/// 17 back-fills the adjustments the triggers keep.
#[test]
fn daily_totals_from_the_roll_up_equal_reading_the_usages() {
    use crate::ledger::{Origin, Payable, UsageRequest};
    let mut ledger = used_ledger();
    // Usages spread over quarter hours, days and the edges of both.
    let june = 1_751_324_400;
    for (i, at) in [
        june + 899,
        june + 900,
        june + 1_000,
        june + 86_399,
        june + 3 * 86_400 + 450,
    ]
    .into_iter()
    .enumerate()
    {
        let req = UsageRequest {
            key: format!("spread{i}"),
            member: None,
            origin: Origin::Print {
                printer: "spread".into(),
            },
            payable: Payable::Printing,
            amount: 10 + i as i64,
            detail: "{}".into(),
            at,
        };
        ledger.debit(&req).expect("charged");
    }
    let conn = ledger.conn();
    let scan = |periods: &[(Ts, Ts)]| -> Vec<(i64, i64)> {
        periods
            .iter()
            .map(|&(a, b)| {
                conn.query_row(
                    "SELECT COALESCE(SUM(CASE WHEN u.credit_kind = 'printing' THEN c ELSE 0 END), 0),
                            COALESCE(SUM(CASE WHEN u.credit_kind = 'time' THEN c ELSE 0 END), 0)
                     FROM (SELECT u.credit_kind, CASE WHEN r.usage_id IS NOT NULL THEN 0
                               WHEN u.is_hold = 1 THEN COALESCE(hr.actual, 0) ELSE u.amount END AS c
                           FROM usages u LEFT JOIN refunds r ON r.usage_id = u.id
                           LEFT JOIN hold_resolutions hr ON hr.usage_id = u.id AND hr.outcome = 'settled'
                           WHERE u.at >= ?1 AND u.at < ?2) u",
                    params![a, b],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap()
            })
            .collect()
    };
    let (first, last): (Ts, Ts) = conn
        .query_row("SELECT MIN(at), MAX(at) FROM usages", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let mut checked = 0;
    for offset in [0, 9 * 3600, -7 * 3600, 5 * 3600 + 45 * 60, 1234] {
        let mut periods = Vec::new();
        let mut day = (first - offset).div_euclid(86_400) * 86_400 + offset;
        while day <= last {
            periods.push((day, day + 86_400));
            day += 86_400;
        }
        // A day that ends now, mid quarter hour.
        periods.push((periods[0].0, first + 17));
        let totals = daily_totals(conn, &periods).unwrap();
        assert_eq!(totals, scan(&periods), "offset {offset}");
        checked += totals.iter().filter(|t| **t != (0, 0)).count();
    }
    assert!(checked >= 5, "the days checked had usages: {checked}");
    for v in crate::ledger::audit::derived(conn) {
        assert!(v.ok, "{v:?}");
    }
    // Back-filled by migration 17 as the triggers kept it.
    let kept = |conn: &Connection| -> Vec<(Ts, String, i64)> {
        conn.prepare("SELECT quarter, credit_kind, amount FROM quarter_adjustments ORDER BY 1, 2")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    let by_triggers = kept(conn);
    assert!(!by_triggers.is_empty(), "{by_triggers:?}");
    conn.execute_batch("UPDATE quarter_adjustments SET amount = amount + 1")
        .unwrap();
    let broken = crate::ledger::audit::derived(conn);
    assert!(
        broken
            .iter()
            .any(|v| !v.ok && v.check.starts_with("quarter-hour adjustments")),
        "{broken:?}"
    );
    conn.execute_batch(
        "DROP TRIGGER quarter_adjustments_settle; DROP TRIGGER quarter_adjustments_refund;
         DROP TABLE quarter_adjustments;
         PRAGMA user_version = 16;",
    )
    .unwrap();
    let (mut conn, _, _) = ledger.into_parts();
    crate::ledger::schema::migrate(&mut conn).expect("migrate");
    assert_eq!(kept(&conn), by_triggers);
}
