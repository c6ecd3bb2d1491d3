//! `tallyd generate man|completions DIR` (hidden): the man pages and the
//! bash, zsh and fish completions the Debian package ships, made from the
//! clap definition `--help` prints, by the binary being packaged, so they
//! always describe that binary.

use anyhow::{Context, Result};
use clap::Subcommand;
use clap_complete::Shell;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum What {
    /// A man page for tallyd and one per subcommand (`tallyd-balance.1`, ...).
    Man { dir: PathBuf },
    /// Completions for bash (`tallyd.bash`), zsh (`_tallyd`) and fish (`tallyd.fish`).
    Completions { dir: PathBuf },
}

/// Writes the files into the folder (made if missing) and lists them.
pub fn generate(out: &mut dyn Write, what: &What) -> Result<()> {
    let dir = match what {
        What::Man { dir } | What::Completions { dir } => dir,
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    match what {
        What::Man { .. } => {
            clap_mangen::generate_to(super::command(), dir)
                .with_context(|| format!("cannot write the man pages to {}", dir.display()))?;
        }
        What::Completions { .. } => {
            let mut cmd = without_hidden(super::command());
            for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
                clap_complete::generate_to(shell, &mut cmd, "tallyd", dir).with_context(|| {
                    format!("cannot write the {shell} completions to {}", dir.display())
                })?;
            }
        }
    }
    list(out, dir)
}

/// `cmd` without its hidden subcommands (this one): clap_complete would
/// offer them, clap_mangen already leaves them out.
fn without_hidden(cmd: clap::Command) -> clap::Command {
    let mut visible = clap::Command::new("tallyd")
        .version(super::VERSION.as_str())
        .subcommand_required(true)
        .args(cmd.get_arguments().cloned())
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if let Some(about) = cmd.get_about() {
        visible = visible.about(about.clone());
    }
    visible
}

fn list(out: &mut dyn Write, dir: &Path) -> Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    for name in names {
        writeln!(out, "{}", name.display())?;
    }
    Ok(())
}
