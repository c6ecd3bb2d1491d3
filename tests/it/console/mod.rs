//! The manager's web console: its router served here, on loopback, over
//! the ledger of a real site (and, in the browser tests, beside the real
//! `tallyd run` and its peers), with manager accounts in the site config.
//!
//! - [`refusals`]: plain HTTP: a wrong password, login limits, no session,
//!   a form without its token or sent twice.
//! - [`browser`]: headless Chromium over WebDriver: the manager's day, on
//!   the console the daemon serves.
//! - [`keyboard`]: headless Chromium with the keyboard alone: log in and
//!   find a member; a label on every form control.
//! - [`chain`]: the chain page of a site with `[central]`, beside a real
//!   PostgreSQL and `tallyd central`, with the centre up and then gone.
//! - [`tls`]: the console and `/healthz` over the daemon's own TLS
//!   (`[http] cert_file`, `key_file`), and the key files it refuses.

mod browser;
mod chain;
mod keyboard;
mod refusals;
mod tls;

use crate::support::daemon::{PrinterSpec, Site};
use std::net::SocketAddr;
use std::sync::OnceLock;
use tallyd::clock::Clock;
use tallyd::config::Config;
use tallyd::console::{self, password, ConsoleState};
use tallyd::ledger::writer::Writer;
use tallyd::ledger::Ledger;

pub const MANAGER: &str = "maria";
pub const PASSWORD: &str = "a long test password";

/// The `[console]` section with [`MANAGER`]'s account (hashed once).
pub fn console_section() -> String {
    static HASH: OnceLock<String> = OnceLock::new();
    let hash = HASH.get_or_init(|| password::hash(PASSWORD).expect("hash"));
    format!("\n[console]\n[[console.manager]]\nname = \"{MANAGER}\"\npassword_hash = \"{hash}\"\n")
}

/// A site whose config has the console's managers after `extra`, synced
/// (its ledger made, its members in it).
pub fn site_with(printers: &[PrinterSpec], extra: &str) -> Site {
    let site = Site::new(printers);
    site.write_config_with(printers, &format!("{extra}{}", console_section()));
    site.cli(&["sync"]);
    site
}

/// The console router served on a free loopback port, over the site's
/// ledger, through a ledger writer of its own (beside a daemon's, as the
/// CLI writes beside it). Stopped on drop.
pub struct Served {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Served {
    pub fn start(site: &Site) -> Served {
        let config = Config::load(&site.path("tallyd.toml")).expect("config");
        let path = site.path("ledger.db");
        let ledger = Ledger::open(&path, config.site()).expect("open the ledger");
        let writer = Writer::spawn(ledger).expect("writer");
        let state = ConsoleState::new(config, path, writer.handle(), Clock::system());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app =
                    console::router(state).into_make_service_with_connect_info::<SocketAddr>();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("serve");
            });
            writer.join();
        });
        Served {
            base,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The console served by a daemon's `[http]` listener on `port`.
pub struct Listening(String);

impl Listening {
    pub fn at(port: u16) -> Listening {
        Listening(format!("http://127.0.0.1:{port}"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

/// The value of the hidden `csrf` input of the form posting to `action`
/// in `html`.
pub fn form_token(html: &str, action: &str) -> String {
    let at = html
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form for {action} in:\n{html}"));
    let rest = &html[at..];
    let v = rest
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no token in the form for {action}"));
    let rest = &rest[v + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').expect("end of the token")].to_string()
}
