//! A credential for an HTTP peer, read from a file (`token_file` or
//! `basic_auth_file`), so that no secret sits in the config or a URL. Shared
//! by `[grants]` (the grants URL) and `[alerts]` (the webhook). The file is
//! read whenever the config is loaded — at start and on every reload — so
//! systemd's `LoadCredential=` works; a missing, unreadable, empty or huge
//! one is a config error.

use super::{ConfigError, ErrAt};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use toml::Spanned;

/// A credential for an HTTP peer (the grants URL, the alerts webhook). Its
/// `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum GrantsAuth {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic`, from a file holding `user:password`.
    Basic { user: String, password: String },
}

impl fmt::Debug for GrantsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrantsAuth::Bearer(_) => f.write_str("Bearer(***)"),
            GrantsAuth::Basic { user, .. } => write!(f, "Basic({user}:***)"),
        }
    }
}

/// A section's credential fields, and what they authenticate to.
pub(super) struct Fields<'a> {
    /// `grants`, `alerts`: errors name `<section>.token_file`.
    pub section: &'a str,
    /// The field holding the URL (`source`, `webhook`), for errors.
    pub target: &'a str,
    pub token_file: Option<&'a Spanned<String>>,
    pub basic_auth_file: Option<&'a Spanned<String>>,
}

/// `token_file` or `basic_auth_file` (not both, and only for a URL),
/// relative to `base`, read now.
pub(super) fn read(
    f: Fields<'_>,
    is_url: bool,
    base: &Path,
    err: &ErrAt<'_>,
) -> Result<Option<GrantsAuth>, ConfigError> {
    let (path, field) = match (f.token_file, f.basic_auth_file) {
        (None, None) => return Ok(None),
        (Some(_), Some(b)) => {
            return Err(err(
                Some(b.span()),
                &format!("{}.basic_auth_file", f.section),
                "set token_file or basic_auth_file, not both".into(),
            ))
        }
        (Some(t), None) => (t, format!("{}.token_file", f.section)),
        (None, Some(b)) => (b, format!("{}.basic_auth_file", f.section)),
    };
    let at = |message: String| err(Some(path.span()), &field, message);
    if !is_url {
        return Err(at(format!("needs an http:// or https:// {}", f.target)));
    }
    let file = base.join(path.get_ref().trim());
    let text = read_secret(&file).map_err(|e| {
        let mut error = at(format!("cannot read {}: {e}", file.display()));
        error.source = Some(Arc::new(e));
        error
    })?;
    // One trailing newline (or CR LF) is how files end; the secret is the rest.
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.trim().is_empty() {
        return Err(at(format!("{} is empty", file.display())));
    }
    if f.token_file.is_some() {
        return Ok(Some(GrantsAuth::Bearer(secret.trim().to_string())));
    }
    match secret.split_once(':') {
        Some((user, password)) if !user.is_empty() => Ok(Some(GrantsAuth::Basic {
            user: user.to_string(),
            password: password.to_string(),
        })),
        _ => Err(at(format!(
            "{} does not hold `user:password`",
            file.display()
        ))),
    }
}

/// A secret file is a line, not a stream: anything past [`SECRET_MAX`]
/// bytes (a wrong path to a log or a device) is refused, unread.
const SECRET_MAX: u64 = 64 * 1024;

fn read_secret(file: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(file)?
        .take(SECRET_MAX + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > SECRET_MAX {
        return Err(std::io::Error::other(format!(
            "it is over {} KiB, not a secret",
            SECRET_MAX / 1024
        )));
    }
    Ok(text)
}
