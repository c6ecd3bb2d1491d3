//! tallyd: print- and time-accounting for coworking spaces.
//!
//! - [`ledger`]: the SQLite ledger — lots, usages, holds, overage, the
//!   append-only history, the group-committing writer, and the read side
//!   (balances, statements, monthly reports).
//! - [`pricing`]: what a print job costs, a pure function.
//! - [`config`]: the site config file, parsed and validated with file, line
//!   and field in every error.
//! - [`cli`]: the manager's subcommands; `main.rs` only calls [`cli::main`].
//! - [`money`], [`clock`]: display of amounts and calendar arithmetic in the
//!   site's time zone.

pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod grants;
pub mod ids;
pub mod ipp_uri;
pub mod ledger;
pub mod logging;
pub mod money;
pub mod pricing;
pub mod printer;
pub mod reader;
pub mod room;
pub mod site;
