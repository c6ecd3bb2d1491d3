//! The central grants file: the sync rules on real ledgers ([`sync`]),
//! broken files rejected by the real binary with nothing changed ([`bad`]),
//! and the URL source against a real HTTP server ([`http`]).

mod bad;
mod http;
mod sync;
