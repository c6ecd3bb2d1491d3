//! The optional HTTP listener (`[http]`): Prometheus `/metrics`
//! ([`metrics`]), `/healthz` ([`health`]), and whatever routes the daemon
//! merges in beside them. axum serves them; [`bind`] takes the address at
//! start (so a daemon whose address is in use refuses to start) and
//! [`serve`] answers on it until cancelled, in plain HTTP or, given a TLS
//! setup, in TLS only ([`tls`]).

pub mod health;
pub mod metrics;
pub mod tls;

use axum::serve::ListenerExt;
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
    let listener = match listener
        .try_clone()
        .and_then(tokio::net::TcpListener::from_std)
    {
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
        None => {
            axum::serve(listener, service)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        }
        Some(config) => {
            let listener = match tls::TlsListener::new(listener, config) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "cannot serve HTTPS");
                    return;
                }
            };
            // axum gives handlers the peer's address (`ConnectInfo`) for a
            // listener wrapped by `tap_io`; a listener of ours alone has none.
            let listener = listener.tap_io(|_| {});
            axum::serve(listener, service)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        }
    };
    if let Err(e) = served {
        tracing::error!(error = %e, "HTTP listener failed");
    }
}
