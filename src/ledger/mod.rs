//! The ledger: one SQLite file holding members, lots of credit, usages and the
//! append-only history that explains every change to a lot. It owns its
//! tables: no SQL is written anywhere else in tallyd.
//!
//! The rules of `design.md` live here: consumption order ([`allocate`]),
//! idempotent debits, two-phase holds, overage and refunds ([`usage`], whose
//! money decisions are the pure [`usage::rules`]), expiry ([`lots`]). Every
//! operation is a function over a [`rusqlite::Connection`] inside a
//! transaction, so the same code runs for a single CLI command ([`Ledger`])
//! and in the daemon's group-committing writer ([`writer`]).
//!
//! - [`lots`], [`history`]: credit issued, adjusted, voided;
//! - [`expiry`]: expired, and expiries a wrong clock recorded given back;
//! - [`clock_marks`]: the newest row dated by a clock, and the clock mark
//!   (what the clock rule, [`crate::clock::guard`], judges against);
//! - [`usage`]: debits, holds, settles, voids, refunds; [`detail`] is what a
//!   usage was, typed;
//! - [`jobs`]: a finished print job, recorded once (debit or settle);
//! - [`analyses`]: what the spool analysis found in a job's document;
//! - [`owners`]: who a card or print user name belongs to, unknown cards;
//! - [`sessions`]: room sessions, charged in time credits;
//! - [`catalog`], [`sync_state`]: the grants file as last applied;
//! - [`teams`]: teams as last applied, whose pools usage draws on;
//! - [`query`]: balances, statements, reports;
//! - [`schema`]: migrations and the check that lots equal their history;
//!   [`file_check`]: SQLite's `quick_check` of the whole file, timed;
//! - [`chain`], [`integrity`]: the hash chains over the money rows (pure,
//!   and their SQL); [`audit`]: every check `tallyd check-ledger` runs;
//! - [`backup`]: backups checked before they count, and restore.

pub mod allocate;
pub mod analyses;
pub mod audit;
pub mod backup;
pub mod catalog;
pub mod cause;
pub mod chain;
pub mod clock_marks;
pub mod detail;
pub mod enrolments;
pub mod escrow;
pub mod expiry;
pub mod file_check;
pub mod files;
pub mod history;
pub mod integrity;
pub mod jobs;
pub mod lots;
pub mod lots_verified;
pub mod outbox;
pub mod outbox_backfill;
pub mod outbox_import;
pub mod owners;
pub mod query;
pub mod schema;
pub mod sessions;
pub mod sync_state;
pub mod teams;
pub mod usage;
pub mod writer;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::site::{OveragePolicy, PolicyKind, Site};
pub use allocate::SourceKind;
pub use cause::{IoCause, SqliteCause};
pub use usage::{Charge, HoldOutcome, Origin, Payable, UsageRequest};

/// Unix time in seconds, UTC. Every timestamp in the ledger is one of these.
pub type Ts = i64;

/// The identity of the printing credit; time credits have their own ids.
pub const PRINTING: &str = "printing";

/// Everything that can go wrong in the ledger. Each keeps its cause, and no
/// variant repeats its cause's text: [`crate::error_chain`] prints the line.
///
/// A failure of the file itself (SQLite's errors, a damaged file, a commit
/// that failed) is named by its file at the ledger's edges
/// ([`LedgerError::at`]): `ledger /var/lib/tallyd/ledger.db: disk full`.
/// A refused operation (an unknown member, a conflicting key) is not.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Sqlite(SqliteCause),
    /// A failure of the ledger file `ledger`, named once.
    #[error("ledger {}", .ledger.display())]
    At {
        ledger: PathBuf,
        #[source]
        source: Box<LedgerError>,
    },
    #[error("no ledger at {0} (run `tallyd grant` or the daemon once to create one)")]
    NotFound(PathBuf),
    #[error("schema version {found} is newer than this tallyd's ({supported}); upgrade tallyd")]
    TooNew { found: i64, supported: i64 },
    #[error("lot {lot} of member {member} disagrees with its history: remaining {remaining} but history sums to {history_sum}; granted {granted} but history grants {granted_sum}")]
    Inconsistent {
        lot: i64,
        member: String,
        remaining: i64,
        history_sum: i64,
        granted: i64,
        granted_sum: i64,
    },
    #[error("no job in review with key `{0}` (see `tallyd review`)")]
    UnknownReview(String),
    #[error("the review of `{key}` is already resolved: {outcome}")]
    ReviewResolved { key: String, outcome: String },
    #[error("an amount is too large to add up (integer overflow); nothing was written")]
    Overflow,
    /// A read met amounts that cannot be added up: the ledger holds what no
    /// tallyd writes (see `tallyd check-ledger`).
    #[error("the ledger holds amounts too large to add up (integer overflow); see `tallyd check-ledger`")]
    OverflowInLedger,
    #[error("unknown resource type `{0}` (no time credit pays for it; resource types come from the grants file)")]
    UnknownResourceType(String),
    /// The ledger at `path` could not be created, opened for writing or
    /// made 0600.
    #[error("ledger {}: {what}", .path.display())]
    Files {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: IoCause,
    },
    #[error("the file is damaged (SQLite quick_check: {0}); restore a backup")]
    Malformed(String),
    #[error("the append-only trigger `{0}` is missing: its history could be edited")]
    MissingTrigger(&'static str),
    #[error("the {table} hash chain is broken: {table} {what}; run `tallyd check-ledger`")]
    ChainBroken {
        table: &'static str,
        what: chain::Break,
    },
    #[error("cannot be written")]
    NotWritable(#[source] SqliteCause),
    /// A ledger of an older schema is backed up before it is migrated; if
    /// that fails, it is not migrated.
    #[error("cannot back it up before migrating it from schema {from}; nothing was migrated")]
    BackupBeforeMigration {
        from: i64,
        #[source]
        source: Box<backup::BackupError>,
    },
    #[error("this ledger ships to the centre as site `{ledger}`, but `[central] site_id` says `{config}`; a ledger belongs to one site")]
    OtherSite { ledger: String, config: String },
    #[error("this ledger has no outbox: `tallyd central import` needs `[central]` in the config")]
    OutboxOff,
    #[error("the centre already acknowledged this ledger's entries (epoch {epoch}, up to seq {acked_seq}); {missing} older rows can no longer go first, nothing was imported (import before the daemon first ships)")]
    AlreadyShipped {
        epoch: i64,
        acked_seq: i64,
        missing: i64,
    },
    #[error("unknown member `{0}`")]
    UnknownMember(String),
    #[error("no open room session {0} (ended already, or its reader is gone from the config)")]
    UnknownSession(i64),
    #[error("member `{0}` is closed")]
    MemberClosed(String),
    #[error("card {card} is {member}'s in the grants file, which wins; not enrolled")]
    CardInGrantsFile { card: String, member: String },
    #[error("unknown team `{0}` (teams come from the grants file)")]
    UnknownTeam(String),
    #[error("unknown credit `{0}` (time credits come from the grants file)")]
    UnknownCredit(String),
    #[error("idempotency key `{0}` was already used for different content; nothing was charged")]
    KeyConflict(String),
    #[error("no usage with key `{0}`")]
    UnknownUsage(String),
    #[error("`{0}` is not a hold")]
    NotAHold(String),
    #[error("hold `{key}` is already {outcome}")]
    AlreadyResolved { key: String, outcome: String },
    #[error("`{0}` was already refunded")]
    AlreadyRefunded(String),
    #[error("`{0}` charged nothing, so there is nothing to refund")]
    NothingToRefund(String),
    #[error("hold `{0}` is still open; settle or void it before refunding")]
    HoldOpen(String),
    /// An amount outside `least..=MAX_UNITS`: every entry point bounds
    /// amounts before they reach the ledger, which checks again before it
    /// writes anything.
    #[error("amount must be from {least} to {max}, got {amount}", max = crate::money::MAX_UNITS)]
    InvalidAmount { least: i64, amount: i64 },
    #[error("no lot {0}")]
    UnknownLot(i64),
    #[error("the ledger writer has stopped")]
    WriterGone,
    /// The writer's transaction did not commit (or could not begin, or a
    /// savepoint in it could not close). One SQLite error answers every job
    /// of the batch, so they share it.
    #[error("commit failed, nothing in this batch was written")]
    CommitFailed(#[source] SqliteCause),
}

impl From<rusqlite::Error> for LedgerError {
    fn from(e: rusqlite::Error) -> LedgerError {
        LedgerError::Sqlite(SqliteCause::new(e))
    }
}

impl LedgerError {
    /// This error, named by the ledger file `ledger` if it is a failure of
    /// the file (not a refused operation) and not named yet.
    pub fn at(self, ledger: &Path) -> LedgerError {
        match self {
            LedgerError::Sqlite(_)
            | LedgerError::NotWritable(_)
            | LedgerError::CommitFailed(_)
            | LedgerError::Malformed(_)
            | LedgerError::MissingTrigger(_)
            | LedgerError::ChainBroken { .. }
            | LedgerError::TooNew { .. }
            | LedgerError::Inconsistent { .. } => LedgerError::At {
                ledger: ledger.to_path_buf(),
                source: Box::new(self),
            },
            other => other,
        }
    }

    /// Whether the ledger file cannot be used now (full, read-only, gone):
    /// every write fails alike until it can, so callers say it once.
    pub fn is_file_failure(&self) -> bool {
        match self {
            LedgerError::At { source, .. } => source.is_file_failure(),
            LedgerError::Sqlite(c) | LedgerError::NotWritable(c) | LedgerError::CommitFailed(c) => {
                c.is_file_failure()
            }
            LedgerError::Files { .. } | LedgerError::WriterGone | LedgerError::Malformed(_) => true,
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, LedgerError>;

/// `amount` if it is from `least` (0 or 1) to [`crate::money::MAX_UNITS`],
/// else [`LedgerError::InvalidAmount`]: the ledger's last line against an
/// amount no entry point should have let through.
pub(crate) fn bounded(amount: i64, least: i64) -> Result<i64> {
    if amount >= least && crate::money::non_negative(amount).is_ok() {
        Ok(amount)
    } else {
        Err(LedgerError::InvalidAmount { least, amount })
    }
}

/// `a + b`, or [`LedgerError::Overflow`] rather than a wrapped sum.
pub(crate) fn add(a: i64, b: i64) -> Result<i64> {
    a.checked_add(b).ok_or(LedgerError::Overflow)
}

/// `a - b`, or [`LedgerError::Overflow`] rather than a wrapped difference.
pub(crate) fn sub(a: i64, b: i64) -> Result<i64> {
    a.checked_sub(b).ok_or(LedgerError::Overflow)
}

/// The sum of `amounts`, or [`LedgerError::Overflow`].
pub(crate) fn sum(amounts: impl IntoIterator<Item = i64>) -> Result<i64> {
    amounts.into_iter().try_fold(0, add)
}

/// Sets the pragmas every connection needs: WAL, full sync, foreign keys, and
/// a busy timeout so readers and the writer wait for each other briefly
/// instead of failing.
///
/// Query plans do not depend on bound values (SQLite's query planner
/// stability guarantee): otherwise a statement whose plan SQLite could
/// tailor to a value is compiled again whenever its values change, which
/// for two of a debit's statements was every debit (with fixed plans a
/// debit's CPU fell from 106 to about 65 us, `cargo bench --bench ledger`).
/// The ledger has no statistics and no partial index that needs a value to
/// be chosen.
fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

/// WAL pages between automatic checkpoints.
const WAL_CHECKPOINT_PAGES: i64 = 16_000;

/// A ledger connection that runs each operation in its own transaction.
/// Its errors name its file ([`LedgerError::at`]).
pub struct Ledger {
    conn: Connection,
    site: Site,
    path: PathBuf,
    /// The backup taken before this open migrated the schema, if it did.
    migration_backup: Option<backup::Written>,
}

impl Ledger {
    /// Opens (creating if needed) the ledger for writing: WAL journal,
    /// `synchronous=FULL`, schema migrated, the lots changed since the last
    /// open checked against their history. A ledger of an older schema is backed up first, into
    /// [`backup::default_dir`].
    pub fn open(path: &Path, site: Site) -> Result<Self> {
        Ledger::open_with_backups(path, site, &backup::default_dir(path))
    }

    /// As [`Ledger::open`], with backups before a migration in `backups`.
    pub fn open_with_backups(path: &Path, site: Site, backups: &Path) -> Result<Self> {
        let files = |what| {
            move |e: std::io::Error| LedgerError::Files {
                path: path.to_path_buf(),
                what,
                source: IoCause(e),
            }
        };
        files::prepare_folder(path).map_err(files("cannot create its folder"))?;
        files::restrict(path).map_err(files("cannot open it for writing or make it 0600"))?;
        let (conn, migration_backup) = open_for_writing(path, backups).map_err(|e| e.at(path))?;
        Ok(Ledger {
            conn,
            site,
            path: path.to_path_buf(),
            migration_backup,
        })
    }

    /// Opens an existing ledger for reading only; works while the daemon writes.
    pub fn open_read_only(path: &Path, site: Site) -> Result<Self> {
        if !path.exists() {
            return Err(LedgerError::NotFound(path.to_path_buf()));
        }
        let conn = open_for_reading(path).map_err(|e| e.at(path))?;
        Ok(Ledger {
            conn,
            site,
            path: path.to_path_buf(),
            migration_backup: None,
        })
    }

    /// What the daemon proves before it says it is ready: its history is
    /// append-only, it can be written, and the rows written since the last
    /// verified point follow their hash chains (whose new tips are recorded
    /// and returned, for the log). The whole file's `quick_check` comes
    /// after ready ([`file_check`]): it reads every page.
    pub fn check_for_daemon(&self) -> Result<Vec<integrity::Verified>> {
        schema::check_triggers(&self.conn)
            .and_then(|()| schema::check_writable(&self.conn))
            .and_then(|()| integrity::verify_since_recorded(&self.conn))
            .map_err(|e| e.at(&self.path))
    }

    pub fn site(&self) -> &Site {
        &self.site
    }

    /// The backup taken before this open migrated the schema, if it did.
    pub fn migration_backup(&self) -> Option<&backup::Written> {
        self.migration_backup.as_ref()
    }

    /// The ledger's file, as it was opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying connection, for queries. Their errors do not name the
    /// file: name it with [`LedgerError::at`] and [`Ledger::path`].
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Gives up the connection and the file's path, e.g. to hand them to the
    /// group-commit writer.
    pub fn into_parts(self) -> (Connection, Site, PathBuf) {
        (self.conn, self.site, self.path)
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction; commits if it succeeds.
    pub fn write<R>(&mut self, f: impl FnOnce(&Connection, &Site) -> Result<R>) -> Result<R> {
        let Ledger {
            conn, site, path, ..
        } = self;
        let run = || {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let out = f(&tx, site)?;
            tx.commit()?;
            Ok(out)
        };
        run().map_err(|e: LedgerError| e.at(path))
    }

    pub fn debit(&mut self, req: &UsageRequest) -> Result<Charge> {
        self.write(|c, s| usage::debit(c, s, req))
    }

    pub fn hold(&mut self, req: &UsageRequest) -> Result<HoldOutcome> {
        self.write(|c, s| usage::hold(c, s, req))
    }

    pub fn settle(&mut self, key: &str, actual: i64, detail: &str, at: Ts) -> Result<Charge> {
        self.write(|c, site| usage::settle(c, site, key, actual, detail, at))
    }

    pub fn void(&mut self, key: &str, reason: &str, at: Ts) -> Result<()> {
        self.write(|c, _| usage::void(c, key, reason, at))
    }

    pub fn refund(&mut self, key: &str, reason: &str, at: Ts) -> Result<usage::Refund> {
        self.write(|c, _| usage::refund(c, key, reason, at))
    }

    pub fn expire_due(&mut self, now: Ts) -> Result<expiry::Expired> {
        self.write(|c, _| expiry::expire_due(c, now))
    }
}

/// The writer's connection on `path`: WAL journal, `synchronous=FULL`,
/// schema migrated (after a backup into `backups` if the ledger has an
/// older schema), the lots changed since the last open checked against
/// their history ([`lots_verified`]).
fn open_for_writing(path: &Path, backups: &Path) -> Result<(Connection, Option<backup::Written>)> {
    let mut conn = Connection::open(path)?;
    configure(&conn)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // 16 MiB of page cache: a site's whole working set, without letting a
    // long-running daemon grow without bound.
    conn.pragma_update(None, "cache_size", -16_384)?;
    // Checkpoint every 16,000 WAL pages (64 MiB) rather than SQLite's
    // 1,000: hot pages are copied into the database once per checkpoint
    // instead of many times, so single commits run closer to the raw
    // fdatasync rate (see `cargo bench --bench ledger`).
    conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;
    let taken = backup_before_migration(&conn, path, backups)?;
    schema::migrate(&mut conn)?;
    lots_verified::verify_since_remembered(&conn)?;
    Ok((conn, taken))
}

/// A backup of a ledger whose schema is older than this build's (and not
/// new: version 0 has nothing in it), before it is migrated.
fn backup_before_migration(
    conn: &Connection,
    path: &Path,
    backups: &Path,
) -> Result<Option<backup::Written>> {
    let from: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if from == 0 || from >= schema::SCHEMA_VERSION || path.as_os_str() == ":memory:" {
        return Ok(None);
    }
    backup::take_from(conn, path, backups, crate::clock::now())
        .map(Some)
        .map_err(|e| LedgerError::BackupBeforeMigration {
            from,
            source: Box::new(e),
        })
}

/// A read-only connection on `path`, refused if its schema is newer than
/// this build's.
fn open_for_reading(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&conn)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > schema::SCHEMA_VERSION {
        return Err(LedgerError::TooNew {
            found: version,
            supported: schema::SCHEMA_VERSION,
        });
    }
    Ok(conn)
}
