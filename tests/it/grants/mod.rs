//! The central grants file: the sync rules on real ledgers ([`sync`]),
//! broken files rejected by the real binary with nothing changed ([`bad`]),
//! the URL source against a real HTTP server ([`http`]), and its
//! credentials, never shown in output or logs ([`secrets`]); HTTPS with a
//! private CA or a self-signed certificate ([`tls`]); teams under the sync
//! rules ([`teams`]) and through the manager's commands ([`teams_cli`]).

mod bad;
mod http;
mod secrets;
mod sync;
mod teams;
mod teams_cli;
mod tls;
