//! Errors as one line. A leaf: it knows no other module.
//!
//! Each boundary has its own error that keeps its cause as a value
//! ([`std::error::Error::source`]): the printers'
//! [`IppError`](crate::printer::client::IppError), the ledger's
//! [`LedgerError`](crate::ledger::LedgerError), the grants file's
//! [`GrantsError`](crate::grants::GrantsError) and
//! [`FetchError`](crate::grants::source::FetchError), the config's
//! [`ConfigError`](crate::config::ConfigError). A variant's text says what
//! failed at its own layer; [`error_chain`] adds every cause below it, and
//! is what log lines and the command line print. `anyhow` is only for the
//! binary's outermost layer, [`crate::cli`].

use std::error::Error;

/// `error` and every cause under it, outermost first, joined by `: `
/// ("cannot connect: error sending request for url (…): Connection refused").
///
/// A cause whose text the line already holds is left out: some third-party
/// errors repeat their cause in their own text, and the line says it once.
/// (The ledger ends SQLite's chain itself: see
/// [`SqliteCause`](crate::ledger::SqliteCause).)
pub fn error_chain(error: &dyn Error) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

/// `text` with its control characters written as Rust escapes (`\n`,
/// `\r`, `\u{1b}`): what a file, an argument or a peer said, quoted in one
/// line, cannot start a second one.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    /// An error with an optional cause, and text that may repeat it.
    #[derive(Debug)]
    struct Layer {
        text: &'static str,
        cause: Option<Box<Layer>>,
    }

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.text)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.cause.as_deref().map(|c| c as &(dyn Error + 'static))
        }
    }

    fn layer(text: &'static str, cause: Option<Layer>) -> Layer {
        Layer {
            text,
            cause: cause.map(Box::new),
        }
    }

    #[test]
    fn joins_every_cause_outermost_first() {
        let e = layer("a", Some(layer("b", Some(layer("c", None)))));
        assert_eq!(error_chain(&e), "a: b: c");
    }

    #[test]
    fn a_cause_already_in_the_text_is_said_once() {
        let e = layer(
            "SQLite: disk I/O error",
            Some(layer("disk I/O error", Some(layer("os error 5", None)))),
        );
        assert_eq!(error_chain(&e), "SQLite: disk I/O error: os error 5");
    }
}
