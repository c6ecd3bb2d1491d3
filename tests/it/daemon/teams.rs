//! Teams end to end with the real peers (a private cupsd with a held queue
//! in front of an ippeveprinter, `socat` ptys as card readers, `tallyd run`
//! between): two members' held jobs paid from the payer's printing credit
//! once their own runs out, a room session on a pooled time credit, and a
//! credits-only member at their monthly pool limit refused.

use crate::support::daemon::{lines_with, PrinterSpec, Site, CATALOG};
use crate::support::pdf::write_pdf;
use crate::support::peers::Peers;
use crate::support::pty::{rdm6300, Pty};

use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
const ANN: &str = "00A7700001";
const BEN: &str = "00BE700001";
const CAT: &str = "00CA700001";

/// `acme` (payer boss) shares everything with ann (20c of her own) and ben
/// (nothing); `tiny` (payer tina) shares printing with cat, up to 30c a
/// month. Every member but the payers is credits-only.
fn grants() -> String {
    let member = |id: &str, card: &str, cents: i64, minutes: i64| {
        let mut m = format!(
            "\n[[member]]\nid = \"{id}\"\nname = \"{id}\"\ncards = [\"{card}\"]\nprint_users = [\"{id}\"]\n"
        );
        if ["ann", "ben", "cat"].contains(&id) {
            m.push_str("overage_policy = \"credits-only\"\n");
        }
        for (credit, amount) in [("printing", cents), ("room-hours", minutes)] {
            if amount > 0 {
                m.push_str(&format!(
                    "  [[member.grant]]\n  id = \"{credit}\"\n  credit = \"{credit}\"\n  amount = {amount}\n  from = 2026-01-01\n"
                ));
            }
        }
        m
    };
    let mut text = CATALOG.to_string();
    text.push_str(&member("boss", "00B0550001", 1000, 120));
    text.push_str(&member("ann", ANN, 20, 0));
    text.push_str(&member("ben", BEN, 0, 0));
    text.push_str(&member("tina", "0071AA0001", 1000, 0));
    text.push_str(&member("cat", CAT, 0, 0));
    text.push_str(
        r#"
[[team]]
id = "acme"
name = "Acme Ltd"
payer = "boss"
members = ["boss", "ann", "ben"]
share = "all"

[[team]]
id = "tiny"
payer = "tina"
members = ["tina", "cat"]
share = ["printing"]
member_limit_cents = 30
"#,
    );
    text
}

/// The integer `name=` field of a log line.
fn field(line: &str, name: &str) -> i64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

fn readers(desk: &Pty, door: &Pty) -> String {
    format!(
        r#"
[[readers]]
id = "desk"
device = "{}"
framing = "rdm6300"
printer = "upstairs"
debounce = "1s"

[[readers]]
id = "door"
device = "{}"
framing = "rdm6300"
resource = "room-a"
debounce = "1s"
increment = "15m"
"#,
        desk.reader.display(),
        door.reader.display()
    )
}

#[test]
fn team_members_draw_on_the_pool_at_the_printer_and_the_door() {
    let _serial = crate::support::serial();
    let peers = Peers::new();
    let eve = peers.eve("behind");
    let cupsd = peers.cupsd();
    cupsd.add_queue("upstairs", &eve.uri(), true);
    let site = Site::new(&[]);
    std::fs::write(site.path("grants.toml"), grants()).expect("grants file");
    let desk = Pty::start(site.dir(), "desk");
    let door = Pty::start(site.dir(), "door");
    site.write_config_with(
        &[PrinterSpec::held(
            "upstairs",
            &cupsd.queue_uri("upstairs"),
            "300ms",
            "4h",
        )],
        &readers(&desk, &door),
    );
    // Cat spends her whole month's pool limit at the desk's copier first.
    site.cli(&["sync"]);
    site.cli(&["charge", "cat", "--units", "30", "--reason", "copier"]);
    let cat = site.cli(&["--json", "balance", "cat"]);
    let v: serde_json::Value = serde_json::from_str(&cat).expect("balance json");
    assert_eq!(v[0]["pool"]["limit_left_cents"], 0, "{cat}");
    assert_eq!(v[0]["pool"]["credits"]["printing"], 0, "{cat}");
    let mut daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("card reader is up reader=desk", LIMIT);
    daemon.wait_log("card reader is up reader=door", LIMIT);

    let three = write_pdf(peers.dir(), "three", 3);
    let one = write_pdf(peers.dir(), "one", 1);
    let mono = ["-o", "print-color-mode=monochrome"];
    let a1 = cupsd.lp("upstairs", "ann", &three, &mono);
    let b1 = cupsd.lp("upstairs", "ben", &one, &mono);
    let c1 = cupsd.lp("upstairs", "cat", &one, &mono);
    for id in [a1, b1, c1] {
        cupsd.wait_state("upstairs", id, 4, LIMIT);
    }

    // Ann (20c of her own, credits-only) taps: her job's estimate (30c
    // once analysed, 50c before) is held 20c from her own and the rest from
    // the pool; it prints 3 pages (30c), and what is given back goes to the
    // pool lot last taken.
    desk.write(&rdm6300(ANN));
    daemon.wait_log("<6>release member=ann", LIMIT);
    let release = lines_with(&daemon.log(), &["<6>release member=ann"]).join("");
    let estimate = field(&release, "estimate_cents");
    assert!(release.contains(&format!("jobs={a1}")), "{release}");
    assert_eq!(field(&release, "pool_cents"), estimate - 20, "{release}");
    cupsd.wait_state("upstairs", a1, 9, LIMIT);
    daemon.wait_log("released job settled member=ann", LIMIT);
    // Ben (nothing of his own) taps: his whole estimate is held from the
    // pool; it prints 10c.
    desk.write(&rdm6300(BEN));
    daemon.wait_log("<6>release member=ben", LIMIT);
    let release = lines_with(&daemon.log(), &["<6>release member=ben"]).join("");
    let estimate = field(&release, "estimate_cents");
    assert!(estimate > 0, "{release}");
    assert_eq!(field(&release, "pool_cents"), estimate, "{release}");
    cupsd.wait_state("upstairs", b1, 9, LIMIT);
    daemon.wait_log("released job settled member=ben", LIMIT);
    assert_eq!(site.printing_balance("ann"), 0);
    assert_eq!(site.printing_balance("boss"), 1000 - 10 - 10);
    let statement = site.cli(&["statement", "--team", "acme", "--csv"]);
    let draws: Vec<&str> = statement.lines().skip(1).collect();
    assert!(
        draws.iter().any(|l| l.contains(",ann,hold,printing,boss,"))
            && draws.iter().any(|l| l.contains(",ben,hold,printing,boss,")),
        "{statement}"
    );

    // Cat is at her pool limit and credits-only: her job stays held, said
    // once as a WARN line.
    desk.write(&rdm6300(CAT));
    daemon.wait_log("<4>release member=cat", LIMIT);
    let release = lines_with(&daemon.log(), &["<4>release member=cat"]).join("");
    assert!(release.contains("credits-only"), "{release}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(cupsd.job_state("upstairs", c1), 4);
    assert_eq!(site.printing_balance("tina"), 1000 - 30);

    // Ben has no time credit of his own: the pool's room hours open the
    // door, and the session (20 minutes, charged as 30) is paid from them.
    door.write(&rdm6300(BEN));
    daemon.wait_log("session started member=ben resource=room-a", LIMIT);
    site.set_clock_offset(20 * 60);
    std::thread::sleep(Duration::from_millis(1200));
    door.write(&rdm6300(BEN));
    daemon.wait_log("session ended member=ben resource=room-a", LIMIT);
    assert_eq!(site.time_balance("boss", "room-hours"), 120 - 30);
    let team = site.cli(&["--json", "balance", "--team", "acme"]);
    let v: serde_json::Value = serde_json::from_str(&team).expect("team json");
    let ben = v["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["member"] == "ben"))
        .expect("ben in the team")
        .clone();
    assert_eq!(
        (ben["drawn_cents"].as_i64(), ben["drawn_minutes"].as_i64()),
        (Some(10), Some(30)),
        "{team}"
    );
    daemon.stop();
}
