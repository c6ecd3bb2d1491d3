//! Teams under the sync rules, on real ledgers: a team and a member leaving
//! it are catalog changes with history (rule 9); a member who leaves stops
//! drawing on the pool at once, and nothing already spent moves; a bad team
//! changes nothing (rule 8) and is named with file, line and field.

use rusqlite::Connection;
use tallyd::grants::{self, source::Validators};
use tallyd::ledger::usage::{Origin, Payable, UsageRequest};
use tallyd::ledger::{schema, Ledger, Site};

const T: i64 = 1_796_000_000;

const BASE: &str = r#"
[[member]]
id = "boss"
name = "Boss"
  [[member.grant]]
  id = "company-print"
  credit = "printing"
  amount = 1000
  from = 2026-01-01

[[member]]
id = "ann"
name = "Ann"

[[member]]
id = "ben"
name = "Ben"
"#;

fn team(members: &str, extra: &str) -> String {
    format!(
        "{BASE}\n[[team]]\nid = \"acme\"\nname = \"Acme\"\npayer = \"boss\"\nmembers = [{members}]\nshare = [\"printing\"]\n{extra}\n"
    )
}

struct Bench {
    _dir: tempfile::TempDir,
    ledger: Ledger,
    seq: usize,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::open(&dir.path().join("ledger.db"), Site::default()).expect("open");
        Bench {
            _dir: dir,
            ledger,
            seq: 0,
        }
    }

    fn sync(&mut self, text: &str, now: i64) {
        let catalog = grants::parse("grants.toml", text).expect("valid grants file");
        self.ledger
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
        schema::verify(self.conn()).expect("history matches lots");
    }

    fn conn(&self) -> &Connection {
        self.ledger.conn()
    }

    /// Debits `cents` of printing to `member`: (covered, pooled, overage).
    fn print(&mut self, member: &str, cents: i64, at: i64) -> (i64, i64, i64) {
        self.seq += 1;
        let req = UsageRequest {
            key: format!("job-{}", self.seq),
            member: Some(member.into()),
            origin: Origin::Manual,
            payable: Payable::Printing,
            amount: cents,
            detail: String::new(),
            at,
        };
        let c = self.ledger.debit(&req).expect("debit");
        (c.covered, c.pooled, c.overage)
    }

    fn remaining(&self, member: &str) -> i64 {
        self.conn()
            .query_row(
                "SELECT COALESCE(SUM(remaining), 0) FROM lots WHERE member_id = ?1",
                [member],
                |r| r.get(0),
            )
            .expect("remaining")
    }

    fn changes(&self) -> Vec<(String, Option<String>, Option<String>)> {
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT change, before, after FROM catalog_changes WHERE kind = 'team' ORDER BY id",
            )
            .expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows")
    }

    fn overage_of(&self, member: &str) -> i64 {
        self.conn()
            .query_row(
                "SELECT COALESCE(SUM(amount), 0) FROM overage WHERE member_id = ?1",
                [member],
                |r| r.get(0),
            )
            .expect("overage")
    }
}

#[test]
fn a_member_who_leaves_stops_drawing_at_once_and_nothing_spent_moves() {
    let mut b = Bench::new();
    b.sync(&team("\"boss\", \"ann\", \"ben\"", ""), T);
    assert_eq!(b.print("ann", 300, T + 10), (300, 300, 0));
    // Ann leaves: an edit of the team, with what was there before.
    b.sync(&team("\"boss\", \"ben\"", ""), T + 20);
    let changes = b.changes();
    assert_eq!(changes.len(), 2, "added, then edited: {changes:?}");
    assert_eq!(changes[1].0, "edited");
    assert!(changes[1]
        .1
        .as_deref()
        .is_some_and(|s| s.contains("\"ann\"")));
    assert!(!changes[1]
        .2
        .as_deref()
        .is_some_and(|s| s.contains("\"ann\"")));
    // Her next job is hers alone (overage, site default policy); the pool
    // keeps what she drew before, and Ben still draws.
    assert_eq!(b.print("ann", 100, T + 30), (0, 0, 100));
    assert_eq!(b.remaining("boss"), 700);
    assert_eq!(b.print("ben", 50, T + 40), (50, 50, 0));
    let drawn: i64 = b
        .conn()
        .query_row(
            "SELECT SUM(amount) FROM pool_draws WHERE member_id = 'ann'",
            [],
            |r| r.get(0),
        )
        .expect("draws");
    assert_eq!(drawn, 300, "what was spent stays spent");
    // The team removed: a deletion with its body; the team is closed and
    // nobody draws.
    b.sync(BASE, T + 50);
    let changes = b.changes();
    assert_eq!(changes.last().map(|c| c.0.as_str()), Some("deleted"));
    assert_eq!(b.print("ben", 10, T + 60), (0, 0, 10));
    let closed: Option<i64> = b
        .conn()
        .query_row("SELECT closed_at FROM teams WHERE id = 'acme'", [], |r| {
            r.get(0)
        })
        .expect("team row stays");
    assert_eq!(closed, Some(T + 50));
    // Syncing the same file again changes nothing.
    let before = b.changes().len();
    b.sync(BASE, T + 70);
    assert_eq!(b.changes().len(), before);
}

#[test]
fn merged_billing_sends_overage_to_the_payer_within_the_member_limit() {
    let mut b = Bench::new();
    b.sync(
        &team(
            "\"boss\", \"ann\"",
            "member_limit_cents = 400\nbilling = \"merged\"",
        ),
        T,
    );
    // 400 from the pool (the limit), 100 overage owed by the payer.
    assert_eq!(b.print("ann", 500, T + 10), (400, 400, 100));
    assert_eq!((b.overage_of("boss"), b.overage_of("ann")), (100, 0));
    // The limit is spent for the month: nothing more from the pool.
    assert_eq!(b.print("ann", 10, T + 20), (0, 0, 10));
    assert_eq!(b.remaining("boss"), 600);
}

#[test]
fn a_bad_team_is_named_with_line_and_field_and_changes_nothing() {
    let two = format!(
        "{}\n[[team]]\nid = \"other\"\npayer = \"ben\"\nmembers = [\"ben\", \"ann\"]\nshare = \"all\"\n",
        team("\"boss\", \"ann\"", "")
    );
    let e = grants::parse("grants.toml", &two).expect_err("ann in two teams");
    let line = e.to_string();
    assert!(
        line.contains("team[1].members[1]") && line.contains("already in team `acme`"),
        "{line}"
    );
    assert!(line.starts_with("grants.toml:"), "{line}");
    for (bad, field) in [
        (team("\"ann\"", ""), "team[0].payer"),
        (team("\"boss\", \"nobody\"", ""), "team[0].members[1]"),
        (team("\"boss\"", "billing = \"shared\""), "team[0].billing"),
        (
            team("\"boss\"", "member_limit_cents = -1"),
            "team[0].member_limit_cents",
        ),
        (
            team("\"boss\"", "").replace("share = [\"printing\"]", "share = [\"golf\"]"),
            "team[0].share[0]",
        ),
        (
            team("\"boss\"", "").replace("name = \"Acme\"", "name = \"A\\u001b[2J\""),
            "team[0].name",
        ),
    ] {
        let e = grants::parse("grants.toml", &bad).expect_err(field);
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
    // A ledger synced with a good file keeps it when a bad one comes.
    let mut b = Bench::new();
    b.sync(&team("\"boss\", \"ann\"", ""), T);
    assert!(grants::parse("grants.toml", &two).is_err());
    let members: i64 = b
        .conn()
        .query_row("SELECT COUNT(*) FROM team_members", [], |r| r.get(0))
        .expect("count");
    assert_eq!(members, 2);
}

#[test]
fn a_settle_reports_the_balance_after_with_the_pool_as_a_debit_does() {
    let mut b = Bench::new();
    b.sync(&team("\"boss\", \"ann\"", "member_limit_cents = 600"), T);
    let req = |key: &str, amount| UsageRequest {
        key: key.into(),
        member: Some("ann".into()),
        origin: Origin::Manual,
        payable: Payable::Printing,
        amount,
        detail: String::new(),
        at: T + 10,
    };
    // Ann has nothing of her own: 600 of the pool's 1000 are hers this month.
    let debit = b.ledger.debit(&req("d", 100)).expect("debit");
    assert_eq!(debit.balance_after, 500);
    let held = match b.ledger.hold(&req("h", 300)).expect("hold") {
        tallyd::ledger::HoldOutcome::Placed(c) => c,
        refused => panic!("{refused:?}"),
    };
    assert_eq!(held.balance_after, 200);
    // Settled to 120: 180 go back to the pool, and to her limit.
    let settled = b.ledger.settle("h", 120, "", T + 20).expect("settle");
    assert_eq!((settled.covered, settled.pooled), (120, 120));
    assert_eq!(
        settled.balance_after, 380,
        "own 0 + pool allowance 600 - 220"
    );
    let again = b.ledger.settle("h", 120, "", T + 30).expect("replay");
    assert!(again.replayed);
    assert_eq!(again.balance_after, 380);
    // What the next debit sees is the same.
    let next = b.ledger.debit(&req("d2", 0)).expect("debit");
    assert_eq!(next.balance_after, 380);
}

/// A pool debit writes one index of `pool_draws` only (the one the monthly
/// limit reads): a usage's pool lots are found through its history rows.
#[test]
fn pool_draws_keep_only_the_index_the_limit_reads() {
    let b = Bench::new();
    let mut stmt = b
        .conn()
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'pool_draws' ORDER BY name")
        .expect("prepare");
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    assert_eq!(names, ["pool_draws_by_month"]);
}
