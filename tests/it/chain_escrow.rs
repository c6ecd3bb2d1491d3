//! Escrow (issue 18, multi-site.md 3.4-3.6): sites whose lots the centre
//! issues (`[central] issue = "central"`) spend only the slices of chain
//! lots the centre placed with them, plus the offline allowance; a real
//! PostgreSQL, `tallyd central`, site daemons reaching it through proxies
//! the test cuts, and, for releases, a private cupsd with a held queue and
//! a card reader on a `socat` pseudo-terminal.

use super::central::{join_chain, outbox, wait_for};
use crate::support::daemon::{Daemon, Site, CATALOG};
use crate::support::pdf::write_pdf;
use crate::support::peers::Peers;
use crate::support::postgres::{site_token, Central, Postgres};
use crate::support::process::free_port;
use crate::support::pty::{rdm6300, Pty};
use crate::support::tcp_proxy::{Mode, TcpProxy};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// ann: credits-only, 50 cents of printing for the whole chain; ben: 1,000
/// cents, credits-then-invoice.
fn grants() -> String {
    CATALOG.to_string()
        + r#"
[[member]]
id = "ann"
name = "Ann"
cards = ["A000000A01"]
print_users = ["ann"]
overage_policy = "credits-only"
  [[member.grant]]
  id = "start"
  credit = "printing"
  amount = 50
  from = 2026-01-01

[[member]]
id = "ben"
name = "Ben"
print_users = ["ben"]
  [[member.grant]]
  id = "start"
  credit = "printing"
  amount = 1000
  from = 2026-01-01
"#
}

/// The centre on `port` issuing [`grants`]' lots, once it has.
fn centre(pg: &Postgres, port: u16) -> Central {
    let central = Central::start_with_grants(pg, port, &grants());
    wait_for("the centre issued the lots", LIMIT, || {
        central.log().contains("central grants sync")
    });
    central
}

/// A site shipping as `site_id` through `proxy`, its lots issued by the
/// centre; `more`: more `[central]` lines, then the site's printers.
fn escrow_site(proxy: &TcpProxy, site_id: &str, more: &str) -> Site {
    let site = Site::new(&[]);
    std::fs::write(site.path("grants.toml"), grants()).expect("grants file");
    let url = format!("http://127.0.0.1:{}", proxy.port);
    let central = format!("issue = \"central\"\n{more}");
    join_chain(&site, &url, site_id, 50, &central);
    site
}

fn ledger(site: &Site) -> rusqlite::Connection {
    rusqlite::Connection::open(site.path("ledger.db")).expect("open ledger")
}

fn local(site: &Site, sql: &str) -> i64 {
    ledger(site)
        .query_row(sql, [], |r| r.get(0))
        .expect("a local figure")
}

/// What `member`'s escrow lots at `site` were granted and hold now.
fn escrow_here(site: &Site, member: &str) -> (i64, i64) {
    ledger(site)
        .query_row(
            "SELECT COALESCE(SUM(granted), 0), COALESCE(SUM(remaining), 0) FROM lots
             WHERE member_id = ?1 AND source_key LIKE 'escrow:%'",
            [member],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("escrow lots")
}

fn charge_as(site: &Site, member: &str, key: &str, units: i64) {
    let units = units.to_string();
    let args = [
        "charge", member, "--units", &units, "--reason", "copier", "--key", key,
    ];
    site.cli(&args);
}

fn all_acknowledged(site: &Site) -> bool {
    let (_, acked, last) = outbox(site);
    acked == last
}

/// `tallyd central check` passes, with its escrow check.
fn centre_checks(central: &Central) {
    let (ok, out) = central.check();
    assert!(ok, "central check failed:\n{out}");
    assert!(out.contains("escrow against slices"), "{out}");
}

#[test]
fn escrow_slices_are_spent_offline_and_counted_once_at_the_centre() {
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let port = free_port();
    let central = centre(&pg, port);
    let (p1, p2) = (TcpProxy::start(port), TcpProxy::start(port));
    let s1 = escrow_site(&p1, "ber-1", "escrow_cents = 300\n");
    let s2 = escrow_site(&p2, "ber-2", "escrow_cents = 300\n");
    let (mut d1, mut d2) = (s1.start(), s2.start());
    d1.wait_ready();
    d2.wait_ready();
    // The grants file gives the sites members, not lots.
    assert_eq!(local(&s1, "SELECT count(*) FROM members"), 2);
    assert_eq!(local(&s1, "SELECT count(*) FROM lots"), 0);

    // Ben's first usage at each site: no slice yet, so local overage, which
    // the centre pays from his unescrowed credit; then each site keeps a
    // slice of its target, 300.
    charge_as(&s1, "ben", "k1", 40);
    charge_as(&s2, "ben", "k2", 40);
    for s in [&s1, &s2] {
        wait_for("a slice placed", LIMIT, || {
            escrow_here(s, "ben") == (300, 300)
        });
    }
    // The daemon logs a placement once its ledger holds it.
    wait_for("the placement logged", LIMIT, || {
        s1.log().contains("escrow placed at this site")
    });

    // Partitioned, each site spends its slice; a refund gives back to it.
    p1.set(Mode::Cut);
    p2.set(Mode::Cut);
    charge_as(&s1, "ben", "k3", 250);
    charge_as(&s2, "ben", "k4", 100);
    s2.cli(&["refund", "manual:k4", "--reason", "jammed"]);
    charge_as(&s2, "ben", "k5", 120);
    assert_eq!(escrow_here(&s1, "ben"), (300, 50));
    assert_eq!(escrow_here(&s2, "ben"), (300, 180));
    assert_eq!(
        local(&s1, "SELECT covered FROM usages WHERE key = 'manual:k3'"),
        250
    );

    p1.set(Mode::Pass);
    p2.set(Mode::Pass);
    for s in [&s1, &s2] {
        wait_for("everything acknowledged", LIMIT, || all_acknowledged(s));
    }
    centre_checks(&central);
    // Spent once each: 40 + 40 + 250 + 120 of 1,000, nothing owed.
    let ben = "FROM lots WHERE member_id = 'ben'";
    assert_eq!(pg.count(&format!("SELECT sum(remaining) {ben}")), 550);
    assert_eq!(
        pg.count("SELECT count(*) FROM central_overage WHERE member_id = 'ben'"),
        0
    );
    let consumed = |site: &str| {
        pg.count(&format!(
            "SELECT COALESCE(sum(consumed), 0) FROM escrow_slices WHERE site_id = '{site}'"
        ))
    };
    // The refunded 100 left nothing taken from ber-2's slice.
    assert_eq!((consumed("ber-1"), consumed("ber-2")), (250, 120));
    // What the slices hold is escrowed, never more than remains.
    let escrowed = pg.count(&format!("SELECT sum(escrowed) {ben}"));
    let open = pg.count(
        "SELECT sum(amount - consumed - returned) FROM escrow_slices WHERE member_id = 'ben'",
    );
    assert_eq!(escrowed, open);
    assert!(escrowed <= 550, "escrowed {escrowed}");

    // ber-1 returns its slices (as it does once their lots expired): what
    // they held is unescrowed again. A late usage on a returned slice draws
    // from unescrowed credit instead.
    let ids =
        pg.query("SELECT string_agg(id::text, ',') FROM escrow_slices WHERE site_id = 'ber-1'");
    let body = format!(r#"{{"site_id":"ber-1","slices":[{ids}]}}"#);
    let (status, _) = central.post("/v1/escrow/return", &body, Some(&site_token("ber-1")));
    assert_eq!(status, 204);
    let open_at = |site: &str| {
        pg.count(&format!(
            "SELECT COALESCE(sum(amount - consumed - returned), 0) FROM escrow_slices
             WHERE site_id = '{site}'"
        ))
    };
    assert_eq!(open_at("ber-1"), 0);
    charge_as(&s1, "ben", "k6", 30);
    wait_for("the late usage acknowledged", LIMIT, || {
        all_acknowledged(&s1)
    });
    centre_checks(&central);
    assert_eq!(pg.count(&format!("SELECT sum(remaining) {ben}")), 520);
    assert_eq!(consumed("ber-1"), 250);
    d1.stop();
    d2.stop();
}

/// A held queue on a private cupsd and its reader, for [`ann_prints`].
struct Desk {
    cupsd: crate::support::cupsd::Cupsd,
    pty: Pty,
    two: std::path::PathBuf,
    _peers: Peers,
}

fn desk(site_dir: &std::path::Path) -> Desk {
    let peers = Peers::new();
    let cupsd = peers.cupsd();
    cupsd.add_queue("desk", "file:///dev/null", true);
    Desk {
        two: write_pdf(peers.dir(), "two", 2),
        pty: Pty::start(site_dir, "desk"),
        cupsd,
        _peers: peers,
    }
}

fn desk_toml(d: &Desk) -> String {
    format!(
        "\n[[printers]]\nid = \"desk\"\nuri = \"{}\"\nmode = \"held\"\nprices = \"standard\"\npoll_interval = \"300ms\"\ntimeout = \"2s\"\nhold_timeout = \"4h\"\npage_estimate = 5\n\n[[readers]]\nid = \"desk\"\ndevice = \"{}\"\nframing = \"rdm6300\"\nprinter = \"desk\"\ndebounce = \"100ms\"\n",
        d.cupsd.queue_uri("desk"),
        d.pty.reader.display()
    )
}

/// Ann prints two pages and taps; the job's id.
fn ann_taps(d: &Desk) -> u32 {
    let mono = ["-o", "print-color-mode=monochrome"];
    let job = d.cupsd.lp("desk", "ann", &d.two, &mono);
    d.cupsd.wait_state("desk", job, 4, LIMIT);
    // Past the reader's debounce, so a tap is never taken for a repeat.
    std::thread::sleep(Duration::from_millis(150));
    d.pty.write(&rdm6300("A000000A01"));
    job
}

/// Ann's job released, printed and its hold settled.
fn ann_printed(d: &Desk, daemon: &Daemon) {
    let job = ann_taps(d);
    daemon.wait_log(
        &format!("released job settled member=ann printer=desk job_id={job}"),
        LIMIT,
    );
}

#[test]
fn a_credits_only_release_asks_the_centre_at_the_tap_and_offline_goes_no_further_than_the_allowance(
) {
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let port = free_port();
    let central = centre(&pg, port);
    let proxy = TcpProxy::start(port);
    let site = Site::new(&[]);
    let d = desk(site.dir());
    std::fs::write(site.path("grants.toml"), grants()).expect("grants file");
    let url = format!("http://127.0.0.1:{}", proxy.port);
    let more = format!(
        "issue = \"central\"\nescrow_cents = 30\nallowance_cents = 60\n{}",
        desk_toml(&d)
    );
    join_chain(&site, &url, "ber-1", 50, &more);
    let mut daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("card reader is up reader=desk", LIMIT);

    // Online: no credit here, so the tap asks the centre for the hold's 50
    // cents, gets them, and the job prints (2 pages: 20 cents).
    ann_printed(&d, &daemon);
    wait_for("the first job settled and shipped", LIMIT, || {
        escrow_here(&site, "ann") == (50, 30) && all_acknowledged(&site)
    });
    assert_eq!(
        pg.count("SELECT sum(escrowed) FROM lots WHERE member_id = 'ann'"),
        30
    );

    // Offline: the next job's 50-cent hold takes the slice's 30 and 20 of
    // the 60-cent allowance (it settles at 20, all from the slice); the one
    // after takes the slice's last 10 and the allowance's other 40 (it
    // settles at 20: 10 beyond the slice); the third finds neither and
    // stays held.
    proxy.set(Mode::Cut);
    ann_printed(&d, &daemon);
    ann_printed(&d, &daemon);
    let j4 = ann_taps(&d);
    wait_for("the third offline job kept", LIMIT, || {
        daemon.log().contains("credits-only")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(d.cupsd.job_state("desk", j4), 4, "still held");
    assert!(daemon.log().contains("escrow not reached at a tap"));
    assert_eq!(
        local(&site, "SELECT COALESCE(SUM(amount), 0) FROM allowance_uses"),
        60
    );

    // Healed: the centre counts each job once at 20 cents: 50 from the
    // slice, 10 owed as offline overage, within the 60 allowance.
    proxy.set(Mode::Pass);
    wait_for("everything acknowledged", Duration::from_secs(60), || {
        all_acknowledged(&site) && local(&site, "SELECT count(*) FROM hold_resolutions") == 3
    });
    wait_for("everything acknowledged", LIMIT, || all_acknowledged(&site));
    centre_checks(&central);
    let ann = "WHERE member_id = 'ann'";
    assert_eq!(
        pg.count(&format!("SELECT sum(remaining) FROM lots {ann}")),
        0
    );
    assert_eq!(
        pg.count(&format!(
            "SELECT COALESCE(sum(amount), 0) FROM central_overage {ann} AND cause = 'offline'"
        )),
        10
    );
    assert_eq!(
        pg.count(&format!(
            "SELECT COALESCE(sum(amount), 0) FROM central_overage {ann}"
        )),
        10
    );

    // Online again, the chain has nothing left for her: the tap asks, the
    // centre places nothing, and credits-only keeps the job held.
    let before = daemon.log().matches("credits-only").count();
    d.pty.write(&rdm6300("A000000A01"));
    wait_for("the retry refused", LIMIT, || {
        daemon.log().matches("credits-only").count() > before
    });
    assert_eq!(d.cupsd.job_state("desk", j4), 4, "still held");
    daemon.stop();
}

#[test]
fn an_offline_room_session_starts_on_the_minutes_allowance_and_the_centre_books_it_offline() {
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let port = free_port();
    let central = centre(&pg, port);
    let proxy = TcpProxy::start(port);
    let site = Site::new(&[]);
    let pty = Pty::start(site.dir(), "door");
    std::fs::write(site.path("grants.toml"), grants()).expect("grants file");
    let url = format!("http://127.0.0.1:{}", proxy.port);
    let door = format!(
        "issue = \"central\"\nallowance_minutes = 40\n\n[[readers]]\nid = \"door\"\ndevice = \"{}\"\nframing = \"rdm6300\"\nresource = \"room-a\"\ndebounce = \"100ms\"\nincrement = \"15m\"\nmax_session = \"1h\"\n",
        pty.reader.display()
    );
    join_chain(&site, &url, "ber-1", 50, &door);
    let mut daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("card reader is up reader=door", LIMIT);
    let decided = |log: &str| {
        ["session not started", "session started", "session ended"]
            .iter()
            .map(|l| log.matches(l).count())
            .sum::<usize>()
    };
    let taps = |n: usize| {
        // Past the reader's debounce, so a tap is never taken for a repeat.
        std::thread::sleep(Duration::from_millis(200));
        pty.write(&rdm6300("A000000A01"));
        let started = std::time::Instant::now();
        while decided(&daemon.log()) < n {
            assert!(
                started.elapsed() < LIMIT,
                "tap {n} not decided:\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    // Online: Ann has no room hours in the chain; the centre has none to
    // place, and credits-only refuses.
    taps(1);
    assert!(daemon.log().contains("session not started"));
    // Cut off: the allowance's two whole 15-minute increments start it.
    proxy.set(Mode::Cut);
    taps(2);
    assert!(daemon.log().contains("session started"), "{}", daemon.log());
    assert!(daemon.log().contains("escrow not reached at a tap"));
    // Past the bounce window, her tap ends it: 15 minutes, all beyond
    // credit, on the allowance.
    std::thread::sleep(Duration::from_secs(11));
    taps(3);
    assert!(daemon.log().contains("session ended"));
    assert_eq!(
        local(
            &site,
            "SELECT COALESCE(SUM(amount), 0) FROM allowance_uses WHERE unit = 'minutes'"
        ),
        15
    );

    // Healed: the centre books the 15 minutes as offline overage.
    proxy.set(Mode::Pass);
    wait_for("everything acknowledged", Duration::from_secs(60), || {
        all_acknowledged(&site)
    });
    centre_checks(&central);
    assert_eq!(
        pg.count(
            "SELECT COALESCE(sum(amount), 0) FROM central_overage
             WHERE member_id = 'ann' AND unit = 'minutes' AND cause = 'offline'"
        ),
        15
    );
    daemon.stop();
}
