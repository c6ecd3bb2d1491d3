//! `tallyd check-ledger`'s "teams against the catalog": the teams a usage
//! draws on (who is in which team, whose lots pool, the limits) are what
//! the last sync wrote, and the catalog keeps the file's teams as that sync
//! applied them. A member put in a team by hand, a limit raised, a share
//! widened, all disagree with the catalog. The comparison is pure; reading
//! both sides is the ledger's.

use super::reconcile::kind;
use crate::ledger::catalog;
use crate::ledger::schema;
use crate::ledger::teams::{definitions, stray_members, Definition, ALL};
use crate::ledger::Result;
use rusqlite::Connection;
use serde_json::Value;

/// A team's definition as its catalog body (a `model::Team`) says.
fn from_body(id: &str, body: &str) -> Definition {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let strings = |v: &Value| -> Vec<String> {
        let mut out: Vec<String> = v
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    };
    let shares = match &v["share"] {
        Value::String(s) if s == "all" => vec![ALL.to_string()],
        other => strings(&other["credits"]),
    };
    Definition {
        id: id.to_string(),
        name: v["name"].as_str().unwrap_or_default().to_string(),
        payer: v["payer"].as_str().unwrap_or_default().to_string(),
        members: strings(&v["members"]),
        shares,
        combine: v["combine"].as_bool().unwrap_or(false),
        limit_cents: v["member_limit_cents"].as_i64(),
        limit_minutes: v["member_limit_minutes"].as_i64(),
        billing: v["billing"].as_str().unwrap_or_default().to_string(),
    }
}

/// The first way the ledger's open teams differ from the catalog's, if any
/// (both sorted by id).
pub fn disagreement(catalog: &[Definition], ledger: &[Definition]) -> Option<String> {
    for want in catalog {
        match ledger.iter().find(|t| t.id == want.id) {
            None => return Some(format!("team `{}` is in the catalog but not open", want.id)),
            Some(got) if got != want => {
                return Some(format!(
                    "team `{}` is {got:?} but the catalog says {want:?}",
                    want.id
                ))
            }
            Some(_) => {}
        }
    }
    ledger
        .iter()
        .find(|t| !catalog.iter().any(|c| c.id == t.id))
        .map(|t| format!("team `{}` is open but not in the catalog", t.id))
}

/// The check: `Ok(Ok(detail))` when the teams agree, `Ok(Err(why))` when
/// not.
pub fn check(conn: &Connection) -> Result<std::result::Result<String, String>> {
    let version = schema::version(conn)?;
    if version < schema::TEAMS {
        return Ok(Ok(format!("the ledger predates teams (schema {version})")));
    }
    if let Some((member, team)) = stray_members(conn)?.into_iter().next() {
        return Ok(Err(format!(
            "member `{member}` is in team `{team}`, which is not open"
        )));
    }
    let mut want: Vec<Definition> = catalog::rows(conn)?
        .into_iter()
        .filter(|((k, _), _)| k == kind::TEAM)
        .map(|((_, id), row)| from_body(&id, &row.body))
        .collect();
    want.sort_by(|a, b| a.id.cmp(&b.id));
    let got = definitions(conn)?;
    Ok(match disagreement(&want, &got) {
        Some(why) => Err(why),
        None => Ok(format!("{} teams agree", got.len())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"name":"Acme","payer":"boss","members":["boss","ann"],"share":{"credits":["printing"]},"combine":false,"member_limit_cents":400,"member_limit_minutes":null,"billing":"individual"}"#;

    #[test]
    fn a_catalog_body_reads_as_the_sync_writes_it() {
        let d = from_body("acme", BODY);
        assert_eq!(d.members, ["ann", "boss"]);
        assert_eq!(d.shares, ["printing"]);
        assert_eq!((d.limit_cents, d.limit_minutes), (Some(400), None));
        let all = from_body(
            "acme",
            &BODY.replace(r#"{"credits":["printing"]}"#, r#""all""#),
        );
        assert_eq!(all.shares, [ALL]);
    }

    #[test]
    fn a_member_added_or_a_limit_raised_by_hand_disagrees() {
        let want = vec![from_body("acme", BODY)];
        assert_eq!(disagreement(&want, &want), None);
        let mut got = want.clone();
        got[0].members.push("eve".into());
        assert!(disagreement(&want, &got).is_some_and(|w| w.contains("team `acme` is")));
        let mut got = want.clone();
        got[0].limit_cents = None;
        assert!(disagreement(&want, &got).is_some());
        assert!(disagreement(&want, &[]).is_some_and(|w| w.contains("in the catalog but not open")));
        assert!(disagreement(&[], &want).is_some_and(|w| w.contains("not in the catalog")));
    }
}
