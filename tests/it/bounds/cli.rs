//! The amounts a manager types: `tallyd grant` and `tallyd charge` (money
//! and time, `--units` and `--amount`), and `tallyd review charge
//! --impressions`, whose price is bounded too.

use super::{fill, refused, says, site, CONFIG, CONFIG_AMOUNTS, NOW, VALUES};
use crate::support::tallyd::SiteDir;
use tallyd::ledger::detail::UsageDetail;
use tallyd::ledger::jobs::review::{self, Suspect};
use tallyd::ledger::{Ledger, Site};

/// What `--amount` must be, by unit, as the error says it.
const MONEY: &str = "is not money from $0.01 to $10000000.00 (like 12.50)";
const TIME: &str = "is not a duration from 0h 01m to 16666666h 40m (like 90m or 2h)";

/// `grant` and `charge` of printing credit and of time: each of [`VALUES`]
/// as `--units` and as `--amount`, refused in one line, nothing written.
#[test]
fn grant_and_charge_refuse_amounts_out_of_bounds() {
    let site = site();
    let commands: [(&[&str], &str); 4] = [
        (&["grant", "alice", "--reason", "gift"], MONEY),
        (
            &[
                "grant",
                "alice",
                "--credit",
                "room-hours",
                "--reason",
                "gift",
            ],
            TIME,
        ),
        (&["charge", "alice", "--reason", "copies"], MONEY),
        (
            &[
                "charge",
                "alice",
                "--resource-type",
                "meeting-room",
                "--reason",
                "room",
            ],
            TIME,
        ),
    ];
    for (command, amount_says) in commands {
        for value in VALUES {
            let units = format!("--units={value}");
            let args = [command, &[units.as_str()]].concat();
            refused(&site, &args, "tallyd: --units ", &says(value, true));
            let amount = format!("--amount={value}");
            let args = [command, &[amount.as_str()]].concat();
            let prefix = format!("tallyd: --amount `{value}` ");
            refused(&site, &args, &prefix, amount_says);
        }
    }
    // Just above the bound, typed as money or time.
    let grant = ["grant", "alice", "--reason", "gift", "--amount=10000000.01"];
    refused(&site, &grant, "tallyd: --amount `10000000.01` ", MONEY);
    let charge = [
        "charge",
        "alice",
        "--resource-type",
        "meeting-room",
        "--reason",
        "room",
        "--amount=16666666h41m",
    ];
    refused(&site, &charge, "tallyd: --amount `16666666h41m` ", TIME);
}

/// A site whose one printer's mono price is `cents` an impression, with a
/// job of it set aside for review under `review:lobby:7`.
fn site_with_review(cents: i64) -> SiteDir {
    let site = site();
    let prices = [("{mono_one}", "", cents)];
    let config = fill(&fill(CONFIG, &prices, None), CONFIG_AMOUNTS, None);
    site.write("tallyd.toml", &config);
    let suspect = Suspect {
        key: "review:lobby:7".into(),
        printer: "lobby".into(),
        job_id: 7,
        print_user: None,
        reason: "a count is negative".into(),
        reported: "job-impressions-completed=-3".into(),
        proposed: None,
        detail: UsageDetail::default(),
        at: 1_795_000_000,
    };
    let mut ledger = Ledger::open(&site.ledger(), Site::default()).expect("open the ledger");
    ledger
        .write(|conn, _| review::set_aside(conn, &suspect))
        .expect("set the job aside");
    site
}

/// `review charge --impressions` with each of [`VALUES`] is refused, and so
/// are impressions whose price is above the bound, however few; at the bound
/// the job is charged.
#[test]
fn review_charge_refuses_impressions_and_prices_out_of_bounds() {
    let site = site_with_review(1_000_000_000);
    let key = "review:lobby:7";
    for value in VALUES {
        let impressions = format!("--impressions={value}");
        refused(
            &site,
            &["review", "charge", key, &impressions],
            "tallyd: --impressions must be from 1 to 1000000",
            "",
        );
    }
    refused(
        &site,
        &["review", "charge", key, "--impressions=2"],
        "tallyd: 2 impressions cannot be priced at `lobby`",
        "",
    );
    let out = site.ok(NOW, &["review", "charge", key, "--impressions=1"]);
    assert!(out.contains("$10000000.00"), "{out}");
}
