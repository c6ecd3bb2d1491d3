//! Teams as a manager sees them through the real binary: `sync --dry-run`
//! shows team changes, a member's `balance` shows what the pool makes
//! available to them, `report --by team` totals each team, and
//! `check-ledger` ties every pool draw to its history. Table, `--json` and
//! `--csv` each.

use crate::support::tallyd::{fails, SiteDir};
use rusqlite::Connection;

const CONFIG: &str = r#"
[site]
name = "Test Space"
timezone = "Europe/Lisbon"
currency_symbol = "$"
ledger = "ledger.db"
overage_policy = "credits-then-invoice"
"#;

const NOW: &str = "2026-11-10 10:00";

fn grants(members: &str, limit: i64) -> String {
    format!(
        r#"
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

[[team]]
id = "acme"
name = "Acme"
payer = "boss"
members = [{members}]
share = ["printing"]
member_limit_cents = {limit}
"#
    )
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("valid JSON")
}

fn sync(site: &SiteDir, args: &[&str]) -> String {
    let source = site.path("grants.toml");
    let source = source.to_str().expect("utf-8 path");
    let mut all = vec!["sync", "--source", source];
    all.extend(args);
    site.ok(NOW, &all)
}

/// Boss pays for Acme; Ann (nothing of her own) copied 100c from the pool.
fn acme() -> SiteDir {
    let site = SiteDir::with_config(CONFIG);
    site.write("grants.toml", &grants("\"boss\", \"ann\"", 400));
    let dry = sync(&site, &["--dry-run"]);
    assert!(
        dry.contains("  team    team acme: added (payer boss, members ann,boss)"),
        "{dry}"
    );
    sync(&site, &[]);
    site.ok(
        NOW,
        &["charge", "ann", "--units", "100", "--reason", "copier"],
    );
    site
}

#[test]
fn a_members_balance_shows_the_pool_in_table_json_and_csv() {
    let site = acme();
    // 900 left in the pool, but her limit leaves her 300 of it.
    let table = site.ok(NOW, &["balance", "ann"]);
    let pool_line = table
        .lines()
        .find(|l| l.starts_with("ann") && l.contains("acme"))
        .unwrap_or_else(|| panic!("a pool line for ann: {table}"));
    assert!(
        pool_line.contains("printing") && pool_line.matches("$3.00").count() == 2,
        "from the pool and limit left: {table}"
    );
    let j = json(&site.ok(NOW, &["balance", "ann", "--json"]));
    assert_eq!(j[0]["printing_cents"], 0, "{j}");
    assert_eq!(j[0]["pool"]["team"], "acme", "{j}");
    assert_eq!(j[0]["pool"]["credits"]["printing"], 300, "{j}");
    assert_eq!(j[0]["pool"]["limit_left_cents"], 300, "{j}");
    let csv = site.ok(NOW, &["balance", "--csv"]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("member,name,closed,printing_cents,overage_cents,overage_minutes,team,pool_printing_cents,pool_limit_left_cents,pool_limit_left_minutes"),
        "{csv}"
    );
    let rows: Vec<&str> = lines.collect();
    assert!(rows.contains(&"ann,Ann,false,0,0,0,acme,300,300,"), "{csv}");
    // The payer draws on no pool of his own (combine is off): nothing
    // beyond his lots.
    assert!(
        rows.contains(&"boss,Boss,false,900,0,0,acme,0,400,"),
        "{csv}"
    );
    assert!(rows.contains(&"ben,Ben,false,0,0,0,,,,"), "{csv}");
}

/// A team's statement, streamed (table in two passes, CSV and JSON in
/// one): the same draws in each form, in order, and an unknown team is
/// refused with its name.
#[test]
fn a_team_statement_lists_each_draw_in_table_json_and_csv() {
    let site = acme();
    site.ok(
        "2026-11-10 11:00",
        &[
            "charge", "ann", "--units", "50", "--reason", "binding", "--key", "b1",
        ],
    );
    let period = ["--from", "2026-11-01", "--to", "2026-11-30"];
    let args = |format: &'static str| {
        let mut a = vec!["statement", "--team", "acme"];
        a.extend(period);
        if !format.is_empty() {
            a.push(format);
        }
        a
    };
    let j = json(&site.ok("2026-11-11 09:00", &args("--json")));
    let draws = j.as_array().unwrap_or_else(|| panic!("an array: {j}"));
    assert_eq!(draws.len(), 2, "{j}");
    assert_eq!(draws[0]["member"], "ann", "{j}");
    assert_eq!(draws[0]["amount"], 100, "{j}");
    assert_eq!(draws[1]["usage_key"], "manual:b1", "{j}");

    let csv = site.ok("2026-11-11 09:00", &args("--csv"));
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0], "at,member,kind,credit,from,lot,amount,key",
        "{csv}"
    );
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(rows[2].ends_with(",50,manual:b1"), "{csv}");

    let table = site.ok("2026-11-11 09:00", &args(""));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[1].starts_with("date "), "{table}");
    assert_eq!(lines.len(), 4, "title, header, two draws: {table}");
    let key_at = |l: &str| l.rfind("manual:").expect("a key");
    assert_eq!(key_at(lines[2]), key_at(lines[3]), "aligned:\n{table}");
    assert!(lines[3].contains("$0.50"), "{table}");

    let empty = site.ok(
        "2026-11-11 09:00",
        &[
            "statement",
            "--team",
            "acme",
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-31",
        ],
    );
    assert!(empty.contains("(no draws in this period)"), "{empty}");
    let unknown = fails(&mut site.at(
        "2026-11-11 09:00",
        &["statement", "--team", "nobody", "--json"],
    ));
    assert!(unknown.contains("unknown team `nobody`"), "{unknown}");
}

#[test]
fn the_month_report_by_team_in_table_json_and_csv() {
    let site = acme();
    // Ben is in no team: left out.
    site.ok(
        NOW,
        &["charge", "ben", "--units", "40", "--reason", "copier"],
    );
    // Past her limit: 300 from the pool, 50 overage (hers, individual).
    site.ok(
        NOW,
        &["charge", "ann", "--units", "350", "--reason", "posters"],
    );
    let by = ["report", "--month", "2026-11", "--by", "team"];
    let j = json(&site.ok(NOW, &[&by[..], &["--json"]].concat()));
    let rows = j.as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{j}");
    assert_eq!(rows[0]["key"], "acme", "{j}");
    assert_eq!(rows[0]["printing_cents"], 450, "{j}");
    assert_eq!(rows[0]["overage_cents"], 50, "{j}");
    let csv = site.ok(NOW, &[&by[..], &["--csv"]].concat());
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        [
            "team,jobs,impressions,printing_cents,sessions,minutes,overage_cents,overage_minutes,refunds",
            "acme,0,0,450,0,0,50,0,0",
        ],
        "{csv}"
    );
    let table = site.ok(NOW, &by);
    let acme = table
        .lines()
        .find(|l| l.starts_with("acme"))
        .unwrap_or_else(|| panic!("an acme row: {table}"));
    assert!(acme.contains("$4.50") && acme.contains("$0.50"), "{table}");
    assert!(!table.contains("ben"), "{table}");
}

#[test]
fn a_dry_run_shows_members_joining_and_leaving_and_terms_and_writes_nothing() {
    let site = acme();
    site.write("grants.toml", &grants("\"boss\", \"ben\"", 500));
    let text = sync(&site, &["--dry-run"]);
    for line in [
        "  team    team acme: ben joined",
        "  team    team acme: ann left",
        "  team    team acme: member_limit_cents 400 -> 500",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    let csv = sync(&site, &["--dry-run", "--csv"]);
    assert!(
        csv.contains("team-joined,ben,,,,,team acme: ben joined")
            && csv.contains("team-left,ann,,,,,team acme: ann left")
            && csv.contains("team-terms,,,,,,team acme: member_limit_cents 400 -> 500"),
        "{csv}"
    );
    let j = json(&sync(&site, &["--dry-run", "--json"]));
    let changes: Vec<(String, String)> = j["teams"]
        .as_array()
        .expect("teams")
        .iter()
        .map(|t| {
            (
                t["change"].as_str().unwrap_or("").to_string(),
                t["member"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("joined".to_string(), "ben".to_string()),
            ("left".into(), "ann".into()),
            ("terms".into(), String::new()),
        ],
        "{j}"
    );
    // Nothing written: Ann still draws on the pool.
    let j = json(&site.ok(NOW, &["balance", "ann", "--json"]));
    assert_eq!(j[0]["pool"]["team"], "acme", "{j}");
    // The team removed: closed.
    site.write(
        "grants.toml",
        grants("\"boss\"", 0)
            .split("[[team]]")
            .next()
            .expect("members"),
    );
    let text = sync(&site, &["--dry-run"]);
    assert!(text.contains("  team    team acme: closed"), "{text}");
}

#[test]
fn check_ledger_ties_every_pool_draw_to_its_history() {
    let site = acme();
    let out = site.ok(NOW, &["check-ledger"]);
    assert!(
        out.contains("ok   pool draws against history: 1 usage lots of the pool agree")
            && out.contains("ok   append-only triggers: all 29 present")
            && out.contains("ok   teams against the catalog: 1 teams agree"),
        "{out}"
    );
    // Ann's draw lowered by hand, to lift her monthly limit: the money in
    // the history is unchanged, the draw no longer agrees with it.
    let conn = Connection::open(site.ledger()).expect("open");
    conn.execute_batch(
        "DROP TRIGGER pool_draws_no_update;
         UPDATE pool_draws SET amount = 10;",
    )
    .expect("tamper");
    drop(conn);
    let out = site.run(NOW, &["check-ledger"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("failed 2 of 12 checks"), "{stdout}{stderr}");
    assert!(
        stdout.contains("FAIL append-only triggers: missing: pool_draws_no_update"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL pool draws against history: usage 1 (")
            && stdout.contains(
                "its pool draws on lot 1 sum to 10 but its history on that lot takes 100"
            ),
        "{stdout}"
    );
}

#[test]
fn check_ledger_finds_a_member_put_in_a_team_by_hand() {
    let site = acme();
    // Ben, in no team, slipped into Acme's to draw on its pool: a sync never
    // wrote that, and the catalog says otherwise.
    let conn = Connection::open(site.ledger()).expect("open");
    conn.execute(
        "INSERT INTO team_members (member_id, team_id) VALUES ('ben', 'acme')",
        [],
    )
    .expect("tamper");
    drop(conn);
    let out = site.run(NOW, &["check-ledger"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL teams against the catalog: team `acme` is ")
            && stdout.contains("ok   pool draws against history"),
        "{stdout}"
    );
}
