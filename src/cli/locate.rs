//! Which site config a command reads. In order: `--config FILE`, then
//! `TALLYD_CONFIG`, then `config/tallyd.toml` in the current folder when it
//! exists (a checkout: the README's commands work there as written), then
//! `/etc/tallyd/tallyd.toml` (where the Debian package puts it). A file given
//! by the flag or the variable is used as given, present or not: its error
//! names it. When neither is given and no file is found, the error names
//! every path tried.

use std::path::{Path, PathBuf};

/// The example config of a checkout, looked for in the current folder.
pub const CHECKOUT: &str = "config/tallyd.toml";
/// The system config (the Debian package's conffile).
pub const SYSTEM: &str = "/etc/tallyd/tallyd.toml";

/// Where the config in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env,
    Checkout,
    System,
}

impl Origin {
    /// How `check-config` says where the file came from.
    pub fn describe(self) -> &'static str {
        match self {
            Origin::Flag => "from --config",
            Origin::Env => "from TALLYD_CONFIG",
            Origin::Checkout => "found in the current folder",
            Origin::System => "the system config",
        }
    }
}

/// The config file a command reads, and why that one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub path: PathBuf,
    pub origin: Origin,
}

/// Neither `--config` nor `TALLYD_CONFIG`, and none of the usual files.
#[derive(Debug, thiserror::Error)]
#[error(
    "no site config: --config and TALLYD_CONFIG are not set, and neither {checkout} \
     (in the current folder, {cwd}) nor {system} exists; pass --config FILE",
    checkout = CHECKOUT,
    cwd = cwd.display(),
    system = system.display()
)]
pub struct NotFound {
    pub cwd: PathBuf,
    pub system: PathBuf,
}

/// Picks the config: `given` (the flag's or the variable's path, with which
/// one), else the first of the checkout's and the system's paths that
/// `exists`. Pure: the caller says which files exist.
pub fn locate(
    given: Option<(PathBuf, Origin)>,
    system: &Path,
    exists: impl Fn(&Path) -> bool,
) -> Option<Located> {
    if let Some((path, origin)) = given {
        return Some(Located { path, origin });
    }
    [
        (Path::new(CHECKOUT), Origin::Checkout),
        (system, Origin::System),
    ]
    .into_iter()
    .find(|(path, _)| exists(path))
    .map(|(path, origin)| Located {
        path: path.to_path_buf(),
        origin,
    })
}

/// The system config's path. Built with the test hooks (tests only), the
/// variable `TALLYD_TEST_SYSTEM_CONFIG` moves it, so a test decides whether
/// it exists whatever this machine has in /etc.
pub fn system_path() -> PathBuf {
    #[cfg(feature = "test-hooks")]
    if let Some(path) = std::env::var_os("TALLYD_TEST_SYSTEM_CONFIG") {
        return path.into();
    }
    PathBuf::from(SYSTEM)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(given: Option<(&str, Origin)>, present: &[&str]) -> Option<Located> {
        let given = given.map(|(p, o)| (PathBuf::from(p), o));
        locate(given, Path::new(SYSTEM), |p| {
            present.iter().any(|q| Path::new(q) == p)
        })
    }

    #[test]
    fn a_given_path_wins_even_when_missing() {
        let got = pick(Some(("site.toml", Origin::Env)), &[CHECKOUT, SYSTEM]).unwrap();
        assert_eq!(got.path, PathBuf::from("site.toml"));
        assert_eq!(got.origin, Origin::Env);
    }

    #[test]
    fn the_checkout_comes_before_the_system_config() {
        let got = pick(None, &[CHECKOUT, SYSTEM]).unwrap();
        assert_eq!(got.origin, Origin::Checkout);
        assert_eq!(got.path, PathBuf::from(CHECKOUT));
        let got = pick(None, &[SYSTEM]).unwrap();
        assert_eq!(got.origin, Origin::System);
        assert_eq!(got.path, PathBuf::from(SYSTEM));
    }

    #[test]
    fn nothing_given_and_nothing_there_is_none() {
        assert_eq!(pick(None, &[]), None);
    }
}
