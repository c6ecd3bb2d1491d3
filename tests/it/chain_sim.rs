//! Proof by simulation (issue 18, point 4; multi-site.md section 4): a
//! real PostgreSQL, `tallyd central`, six site daemons and later a clone of
//! one, each site reaching the centre through a proxy the test owns
//! ([`TcpProxy`]). A seeded workload charges members roaming between sites,
//! refunds some usages and tops some members up, while the proxies cut,
//! delay, drop responses after the centre applied the request, and replay
//! old requests; a site daemon and the centre are SIGKILLed, PostgreSQL
//! stopped as by a crash and restarted; the daemons' clocks are offset and
//! one steps two hours; one site is restored from a
//! backup taken rounds earlier and one is cloned, the clone charging one
//! key with other content than its twin, and refunding it (the injected
//! conflict: the centre counts the twin's usage, unrefunded).
//!
//! The test keeps an oracle of every usage it charged, and after healing
//! checks the centre against it, each site's ledger against what that site
//! charged, `tallyd check-ledger` on each site, and that every site's
//! outbox is acknowledged up to its last seq at the centre.
//!
//! Holds: the first site has two held queues on a private cupsd, each with
//! a card reader (a `socat` pseudo-terminal); members print 2 or 7 pages
//! and tap, so each job's hold (an estimate of 5 pages) settles down or
//! up, or, on the queue where CUPS counts nothing, is voided. That site is
//! not the one restored (see [`chain_sim_restored_held_printer_site`] for
//! why).
//!
//! The centre issues the chain's lots from the same grants file the sites
//! sync: its lots are checked against their history, and each usage's draw
//! on them (credit, then overage) against its final amount. The sites
//! still issue their own lots too, so each ledger is checked as well
//! (`tallyd check-ledger`; per member, spent <= granted).
//!
//! Not simulated here: escrow (not built: sites spend their own lots, so
//! there is no partition overage bound to check), lots that expire, and
//! days of virtual time (charges are stamped by the
//! real clock; only the daemons' clocks are offset). The workload and the
//! faults follow the seed; what the shipper meets depends on timing too, so
//! a failing seed may need a few runs to fail again.

use crate::central::{clone_ledger, join_chain, outbox, wait_for};
use crate::support::cupsd::Cupsd;
use crate::support::daemon::{Daemon, Site, CATALOG};
use crate::support::pdf::write_pdf;
use crate::support::peers::Peers;
use crate::support::postgres::{Central, Postgres};
use crate::support::process::free_port;
use crate::support::pty::{rdm6300, Pty};
use crate::support::tcp_proxy::{Mode, TcpProxy};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Site daemons at the start (the clone makes one more).
const SITES: usize = 6;
/// Members, each at home at site `index % SITES`.
const MEMBERS: usize = 10;
/// Each member's printing credit at every site, in cents.
const GRANTED: i64 = 400;
const ROUNDS: usize = 8;
/// Charges, refunds and top-ups per round.
const OPS: usize = 10;
/// A round lasts at least this long, so the shipper meets its faults.
const ROUND_TIME: Duration = Duration::from_millis(1200);
/// How long the sites get to drain once healed.
const HEAL_LIMIT: Duration = Duration::from_secs(60);
/// The node with the held printer.
const HOLD_NODE: usize = 0;
/// A held job's estimate: `page_estimate` pages at 10 cents.
const PAGE_ESTIMATE: i64 = 5;
const LIMIT: Duration = Duration::from_secs(30);

/// The seeds every CI run simulates.
const CI_SEEDS: [u64; 3] = [7, 1802, 40_413];

#[test]
fn chain_sim_seed_7() {
    run_seed(CI_SEEDS[0]);
}

#[test]
fn chain_sim_seed_1802() {
    run_seed(CI_SEEDS[1]);
}

#[test]
fn chain_sim_seed_40413() {
    run_seed(CI_SEEDS[2]);
}

/// More seeds, by hand: `CHAIN_SIM_SEEDS=50 cargo test --test it
/// chain_sim_many_seeds -- --ignored` (seeds 1000 to 1049).
#[test]
#[ignore]
fn chain_sim_many_seeds() {
    let n: u64 = std::env::var("CHAIN_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    for seed in 1000..1000 + n {
        run_seed(seed);
    }
}

/// The site with the held printer restored from its backup: the jobs it
/// settled after the backup are lost with the ledger, and its daemon finds
/// them again among cupsd's completed jobs and debits them afresh (no hold
/// left to settle). The centre holds each as a settled hold already, so it
/// records a conflict per job (other fingerprint: no hold, and the amount
/// charged rather than the estimate) and counts each once. The design
/// (multi-site.md 3.8) has a restored site download the entries it lost and
/// import their keys first, so re-polled jobs dedupe locally; until that
/// exists this fails on its "only the injected conflict" check.
#[test]
#[ignore = "needs multi-site.md 3.8: a restored site imports the keys it lost from the centre"]
fn chain_sim_restored_held_printer_site() {
    run_seed_with(CI_SEEDS[0], true);
}

fn run_seed(seed: u64) {
    run_seed_with(seed, false);
}

/// Runs one seed; a failure anywhere (the support code's own panics too)
/// is reported again naming the seed.
fn run_seed_with(seed: u64, restore_held_printer: bool) {
    let _serial = crate::support::serial();
    let run = std::panic::catch_unwind(|| simulate(seed, restore_held_printer));
    if let Err(e) = run {
        let why = e
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| e.downcast_ref::<&str>().copied())
            .unwrap_or("(see above)");
        panic!("chain_sim seed {seed} failed: {why}");
    }
}

fn simulate(seed: u64, restore_held_printer: bool) {
    let started = Instant::now();
    let mut sim = Sim::new(seed);
    sim.run(restore_held_printer);
    sim.heal();
    sim.check();
    let (forwarded, dropped) = sim.nodes.iter().fold((0, 0), |(f, d), n| {
        let (nf, nd) = n.proxy.counts();
        (f + nf, d + nd)
    });
    let epochs = sim.pg.query(
        "SELECT string_agg(site_id || ':' || epoch || ':' || high_water
            || CASE WHEN closed_at IS NULL THEN '' ELSE ':closed' END, ' '
            ORDER BY site_id, epoch) FROM site_epochs",
    );
    eprintln!(
        "chain_sim seed {seed}: {} usages, {} refunded, {forwarded} requests forwarded, {dropped} responses dropped, in {:?}; epochs {epochs}; {}",
        sim.oracle.len(),
        sim.oracle.values().filter(|u| u.refunded).count(),
        started.elapsed(),
        sim.events.join("; ")
    );
}

/// xorshift64: the workload and the faults, from the seed alone.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn range(&mut self, from: i64, to: i64) -> i64 {
        from + (self.next() % (to - from + 1) as u64) as i64
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A usage as the test charged it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Usage {
    member: String,
    /// Its final amount: a hold's at what it settled.
    units: i64,
    refunded: bool,
    hold: bool,
}

/// The held printer of [`HOLD_NODE`]: a private cupsd with a held queue
/// `desk` printing to /dev/null, the card reader at it, and the documents.
/// Beside it a second held queue, `blank`, raw to /dev/null: CUPS counts
/// no page there, so a job released there ends with nothing printed and
/// its hold is voided.
struct Desk {
    cupsd: Cupsd,
    pty: Pty,
    blank_pty: Pty,
    /// Documents of 2 and 7 pages: the hold settles down and up.
    two: std::path::PathBuf,
    seven: std::path::PathBuf,
    _peers: Peers,
}

/// A `[[printers]]` table for held queue `id` of `cupsd` and a
/// `[[readers]]` table for its reader on `pty`.
fn held_printer_toml(cupsd: &Cupsd, id: &str, pty: &Pty) -> String {
    format!(
        "\n[[printers]]\nid = \"{id}\"\nuri = \"{}\"\nmode = \"held\"\nprices = \"standard\"\npoll_interval = \"300ms\"\ntimeout = \"2s\"\nhold_timeout = \"4h\"\npage_estimate = {PAGE_ESTIMATE}\n\n[[readers]]\nid = \"{id}\"\ndevice = \"{}\"\nframing = \"rdm6300\"\nprinter = \"{id}\"\ndebounce = \"100ms\"\n",
        cupsd.queue_uri(id),
        pty.reader.display()
    )
}

/// Member `i`'s card.
fn card(i: usize) -> String {
    format!("A0000000{i:02X}")
}

/// One site daemon's folder, its proxy, and what its ledger holds.
struct Node {
    name: String,
    site_id: &'static str,
    site: Site,
    proxy: TcpProxy,
    daemon: Option<Daemon>,
    /// The ledger's usages by key (`manual:…`), as the test charged them.
    ledger: BTreeMap<String, Usage>,
    /// The next key's number (never reused, even after a restore).
    next_key: usize,
    /// The daemon's clock offset, seconds.
    clock: i64,
    desk: Option<Desk>,
}

/// A backup taken of a node: its file and what the ledger held then.
struct Backup {
    node: usize,
    file: std::path::PathBuf,
    ledger: BTreeMap<String, Usage>,
}

/// Which rounds the seed's special events happen in.
struct Plan {
    backup: usize,
    clone: usize,
    restore: usize,
    kill_site: usize,
    kill_centre: usize,
    pg_restart: usize,
    clock_step: usize,
    /// The node restored, and the node cloned.
    restored: usize,
    cloned: usize,
}

struct Sim {
    seed: u64,
    rng: Rng,
    pg: Postgres,
    centre_port: u16,
    central: Option<Central>,
    nodes: Vec<Node>,
    /// What the centre must count, by (site id, key).
    oracle: BTreeMap<(String, String), Usage>,
    /// The injected conflict: site id, key, and the node whose version the
    /// centre must not count.
    conflict: Option<(String, String, usize)>,
    backup: Option<Backup>,
    /// What happened, in order, for the failure messages.
    events: Vec<String>,
    next_grant: usize,
}

fn grants_file() -> String {
    let mut text = CATALOG.to_string();
    for i in 0..MEMBERS {
        write!(
            text,
            "\n[[member]]\nid = \"m{i}\"\nname = \"Member {i}\"\ncards = [\"{}\"]\nprint_users = [\"m{i}\"]\n  [[member.grant]]\n  id = \"start\"\n  credit = \"printing\"\n  amount = {GRANTED}\n  from = 2026-01-01\n",
            card(i)
        )
        .expect("write to a string");
    }
    text
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = Rng::new(seed);
        let pg = Postgres::start();
        let centre_port = free_port();
        let central = Central::start_with_grants(&pg, centre_port, &grants_file());
        let mut sim = Sim {
            seed,
            rng: Rng::new(0),
            pg,
            centre_port,
            central: Some(central),
            nodes: Vec::new(),
            oracle: BTreeMap::new(),
            conflict: None,
            backup: None,
            events: Vec::new(),
            next_grant: 0,
        };
        for i in 0..SITES {
            let site_id = crate::support::postgres::SITES[i];
            let clock = rng.range(-600, 600);
            let batch = rng.range(1, 6) as usize;
            let node = sim.new_node(site_id.to_string(), site_id, batch, clock, i == HOLD_NODE);
            sim.nodes.push(node);
        }
        sim.rng = rng;
        for n in 0..sim.nodes.len() {
            sim.start_daemon(n);
        }
        sim
    }

    /// A site folder shipping as `site_id` through a proxy of its own, its
    /// members synced from the grants file (before the daemon starts, so a
    /// charge finds them).
    fn new_node(
        &self,
        name: String,
        site_id: &'static str,
        batch: usize,
        clock: i64,
        held_printer: bool,
    ) -> Node {
        let site = Site::new(&[]);
        std::fs::write(site.path("grants.toml"), grants_file()).expect("grants file");
        let proxy = TcpProxy::start(self.centre_port);
        let url = format!("http://127.0.0.1:{}", proxy.port);
        let desk = held_printer.then(|| {
            let peers = Peers::new();
            let cupsd = peers.cupsd();
            cupsd.add_queue("desk", "file:///dev/null", true);
            cupsd.add_queue_model("blank", "file:///dev/null", true, None);
            Desk {
                two: write_pdf(peers.dir(), "two", 2),
                seven: write_pdf(peers.dir(), "seven", 7),
                pty: Pty::start(site.dir(), "desk"),
                blank_pty: Pty::start(site.dir(), "blank"),
                cupsd,
                _peers: peers,
            }
        });
        // The printers and their readers, after `[central]`'s lines.
        let more = desk.as_ref().map_or(String::new(), |d| {
            held_printer_toml(&d.cupsd, "desk", &d.pty)
                + &held_printer_toml(&d.cupsd, "blank", &d.blank_pty)
        });
        join_chain(&site, &url, site_id, batch, &more);
        site.set_clocks(clock, 0);
        Node {
            name,
            site_id,
            site,
            proxy,
            daemon: None,
            ledger: BTreeMap::new(),
            next_key: 0,
            clock,
            desk,
        }
    }

    fn start_daemon(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        let daemon = node.site.start();
        daemon.wait_ready();
        if node.desk.is_some() {
            daemon.wait_log("card reader is up reader=desk", LIMIT);
            daemon.wait_log("card reader is up reader=blank", LIMIT);
        }
        node.daemon = Some(daemon);
    }

    fn say(&mut self, event: String) {
        self.events.push(event);
    }

    /// The seed's events. The site restored is never the one with the
    /// held printer unless `restore_held_printer` (see
    /// [`chain_sim_restored_held_printer_site`]).
    fn plan(&mut self, restore_held_printer: bool) -> Plan {
        let restored = match restore_held_printer {
            true => HOLD_NODE,
            false => (HOLD_NODE + 1 + self.rng.below(SITES - 1)) % SITES,
        };
        let cloned = (restored + 1 + self.rng.below(SITES - 1)) % SITES;
        Plan {
            backup: 1,
            clone: 2 + self.rng.below(2),
            restore: 5 + self.rng.below(2),
            kill_site: 1 + self.rng.below(ROUNDS - 2),
            kill_centre: 1 + self.rng.below(ROUNDS - 2),
            pg_restart: 1 + self.rng.below(ROUNDS - 2),
            clock_step: 1 + self.rng.below(ROUNDS - 2),
            restored,
            cloned,
        }
    }

    fn run(&mut self, restore_held_printer: bool) {
        let plan = self.plan(restore_held_printer);
        for round in 0..ROUNDS {
            let started = Instant::now();
            for n in 0..self.nodes.len() {
                if self.nodes[n].daemon.is_none() {
                    self.start_daemon(n);
                    let name = self.nodes[n].name.clone();
                    self.say(format!("r{round}: {name} restarted"));
                }
            }
            if round == plan.backup {
                self.take_backup(plan.restored);
            }
            if round == plan.clone {
                self.clone_node(plan.cloned, round);
            }
            if round == plan.restore {
                self.restore(round);
            }
            if round > 0 {
                self.faults(round);
            }
            if round == plan.clock_step {
                let n = self.rng.below(self.nodes.len());
                let node = &self.nodes[n];
                node.site.set_clocks(node.clock, 7200);
                let name = node.name.clone();
                self.say(format!("r{round}: {name}'s wall clock steps +2h"));
            }
            // A held job before the backup, one between it and the restore,
            // and one at the end.
            if round == 0 || round + 1 == plan.restore || round == ROUNDS - 1 {
                let member = self.rng.below(MEMBERS);
                self.print_held(member);
            }
            for op in 0..OPS {
                if round == plan.kill_centre && op == OPS / 2 {
                    self.central = None;
                    self.say(format!("r{round}: centre SIGKILLed"));
                }
                if round == plan.pg_restart && op == 2 * OPS / 3 {
                    self.pg.restart_immediate();
                    self.say(format!("r{round}: PostgreSQL restarted (immediate)"));
                }
                if round == plan.kill_site && op == OPS / 3 {
                    let n = self.rng.below(self.nodes.len());
                    if let Some(mut d) = self.nodes[n].daemon.take() {
                        d.kill9();
                    }
                    let name = self.nodes[n].name.clone();
                    self.say(format!("r{round}: {name} SIGKILLed"));
                }
                self.operate();
            }
            if self.rng.chance(70) {
                let n = self.rng.below(self.nodes.len());
                // A third of the replays are the site's first hello (epoch
                // 1, nothing written): to the centre, a restored ledger.
                let index = if self.rng.chance(33) {
                    0
                } else {
                    self.rng.next() as usize
                };
                let answer = self.nodes[n].proxy.replay(index);
                let name = self.nodes[n].name.clone();
                self.say(format!("r{round}: replay to {name}: {answer:?}"));
            }
            if let Some(rest) = ROUND_TIME.checked_sub(started.elapsed()) {
                std::thread::sleep(rest);
            }
            if self.central.is_none() {
                self.central = Some(Central::start_with_grants(
                    &self.pg,
                    self.centre_port,
                    &grants_file(),
                ));
                self.say(format!("r{round}: centre restarted"));
            }
        }
    }

    /// Sets each proxy's mode for the round.
    fn faults(&mut self, round: usize) {
        let mut modes = Vec::new();
        for n in 0..self.nodes.len() {
            let mode = match self.rng.below(100) {
                0..=44 => Mode::Pass,
                45..=64 => Mode::Cut,
                65..=79 => Mode::Delay(Duration::from_millis(self.rng.range(50, 500) as u64)),
                _ => Mode::DropResponse,
            };
            self.nodes[n].proxy.set(mode);
            modes.push(format!("{}={mode:?}", self.nodes[n].name));
        }
        self.say(format!("r{round}: {}", modes.join(",")));
    }

    /// One step of the workload: a charge (a roaming member mostly at
    /// home), a refund, a charge replayed under its key, or a top-up.
    fn operate(&mut self) {
        let roll = self.rng.below(100);
        let member = self.rng.below(MEMBERS);
        let n = if self.rng.chance(80) {
            member % SITES
        } else {
            self.rng.below(self.nodes.len())
        };
        match roll {
            0..=3 => self.print_held(member),
            4..=69 => {
                let units = self.rng.range(1, 60);
                self.charge_new(n, &format!("m{member}"), units);
            }
            70..=84 => self.refund_some(n),
            85..=94 => {
                // The same charge again under its key: counted once.
                let existing: Vec<(String, Usage)> = self.nodes[n]
                    .ledger
                    .iter()
                    .filter(|(k, u)| !u.hold && !self.is_conflict(n, k))
                    .map(|(k, u)| (k.clone(), u.clone()))
                    .collect();
                if !existing.is_empty() {
                    let (key, usage) = existing[self.rng.below(existing.len())].clone();
                    let bare = key.trim_start_matches("manual:").to_string();
                    self.charge_key(n, &bare, &usage.member, usage.units);
                }
            }
            _ => {
                let key = format!("g{}", self.next_grant);
                self.next_grant += 1;
                self.nodes[n].site.cli(&[
                    "grant",
                    &format!("m{member}"),
                    "--units",
                    "50",
                    "--reason",
                    "top-up",
                    "--key",
                    &key,
                ]);
            }
        }
    }

    /// Member `member` prints to a held printer and taps: the job is
    /// released behind a hold of its estimate (5 pages), and settles at its
    /// 2 or 7 pages, or, at the blank printer, ends with nothing printed
    /// and its hold is voided. Skipped while that node's daemon is down.
    fn print_held(&mut self, member: usize) {
        let n = HOLD_NODE;
        let pages = [2, 7, 0][self.rng.below(3)];
        let node = &mut self.nodes[n];
        let (Some(daemon), Some(desk)) = (&node.daemon, &node.desk) else {
            return;
        };
        let user = format!("m{member}");
        let (queue, reader, pdf) = match pages {
            2 => ("desk", &desk.pty, &desk.two),
            7 => ("desk", &desk.pty, &desk.seven),
            _ => ("blank", &desk.blank_pty, &desk.two),
        };
        let mono = ["-o", "print-color-mode=monochrome"];
        let job = desk.cupsd.lp(queue, &user, pdf, &mono);
        desk.cupsd.wait_state(queue, job, 4, LIMIT);
        // Past the reader's debounce, so a tap is never taken for a repeat.
        std::thread::sleep(Duration::from_millis(150));
        reader.write(&rdm6300(&card(member)));
        let outcome = match pages {
            0 => "printed nothing; hold voided, nothing charged",
            _ => "settled",
        };
        daemon.wait_log(
            &format!("released job {outcome} member={user} printer={queue} job_id={job}"),
            LIMIT,
        );
        let new: Vec<String> = ledger_usages(&node.site)
            .into_iter()
            .filter(|(k, u)| u.hold && !node.ledger.contains_key(k))
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            new.len(),
            1,
            "seed {}: one new hold for job {job}: {new:?}",
            self.seed
        );
        let usage = Usage {
            member: user,
            units: pages * 10,
            refunded: false,
            hold: true,
        };
        let key = new[0].clone();
        node.ledger.insert(key.clone(), usage.clone());
        let site_id = node.site_id.to_string();
        self.say(format!("held job {key}: {outcome}, {pages} pages"));
        self.oracle.insert((site_id, key), usage);
    }

    fn is_conflict(&self, n: usize, key: &str) -> bool {
        self.conflict
            .as_ref()
            .is_some_and(|(_, k, node)| k == key && *node == n)
    }

    fn charge_new(&mut self, n: usize, member: &str, units: i64) -> String {
        let key = format!("s{}-n{n}-{}", self.seed, self.nodes[n].next_key);
        self.nodes[n].next_key += 1;
        self.charge_key(n, &key, member, units);
        format!("manual:{key}")
    }

    /// `tallyd charge` at node `n`; recorded in its ledger's and the
    /// centre's oracle unless the key is there already.
    fn charge_key(&mut self, n: usize, key: &str, member: &str, units: i64) {
        let node = &mut self.nodes[n];
        let units_text = units.to_string();
        node.site.cli(&[
            "charge",
            member,
            "--units",
            &units_text,
            "--reason",
            "copier",
            "--key",
            key,
        ]);
        let usage = Usage {
            member: member.to_string(),
            units,
            refunded: false,
            hold: false,
        };
        let full = format!("manual:{key}");
        node.ledger.entry(full.clone()).or_insert(usage.clone());
        self.oracle
            .entry((node.site_id.to_string(), full))
            .or_insert(usage);
    }

    /// Refunds one of node `n`'s usages not refunded there yet.
    fn refund_some(&mut self, n: usize) {
        let open: Vec<String> = self.nodes[n]
            .ledger
            .iter()
            .filter(|(k, u)| !u.refunded && !u.hold && !self.is_conflict(n, k))
            .map(|(k, _)| k.clone())
            .collect();
        if open.is_empty() {
            return;
        }
        let key = open[self.rng.below(open.len())].clone();
        let node = &mut self.nodes[n];
        node.site.cli(&["refund", &key, "--reason", "jammed"]);
        node.ledger.get_mut(&key).expect("charged here").refunded = true;
        self.oracle
            .get_mut(&(node.site_id.to_string(), key))
            .expect("in the oracle")
            .refunded = true;
    }

    /// Waits until node `n` has shipped everything it wrote (its proxy
    /// passing, its daemon up, the centre up).
    fn drain(&mut self, n: usize) {
        let seed = self.seed;
        self.nodes[n].proxy.set(Mode::Pass);
        if self.nodes[n].daemon.is_none() {
            self.start_daemon(n);
        }
        let node = &self.nodes[n];
        wait_for(
            &format!("seed {seed}: {} drained", node.name),
            HEAL_LIMIT,
            || {
                let (_, acked, last) = outbox(&node.site);
                acked == last
            },
        );
    }

    fn take_backup(&mut self, n: usize) {
        let dir = self.nodes[n].site.path("old-backups");
        self.nodes[n]
            .site
            .cli(&["backup", "--to", dir.to_str().expect("utf-8")]);
        let file = std::fs::read_dir(&dir)
            .expect("backups")
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "db"))
            .expect("a backup file");
        self.backup = Some(Backup {
            node: n,
            file,
            ledger: self.nodes[n].ledger.clone(),
        });
        let name = self.nodes[n].name.clone();
        self.say(format!("backup of {name}"));
    }

    /// Restores the backup's node: everything it wrote since was shipped
    /// first, so the centre holds usages the restored ledger lost. One of
    /// those is charged again under its key (as a manager would, from a
    /// paper note), with the same content.
    fn restore(&mut self, round: usize) {
        let Backup {
            node: n,
            file,
            ledger,
        } = self.backup.take().expect("a backup taken");
        self.drain(n);
        let mut daemon = self.nodes[n].daemon.take().expect("running");
        daemon.stop();
        let node = &mut self.nodes[n];
        node.site.cli(&["restore", file.to_str().expect("utf-8")]);
        let lost: Vec<(String, Usage)> = node
            .ledger
            .iter()
            .filter(|(k, _)| !ledger.contains_key(*k))
            .map(|(k, u)| (k.clone(), u.clone()))
            .collect();
        node.ledger = ledger;
        let name = node.name.clone();
        self.say(format!(
            "r{round}: {name} restored, {} usages lost locally",
            lost.len()
        ));
        if !lost.is_empty() {
            let (key, usage) = lost[self.rng.below(lost.len())].clone();
            let bare = key.trim_start_matches("manual:").to_string();
            self.charge_key(n, &bare, &usage.member, usage.units);
        }
        // Half the time the restored ledger writes at least as far as the
        // centre applied before its daemon says hello: the centre then
        // tells the fork by the entries' content, not by the seq.
        if self.rng.chance(50) {
            let (epoch, _, last) = outbox(&self.nodes[n].site);
            let high = self.pg.count(&format!(
                "SELECT COALESCE((SELECT high_water FROM site_epochs
                 WHERE site_id = '{}' AND epoch = {epoch}), 0)",
                self.nodes[n].site_id
            ));
            for _ in last..=high {
                let member = format!("m{}", self.rng.below(MEMBERS));
                let units = self.rng.range(1, 60);
                self.charge_new(n, &member, units);
            }
            self.say(format!("r{round}: restored {name} wrote past seq {high}"));
        }
        self.start_daemon(n);
    }

    /// Clones node `n` (stopped, its outbox drained) into a new node with
    /// the same site id and a proxy of its own; then the same key is
    /// charged at both with other amounts, the twin's first and counted.
    fn clone_node(&mut self, n: usize, round: usize) {
        self.drain(n);
        self.nodes[n].daemon.take().expect("running").stop();
        let (site_id, clock) = (self.nodes[n].site_id, self.nodes[n].clock);
        let batch = self.rng.range(1, 6) as usize;
        let name = format!("{site_id}-clone");
        let mut twin = self.new_node(name.clone(), site_id, batch, clock, false);
        clone_ledger(&self.nodes[n].site, &twin.site);
        twin.ledger = self.nodes[n].ledger.clone();
        twin.next_key = 0;
        self.nodes.push(twin);
        let t = self.nodes.len() - 1;
        self.start_daemon(n);
        self.start_daemon(t);
        self.say(format!("r{round}: {site_id} cloned"));

        let key = format!("s{}-conflict", self.seed);
        let units = self.rng.range(1, 30);
        self.charge_key(n, &key, "m0", units);
        let (seed, pg) = (self.seed, &self.pg);
        let counted = format!(
            "SELECT count(*) FROM usages WHERE site_id = '{site_id}' AND key = 'manual:{key}'"
        );
        wait_for(
            &format!("seed {seed}: the twin's version of the conflict key counted"),
            HEAL_LIMIT,
            || pg.count(&counted) == 1,
        );
        self.charge_key(t, &key, "m0", units + 1);
        // The clone refunds its own version, which the centre never
        // counted: the twin's, counted, must stay charged.
        let full = format!("manual:{key}");
        self.nodes[t]
            .site
            .cli(&["refund", &full, "--reason", "jammed"]);
        self.nodes[t]
            .ledger
            .get_mut(&full)
            .expect("charged at the clone")
            .refunded = true;
        self.conflict = Some((site_id.to_string(), full, t));
    }

    /// Every proxy passing, every daemon up, the centre up; waits until
    /// every node's outbox is acknowledged up to its last seq, and the
    /// centre's high water for that node's epoch is that seq.
    fn heal(&mut self) {
        for n in 0..self.nodes.len() {
            self.nodes[n].proxy.set(Mode::Pass);
            if self.nodes[n].daemon.is_none() {
                self.start_daemon(n);
            }
        }
        if self.central.is_none() {
            self.central = Some(Central::start_with_grants(
                &self.pg,
                self.centre_port,
                &grants_file(),
            ));
        }
        let started = Instant::now();
        let seed = self.seed;
        for node in &self.nodes {
            let pg = &self.pg;
            let mut seen = (0, 0, 0, 0);
            let converged = wait_until(HEAL_LIMIT.saturating_sub(started.elapsed()), || {
                let (epoch, acked, last) = outbox(&node.site);
                let high = pg.count(&format!(
                    "SELECT COALESCE((SELECT high_water FROM site_epochs
                     WHERE site_id = '{}' AND epoch = {epoch}), -1)",
                    node.site_id
                ));
                seen = (epoch, acked, last, high);
                acked == last && high == last
            });
            assert!(
                converged,
                "seed {seed}: {} did not converge within {HEAL_LIMIT:?}: (epoch, acked, last, centre's high water) = {seen:?}\nevents: {}\nlog:\n{}",
                node.name,
                self.events.join("; "),
                node.site.log()
            );
        }
        self.say(format!("healed in {:?}", started.elapsed()));
    }

    fn check(&mut self) {
        let seed = self.seed;
        let events = self.events.join("; ");
        for node in &mut self.nodes {
            node.daemon.take().expect("running").stop();
        }

        // 1. The centre counted every usage once, at its amount, refunds
        // once; no holds were driven, so none is open or resolved.
        let mut expected: Vec<String> = self
            .oracle
            .iter()
            .map(|((site, key), u)| {
                format!(
                    "{site}|{key}|{}|{}|{}|{}|false",
                    u.member, u.units, u.refunded, u.hold
                )
            })
            .collect();
        expected.sort();
        let mut counted: Vec<String> = self
            .pg
            .query(
                "SELECT site_id || '|' || key || '|' || f.member_id || '|' || f.amount
                    || '|' || refunded || '|' || u.is_hold || '|' || open_hold
                 FROM usage_final f JOIN usages u USING (site_id, key)",
            )
            .lines()
            .map(str::to_string)
            .collect();
        counted.sort();
        let missing: Vec<_> = expected.iter().filter(|l| !counted.contains(l)).collect();
        let extra: Vec<_> = counted.iter().filter(|l| !expected.contains(l)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "seed {seed}: the centre's usages differ from the oracle ({} expected, {} counted)\nmissing: {missing:?}\nextra: {extra:?}\nevents: {events}",
            expected.len(),
            counted.len()
        );
        let refunded = self.oracle.values().filter(|u| u.refunded).count() as i64;
        assert_eq!(
            self.pg.count("SELECT count(*) FROM refunds"),
            refunded,
            "seed {seed}: refunds counted once each"
        );
        let holds = self.oracle.values().filter(|u| u.hold).count() as i64;
        let voided = self
            .oracle
            .values()
            .filter(|u| u.hold && u.units == 0)
            .count();
        assert_eq!(
            self.pg.query(
                "SELECT count(*) FILTER (WHERE outcome = 'settled') || ' settled, '
                    || count(*) FILTER (WHERE outcome = 'voided') || ' voided'
                 FROM hold_resolutions"
            ),
            format!("{} settled, {voided} voided", holds as usize - voided),
            "seed {seed}: every hold resolved once\nevents: {events}"
        );
        assert!(holds > 0, "seed {seed}: holds were driven");

        // 4. The only conflict is the injected one.
        let (site, key, _) = self.conflict.clone().expect("a conflict injected");
        let mut conflicts: Vec<String> = self
            .pg
            .query("SELECT site_id || '|' || key || '|' || what FROM ingest_conflicts")
            .lines()
            .map(str::to_string)
            .collect();
        conflicts.sort();
        assert_eq!(
            conflicts,
            [
                format!("{site}|{key}|refund of another usage under this key"),
                format!("{site}|{key}|same usage key, other fingerprint"),
            ],
            "seed {seed}: the injected conflict (the clone's usage and its refund), once, and no other\nevents: {events}"
        );

        // 2. The chain's lots (issued by the centre from the same grants
        // file): each lot's remaining is the sum of its history, within 0
        // and what was granted; each usage drew from them (or as overage)
        // exactly its final amount, nothing once refunded or voided.
        assert_eq!(
            self.pg.count(
                "SELECT count(*) FROM lots l WHERE remaining < 0 OR remaining > granted
                    OR remaining <> (SELECT COALESCE(sum(delta), 0) FROM lot_history h
                                     WHERE h.lot_id = l.id)"
            ),
            0,
            "seed {seed}: the centre's lots against their history\nevents: {events}"
        );
        assert_eq!(
            self.pg.count("SELECT count(*) FROM lots"),
            MEMBERS as i64,
            "seed {seed}: one lot per member, issued once for the chain"
        );
        let misdrawn = self.pg.query(
            "SELECT string_agg(site_id || '|' || key || ': final ' || want || ', drew ' || drew, '; ')
             FROM (SELECT f.site_id, f.key,
                      CASE WHEN f.refunded THEN 0 ELSE f.amount END AS want,
                      COALESCE((SELECT -sum(delta) FROM lot_history h WHERE h.usage_id = u.id), 0)
                      + COALESCE((SELECT sum(amount) FROM central_overage o
                                  WHERE o.usage_id = u.id), 0) AS drew
                   FROM usage_final f JOIN usages u USING (site_id, key)) d
             WHERE want <> drew",
        );
        assert_eq!(
            misdrawn, "",
            "seed {seed}: usages whose draw on the chain's lots is not their final amount\nevents: {events}"
        );

        for (n, node) in self.nodes.iter().enumerate() {
            // 2. The ledger whole: lots against history, no lot negative,
            // spent <= granted per member.
            node.site.cli(&["check-ledger"]);
            check_lots(seed, node);
            // 3. The ledger holds what was charged there; everything it
            // holds the centre counts alike (but the clone's version of
            // the conflict key), refunded there if refunded here.
            let held = ledger_usages(&node.site);
            assert_eq!(
                held, node.ledger,
                "seed {seed}: {}'s ledger differs from what was charged there\nevents: {events}",
                node.name
            );
            for (key, usage) in &node.ledger {
                if self.is_conflict(n, key) {
                    continue;
                }
                let central = self
                    .oracle
                    .get(&(node.site_id.to_string(), key.clone()))
                    .unwrap_or_else(|| {
                        panic!("seed {seed}: {key} of {} not in the oracle", node.name)
                    });
                assert!(
                    central.member == usage.member
                        && central.units == usage.units
                        && (central.refunded || !usage.refunded),
                    "seed {seed}: {key} at {}: {usage:?}, at the centre {central:?}",
                    node.name
                );
            }
        }
    }
}

/// Polls `done` every 50 ms until it holds (true) or `limit` passes (false).
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A ledger's usages by key: member, final amount (a hold's at what it
/// settled, -1 while open), refunded, hold.
fn ledger_usages(site: &Site) -> BTreeMap<String, Usage> {
    let conn = rusqlite::Connection::open(site.path("ledger.db")).expect("open ledger");
    let mut stmt = conn
        .prepare(
            "SELECT u.key, u.member_id,
                    CASE WHEN u.is_hold = 1 THEN COALESCE(h.actual, -1) ELSE u.amount END,
                    EXISTS (SELECT 1 FROM refunds r WHERE r.usage_id = u.id), u.is_hold = 1
             FROM usages u LEFT JOIN hold_resolutions h ON h.usage_id = u.id",
        )
        .expect("prepare");
    stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            Usage {
                member: r.get(1)?,
                units: r.get(2)?,
                refunded: r.get(3)?,
                hold: r.get(4)?,
            },
        ))
    })
    .expect("usages")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// No lot negative or above its grant; per member, what usages not
/// refunded took from credit is at most what was granted, and with the
/// overage makes up their amount.
fn check_lots(seed: u64, node: &Node) {
    let conn = rusqlite::Connection::open(node.site.path("ledger.db")).expect("open ledger");
    let bad: i64 = conn
        .query_row(
            "SELECT count(*) FROM lots WHERE remaining < 0 OR remaining > granted",
            [],
            |r| r.get(0),
        )
        .expect("lots");
    assert_eq!(bad, 0, "seed {seed}: {}: a lot out of bounds", node.name);
    let mut stmt = conn
        .prepare(
            "SELECT m.id,
                (SELECT COALESCE(SUM(granted), 0) FROM lots l
                 WHERE l.member_id = m.id AND l.credit = 'printing' AND l.voided_at IS NULL),
                (SELECT COALESCE(SUM(covered), 0) FROM usages u WHERE u.member_id = m.id
                 AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.usage_id = u.id)),
                (SELECT COALESCE(SUM(amount - covered - overage), 0) FROM usages u
                 WHERE u.member_id = m.id)
             FROM members m",
        )
        .expect("prepare");
    let rows: Vec<(String, i64, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("members")
        .collect::<Result<_, _>>()
        .expect("rows");
    for (member, granted, spent, unbalanced) in rows {
        assert!(
            spent <= granted,
            "seed {seed}: {}: {member} spent {spent} of {granted} granted",
            node.name
        );
        assert_eq!(
            unbalanced, 0,
            "seed {seed}: {}: {member}'s usages are covered + overage",
            node.name
        );
    }
}
