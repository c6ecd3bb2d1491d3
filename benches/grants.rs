//! `cargo bench --bench grants`: reconcile 10,000 members (each with a plan of
//! 3 benefits, a product purchase and an account grant) into an empty ledger;
//! again with nothing changed; then with 1% of members changed. The floor is
//! a plain prepared statement inserting the same number of lot and history
//! rows in one transaction, measured in the same run.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use rusqlite::params;
use tallyd::clock;
use tallyd::grants::{self, source::Validators};
use tallyd::ledger::{lots, Ledger, Site};

const MEMBERS: usize = 10_000;

fn grants_file(changed_every: Option<usize>) -> String {
    let mut f = String::from(
        r#"timezone = "Europe/Lisbon"
[[resource_type]]
id = "small-meeting-room"
[[time_credit]]
id = "meeting-hours"
resource_types = ["small-meeting-room"]
[[plan]]
id = "resident"
renews = "monthly"
  [[plan.benefit]]
  id = "print"
  credit = "printing"
  amount = 1000
  [[plan.benefit]]
  id = "rooms"
  credit = "meeting-hours"
  amount = 240
  expires = "2 months"
  [[plan.benefit]]
  id = "bonus"
  credit = "printing"
  amount = 200
  expires = "never"
[[product]]
id = "pack"
  [[product.benefit]]
  id = "print"
  credit = "printing"
  amount = 500
"#,
    );
    for m in 0..MEMBERS {
        let changed = changed_every.is_some_and(|every| m % every == 0);
        let amount = if changed { 450 } else { 300 };
        let day = 1 + m % 28;
        let _ = write!(
            f,
            "[[member]]\nid = \"m{m:05}\"\nname = \"Member {m}\"\ncards = [\"{m:010X}\"]\nprint_users = [\"user{m}\"]\n\
             [[member.plan]]\nplan = \"resident\"\nstart = 2026-10-{day:02}\n\
             [[member.product]]\nproduct = \"pack\"\ndate = 2026-11-01\nreference = \"INV-{m}\"\n\
             [[member.grant]]\nid = \"g1\"\ncredit = \"printing\"\namount = {amount}\nfrom = 2026-11-01\n"
        );
    }
    f
}

fn sync(ledger: &mut Ledger, text: &str, now: i64) -> (Duration, grants::reconcile::Counts) {
    let catalog = grants::parse("grants.toml", text).expect("valid");
    let t = Instant::now();
    let report = ledger
        .write(|conn, site| {
            grants::apply(
                conn,
                site.tz,
                &catalog,
                "grants.toml",
                text,
                &Validators::default(),
                now,
                false,
            )
        })
        .expect("sync");
    (t.elapsed(), report.counts)
}

fn floor(dir: &std::path::Path, rows: usize) -> Duration {
    let mut ledger = Ledger::open(&dir.join("floor.db"), Site::default()).expect("open");
    ledger
        .write(|conn, _| {
            for m in 0..MEMBERS {
                lots::ensure_member(conn, &format!("m{m:05}"), "x", 0)?;
            }
            Ok(())
        })
        .expect("members");
    let t = Instant::now();
    ledger
        .write(|conn, _| {
            let mut lot = conn.prepare(
                "INSERT INTO lots (member_id, credit, granted, remaining, valid_from, expires_at, source, source_key, created_at)
                 VALUES (?1, 'printing', 100, 100, 0, NULL, 'plan', ?2, 0)",
            )?;
            let mut hist = conn.prepare(
                "INSERT INTO history (lot_id, kind, delta, granted_delta, note, at) VALUES (?1, 'grant', 100, 100, '', 0)",
            )?;
            for i in 0..rows {
                lot.execute(params![format!("m{:05}", i % MEMBERS), format!("floor:{i}")])?;
                hist.execute([conn.last_insert_rowid()])?;
            }
            Ok(())
        })
        .expect("floor");
    t.elapsed()
}

fn main() {
    let base = std::env::var("CARGO_TARGET_TMPDIR").unwrap_or_else(|_| "target".into());
    let dir = tempfile::tempdir_in(&base).expect("tempdir");
    let tz: chrono_tz::Tz = "Europe/Lisbon".parse().expect("zone");
    let now = clock::parse_datetime(tz, "2026-11-20 12:00").expect("now");
    let site = Site {
        tz,
        ..Site::default()
    };
    let mut ledger = Ledger::open(&dir.path().join("ledger.db"), site).expect("open");

    let text = grants_file(None);
    let t = Instant::now();
    grants::parse("grants.toml", &text).expect("valid");
    let parse = t.elapsed();
    let (first, c1) = sync(&mut ledger, &text, now);
    let (again, c2) = sync(&mut ledger, &text, now + 60);
    let (changed, c3) = sync(&mut ledger, &grants_file(Some(100)), now + 120);
    let lots_issued = c1.issued;
    let floor = floor(dir.path(), lots_issued);

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "grants file: {MEMBERS} members, {} KiB, parse + validate {:.0} ms",
        text.len() / 1024,
        ms(parse)
    );
    println!(
        "first pass (empty ledger):  {:>8.0} ms  issued {} lots",
        ms(first),
        c1.issued
    );
    println!("floor ({lots_issued} lots + {lots_issued} history rows, plain INSERTs, one tx): {:>8.0} ms", ms(floor));
    println!(
        "  first / floor:            {:>8.2}   (goal <= 2.0)",
        ms(first) / ms(floor)
    );
    println!(
        "unchanged re-run:           {:>8.0} ms  issued {} adjusted {}",
        ms(again),
        c2.issued,
        c2.adjusted
    );
    println!(
        "  unchanged / first:        {:>8.2}   (goal <= 0.2)",
        ms(again) / ms(first)
    );
    println!(
        "1% of members changed:      {:>8.0} ms  adjusted {} issued {}",
        ms(changed),
        c3.adjusted,
        c3.issued
    );
    println!(
        "  changed / first:          {:>8.2}   (goal <= 0.3)",
        ms(changed) / ms(first)
    );
}
