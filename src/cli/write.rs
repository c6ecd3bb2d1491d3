//! `grant`, `charge`, `refund`, `expire` and `check-config`: the manager's
//! write commands, each one transaction on the ledger and one log line.

use super::output::{write_json, Format};
use super::Ctx;
use crate::clock::{self, guard, guard::Reading, guard::Verdict};
use crate::ledger::clock_marks;
use crate::ledger::detail::UsageDetail;
use crate::ledger::expiry;
use crate::ledger::lots::{self, GrantRequest};
use crate::ledger::{catalog, usage};
use crate::ledger::{Ledger, Origin, Payable, SourceKind, UsageRequest, PRINTING};
use crate::money::{self, format_amount, parse_cents, parse_minutes, Unit, MAX_UNITS};
use anyhow::{anyhow, bail, Result};
use std::io::Write;

#[derive(clap::Args, Debug)]
pub struct GrantArgs {
    pub member: String,
    /// `printing`, or a time credit id.
    #[arg(long, default_value = PRINTING)]
    pub credit: String,
    /// Money for printing (`12.50`, `$12.50`) or time for a time credit (`90m`, `2h`).
    #[arg(long, conflicts_with = "units", required_unless_present = "units")]
    pub amount: Option<String>,
    /// Raw units instead: cents for printing, minutes for time.
    #[arg(long)]
    pub units: Option<i64>,
    /// Why (shown in the member's statement).
    #[arg(long)]
    pub reason: String,
    /// Last day the credit can be used (it expires at the end of that day).
    #[arg(long)]
    pub expires: Option<String>,
    /// The member's name, when this grant creates the member.
    #[arg(long)]
    pub name: Option<String>,
    /// Defines the time credit `--credit` with these resource types (comma
    /// separated) if the ledger does not know it yet.
    #[arg(long, value_delimiter = ',')]
    pub resource_types: Vec<String>,
    /// Idempotency key: running the same grant twice with it grants once.
    #[arg(long)]
    pub key: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ChargeArgs {
    pub member: String,
    /// Money (`1.20`) for printing, or time (`45m`) with --resource-type.
    #[arg(long, conflicts_with = "units", required_unless_present = "units")]
    pub amount: Option<String>,
    /// Raw units instead: cents, or minutes with --resource-type.
    #[arg(long)]
    pub units: Option<i64>,
    /// Pay with time credit valid for this resource type instead of printing credit.
    #[arg(long)]
    pub resource_type: Option<String>,
    #[arg(long)]
    pub reason: String,
    /// Idempotency key: the same key twice charges once.
    #[arg(long)]
    pub key: Option<String>,
}

/// The amount a manager gave: `--units` raw, or `--amount` typed as money or
/// a duration; more than zero and at most [`MAX_UNITS`] either way.
fn amount_of(ctx: &Ctx, unit: Unit, amount: Option<&str>, units: Option<i64>) -> Result<i64> {
    match (amount, units) {
        (_, Some(n)) => money::positive(n).map_err(|e| anyhow!("--units {e}")),
        (Some(text), None) => {
            let sym = &ctx.config.currency_symbol;
            let (parsed, what, like) = match unit {
                Unit::Cents => (parse_cents(text, sym), "money", "12.50"),
                Unit::Minutes => (parse_minutes(text), "a duration", "90m or 2h"),
            };
            parsed.and_then(|n| money::positive(n).ok()).ok_or_else(|| {
                anyhow!(
                    "--amount `{text}` is not {what} from {} to {} (like {like})",
                    format_amount(sym, unit, 1),
                    format_amount(sym, unit, MAX_UNITS)
                )
            })
        }
        (None, None) => bail!("give --amount or --units"),
    }
}

fn unique_suffix(ctx: &Ctx) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}:{nanos}", ctx.now)
}

pub fn grant(ctx: &Ctx, out: &mut dyn Write, a: &GrantArgs) -> Result<()> {
    if let Some(why) = ctx.config.local_grant_refused() {
        bail!("{why}");
    }
    let tz = ctx.config.tz;
    let unit = if a.credit == PRINTING {
        Unit::Cents
    } else {
        Unit::Minutes
    };
    let amount = amount_of(ctx, unit, a.amount.as_deref(), a.units)?;
    let expires_at = match &a.expires {
        Some(text) => {
            let day = clock::parse_date(text)
                .ok_or_else(|| anyhow!("--expires `{text}` is not a date (YYYY-MM-DD)"))?;
            Some(clock::local_midnight(tz, day.succ_opt().unwrap_or(day)))
        }
        None => None,
    };
    if expires_at.is_some_and(|e| e <= ctx.now) {
        bail!("--expires is in the past");
    }
    let mut ledger = super::backup::open_for_writing(ctx)?;
    let g = GrantRequest {
        member: a.member.clone(),
        credit: a.credit.clone(),
        amount,
        valid_from: ctx.now,
        expires_at,
        source: SourceKind::Adjustment,
        source_key: match &a.key {
            Some(k) => format!("adjustment:{k}"),
            None => format!("adjustment:{}:{}", a.member, unique_suffix(ctx)),
        },
        note: a.reason.clone(),
        at: ctx.now,
    };
    let (granted, new_member) = ledger.write(|conn, _| {
        let new_member = match &a.name {
            Some(name) => lots::ensure_member(conn, &a.member, name, ctx.now)?,
            None => false,
        };
        if !a.resource_types.is_empty() && !lots::credit_exists(conn, &a.credit)? {
            lots::define_time_credit(conn, &a.credit, &a.credit, &a.resource_types)?;
        }
        Ok((lots::grant(conn, &g)?, new_member))
    })?;
    let shown = format_amount(&ctx.config.currency_symbol, unit, amount);
    if granted.created {
        tracing::info!(member = %a.member, credit = %a.credit, amount, lot = granted.lot, new_member, reason = %a.reason, "grant");
    }
    match ctx.format {
        Format::Json => write_json(
            out,
            &serde_json::json!({"lot": granted.lot, "created": granted.created, "amount": amount}),
        )?,
        _ if granted.created => writeln!(
            out,
            "granted {shown} of {} to {} (lot {})",
            a.credit, a.member, granted.lot
        )?,
        _ => writeln!(
            out,
            "already granted under this key (lot {}); nothing changed",
            granted.lot
        )?,
    }
    Ok(())
}

pub fn charge(ctx: &Ctx, out: &mut dyn Write, a: &ChargeArgs) -> Result<()> {
    let payable = match &a.resource_type {
        Some(rt) => Payable::Time {
            resource_type: rt.clone(),
        },
        None => Payable::Printing,
    };
    let amount = amount_of(ctx, payable.unit(), a.amount.as_deref(), a.units)?;
    let mut ledger = super::backup::open_for_writing(ctx)?;
    let req = UsageRequest {
        key: match &a.key {
            Some(k) => format!("manual:{k}"),
            None => format!("manual:{}:{}", a.member, unique_suffix(ctx)),
        },
        member: Some(a.member.clone()),
        origin: Origin::Manual,
        payable: payable.clone(),
        amount,
        detail: UsageDetail::manual(&a.reason).to_json(),
        at: ctx.now,
    };
    let charge = ledger.write(|conn, site| {
        if let Payable::Time { resource_type } = &req.payable {
            catalog::check_resource_type(conn, resource_type)?;
        }
        usage::debit(conn, site, &req)
    })?;
    let sym = &ctx.config.currency_symbol;
    let unit = payable.unit();
    if !charge.replayed {
        tracing::info!(member = %a.member, amount, covered = charge.covered, overage = charge.overage,
            balance = charge.balance_after, key = %req.key, reason = %a.reason, "charge");
    }
    match ctx.format {
        Format::Json => write_json(out, &charge)?,
        _ => writeln!(
            out,
            "{} {} to {}: {} from credit, {} overage; balance {} (key {})",
            if charge.replayed {
                "already charged"
            } else {
                "charged"
            },
            format_amount(sym, unit, amount),
            a.member,
            format_amount(sym, unit, charge.covered),
            format_amount(sym, unit, charge.overage),
            format_amount(sym, unit, charge.balance_after),
            req.key
        )?,
    }
    Ok(())
}

pub fn refund(ctx: &Ctx, out: &mut dyn Write, key: &str, reason: &str) -> Result<()> {
    if !ctx.ledger.exists() {
        return Err(crate::ledger::LedgerError::NotFound(ctx.ledger.clone()).into());
    }
    let mut ledger = super::backup::open_for_writing(ctx)?;
    let r = ledger.refund(key, reason, ctx.now)?;
    tracing::info!(
        key,
        restored = r.restored,
        regranted = r.regranted,
        overage_reversed = r.overage_reversed,
        reason,
        "refund"
    );
    match ctx.format {
        Format::Json => write_json(out, &r)?,
        _ => writeln!(
            out,
            "refunded {key}: {} back to its lots, {} granted anew, {} overage reversed (units: cents or minutes)",
            r.restored, r.regranted, r.overage_reversed
        )?,
    }
    Ok(())
}

/// `tallyd expire`: under a trusted clock, gives back expiries recorded as
/// happening after now (a wall clock that was ahead wrote them), then
/// records expiry of lots past their date; both in one transaction. The
/// clock is judged as the daemon judges it: against the ledger's newest
/// row and, for the system clock, the daemon's clock mark on this boot.
pub fn expire(ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    if !ctx.ledger.exists() {
        return Err(crate::ledger::LedgerError::NotFound(ctx.ledger.clone()).into());
    }
    let mut ledger = super::backup::open_for_writing(ctx)?;
    refuse_a_wrong_clock(ctx, &ledger)?;
    let now = ctx.now;
    let (reversed, expired) = ledger.write(|c, _| {
        let reversed = expiry::reverse_future_expiries(c, now)?;
        Ok((reversed, expiry::expire_due(c, now)?))
    })?;
    if reversed.lots > 0 {
        tracing::warn!(
            lots = reversed.lots,
            amount = reversed.amount,
            "expiries reversed: they were recorded under a wall clock that was ahead"
        );
    }
    tracing::info!(lots = expired.lots, amount = expired.amount, "expiry sweep");
    match ctx.format {
        Format::Json => write_json(
            out,
            &serde_json::json!({"lots": expired.lots, "amount": expired.amount,
                "reversed": reversed}),
        )?,
        _ => {
            if reversed.lots > 0 {
                writeln!(
                    out,
                    "gave back {} expired on {} lots: recorded under a wall clock that was ahead",
                    reversed.amount, reversed.lots
                )?;
            }
            writeln!(
                out,
                "expired {} lots ({} units)",
                expired.lots, expired.amount
            )?
        }
    }
    Ok(())
}

/// An error unless `ctx.now` passes the clock rule. A pinned `TALLYD_NOW`
/// is judged by the newest row only: the boot clock says nothing about it.
fn refuse_a_wrong_clock(ctx: &Ctx, ledger: &Ledger) -> Result<()> {
    let conn = ledger.conn();
    let newest = clock_marks::newest(conn)?.at;
    let system = super::daemon_clock();
    let anchor = match ctx.pinned {
        true => None,
        false => clock_marks::load_mark(conn)?.and_then(|m| m.anchor_on(&clock::boot_id())),
    };
    let reading = Reading {
        wall: ctx.now,
        boot_ms: system.boot_ms(),
    };
    let show = |t| clock::format_local(ctx.config.tz, t);
    match guard::judge(reading, anchor, newest) {
        Verdict::Agrees => Ok(()),
        Verdict::Stepped { expected } => bail!(
            "the wall clock looks wrong: it says {} but the boot clock puts now at {}; nothing expired (the daemon holds expiry too until the clock agrees)",
            show(ctx.now),
            show(expected)
        ),
        Verdict::BeforeNewestRow { newest } => bail!(
            "the wall clock looks wrong: it says {}, before the ledger's newest row ({}); nothing expired (the daemon holds expiry too until the clock agrees)",
            show(ctx.now),
            show(newest)
        ),
    }
}

pub fn check_config(ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    let c = &ctx.config;
    writeln!(
        out,
        "config OK: {} ({})",
        ctx.config_file.path.display(),
        ctx.config_file.origin.describe()
    )?;
    writeln!(
        out,
        "site `{}`, time zone {}, ledger {}",
        c.site_name,
        c.tz,
        ctx.ledger.display()
    )?;
    writeln!(
        out,
        "overage policy {} (monthly cap: {}, {})",
        c.default_policy.kind.as_str(),
        c.default_policy
            .cap_cents
            .map(|n| format_amount(&c.currency_symbol, Unit::Cents, n))
            .unwrap_or_else(|| "none".into()),
        c.default_policy
            .cap_minutes
            .map(|n| format_amount("", Unit::Minutes, n))
            .unwrap_or_else(|| "none".into()),
    )?;
    for (name, table) in &c.prices {
        writeln!(
            out,
            "price table `{name}`: {} media, default {}",
            table.media.len(),
            table.default_media
        )?;
    }
    for p in &c.printers {
        writeln!(out, "{}", describe_printer(p))?;
    }
    for r in &c.readers {
        writeln!(out, "{}", describe_reader(r))?;
    }
    match &c.grants {
        Some(g) => writeln!(
            out,
            "grants: {} every {}s{}{}",
            crate::grants::source::redact(&g.source),
            g.interval.as_secs(),
            match g.auth {
                Some(crate::config::GrantsAuth::Bearer(_)) => " (bearer token from token_file)",
                Some(crate::config::GrantsAuth::Basic { .. }) =>
                    " (basic auth from basic_auth_file)",
                None => "",
            },
            describe_trust(&g.trust)
        )?,
        None => writeln!(out, "grants: none configured")?,
    }
    writeln!(out, "{}", describe_alerts(c.alerts.as_ref()))?;
    if let Some(h) = &c.http {
        let tls = match &h.tls {
            Some(t) => format!(" over TLS (certificate {})", t.cert_file.display()),
            None => String::new(),
        };
        writeln!(out, "http: /metrics and /healthz on {}{tls}", h.listen)?;
    }
    Ok(())
}

/// `check-config`'s line for `[alerts]`: where alerts go and when.
fn describe_alerts(a: Option<&crate::config::AlertsConfig>) -> String {
    let Some(a) = a else {
        return "alerts: none configured".into();
    };
    let mut to = Vec::new();
    if let Some(c) = &a.command {
        to.push(format!("command {}", c.display()));
    }
    if let Some(w) = &a.webhook {
        let auth = match w.auth {
            Some(crate::config::GrantsAuth::Bearer(_)) => " (bearer token from token_file)",
            Some(crate::config::GrantsAuth::Basic { .. }) => " (basic auth from basic_auth_file)",
            None => "",
        };
        to.push(format!(
            "webhook {}{auth}{}",
            w.url,
            describe_trust(&w.trust)
        ));
    }
    format!(
        "alerts: to {}; after {}s, repeat {}s, timeout {}s",
        to.join(" and "),
        a.after.as_secs(),
        a.repeat.as_secs(),
        a.timeout.as_secs()
    )
}

/// `check-config`'s line for a printer: where it is, how jobs reach it, and
/// how often it is asked about them.
fn describe_printer(p: &crate::config::PrinterConfig) -> String {
    let mode = match p.mode {
        crate::config::Mode::Direct => "direct".to_string(),
        crate::config::Mode::Held => format!(
            "held (page estimate {}, hold timeout {}s)",
            p.page_estimate,
            p.hold_timeout.as_secs()
        ),
        crate::config::Mode::FollowMe => format!(
            "follow-me, released at {} (page estimate {}, hold timeout {}s)",
            p.release_to.join(", "),
            p.page_estimate,
            p.hold_timeout.as_secs()
        ),
    };
    format!(
        "printer `{}`: {} {mode}, polled every {}s, timeout {}s{}",
        p.id,
        p.uri,
        p.poll_interval.as_secs(),
        p.timeout.as_secs(),
        describe_trust(&p.trust)
    )
}

/// Whom a TLS peer must be, as `check-config` says it (nothing for the
/// system's roots).
fn describe_trust(trust: &crate::tls::Trust) -> String {
    match trust {
        crate::tls::Trust::System => String::new(),
        crate::tls::Trust::CaFile(ca) => format!(
            ", trusting {} certificate(s) of ca_file {}",
            ca.len(),
            ca.path.display()
        ),
        crate::tls::Trust::Pinned(pin) => format!(", pinned to {pin}"),
    }
}

/// `check-config`'s line for a card reader: its device and framing, and what
/// its taps do.
fn describe_reader(r: &crate::config::ReaderConfig) -> String {
    let bound = match &r.binding {
        crate::config::Binding::Printer(p) => format!("releases held jobs at printer `{p}`"),
        crate::config::Binding::Resource(res) => format!(
            "sessions in `{res}` ({} min increments, at most {}s)",
            r.increment.as_secs() / 60,
            r.max_session.as_secs()
        ),
    };
    format!(
        "reader `{}`: {} {} at {} baud, {bound}",
        r.id,
        r.device.display(),
        r.framing,
        r.baud
    )
}
