//! What the simulation does to the chain: the workload (charges, refunds,
//! top-ups, held print jobs) and the seed's events (a backup, a restore, a
//! clone with its conflict).

use super::checks::ledger_usages;
use super::*;

/// Whether the log says job `job` was kept back by credits-only (a
/// release line's `kept` list: "N (credits-only: …)").
fn kept_for_credit(log: &str, job: u32) -> bool {
    let needle = format!("{job} (credits-only");
    log.match_indices(&needle)
        .any(|(at, _)| !log[..at].ends_with(|c: char| c.is_ascii_digit()))
}

impl Sim {
    /// One step of the workload: a charge (a roaming member mostly at
    /// home), a refund, a charge replayed under its key, or a top-up (not
    /// in an escrow run).
    pub(super) fn operate(&mut self) {
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
            // A site whose lots the centre issues grants nothing locally
            // (refused: `it central_import`).
            _ if self.escrow => {}
            _ => {
                let key = format!("g{}", self.next_grant);
                self.next_grant += 1;
                self.nodes[n].site.cli_on_its_clock(&[
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
    pub(super) fn print_held(&mut self, member: usize) {
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
        let done = format!("released job {outcome} member={user} printer={queue} job_id={job}");
        // With escrow, a credits-only member's release may be refused:
        // neither the slices here, the centre, nor the allowance covered it.
        let mut kept = false;
        let started = Instant::now();
        while !daemon.log().contains(&done) {
            if kept_for_credit(&daemon.log(), job) {
                kept = true;
                break;
            }
            assert!(
                started.elapsed() < LIMIT,
                "seed {}: no `{done}`:\n{}",
                self.seed,
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        if kept {
            desk.cupsd.cancel(queue, job);
            self.say(format!(
                "held job {queue}-{job} of {user} kept: credits-only, nothing covered it"
            ));
            return;
        }
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

    pub(super) fn is_conflict(&self, n: usize, key: &str) -> bool {
        self.conflict
            .as_ref()
            .is_some_and(|(_, k, node)| k == key && *node == n)
    }

    pub(super) fn charge_new(&mut self, n: usize, member: &str, units: i64) -> String {
        let key = format!("s{}-n{n}-{}", self.seed, self.nodes[n].next_key);
        self.nodes[n].next_key += 1;
        self.charge_key(n, &key, member, units);
        format!("manual:{key}")
    }

    /// `tallyd charge` at node `n`; recorded in its ledger's and the
    /// centre's oracle unless the key is there already.
    pub(super) fn charge_key(&mut self, n: usize, key: &str, member: &str, units: i64) {
        let node = &mut self.nodes[n];
        let units_text = units.to_string();
        node.site.cli_on_its_clock(&[
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
    pub(super) fn refund_some(&mut self, n: usize) {
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
        node.site
            .cli_on_its_clock(&["refund", &key, "--reason", "jammed"]);
        node.ledger.get_mut(&key).expect("charged here").refunded = true;
        self.oracle
            .get_mut(&(node.site_id.to_string(), key))
            .expect("in the oracle")
            .refunded = true;
    }

    /// Waits until node `n` has shipped everything it wrote (its proxy
    /// passing, its daemon up, the centre up).
    pub(super) fn drain(&mut self, n: usize) {
        let seed = self.seed;
        if self.central.is_none() {
            self.central = Some(self.start_centre());
            self.say("centre restarted early, for a drain".to_string());
        }
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

    pub(super) fn take_backup(&mut self, n: usize, round: usize) {
        let dir = self.nodes[n].site.path("old-backups");
        self.nodes[n]
            .site
            .cli_on_its_clock(&["backup", "--to", dir.to_str().expect("utf-8")]);
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
            round,
        });
        let name = self.nodes[n].name.clone();
        self.say(format!("backup of {name}"));
    }

    /// Restores the backup's node: everything it wrote since was shipped
    /// first, so the centre holds usages the restored ledger lost. One of
    /// those is charged again under its key (as a manager would, from a
    /// paper note), with the same content. The restored daemon's first
    /// hello imports the rest from the centre (multi-site.md 3.8), so the
    /// node's ledger ends as it was before the restore, plus what it
    /// charges after.
    pub(super) fn restore(&mut self, round: usize) {
        let Backup {
            node: n,
            file,
            ledger,
            round: backup_round,
        } = self.backup.take().expect("a backup taken");
        self.drain(n);
        let mut daemon = self.nodes[n].daemon.take().expect("running");
        daemon.stop();
        let node = &mut self.nodes[n];
        node.site
            .cli_on_its_clock(&["restore", file.to_str().expect("utf-8")]);
        let lost: Vec<(String, Usage)> = node
            .ledger
            .iter()
            .filter(|(k, _)| !ledger.contains_key(*k))
            .map(|(k, u)| (k.clone(), u.clone()))
            .collect();
        let name = node.name.clone();
        self.say(format!(
            "r{round}: {name} restored from a backup {} hours old by the chain's clock, {} usages lost locally",
            (round - backup_round) as i64 * HOURS_PER_ROUND,
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
    pub(super) fn clone_node(&mut self, n: usize, round: usize) {
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
            .cli_on_its_clock(&["refund", &full, "--reason", "jammed"]);
        self.nodes[t]
            .ledger
            .get_mut(&full)
            .expect("charged at the clone")
            .refunded = true;
        self.conflict = Some((site_id.to_string(), full, t));
    }
}
