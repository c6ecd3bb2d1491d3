//! `tallyd run`: the long-running daemon.
//!
//! [`serve`] is the daemon itself. It takes its config, its ledger, a
//! shutdown future, a stream of [`Control`]s (reload, status) and a
//! [`Clock`] as values, and returns once the shutdown future has resolved
//! and every task has ended, so a test can drive it in-process. [`run`] is
//! the process around it: it loads the config, opens the ledger, and turns
//! signals (`signals`, through signal-hook) into that shutdown future and
//! those controls.
//!
//! Inside, on a tokio runtime: supervised tasks (`supervisor`) under one
//! cancellation token — one per printer (`printer:<id>`), one per card
//! reader (`reader:<id>`: its serial thread and its taps), `grants-sync`,
//! `expiry-sweep`, `session-sweep`, `clock-guard`, `backup`, `alerts` and
//! `http` (the listener of `[http]`, `web`) — and the ledger writer
//! thread, the one owner of the SQLite writer connection. Once ready, it
//! checks the whole file (`file_check`) and refuses writes if it is damaged. The main loop
//! answers controls and pings the systemd watchdog. Every task reads the
//! time through the clock guard (`clock_guard`), which holds the
//! time-driven ones while the wall clock is judged wrong.
//!
//! Every task reports what it sees to one [`Observer`](crate::observe)
//! (printers and readers up or down, grants syncs, backups, restarts, jobs
//! by outcome, held jobs, open sessions, the writer's commit times), stamped
//! with the guard's clock.

mod alerts;
mod backups;
pub mod clock_guard;
mod file_check;
mod running;
mod shipper;
mod signals;
mod supervisor;
pub mod taps;
mod tasks;
#[cfg(test)]
mod tests;
mod web;

use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::ledger::chain::hex;
use crate::ledger::integrity::Chain;
use crate::ledger::writer::Writer;
use crate::ledger::{IoCause, Ledger, LedgerError};
use crate::observe::Observer;
use crate::printer::client::{IppError, PrinterClients};
use clock_guard::ClockGuard;
use running::Daemon;
use sd_notify::NotifyState;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long a graceful stop waits, for all tasks together, before it aborts
/// the ones still running; also the most a reload waits for one task.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// Where the daemon's config comes from, and the clock it runs on.
pub struct Options {
    pub config: PathBuf,
    /// `--ledger`: overrides the config's ledger path.
    pub ledger: Option<PathBuf>,
    /// [`Clock::system`], except in tests.
    pub clock: Clock,
}

/// What a running daemon is asked to do, besides stopping (which is the
/// shutdown future given to [`serve`]).
#[derive(Debug)]
pub enum Control {
    /// Apply this config, already loaded and validated (SIGHUP): restart only
    /// the printers whose settings changed, the readers if theirs did, then
    /// sync the grants file.
    Reload(Box<Config>),
    /// Log one status line (SIGUSR1).
    Status,
}

/// Why the daemon could not start. Each keeps its cause.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen for signals")]
    Signals(#[source] std::io::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot create the ledger's folder {}", .path.display())]
    LedgerFolder {
        path: PathBuf,
        #[source]
        source: IoCause,
    },
    /// The ledger's error names its file.
    #[error(transparent)]
    Ledger(LedgerError),
    #[error(transparent)]
    Locked(#[from] crate::ledger::files::LockError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot start the ledger writer")]
    Writer(#[source] std::io::Error),
    #[error("cannot set up the HTTP client{}", printer_named(.printer))]
    HttpClient {
        /// Empty for the client every printer shares.
        printer: String,
        #[source]
        source: IppError,
    },
    #[error("cannot read the ledger's newest row and clock mark")]
    ClockWitnesses(#[source] LedgerError),
    #[error(transparent)]
    Http(#[from] crate::http::BindError),
}

/// ` of printer ID` when `printer` is not empty.
fn printer_named(printer: &str) -> String {
    match printer {
        "" => String::new(),
        p => format!(" of printer {p}"),
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(opts: Options) -> Result<(), DaemonError> {
    // First, so that a signal arriving during start-up is queued, not fatal.
    let signals = signals::listen().map_err(DaemonError::Signals)?;
    let config = Config::load(&opts.config)?;
    let ledger_path = opts.ledger.clone().unwrap_or_else(|| config.ledger.clone());
    crate::ledger::files::prepare_folder(&ledger_path).map_err(|e| DaemonError::LedgerFolder {
        path: ledger_path.parent().unwrap_or(&ledger_path).to_path_buf(),
        source: IoCause(e),
    })?;
    // One daemon per ledger, held until this process ends.
    let _lock = crate::ledger::files::lock_for_daemon(&ledger_path)?;
    let ledger = open_ledger(&ledger_path, &config)?;
    tracing::info!(site = %config.site_name, ledger = %ledger_path.display(),
        config = %opts.config.display(), printers = config.printers.len(),
        pid = std::process::id(), "tallyd starting");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;
    let reloads = signals::Reloads {
        config: opts.config,
        ledger_flag: opts.ledger,
        ledger: ledger_path,
    };
    let result = runtime.block_on(async {
        let stop = CancellationToken::new();
        let (controls, control_rx) = mpsc::unbounded_channel();
        tokio::spawn(signals::forward(signals, stop.clone(), controls, reloads));
        serve(
            config,
            ledger,
            stop.cancelled_owned(),
            control_rx,
            opts.clock,
        )
        .await
    });
    // Every task has ended; do not wait on the signal forwarder.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Opens (creating it and its folder if needed) the ledger at `path`.
fn open_ledger(path: &Path, config: &Config) -> Result<Ledger, DaemonError> {
    crate::ledger::files::prepare_folder(path).map_err(|e| DaemonError::LedgerFolder {
        path: path.parent().unwrap_or(path).to_path_buf(),
        source: IoCause(e),
    })?;
    let backups = backups::dir_for(&config.backup, path);
    let mut ledger =
        Ledger::open_with_backups(path, config.site(), &backups).map_err(DaemonError::Ledger)?;
    if let Some(central) = &config.central {
        let (site, issue) = (central.site_id.clone(), central.issue);
        ledger
            .write(move |conn, _| {
                crate::ledger::outbox::enable(conn, &site)?;
                crate::ledger::escrow::set_issue(conn, issue)
            })
            .map_err(DaemonError::Ledger)?;
    }
    if let Some(written) = ledger.migration_backup() {
        backups::log_written(written, "before-migration");
    }
    let tips = ledger.check_for_daemon().map_err(DaemonError::Ledger)?;
    // The verified tips, so an auditor can compare them with a later
    // ledger: a chain rewritten from an old row on does not end on them.
    let tip = |chain: Chain| {
        let v = tips.iter().find(|t| t.chain == chain);
        v.map(|t| format!("{}:{}", t.row, hex(&t.hash)))
            .unwrap_or_default()
    };
    tracing::info!(ledger = %path.display(),
        rows_checked = tips.iter().map(|t| t.rows).sum::<u64>(),
        history = %tip(Chain::History), usages = %tip(Chain::Usages),
        overage = %tip(Chain::Overage),
        "ledger hash chains verified");
    Ok(ledger)
}

/// The daemon: starts every task, answers `controls` until `shutdown`
/// resolves, then stops every task (one grace period for all of them, see
/// [`STOP_GRACE`]) and returns once the ledger writer has committed what was
/// queued. `clock` is the raw time source; the tasks read it through the
/// clock guard.
pub async fn serve(
    config: Config,
    ledger: Ledger,
    shutdown: impl Future<Output = ()>,
    mut controls: mpsc::UnboundedReceiver<Control>,
    clock: Clock,
) -> Result<(), DaemonError> {
    let clients = PrinterClients::new(&config.printers)
        .map_err(|(printer, source)| DaemonError::HttpClient { printer, source })?;
    let http = web::bind(&config)?;
    let guard = ClockGuard::open(&ledger, clock)
        .map_err(|e| DaemonError::ClockWitnesses(e.at(ledger.path())))?;
    let path = ledger.path().to_path_buf();
    let observed = guard.clock();
    let observer = Observer::new(move || observed.wall());
    let commits = observer.clone();
    let writer = Writer::spawn_timed(ledger, Box::new(move |took| commits.ledger_commit(took)))
        .map_err(DaemonError::Writer)?;
    let refusal = writer.handle().refusal();
    let mut daemon = Daemon::start(
        config,
        path.clone(),
        writer.handle(),
        clients,
        guard.clone(),
        observer,
        http,
    )
    .await;
    notify(&[NotifyState::Ready, NotifyState::Status("running")]);
    tracing::info!(printers = daemon.printers(), "tallyd ready");
    let file_check = tokio::spawn(file_check::after_ready(path, refusal));
    daemon.answer(shutdown, &mut controls).await;
    file_check.abort();
    notify(&[NotifyState::Stopping]);
    daemon.stop(STOP_GRACE).await;
    // A last look, so that rows written since the guard's last check leave
    // a mark for the next start on this boot.
    guard.refresh(&writer.handle()).await;
    // The writer stops once every handle is gone (the tasks held the
    // others); it commits what is queued. Joined off the async threads.
    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    tracing::info!("tallyd stopped");
    Ok(())
}

/// Tells systemd (when it started us with `Type=notify`); otherwise nothing.
fn notify(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}
