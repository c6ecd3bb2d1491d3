//! Signals, through signal-hook: a plain thread turns them into messages,
//! and [`forward`] turns those into what [`super::serve`] takes: its
//! shutdown (a cancellation token) and its controls.

use super::{notify, Control};
use crate::config::Config;
use sd_notify::NotifyState;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use std::path::PathBuf;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a signal asks the daemon to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SIGHUP: reload the config and sync grants.
    Reload,
    /// SIGTERM or SIGINT: stop gracefully (a second one: stop at once).
    Stop(i32),
    /// SIGUSR1: log one status line.
    Status,
}

/// Starts listening; requests arrive on the returned channel.
pub fn listen() -> std::io::Result<mpsc::UnboundedReceiver<Request>> {
    let mut signals = Signals::new([SIGHUP, SIGINT, SIGTERM, SIGUSR1])?;
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let request = match signal {
                    SIGHUP => Request::Reload,
                    SIGUSR1 => Request::Status,
                    other => Request::Stop(other),
                };
                if tx.send(request).is_err() {
                    break;
                }
            }
        })?;
    Ok(rx)
}

/// Where SIGHUP reads the config again, and which ledger the daemon has open.
pub struct Reloads {
    pub config: PathBuf,
    /// `--ledger`, which overrides the config's ledger path.
    pub ledger_flag: Option<PathBuf>,
    /// The ledger the daemon has open.
    pub ledger: PathBuf,
}

impl Reloads {
    /// Loads the config again; `None` (logged, and the running config stays)
    /// when it has an error.
    fn load(&self) -> Option<Config> {
        let config = match Config::load(&self.config) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "reload refused: the config has an error; the running config stays");
                notify(&[NotifyState::Ready]);
                return None;
            }
        };
        let ledger = self.ledger_flag.as_ref().unwrap_or(&config.ledger);
        if *ledger != self.ledger {
            tracing::warn!(ledger = %ledger.display(), "a new ledger path takes effect at the next restart");
        }
        Some(config)
    }
}

/// The process's side of the daemon: SIGHUP loads and checks the config
/// (a broken one is refused here) and sends it on; SIGUSR1 asks for a status
/// line; the first SIGTERM or SIGINT cancels `stop`. A second one exits at
/// once: every write is one SQLite transaction, so nothing is half-written,
/// and an uncommitted charge is made again from the printer's job list at
/// the next start.
pub async fn forward(
    mut signals: mpsc::UnboundedReceiver<Request>,
    stop: CancellationToken,
    controls: mpsc::UnboundedSender<Control>,
    reloads: Reloads,
) {
    while let Some(request) = signals.recv().await {
        match request {
            Request::Stop(signal) if stop.is_cancelled() => {
                tracing::warn!(signal, "second stop signal: exiting at once");
                std::process::exit(1);
            }
            Request::Stop(signal) => {
                tracing::info!(signal, "stopping: finishing charges in flight");
                stop.cancel();
            }
            // Once stopping, only a second stop signal matters.
            _ if stop.is_cancelled() => {}
            Request::Status => {
                let _ = controls.send(Control::Status);
            }
            Request::Reload => {
                notify(&[NotifyState::Reloading]);
                if let Some(config) = reloads.load() {
                    let _ = controls.send(Control::Reload(Box::new(config)));
                }
            }
        }
    }
}
