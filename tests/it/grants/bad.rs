//! A broken grants file changes nothing: every fixture in
//! `fixtures/grants/bad/` (the good file with one problem each) is rejected by
//! the real `tallyd sync` with one line on stderr naming the file, the line
//! and the field, and no row of the ledger changes.

use crate::support::ledger::dump;
use crate::support::tallyd::SiteDir;
use std::path::{Path, PathBuf};

const NOW: &str = "2026-11-20 10:00";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/grants")
}

/// One bad fixture and what `tallyd sync` must say about it.
struct Case {
    file: &'static str,
    /// The line of the problem (`None`: the error carries no line).
    line: Option<usize>,
    /// The field named in the error.
    field: &'static str,
    /// A piece of the message.
    says: &'static str,
}

const fn case(
    file: &'static str,
    line: Option<usize>,
    field: &'static str,
    says: &'static str,
) -> Case {
    Case {
        file,
        line,
        field,
        says,
    }
}

/// Each line and field checked against the fixture by hand: the line is where
/// the one problem is written (or the header of the table missing a key).
const CASES: &[Case] = &[
    case(
        "toml_syntax.toml",
        Some(79),
        "member.name",
        "invalid basic string",
    ),
    case(
        "duplicate_table_key.toml",
        Some(59),
        "member.cards",
        "duplicate key",
    ),
    case(
        "json_syntax.json",
        Some(123),
        "(json)",
        "expected value at line 123",
    ),
    case(
        "json_unknown_plan.json",
        Some(83),
        "member[0].plan[0].plan",
        "unknown plan `residnet`",
    ),
    case(
        "unknown_credit_in_benefit.toml",
        Some(41),
        "plan[0].benefit[1].credit",
        "unknown credit `room-hour`",
    ),
    case(
        "unknown_plan.toml",
        Some(84),
        "member[1].plan[0].plan",
        "unknown plan `residnet`",
    ),
    case(
        "unknown_product.toml",
        Some(66),
        "member[0].product[0].product",
        "unknown product `print-pack-1000`",
    ),
    case(
        "duplicate_member_id.toml",
        Some(78),
        "member[1].id",
        "duplicate member id `alice`",
    ),
    case(
        "duplicate_benefit_id.toml",
        Some(40),
        "plan[0].benefit[1].id",
        "duplicate benefit id `print-monthly`",
    ),
    case(
        "negative_amount.toml",
        Some(73),
        "member[0].grant[0].amount",
        "got -300",
    ),
    case(
        "zero_amount.toml",
        Some(52),
        "product[0].benefit[0].amount",
        "got 0",
    ),
    case(
        "amount_is_text.toml",
        Some(36),
        "plan.benefit.amount",
        "invalid type: string \"1000\"",
    ),
    case(
        "grant_until_before_from.toml",
        Some(75),
        "member[0].grant[0].until",
        "until is before from",
    ),
    case(
        "subscription_end_before_start.toml",
        Some(86),
        "member[1].plan[0].end",
        "end is before start",
    ),
    case(
        "unknown_timezone.toml",
        Some(3),
        "timezone",
        "unknown time zone `Europe/Lisboa`",
    ),
    case(
        "benefit_without_id.toml",
        Some(33),
        "plan[0].benefit[0]",
        "needs a stable `id`",
    ),
    case(
        "grant_without_id.toml",
        Some(88),
        "member[1].grant[0]",
        "needs a stable `id`",
    ),
    case(
        "time_credit_unknown_resource_type.toml",
        Some(24),
        "time_credit[0].resource_types[1]",
        "unknown resource type `phone-booth`",
    ),
    case(
        "resource_unknown_type.toml",
        Some(18),
        "resource[0].type",
        "unknown resource type `meeting_room`",
    ),
    case(
        "date_not_a_day.toml",
        Some(63),
        "member[0].plan[0].start",
        "not a date",
    ),
    case(
        "date_wrong_format.toml",
        Some(67),
        "member[0].product[0].date",
        "not a date",
    ),
    case(
        "date_literal_not_a_day.toml",
        Some(74),
        "member.grant.from",
        "invalid date",
    ),
    case(
        "unknown_renewal.toml",
        Some(29),
        "plan[0].renews",
        "`fortnightly` is not weekly, monthly, quarterly or yearly",
    ),
    case(
        "bad_expiry.toml",
        Some(43),
        "plan[0].benefit[1].expires",
        "`3 fortnights` is not",
    ),
    case(
        "duplicate_card.toml",
        Some(80),
        "member[1].cards[1]",
        "card `14008EC793` is also member `alice`'s",
    ),
    case(
        "duplicate_print_user.toml",
        Some(81),
        "member[1].print_users[1]",
        "print user `amartin` is also member `alice`'s",
    ),
    case(
        "time_credit_printing.toml",
        Some(21),
        "time_credit[0].id",
        "`printing` is the printing credit",
    ),
    case(
        "unknown_field.toml",
        Some(91),
        "member.grant.ammount",
        "unknown field `ammount`",
    ),
    case(
        "card_not_hex.toml",
        Some(58),
        "member[0].cards[0]",
        "card id `14008EC79G` is not hex digits",
    ),
    case(
        "missing_member_name.toml",
        Some(77),
        "member.name",
        "missing field `name`",
    ),
    case(
        "duplicate_purchase_reference.toml",
        Some(73),
        "member[0].product[1].reference",
        "duplicate purchase reference `INV-1042`",
    ),
    case(
        "home_site_not_a_site_id.toml",
        Some(60),
        "member[0].home_site",
        "is not a site id",
    ),
    case(
        "unknown_overage_policy.toml",
        Some(30),
        "plan[0].overage_policy",
        "`invoice` is not `credits-only` or `credits-then-invoice`",
    ),
    case(
        "time_credit_unit_hours.toml",
        Some(23),
        "time_credit[0].unit",
        "not `hours`",
    ),
    // Issue 12: nothing forged reaches a log or a table. The value is
    // quoted escaped, so the error stays one line.
    case(
        "control_in_member_name.toml",
        Some(81),
        "member[1].name",
        "name `Bob Okafor\\n<0>forged` contains a control character",
    ),
    case(
        "control_in_member_id.toml",
        Some(80),
        "member[1].id",
        "member id `bob\\r` contains a control character",
    ),
    case(
        "control_in_card.toml",
        Some(82),
        "member[1].cards[0]",
        "card id `0A1B2C3D4E\\u{0}` contains a control character",
    ),
    case(
        "control_in_purchase_reference.toml",
        Some(70),
        "member[0].product[0].reference",
        "purchase reference `INV-1042\\n<0>forged` contains a control character",
    ),
    case(
        "control_in_plan_name.toml",
        Some(30),
        "plan[0].name",
        "name `Resident\\u{1b}[2J desk` contains a control character",
    ),
    case(
        "control_in_print_user.json",
        Some(111),
        "member[1].print_users[0]",
        "print user `bob@example.org\\n<0>forged` contains a control character",
    ),
    case(
        "member_id_differs_only_by_case.toml",
        Some(80),
        "member[1].id",
        "member id `ALICE` differs from member `alice` only by case; ambiguous",
    ),
];

const NOTHING_CHANGED: &str = "; nothing changed, the last good grants stay in force";

/// A site whose `[grants] source` is a copy of `good.toml`.
fn site() -> SiteDir {
    let site = SiteDir::new();
    let grants = site.path("grants.toml");
    std::fs::copy(fixtures().join("good.toml"), &grants).expect("copy good.toml");
    site.write(
        "tallyd.toml",
        &format!(
            r#"
[site]
name = "Test Space"
timezone = "Europe/Lisbon"
currency_symbol = "$"
ledger = "ledger.db"
overage_policy = "credits-then-invoice"

[grants]
source = '{}'
timeout = "1s"

[prices.standard]
default_media = "a4"
[prices.standard.media.a4]
mono = {{ one_sided = 10, two_sided = 8 }}
colour = {{ one_sided = 40, two_sided = 35 }}
"#,
            grants.display()
        ),
    );
    site
}

/// A site with the good file synced into its ledger.
fn synced() -> SiteDir {
    let site = site();
    let out = site.run(NOW, &["sync"]);
    assert!(
        out.status.success(),
        "syncing good.toml failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    site
}

fn bad(file: &str) -> PathBuf {
    fixtures().join("bad").join(file)
}

/// What stderr must start with: `tallyd: FILE:LINE: FIELD: `.
fn expected_prefix(c: &Case) -> String {
    let file = bad(c.file).display().to_string();
    match c.line {
        Some(line) => format!("tallyd: {file}:{line}: {}: ", c.field),
        None => format!("tallyd: {file}: {}: ", c.field),
    }
}

/// Runs `tallyd sync [--dry-run] --source FILE`, expects it to fail, and
/// checks the one line it prints. Returns that line.
fn rejects(site: &SiteDir, c: &Case, dry_run: bool) -> String {
    let path = bad(c.file);
    let path = path.to_str().unwrap();
    let mut args = vec!["sync"];
    if dry_run {
        args.push("--dry-run");
    }
    args.extend(["--source", path]);
    let out = site.run(NOW, &args);
    let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}: tallyd {args:?} should exit 1; stderr: {stderr}",
        c.file
    );
    assert!(
        out.stdout.is_empty(),
        "{}: nothing on stdout, got {}",
        c.file,
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "{}: stderr must be one line: {stderr}",
        c.file
    );
    assert!(stderr.ends_with('\n'), "{}: {stderr:?}", c.file);
    let line = stderr.trim_end_matches('\n').to_string();
    let prefix = expected_prefix(c);
    assert!(
        line.starts_with(&prefix),
        "{}: expected the error to start with\n  {prefix}\ngot\n  {line}",
        c.file
    );
    assert!(
        line[prefix.len()..].contains(c.says),
        "{}: expected the message to say `{}`: {line}",
        c.file,
        c.says
    );
    assert!(
        line.ends_with(NOTHING_CHANGED),
        "{}: the error must say nothing changed: {line}",
        c.file
    );
    line
}

#[test]
fn every_file_in_the_bad_folder_has_a_case_and_there_are_at_least_18() {
    let mut on_disk: Vec<String> = std::fs::read_dir(fixtures().join("bad"))
        .expect("fixtures/grants/bad")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut cases: Vec<String> = CASES.iter().map(|c| c.file.to_string()).collect();
    cases.sort();
    let before = cases.len();
    cases.dedup();
    assert_eq!(before, cases.len(), "a fixture appears twice in CASES");
    assert_eq!(on_disk, cases, "fixtures/grants/bad and CASES differ");
    assert!(cases.len() >= 18);
}

#[test]
fn good_fixture_syncs_and_fills_the_ledger() {
    let site = site();
    let out = site.run(NOW, &["sync"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with(
            "synced: issued 9 lots, adjusted 0, voided 0, closed 0 members (2 members in file"
        ),
        "{stdout}"
    );
    let dump = dump(&site.ledger());
    for table in [
        "lots",
        "members",
        "member_cards",
        "member_print_users",
        "sync_state",
    ] {
        let rows = dump
            .split(&format!("== {table} ("))
            .nth(1)
            .unwrap_or_else(|| panic!("no table {table} in the dump"))
            .split("\n==")
            .next()
            .unwrap()
            .lines()
            .count()
            - 1;
        assert!(
            rows > 0,
            "table {table} is empty after the good sync:\n{dump}"
        );
    }
}

#[test]
fn good_json_fixture_is_the_same_catalog_as_good_toml() {
    let site = synced();
    let json = fixtures().join("good.json");
    let out = site.run(
        NOW,
        &["sync", "--dry-run", "--source", json.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("dry run: would issue 0 lots, adjusted 0, voided 0, closed 0 members"),
        "{stdout}"
    );
}

#[test]
fn the_ledger_dump_sees_a_changed_row() {
    // The comparison below is only worth something if a real change shows.
    let site = synced();
    let before = dump(&site.ledger());
    let path = write_variant(&site, "more.toml", |good| {
        good.replace("  amount = 120\n", "  amount = 150\n")
    });
    let out = site.run(NOW, &["sync", "--source", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(before, dump(&site.ledger()));
}

#[test]
fn bad_fixtures_exit_1_with_one_line_naming_file_line_and_field() {
    let site = synced();
    for c in CASES {
        rejects(&site, c, false);
    }
}

#[test]
fn bad_fixtures_change_no_row_of_the_ledger() {
    let site = synced();
    let before = dump(&site.ledger());
    assert!(before.contains("== lots ("), "{before}");
    for c in CASES {
        rejects(&site, c, false);
        let after = dump(&site.ledger());
        assert!(
            before == after,
            "{}: the ledger changed\n--- before\n{before}\n--- after\n{after}",
            c.file
        );
    }
    // The good file is still the one in force: syncing it again issues nothing.
    let out = site.run(NOW, &["sync"]);
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("synced: issued 0 lots, adjusted 0, voided 0, closed 0 members"));
}

#[test]
fn dry_run_rejects_bad_fixtures_the_same_way_and_changes_nothing() {
    let site = synced();
    let before = dump(&site.ledger());
    for c in CASES {
        let wet = rejects(&site, c, false);
        let dry = rejects(&site, c, true);
        assert_eq!(wet, dry, "{}: --dry-run says something else", c.file);
        assert!(
            before == dump(&site.ledger()),
            "{}: the ledger changed",
            c.file
        );
    }
}

#[test]
fn dry_run_of_bad_fixtures_on_a_new_site_creates_no_ledger() {
    let site = site();
    for c in CASES {
        rejects(&site, c, true);
        assert!(!site.ledger().exists(), "{}: a ledger appeared", c.file);
    }
}

// Found while writing the cases above: serde-level errors in TOML files name
// the field by the text of the error's line (`config::field_at`), which goes
// wrong when that line is not `key = value` or a bare table header. The line
// reported is right; the field is not. Run with `--ignored` once fixed.

/// The error's field, between `FILE:LINE: ` and the next `: `.
fn field_of(stderr: &str, file: &Path, line: usize) -> String {
    let prefix = format!("tallyd: {}:{line}: ", file.display());
    let rest = stderr
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("expected {prefix}..., got {stderr}"));
    rest.split(": ").next().unwrap().to_string()
}

fn write_variant(site: &SiteDir, name: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let good = std::fs::read_to_string(fixtures().join("good.toml")).unwrap();
    let path = site.path(name);
    std::fs::write(&path, edit(&good)).unwrap();
    path
}

#[test]
fn missing_field_under_a_header_with_a_comment_names_the_field() {
    let site = site();
    // Bob's `[[member]]` header (line 77) gets a comment; his name is removed.
    let path = write_variant(&site, "header_comment.toml", |good| {
        good.replace(
            "[[member]]\nid = \"bob\"\nname = \"Bob Okafor\"\n",
            "[[member]] # bob\nid = \"bob\"\n",
        )
    });
    let out = site.run(
        NOW,
        &["sync", "--dry-run", "--source", path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    // Today: `member.grant.[[member]] # bob`.
    assert_eq!(field_of(&stderr, &path, 77), "member.name", "{stderr}");
}

#[test]
fn wrong_type_inside_a_multiline_array_names_the_array() {
    let site = site();
    // Bob's cards over four lines (80-83), the second one a number (line 82).
    let path = write_variant(&site, "multiline_array.toml", |good| {
        good.replace(
            "cards = [\"0A1B2C3D4E\"]",
            "cards = [\n  \"0A1B2C3D4E\",\n  7,\n]",
        )
    });
    let out = site.run(
        NOW,
        &["sync", "--dry-run", "--source", path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    // Today: `member.7,`.
    let field = field_of(&stderr, &path, 82);
    assert!(
        ["member.cards", "member[1].cards", "member[1].cards[1]"].contains(&field.as_str()),
        "{stderr}"
    );
}
