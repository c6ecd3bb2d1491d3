//! The sync rules of `design.md`, one test (or two) per rule, each named
//! after it. Each test syncs grants files into a real SQLite ledger at chosen
//! instants and checks what a manager would see: lots, balances, history.

use chrono_tz::Tz;
use rusqlite::Connection;
use tallyd::clock;
use tallyd::grants::{self, reconcile::Counts, source::Validators};
use tallyd::ledger::{query, schema, Ledger, Site};

const TZ: &str = "Europe/Lisbon";

struct Bench {
    _dir: tempfile::TempDir,
    ledger: Ledger,
}

fn tz() -> Tz {
    TZ.parse().expect("zone")
}

fn at(local: &str) -> i64 {
    clock::parse_datetime(tz(), local).expect("test time parses")
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().expect("tempdir");
        let site = Site {
            tz: tz(),
            ..Site::default()
        };
        let ledger = Ledger::open(&dir.path().join("ledger.db"), site).expect("open");
        Bench { _dir: dir, ledger }
    }

    fn sync(&mut self, text: &str, when: &str) -> Counts {
        let catalog = grants::parse("grants.toml", text).expect("valid grants file");
        let now = at(when);
        let report = self
            .ledger
            .write(|conn, site| {
                grants::apply(
                    conn,
                    site.tz,
                    &catalog,
                    "grants.toml",
                    text,
                    &Validators::default(),
                    now,
                    false,
                )
            })
            .expect("sync");
        schema::verify(self.ledger.conn()).expect("history matches lots");
        report.counts
    }

    fn conn(&self) -> &Connection {
        self.ledger.conn()
    }

    /// (valid_from local date, amount granted, expires local date) of a member's lots of a credit.
    fn lots(&self, member: &str, credit: &str) -> Vec<(String, i64, String)> {
        let mut stmt = self
            .conn()
            .prepare("SELECT valid_from, granted, expires_at FROM lots WHERE member_id = ?1 AND credit = ?2 ORDER BY valid_from, id")
            .expect("prepare");
        stmt.query_map([member, credit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
            ))
        })
        .expect("query")
        .map(|r| {
            let (from, granted, exp) = r.expect("row");
            (
                clock::local_date(tz(), from).to_string(),
                granted,
                exp.map(|e| clock::format_local(tz(), e))
                    .unwrap_or_else(|| "never".into()),
            )
        })
        .collect()
    }

    fn balance(&self, member: &str, when: &str) -> query::Balance {
        query::balances(self.conn(), Some(member), at(when))
            .expect("balance")
            .remove(0)
    }

    fn count(&self, sql: &str) -> i64 {
        self.conn().query_row(sql, [], |r| r.get(0)).expect("count")
    }
}

const HEAD: &str = r#"
timezone = "Europe/Lisbon"
[[resource_type]]
id = "small-meeting-room"
[[resource_type]]
id = "hot-desk"
[[time_credit]]
id = "meeting-hours"
resource_types = ["small-meeting-room"]
"#;

fn file(plans: &str, members: &str) -> String {
    format!("{HEAD}\n{plans}\n{members}")
}

const MONTHLY: &str = r#"
[[plan]]
id = "resident"
renews = "monthly"
  [[plan.benefit]]
  id = "print"
  credit = "printing"
  amount = 1000
"#;

fn alice_from(start: &str) -> String {
    format!("[[member]]\nid = \"alice\"\nname = \"Alice\"\n  [[member.plan]]\n  plan = \"resident\"\n  start = {start}\n")
}

#[test]
fn rule1_one_lot_per_member_plan_benefit_and_period_syncing_twice_never_grants_twice() {
    let mut b = Bench::new();
    let f = file(MONTHLY, &alice_from("2026-11-05"));
    assert_eq!(b.sync(&f, "2026-11-10 09:00").issued, 1);
    assert_eq!(b.sync(&f, "2026-11-10 09:05").issued, 0);
    assert_eq!(b.sync(&f, "2026-11-20 09:00").issued, 0);
    assert_eq!(b.lots("alice", "printing").len(), 1);
    assert_eq!(b.balance("alice", "2026-11-20 09:00").printing_cents, 1000);
    // The next period is one more lot, once.
    assert_eq!(b.sync(&f, "2026-12-05 00:00").issued, 1);
    assert_eq!(b.sync(&f, "2026-12-06 00:00").issued, 0);
}

#[test]
fn rule1_periods_are_anchored_on_the_start_31_january_28_february_31_march_30_april() {
    let mut b = Bench::new();
    let f = file(MONTHLY, &alice_from("2027-01-31"));
    for day in [
        "2027-01-31 08:00",
        "2027-02-28 08:00",
        "2027-03-31 08:00",
        "2027-04-30 08:00",
        "2027-05-31 08:00",
    ] {
        b.sync(&f, day);
    }
    let starts: Vec<String> = b
        .lots("alice", "printing")
        .into_iter()
        .map(|l| l.0)
        .collect();
    assert_eq!(
        starts,
        [
            "2027-01-31",
            "2027-02-28",
            "2027-03-31",
            "2027-04-30",
            "2027-05-31"
        ]
    );
}

#[test]
fn rule1_periods_are_local_midnights_across_daylight_saving_changes() {
    let mut b = Bench::new();
    let f = file(MONTHLY, &alice_from("2026-03-15"));
    b.sync(&f, "2026-03-15 00:30");
    // Lisbon moves to summer time on 29 March: the period still ends at local midnight.
    assert_eq!(
        b.lots("alice", "printing"),
        [(
            "2026-03-15".to_string(),
            1000,
            "2026-04-15 00:00".to_string()
        )]
    );
    // Just before local midnight of 15 April (22:59 UTC) there is no new lot; just after, there is.
    assert_eq!(b.sync(&f, "2026-04-14 23:59").issued, 0);
    assert_eq!(b.sync(&f, "2026-04-15 00:00").issued, 1);
    b.sync(&f, "2026-10-25 12:00");
    let last = b.lots("alice", "printing").pop().expect("a lot");
    assert_eq!(
        last,
        (
            "2026-10-15".to_string(),
            1000,
            "2026-11-15 00:00".to_string()
        ),
        "across the autumn change too"
    );
}

#[test]
fn rule2_editing_a_plan_benefit_changes_only_lots_issued_after_the_edit() {
    let mut b = Bench::new();
    b.sync(
        &file(MONTHLY, &alice_from("2026-10-01")),
        "2026-10-02 09:00",
    );
    let edited = MONTHLY.replace("amount = 1000", "amount = 1500\n  expires = \"2 months\"");
    b.sync(
        &file(&edited, &alice_from("2026-10-01")),
        "2026-10-20 09:00",
    );
    b.sync(
        &file(&edited, &alice_from("2026-10-01")),
        "2026-11-01 09:00",
    );
    assert_eq!(
        b.lots("alice", "printing"),
        [
            (
                "2026-10-01".to_string(),
                1000,
                "2026-11-01 00:00".to_string()
            ),
            (
                "2026-11-01".to_string(),
                1500,
                "2027-01-01 00:00".to_string()
            ),
        ]
    );
}

#[test]
fn rule2_editing_a_product_benefit_changes_only_lots_issued_after_the_edit() {
    let product = |amount: i64| {
        format!("[[product]]\nid = \"pack\"\n  [[product.benefit]]\n  id = \"print\"\n  credit = \"printing\"\n  amount = {amount}\n")
    };
    let buys = |refs: &[&str]| {
        let mut m = String::from("[[member]]\nid = \"alice\"\nname = \"Alice\"\n");
        for r in refs {
            m.push_str(&format!("  [[member.product]]\n  product = \"pack\"\n  date = 2026-11-01\n  reference = \"{r}\"\n"));
        }
        m
    };
    let mut b = Bench::new();
    b.sync(&file(&product(500), &buys(&["INV-1"])), "2026-11-02 09:00");
    b.sync(
        &file(&product(800), &buys(&["INV-1", "INV-2"])),
        "2026-11-03 09:00",
    );
    let amounts: Vec<i64> = b
        .lots("alice", "printing")
        .into_iter()
        .map(|l| l.1)
        .collect();
    assert_eq!(amounts, [500, 800]);
}

#[test]
fn rule3_deleting_a_plan_benefit_stops_future_lots_and_keeps_issued_ones() {
    let two = format!("{MONTHLY}  [[plan.benefit]]\n  id = \"rooms\"\n  credit = \"meeting-hours\"\n  amount = 120\n");
    let mut b = Bench::new();
    b.sync(&file(&two, &alice_from("2026-10-01")), "2026-10-02 09:00");
    assert_eq!(b.lots("alice", "meeting-hours").len(), 1);
    b.sync(
        &file(MONTHLY, &alice_from("2026-10-01")),
        "2026-10-10 09:00",
    );
    b.sync(
        &file(MONTHLY, &alice_from("2026-10-01")),
        "2026-11-02 09:00",
    );
    assert_eq!(
        b.lots("alice", "meeting-hours").len(),
        1,
        "no lot after the deletion"
    );
    assert_eq!(
        b.lots("alice", "printing").len(),
        2,
        "the other benefit goes on"
    );
    assert_eq!(
        b.balance("alice", "2026-10-20 09:00")
            .time_minutes
            .get("meeting-hours"),
        Some(&120),
        "issued lot kept"
    );
}

#[test]
fn rule4_a_benefit_added_to_a_plan_reaches_existing_subscribers_at_their_next_renewal() {
    let two = format!("{MONTHLY}  [[plan.benefit]]\n  id = \"rooms\"\n  credit = \"meeting-hours\"\n  amount = 120\n");
    let mut b = Bench::new();
    b.sync(
        &file(MONTHLY, &alice_from("2026-10-05")),
        "2026-10-06 09:00",
    );
    b.sync(&file(&two, &alice_from("2026-10-05")), "2026-10-20 09:00");
    assert!(b.lots("alice", "meeting-hours").is_empty(), "not at once");
    b.sync(&file(&two, &alice_from("2026-10-05")), "2026-11-05 09:00");
    assert_eq!(
        b.lots("alice", "meeting-hours"),
        [(
            "2026-11-05".to_string(),
            120,
            "2026-12-05 00:00".to_string()
        )]
    );
}

#[test]
fn rule4_members_who_subscribe_later_get_an_added_benefit_from_their_start() {
    let two = format!("{MONTHLY}  [[plan.benefit]]\n  id = \"rooms\"\n  credit = \"meeting-hours\"\n  amount = 120\n");
    let bob = "[[member]]\nid = \"bob\"\nname = \"Bob\"\n  [[member.plan]]\n  plan = \"resident\"\n  start = 2026-10-25\n";
    let mut b = Bench::new();
    b.sync(
        &file(MONTHLY, &alice_from("2026-10-05")),
        "2026-10-06 09:00",
    );
    b.sync(&file(&two, &alice_from("2026-10-05")), "2026-10-20 09:00");
    b.sync(
        &file(&two, &format!("{}{bob}", alice_from("2026-10-05"))),
        "2026-10-25 09:00",
    );
    assert_eq!(b.lots("bob", "meeting-hours").len(), 1, "from his start");
    assert!(
        b.lots("alice", "meeting-hours").is_empty(),
        "alice still waits for her renewal"
    );
}

#[test]
fn rule4_a_member_who_subscribes_on_the_day_a_benefit_is_added_in_the_same_sync_gets_it_for_their_first_period(
) {
    let two = format!("{MONTHLY}  [[plan.benefit]]\n  id = \"rooms\"\n  credit = \"meeting-hours\"\n  amount = 120\n");
    let member = |id: &str, start: &str| {
        format!("[[member]]\nid = \"{id}\"\nname = \"{id}\"\n  [[member.plan]]\n  plan = \"resident\"\n  start = {start}\n")
    };
    let mut b = Bench::new();
    b.sync(
        &file(MONTHLY, &alice_from("2026-10-05")),
        "2026-10-06 09:00",
    );
    // One sync at 09:00 on 20 October adds the benefit and carol, who
    // subscribes that day (her first period began at midnight, before the
    // sync), and dave, subscribed since the 10th but new to the file.
    let members = format!(
        "{}{}{}",
        alice_from("2026-10-05"),
        member("carol", "2026-10-20"),
        member("dave", "2026-10-10")
    );
    b.sync(&file(&two, &members), "2026-10-20 09:00");
    assert_eq!(
        b.lots("carol", "meeting-hours"),
        [(
            "2026-10-20".to_string(),
            120,
            "2026-11-20 00:00".to_string()
        )],
        "carol gets it for her first period"
    );
    assert_eq!(
        b.balance("carol", "2026-10-20 09:05")
            .time_minutes
            .get("meeting-hours"),
        Some(&120)
    );
    // Already subscribed before the day it was added: at the next renewal.
    assert!(b.lots("alice", "meeting-hours").is_empty());
    assert!(b.lots("dave", "meeting-hours").is_empty());
    assert_eq!(b.lots("dave", "printing").len(), 1);
    b.sync(&file(&two, &members), "2026-11-05 09:00");
    b.sync(&file(&two, &members), "2026-11-10 09:00");
    assert_eq!(
        b.lots("alice", "meeting-hours"),
        [(
            "2026-11-05".to_string(),
            120,
            "2026-12-05 00:00".to_string()
        )]
    );
    assert_eq!(b.lots("dave", "meeting-hours")[0].0, "2026-11-10");
    // And carol's next period once, like any other.
    b.sync(&file(&two, &members), "2026-11-20 09:00");
    assert_eq!(b.lots("carol", "meeting-hours").len(), 2);
}

fn grant(amount: i64, from: &str, until: &str) -> String {
    format!(
        "[[member]]\nid = \"alice\"\nname = \"Alice\"\n  [[member.grant]]\n  id = \"g1\"\n  credit = \"printing\"\n  amount = {amount}\n  from = {from}\n  until = {until}\n"
    )
}

fn charge(b: &mut Bench, key: &str, cents: i64, when: &str) {
    let req = tallyd::ledger::UsageRequest {
        key: key.into(),
        member: Some("alice".into()),
        origin: tallyd::ledger::Origin::Manual,
        payable: tallyd::ledger::Payable::Printing,
        amount: cents,
        detail: "{}".into(),
        at: at(when),
    };
    b.ledger.debit(&req).expect("debit");
}

#[test]
fn rule5_editing_an_account_grant_adjusts_its_lot_as_history() {
    let mut b = Bench::new();
    b.sync(
        &file("", &grant(1000, "2026-11-01", "2026-11-30")),
        "2026-11-02 09:00",
    );
    charge(&mut b, "c1", 300, "2026-11-03 09:00");
    let counts = b.sync(
        &file("", &grant(1500, "2026-11-01", "2026-12-31")),
        "2026-11-04 09:00",
    );
    assert_eq!(counts.adjusted, 1);
    assert_eq!(
        b.lots("alice", "printing"),
        [(
            "2026-11-01".to_string(),
            1500,
            "2027-01-01 00:00".to_string()
        )]
    );
    assert_eq!(b.balance("alice", "2026-11-04 10:00").printing_cents, 1200);
    assert_eq!(
        b.count("SELECT COUNT(*) FROM history WHERE kind = 'adjust'"),
        2,
        "amount and validity, each a row"
    );
}

#[test]
fn rule5_shrinking_an_account_grant_below_what_was_used_leaves_zero_never_negative() {
    let mut b = Bench::new();
    b.sync(
        &file("", &grant(1000, "2026-11-01", "2026-11-30")),
        "2026-11-02 09:00",
    );
    charge(&mut b, "c1", 700, "2026-11-03 09:00");
    b.sync(
        &file("", &grant(500, "2026-11-01", "2026-11-30")),
        "2026-11-04 09:00",
    );
    assert_eq!(b.balance("alice", "2026-11-04 10:00").printing_cents, 0);
    let note: String = b
        .conn()
        .query_row("SELECT note FROM history WHERE kind = 'adjust'", [], |r| {
            r.get(0)
        })
        .expect("adjust row");
    assert!(note.contains("700 already used"), "{note}");
    assert_eq!(b.count("SELECT COUNT(*) FROM lots WHERE remaining < 0"), 0);
}

#[test]
fn rule5_deleting_an_account_grant_voids_what_is_left() {
    let mut b = Bench::new();
    b.sync(
        &file("", &grant(1000, "2026-11-01", "2026-11-30")),
        "2026-11-02 09:00",
    );
    charge(&mut b, "c1", 250, "2026-11-03 09:00");
    let counts = b.sync(
        &file("", "[[member]]\nid = \"alice\"\nname = \"Alice\"\n"),
        "2026-11-04 09:00",
    );
    assert_eq!(counts.voided, 1);
    assert_eq!(b.balance("alice", "2026-11-04 10:00").printing_cents, 0);
    assert_eq!(
        b.count("SELECT -SUM(delta) FROM history WHERE kind = 'void'"),
        750
    );
}

#[test]
fn rule6_a_member_removed_from_the_file_is_closed_with_history_kept() {
    let mut b = Bench::new();
    let with_card = format!(
        "{}cards = [\"14008ec793\"]\nprint_users = [\"CORP\\\\Alice\"]\n",
        alice_from("2026-11-01")
            .replace("  [[member.plan]]", "")
            .replace("  plan = \"resident\"\n  start = 2026-11-01\n", "")
    );
    b.sync(&file(MONTHLY, &with_card), "2026-11-02 09:00");
    assert_eq!(
        b.count("SELECT COUNT(*) FROM member_cards WHERE card = '14008EC793'"),
        1
    );
    assert_eq!(
        b.count("SELECT COUNT(*) FROM member_print_users WHERE user = 'alice'"),
        1
    );
    let counts = b.sync(&file(MONTHLY, ""), "2026-11-03 09:00");
    assert_eq!(counts.closed, 1);
    assert_eq!(
        b.count("SELECT COUNT(*) FROM members WHERE id = 'alice' AND closed_at IS NOT NULL"),
        1
    );
    // The card stays on record, so a tap is refused as a closed member's
    // (the daemon joins `members.closed_at`), not as an unknown card.
    assert_eq!(
        b.count(
            "SELECT COUNT(*) FROM member_cards c JOIN members m ON m.id = c.member_id
             WHERE m.closed_at IS NULL"
        ),
        0,
        "card stops working"
    );
    assert_eq!(
        b.count("SELECT COUNT(*) FROM member_print_users"),
        0,
        "print user stops working"
    );
    assert_eq!(b.count("SELECT COUNT(*) FROM catalog_changes WHERE kind = 'member' AND change = 'deleted' AND before LIKE '%Alice%'"), 1);
}

#[test]
fn rule6_a_closed_member_gets_no_new_lots() {
    let mut b = Bench::new();
    b.sync(
        &file(MONTHLY, &alice_from("2026-10-01")),
        "2026-10-02 09:00",
    );
    b.sync(&file(MONTHLY, ""), "2026-10-03 09:00");
    b.sync(&file(MONTHLY, ""), "2026-11-02 09:00");
    assert_eq!(
        b.lots("alice", "printing").len(),
        1,
        "history kept, nothing new"
    );
}

#[test]
fn rule7_a_time_credits_resource_types_are_a_live_definition() {
    let rooms = "[[member]]\nid = \"alice\"\nname = \"Alice\"\n  [[member.grant]]\n  id = \"g1\"\n  credit = \"meeting-hours\"\n  amount = 120\n  from = 2026-11-01\n";
    let mut b = Bench::new();
    b.sync(&file("", rooms), "2026-11-02 09:00");
    let desk = tallyd::ledger::Payable::Time {
        resource_type: "hot-desk".into(),
    };
    let room = tallyd::ledger::Payable::Time {
        resource_type: "small-meeting-room".into(),
    };
    let avail = |b: &Bench, p: &tallyd::ledger::Payable| {
        tallyd::ledger::usage::available(b.conn(), "alice", p, at("2026-11-02 10:00"))
            .expect("available")
    };
    assert_eq!((avail(&b, &room), avail(&b, &desk)), (120, 0));
    let widened = file("", rooms).replace(
        "resource_types = [\"small-meeting-room\"]",
        "resource_types = [\"small-meeting-room\", \"hot-desk\"]",
    );
    b.sync(&widened, "2026-11-02 09:30");
    assert_eq!(
        avail(&b, &desk),
        120,
        "the lot issued before now pays for desks too"
    );
}

#[test]
fn periods_whose_lots_would_already_have_expired_are_not_issued_but_valid_carry_over_lots_are() {
    let carry = MONTHLY.replace("amount = 1000", "amount = 1000\n  expires = \"3 months\"");
    let mut b = Bench::new();
    // Subscribed two years ago; first sync today.
    b.sync(&file(&carry, &alice_from("2024-11-10")), "2026-11-20 09:00");
    let starts: Vec<String> = b
        .lots("alice", "printing")
        .into_iter()
        .map(|l| l.0)
        .collect();
    // A lot from 10 August would have expired on 10 November: not issued.
    assert_eq!(
        starts,
        ["2026-09-10", "2026-10-10", "2026-11-10"],
        "only lots still valid"
    );
    let mut b = Bench::new();
    b.sync(
        &file(MONTHLY, &alice_from("2024-11-10")),
        "2026-11-20 09:00",
    );
    assert_eq!(
        b.lots("alice", "printing").len(),
        1,
        "the current period only"
    );
}

#[test]
fn rule9_every_edit_and_deletion_leaves_a_history_row_with_what_was_there_before() {
    let mut b = Bench::new();
    b.sync(
        &file(MONTHLY, &alice_from("2026-10-01")),
        "2026-10-02 09:00",
    );
    let edited = MONTHLY.replace("amount = 1000", "amount = 1200");
    b.sync(
        &file(&edited, &alice_from("2026-10-01")),
        "2026-10-03 09:00",
    );
    let (before, after): (String, String) = b
        .conn()
        .query_row("SELECT before, after FROM catalog_changes WHERE kind = 'plan_benefit' AND change = 'edited'", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("edit recorded");
    assert!(
        before.contains("1000") && after.contains("1200"),
        "{before} -> {after}"
    );
    b.sync(&file("", ""), "2026-10-04 09:00");
    let deleted = b.count(
        "SELECT COUNT(*) FROM catalog_changes WHERE change = 'deleted' AND before IS NOT NULL",
    );
    assert!(deleted >= 3, "plan, its benefit and the member: {deleted}");
}

#[test]
fn rule8_an_unchanged_file_synced_again_writes_nothing() {
    let mut b = Bench::new();
    let f = file(MONTHLY, &alice_from("2026-10-01"));
    b.sync(&f, "2026-10-02 09:00");
    let rows = b.count("SELECT (SELECT COUNT(*) FROM history) + (SELECT COUNT(*) FROM catalog_changes) + (SELECT COUNT(*) FROM lots)");
    let counts = b.sync(&f, "2026-10-02 09:10");
    assert_eq!(counts, Counts::default());
    assert_eq!(rows, b.count("SELECT (SELECT COUNT(*) FROM history) + (SELECT COUNT(*) FROM catalog_changes) + (SELECT COUNT(*) FROM lots)"));
}
