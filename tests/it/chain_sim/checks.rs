//! After the run: healing, then the invariants, against the oracle, the
//! centre's tables and each site's ledger.

use super::*;

impl Sim {
    /// Every proxy passing, every daemon up, the centre up; waits until
    /// every node's outbox is acknowledged up to its last seq, and the
    /// centre's high water for that node's epoch is that seq.
    pub(super) fn heal(&mut self) {
        for n in 0..self.nodes.len() {
            self.nodes[n].proxy.set(Mode::Pass);
            if self.nodes[n].daemon.is_none() {
                self.start_daemon(n);
            }
        }
        if self.central.is_none() {
            self.central = Some(self.start_centre());
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
        if self.escrow {
            // A slice whose answer was lost (a dropped response, a killed
            // daemon) is asked for again under its request id by the
            // site's next top-up (every 5 s) and placed there then.
            let converged = wait_until(Duration::from_secs(20), || self.unheld_slices().is_empty());
            assert!(
                converged,
                "seed {seed}: slices open at the centre that no node holds: {:?} ({})\nevents: {}\nescrow log lines:\n{}",
                self.unheld_slices(),
                self.pg.query(
                    "SELECT string_agg(s.id || ' ' || s.member_id || ' ' || s.request_id || ' placed '
                        || s.placed_at || CASE WHEN f.id IS NULL THEN '' ELSE ' recalled' END, '; ')
                     FROM escrow_slices s LEFT JOIN site_feed f ON f.slice_id = s.id
                     WHERE s.closed_at IS NULL"
                ),
                self.events.join("; "),
                self.escrow_log_lines()
            );
            // Every recalled slice comes back: its site reads the recall in
            // its next escrow round and returns it once acknowledged.
            let recalled_open = "SELECT count(*) FROM escrow_slices s
                JOIN site_feed f ON f.slice_id = s.id AND f.kind = 'recall'
                WHERE s.closed_at IS NULL";
            let returned = wait_until(Duration::from_secs(20), || {
                self.pg.count(recalled_open) == 0
            });
            assert!(
                returned,
                "seed {seed}: recalled slices still open: {}\nevents: {}",
                self.pg.query(recalled_open),
                self.events.join("; ")
            );
        }
        // The day grant's lots expired at the centre: what was left of them
        // when the clock passed their date (the issuer's sweep, every 1 s),
        // and what slices held when their sites gave them back.
        let now = self.chain_now();
        let unexpired =
            format!("SELECT count(*) FROM lots WHERE expires_at <= {now} AND remaining <> 0");
        let expired = wait_until(Duration::from_secs(20), || self.pg.count(&unexpired) == 0);
        assert!(
            expired,
            "seed {seed}: lots past their date with credit left: {}\nevents: {}",
            self.pg.query(&format!(
                "SELECT string_agg(id || ' ' || member_id || ' remaining ' || remaining
                    || ' escrowed ' || escrowed, '; ') FROM lots
                 WHERE expires_at <= {now} AND remaining <> 0"
            )),
            self.events.join("; ")
        );
        self.say(format!("healed in {:?}", started.elapsed()));
    }

    /// Every node's log lines about escrow and epochs, for a failure.
    fn escrow_log_lines(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            for line in n.site.log().lines() {
                if line.contains("escrow") || line.contains("epoch") {
                    out += &format!("{}: {line}\n", n.name);
                }
            }
        }
        out
    }

    /// Slices open at the centre that no node of their site holds.
    fn unheld_slices(&self) -> Vec<String> {
        let open = self.pg.query(
            "SELECT id || '|' || site_id FROM escrow_slices WHERE closed_at IS NULL ORDER BY id",
        );
        open.lines()
            .filter(|line| {
                let (id, site) = line.split_once('|').expect("id|site");
                !self.nodes.iter().filter(|n| n.site_id == site).any(|n| {
                    let conn =
                        rusqlite::Connection::open(n.site.path("ledger.db")).expect("ledger");
                    conn.query_row(
                        "SELECT count(*) FROM escrow_slices WHERE slice_id = ?1",
                        [id.parse::<i64>().expect("id")],
                        |r| r.get::<_, i64>(0),
                    )
                    .is_ok_and(|c| c > 0)
                })
            })
            .map(str::to_string)
            .collect()
    }

    pub(super) fn check(&mut self) {
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

        // The centre's own check of its ledger of record agrees.
        let (passed, verdicts) = self.central.as_ref().expect("the centre is up").check();
        assert!(
            passed && verdicts.contains("2 entries recorded as conflicts"),
            "seed {seed}: tallyd central check:\n{verdicts}"
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
            2 * MEMBERS as i64,
            "seed {seed}: two lots per member (the start and the day grant), issued once for the chain"
        );
        // 5. Every expired lot reached 0 (waited for in `heal`), the day
        // lots' leftovers through `expire` rows.
        let day_lots = "SELECT count(*) FROM lots WHERE expires_at IS NOT NULL";
        assert_eq!(
            self.pg.count(day_lots),
            MEMBERS as i64,
            "seed {seed}: day lots"
        );
        assert!(
            self.pg
                .count("SELECT count(*) FROM lot_history WHERE kind = 'expire'")
                > 0,
            "seed {seed}: day lots expired with credit left\nevents: {events}"
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

        if self.escrow {
            self.check_escrow(&events);
        }
        for (n, node) in self.nodes.iter().enumerate() {
            // 2. The ledger whole: lots against history, no lot negative,
            // spent <= granted per member.
            node.site.cli(&["check-ledger"]);
            check_lots(seed, node);
            check_expired(seed, node, self.chain);
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

impl Sim {
    /// With escrow: slices were placed and spent; no lot escrows more than
    /// it holds; `offline` overage is within what sites let through on
    /// their allowance; and every slice the centre holds open is held by
    /// one node of its site, with the same amount and the same consumed
    /// (multi-site.md 4, invariants 2-4).
    fn check_escrow(&self, events: &str) {
        let seed = self.seed;
        let pg = &self.pg;
        assert!(
            pg.count("SELECT COALESCE(sum(consumed), 0) FROM escrow_slices") > 0,
            "seed {seed}: escrow was placed and spent\nevents: {events}"
        );
        assert_eq!(
            pg.count(
                "SELECT count(*) FROM lots l WHERE escrowed > remaining OR escrowed <>
                    (SELECT COALESCE(sum(amount - consumed - returned), 0) FROM escrow_slices s
                     WHERE s.lot_id = l.id)"
            ),
            0,
            "seed {seed}: each lot's escrowed is what its slices hold\nevents: {events}"
        );
        // The grants edited at the centre: m5's lot voided, what it holds
        // is only what open slices still hold (their sites return it), and
        // no lot keeps more of a cut pending than its slices hold.
        assert_eq!(
            pg.query(
                "SELECT (voided_at IS NOT NULL) || ' ' || (remaining = escrowed)
                 FROM lots WHERE member_id = 'm5' AND expires_at IS NULL"
            ),
            "true true",
            "seed {seed}: m5's grant deleted\nevents: {events}"
        );
        assert_eq!(
            pg.count("SELECT count(*) FROM lots WHERE shrink_pending > escrowed"),
            0,
            "seed {seed}: pending cuts within escrow\nevents: {events}"
        );
        let allowed: i64 = self
            .nodes
            .iter()
            .map(|n| {
                let conn = rusqlite::Connection::open(n.site.path("ledger.db")).expect("ledger");
                conn.query_row(
                    "SELECT COALESCE(SUM(amount), 0) FROM allowance_uses",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .expect("allowance uses")
            })
            .sum();
        let offline = pg
            .count("SELECT COALESCE(sum(amount), 0) FROM central_overage WHERE cause = 'offline'");
        assert!(
            offline <= allowed,
            "seed {seed}: offline overage {offline} beyond the {allowed} let through on allowances: {}\nevents: {events}",
            pg.query(
                "SELECT string_agg(u.site_id || ' ' || u.key || ' ' || o.kind || ' ' || o.amount, '; ')
                 FROM central_overage o JOIN usages u ON u.id = o.usage_id WHERE o.cause = 'offline'"
            )
        );
        let open = pg.query(
            "SELECT id || '|' || site_id || '|' || amount || '|' || consumed FROM escrow_slices
             WHERE closed_at IS NULL ORDER BY id",
        );
        for line in open.lines() {
            let f: Vec<&str> = line.split('|').collect();
            let (id, site, amount, consumed) = (f[0], f[1], f[2], f[3]);
            let held: Vec<(i64, i64)> = self
                .nodes
                .iter()
                .filter(|n| n.site_id == site)
                .filter_map(|n| {
                    let conn =
                        rusqlite::Connection::open(n.site.path("ledger.db")).expect("ledger");
                    conn.query_row(
                        "SELECT l.granted, l.granted - l.remaining FROM escrow_slices s
                         JOIN lots l ON l.id = s.lot_id
                         WHERE s.slice_id = ?1 AND s.returned_at IS NULL",
                        [id.parse::<i64>().expect("id")],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .ok()
                })
                .collect();
            let want = (
                amount.parse().expect("amount"),
                consumed.parse().expect("consumed"),
            );
            assert_eq!(
                held,
                vec![want],
                "seed {seed}: slice {id} of {site} open at the centre: (amount, consumed) there {want:?}, at the site's nodes {held:?}\nevents: {events}"
            );
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
pub(super) fn ledger_usages(site: &Site) -> BTreeMap<String, Usage> {
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

/// The day grant's lots at a site (issued there, or the slices of the
/// centre's it held) reach 0 once `tallyd expire` ran at its clock (its
/// daemon sweeps every 10 minutes of real time, so not within a run).
fn check_expired(seed: u64, node: &Node, chain: i64) {
    node.site.cli_on_its_clock(&["expire"]);
    let conn = rusqlite::Connection::open(node.site.path("ledger.db")).expect("open ledger");
    let (past, left): (i64, i64) = conn
        .query_row(
            "SELECT count(*), COALESCE(SUM(remaining), 0) FROM lots
             WHERE expires_at IS NOT NULL AND expires_at <= ?1",
            [chrono::Utc::now().timestamp() + chain + node.clock],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("lots");
    assert_eq!(
        left, 0,
        "seed {seed}: {}: {past} lots past their date hold {left}",
        node.name
    );
}

/// No lot negative or above its grant; per member, what usages took from
/// credit, net of what holds' settles and voids and refunds gave back (the
/// history rows naming a usage), is at most what was granted; and every
/// usage's covered and overage make up its amount. (A hold's `covered` is
/// what it took when placed: a settle below it gives credit back that
/// other usages then spend, so covered amounts are not summed.)
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
                 WHERE l.member_id = m.id AND l.credit = 'printing'),
                (SELECT COALESCE(-SUM(h.delta), 0) FROM history h JOIN lots l ON l.id = h.lot_id
                 WHERE l.member_id = m.id AND l.credit = 'printing' AND h.usage_id IS NOT NULL),
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
