//! The files amounts are written in: every amount and cap of a grants file,
//! in TOML and in JSON, through `tallyd sync`; every price and default cap of
//! the site config, through a command that would write (`tallyd charge`).

use super::{fill, line_of, refused, says, site, CONFIG, CONFIG_AMOUNTS, VALUES};

/// A grants file with every kind of amount in it, as placeholders.
const GRANTS_TOML: &str = r#"timezone = "Europe/Lisbon"

[[resource_type]]
id = "meeting-room"

[[time_credit]]
id = "room-hours"
resource_types = ["meeting-room"]

[[plan]]
id = "resident"
renews = "monthly"
overage_policy = "credits-then-invoice"
overage_cap_cents = {plan_cap_cents}
overage_cap_minutes = {plan_cap_minutes}

  [[plan.benefit]]
  id = "print-monthly"
  credit = "printing"
  amount = {plan_benefit}

[[product]]
id = "print-pack"

  [[product.benefit]]
  id = "print"
  credit = "printing"
  amount = {product_benefit}

[[member]]
id = "alice"
name = "Alice"
overage_policy = "credits-then-invoice"
overage_cap_cents = {member_cap_cents}
overage_cap_minutes = {member_cap_minutes}

  [[member.plan]]
  plan = "resident"
  start = 2026-11-01

  [[member.product]]
  product = "print-pack"
  date = 2026-11-02
  reference = "INV-1"

  [[member.grant]]
  id = "welcome"
  credit = "room-hours"
  amount = {grant}
  from = 2026-11-01
"#;

/// [`GRANTS_TOML`] in JSON.
const GRANTS_JSON: &str = r#"{
  "timezone": "Europe/Lisbon",
  "resource_type": [{"id": "meeting-room"}],
  "time_credit": [{"id": "room-hours", "resource_types": ["meeting-room"]}],
  "plan": [
    {
      "id": "resident",
      "renews": "monthly",
      "overage_policy": "credits-then-invoice",
      "overage_cap_cents": {plan_cap_cents},
      "overage_cap_minutes": {plan_cap_minutes},
      "benefit": [
        {"id": "print-monthly", "credit": "printing", "amount": {plan_benefit}}
      ]
    }
  ],
  "product": [
    {
      "id": "print-pack",
      "benefit": [
        {"id": "print", "credit": "printing", "amount": {product_benefit}}
      ]
    }
  ],
  "member": [
    {
      "id": "alice",
      "name": "Alice",
      "overage_policy": "credits-then-invoice",
      "overage_cap_cents": {member_cap_cents},
      "overage_cap_minutes": {member_cap_minutes},
      "plan": [{"plan": "resident", "start": "2026-11-01"}],
      "product": [{"product": "print-pack", "date": "2026-11-02", "reference": "INV-1"}],
      "grant": [
        {"id": "welcome", "credit": "room-hours", "amount": {grant}, "from": "2026-11-01"}
      ]
    }
  ]
}
"#;

/// Each placeholder of the grants files, its field, and its good value.
const GRANTS_AMOUNTS: &[(&str, &str, i64)] = &[
    ("{plan_cap_cents}", "plan[0].overage_cap_cents", 5000),
    ("{plan_cap_minutes}", "plan[0].overage_cap_minutes", 600),
    ("{plan_benefit}", "plan[0].benefit[0].amount", 1000),
    ("{product_benefit}", "product[0].benefit[0].amount", 500),
    ("{member_cap_cents}", "member[0].overage_cap_cents", 2000),
    ("{member_cap_minutes}", "member[0].overage_cap_minutes", 120),
    ("{grant}", "member[0].grant[0].amount", 240),
];

/// The good grants file every test here starts from.
pub(super) fn good_grants() -> String {
    fill(GRANTS_TOML, GRANTS_AMOUNTS, None)
}

/// Every amount and cap of a grants file, each of [`VALUES`] in turn, is
/// refused by `tallyd sync` at its line and field; the ledger keeps what the
/// good file gave.
fn grants_file_amounts_are_bounded(template: &str, name: &str) {
    let site = site();
    let path = site.path(name);
    let file = path.to_str().unwrap();
    for &(placeholder, field, _) in GRANTS_AMOUNTS {
        let line = line_of(template, placeholder);
        let positive = field.ends_with("amount");
        for value in VALUES {
            site.write(
                name,
                &fill(template, GRANTS_AMOUNTS, Some((placeholder, value))),
            );
            refused(
                &site,
                &["sync", "--source", file],
                &format!("tallyd: {file}:{line}: {field}: "),
                &format!(
                    "{}; nothing changed, the last good grants stay in force",
                    says(value, positive)
                ),
            );
        }
    }
    // The same file with good amounts syncs: it was the one value.
    site.write(name, &fill(template, GRANTS_AMOUNTS, None));
    site.ok(super::NOW, &["sync", "--source", file]);
}

#[test]
fn every_amount_and_cap_of_a_toml_grants_file_is_bounded() {
    grants_file_amounts_are_bounded(GRANTS_TOML, "bad.toml");
}

#[test]
fn every_amount_and_cap_of_a_json_grants_file_is_bounded() {
    grants_file_amounts_are_bounded(GRANTS_JSON, "bad.json");
}

/// Every price and default cap of the site config, each of [`VALUES`] in
/// turn, stops a charge at the config's line and field before anything is
/// written.
#[test]
fn every_price_and_cap_of_the_site_config_is_bounded() {
    let site = site();
    let file = site.config().display().to_string();
    for &(placeholder, field, _) in CONFIG_AMOUNTS {
        let line = line_of(CONFIG, placeholder);
        for value in VALUES {
            site.write(
                "tallyd.toml",
                &fill(CONFIG, CONFIG_AMOUNTS, Some((placeholder, value))),
            );
            refused(
                &site,
                &["charge", "alice", "--amount", "1", "--reason", "copies"],
                &format!("tallyd: {file}:{line}: {field}: "),
                &says(value, false),
            );
        }
    }
}
