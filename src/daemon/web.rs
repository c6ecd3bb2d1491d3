//! The daemon's HTTP listener (`[http]`): the routes it serves and its
//! supervised task. The address is taken at start ([`bind`]), so a daemon
//! whose address is in use refuses to start; a reload that changes it
//! takes the new one (logged if it cannot).

use super::supervisor::Supervisor;
use crate::config::Config;
use crate::http::{self, health, metrics};
use crate::ledger::writer::WriterHandle;
use crate::observe::Observer;
use axum::Router;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

/// The task's name.
pub const TASK: &str = "http";

/// The bound listener, shared by every run of the task.
#[derive(Clone)]
pub struct Bound {
    listener: Arc<TcpListener>,
}

/// Takes `[http] listen`, when configured; logs it.
pub fn bind(config: &Config) -> Result<Option<Bound>, http::BindError> {
    let Some(h) = &config.http else {
        return Ok(None);
    };
    let listener = http::bind(h.listen)?;
    let addr = listener.local_addr().unwrap_or(h.listen);
    let tls = h.tls.is_some();
    tracing::info!(listen = %addr, tls, "HTTP listener started (/metrics, /healthz, /console)");
    Ok(Some(Bound {
        listener: Arc::new(listener),
    }))
}

/// Every route the listener serves: `/metrics` and `/healthz`; other
/// routers (the web console) are merged in here.
pub fn routes(config: &Config, observer: &Observer, writer: &WriterHandle) -> Router {
    let build = metrics::BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        schema: crate::ledger::schema::SCHEMA_VERSION,
    };
    let h = config.http.clone().unwrap_or(crate::config::HttpConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        grants_max_age: None,
        backup_max_age: None,
        tls: None,
    });
    let bounds = health::Bounds {
        grants: config.grants.as_ref().map(|g| h.grants_max_age(g.interval)),
        backup: config
            .backup
            .enabled
            .then(|| h.backup_max_age(config.backup.every)),
    };
    metrics::routes(observer.clone(), build).merge(health::routes(
        observer.clone(),
        writer.clone(),
        bounds,
    ))
}

/// Starts the listener's task on `bound`, serving `router`, in TLS when
/// `[http]` has a certificate (if its TLS setup cannot be made, which
/// loading the config already checked, the listener stays off, logged).
pub fn start(tasks: &mut Supervisor, config: &Config, bound: &Bound, router: Router) {
    let identity = config.http.as_ref().and_then(|h| h.tls.as_ref());
    let tls = match identity
        .map(|i| i.server_config().map(Arc::new))
        .transpose()
    {
        Ok(tls) => tls,
        Err(e) => {
            tracing::error!(error = %crate::error_chain(&e), "HTTP listener off: cannot use its certificate");
            return;
        }
    };
    let listener = bound.listener.clone();
    tasks.start(TASK, move |stop| {
        let (listener, tls, router) = (listener.clone(), tls.clone(), router.clone());
        async move { http::serve(&listener, tls, router, stop).await }
    });
}
