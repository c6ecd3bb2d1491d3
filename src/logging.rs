//! Log lines on stderr, one per event, with structured fields.
//!
//! - `journald`: `<6>charge member=alice printer=lobby …` — the `<N>` prefix
//!   is the syslog priority journald reads from a service's stderr; it adds
//!   the timestamp itself.
//! - `text`: the same with a timestamp and level, for a terminal.
//! - `json`: one JSON object per line, for log shippers.
//!
//! `auto` is `text` on a terminal and `journald` otherwise. `RUST_LOG`
//! filters (default `info`).
//!
//! Nothing a user typed can forge a line: in `journald` and `text`, every
//! control character inside an event (a newline in a member id, a reason, a
//! job name) is written escaped (`\n`, `\r`, `\u{1b}`), so an event is always
//! exactly one line; `json` escapes them as JSON does.

use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Auto,
    Text,
    Journald,
    Json,
}

/// Installs the global subscriber (once; later calls do nothing).
pub fn init(format: LogFormat) {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = subscriber(format, tty, std::io::stderr).try_init();
}

/// The subscriber `init` installs, writing to `writer` (stderr, or a buffer
/// in tests); `tty` says whether `auto` means `text`.
fn subscriber<W>(format: LogFormat, tty: bool, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // rustls-platform-verifier logs every refused certificate itself, at
    // error, on every retry; tallyd says it once per outage (see `tls`).
    // Invariant: a constant, well-formed `target=level` directive always
    // parses (the logging tests build this subscriber).
    let quiet = "rustls_platform_verifier=off".parse().expect("a directive");
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        .add_directive(quiet);
    let format = match format {
        LogFormat::Auto if tty => LogFormat::Text,
        LogFormat::Auto => LogFormat::Journald,
        f => f,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false)
        .with_ansi(false);
    match format {
        LogFormat::Json => Box::new(builder.json().flatten_event(true).finish()),
        LogFormat::Journald => Box::new(builder.event_format(OneLine(Journald)).finish()),
        _ => Box::new(
            builder
                .event_format(OneLine(
                    tracing_subscriber::fmt::format::Format::default().with_target(false),
                ))
                .finish(),
        ),
    }
}

/// `<priority>message field=value …`
struct Journald;

impl<S, N> FormatEvent<S, N> for Journald
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let priority = match *event.metadata().level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            _ => 7,
        };
        write!(writer, "<{priority}>")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Formats an event with `F`, then escapes every control character in it
/// but the final newline, so one event is one line whatever its fields hold.
struct OneLine<F>(F);

impl<S, N, F> FormatEvent<S, N> for OneLine<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.strip_suffix('\n').unwrap_or(&line);
        writeln!(writer, "{}", escape_controls(body))
    }
}

/// `text` with its control characters written as Rust escapes (it lives
/// in the leaf [`crate::error`], so errors below this floor use it too).
pub use crate::error::escape_controls;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_start_a_new_line() {
        assert_eq!(escape_controls("alice"), "alice");
        assert_eq!(
            escape_controls("x\n<0>forged\r\u{1b}[2J\0"),
            "x\\n<0>forged\\r\\u{1b}[2J\\u{0}"
        );
    }

    /// A `MakeWriter` that appends to one shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            // Invariant: the lock is never held across a panic in these tests.
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_event_with_forged_fields_is_one_line_in_every_format() {
        for format in [LogFormat::Text, LogFormat::Journald, LogFormat::Json] {
            let buffer = Buffer::default();
            let writer = buffer.clone();
            let installed = subscriber(format, false, move || writer.clone());
            tracing::subscriber::with_default(installed, || {
                // `%` (Display) writes a field as it is; a bare `&str` is
                // written quoted (Debug). Both must stay on the line.
                tracing::warn!(
                    member = %"alice\n<0>forged",
                    user = "mallory\n<0>forged",
                    "unattributed job"
                );
            });
            let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
            assert_eq!(out.lines().count(), 1, "{format:?}: {out:?}");
            assert!(out.ends_with('\n'), "{format:?}: {out:?}");
            assert!(out.contains("unattributed job"), "{format:?}: {out:?}");
            if format == LogFormat::Json {
                let v: serde_json::Value = serde_json::from_str(&out).unwrap();
                assert_eq!(v["member"], "alice\n<0>forged", "{out}");
                assert_eq!(v["user"], "mallory\n<0>forged", "{out}");
            } else {
                assert!(out.contains(r"alice\n<0>forged"), "{format:?}: {out:?}");
            }
        }
    }
}
