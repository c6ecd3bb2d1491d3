//! `[console]`: who may use the manager's web console. Each
//! `[[console.manager]]` has a name and an argon2 password hash (written by
//! `tallyd console add-manager NAME`); the hash is checked to be a PHC
//! string here, so a pasted line that lost a character is a config error
//! with its line, not a login that never works.

use super::{duration_field, ConfigError, ErrAt};
use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConsole {
    #[serde(default)]
    manager: Vec<RawManager>,
    #[serde(default)]
    secure_cookies: Option<bool>,
    #[serde(default)]
    session_idle: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManager {
    name: Spanned<String>,
    password_hash: Spanned<String>,
}

/// One manager account.
#[derive(Clone, PartialEq, Eq)]
pub struct Manager {
    pub name: String,
    /// An argon2 PHC string (`$argon2id$v=19$...`).
    pub password_hash: String,
}

impl std::fmt::Debug for Manager {
    /// Never prints the hash.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Manager({})", self.name)
    }
}

/// The console's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleConfig {
    pub managers: Vec<Manager>,
    /// Mark the session cookie `Secure`: set under TLS, or behind a reverse
    /// proxy that serves the console over https.
    pub secure_cookies: bool,
    /// A session unused this long ends (default 30 minutes).
    pub session_idle: Duration,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            managers: Vec::new(),
            secure_cookies: false,
            session_idle: Duration::from_secs(30 * 60),
        }
    }
}

/// A manager's name: 1 to 64 letters, digits, `.`, `_` or `-` (it reaches
/// log lines and the ledger's history).
pub fn valid_manager_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

pub(super) fn section(
    raw: Option<RawConsole>,
    err: &ErrAt<'_>,
) -> Result<ConsoleConfig, ConfigError> {
    let raw = raw.unwrap_or_default();
    let d = ConsoleConfig::default();
    let mut managers: Vec<Manager> = Vec::new();
    for (i, m) in raw.manager.iter().enumerate() {
        let name = m.name.get_ref().trim();
        let field = |f: &str| format!("console.manager[{i}].{f}");
        if !valid_manager_name(name) {
            return Err(err(
                Some(m.name.span()),
                &field("name"),
                format!("`{name}` is not 1 to 64 letters, digits, `.`, `_` or `-`"),
            ));
        }
        if managers.iter().any(|o| o.name.eq_ignore_ascii_case(name)) {
            return Err(err(
                Some(m.name.span()),
                &field("name"),
                format!("manager `{name}` is listed twice"),
            ));
        }
        let hash = m.password_hash.get_ref().trim();
        if argon2::PasswordHash::new(hash).is_err() || !hash.starts_with("$argon2") {
            return Err(err(
                Some(m.password_hash.span()),
                &field("password_hash"),
                "is not an argon2 hash (write one with `tallyd console add-manager NAME`)".into(),
            ));
        }
        managers.push(Manager {
            name: name.to_string(),
            password_hash: hash.to_string(),
        });
    }
    Ok(ConsoleConfig {
        managers,
        secure_cookies: raw.secure_cookies.unwrap_or(d.secure_cookies),
        session_idle: duration_field(
            &raw.session_idle,
            "console.session_idle",
            d.session_idle,
            err,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    fn parse(extra: &str) -> Result<Config, crate::config::ConfigError> {
        let text = format!("[site]\ntimezone = \"UTC\"\n{extra}");
        Config::parse(&text, "t.toml", Path::new("/etc/tallyd"))
    }

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$XdDXOeqqSeftKjztfwpV+g$yoRfj94LVPpizEtVlzhsbOUXM5FJVsC5BnXRPzbddSk";

    #[test]
    fn managers_are_read_and_checked() {
        let c = parse("").expect("no console section");
        assert!(c.console.managers.is_empty());
        assert!(!c.console.secure_cookies);
        let c = parse(&format!(
            "[console]\nsecure_cookies = true\n[[console.manager]]\nname = \"maria\"\npassword_hash = \"{HASH}\"\n"
        ))
        .expect("valid");
        assert_eq!(c.console.managers[0].name, "maria");
        assert!(c.console.secure_cookies);
        assert!(
            !format!("{:?}", c.console).contains("argon2"),
            "no hash in Debug"
        );

        let e = parse("[[console.manager]]\nname = \"maria\"\npassword_hash = \"hunter2\"\n")
            .expect_err("not a hash");
        assert_eq!(
            (e.line, e.field.as_str()),
            (Some(5), "console.manager[0].password_hash")
        );
        let e = parse(&format!(
            "[[console.manager]]\nname = \"ma ria\"\npassword_hash = \"{HASH}\"\n"
        ))
        .expect_err("bad name");
        assert_eq!(e.field, "console.manager[0].name");
        let twice = format!("[[console.manager]]\nname = \"maria\"\npassword_hash = \"{HASH}\"\n");
        let e = parse(&format!("{twice}{}", twice.replace("maria", "Maria"))).expect_err("twice");
        assert!(e.message.contains("twice"), "{e}");
    }
}
