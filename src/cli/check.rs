//! `check-ledger`: every integrity check on the ledger, one verdict line
//! each; exits 1 if any fails. Read-only, so it runs beside the daemon.

use super::output::{write_json, Format};
use super::Ctx;
use crate::ledger::audit::{audit, Verdict};
use crate::ledger::Ledger;
use crate::logging::escape_controls;
use anyhow::{bail, Result};
use std::io::Write;

fn verdicts(ctx: &Ctx) -> Vec<Verdict> {
    match Ledger::open_read_only(&ctx.ledger, ctx.config.site()) {
        Ok(ledger) => {
            let mut verdicts = audit(ledger.conn());
            verdicts.push(teams(ledger.conn()));
            verdicts
        }
        // A file SQLite cannot even open is one failed check.
        Err(e) => vec![Verdict {
            check: "open",
            ok: false,
            detail: crate::error_chain(&e),
        }],
    }
}

/// The teams usage draws on are the catalog's (the grants file's, as last
/// synced): a check above the ledger, which does not read catalog bodies.
fn teams(conn: &rusqlite::Connection) -> Verdict {
    let (ok, detail) = match crate::grants::teams_check::check(conn) {
        Ok(Ok(detail)) => (true, detail),
        Ok(Err(why)) => (false, why),
        Err(e) => (false, crate::error_chain(&e)),
    };
    Verdict {
        check: "teams against the catalog",
        ok,
        detail,
    }
}

pub fn check_ledger(ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    let verdicts = verdicts(ctx);
    let failed = verdicts.iter().filter(|v| !v.ok).count();
    if ctx.format == Format::Json {
        write_json(
            out,
            &serde_json::json!({
                "ledger": ctx.ledger.display().to_string(),
                "ok": failed == 0,
                "checks": verdicts,
            }),
        )?;
    } else {
        for v in &verdicts {
            let mark = if v.ok { "ok  " } else { "FAIL" };
            writeln!(out, "{mark} {}: {}", v.check, escape_controls(&v.detail))?;
        }
    }
    out.flush()?;
    if failed > 0 {
        bail!(
            "the ledger {} failed {failed} of {} checks",
            ctx.ledger.display(),
            verdicts.len()
        );
    }
    Ok(())
}
