//! Signals, through signal-hook: a plain thread turns them into messages the
//! daemon's main loop reads.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use tokio::sync::mpsc;

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
