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

use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

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
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let format = match format {
        LogFormat::Auto if tty => LogFormat::Text,
        LogFormat::Auto => LogFormat::Journald,
        f => f,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Journald => builder.with_ansi(false).event_format(Journald).try_init(),
        _ => builder.with_ansi(tty).try_init(),
    };
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
