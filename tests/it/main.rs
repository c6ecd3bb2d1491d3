//! tallyd's integration tests: one binary, one module per area, each test in
//! its own temporary directory against the real `tallyd` binary or the real
//! library, and real peers where there is one.
//!
//! - [`analysis`]: pages and colour of a corpus of generated documents.
//! - [`bounds`]: amounts out of bounds refused at every entry point.
//! - [`chain_sim`]: a chain of site daemons, the centre and PostgreSQL
//!   under seeded faults, checked against an oracle.
//! - [`cli`]: the manager's commands on temporary ledgers.
//! - [`console`]: the manager's web console, over HTTP and in a real browser.
//! - [`grants`]: syncing the central grants file (rules, broken files, URL).
//! - [`ledger_crash`]: SIGKILL at random moments during group commits.
//! - [`ledger_integrity`]: `tallyd check-ledger` and the hash chains against
//!   tampered, byte-flipped and trigger-less ledgers.
//! - [`daemon`]: `tallyd run` against real printers, readers and signals.
//! - [`fuzz_regressions`]: inputs the fuzz targets found, replayed.
//! - [`install`]: which config a command reads when none is named,
//!   `--version`, the man pages and completions of the Debian package.
//! - [`peers_smoke`]: the peers of [`support`] do what they promise.
//! - [`support`]: the peers (one file each) and the helpers that run tallyd.
//!
//! The ledger property test is its own binary (`tests/ledger_props/`).

mod analysis;
mod bounds;
mod central;
mod central_import;
mod central_lots;
mod central_report;
mod central_watch;
mod chain_escrow;
mod chain_home;
mod chain_recall;
mod chain_sim;
mod cli;
mod console;
mod daemon;
mod fuzz_regressions;
mod grants;
mod install;
mod ledger_crash;
mod ledger_integrity;
mod peers_smoke;
mod support;
