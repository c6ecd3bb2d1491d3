//! `cargo bench --bench console_idle`: what the web console adds to the
//! idle daemon's memory (issue 17: under 2 MiB).
//!
//! In each round, three `tallyd run` (the release build), no printers, on
//! sites alike but for their `[http]` and `[console]` sections, started
//! together and left idle for `CONSOLE_IDLE_SECS` (default 30) seconds:
//!
//! - `no console`: no `[http]` (no listener: no console, `/metrics` or
//!   `/healthz` is served);
//! - `console`: `[http]` on loopback and `[console]` with one manager: the
//!   console's router beside `/metrics` and `/healthz`;
//! - `console over TLS`: the same with `cert_file` and `key_file` (a leaf
//!   of a private CA made by `openssl`).
//!
//! Then each one's VmRSS and VmHWM from `/proc/PID/status`. The console has
//! no switch of its own (it is served wherever `[http]` is), so the
//! difference also holds the listener and its two other routes: it is an
//! upper bound of what the console adds. (The console's state, a few empty
//! maps, is made in all three.) `CONSOLE_IDLE_ROUNDS` rounds (default 3);
//! the medians and their differences are printed last.

// The integration tests' support folder (`tallyd run` in a site folder,
// the private CA); a bench uses only part of it.
#[allow(dead_code)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use support::daemon::{proc_status_kib, Daemon, Site};
use support::tls::Certs;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const VARIANTS: [&str; 3] = ["no console", "console", "console over TLS"];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    support::process::free_port()
}

/// The `[http]` and `[console]` sections of `variant`.
fn sections(variant: &str, certs: &Certs, hash: &str) -> String {
    let console =
        format!("\n[console]\n[[console.manager]]\nname = \"maria\"\npassword_hash = \"{hash}\"\n");
    let listen = format!("\n[http]\nlisten = \"127.0.0.1:{}\"\n", free_port());
    match variant {
        "no console" => String::new(),
        "console" => format!("{listen}{console}"),
        _ => format!(
            "{listen}cert_file = \"{}\"\nkey_file = \"{}\"\n{console}",
            certs.leaf.cert.display(),
            certs.leaf.key.display()
        ),
    }
}

fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let secs = env_or("CONSOLE_IDLE_SECS", 30);
    let rounds = env_or("CONSOLE_IDLE_ROUNDS", 3) as usize;
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = Certs::new(dir.path());
    std::fs::set_permissions(&certs.leaf.key, std::fs::Permissions::from_mode(0o600))
        .expect("chmod the key");
    let hash = tallyd::console::password::hash("a long bench password").expect("hash");
    // (VmRSS, VmHWM) in KiB, per variant, per round.
    let mut rss: Vec<Vec<u64>> = vec![Vec::new(); VARIANTS.len()];
    let mut hwm: Vec<Vec<u64>> = vec![Vec::new(); VARIANTS.len()];
    println!("tallyd run idle {secs} s, no printers, {rounds} rounds (KiB)");
    for round in 1..=rounds {
        let sites: Vec<Site> = VARIANTS
            .iter()
            .map(|v| {
                let site = Site::new(&[]);
                site.write_config_with(&[], &sections(v, &certs, &hash));
                site
            })
            .collect();
        let mut daemons: Vec<Daemon> = sites.iter().map(Site::start).collect();
        for d in &daemons {
            d.wait_ready();
        }
        std::thread::sleep(Duration::from_secs(secs));
        let mut line = format!("round {round}:");
        for (i, d) in daemons.iter().enumerate() {
            let (r, h) = (
                proc_status_kib(d.pid(), "VmRSS:"),
                proc_status_kib(d.pid(), "VmHWM:"),
            );
            assert!(r > 0 && h > 0, "no /proc figures for {}", VARIANTS[i]);
            rss[i].push(r);
            hwm[i].push(h);
            line.push_str(&format!("  {}: RSS {r} HWM {h}", VARIANTS[i]));
        }
        println!("{line}");
        for d in &mut daemons {
            d.stop();
        }
    }
    let rss: Vec<u64> = rss.iter_mut().map(|v| median(v)).collect();
    let hwm: Vec<u64> = hwm.iter_mut().map(|v| median(v)).collect();
    println!("median of {rounds}:");
    for (i, v) in VARIANTS.iter().enumerate() {
        let added = |now: &[u64]| now[i] as i64 - now[0] as i64;
        println!(
            "  {v:<17} VmRSS {:>6} KiB ({:+5} KiB)   VmHWM {:>6} KiB ({:+5} KiB)",
            rss[i],
            added(&rss),
            hwm[i],
            added(&hwm),
        );
    }
    let worst = (1..VARIANTS.len())
        .map(|i| (rss[i] as i64 - rss[0] as i64).max(hwm[i] as i64 - hwm[0] as i64))
        .max()
        .unwrap_or(0);
    println!(
        "console adds at most {:.2} MiB (goal < 2 MiB): {}",
        worst as f64 / 1024.0,
        if worst < 2048 { "met" } else { "NOT met" }
    );
}
