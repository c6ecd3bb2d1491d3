//! What a sync changes in the teams, read from its catalog changes: a team
//! added or closed, a member who joins or leaves, terms changed. Pure, for
//! `tallyd sync` (and `--dry-run`) to show as it shows lots.

use super::{kind, Change};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;

/// One change to a team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamChange {
    pub team: String,
    /// `added`, `closed`, `joined`, `left` or `terms`.
    pub change: &'static str,
    /// The member who joined or left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// For a team added: its payer and members; for terms: which term, from
    /// what to what.
    pub what: String,
}

impl TeamChange {
    /// One line: `team acme: ann joined`, `team acme: member_limit_cents
    /// none -> 400`.
    pub fn describe(&self) -> String {
        let what = match (self.change, &self.member) {
            ("joined" | "left", Some(m)) => format!("{m} {}", self.change),
            ("terms", _) => self.what.clone(),
            (change, _) if self.what.is_empty() => change.to_string(),
            (change, _) => format!("{change} ({})", self.what),
        };
        format!("team {}: {what}", self.team)
    }
}

/// The team fields that are terms (everything but the member list).
const TERMS: [&str; 7] = [
    "name",
    "payer",
    "share",
    "combine",
    "member_limit_cents",
    "member_limit_minutes",
    "billing",
];

fn parse(body: Option<&str>) -> Value {
    body.and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null)
}

fn members(team: &Value) -> BTreeSet<String> {
    team["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A term's value as a manager reads it: `none` for no limit.
fn shown(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("credits")
            .and_then(Value::as_array)
            .map(|c| {
                c.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_else(|| v.to_string()),
        other => other.to_string(),
    }
}

fn change(team: &str, change: &'static str, member: Option<String>, what: String) -> TeamChange {
    TeamChange {
        team: team.to_string(),
        change,
        member,
        what,
    }
}

fn edited(team: &str, before: &Value, after: &Value, out: &mut Vec<TeamChange>) {
    let (was, now) = (members(before), members(after));
    for m in now.difference(&was) {
        out.push(change(team, "joined", Some(m.clone()), String::new()));
    }
    for m in was.difference(&now) {
        out.push(change(team, "left", Some(m.clone()), String::new()));
    }
    for term in TERMS {
        if before[term] != after[term] {
            let what = format!("{term} {} -> {}", shown(&before[term]), shown(&after[term]));
            out.push(change(team, "terms", None, what));
        }
    }
}

/// The team changes among a sync's catalog changes, in their order.
pub fn team_changes(changes: &[Change]) -> Vec<TeamChange> {
    let mut out = Vec::new();
    for c in changes.iter().filter(|c| c.kind == kind::TEAM) {
        let (before, after) = (parse(c.before.as_deref()), parse(c.after.as_deref()));
        match c.change {
            "added" => {
                let all: Vec<String> = members(&after).into_iter().collect();
                let what = format!(
                    "payer {}, members {}",
                    shown(&after["payer"]),
                    all.join(",")
                );
                out.push(change(&c.subject, "added", None, what));
            }
            "deleted" => out.push(change(&c.subject, "closed", None, String::new())),
            _ => edited(&c.subject, &before, &after, &mut out),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team(members: &str, limit: &str) -> String {
        format!(
            r#"{{"name":"Acme","payer":"boss","members":[{members}],"share":{{"credits":["printing"]}},"combine":false,"member_limit_cents":{limit},"member_limit_minutes":null,"billing":"individual"}}"#
        )
    }

    fn c(change: &'static str, before: Option<String>, after: Option<String>) -> Change {
        Change {
            kind: kind::TEAM,
            subject: "acme".into(),
            change,
            before,
            after,
        }
    }

    #[test]
    fn added_joined_left_terms_and_closed_are_told_apart() {
        let one = team(r#""ann","boss""#, "null");
        let two = team(r#""ben","boss""#, "400");
        let got = team_changes(&[
            c("added", None, Some(one.clone())),
            c("edited", Some(one.clone()), Some(two.clone())),
            c("deleted", Some(two), None),
        ]);
        let brief: Vec<(&str, Option<&str>, &str)> = got
            .iter()
            .map(|t| (t.change, t.member.as_deref(), t.what.as_str()))
            .collect();
        assert_eq!(
            brief,
            [
                ("added", None, "payer boss, members ann,boss"),
                ("joined", Some("ben"), ""),
                ("left", Some("ann"), ""),
                ("terms", None, "member_limit_cents none -> 400"),
                ("closed", None, ""),
            ]
        );
    }

    #[test]
    fn other_catalog_changes_are_not_team_changes() {
        let mut member = c("added", None, Some("{}".into()));
        member.kind = kind::MEMBER;
        assert!(team_changes(&[member]).is_empty());
    }
}
