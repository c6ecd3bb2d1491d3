//! Amounts are bounded everywhere (issue 11): `i64::MAX`, 2^62 and -1, fed
//! through every entry point of an amount, are refused with one clear line
//! (file:line: field for a file) and no row of the ledger changes.
//!
//! - [`files`]: the grants file (each amount and cap, TOML and JSON) and the
//!   site config (each price, the default caps);
//! - [`cli`]: `tallyd grant`, `tallyd charge` and `tallyd review charge`;
//! - [`ledger`]: the ledger's API itself, and a ledger written before the
//!   bound whose lots cannot be added up;
//! - here: the issue's reproduction, and amounts at the bound taken and
//!   added up well past it.
//!
//! Every file here is written from a template whose amounts are
//! placeholders (`{grant}`), so a case puts one bad value in one field and
//! finds its expected line where the placeholder was.

mod cli;
mod files;
mod ledger;

use crate::support::ledger::dump;
use crate::support::tallyd::SiteDir;

const NOW: &str = "2026-11-20 10:00";

/// What each entry point is fed.
const VALUES: [i64; 3] = [i64::MAX, 1 << 62, -1];

/// `tallyd::money::MAX_UNITS`, as the errors spell it.
const MAX_UNITS: &str = "1000000000";

/// The site config, its amounts as placeholders; [`CONFIG_AMOUNTS`] fills them.
const CONFIG: &str = r#"[site]
name = "Bounds"
timezone = "Europe/Lisbon"
currency_symbol = "$"
ledger = "ledger.db"
overage_policy = "credits-then-invoice"
overage_cap_cents = {site_cap_cents}
overage_cap_minutes = {site_cap_minutes}

[prices.standard]
default_media = "a4"
[prices.standard.media.a4]
mono = { one_sided = {mono_one}, two_sided = {mono_two} }
colour = { one_sided = {colour_one}, two_sided = {colour_two} }

[[printers]]
id = "lobby"
uri = "ipp://127.0.0.1:9/ipp/print"
prices = "standard"
"#;

/// Each placeholder of [`CONFIG`], its field, and its good value.
const CONFIG_AMOUNTS: &[(&str, &str, i64)] = &[
    ("{site_cap_cents}", "site.overage_cap_cents", 5000),
    ("{site_cap_minutes}", "site.overage_cap_minutes", 600),
    ("{mono_one}", "prices.standard.media.a4.mono.one_sided", 10),
    ("{mono_two}", "prices.standard.media.a4.mono.two_sided", 8),
    (
        "{colour_one}",
        "prices.standard.media.a4.colour.one_sided",
        40,
    ),
    (
        "{colour_two}",
        "prices.standard.media.a4.colour.two_sided",
        35,
    ),
];

/// `template` with each placeholder of `amounts` given its good value, but
/// `bad`'s placeholder given `bad`'s value.
fn fill(template: &str, amounts: &[(&str, &str, i64)], bad: Option<(&str, i64)>) -> String {
    let mut text = template.to_string();
    for &(placeholder, _, good) in amounts {
        let value = match bad {
            Some((p, v)) if p == placeholder => v,
            _ => good,
        };
        text = text.replace(placeholder, &value.to_string());
    }
    text
}

/// The 1-based line of `placeholder` in `template`.
fn line_of(template: &str, placeholder: &str) -> usize {
    template
        .lines()
        .position(|l| l.contains(placeholder))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no {placeholder} in the template"))
}

/// The piece of the error that says what is wrong with `value` in a field
/// that must be more than zero (`positive`) or not negative.
fn says(value: i64, positive: bool) -> String {
    match (value, positive) {
        (..=0, true) => format!("must be more than zero, got {value}"),
        (..0, false) => format!("must not be negative, got {value}"),
        _ => format!("must be at most {MAX_UNITS} (10^9 units: $10,000,000.00 in cents, or 10^9 minutes), got {value}"),
    }
}

/// A site with a good config and the good grants file of [`files`] synced:
/// alice has printing credit and room time.
fn site() -> SiteDir {
    let site = SiteDir::with_config(&fill(CONFIG, CONFIG_AMOUNTS, None));
    let grants = site.path("grants.toml");
    site.write("grants.toml", &files::good_grants());
    site.ok(NOW, &["sync", "--source", grants.to_str().unwrap()]);
    site
}

/// Runs `tallyd ARGS` at [`NOW`] and expects it refused: exit status 1,
/// nothing on stdout, one line on stderr that starts with `prefix` and
/// contains `says`; and no row of the ledger changed.
fn refused(site: &SiteDir, args: &[&str], prefix: &str, says: &str) {
    let before = dump(&site.ledger());
    let out = site.run(NOW, args);
    let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
    assert_eq!(out.status.code(), Some(1), "tallyd {args:?}: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "tallyd {args:?} printed {:?}",
        out.stdout
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "tallyd {args:?}: one line: {stderr}"
    );
    assert!(
        stderr.starts_with(prefix),
        "tallyd {args:?}: expected the error to start with\n  {prefix}\ngot\n  {stderr}"
    );
    assert!(
        stderr.contains(says),
        "tallyd {args:?}: expected `{says}` in\n  {stderr}"
    );
    assert_eq!(
        dump(&site.ledger()),
        before,
        "tallyd {args:?} changed the ledger"
    );
}

/// The issue: "A grants amount of 9223372036854775807 was accepted;
/// `balance` then failed with an SQLite integer overflow while `charge`
/// succeeded and printed a wrapped balance of -$92,233,720,368,547,743.14."
/// That balance is $20.00 + i64::MAX - $5.05, wrapped. Now the file is
/// refused, the $20.00 stays the only credit, and both commands agree on it.
#[test]
fn a_grants_amount_of_i64_max_is_refused_and_never_wraps_a_balance() {
    let site = SiteDir::with_config(&fill(CONFIG, CONFIG_AMOUNTS, None));
    let grants = site.path("grants.toml");
    let file = grants.to_str().unwrap();
    let member = |grants: &str| {
        format!(
            "[[member]]\nid = \"alice\"\nname = \"Alice\"\n\
             [[member.grant]]\nid = \"welcome\"\ncredit = \"printing\"\namount = 2000\nfrom = 2026-11-01\n{grants}"
        )
    };
    site.write("grants.toml", &member(""));
    site.ok(NOW, &["sync", "--source", file]);
    let huge = "[[member.grant]]\nid = \"huge\"\ncredit = \"printing\"\n\
                amount = 9223372036854775807\nfrom = 2026-11-01\n";
    let text = member(huge);
    site.write("grants.toml", &text);
    let line = line_of(&text, "9223372036854775807");
    refused(
        &site,
        &["sync", "--source", file],
        &format!("tallyd: {file}:{line}: member[0].grant[1].amount: "),
        &says(i64::MAX, true),
    );
    let balance = site.ok(NOW, &["balance", "alice"]);
    assert!(balance.contains("$20.00"), "{balance}");
    let charged = site.ok(
        NOW,
        &["charge", "alice", "--amount", "5.05", "--reason", "posters"],
    );
    assert!(charged.contains("balance $14.95"), "{charged}");
    let balance = site.ok(NOW, &["balance", "alice"]);
    assert!(balance.contains("$14.95"), "{balance}");
}

/// The bound itself is an amount like any other: granted, charged, and
/// added up to well past it (here $20,000,000.00) without overflow.
#[test]
fn amounts_at_the_bound_are_taken_and_add_up_past_it() {
    let site = site();
    for key in ["one", "two"] {
        site.ok(
            NOW,
            &[
                "grant", "bob", "--name", "Bob", "--units", MAX_UNITS, "--reason", "big", "--key",
                key,
            ],
        );
    }
    let balance = site.ok(NOW, &["balance", "bob"]);
    assert!(balance.contains("$20000000.00"), "{balance}");
    let charged = site.ok(
        NOW,
        &[
            "charge",
            "bob",
            "--amount",
            "10000000",
            "--reason",
            "all of it",
        ],
    );
    assert!(charged.contains("balance $10000000.00"), "{charged}");
    let statement = site.ok(NOW, &["statement", "bob"]);
    assert!(statement.contains("10000000.00"), "{statement}");
}
