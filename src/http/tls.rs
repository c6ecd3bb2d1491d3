//! The listener's TLS (`[http] cert_file`, `key_file`): a [`Listener`] for
//! axum's server loop that hands it connections only once their TLS
//! handshake is done. Each handshake runs in a task of its own, bounded by
//! [`HANDSHAKE_TIMEOUT`], so a client that connects and says nothing (or
//! speaks plain HTTP) holds up no one else.

use axum::serve::Listener;
use rustls::ServerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections whose handshake finished, queued for the server loop.
const READY: usize = 64;

/// TCP connections accepted on a listener, handed on once TLS is up.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: JoinHandle<()>,
}

impl TlsListener {
    /// Accepts on `tcp` (in a task of its own) and shakes hands with each
    /// client as `config` says.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(READY);
        let accepting = tokio::spawn(accept(tcp, TlsAcceptor::from(config), tx));
        Ok(TlsListener {
            ready,
            local,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Accepts connections until aborted (when the [`TlsListener`] is
/// dropped); each one's handshake in a task of its own.
async fn accept(
    mut tcp: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (stream, peer) = Listener::accept(&mut tcp).await;
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            let shake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
            match shake {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                // A client that is not speaking TLS, or gave up: nothing a
                // manager need see, and anyone could make one a second.
                Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
            }
        });
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task ended (it runs until aborted): no more
            // connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
