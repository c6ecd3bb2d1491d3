use super::*;
use crate::ledger::outbox::{self, tests::ledger};
use crate::ledger::Ledger;

const T: Ts = 1_796_000_000;

fn request(key: &str, amount: i64, origin: Origin) -> UsageRequest {
    UsageRequest {
        key: key.into(),
        member: Some("alice".into()),
        origin,
        payable: Payable::Printing,
        amount,
        detail: r#"{"impressions":3}"#.into(),
        at: T + 1,
    }
}

/// What the centre would hand back: every entry the ledger shipped.
fn shipped(ledger: &Ledger) -> Vec<Lost> {
    outbox::pending(ledger.conn(), 500)
        .expect("pending")
        .into_iter()
        .map(|e| Lost {
            kind: e.kind,
            body: serde_json::from_str(&e.body).expect("json"),
            at: e.at,
        })
        .collect()
}

/// Each usage by key: fingerprint, amount, whether resolved at what, and
/// refunded; and alice's lots' remaining.
/// A usage as compared: key, fingerprint, amount, settled at, refunded.
type Row = (String, String, i64, Option<i64>, bool);

fn state(ledger: &Ledger) -> (Vec<Row>, i64) {
    let mut stmt = ledger
        .conn()
        .prepare(
            "SELECT u.key, u.fingerprint, u.amount, h.actual,
                    EXISTS (SELECT 1 FROM refunds r WHERE r.usage_id = u.id)
             FROM usages u LEFT JOIN hold_resolutions h ON h.usage_id = u.id ORDER BY u.key",
        )
        .expect("query");
    let usages = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .expect("rows")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    let remaining = ledger
        .conn()
        .query_row("SELECT sum(remaining) FROM lots", [], |r| r.get(0))
        .expect("lots");
    (usages, remaining)
}

/// A ledger charged after its backup, and the backup (a ledger with the
/// same lots and nothing charged): the backup imports what the first
/// shipped and ends where the first is, every key with its fingerprint;
/// a second import finds everything present.
#[test]
fn a_restored_ledger_imports_the_usages_resolutions_and_refunds_it_lost() {
    let mut lived = ledger();
    lived.write(|c, _| outbox::enable(c, "ber-1")).expect("on");
    let printer = || Origin::Print {
        printer: "lobby".into(),
    };
    lived.debit(&request("k1", 10, printer())).expect("debit");
    lived.hold(&request("h1", 50, printer())).expect("hold");
    lived.settle("h1", 30, "{}", T + 2).expect("settle");
    lived
        .hold(&request("h2", 40, Origin::Manual))
        .expect("hold");
    lived.void("h2", "cancelled", T + 2).expect("void");
    lived
        .hold(&request("h3", 20, printer()))
        .expect("an open hold");
    lived.refund("k1", "jammed", T + 3).expect("refund");
    let lost = shipped(&lived);

    let mut restored = ledger();
    restored
        .write(|c, _| outbox::enable(c, "ber-1"))
        .expect("on");
    let got = restored
        .write(|c, site| import(c, site, &lost))
        .expect("import");
    assert_eq!(
        got,
        Imported {
            usages: 4,
            resolutions: 2,
            refunds: 1,
            present: 0,
            skipped: 0
        }
    );
    assert_eq!(state(&restored), state(&lived));
    let again = restored
        .write(|c, site| import(c, site, &lost))
        .expect("import");
    assert_eq!(
        again,
        Imported {
            present: 7,
            ..Imported::default()
        }
    );
    assert_eq!(state(&restored), state(&lived));
}

/// A key the restored ledger charged again with other content stays as
/// it is, and the lost refund of the first content is not applied to it; a body this ledger cannot
/// rebuild (a fingerprint edited, an unknown kind) is skipped; the rest is
/// imported.
#[test]
fn keys_present_and_bodies_it_cannot_rebuild_are_left_and_counted() {
    let mut lived = ledger();
    lived.write(|c, _| outbox::enable(c, "ber-1")).expect("on");
    lived
        .debit(&request("k1", 10, Origin::Manual))
        .expect("debit");
    lived
        .debit(&request("k2", 20, Origin::Manual))
        .expect("debit");
    lived
        .debit(&request("k3", 30, Origin::Manual))
        .expect("debit");
    lived.refund("k1", "jammed", T + 3).expect("refund");
    let mut lost = shipped(&lived);
    lost[1].body["fingerprint"] = serde_json::Value::String(
        lost[1].body["fingerprint"]
            .as_str()
            .expect("text")
            .replace("20", "2"),
    );
    lost.push(Lost {
        kind: "escrow".into(),
        body: serde_json::json!({"key": "x", "at": T}),
        at: T,
    });

    let mut restored = ledger();
    restored
        .debit(&request("k1", 15, Origin::Manual))
        .expect("k1 again");
    let got = restored
        .write(|c, site| import(c, site, &lost))
        .expect("import");
    assert_eq!(
        got,
        Imported {
            usages: 1,
            resolutions: 0,
            refunds: 0,
            present: 1,
            skipped: 3
        }
    );
    let (usages, remaining) = state(&restored);
    let amounts: Vec<(String, i64, bool)> = usages
        .into_iter()
        .map(|(k, _, amount, _, refunded)| (k, amount, refunded))
        .collect();
    assert_eq!(
        amounts,
        [("k1".to_string(), 15, false), ("k3".to_string(), 30, false)]
    );
    assert_eq!(remaining, 1000 - 45);
}
