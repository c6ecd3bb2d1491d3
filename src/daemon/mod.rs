//! `tallyd run`: the long-running daemon.
//!
//! On a tokio runtime: one task per printer, the grants syncer, the expiry
//! sweep, and the ledger writer thread as the one owner of the SQLite writer
//! connection. The main loop answers signals and pings the systemd watchdog.

mod signals;
pub mod taps;
mod tasks;

use crate::clock::{self, Clock};
use crate::config::{Config, PrinterConfig};
use crate::ledger::writer::{Writer, WriterHandle};
use crate::ledger::Ledger;
use crate::printer::client::IppClient;
use crate::printer::poller::{Poller, StatusBoard};
use crate::reader::port;
use crate::site::LiveSite;
use anyhow::{Context, Result};
use sd_notify::NotifyState;
use signals::Request;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use taps::TapContext;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// How long a graceful stop waits for tasks to finish what they are doing.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Where the daemon's config comes from, and the clock it runs on.
pub struct Options {
    pub config: PathBuf,
    /// `--ledger`: overrides the config's ledger path.
    pub ledger: Option<PathBuf>,
    /// [`Clock::system`], except in tests.
    pub clock: Clock,
}

/// A running task with the switch that stops it.
struct Task {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl Task {
    fn spawn<F>(make: impl FnOnce(watch::Receiver<bool>) -> F) -> Task
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let (stop, rx) = watch::channel(false);
        Task {
            stop,
            handle: tokio::spawn(make(rx)),
        }
    }
}

/// A reader's thread and the task handling its taps.
struct ReaderTask {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    taps: Task,
}

struct Daemon {
    readers: Vec<ReaderTask>,
    /// Closes overlong sessions; restarted with the readers on reload.
    sweeper: Option<Task>,
    opts: Options,
    config: Config,
    writer: WriterHandle,
    site: LiveSite,
    board: StatusBoard,
    client: IppClient,
    printers: BTreeMap<String, (PrinterConfig, Task)>,
    others: Vec<Task>,
    grants: watch::Sender<Option<crate::config::GrantsConfig>>,
    sync_now: mpsc::UnboundedSender<()>,
    started: Instant,
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(opts: Options) -> Result<()> {
    // First, so that a signal arriving during start-up is queued, not fatal.
    let signals = signals::listen().context("cannot listen for signals")?;
    let config = Config::load(&opts.config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(opts, config, signals))
}

async fn serve(
    opts: Options,
    config: Config,
    signals: mpsc::UnboundedReceiver<Request>,
) -> Result<()> {
    let ledger_path = opts.ledger.clone().unwrap_or_else(|| config.ledger.clone());
    if let Some(dir) = ledger_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the ledger's folder {}", dir.display()))?;
    }
    let ledger = Ledger::open(&ledger_path, config.site())
        .with_context(|| format!("cannot open the ledger {}", ledger_path.display()))?;
    let writer = Writer::spawn(ledger).context("cannot start the ledger writer")?;
    tracing::info!(site = %config.site_name, ledger = %ledger_path.display(),
        printers = config.printers.len(), pid = std::process::id(), "tallyd starting");
    let site = LiveSite::new(config.site());
    if let Some(g) = &config.grants {
        tasks::sync_grants(&writer.handle(), &site, &opts.clock, g).await;
    }
    let (grants, grants_rx) = watch::channel(config.grants.clone());
    let (sync_now, sync_rx) = mpsc::unbounded_channel();
    let mut daemon = Daemon {
        readers: Vec::new(),
        sweeper: None,
        writer: writer.handle(),
        client: IppClient::new().context("cannot set up the HTTP client")?,
        board: Arc::new(Mutex::new(BTreeMap::new())),
        printers: BTreeMap::new(),
        others: Vec::new(),
        started: Instant::now(),
        opts,
        config,
        site,
        grants,
        sync_now,
    };
    let (w, s, c) = (
        daemon.writer.clone(),
        daemon.site.clone(),
        daemon.opts.clock.clone(),
    );
    daemon.others.push(Task::spawn(|stop| {
        tasks::syncer(w, s, c, grants_rx, sync_rx, stop)
    }));
    let (w, c) = (daemon.writer.clone(), daemon.opts.clock.clone());
    daemon
        .others
        .push(Task::spawn(|stop| tasks::expiry_sweeper(w, c, stop)));
    for p in daemon.config.printers.clone() {
        daemon.start_printer(p);
    }
    daemon.start_readers();
    notify(&[NotifyState::Ready, NotifyState::Status("running")]);
    tracing::info!(printers = daemon.printers.len(), "tallyd ready");
    let stop_signal = daemon.main_loop(signals).await;
    daemon.stop(stop_signal).await;
    // The writer stops once every handle is gone; it commits what is queued.
    drop(daemon);
    writer.join();
    tracing::info!("tallyd stopped");
    Ok(())
}

impl Daemon {
    fn tap_context(&self) -> TapContext {
        TapContext {
            readers: self.config.readers.clone(),
            printers: self.config.printers.clone(),
            client: self.client.clone(),
            writer: self.writer.clone(),
            site: self.site.clone(),
            clock: self.opts.clock.clone(),
        }
    }

    /// One thread per reader, one task handling its taps in order, and the
    /// sweep that closes sessions at their maximum length.
    fn start_readers(&mut self) {
        let ctx = self.tap_context();
        for cfg in self.config.readers.clone() {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let stop = Arc::new(AtomicBool::new(false));
            let thread = match port::spawn(cfg.clone(), tx, stop.clone()) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::error!(reader = %cfg.id, error = %e, "cannot start the reader's thread");
                    None
                }
            };
            let ctx = ctx.clone();
            let taps = Task::spawn(|mut stop_rx| async move {
                loop {
                    tokio::select! {
                        tap = rx.recv() => match tap {
                            Some(tap) => taps::handle(&ctx, tap).await,
                            None => return,
                        },
                        _ = stop_rx.changed() => return,
                    }
                }
            });
            self.readers.push(ReaderTask { stop, thread, taps });
        }
        self.sweeper = Some(Task::spawn(|stop| session_sweeper(ctx, stop)));
    }

    async fn stop_readers(&mut self) {
        if let Some(sweeper) = self.sweeper.take() {
            let _ = sweeper.stop.send(true);
            let _ = sweeper.handle.await;
        }
        for r in std::mem::take(&mut self.readers) {
            r.stop.store(true, Ordering::Relaxed);
            let _ = r.taps.stop.send(true);
            let _ = r.taps.handle.await;
            if let Some(t) = r.thread {
                let _ = tokio::task::spawn_blocking(move || t.join()).await;
            }
        }
    }

    fn start_printer(&mut self, p: PrinterConfig) {
        let poller = Poller::new(
            p.clone(),
            self.client.clone(),
            self.writer.clone(),
            self.site.clone(),
            self.board.clone(),
            self.opts.clock.clone(),
        );
        let task = Task::spawn(|stop| poller.run(stop));
        self.printers.insert(p.id.clone(), (p, task));
    }

    async fn stop_printer(&mut self, id: &str) {
        if let Some((_, task)) = self.printers.remove(id) {
            let _ = task.stop.send(true);
            let _ = task.handle.await;
        }
        if let Ok(mut b) = self.board.lock() {
            b.remove(id);
        }
    }

    /// Answers signals until asked to stop; returns the stopping signal.
    async fn main_loop(
        &mut self,
        mut signals: mpsc::UnboundedReceiver<Request>,
    ) -> mpsc::UnboundedReceiver<Request> {
        let watchdog = sd_notify::watchdog_enabled().map(|d| d / 2);
        let mut tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        loop {
            tokio::select! {
                request = signals.recv() => match request {
                    Some(Request::Reload) => self.reload().await,
                    Some(Request::Status) => self.log_status(),
                    Some(Request::Stop(signal)) => {
                        tracing::info!(signal, "stopping: finishing charges in flight");
                        return signals;
                    }
                    None => return signals,
                },
                _ = tick.tick() => {
                    if watchdog.is_some() && self.writer_alive().await {
                        notify(&[NotifyState::Watchdog]);
                    }
                }
            }
        }
    }

    /// Whether the writer answers within a few seconds (for the watchdog).
    async fn writer_alive(&self) -> bool {
        let ping = self.writer.call_async(|_| Ok(()));
        matches!(
            tokio::time::timeout(Duration::from_secs(5), ping).await,
            Ok(Ok(()))
        )
    }

    /// Stops every task, letting charges in flight commit. A second SIGTERM
    /// or SIGINT exits at once: every write is one SQLite transaction, so
    /// nothing is half-written, and an uncommitted charge is made again
    /// from the printer's job list at the next start.
    async fn stop(&mut self, mut signals: mpsc::UnboundedReceiver<Request>) {
        notify(&[NotifyState::Stopping]);
        tokio::spawn(async move {
            while let Some(r) = signals.recv().await {
                if let Request::Stop(signal) = r {
                    tracing::warn!(signal, "second stop signal: exiting at once");
                    std::process::exit(1);
                }
            }
        });
        self.stop_readers().await;
        let mut tasks: Vec<Task> = std::mem::take(&mut self.printers)
            .into_values()
            .map(|(_, t)| t)
            .collect();
        tasks.append(&mut self.others);
        for t in &tasks {
            let _ = t.stop.send(true);
        }
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        for t in tasks {
            let abort = t.handle.abort_handle();
            if tokio::time::timeout_at(deadline, t.handle).await.is_err() {
                abort.abort();
            }
        }
    }

    /// SIGHUP: read the config again; restart only the printers whose
    /// settings changed; then sync the grants file.
    async fn reload(&mut self) {
        notify(&[NotifyState::Reloading]);
        let config = match Config::load(&self.opts.config) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "reload refused: the config has an error; the running config stays");
                notify(&[NotifyState::Ready]);
                return;
            }
        };
        let ledger = self
            .opts
            .ledger
            .clone()
            .unwrap_or_else(|| config.ledger.clone());
        let running = self
            .opts
            .ledger
            .clone()
            .unwrap_or_else(|| self.config.ledger.clone());
        if ledger != running {
            tracing::warn!(ledger = %ledger.display(), "a new ledger path takes effect at the next restart");
        }
        self.site.set(config.site());
        let (mut added, mut changed, mut removed) = (Vec::new(), Vec::new(), Vec::new());
        let old: Vec<String> = self.printers.keys().cloned().collect();
        for id in old {
            match config.printers.iter().find(|p| p.id == id) {
                None => {
                    self.stop_printer(&id).await;
                    removed.push(id);
                }
                Some(p) if Some(p) != self.printers.get(&id).map(|(c, _)| c) => {
                    self.stop_printer(&id).await;
                    self.start_printer(p.clone());
                    changed.push(id);
                }
                Some(_) => {}
            }
        }
        for p in &config.printers {
            if !self.printers.contains_key(&p.id) {
                added.push(p.id.clone());
                self.start_printer(p.clone());
            }
        }
        let readers_changed =
            config.readers != self.config.readers || config.printers != self.config.printers;
        let _ = self.grants.send(config.grants.clone());
        let _ = self.sync_now.send(());
        tracing::info!(printers = self.printers.len(), added = %added.join(","),
            changed = %changed.join(","), removed = %removed.join(","), "config reloaded");
        self.config = config;
        if readers_changed {
            self.stop_readers().await;
            self.start_readers();
        }
        notify(&[NotifyState::Ready]);
    }

    /// SIGUSR1: one line with every printer's state.
    fn log_status(&self) {
        let tz = self.config.tz;
        let board = self.board.lock().map(|b| b.clone()).unwrap_or_default();
        let mut up = 0;
        let mut down = Vec::new();
        let mut charged = 0;
        let mut detail = Vec::new();
        for (id, s) in &board {
            charged += s.jobs_charged;
            let state = match s.up {
                Some(true) => {
                    up += 1;
                    "up"
                }
                Some(false) => {
                    down.push(id.clone());
                    "down"
                }
                None => "starting",
            };
            let last = s
                .last_poll
                .map(|t| clock::format_local(tz, t))
                .unwrap_or_else(|| "never".into());
            detail.push(format!(
                "{id}={state} last_poll={last} jobs={}",
                s.jobs_charged
            ));
        }
        tracing::info!(
            printers_up = up,
            printers_down = down.len(),
            down = %down.join(","),
            jobs_charged = charged,
            uptime_s = self.started.elapsed().as_secs(),
            printers = %detail.join("; "),
            "status"
        );
    }
}

/// Ends sessions that reached their room's maximum length, every 30 s.
async fn session_sweeper(ctx: TapContext, mut stop: watch::Receiver<bool>) {
    loop {
        taps::close_overlong(&ctx).await;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Tells systemd (when it started us with `Type=notify`); otherwise nothing.
fn notify(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}
