//! The running daemon: its supervised tasks by name, the main loop that
//! answers controls, reload and the status line.

use super::clock_guard::ClockGuard;
use super::supervisor::Supervisor;
use super::taps::TapContext;
use super::{notify, tasks, web, Control, STOP_GRACE};
use crate::analysis::Limits;
use crate::clock::{self, Clock};
use crate::config::{Config, GrantsConfig, PrinterConfig};
use crate::console::ConsoleState;
use crate::ledger::writer::WriterHandle;
use crate::observe::Observer;
use crate::printer::analyse::Analyser;
use crate::printer::client::PrinterClients;
use crate::printer::poller::{Poller, StatusBoard};
use crate::site::LiveSite;
use sd_notify::NotifyState;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;

pub(super) struct Daemon {
    config: Config,
    /// The ledger's file (scheduled backups copy it).
    ledger: PathBuf,
    tasks: Supervisor,
    writer: WriterHandle,
    site: LiveSite,
    board: StatusBoard,
    clients: PrinterClients,
    /// The guard's clock: what every task reads.
    clock: Clock,
    guard: ClockGuard,
    grants: watch::Sender<Option<GrantsConfig>>,
    grants_outage: tasks::SyncOutage,
    sync_now: Arc<Notify>,
    started: Instant,
    /// The spool analysis's queue, when `[analysis]` is on.
    analyser: Option<Analyser>,
    /// What the tasks observe, for metrics, health and alerts.
    observer: Observer,
    /// The alert rules' state, kept across the alerts task's runs.
    alerts: Arc<Mutex<crate::alerts::Alerter>>,
    /// The HTTP listener's address, when `[http]` is on.
    http: Option<web::Bound>,
    /// The web console (served by the HTTP listener): its sessions outlive
    /// a reload.
    console: ConsoleState,
    /// Set by the shipper once the centre answered its first hello.
    first_hello: Option<watch::Receiver<bool>>,
}

/// How long a restored chain site waits for the centre before polling its
/// printers (see [`Daemon::after_restore`]).
const RESTORED_HELLO: Duration = Duration::from_secs(10);

impl Daemon {
    /// Syncs the grants file once (unless the wall clock is judged wrong),
    /// then starts every task.
    pub(super) async fn start(
        config: Config,
        ledger: PathBuf,
        writer: WriterHandle,
        clients: PrinterClients,
        guard: ClockGuard,
        observer: Observer,
        http: Option<web::Bound>,
    ) -> Daemon {
        let site = LiveSite::new(config.site());
        let clock = guard.clock();
        let grants_outage = tasks::SyncOutage::default();
        if let Some(g) = &config.grants {
            if clock.trusted() {
                tasks::sync_grants(&writer, &site, &clock, g, &grants_outage, &observer).await;
            } else {
                tracing::info!(source = %crate::grants::source::redact(&g.source), "grants sync held until the wall clock agrees");
            }
        }
        let (grants, _) = watch::channel(config.grants.clone());
        let console = ConsoleState::in_daemon(
            config.clone(),
            ledger.clone(),
            writer.clone(),
            clock.clone(),
            observer.clone(),
        );
        let mut daemon = Daemon {
            console,
            tasks: Supervisor::new(CancellationToken::new(), observer.clone()),
            board: Arc::new(Mutex::new(BTreeMap::new())),
            sync_now: Arc::new(Notify::new()),
            started: Instant::now(),
            analyser: config.analysis.enabled.then(Analyser::default),
            config,
            ledger,
            writer,
            site,
            clients,
            clock,
            guard,
            grants,
            grants_outage,
            observer,
            alerts: Arc::default(),
            http,
            first_hello: None,
        };
        daemon.start_background();
        daemon.after_restore().await;
        daemon.start_backups();
        daemon.start_analysis();
        for p in daemon.config.printers.clone() {
            daemon.start_printer(p);
        }
        daemon.start_readers();
        daemon.start_alerts();
        daemon.start_http();
        daemon
    }

    /// The HTTP listener, when `[http]` is on.
    fn start_http(&mut self) {
        if let Some(bound) = &self.http {
            let routes = web::routes(&self.config, &self.observer, &self.writer)
                .merge(crate::console::router(self.console.clone()));
            web::start(&mut self.tasks, &self.config, bound, routes);
        }
    }

    /// After a reload: the listener again with the new settings, on its new
    /// address if that changed (if it cannot be taken, the listener is off
    /// and that is logged).
    async fn restart_http(&mut self, old: Option<std::net::SocketAddr>) {
        self.tasks.stop(web::TASK, STOP_GRACE).await;
        let new = self.config.http.as_ref().map(|h| h.listen);
        if new != old {
            self.http = None;
            match web::bind(&self.config) {
                Ok(bound) => self.http = bound,
                Err(e) => tracing::error!(error = %crate::error_chain(&e),
                    "HTTP listener off: cannot take its new address"),
            }
        }
        self.start_http();
    }

    pub(super) fn printers(&self) -> usize {
        self.config.printers.len()
    }

    /// Answers controls, and pings the watchdog, until `shutdown` resolves.
    pub(super) async fn answer(
        &mut self,
        shutdown: impl Future<Output = ()>,
        controls: &mut mpsc::UnboundedReceiver<Control>,
    ) {
        let watchdog = sd_notify::watchdog_enabled().map(|d| d / 2);
        let mut tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        let mut open = true;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                control = controls.recv(), if open => match control {
                    Some(Control::Reload(config)) => self.reload(*config).await,
                    Some(Control::Status) => self.log_status(),
                    None => open = false,
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

    /// Stops every task, reader threads included, letting charges in flight
    /// commit; those still running after `grace` are aborted. Dropping the
    /// daemon drops its writer handle.
    pub(super) async fn stop(self, grace: Duration) {
        self.tasks.shutdown(grace).await;
    }

    /// The clock guard's check, the grants syncer and the expiry sweep.
    fn start_background(&mut self) {
        let (guard, w) = (self.guard.clone(), self.writer.clone());
        self.tasks.start("clock-guard", move |stop| {
            guard.clone().watch(w.clone(), stop)
        });
        let (w, s, c) = (self.writer.clone(), self.site.clone(), self.clock.clone());
        let wakers = tasks::SyncWakers {
            config: self.grants.subscribe(),
            now: self.sync_now.clone(),
            trust: self.guard.subscribe(),
        };
        let (outage, o) = (self.grants_outage.clone(), self.observer.clone());
        self.tasks.start("grants-sync", move |stop| {
            let (w, s, c) = (w.clone(), s.clone(), c.clone());
            tasks::syncer(w, s, c, wakers.clone(), outage.clone(), o.clone(), stop)
        });
        let (w, c, trust) = (
            self.writer.clone(),
            self.clock.clone(),
            self.guard.subscribe(),
        );
        self.tasks.start("expiry-sweep", move |stop| {
            tasks::expiry_sweeper(w.clone(), c.clone(), trust.clone(), stop)
        });
        self.start_shipper();
    }

    /// The shipper, when `[central]` is on.
    fn start_shipper(&mut self) {
        if let Some(central) = self.config.central.clone() {
            let (greeted, first_hello) = watch::channel(false);
            let ship = super::shipper::Shipper {
                writer: self.writer.clone(),
                ledger: self.ledger.clone(),
                cfg: central,
                observer: self.observer.clone(),
                site: self.site.clone(),
                greeted,
            };
            self.tasks.start("central-ship", move |stop| {
                super::shipper::shipper(ship.clone(), stop)
            });
            self.first_hello = Some(first_hello);
        }
    }

    /// A ledger `tallyd restore` put in place: a chain site's printers are
    /// polled only once the shipper's first hello imported what the centre
    /// holds and the backup lacks (so a job polled again is already
    /// recorded), or after [`RESTORED_HELLO`] (the centre away: it is
    /// imported when the centre answers). A single site has nothing to
    /// import: the mark is removed.
    async fn after_restore(&mut self) {
        let mark = crate::ledger::files::restored_mark(&self.ledger);
        if !mark.exists() {
            return;
        }
        let Some(mut first_hello) = self.first_hello.take() else {
            if let Err(e) = std::fs::remove_file(&mark) {
                tracing::warn!(path = %mark.display(), error = %e, "cannot remove the restored mark");
            }
            return;
        };
        let waited = tokio::time::timeout(RESTORED_HELLO, first_hello.wait_for(|g| *g)).await;
        if waited.is_err() {
            tracing::warn!(waited = ?RESTORED_HELLO,
                "restored ledger: the centre did not answer; printers are polled now and what the ledger lost is imported when it does");
        }
    }

    /// The scheduled backups, when `[backup]` is on.
    fn start_backups(&mut self) {
        if !self.config.backup.enabled {
            return;
        }
        let schedule = super::backups::Schedule {
            ledger: self.ledger.clone(),
            config: self.config.backup.clone(),
            tz: self.config.tz,
        };
        let (clock, o) = (self.clock.clone(), self.observer.clone());
        self.tasks.start("backup", move |stop| {
            super::backups::scheduler(schedule.clone(), clock.clone(), o.clone(), stop)
        });
    }

    /// The alerts task, when `[alerts]` is configured.
    fn start_alerts(&mut self) {
        let Some(config) = self.config.alerts.clone() else {
            return;
        };
        let task = super::alerts::AlertsTask {
            config,
            origin: crate::alerts::Origin {
                site: self.config.site_name.clone(),
                host: super::alerts::host_name(),
                tz: self.config.tz,
            },
            observer: self.observer.clone(),
            state: self.alerts.clone(),
        };
        self.tasks.start("alerts", move |stop| {
            super::alerts::alerter(task.clone(), stop)
        });
    }

    fn tap_context(&self) -> TapContext {
        TapContext {
            readers: self.config.readers.clone(),
            printers: self.config.printers.clone(),
            clients: self.clients.clone(),
            writer: self.writer.clone(),
            site: self.site.clone(),
            clock: self.clock.clone(),
            observer: self.observer.clone(),
            more_credit: self
                .config
                .central
                .as_ref()
                .and_then(|c| super::shipper::escrow::asker(c, &self.writer, &self.clock)),
        }
    }

    /// One task per reader (its thread and its taps), and the sweep that
    /// closes sessions at their maximum length.
    fn start_readers(&mut self) {
        let ctx = self.tap_context();
        for cfg in self.config.readers.clone() {
            let ctx = ctx.clone();
            self.tasks.start(format!("reader:{}", cfg.id), move |stop| {
                tasks::reader(cfg.clone(), ctx.clone(), stop)
            });
        }
        self.tasks.start("session-sweep", move |stop| {
            tasks::session_sweeper(ctx.clone(), stop)
        });
    }

    async fn stop_readers(&mut self) {
        self.tasks.stop("session-sweep", STOP_GRACE).await;
        self.tasks.stop_prefixed("reader:", STOP_GRACE).await;
    }

    fn start_printer(&mut self, p: PrinterConfig) {
        let (client, writer) = (self.clients.get(&p.id).clone(), self.writer.clone());
        let (site, board, clock) = (self.site.clone(), self.board.clone(), self.clock.clone());
        let (analyser, observer) = (self.analyser.clone(), self.observer.clone());
        self.tasks.start(format!("printer:{}", p.id), move |stop| {
            let poller = Poller::new(
                p.clone(),
                client.clone(),
                writer.clone(),
                site.clone(),
                board.clone(),
                clock.clone(),
                observer.clone(),
            );
            match analyser.clone() {
                Some(a) => poller.with_analyser(a).run(stop),
                None => poller.run(stop),
            }
        });
    }

    /// The spool analysis's worker, when `[analysis]` is on.
    fn start_analysis(&mut self) {
        let Some(analyser) = self.analyser.clone() else {
            return;
        };
        let a = self.config.analysis;
        let limits = Limits {
            max_bytes: a.max_bytes,
            max_pages: a.max_pages,
            max_time: a.timeout,
        };
        let (w, c) = (self.writer.clone(), self.clock.clone());
        self.tasks.start("spool-analysis", move |stop| {
            analyser.clone().run(w.clone(), c.clone(), limits, stop)
        });
    }

    async fn stop_printer(&mut self, id: &str) {
        self.tasks.stop(&format!("printer:{id}"), STOP_GRACE).await;
        if let Ok(mut b) = self.board.lock() {
            b.remove(id);
        }
        self.observer.printer_removed(id);
    }

    /// A new config (SIGHUP, loaded and checked by the caller): restart only
    /// the printers whose settings changed, the readers if theirs (or the
    /// printers) did; then sync the grants file.
    async fn reload(&mut self, mut config: Config) {
        let ships = self.keep_site_id(&mut config);
        match self.clients.renew(&config.printers) {
            Ok(clients) => self.clients = clients,
            Err((printer, e)) => {
                tracing::error!(printer = %printer, error = %crate::error_chain(&e),
                    "config not reloaded: cannot set up the printer's HTTP client");
                return;
            }
        }
        self.site.set(config.site());
        let (mut added, mut changed, mut removed) = (Vec::new(), Vec::new(), Vec::new());
        for old in self.config.printers.clone() {
            match config.printers.iter().find(|p| p.id == old.id) {
                None => {
                    self.stop_printer(&old.id).await;
                    removed.push(old.id);
                }
                Some(p) if *p != old => {
                    self.stop_printer(&old.id).await;
                    self.start_printer(p.clone());
                    changed.push(old.id);
                }
                Some(_) => {}
            }
        }
        for p in &config.printers {
            if !self.config.printers.iter().any(|old| old.id == p.id) {
                added.push(p.id.clone());
                self.start_printer(p.clone());
            }
        }
        let readers_changed =
            config.readers != self.config.readers || config.printers != self.config.printers;
        let backups_changed = config.backup != self.config.backup;
        let alerts_changed = (&config.alerts, &config.site_name, config.tz)
            != (&self.config.alerts, &self.config.site_name, self.config.tz);
        let http_changed = config.http != self.config.http
            || config.grants.as_ref().map(|g| g.interval)
                != self.config.grants.as_ref().map(|g| g.interval)
            || backups_changed;
        let old_listen = self.config.http.as_ref().map(|h| h.listen);
        let _ = self.grants.send(config.grants.clone());
        self.sync_now.notify_one();
        tracing::info!(printers = config.printers.len(), added = %added.join(","),
            changed = %changed.join(","), removed = %removed.join(","), "config reloaded");
        self.console.set_config(config.clone());
        self.config = config;
        if readers_changed {
            self.stop_readers().await;
            let ids: Vec<&str> = self.config.readers.iter().map(|r| r.id.as_str()).collect();
            self.observer.readers_configured(&ids);
            self.start_readers();
        }
        if backups_changed {
            self.tasks.stop("backup", STOP_GRACE).await;
            self.start_backups();
        }
        if alerts_changed {
            self.tasks.stop("alerts", STOP_GRACE).await;
            self.start_alerts();
        }
        if http_changed {
            self.restart_http(old_listen).await;
        }
        if ships {
            self.restart_shipper().await;
        }
        notify(&[NotifyState::Ready]);
    }

    /// A reload may change everything in `[central]` but the site id (the
    /// ledger ships as one site for good): a new `site_id`, or `[central]`
    /// added to a ledger that ships as another site, keeps the old
    /// section, with one ERROR. Returns whether `[central]` is there, before
    /// or after (the shipper then starts again, reading its token,
    /// certificate and key files afresh).
    fn keep_site_id(&self, config: &mut Config) -> bool {
        let old = self.config.central.as_ref().map(|c| c.site_id.as_str());
        let new = config.central.as_ref().map(|c| c.site_id.as_str());
        if let (Some(old), Some(new)) = (old, new) {
            if old != new {
                tracing::error!(site_id = %old, refused = ?new,
                    "[central] site_id cannot change on reload; the old [central] is kept");
                config.central = self.config.central.clone();
            }
        }
        self.config.central.is_some() || config.central.is_some()
    }

    /// After a reload: the shipper again with the new `[central]` (turning
    /// the outbox on if it is new), or stopped if it was removed (the
    /// outbox keeps recording; it ships once `[central]` is back).
    async fn restart_shipper(&mut self) {
        self.tasks.stop("central-ship", STOP_GRACE).await;
        let Some(central) = self.config.central.clone() else {
            tracing::warn!("[central] removed: nothing is shipped; the outbox keeps every change until it is back");
            return;
        };
        let (site, issue) = (central.site_id.clone(), central.issue);
        let on = self
            .writer
            .call_async(move |c| {
                crate::ledger::outbox::enable(c, &site)?;
                crate::ledger::escrow::set_issue(c, issue)
            })
            .await;
        if let Err(e) = on {
            tracing::error!(error = %crate::error_chain(&e),
                "[central] not started: the ledger cannot ship as this site");
            return;
        }
        tracing::info!(url = %central.url, site_id = %central.site_id, "central shipper restarted with the reloaded [central]");
        self.start_shipper();
    }

    /// SIGUSR1: one line with every printer's state and the tasks' restarts.
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
        let restarts: Vec<String> = self
            .tasks
            .restarts()
            .iter()
            .map(|(task, n)| format!("{task}={n}"))
            .collect();
        tracing::info!(
            printers_up = up,
            printers_down = down.len(),
            down = %down.join(","),
            jobs_charged = charged,
            uptime_s = self.started.elapsed().as_secs(),
            restarts = %restarts.join(","),
            printers = %detail.join("; "),
            "status"
        );
    }
}
