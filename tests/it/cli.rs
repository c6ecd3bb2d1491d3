//! The real `tallyd` binary on temporary ledgers: what a manager types and
//! what they see.

use crate::support::ledger::dump;
use crate::support::tallyd::{tallyd, SiteDir};
use std::path::Path;

const CONFIG: &str = r#"
[site]
name = "Test Space"
timezone = "Europe/Lisbon"
currency_symbol = "$"
ledger = "ledger.db"
overage_policy = "credits-then-invoice"

[prices.standard]
default_media = "a4"
[prices.standard.media.a4]
mono = { one_sided = 10, two_sided = 8 }
colour = { one_sided = 40, two_sided = 35 }
"#;

fn site() -> SiteDir {
    SiteDir::with_config(CONFIG)
}

/// Alice with $20 of printing (expiring end of November) and 2h of room time.
fn with_alice(site: &SiteDir) {
    site.ok(
        "2026-11-02 09:00",
        &[
            "grant",
            "alice",
            "--name",
            "Alice Martin",
            "--amount",
            "20",
            "--reason",
            "welcome",
            "--expires",
            "2026-11-30",
        ],
    );
    site.ok(
        "2026-11-02 09:00",
        &[
            "grant",
            "alice",
            "--credit",
            "room-hours",
            "--resource-types",
            "meeting-room",
            "--amount",
            "2h",
            "--reason",
            "plan",
        ],
    );
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("valid JSON")
}

#[test]
fn grant_then_balance_shows_money_and_time() {
    let site = site();
    with_alice(&site);
    let table = site.ok("2026-11-02 10:00", &["balance"]);
    assert!(table.contains("alice"), "{table}");
    assert!(table.contains("$20.00"), "{table}");
    assert!(table.contains("2h 00m"), "{table}");
    let j = json(&site.ok("2026-11-02 10:00", &["balance", "alice", "--json"]));
    assert_eq!(j[0]["printing_cents"], 2000);
    assert_eq!(j[0]["time_minutes"]["room-hours"], 120);
    let csv = site.ok("2026-11-02 10:00", &["balance", "--csv"]);
    assert_eq!(
        csv.lines().next(),
        Some("member,name,closed,printing_cents,room-hours_minutes,overage_cents,overage_minutes")
    );
    assert_eq!(
        csv.lines().nth(1),
        Some("alice,Alice Martin,false,2000,120,0,0")
    );
}

#[test]
fn a_charge_beyond_credit_goes_to_overage_and_a_replay_charges_nothing() {
    let site = site();
    with_alice(&site);
    let first = site.ok(
        "2026-11-03 14:00",
        &[
            "charge", "alice", "--amount", "25.50", "--reason", "posters", "--key", "p1",
        ],
    );
    assert!(first.contains("charged $25.50"), "{first}");
    assert!(first.contains("$5.50 overage"), "{first}");
    let again = site.ok(
        "2026-11-03 14:05",
        &[
            "charge", "alice", "--amount", "25.50", "--reason", "posters", "--key", "p1",
        ],
    );
    assert!(again.starts_with("already charged"), "{again}");
    let j = json(&site.ok("2026-11-03 15:00", &["balance", "alice", "--json"]));
    assert_eq!(j[0]["printing_cents"], 0);
    assert_eq!(j[0]["overage_cents"], 550);
    let err = site.fails(
        "2026-11-03 15:00",
        &[
            "charge", "alice", "--amount", "3", "--reason", "posters", "--key", "p1",
        ],
    );
    assert!(err.contains("already used for different content"), "{err}");
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
}

#[test]
fn a_charge_naming_an_unknown_resource_type_is_refused_and_the_ledger_is_unchanged() {
    let site = site();
    with_alice(&site);
    let before = dump(&site.ledger());
    // A typo: no time credit pays for `meeting-rooom`, so this would have
    // gone to Alice's overage, unseen.
    for typo in ["no-such-type", "meeting-rooom"] {
        let err = site.fails(
            "2026-11-03 14:00",
            &[
                "charge",
                "alice",
                "--resource-type",
                typo,
                "--amount",
                "45m",
                "--reason",
                "room booked at the desk",
            ],
        );
        assert!(
            err.contains(&format!("unknown resource type `{typo}`")),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    }
    assert_eq!(dump(&site.ledger()), before, "nothing written");
    let j = json(&site.ok("2026-11-03 15:00", &["balance", "alice", "--json"]));
    assert_eq!(j[0]["time_minutes"]["room-hours"], 120);
    assert_eq!(j[0]["overage_minutes"], 0);
    // Spelled right, it is charged from her room time.
    let ok = site.ok(
        "2026-11-03 14:00",
        &[
            "charge",
            "alice",
            "--resource-type",
            "meeting-room",
            "--amount",
            "45m",
            "--reason",
            "room booked at the desk",
        ],
    );
    assert!(ok.contains("charged"), "{ok}");
    let j = json(&site.ok("2026-11-03 15:00", &["balance", "alice", "--json"]));
    assert_eq!(j[0]["time_minutes"]["room-hours"], 75);
}

#[test]
fn a_past_balance_is_rebuilt_from_history() {
    let site = site();
    with_alice(&site);
    site.ok(
        "2026-11-10 12:00",
        &[
            "charge", "alice", "--amount", "4", "--reason", "flyers", "--key", "f1",
        ],
    );
    site.ok("2026-12-01 09:00", &["expire"]);
    let before = json(&site.ok(
        "2026-12-05 09:00",
        &["balance", "alice", "--at", "2026-11-05", "--json"],
    ));
    assert_eq!(before[0]["printing_cents"], 2000);
    let after_charge = json(&site.ok(
        "2026-12-05 09:00",
        &["balance", "alice", "--at", "2026-11-20 08:00", "--json"],
    ));
    assert_eq!(after_charge[0]["printing_cents"], 1600);
    let now = json(&site.ok("2026-12-05 09:00", &["balance", "alice", "--json"]));
    assert_eq!(
        now[0]["printing_cents"], 0,
        "expired at the end of November"
    );
    assert_eq!(
        now[0]["time_minutes"]["room-hours"], 120,
        "time credit never expires"
    );
}

/// The statement streams its lines (one pass for CSV and JSON, two for a
/// table): what it prints is what the ledger's collected statement holds,
/// line for line, with overage joined to its charge at the same instant,
/// lines of their own for overage only, and several events in one second.
#[test]
fn a_streamed_statement_prints_every_line_the_ledger_collects() {
    let site = site();
    with_alice(&site);
    for (i, day) in (3..=9).enumerate() {
        let at = format!("2026-11-{day:02} 10:00");
        let key = format!("s{i}");
        // $20 of credit: the last charges run into overage.
        site.ok(
            &at,
            &[
                "charge", "alice", "--amount", "3.5", "--reason", "posters", "--key", &key,
            ],
        );
        let key = format!("t{i}");
        site.ok(
            &at,
            &[
                "charge",
                "alice",
                "--amount",
                "1",
                "--reason",
                "same second",
                "--key",
                &key,
            ],
        );
    }
    site.ok(
        "2026-11-10 09:00",
        &["refund", "manual:s6", "--reason", "jam"],
    );
    site.ok("2026-12-01 00:30", &["expire"]);
    let period = ["alice", "--from", "2026-11-01", "--to", "2026-12-01"];
    fn args<'a>(period: &[&'a str], format: Option<&'a str>) -> Vec<&'a str> {
        let mut a = vec!["statement"];
        a.extend(period);
        a.extend(format);
        a
    }
    let printed = json(&site.ok("2026-12-02 09:00", &args(&period, Some("--json"))));

    let ledger = tallyd::ledger::Ledger::open_read_only(&site.ledger(), Default::default())
        .expect("open the ledger");
    let from = printed["from"].as_i64().expect("from");
    let to = printed["to"].as_i64().expect("to");
    let collected =
        tallyd::ledger::query::statement(ledger.conn(), "alice", from, to).expect("statement");
    assert_eq!(printed, serde_json::to_value(&collected).expect("json"));
    let lines = collected.lines.len();
    assert!(lines >= 17, "grant, 14 charges, refund, expire: {lines}");
    assert!(
        collected
            .lines
            .iter()
            .any(|l| l.amount < 0 && l.overage > 0),
        "a charge partly on overage is one line: {:#?}",
        collected.lines
    );

    let csv = site.ok("2026-12-02 09:00", &args(&period, Some("--csv")));
    assert_eq!(csv.lines().count(), lines + 1, "{csv}");
    let table = site.ok("2026-12-02 09:00", &args(&period, None));
    let body: Vec<&str> = table
        .lines()
        .skip_while(|l| !l.starts_with("date "))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(body.len(), lines, "{table}");
    let key_column = |l: &str| l.rfind("manual:").expect("every charge has its key");
    let charges: Vec<&&str> = body.iter().filter(|l| l.contains("manual:")).collect();
    assert!(
        charges
            .windows(2)
            .all(|w| key_column(w[0]) == key_column(w[1])),
        "the key column lines up:\n{table}"
    );
}

#[test]
fn statement_lists_grants_charges_refunds_and_expiry() {
    let site = site();
    with_alice(&site);
    site.ok(
        "2026-11-10 12:00",
        &[
            "charge", "alice", "--amount", "4", "--reason", "flyers", "--key", "f1",
        ],
    );
    site.ok(
        "2026-11-11 12:00",
        &[
            "charge",
            "alice",
            "--amount",
            "45m",
            "--resource-type",
            "meeting-room",
            "--reason",
            "room A",
            "--key",
            "r1",
        ],
    );
    let refund = site.ok(
        "2026-11-12 09:00",
        &["refund", "manual:f1", "--reason", "misprint"],
    );
    assert!(refund.contains("refunded manual:f1"), "{refund}");
    site.ok("2026-12-01 00:30", &["expire"]);
    let st = site.ok(
        "2026-12-02 09:00",
        &[
            "statement",
            "alice",
            "--from",
            "2026-11-01",
            "--to",
            "2026-12-01",
        ],
    );
    for expected in [
        "welcome", "-$4.00", "flyers", "room A", "-0h 45m", "refund", "$4.00", "expire", "-$20.00",
    ] {
        assert!(st.contains(expected), "statement lacks `{expected}`:\n{st}");
    }
    let csv = site.ok(
        "2026-12-02 09:00",
        &[
            "statement",
            "alice",
            "--from",
            "2026-11-01",
            "--to",
            "2026-12-01",
            "--csv",
        ],
    );
    assert!(
        csv.lines()
            .any(|l| l.contains(",debit,printing,-400,0,cents,flyers,manual:f1")),
        "{csv}"
    );
    let again = site.fails(
        "2026-12-02 09:00",
        &["refund", "manual:f1", "--reason", "twice"],
    );
    assert!(again.contains("already refunded"), "{again}");
}

#[test]
fn monthly_report_by_member_and_resource() {
    let site = site();
    with_alice(&site);
    site.ok(
        "2026-11-10 12:00",
        &[
            "charge", "alice", "--amount", "24", "--reason", "flyers", "--key", "f1",
        ],
    );
    site.ok(
        "2026-11-11 12:00",
        &[
            "charge",
            "alice",
            "--units",
            "45",
            "--resource-type",
            "meeting-room",
            "--reason",
            "room A",
            "--key",
            "r1",
        ],
    );
    site.ok(
        "2026-12-01 12:00",
        &[
            "charge", "alice", "--amount", "1", "--reason", "december", "--key", "d1",
        ],
    );
    let csv = site.ok(
        "2026-12-02 09:00",
        &["report", "--month", "2026-11", "--csv"],
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "member,jobs,impressions,printing_cents,sessions,minutes,overage_cents,overage_minutes,refunds");
    assert_eq!(lines[1], "alice,0,0,2400,0,45,400,0,0");
    assert_eq!(
        lines.len(),
        2,
        "December's charge is not in November: {csv}"
    );
    let table = site.ok("2026-12-02 09:00", &["report", "--month", "2026-11"]);
    assert!(
        table.contains("$24.00") && table.contains("$4.00"),
        "{table}"
    );
}

#[test]
fn clear_errors_and_nonzero_exit() {
    let site = site();
    let missing = site.fails("2026-11-02 09:00", &["balance"]);
    assert!(missing.contains("no ledger at"), "{missing}");
    with_alice(&site);
    let unknown = site.fails("2026-11-02 09:00", &["balance", "carol"]);
    assert_eq!(unknown.trim(), "tallyd: unknown member `carol`");
    let bad_date = site.fails("2026-11-02 09:00", &["balance", "--at", "last tuesday"]);
    assert!(bad_date.contains("is not a date"), "{bad_date}");
    let bad_month = site.fails("2026-11-02 09:00", &["report", "--month", "2026-13"]);
    assert!(bad_month.contains("is not YYYY-MM"), "{bad_month}");
    let bad_key = site.fails("2026-11-02 09:00", &["refund", "nope", "--reason", "x"]);
    assert!(bad_key.contains("no usage with key `nope`"), "{bad_key}");
    for err in [&unknown, &bad_date, &bad_month, &bad_key] {
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn check_config_names_file_line_and_field() {
    let site = site();
    let ok = site.ok("2026-11-02 09:00", &["check-config"]);
    assert!(ok.contains("config OK"), "{ok}");
    std::fs::write(
        site.config(),
        "[site]\ntimezone = \"Europe/Lisbon\"\noverage_policy = \"maybe\"\n",
    )
    .expect("write");
    let err = site.fails("2026-11-02 09:00", &["check-config"]);
    assert!(err.contains("tallyd.toml:3: site.overage_policy"), "{err}");
}

#[test]
fn read_commands_work_while_another_process_writes() {
    let site = site();
    with_alice(&site);
    // Hold a write transaction open, as the daemon does mid-commit.
    let conn = rusqlite::Connection::open(site.ledger()).expect("open");
    conn.execute_batch(
        "BEGIN IMMEDIATE; INSERT INTO members (id, name, created_at) VALUES ('zed', 'Zed', 0);",
    )
    .expect("write in progress");
    let started = std::time::Instant::now();
    let out = site.ok("2026-11-02 10:00", &["balance", "--csv"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "did not wait for the writer"
    );
    assert!(out.contains("alice,Alice Martin"), "{out}");
    assert!(
        !out.contains("zed"),
        "uncommitted rows are not visible: {out}"
    );
    conn.execute_batch("COMMIT").expect("commit");
    assert!(site
        .ok("2026-11-02 10:00", &["balance", "--csv"])
        .contains("zed"));
}

#[test]
fn the_shipped_example_config_is_valid() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tallyd.toml");
    let out = tallyd()
        .args([
            "--config",
            shipped.to_str().expect("utf-8 path"),
            "check-config",
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn each_broken_config_fixture_is_rejected_with_file_line_and_field() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/config");
    let cases = [
        ("cap-not-a-number.toml", 4, "site.overage_cap_cents"),
        ("duplicate-table.toml", 4, "site"),
        ("missing-site.toml", 2, "prices.standard.media"),
        (
            "negative-price.toml",
            10,
            "prices.standard.media.a4.colour.two_sided",
        ),
        ("unknown-default-media.toml", 5, "prices.standard"),
        ("unknown-timezone.toml", 2, "site.timezone"),
    ];
    for (file, line, field) in cases {
        let path = fixtures.join(file);
        let out = tallyd()
            .args([
                "--config",
                path.to_str().expect("utf-8 path"),
                "check-config",
            ])
            .output()
            .expect("run");
        assert!(!out.status.success(), "{file} must be rejected");
        let err = String::from_utf8_lossy(&out.stderr);
        let want = format!("{file}:{line}: {field}: ");
        assert!(err.contains(&want), "{file}: expected `{want}` in: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
}

/// `tallyd balance | head -1`: the reader closes the pipe; tallyd stops
/// quietly with status 0 rather than `tallyd: Broken pipe (os error 32)`.
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let site = site();
    with_alice(&site);
    let mut child = site
        .at("2026-11-03 09:00", &["balance"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Close the read end before tallyd writes anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr, "");
}

/// A member id, name or reason with a newline would forge a log line or a
/// table row: the command is refused and the ledger does not change.
#[test]
fn control_characters_in_arguments_are_refused() {
    let site = site();
    with_alice(&site);
    let before = crate::support::ledger::dump(&site.ledger());
    for args in [
        &[
            "grant",
            "alice",
            "--amount",
            "1",
            "--reason",
            "x\n<0>forged",
        ][..],
        &[
            "grant",
            "bob\n<0>forged",
            "--name",
            "Bob",
            "--amount",
            "1",
            "--reason",
            "r",
        ],
        &[
            "charge",
            "alice",
            "--amount",
            "1",
            "--reason",
            "esc \u{1b}[2J",
        ],
    ] {
        let err = site.fails("2026-11-03 09:00", args);
        assert!(err.contains("contains a control character"), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    assert_eq!(crate::support::ledger::dump(&site.ledger()), before);
}

/// `tallyd lots` shows when each lot expires, and what stands where.
#[test]
fn lots_list_each_lot_with_its_source_validity_and_status() {
    let site = site();
    with_alice(&site);
    // `balance` says what expires next: the $20 lot on 1 December (Lisbon).
    let balance = site.ok("2026-11-09 12:00", &["balance", "alice"]);
    let next = balance
        .lines()
        .find(|l| l.starts_with("alice") && l.contains("2026-12-01 00:00"))
        .unwrap_or_else(|| panic!("next to expire in {balance}"));
    assert!(
        next.contains("printing") && next.contains("$20.00"),
        "{next}"
    );
    site.ok(
        "2026-11-10 12:00",
        &["charge", "alice", "--units", "2000", "--reason", "posters"],
    );
    let json = site.ok("2026-11-10 12:00", &["--json", "lots", "alice"]);
    let lots: serde_json::Value = serde_json::from_str(&json).expect("json");
    let lots = lots.as_array().expect("lots");
    assert_eq!(lots.len(), 2, "{json}");
    assert_eq!(lots[0]["credit"], "printing");
    assert_eq!(lots[0]["source"], "adjustment");
    assert_eq!(lots[0]["granted"], 2000);
    assert_eq!(lots[0]["remaining"], 0);
    assert_eq!(lots[0]["status"], "used-up");
    assert!(lots[0]["expires_at"].is_i64(), "{json}");
    assert_eq!(lots[1]["credit"], "room-hours");
    assert_eq!(lots[1]["status"], "spendable");
    assert!(lots[1]["expires_at"].is_null(), "{json}");
    // In December the printing lot has expired; the table says so.
    let table = site.ok("2026-12-02 09:00", &["lots", "alice"]);
    assert!(table.contains("expired"), "{table}");
    assert!(table.contains("2026-12-01 00:00"), "{table}");
    let unknown = site.fails("2026-12-02 09:00", &["lots", "carol"]);
    assert!(unknown.contains("unknown member `carol`"), "{unknown}");
}

/// `sync --dry-run --json` lists every lot the text says it would issue,
/// with the same counts; `--csv` has one row per action.
#[test]
fn a_dry_run_lists_its_lots_in_json_and_csv_with_the_texts_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tallyd.toml");
    let ledger = dir.path().join("ledger.db");
    let run = |format: &[&str]| {
        let mut cmd = tallyd();
        cmd.arg("--config")
            .arg(&config)
            .arg("--ledger")
            .arg(&ledger)
            .args(format)
            .args(["sync", "--dry-run"])
            .env("TALLYD_NOW", "2026-11-30 12:00");
        crate::support::tallyd::succeeds(&mut cmd)
    };
    let text = run(&[]);
    let json: serde_json::Value = serde_json::from_str(&run(&["--json"])).expect("json");
    let issued = json["issue"].as_array().expect("issue list").len();
    assert!(issued > 0, "{json}");
    assert_eq!(json["issued"], issued);
    let members = json["members"].as_u64().expect("members");
    assert!(
        text.contains(&format!("would issue {issued} lots"))
            && text.contains(&format!("({members} members in file")),
        "{text}\n{json}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("  issue ")).count(),
        issued
    );
    let csv = run(&["--csv"]);
    assert_eq!(
        csv.lines().filter(|l| l.starts_with("issue,")).count(),
        issued,
        "{csv}"
    );
    assert!(!ledger.exists(), "a dry run writes no ledger");
}
