//! The manager's command line: argument parsing and dispatch. Read commands
//! open the ledger read-only (they work while the daemon writes); write
//! commands open it for writing, one transaction each.
//!
//! This is the binary's outermost layer and the place for `anyhow`: the
//! library's boundaries return their own error enums, which keep their
//! causes; here they get context, and [`main`] prints whatever reaches it as
//! one line with every cause ([`error_chain`](crate::error_chain)).

mod backup;
mod central_import;
mod central_read;
mod central_report;
mod central_sites;
mod check;
mod console;
mod generate;
pub mod locate;
mod output;
mod read;
mod review;
mod statement;
mod sync;
mod sync_output;
mod team;
mod write;

use crate::clock;
use crate::config::Config;
use crate::ledger::query::ReportBy;
use crate::ledger::LedgerError;
use anyhow::{Context, Result};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use locate::{Located, Origin};
use output::Format;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::LazyLock;

/// Print- and time-accounting for coworking spaces.
#[derive(Parser, Debug)]
#[command(name = "tallyd", about)]
pub struct Cli {
    /// The site config file. Without it (and without TALLYD_CONFIG):
    /// config/tallyd.toml in the current folder if it exists, else
    /// /etc/tallyd/tallyd.toml.
    #[arg(long, global = true, env = "TALLYD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Use this ledger file instead of the one the config names.
    #[arg(long, global = true, env = "TALLYD_LEDGER")]
    pub ledger: Option<PathBuf>,
    /// Print JSON (amounts as integer cents and minutes).
    #[arg(long, global = true, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV (amounts as integer cents and minutes).
    #[arg(long, global = true)]
    pub csv: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Credit left per member (printing, each time credit, overage owed).
    Balance {
        /// One member; all members when omitted.
        #[arg(conflicts_with = "team")]
        member: Option<String>,
        /// A team: its pool, and each member's own credit and limit left.
        #[arg(long, conflicts_with = "at")]
        team: Option<String>,
        /// A past instant (`2026-11-03`, `2026-11-03 14:30`), rebuilt from history.
        #[arg(long)]
        at: Option<String>,
        /// The chain's lots, asked of the centre (`[central]`): what each
        /// member has left across every site, and owes as overage.
        #[arg(long, conflicts_with_all = ["team", "at"])]
        central: bool,
    },
    /// Every lot of a member: its source, when it can be spent, what is left.
    Lots { member: String },
    /// Every change to a member's credit over a period.
    Statement {
        /// The member (or `--team T`).
        #[arg(required_unless_present = "team", conflicts_with = "team")]
        member: Option<String>,
        /// A team: every draw on its pool, by member, with keys.
        #[arg(long)]
        team: Option<String>,
        /// First day (inclusive); default: the first of this month.
        #[arg(long)]
        from: Option<String>,
        /// Last day (inclusive); default: today.
        #[arg(long)]
        to: Option<String>,
        /// Every change to the member's chain lots and overage, asked of
        /// the centre (`[central]`).
        #[arg(long, conflicts_with = "team")]
        central: bool,
    },
    /// Monthly usage: jobs, impressions, cents, sessions, minutes, overage.
    Report {
        /// The month, `YYYY-MM`.
        #[arg(long)]
        month: String,
        /// `member`, `printer`, `resource` or `team`; with `--central`,
        /// `member` or `site`.
        #[arg(long, value_enum, default_value = "member")]
        by: ReportGrouping,
        /// The whole chain's usage, asked of the centre (`[central]`).
        #[arg(long)]
        central: bool,
    },
    /// Give a charged job or session back (by its key, shown in statements).
    Refund {
        key: String,
        #[arg(long)]
        reason: String,
    },
    /// A local adjustment: grant credit to a member, with a reason.
    Grant(write::GrantArgs),
    /// Record a manual charge (a walk-up copier, a room booked at the desk).
    Charge(write::ChargeArgs),
    /// Sync the central grants file into the ledger once.
    Sync {
        /// Print what would be issued, adjusted, voided and closed; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// A path or http(s) URL instead of the config's [grants] source.
        #[arg(long)]
        source: Option<String>,
    },
    /// Record expiry of every lot past its expiry date now, and give back
    /// expiries a wall clock that was ahead recorded. Refused while the wall
    /// clock is judged wrong (see the README's clock rule).
    Expire,
    /// Validate the config file and say what it sets up.
    CheckConfig,
    /// Check the ledger whole: SQLite's integrity_check, the append-only
    /// triggers, every lot and usage against its rows, the hash chains.
    /// One verdict per check; exits 1 if any fails.
    CheckLedger,
    /// A checked copy of the ledger, taken beside the running daemon, named
    /// by its time and schema; in the `[backup]` folder (then the oldest
    /// beyond `keep` are removed) or in `--to DIR`.
    Backup {
        /// Another folder (nothing is removed there).
        #[arg(long)]
        to: Option<PathBuf>,
        /// List the backups in the folder instead.
        #[arg(long)]
        list: bool,
    },
    /// Put a backup in place of the ledger: refused if the backup fails its
    /// check or has a newer schema, or while the daemon runs. The ledger and
    /// its -wal and -shm are moved aside (`.replaced-<time>`), never deleted.
    Restore {
        /// The backup file.
        file: PathBuf,
    },
    /// Unknown cards tapped recently (whole ids, to enrol them in the grants file).
    Cards {
        /// How many days back.
        #[arg(long, default_value_t = 30)]
        days: i64,
    },
    /// Jobs set aside because their counts made no sense; charge or waive each.
    Review {
        /// Resolved reviews too.
        #[arg(long)]
        all: bool,
        #[command(subcommand)]
        action: Option<review::Action>,
    },
    /// The manager's web console: accounts.
    Console {
        #[command(subcommand)]
        action: console::Action,
    },
    /// Run the centre of a chain (`--config` names its central.toml):
    /// the site protocol in front of PostgreSQL.
    Central {
        /// As for `run`.
        #[arg(long, value_enum, default_value = "auto")]
        log_format: crate::logging::LogFormat,
        #[command(subcommand)]
        action: Option<CentralAction>,
    },
    /// Run the daemon: poll printers, charge jobs, sync grants, sweep expiry.
    Run {
        /// `journald` (`<6>message field=value`), `json`, or `text`; `auto`
        /// is text on a terminal, journald otherwise.
        #[arg(long, value_enum, default_value = "auto")]
        log_format: crate::logging::LogFormat,
    },
    /// Write the man pages or the shell completions into a folder (for the
    /// Debian package).
    #[command(hide = true, subcommand)]
    Generate(generate::What),
}

/// How `tallyd report` groups: the site's own groupings, and `site` for
/// the chain's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportGrouping {
    Member,
    Printer,
    Resource,
    Team,
    Site,
}

/// What a site does with its chain's centre (`--config` names the site's
/// config, which has `[central]`).
#[derive(Debug, Subcommand)]
pub enum CentralAction {
    /// Make this ledger's manual grants chain lots at the centre (which
    /// must be reachable then), and give every usage, hold resolution and
    /// refund written before `[central]` its outbox entry, ahead of newer
    /// ones, for the daemon to ship: refused while the daemon runs; run
    /// again, it adds nothing.
    Import,
    /// Check the centre's ledger of record (`--config` names its
    /// central.toml): every lot against its history, every usage drawn once
    /// at its final amount. One verdict per check; exits 1 if any fails.
    Check,
    /// What the centre knows of each site (`--config` names its
    /// central.toml): its newest epoch and high water, when it last told
    /// the centre where its outbox stands, and what waited then.
    Sites,
}

/// `tallyd --version`: the version and the ledger schema it writes.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} (ledger schema {})",
        env!("CARGO_PKG_VERSION"),
        crate::ledger::schema::SCHEMA_VERSION
    )
});

/// The command line's definition, as `--help`, the man pages and the
/// completions show it.
pub fn command() -> clap::Command {
    Cli::command().version(VERSION.as_str())
}

/// What every command gets: the config, where the ledger is, how to print,
/// and what time it is.
pub struct Ctx {
    pub config: Config,
    /// The config file, and why that one.
    pub config_file: Located,
    pub ledger: PathBuf,
    pub format: Format,
    pub now: i64,
    /// `now` was pinned (`TALLYD_NOW`), not read from the system clock.
    pub pinned: bool,
}

/// `TALLYD_NOW` (RFC 3339 or a local date-time) pins "now", for reproducible
/// examples and tests; otherwise the system clock (in a test build, as
/// `TALLYD_TEST_CLOCK_FILE` moves it: see [`daemon_clock`]).
fn now(config: &Config) -> Result<i64> {
    match std::env::var("TALLYD_NOW") {
        Ok(text) => clock::parse_datetime(config.tz, &text)
            .with_context(|| format!("TALLYD_NOW `{text}` is not a date or date-time")),
        Err(_) => Ok(daemon_clock().wall()),
    }
}

/// The clock of the daemon, the centre and the commands: the system's.
/// Built with the test hooks (tests only, never a release build), it is
/// moved by what the file `TALLYD_TEST_CLOCK_FILE` names says (see
/// `clock::TestClockFile`).
/// Runs `work` to its end on a runtime of its own: a command's one
/// request (to the centre, or for the grants file).
fn block_on<F: std::future::Future>(work: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(work))
}

pub(crate) fn daemon_clock() -> clock::Clock {
    #[cfg(feature = "test-hooks")]
    if let Some(path) = std::env::var_os("TALLYD_TEST_CLOCK_FILE") {
        return clock::Clock::new(clock::TestClockFile(path.into()));
    }
    clock::Clock::system()
}

fn run(cli: Cli, config_from: Option<Origin>) -> Result<()> {
    if let Command::Generate(what) = &cli.command {
        return generate::generate(&mut std::io::stdout().lock(), what);
    }
    if let Command::Console { action } = &cli.command {
        return console::act(&mut std::io::stdout().lock(), action);
    }
    if let Command::Central {
        action: Some(CentralAction::Check),
        ..
    } = cli.command
    {
        let Some(central) = &cli.config else {
            anyhow::bail!("tallyd central check needs --config naming its central.toml");
        };
        if crate::central::check(central, &mut std::io::stdout().lock())? {
            return Ok(());
        }
        anyhow::bail!("the centre's ledger failed a check");
    }
    if let Command::Central {
        action: Some(CentralAction::Sites),
        ..
    } = cli.command
    {
        let Some(central) = &cli.config else {
            anyhow::bail!("tallyd central sites needs --config naming its central.toml");
        };
        let format = match (cli.json, cli.csv) {
            (true, _) => Format::Json,
            (_, true) => Format::Csv,
            _ => Format::Table,
        };
        return central_sites::print(central, format, &mut std::io::stdout().lock());
    }
    if let Command::Central { action: None, .. } = cli.command {
        // The centre has no site config to look for: only its own file.
        let Some(central) = &cli.config else {
            anyhow::bail!("tallyd central needs --config naming its central.toml");
        };
        return crate::central::run(central, daemon_clock());
    }
    let given = cli.config.clone().zip(config_from);
    let system = locate::system_path();
    let config_file =
        locate::locate(given, &system, Path::is_file).ok_or_else(|| locate::NotFound {
            cwd: std::env::current_dir().unwrap_or_default(),
            system,
        })?;
    if let Command::Run { .. } = cli.command {
        crate::daemon::run(crate::daemon::Options {
            config: config_file.path,
            ledger: cli.ledger,
            clock: daemon_clock(),
        })?;
        return Ok(());
    }
    let config = Config::load(&config_file.path)?;
    let format = match (cli.json, cli.csv) {
        (true, _) => Format::Json,
        (_, true) => Format::Csv,
        _ => Format::Table,
    };
    let ctx = Ctx {
        ledger: cli.ledger.clone().unwrap_or_else(|| config.ledger.clone()),
        now: now(&config)?,
        pinned: std::env::var_os("TALLYD_NOW").is_some(),
        config,
        config_file,
        format,
    };
    dispatch(&ctx, cli.command).map_err(|e| name_the_ledger(e, &ctx.ledger))
}

/// Names the ledger file in an error of the file that does not name it yet
/// (a read query's; `Ledger::open` and its writes name it themselves).
fn name_the_ledger(mut e: anyhow::Error, ledger: &Path) -> anyhow::Error {
    if let Some(inner) = e.downcast_mut::<LedgerError>() {
        let unnamed = std::mem::replace(inner, LedgerError::WriterGone);
        *inner = unnamed.at(ledger);
    }
    e
}

fn dispatch(ctx: &Ctx, command: Command) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Balance { team: Some(t), .. } => team::balance(ctx, &mut out, &t),
        Command::Balance {
            member,
            central: true,
            ..
        } => central_read::balance(ctx, &mut out, member.as_deref()),
        Command::Balance { member, at, .. } => {
            read::balance(ctx, &mut out, member.as_deref(), at.as_deref())
        }
        Command::Statement {
            team: Some(t),
            from,
            to,
            ..
        } => team::statement(ctx, &mut out, &t, from.as_deref(), to.as_deref()),
        Command::Statement {
            member: Some(member),
            from,
            to,
            central: true,
            ..
        } => central_read::statement(ctx, &mut out, &member, from.as_deref(), to.as_deref()),
        Command::Statement {
            member, from, to, ..
        } => {
            let member = member.unwrap_or_default();
            statement::statement(ctx, &mut out, &member, from.as_deref(), to.as_deref())
        }
        Command::Report { month, by, central } => report(ctx, &mut out, &month, by, central),
        Command::Refund { key, reason } => write::refund(ctx, &mut out, &key, &reason),
        Command::Grant(args) => write::grant(ctx, &mut out, &args),
        Command::Charge(args) => write::charge(ctx, &mut out, &args),
        Command::Sync { dry_run, source } => sync::sync(ctx, &mut out, source.as_deref(), dry_run),
        Command::Expire => write::expire(ctx, &mut out),
        Command::CheckConfig => write::check_config(ctx, &mut out),
        Command::CheckLedger => check::check_ledger(ctx, &mut out),
        Command::Backup { to, list: true } => backup::list(ctx, &mut out, to.as_deref()),
        Command::Backup { to, list: false } => backup::take(ctx, &mut out, to.as_deref()),
        Command::Restore { file } => backup::restore(ctx, &mut out, &file),
        Command::Cards { days } => read::cards(ctx, &mut out, days),
        Command::Lots { member } => read::lots(ctx, &mut out, &member),
        Command::Review { all, action } => match action {
            None => review::list(ctx, &mut out, all),
            Some(action) => review::act(ctx, &mut out, &action),
        },
        Command::Central {
            action: Some(CentralAction::Import),
            ..
        } => central_import::import(ctx, &mut out),
        Command::Run { .. }
        | Command::Generate(_)
        | Command::Console { .. }
        | Command::Central {
            action: None | Some(CentralAction::Check | CentralAction::Sites),
            ..
        } => Ok(()),
    }
}

/// `tallyd report`: the site's own, or with `--central` the chain's.
fn report(
    ctx: &Ctx,
    out: &mut dyn std::io::Write,
    month: &str,
    by: ReportGrouping,
    central: bool,
) -> Result<()> {
    use crate::central::protocol::ChainReportBy;
    use ReportGrouping as G;
    match (central, by) {
        (true, G::Member) => central_report::report(ctx, out, month, ChainReportBy::Member),
        (true, G::Site) => central_report::report(ctx, out, month, ChainReportBy::Site),
        (true, _) => anyhow::bail!("--central reports by member or by site"),
        (false, G::Site) => anyhow::bail!("--by site needs --central"),
        (false, G::Member) => read::report(ctx, out, month, ReportBy::Member),
        (false, G::Printer) => read::report(ctx, out, month, ReportBy::Printer),
        (false, G::Resource) => read::report(ctx, out, month, ReportBy::Resource),
        (false, G::Team) => read::report(ctx, out, month, ReportBy::Team),
    }
}

/// The binary's entry point: parse, run, and turn an error into one line on
/// stderr, with its causes, and exit status 1 (a refused operation or bad
/// input). A usage error exits 2 from clap, before anything runs.
pub fn main() -> ExitCode {
    // Ids, names, reasons and keys end up in the ledger, in tables and in
    // log lines: one with a newline or an escape could forge a line.
    if let Some((n, arg)) = std::env::args_os()
        .enumerate()
        .find(|(_, a)| a.to_string_lossy().chars().any(char::is_control))
    {
        eprintln!(
            "tallyd: argument {n} (`{}`) contains a control character (a newline, tab or escape); refused",
            crate::logging::escape_controls(&arg.to_string_lossy())
        );
        return ExitCode::FAILURE;
    }
    let matches = command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let config_from = match matches.value_source("config") {
        Some(ValueSource::EnvVariable) => Some(Origin::Env),
        Some(_) => Some(Origin::Flag),
        None => None,
    };
    crate::logging::init(match cli.command {
        Command::Run { log_format }
        | Command::Central {
            log_format,
            action: None,
        } => log_format,
        _ => crate::logging::LogFormat::Text,
    });
    match run(cli, config_from) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`tallyd report | head -1`): nothing to say.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tallyd: {}", crate::error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// Whether `e` is, at its root, a write to a closed pipe.
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
