//! The optional HTTP listener (`[http]`): Prometheus `/metrics`
//! ([`metrics`]), `/healthz` ([`health`]), and whatever routes the daemon
//! merges in beside them. axum serves them; [`bind`] takes the address at
//! start (so a daemon whose address is in use refuses to start) and
//! [`serve`] answers on it until cancelled, in plain HTTP or, given a TLS
//! setup, in TLS only (axum-server, as `tallyd central` serves HTTPS).

pub mod health;
pub mod metrics;

use axum::Router;
use rustls::ServerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Why the listener could not take its address.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for HTTP on {addr}")]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// Takes `addr` (a std listener, so each run of the supervised task can
/// serve a clone of it).
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, BindError> {
    let bound = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| BindError { addr, source })?;
    Ok(bound)
}

/// Answers `router` on `listener` until `stop` is cancelled; requests in
/// flight then finish. With `tls`, only TLS clients are served. An error
/// accepting ends it (for the supervisor to restart it), logged.
pub async fn serve(
    listener: &std::net::TcpListener,
    tls: Option<Arc<ServerConfig>>,
    router: Router,
    stop: CancellationToken,
) {
    let listener = match listener.try_clone() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot serve HTTP");
            return;
        }
    };
    // Each request knows its peer's address (the console's login limit
    // per address reads it).
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let served = match tls {
        None => match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => {
                axum::serve(listener, service)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
            }
            Err(e) => Err(e),
        },
        Some(config) => serve_tls(listener, config, service, stop).await,
    };
    if let Err(e) = served {
        tracing::error!(error = %e, "HTTP listener failed");
    }
}

/// `service` on `listener` in TLS only, until `stop` is cancelled; requests
/// in flight then finish. Each handshake runs in its connection's own task,
/// bounded to 10 s (axum-server's default), so a client that says nothing
/// or speaks plain HTTP holds up no one.
async fn serve_tls(
    listener: std::net::TcpListener,
    config: Arc<ServerConfig>,
    service: axum::extract::connect_info::IntoMakeServiceWithConnectInfo<Router, SocketAddr>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let stopping = handle.clone();
    let stopper = tokio::spawn(async move {
        stop.cancelled().await;
        stopping.graceful_shutdown(None);
    });
    let config = axum_server::tls_rustls::RustlsConfig::from_config(config);
    let served = match axum_server::from_tcp_rustls(listener, config) {
        Ok(server) => server.handle(handle).serve(service).await,
        Err(e) => Err(e),
    };
    stopper.abort();
    served
}
