//! `tallyd console add-manager NAME`: a manager account's lines for the
//! site config, with the password's argon2 hash. The password is read from
//! the terminal without echo (asked twice), or as one line from stdin.

use crate::config::valid_manager_name;
use crate::console::password::{self, MIN_PASSWORD_CHARS};
use anyhow::{anyhow, bail, Context, Result};
use std::io::{BufRead, IsTerminal, Write};

/// What `tallyd console` does.
#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Print a `[[console.manager]]` entry with the hash of a password read
    /// from the terminal (or one line of stdin); add it to the site config
    /// and reload the daemon.
    AddManager { name: String },
}

pub fn act(out: &mut dyn Write, action: &Action) -> Result<()> {
    match action {
        Action::AddManager { name } => add_manager(out, name),
    }
}

fn add_manager(out: &mut dyn Write, name: &str) -> Result<()> {
    if !valid_manager_name(name) {
        bail!("`{name}` is not 1 to 64 letters, digits, `.`, `_` or `-`");
    }
    let typed = read_password(name)?;
    if typed.chars().count() < MIN_PASSWORD_CHARS {
        bail!("the password must be at least {MIN_PASSWORD_CHARS} characters");
    }
    let hash = password::hash(&typed).map_err(|e| anyhow!("cannot hash the password: {e}"))?;
    writeln!(
        out,
        "[[console.manager]]\nname = \"{name}\"\npassword_hash = \"{hash}\""
    )?;
    Ok(())
}

fn read_password(name: &str) -> Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {name}: "))
            .context("cannot read the password from the terminal")?;
        let again = rpassword::prompt_password("Again: ")
            .context("cannot read the password from the terminal")?;
        if first != again {
            bail!("the two passwords differ");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
