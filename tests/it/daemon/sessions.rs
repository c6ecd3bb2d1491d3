//! Room sessions across daemon restarts and at their maximum length: a
//! `socat` pseudo-terminal as the door's reader, `tallyd run`, and a boot
//! clock the test moves forward (`TALLYD_TEST_CLOCK_FILE`).

use crate::support::daemon::{lines_with, Daemon, Site};
use crate::support::pty::{rdm6300, Pty};

use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
/// The sweep runs at start and then every 30 s.
const SWEEP: Duration = Duration::from_secs(45);
const ALICE: &str = "14008EC793";
const HOUR: i64 = 3600;

fn door(pty: &Pty) -> String {
    format!(
        r#"
[[readers]]
id = "door"
device = "{}"
framing = "rdm6300"
resource = "room-a"
debounce = "100ms"
increment = "15m"
max_session = "1h"
"#,
        pty.reader.display()
    )
}

fn start(site: &Site) -> Daemon {
    let daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("card reader is up reader=door", LIMIT);
    daemon
}

/// Taps and waits for the `count`-th line holding `needle` in this run's log.
fn tap_until(daemon: &Daemon, door: &Pty, needle: &str, count: usize) {
    // Past the reader's debounce, so the tap is never taken for a repeat.
    std::thread::sleep(Duration::from_millis(200));
    door.write(&rdm6300(ALICE));
    wait_count(daemon, needle, count, LIMIT);
}

fn wait_count(daemon: &Daemon, needle: &str, count: usize, limit: Duration) {
    let start = std::time::Instant::now();
    while lines_with(&daemon.log(), &[needle]).len() < count {
        assert!(
            start.elapsed() < limit,
            "waited {limit:?} for {count} x `{needle}`:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ended_lines(daemon: &Daemon) -> Vec<String> {
    lines_with(&daemon.log(), &["session ended member=alice"])
        .into_iter()
        .map(str::to_string)
        .collect()
}

fn open_sessions(site: &Site) -> i64 {
    let conn = rusqlite::Connection::open(site.path("ledger.db")).expect("ledger");
    conn.query_row(
        "SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL",
        [],
        |r| r.get(0),
    )
    .expect("count")
}

#[test]
fn sessions_survive_restarts_and_end_at_their_maximum_length() {
    let site = Site::new(&[]);
    let pty = Pty::start(site.dir(), "door");
    site.write_config_with(&[], &door(&pty));
    site.set_clock_offset(0);

    // Started, then the daemon is killed; 20 minutes later a new daemon
    // ends it on Alice's tap: charged once, 30 minutes (15-minute steps).
    let mut daemon = start(&site);
    tap_until(&daemon, &pty, "session started member=alice", 1);
    daemon.kill9();
    site.set_clock_offset(20 * 60);
    let mut daemon = start(&site);
    tap_until(&daemon, &pty, "session ended member=alice", 1);
    let ended = ended_lines(&daemon).join("");
    assert!(
        ended.contains("minutes=30") && ended.contains("reason=tap"),
        "{ended}"
    );
    assert_eq!(site.time_balance("alice", "room-hours"), 600 - 30);

    // Started, the daemon stopped, 90 minutes pass: the next daemon's first
    // sweep closes it at the maximum, 60 minutes.
    tap_until(&daemon, &pty, "session started member=alice", 1);
    daemon.stop();
    let mut offset = 20 * 60 + 90 * 60;
    site.set_clock_offset(offset);
    let mut daemon = start(&site);
    wait_count(&daemon, "session ended member=alice", 1, LIMIT);
    let ended = ended_lines(&daemon).join("");
    assert!(
        ended.contains("minutes=60") && ended.contains("maximum length"),
        "{ended}"
    );
    assert_eq!(site.time_balance("alice", "room-hours"), 600 - 30 - 60);

    // A tap after the maximum: the session is charged the maximum whether
    // the tap or the sweep gets there first, and the tap starts a new one.
    tap_until(&daemon, &pty, "session started member=alice", 1);
    offset += HOUR + 60;
    site.set_clock_offset(offset);
    tap_until(&daemon, &pty, "session started member=alice", 2);
    let ended = ended_lines(&daemon);
    assert_eq!(ended.len(), 2, "{ended:?}");
    assert!(
        ended[1].contains("minutes=60") && ended[1].contains("maximum length"),
        "{ended:?}"
    );

    // The running daemon's sweep ends the open one at the maximum.
    offset += 2 * HOUR;
    site.set_clock_offset(offset);
    wait_count(&daemon, "session ended member=alice", 3, SWEEP);
    let ended = ended_lines(&daemon);
    assert!(
        ended[2].contains("minutes=60") && ended[2].contains("maximum length"),
        "{ended:?}"
    );
    daemon.stop();

    assert_eq!(site.time_balance("alice", "room-hours"), 600 - 30 - 3 * 60);
    assert_eq!(open_sessions(&site), 0);
}

/// Erin and Frank: 15 minutes of room time each, overage invoiced up to 30
/// minutes a month (the site's credits-then-invoice policy, their cap).
const CAPPED: &str = concat!(
    crate::catalog!(),
    r#"
[[member]]
id = "erin"
name = "Erin"
cards = ["00E1E1E1E1"]
overage_policy = "credits-then-invoice"
overage_cap_minutes = 30
  [[member.grant]]
  id = "rooms"
  credit = "room-hours"
  amount = 15
  from = 2026-01-01

[[member]]
id = "frank"
name = "Frank"
cards = ["00F2F2F2F2"]
overage_policy = "credits-then-invoice"
overage_cap_minutes = 30
  [[member.grant]]
  id = "rooms"
  credit = "room-hours"
  amount = 15
  from = 2026-01-01
"#
);
const ERIN: &str = "00E1E1E1E1";
const FRANK: &str = "00F2F2F2F2";

/// Taps `card` and waits for the `count`-th line holding all of `parts`.
fn tap_card(daemon: &Daemon, door: &Pty, card: &str, parts: &[&str], count: usize) {
    std::thread::sleep(Duration::from_millis(200));
    door.write(&rdm6300(card));
    let start = std::time::Instant::now();
    while lines_with(&daemon.log(), parts).len() < count {
        assert!(
            start.elapsed() < LIMIT,
            "waited for {count} x {parts:?}:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (room-hours left, overage minutes owed); a credit used up is not listed.
fn minutes(site: &Site, member: &str) -> (i64, i64) {
    let out = site.cli(&["--json", "balance", member]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("balance json");
    let left = v[0]["time_minutes"]["room-hours"].as_i64().unwrap_or(0);
    let owed = v[0]["overage_minutes"]
        .as_i64()
        .unwrap_or_else(|| panic!("{out}"));
    (left, owed)
}

#[test]
fn a_member_at_their_minutes_cap_with_no_time_credit_left_cannot_start_a_session_but_one_under_it_can(
) {
    let site = Site::new(&[]);
    std::fs::write(site.path("grants.toml"), CAPPED).expect("grants");
    let pty = Pty::start(site.dir(), "door");
    site.write_config_with(&[], &door(&pty));
    site.set_clock_offset(0);
    let daemon = start(&site);

    // Erin: 44 minutes, charged 45: her 15 minutes, then 30 of overage,
    // which is her cap.
    tap_card(&daemon, &pty, ERIN, &["session started member=erin"], 1);
    site.set_clock_offset(44 * 60);
    tap_card(&daemon, &pty, ERIN, &["session ended member=erin"], 1);
    let ended = lines_with(&daemon.log(), &["session ended member=erin"]).join("");
    assert!(
        ended.contains("minutes=45") && ended.contains("overage=30"),
        "{ended}"
    );
    // Frank: 29 minutes, charged 30: 15 of credit, 15 of overage.
    tap_card(&daemon, &pty, FRANK, &["session started member=frank"], 1);
    site.set_clock_offset(44 * 60 + 29 * 60);
    tap_card(&daemon, &pty, FRANK, &["session ended member=frank"], 1);
    assert_eq!(minutes(&site, "erin"), (0, 30));
    assert_eq!(minutes(&site, "frank"), (0, 15));

    // At her cap with nothing left, Erin's tap starts nothing, and says why.
    tap_card(&daemon, &pty, ERIN, &["session not started member=erin"], 1);
    let refused = lines_with(&daemon.log(), &["session not started member=erin"]).join("");
    assert!(refused.starts_with("<4>"), "{refused}");
    assert!(
        refused
            .contains("no time credit left and this month's overage is at the cap of 30 minutes"),
        "{refused}"
    );
    assert_eq!(open_sessions(&site), 0);
    // Frank, under his cap, may: his session starts.
    tap_card(&daemon, &pty, FRANK, &["session started member=frank"], 2);
    assert_eq!(open_sessions(&site), 1);
    assert_eq!(
        lines_with(&daemon.log(), &["session started member=erin"]).len(),
        1
    );
    assert_eq!(minutes(&site, "erin"), (0, 30));
}
