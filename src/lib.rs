//! tallyd: print- and time-accounting for coworking spaces.
//!
//! The modules stand on floors; each imports only from the floors below it.
//!
//! 1. Leaves, which import nothing from tallyd:
//!    - [`ids`]: card ids, how readers frame them, print user names;
//!    - [`ipp_uri`]: where an `ipp://` URI is posted;
//!    - [`site`]: the site settings money depends on, and the live handle
//!      every task reads them through;
//!    - [`clock`], [`money`]: calendar arithmetic in the site's time zone,
//!      the `Clock` the daemon reads time through, and amounts as managers
//!      read and type them, with the one bound on amounts (`MAX_UNITS`);
//!    - [`pricing`]: what a print job costs, a pure function (it imports
//!      only that bound, from the leaf beside it);
//!    - [`error`]: any error as one line with all its causes
//!      ([`error_chain`]), for log lines and the command line;
//!    - [`tls`]: whom a TLS peer must be (system roots, a `ca_file`, a
//!      pinned fingerprint), why a peer's certificate was refused, and a
//!      server's certificate and key (`tls::server_config`, read and
//!      checked by `tls::server`: `tallyd central`'s and `[http]`'s);
//!    - [`observe`]: what the daemon's tasks observe (printers and readers
//!      up or down, grants syncs, backups, restarts, jobs by outcome, commit
//!      latency) as a snapshot and a broadcast of one-off notices, for
//!      metrics, health and alerts;
//!    - [`analysis`]: what a job's document holds before it prints (its
//!      pages, which are colour, the impressions a layout makes of them),
//!      through Ghostscript or the format's own headers; it imports only
//!      `pricing::Sides` and `error_chain` from the leaves beside it.
//! 2. [`config`]: the site config file, parsed and validated with file, line
//!    and field in every error.
//! 3. [`room`]: the pure rules of room sessions (what a tap does, how minutes
//!    are counted) and the clocks they are measured on.
//! 4. [`ledger`]: the SQLite ledger, the only module that holds SQL. Lots,
//!    usages, holds, overage and the append-only history; finished jobs,
//!    card and print-user owners, room sessions, the grants catalog and the
//!    sync state; the group-committing writer; the read side (balances,
//!    statements, monthly reports). Pure rules (`allocate`, `usage::rules`)
//!    decide the money and the SQL applies them.
//! 5. The boundaries, each with a pure core and its IO:
//!    - [`grants`]: the central grants file: parse and validate, plan a sync
//!      (`reconcile`), fetch it, apply the plan through the ledger;
//!    - [`printer`]: IPP printers: the client, the requests, what a job
//!      costs (`jobs`), the per-printer poller, held release;
//!    - [`reader`]: serial card readers: pure frame decoders and the port
//!      threads that feed them;
//!    - [`alerts`]: telling a person: the pure rules (what the observer
//!      saw and the time → which alerts to send) and the alert command and
//!      webhook;
//!    - [`http`]: the optional HTTP listener (axum): Prometheus `/metrics`
//!      from the observer's snapshot, `/healthz` (a pure verdict plus a
//!      round trip to the ledger writer), and the routes others merge in,
//!      in plain HTTP or TLS (axum-server);
//!    - [`central`]: the centre of a chain (`tallyd central`, issue 18):
//!      the site protocol (`central::protocol`, shared with the daemon's
//!      shipper) served over HTTP or HTTPS (axum-server) in front of
//!      PostgreSQL, each site known by its token (`central::auth`). Its PostgreSQL
//!      SQL lives inside it (`central::schema`, `central::store`,
//!      `central::report`): the one
//!      exception to "SQL only in the ledger", which holds the site's
//!      SQLite SQL (the outbox included). It imports only leaves.
//! 6. [`console`]: the manager's web console (an axum router of
//!    server-rendered pages): reads the ledger read-only, acts through the
//!    same ledger operations as the CLI, sent to the ledger writer; manager
//!    accounts, sessions, form tokens and login limits.
//! 7. [`daemon`]: `tallyd run`, which orchestrates printers, readers and
//!    rooms (what a tap does lives here), the grants syncer and the sweeps,
//!    as supervised tasks under one cancellation token. Its entry,
//!    `daemon::serve`, takes the config, the ledger, a shutdown future,
//!    reloads and the clock as values.
//! 8. [`cli`] and [`logging`]: the manager's subcommands (and which config
//!    they read, `cli::locate`; the man pages and completions made from
//!    their definition, `tallyd generate`) and the log format; `main.rs`
//!    only calls [`cli::main`].

pub mod alerts;
pub mod analysis;
pub mod central;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod daemon;
pub mod error;
pub mod grants;
pub mod http;
pub mod ids;
pub mod ipp_uri;
pub mod ledger;
pub mod logging;
pub mod money;
pub mod observe;
pub mod pricing;
pub mod printer;
pub mod reader;
pub mod room;
pub mod site;
pub mod tls;

pub use error::error_chain;
