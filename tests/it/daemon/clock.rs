//! A wrong wall clock cannot destroy credit (issue 11, point 4): `tallyd run`
//! under `faketime` a year ahead, then at the right time; and a wall clock
//! stepped back during a room session, on the test clock
//! (`TALLYD_TEST_CLOCK_FILE`).

use crate::support::daemon::{lines_with, Daemon, Site};
use crate::support::process::faketime_env;
use crate::support::pty::{rdm6300, Pty};
use crate::support::tallyd::tallyd;

use chrono::{Days, NaiveDate, Utc};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
const ALICE: &str = "14008EC793";

/// libfaketime's environment for a wall clock a year ahead; the monotonic
/// clock stays real, and `/proc/uptime` (the boot clock) is a file
/// faketime does not touch.
fn a_year_ahead() -> Vec<(&'static str, String)> {
    faketime_env("+365d")
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn in_days(n: u64) -> NaiveDate {
    today().checked_add_days(Days::new(n)).expect("a date")
}

/// Alice's $16.00 of printing credit (two grants) and 600 room minutes,
/// valid from today until 30 days from now: current lots a clock a year
/// ahead would expire.
fn grants_expiring_in_a_month() -> String {
    let (from, until) = (today(), in_days(30));
    let members = format!(
        r#"
[[member]]
id = "alice"
name = "Alice"
cards = ["{ALICE}"]
print_users = ["alice"]
overage_policy = "credits-then-invoice"
  [[member.grant]]
  id = "month"
  credit = "printing"
  amount = 1000
  from = {from}
  until = {until}
  [[member.grant]]
  id = "top-up"
  credit = "printing"
  amount = 600
  from = {from}
  until = {until}
  [[member.grant]]
  id = "rooms"
  credit = "room-hours"
  amount = 600
  from = {from}
  until = {until}
"#
    );
    format!("{}{members}", crate::support::daemon::CATALOG)
}

fn site() -> Site {
    let site = Site::new(&[]);
    std::fs::write(site.path("grants.toml"), grants_expiring_in_a_month()).expect("grants");
    site
}

fn start(site: &Site, vars: &[(&'static str, String)]) -> Daemon {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let daemon = site.start_with("journald", &vars);
    daemon.wait_ready();
    daemon
}

/// `tallyd --json ARGS`, parsed.
fn json(site: &Site, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&site.cli(&all)).expect("json")
}

/// Every lot is usable and `balance` is exactly what a charge can take:
/// $16.00 of printing and 600 room minutes; charging all the printing
/// credit, and `minutes` of the room minutes, is covered by credit with no
/// overage.
fn assert_balance_is_what_charging_sees(site: &Site, minutes: i64) {
    let balance = json(site, &["balance", "alice"]);
    assert_eq!(balance[0]["printing_cents"], 1600, "{balance}");
    assert_eq!(balance[0]["time_minutes"]["room-hours"], 600, "{balance}");
    let all = [
        "charge",
        "alice",
        "--units",
        "1600",
        "--reason",
        "all of it",
    ];
    let printing = json(site, &all);
    assert_eq!(
        (
            &printing["covered"],
            &printing["overage"],
            &printing["balance_after"]
        ),
        (&1600.into(), &0.into(), &0.into()),
        "{printing}"
    );
    let units = minutes.to_string();
    let args = [
        "charge",
        "alice",
        "--units",
        &units,
        "--resource-type",
        "meeting-room",
    ];
    let time = json(site, &[&args[..], &["--reason", "room"]].concat());
    assert_eq!(
        (&time["covered"], &time["overage"], &time["balance_after"]),
        (&minutes.into(), &0.into(), &(600 - minutes).into()),
        "{time}"
    );
}

#[test]
fn a_daemon_started_a_year_ahead_holds_expiry_and_leaves_every_lot_usable() {
    let site = site();
    let ahead = a_year_ahead();
    // At the right time the daemon issues the lots, and leaves a clock mark
    // for this boot.
    let mut daemon = start(&site, &[]);
    daemon.wait_log("grants sync source=", LIMIT);
    daemon.stop();

    // A year ahead, on the same boot: the boot clock says the wall clock
    // stepped. One ERROR; no expiry, no grants sync.
    let mut daemon = start(&site, &ahead);
    daemon.wait_log("<3>wall clock stepped", LIMIT);
    daemon.wait_log("grants sync held", LIMIT);
    std::thread::sleep(Duration::from_secs(2));
    daemon.stop();
    let log = daemon.log();
    assert_eq!(lines_with(&log, &["<3>"]).len(), 1, "one ERROR:\n{log}");
    let error = lines_with(&log, &["<3>wall clock stepped"]).join("");
    let next_year = (Utc::now().date_naive().checked_add_days(Days::new(365)))
        .expect("a date")
        .format("wall=%Y-%m-%d")
        .to_string();
    assert!(
        error.contains(&next_year) && error.contains("expected="),
        "{error}"
    );
    assert!(!log.contains("expired lots"), "{log}");
    // `tallyd expire` a year ahead refuses too.
    let out = tallyd()
        .args(["expire"])
        .envs(ahead.iter().map(|(k, v)| (k, v)))
        .env("TALLYD_CONFIG", site.path("tallyd.toml"))
        .output()
        .expect("run tallyd expire");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("the wall clock looks wrong"),
        "{err}"
    );

    // Back at the right time: nothing to give back, everything usable.
    let mut daemon = start(&site, &[]);
    daemon.wait_log("grants sync source=", LIMIT);
    daemon.stop();
    assert!(!daemon.log().contains("<3>"), "{}", daemon.log());
    assert_balance_is_what_charging_sees(&site, 600);
}

/// The issue's reproduction: nothing on this boot says the clock is wrong
/// (the lots came from `tallyd sync`, no daemon ran yet), so a daemon a year
/// ahead expires every current lot. Back at the right time, the daemon gives
/// each expiry back: every lot usable, and `balance` is what `charge` sees.
#[test]
fn expiries_a_daemon_a_year_ahead_recorded_are_reversed_back_at_the_right_time() {
    let site = site();
    site.cli(&["sync"]);
    let mut daemon = start(&site, &a_year_ahead());
    daemon.wait_log("expired lots past their date lots=3 amount=2200", LIMIT);
    daemon.stop();
    assert_eq!(site.printing_balance("alice"), 0, "what the bug left");

    let mut daemon = start(&site, &[]);
    daemon.wait_log("expiries reversed", LIMIT);
    daemon.stop();
    let reversed = lines_with(&daemon.log(), &["expiries reversed"]).join("");
    assert!(reversed.contains("lots=3 amount=2200"), "{reversed}");

    assert_balance_is_what_charging_sees(&site, 30);

    // The statement shows both, never deleting: each expiry at its lot's
    // expiry, and its reversal beside it, saying why.
    let until = in_days(31).to_string();
    let statement = site.cli(&["statement", "alice", "--to", &until]);
    // Each expiry names the grant its lot was issued for.
    assert_eq!(
        statement.matches("expire: account grant ").count(),
        3,
        "{statement}"
    );
    assert_eq!(
        statement.matches("expiry reversed").count(),
        3,
        "{statement}"
    );

    // What is left expires again at its real time.
    let later = format!("{} 09:00", in_days(32));
    let expired = site.cli_at(&later, &["expire"]);
    assert!(expired.contains("expired 1 lots (570 units)"), "{expired}");
}

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

fn tap(daemon: &Daemon, door: &Pty, needle: &str, count: usize) {
    std::thread::sleep(Duration::from_millis(200));
    door.write(&rdm6300(ALICE));
    let start = std::time::Instant::now();
    while lines_with(&daemon.log(), &[needle]).len() < count {
        assert!(
            start.elapsed() < LIMIT,
            "no {count} x `{needle}`:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (started_at, ended_at, usage at) of every session.
fn sessions(site: &Site) -> Vec<(i64, i64, i64)> {
    let conn = rusqlite::Connection::open(site.path("ledger.db")).expect("ledger");
    let mut stmt = conn
        .prepare(
            "SELECT s.started_at, s.ended_at, u.at FROM sessions s
             JOIN usages u ON u.key = s.usage_key ORDER BY s.id",
        )
        .expect("query");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn a_backward_step_during_a_session_charges_the_boot_clock_minutes_and_never_ends_before_the_start()
{
    let site = Site::new(&[]);
    let pty = Pty::start(site.dir(), "door");
    site.write_config_with(&[], &door(&pty));
    site.set_clocks(0, 0);
    let mut daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("card reader is up reader=door", LIMIT);
    tap(&daemon, &pty, "session started member=alice", 1);

    // Ten minutes pass; the wall clock is stepped two hours back.
    site.set_clocks(10 * 60, -2 * 3600);
    tap(&daemon, &pty, "session ended member=alice", 1);
    let ended = lines_with(&daemon.log(), &["session ended member=alice"]).join("");
    assert!(
        ended.contains("minutes=15") && ended.contains("reason=tap"),
        "{ended}"
    );
    assert_eq!(
        lines_with(&daemon.log(), &["<3>wall clock stepped"]).len(),
        1
    );

    // The wall clock is set right: the guard says so at the next reading.
    site.set_clocks(11 * 60, 0);
    tap(&daemon, &pty, "session started member=alice", 2);
    daemon.wait_log("wall clock agrees again", LIMIT);
    daemon.stop();

    assert_eq!(
        lines_with(&daemon.log(), &["<3>"]).len(),
        1,
        "{}",
        daemon.log()
    );
    assert_eq!(site.time_balance("alice", "room-hours"), 600 - 15);
    let rows = sessions(&site);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (started, ended, charged) = rows[0];
    assert!(ended >= started && charged >= started, "{rows:?}");
    // Dated by the boot clock's estimate: ten minutes after the start.
    assert!((ended - started - 600).abs() <= 5, "{rows:?}");
}

/// A held job's age is read on the printer's clock (`printer-up-time`
/// against the job's `time-at-creation`), not this host's: with the
/// daemon's clock 12 hours ahead of cupsd's (a print server on another
/// host, its clock behind), a job held a few seconds under a 4 h hold
/// timeout stays held, and one under a 2 s timeout is cancelled after 2 s
/// by cupsd's clock.
#[test]
fn held_jobs_are_aged_on_the_printers_clock_so_a_host_clock_ahead_cancels_none_early() {
    use crate::support::daemon::PrinterSpec;
    use crate::support::pdf::write_pdf;
    use crate::support::peers::Peers;
    let peers = Peers::new();
    let cupsd = peers.cupsd();
    cupsd.add_queue("upstairs", "file:///dev/null", true);
    cupsd.add_queue("stale", "file:///dev/null", true);
    let site = Site::new(&[]);
    site.write_config_with(
        &[
            PrinterSpec::held("upstairs", &cupsd.queue_uri("upstairs"), "300ms", "4h"),
            PrinterSpec::held("stale", &cupsd.queue_uri("stale"), "300ms", "2s"),
        ],
        "",
    );
    site.set_clocks(12 * 3600, 0);
    let daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("printer is up printer=upstairs", LIMIT);
    let pdf = write_pdf(peers.dir(), "one", 1);
    let kept = cupsd.lp("upstairs", "alice", &pdf, &[]);
    cupsd.wait_state("upstairs", kept, 4, LIMIT);
    let stale = cupsd.lp("stale", "alice", &pdf, &[]);
    cupsd.wait_state("stale", stale, 7, LIMIT);
    // Many polls of `upstairs` later: its job is 12 h old by the daemon's
    // clock, seconds by cupsd's.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(cupsd.job_state("upstairs", kept), 4, "{}", daemon.log());
    let log = daemon.log();
    let cancelled = lines_with(&log, &["held job cancelled after the hold timeout"]);
    assert_eq!(cancelled.len(), 1, "{log}");
    assert!(
        cancelled[0].contains(&format!("printer=stale job_id={stale}")),
        "{}",
        cancelled[0]
    );
    let held_s: i64 = cancelled[0]
        .split("held_s=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("held_s");
    assert!((2..60).contains(&held_s), "aged on cupsd's clock: {held_s}");
}
