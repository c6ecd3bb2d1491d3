//! `tallyd central --config central.toml sites`: what the centre knows of
//! each site, read from PostgreSQL (as its `/metrics` reads it): which is
//! dark, which lags.

use super::output::{write_json, Format, Table};
use crate::central::protocol::ChainSite as Row;
use anyhow::Result;
use std::io::Write;
use std::path::Path;

pub fn print(config: &Path, format: Format, out: &mut dyn Write) -> Result<()> {
    let (sites, conflicts) = crate::central::sites(config)?;
    let rows: Vec<Row> = sites.iter().map(|s| s.to_wire()).collect();
    match format {
        Format::Json => write_json(out, &rows)?,
        Format::Csv => table(&rows, true).write_csv(out)?,
        Format::Table => {
            writeln!(out, "Sites as the centre knows them")?;
            table(&rows, false).write(out)?;
            writeln!(out, "conflicts recorded: {conflicts}")?;
        }
    }
    Ok(())
}

fn table(rows: &[Row], raw: bool) -> Table {
    let header = if raw {
        [
            "site",
            "epoch",
            "high_water",
            "heard_seconds_ago",
            "unacknowledged",
            "ack_lag_seconds",
        ]
    } else {
        [
            "site",
            "epoch",
            "high water",
            "heard",
            "waiting",
            "oldest waiting",
        ]
    };
    let mut t = Table::new(header);
    let n = |v: Option<i64>| v.map_or(String::new(), |v| v.to_string());
    for r in rows {
        let cells = if raw {
            vec![
                r.site.clone(),
                n(r.epoch),
                n(r.high_water),
                n(r.heard_seconds_ago),
                n(r.unacknowledged),
                n(r.ack_lag_seconds),
            ]
        } else {
            let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            vec![
                r.site.clone(),
                dash(r.epoch.map(|e| e.to_string())),
                dash(r.high_water.map(|h| h.to_string())),
                r.heard_seconds_ago.map_or("never".into(), |s| {
                    format!("{} ago", crate::clock::format_ago(s))
                }),
                dash(r.unacknowledged.map(|u| u.to_string())),
                dash(r.ack_lag_seconds.map(|s| {
                    if s == 0 {
                        "none".into()
                    } else {
                        crate::clock::format_ago(s)
                    }
                })),
            ]
        };
        t.push(cells);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::central::watch::{Said, SiteView};

    #[test]
    fn a_site_heard_and_one_never_heard() {
        let heard = SiteView {
            site_id: "ber-1".into(),
            epoch: Some((2, 41)),
            said: Some(Said {
                unacknowledged: 3,
                ack_lag: 250,
                heard_ago: 12,
            }),
        };
        let never = SiteView {
            site_id: "ber-2".into(),
            ..SiteView::default()
        };
        let rows = [heard.to_wire(), never.to_wire()];
        let mut text = Vec::new();
        table(&rows, false).write(&mut text).expect("table");
        assert_eq!(
            String::from_utf8(text).expect("utf-8"),
            "site   epoch  high water  heard     waiting  oldest waiting\n\
             ber-1  2      41          12 s ago  3        4 min\n\
             ber-2  -      -           never     -        -\n"
        );
        let mut csv = Vec::new();
        table(&rows, true).write_csv(&mut csv).expect("csv");
        assert_eq!(
            String::from_utf8(csv).expect("utf-8"),
            "site,epoch,high_water,heard_seconds_ago,unacknowledged,ack_lag_seconds\n\
             ber-1,2,41,12,3,250\nber-2,,,,,\n"
        );
    }
}
