//! `tallyd balance --central` and `statement --central`: what each member
//! has left of the chain's lots and owes as overage, and every change to
//! them, asked of the centre with this site's token.

use super::central_report::get_json;
use super::output::{write_json, Format, Table};
use super::Ctx;
use crate::central::protocol::{ChainBalance, ChainStatement};
use crate::clock;
use crate::money::{format_cents, format_minutes};
use anyhow::{bail, Context, Result};
use std::io::Write;

pub fn balance(ctx: &Ctx, out: &mut dyn Write, member: Option<&str>) -> Result<()> {
    let Some(central) = &ctx.config.central else {
        bail!("--central needs a `[central]` section in the config");
    };
    let mut query = vec![("site_id", central.site_id.as_str())];
    if let Some(m) = member {
        query.push(("member", m));
    }
    let rows: Vec<ChainBalance> = get_json(central, "/v1/balance", &query)
        .with_context(|| format!("the centre {}", central.url))?;
    if let (Some(m), true) = (member, rows.is_empty()) {
        bail!(
            "the centre knows no member {:?}",
            crate::logging::escape_controls(m)
        );
    }
    match ctx.format {
        Format::Json => write_json(out, &rows)?,
        Format::Csv => table(&rows, true, &ctx.config.currency_symbol).write_csv(out)?,
        Format::Table => {
            writeln!(out, "Credit left across the chain")?;
            table(&rows, false, &ctx.config.currency_symbol).write(out)?;
        }
    }
    Ok(())
}

/// A member's statement across the chain, `from` to `to` (days in this
/// site's time zone, as `tallyd statement`).
pub fn statement(
    ctx: &Ctx,
    out: &mut dyn Write,
    member: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<()> {
    let Some(central) = &ctx.config.central else {
        bail!("--central needs a `[central]` section in the config");
    };
    let tz = ctx.config.tz;
    let (from_day, to_day) = super::statement::statement_days(ctx, from, to)?;
    let start = clock::local_midnight(tz, from_day).to_string();
    let end = clock::local_midnight(tz, to_day.succ_opt().unwrap_or(to_day)).to_string();
    let query = [
        ("site_id", central.site_id.as_str()),
        ("member", member),
        ("start", &start),
        ("end", &end),
    ];
    let st: ChainStatement = get_json(central, "/v1/statement", &query)
        .with_context(|| format!("the centre {}", central.url))?;
    let sym = &ctx.config.currency_symbol;
    let show = |unit: &str, v: i64| match unit {
        "cents" => format_cents(sym, v),
        _ => format_minutes(v),
    };
    let raw = ctx.format != Format::Table;
    let mut t = Table::new(["date", "kind", "credit", "amount", "site", "key", "note"]);
    for l in &st.lines {
        t.push(vec![
            if raw {
                l.at.to_string()
            } else {
                clock::format_local(tz, l.at)
            },
            l.kind.clone(),
            l.credit.clone(),
            if raw {
                l.amount.to_string()
            } else {
                show(&l.unit, l.amount)
            },
            l.site.clone().unwrap_or_default(),
            l.usage_key.clone().unwrap_or_default(),
            crate::logging::escape_controls(&l.note).into_owned(),
        ]);
    }
    match ctx.format {
        Format::Json => write_json(out, &st)?,
        Format::Csv => t.write_csv(out)?,
        Format::Table => {
            let held = |m: &std::collections::BTreeMap<String, i64>| {
                m.iter()
                    .map(|(c, v)| {
                        let unit = if c == "printing" || c == "overage-cents" {
                            "cents"
                        } else {
                            "minutes"
                        };
                        format!("{c} {}", show(unit, *v))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            writeln!(
                out,
                "Statement across the chain for {} ({}), {from_day} to {to_day}",
                st.member,
                crate::logging::escape_controls(&st.name)
            )?;
            writeln!(out, "Opening: {}", held(&st.opening))?;
            if st.lines.is_empty() {
                writeln!(out, "(no changes in this period)")?;
            } else {
                t.write(out)?;
            }
            writeln!(out, "Closing: {}", held(&st.closing))?;
        }
    }
    Ok(())
}

/// One row per member and credit (a member with no live lot: one row, no
/// credit); raw columns (CSV) in integer cents and minutes.
fn table(rows: &[ChainBalance], raw: bool, sym: &str) -> Table {
    let header = if raw {
        [
            "member",
            "credit",
            "left",
            "overage_cents",
            "overage_minutes",
        ]
    } else {
        ["member", "credit", "left", "overage owed", "overage time"]
    };
    let mut t = Table::new(header);
    let show = |credit: &str, v: i64| match (raw, credit) {
        (true, _) => v.to_string(),
        (false, "printing") => format_cents(sym, v),
        (false, _) => format_minutes(v),
    };
    for b in rows {
        let owed = if raw {
            [b.overage_cents.to_string(), b.overage_minutes.to_string()]
        } else {
            [
                format_cents(sym, b.overage_cents),
                format_minutes(b.overage_minutes),
            ]
        };
        let credits: Vec<(&str, i64)> = if b.credits.is_empty() {
            vec![("printing", 0)]
        } else {
            b.credits.iter().map(|(c, v)| (c.as_str(), *v)).collect()
        };
        for (credit, left) in credits {
            t.push(vec![
                b.member.clone(),
                credit.to_string(),
                show(credit, left),
                owed[0].clone(),
                owed[1].clone(),
            ]);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn each_credit_is_a_row_in_its_unit_and_csv_is_raw() {
        let rows = [ChainBalance {
            member: "alice".into(),
            name: "Alice".into(),
            closed: false,
            credits: BTreeMap::from([("printing".into(), 250), ("room-hours".into(), 90)]),
            overage_cents: 40,
            overage_minutes: 0,
        }];
        let mut text = Vec::new();
        table(&rows, false, "$").write(&mut text).expect("table");
        let text = String::from_utf8(text).expect("utf-8");
        assert_eq!(
            text,
            "member  credit        left  overage owed  overage time\n\
             alice   printing     $2.50         $0.40        0h 00m\n\
             alice   room-hours  1h 30m         $0.40        0h 00m\n"
        );
        let mut csv = Vec::new();
        table(&rows, true, "$").write_csv(&mut csv).expect("csv");
        assert_eq!(
            String::from_utf8(csv).expect("utf-8"),
            "member,credit,left,overage_cents,overage_minutes\nalice,printing,250,40,0\nalice,room-hours,90,40,0\n"
        );
    }
}
