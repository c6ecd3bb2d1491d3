//! `[[readers]]`: serial card readers, each bound to a printer (a release
//! station) or a resource (a room door).

use super::{duration_field, ConfigError, ErrAt, PrinterConfig};
use crate::ids::Framing;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReader {
    id: Spanned<String>,
    device: Spanned<String>,
    #[serde(default)]
    baud: Option<Spanned<u32>>,
    framing: Spanned<String>,
    #[serde(default)]
    printer: Option<Spanned<String>>,
    #[serde(default)]
    resource: Option<Spanned<String>>,
    #[serde(default)]
    debounce: Option<Spanned<String>>,
    #[serde(default)]
    increment: Option<Spanned<String>>,
    #[serde(default)]
    max_session: Option<Spanned<String>>,
    #[serde(default)]
    other_member: Option<Spanned<String>>,
}

/// What a reader's taps do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// Release the tapping member's held jobs at this printer.
    Printer(String),
    /// Start or end a session in this room.
    Resource(String),
}

/// A tap by another member while a room's session is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtherMember {
    Refuse,
    End,
}

/// The most minutes a room's increment, or its maximum session, may be: half
/// of [`MAX_UNITS`](crate::money::MAX_UNITS) (about 950 years), so that a
/// session's charge (its length rounded up to whole increments) stays within
/// the bound on amounts.
pub const MAX_SESSION_MINUTES: u64 = crate::money::MAX_UNITS.unsigned_abs() / 2;

/// One card reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderConfig {
    pub id: String,
    /// `/dev/serial/by-id/...` recommended: it survives replugging.
    pub device: PathBuf,
    pub baud: u32,
    pub framing: Framing,
    pub binding: Binding,
    /// The same card again within this is the same tap.
    pub debounce: Duration,
    /// Sessions are charged in whole increments, rounded up.
    pub increment: Duration,
    /// Sessions are closed (and charged) at this length.
    pub max_session: Duration,
    pub other_member: OtherMember,
}

pub(super) fn validate(
    raw: Vec<RawReader>,
    printers: &[PrinterConfig],
    base: &std::path::Path,
    err: &ErrAt<'_>,
) -> Result<Vec<ReaderConfig>, ConfigError> {
    let mut out: Vec<ReaderConfig> = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let reader = reader(i, r, &out, printers, base, err)?;
        out.push(reader);
    }
    Ok(out)
}

/// The `i`th `[[readers]]` entry; `earlier` are the ones before it. The
/// device is relative to `base`, the config's folder.
fn reader(
    i: usize,
    r: RawReader,
    earlier: &[ReaderConfig],
    printers: &[PrinterConfig],
    base: &std::path::Path,
    err: &ErrAt<'_>,
) -> Result<ReaderConfig, ConfigError> {
    let field = |name: &str| format!("readers[{i}].{name}");
    let id = r.id.get_ref().trim().to_string();
    if id.is_empty() || earlier.iter().any(|o| o.id == id) {
        return Err(err(
            Some(r.id.span()),
            &field("id"),
            format!("`{id}` is empty or used by another reader"),
        ));
    }
    let framing = framing(&r.framing, &field("framing"), err)?;
    let binding = binding(&r, &field("printer"), printers, err)?;
    let duration = |v: &Option<Spanned<String>>, name: &str, default: Duration| {
        duration_field(v, &field(name), default, err)
    };
    let (increment, max_session) = session_lengths(&r, &field, err)?;
    let other_member = other_member(r.other_member.as_ref(), &field("other_member"), err)?;
    Ok(ReaderConfig {
        id,
        device: base.join(r.device.get_ref().trim()),
        baud: r.baud.as_ref().map_or(9600, |b| *b.get_ref()),
        framing,
        binding,
        debounce: duration(&r.debounce, "debounce", Duration::from_secs(3))?,
        increment,
        max_session,
        other_member,
    })
}

/// A room reader's increment (whole minutes, 15 by default) and maximum
/// session (8 hours), each at most [`MAX_SESSION_MINUTES`].
fn session_lengths(
    r: &RawReader,
    field: &dyn Fn(&str) -> String,
    err: &ErrAt<'_>,
) -> Result<(Duration, Duration), ConfigError> {
    let duration = |v: &Option<Spanned<String>>, name: &str, default: Duration| {
        duration_field(v, &field(name), default, err)
    };
    let increment = duration(&r.increment, "increment", Duration::from_secs(15 * 60))?;
    if increment.as_secs() % 60 != 0 {
        return Err(err(
            r.increment.as_ref().map(Spanned::span),
            &field("increment"),
            "must be whole minutes".into(),
        ));
    }
    let max_session = duration(&r.max_session, "max_session", Duration::from_secs(8 * 3600))?;
    for (name, value, d) in [
        ("increment", &r.increment, increment),
        ("max_session", &r.max_session, max_session),
    ] {
        if d.as_secs() / 60 > MAX_SESSION_MINUTES {
            return Err(err(
                value.as_ref().map(Spanned::span),
                &field(name),
                format!(
                    "must be at most {MAX_SESSION_MINUTES} minutes (half the 10^9 bound on amounts)"
                ),
            ));
        }
    }
    Ok((increment, max_session))
}

/// How the reader frames a card id, by name (any case).
fn framing(raw: &Spanned<String>, field: &str, err: &ErrAt<'_>) -> Result<Framing, ConfigError> {
    let name = raw.get_ref().trim().to_ascii_lowercase();
    Framing::parse(&name).ok_or_else(|| {
        let names: Vec<&str> = Framing::ALL.iter().map(|f| f.as_str()).collect();
        err(
            Some(raw.span()),
            field,
            format!("`{name}` is not one of {}", names.join(", ")),
        )
    })
}

/// What the reader's taps do: release jobs at a configured printer, or open
/// and close sessions in a resource; exactly one of the two. Errors name the
/// `printer` field.
fn binding(
    r: &RawReader,
    field: &str,
    printers: &[PrinterConfig],
    err: &ErrAt<'_>,
) -> Result<Binding, ConfigError> {
    match (&r.printer, &r.resource) {
        (Some(p), None) => {
            let name = p.get_ref().trim();
            if !printers.iter().any(|c| c.id == name) {
                return Err(err(
                    Some(p.span()),
                    field,
                    format!("no printer `{name}` in [[printers]]"),
                ));
            }
            Ok(Binding::Printer(name.to_string()))
        }
        (None, Some(res)) if !res.get_ref().trim().is_empty() => {
            Ok(Binding::Resource(res.get_ref().trim().to_string()))
        }
        _ => Err(err(
            Some(r.id.span()),
            field,
            "a reader is bound to exactly one `printer` or `resource`".into(),
        )),
    }
}

/// A tap by another member during a room's session: `refuse` (the default)
/// or `end`.
fn other_member(
    raw: Option<&Spanned<String>>,
    field: &str,
    err: &ErrAt<'_>,
) -> Result<OtherMember, ConfigError> {
    match raw.map(|o| o.get_ref().as_str()) {
        None | Some("refuse") => Ok(OtherMember::Refuse),
        Some("end") => Ok(OtherMember::End),
        Some(other) => Err(err(
            raw.map(Spanned::span),
            field,
            format!("`{other}` is not `refuse` or `end`"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::MAX_SESSION_MINUTES;
    use crate::config::Config;
    use std::path::Path;

    fn room(increment: &str, max_session: &str) -> String {
        format!(
            "[site]\ntimezone = \"UTC\"\n[[readers]]\nid = \"door\"\ndevice = \"door\"\n\
             framing = \"rdm6300\"\nresource = \"room-a\"\n\
             increment = \"{increment}\"\nmax_session = \"{max_session}\"\n"
        )
    }

    #[test]
    fn a_room_increment_or_session_beyond_the_bound_is_refused() {
        let parse = |text: String| Config::parse(&text, "test.toml", Path::new("/etc/tallyd"));
        let most = format!("{MAX_SESSION_MINUTES}m");
        let over = format!("{}m", MAX_SESSION_MINUTES + 1);
        assert!(parse(room("15m", &most)).is_ok());
        assert!(parse(room(&most, &most)).is_ok());
        let e = parse(room(&over, "8h")).expect_err("increment too long");
        assert_eq!(
            (e.line, e.field.as_str()),
            (Some(8), "readers[0].increment")
        );
        let e = parse(room("15m", &over)).expect_err("session too long");
        assert_eq!(
            (e.line, e.field.as_str()),
            (Some(9), "readers[0].max_session")
        );
        assert!(e.message.contains("at most 500000000 minutes"), "{e}");
        // Past any duration a config may give (1000 years), that bound says so.
        let e = parse(room("15m", "9999999999h")).expect_err("session too long");
        assert_eq!(e.field, "readers[0].max_session");
        assert!(e.message.contains("longer than 1000 years"), "{e}");
    }
}
