//! What a newcomer and a package meet first: which config the commands read
//! when none is named (and what they say when there is none), `--version`,
//! and the man pages and completions the Debian package ships.

use crate::support::tallyd::{fails, succeeds, tallyd, SiteDir};
use std::path::Path;
use std::process::Command;

const CONFIG: &str = r#"
[site]
name = "Found Space"
timezone = "Europe/Lisbon"
ledger = "ledger.db"
[prices.standard]
default_media = "a4"
[prices.standard.media.a4]
mono = { one_sided = 10, two_sided = 8 }
colour = { one_sided = 40, two_sided = 35 }
"#;

/// A folder to run tallyd in, as a checkout is (`config/tallyd.toml`) when
/// `checkout`, and a system config at `etc/tallyd.toml` in it when `system`.
fn folder(checkout: bool, system: bool) -> SiteDir {
    let site = SiteDir::new();
    if checkout {
        std::fs::create_dir(site.path("config")).expect("make config/");
        site.write("config/tallyd.toml", CONFIG);
    }
    if system {
        std::fs::create_dir(site.path("etc")).expect("make etc/");
        site.write("etc/tallyd.toml", CONFIG);
    }
    site
}

/// `tallyd ARGS` run in the folder, with neither `--config` nor
/// `TALLYD_CONFIG`, and the system config moved to the folder's `etc/`.
fn in_folder(site: &SiteDir, args: &[&str]) -> Command {
    let mut cmd = tallyd();
    cmd.args(args)
        .current_dir(site.root())
        .env("TALLYD_TEST_SYSTEM_CONFIG", site.path("etc/tallyd.toml"));
    cmd
}

#[test]
fn the_checkout_config_is_found_in_the_current_folder() {
    let site = folder(true, true);
    let out = succeeds(&mut in_folder(&site, &["check-config"]));
    assert!(
        out.starts_with("config OK: config/tallyd.toml (found in the current folder)\n"),
        "{out}"
    );
    // Its relative ledger is beside it, not in the current folder.
    assert!(out.contains("ledger config/ledger.db"), "{out}");
}

#[test]
fn the_system_config_is_read_when_the_folder_has_none() {
    let site = folder(false, true);
    let out = succeeds(&mut in_folder(&site, &["check-config"]));
    let system = site.path("etc/tallyd.toml");
    assert!(
        out.starts_with(&format!(
            "config OK: {} (the system config)\n",
            system.display()
        )),
        "{out}"
    );
}

#[test]
fn tallyd_config_and_the_flag_come_before_the_checkout() {
    let site = folder(true, false);
    site.write("mine.toml", CONFIG);
    let out = succeeds(in_folder(&site, &["check-config"]).env("TALLYD_CONFIG", "mine.toml"));
    assert!(
        out.starts_with("config OK: mine.toml (from TALLYD_CONFIG)\n"),
        "{out}"
    );
    let out = succeeds(
        in_folder(&site, &["--config", "mine.toml", "check-config"])
            .env("TALLYD_CONFIG", "config/tallyd.toml"),
    );
    assert!(
        out.starts_with("config OK: mine.toml (from --config)\n"),
        "{out}"
    );
}

#[test]
fn a_named_config_that_is_missing_is_an_error_not_a_fallback() {
    let site = folder(true, true);
    let err = fails(in_folder(&site, &["balance"]).env("TALLYD_CONFIG", "gone.toml"));
    assert_eq!(
        err,
        "tallyd: gone.toml: (file): No such file or directory (os error 2)\n"
    );
}

#[test]
fn no_config_anywhere_names_every_path_tried() {
    let site = folder(false, false);
    let out = in_folder(&site, &["balance"]).output().expect("run tallyd");
    assert_eq!(out.status.code(), Some(1));
    let cwd = std::fs::canonicalize(site.root()).expect("canonical folder");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "tallyd: no site config: --config and TALLYD_CONFIG are not set, and neither \
             config/tallyd.toml (in the current folder, {}) nor {} exists; pass --config FILE\n",
            cwd.display(),
            site.path("etc/tallyd.toml").display()
        )
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn version_names_the_ledger_schema() {
    let out = succeeds(tallyd().arg("--version"));
    assert_eq!(
        out,
        format!(
            "tallyd {} (ledger schema {})\n",
            env!("CARGO_PKG_VERSION"),
            tallyd::ledger::schema::SCHEMA_VERSION
        )
    );
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn generate_writes_a_man_page_per_command_and_three_completions() {
    let site = SiteDir::new();
    let man = site.path("man");
    let listed = succeeds(tallyd().args(["generate", "man"]).arg(&man));
    let page = read(&man.join("tallyd.1"));
    assert!(
        page.contains(&format!(
            "tallyd {} (ledger schema",
            env!("CARGO_PKG_VERSION")
        )),
        "{page}"
    );
    for command in [
        "balance",
        "statement",
        "review-charge",
        "run",
        "check-config",
    ] {
        let file = man.join(format!("tallyd-{command}.1"));
        assert!(listed.contains(&file.display().to_string()), "{listed}");
        assert!(read(&file).contains(".SH NAME"));
    }
    assert!(!man.join("tallyd-generate.1").exists());

    let completions = site.path("completions");
    succeeds(tallyd().args(["generate", "completions"]).arg(&completions));
    for file in ["tallyd.bash", "_tallyd", "tallyd.fish"] {
        let text = read(&completions.join(file));
        assert!(text.contains("statement"), "{file}: {text}");
        assert!(
            !text.contains("generate"),
            "{file} offers the hidden command"
        );
    }
}
