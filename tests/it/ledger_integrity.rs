//! `tallyd check-ledger` and the hash chains: a clean ledger passes every
//! check; a history row edited together with its lot's `remaining` (which
//! the lot check alone cannot see) is named by the chain check and refused
//! by `tallyd run`; a chain rewritten with the same algorithm is caught
//! from the tip the daemon recorded, and (the documented limit) not after
//! it; a byte-flipped file fails `integrity_check`; a dropped trigger is
//! reported.

use crate::support::daemon::Site;
use crate::support::tallyd::tallyd;
use rusqlite::Connection;
use std::process::Output;

/// A daemon site whose ledger has a grant, a charge within credit and one
/// beyond it (overage), made with the manager's commands.
fn site_with_charges() -> Site {
    let site = Site::new(&[]);
    site.cli(&[
        "grant", "alice", "--name", "Alice", "--amount", "20", "--reason", "welcome",
    ]);
    site.cli(&[
        "charge", "alice", "--amount", "5", "--reason", "posters", "--key", "k1",
    ]);
    site.cli(&[
        "charge", "alice", "--amount", "30", "--reason", "banner", "--key", "k2",
    ]);
    site
}

fn check_ledger(site: &Site, extra: &[&str]) -> Output {
    tallyd()
        .arg("--config")
        .arg(site.path("tallyd.toml"))
        .arg("check-ledger")
        .args(extra)
        .output()
        .expect("run tallyd check-ledger")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `statements` on the ledger with its update trigger on `history`
/// dropped, as someone with the file (and no tallyd) could.
fn tamper(site: &Site, statements: &str) {
    let conn = Connection::open(site.path("ledger.db")).expect("open the ledger");
    conn.execute_batch(&format!(
        "DROP TRIGGER history_no_update;
         {statements}
         CREATE TRIGGER history_no_update BEFORE UPDATE ON history
             BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;"
    ))
    .expect("tamper");
}

/// `tallyd run` on `site`, expected to exit 1 before READY; its stderr.
fn refused(site: &Site) -> String {
    let out = tallyd()
        .arg("--config")
        .arg(site.path("tallyd.toml"))
        .args(["run", "--log-format", "text"])
        .output()
        .expect("run tallyd");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("tallyd ready"), "{stderr}");
    stderr
}

#[test]
fn a_clean_ledger_passes_every_check() {
    let site = site_with_charges();
    let out = check_ledger(&site, &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 12, "{stdout}");
    assert!(lines.iter().all(|l| l.starts_with("ok ")), "{stdout}");
    for check in [
        "integrity_check: ok",
        "append-only triggers: all 29 present",
        "lots against history: 1 lots agree",
        "usages against history and overage: 2 usages agree",
        "pool draws against history: 0 usage lots of the pool agree",
        "teams against the catalog: 0 teams agree",
        "overage owed against overage: 1 member totals agree",
        "monthly roll-up against usages: 1 months agree",
        "quarter-hour adjustments against usages: 0 quarter hours agree",
        "history chain: 3 rows verified",
        "usages chain: 2 rows verified",
        "overage chain: 1 rows verified",
    ] {
        assert!(stdout.contains(check), "{check} in {stdout}");
    }
    let out = check_ledger(&site, &["--json"]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(j["ok"], true, "{j}");
    assert_eq!(j["checks"].as_array().map(Vec::len), Some(12));
}

#[test]
fn a_history_row_edited_with_its_lot_is_named_and_refused_at_start() {
    let site = site_with_charges();
    // A daemon ran once: the tips it verified are recorded and logged.
    let mut daemon = site.start();
    daemon.wait_ready();
    daemon.stop();
    assert!(
        site.log().contains("ledger hash chains verified"),
        "{}",
        site.log()
    );
    // Then the $5 debit (history row 2) becomes $1, and the lot gets the $4
    // back, so the lot still equals the sum of its history.
    tamper(
        &site,
        "UPDATE history SET delta = -100 WHERE id = 2;
         UPDATE lots SET remaining = remaining + 400 WHERE id = 1;",
    );
    // Before the chain, nothing noticed: the lot check at open passes.
    assert!(site.cli(&["balance", "alice"]).contains("alice"));

    let out = check_ledger(&site, &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("ok   lots against history: "), "{stdout}");
    assert!(
        stdout.contains("FAIL history chain: history row 2 does not match its hash"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL usages against history and overage: usage 1 (")
            && stdout.contains("covered 500 but its history takes 100"),
        "{stdout}"
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("failed 2 of 12 checks"), "{stderr}");

    // The row is older than the tip the daemon recorded, so a start does not
    // rehash it; it is after a fresh ledger's start (below) that it is.
    let site = site_with_charges();
    tamper(
        &site,
        "UPDATE history SET delta = -100 WHERE id = 2;
         UPDATE lots SET remaining = remaining + 400 WHERE id = 1;",
    );
    let stderr = refused(&site);
    let ledger = site.path("ledger.db").display().to_string();
    for part in [
        format!("ledger {ledger}: the history hash chain is broken"),
        "history hash chain is broken: history row 2 does not match its hash".into(),
    ] {
        assert!(stderr.contains(&part), "{part} in {stderr}");
    }
}

/// Rehashes every history row from `from` on with the chain's own
/// algorithm, as someone who knows it would after editing row `from`.
fn rehash_history_from(site: &Site, from: i64) {
    use tallyd::ledger::chain::{hex, link, Field};
    let conn = Connection::open(site.path("ledger.db")).expect("open");
    let mut prev: [u8; 32] = conn
        .query_row("SELECT hash FROM history WHERE id = ?1", [from - 1], |r| {
            r.get::<_, Vec<u8>>(0)
        })
        .expect("the row before")
        .try_into()
        .expect("32 bytes");
    let mut stmt = conn
        .prepare(
            "SELECT h.id, h.lot_id, l.member_id, l.credit, h.kind, h.delta, h.granted_delta,
                    h.usage_id, h.note, h.at
             FROM history h JOIN lots l ON l.id = h.lot_id WHERE h.id >= ?1 ORDER BY h.id",
        )
        .expect("prepare");
    let mut updates = String::new();
    let mut rows = stmt.query([from]).expect("query");
    while let Some(r) = rows.next().expect("row") {
        let id: i64 = r.get(0).expect("id");
        let text = |i| r.get::<_, String>(i).expect("text");
        let (member, credit, kind, note) = (text(2), text(3), text(4), text(8));
        let int = |i| r.get::<_, i64>(i).expect("int");
        let fields: Vec<Field<'_>> = vec![
            id.into(),
            int(1).into(),
            member.as_str().into(),
            credit.as_str().into(),
            kind.as_str().into(),
            int(5).into(),
            int(6).into(),
            r.get::<_, Option<i64>>(7).expect("usage").into(),
            note.as_str().into(),
            int(9).into(),
        ];
        prev = link("history", &prev, &fields);
        updates.push_str(&format!(
            "UPDATE history SET hash = x'{}' WHERE id = {id};\n",
            hex(&prev)
        ));
    }
    drop(rows);
    drop(stmt);
    drop(conn);
    tamper(site, &updates);
}

/// The history row where the daemon last verified the chain.
fn recorded_row(site: &Site) -> i64 {
    let conn = Connection::open(site.path("ledger.db")).expect("open");
    conn.query_row(
        "SELECT row_id FROM chain_tips WHERE chain = 'history'",
        [],
        |r| r.get(0),
    )
    .expect("a recorded tip")
}

#[test]
fn a_chain_rewritten_from_before_the_recorded_tip_is_caught_but_not_after_it() {
    let site = site_with_charges();
    let mut daemon = site.start();
    daemon.wait_ready();
    daemon.stop();
    // The daemon recorded the tip at its start (row 3, the $30 debit), then
    // the grants sync appended more rows (other members' grants).
    let recorded = recorded_row(&site);
    assert_eq!(recorded, 3);

    // The limit: the newest row (a grant) edited, one cent less on its lot,
    // and rehashed with the same algorithm. Every link holds, and nothing
    // recorded covers it, so it goes unnoticed.
    let newest = site.cli(&["check-ledger"]);
    let last = newest
        .lines()
        .find_map(|l| l.strip_prefix("ok   history chain: "))
        .and_then(|l| l.split("tip row ").nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse::<i64>().ok())
        .expect("the tip row");
    assert!(last > recorded, "{newest}");
    tamper(
        &site,
        &format!(
            "UPDATE history SET delta = delta - 1 WHERE id = {last};
             UPDATE lots SET remaining = remaining - 1
                 WHERE id = (SELECT lot_id FROM history WHERE id = {last});"
        ),
    );
    rehash_history_from(&site, last);
    site.cli(&["check-ledger"]);

    // From the recorded row on: the $30 debit becomes $29.99, the lot gets
    // the cent back, every later row rehashed. The recorded point catches it.
    tamper(
        &site,
        "UPDATE history SET delta = delta + 1 WHERE id = 3;
         UPDATE lots SET remaining = remaining + 1 WHERE id = 1;",
    );
    rehash_history_from(&site, 3);
    let out = check_ledger(&site, &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "FAIL history chain: history row 3, where the chain was last verified, no longer carries the hash recorded for it"
        ),
        "{stdout}"
    );
    let stderr = refused(&site);
    assert!(
        stderr.contains("history hash chain is broken: history row 3"),
        "{stderr}"
    );
}

#[test]
fn a_byte_flipped_ledger_fails_integrity_check() {
    let site = site_with_charges();
    let ledger = site.path("ledger.db");
    let mut bytes = std::fs::read(&ledger).expect("read");
    let page = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    // Page 3's b-tree header claims 65535 cells.
    bytes[page * 2 + 3] = 0xff;
    bytes[page * 2 + 4] = 0xff;
    std::fs::write(&ledger, &bytes).expect("write");
    let out = check_ledger(&site, &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL integrity_check: "), "{stdout}");
    assert_eq!(stdout.lines().count(), 12, "one line per check: {stdout}");
}

#[test]
fn a_dropped_trigger_is_reported() {
    let site = site_with_charges();
    let conn = Connection::open(site.path("ledger.db")).expect("open");
    conn.execute_batch("DROP TRIGGER usages_no_delete")
        .expect("drop");
    drop(conn);
    let out = check_ledger(&site, &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL append-only triggers: missing: usages_no_delete"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("FAIL").count(), 1, "{stdout}");
}
