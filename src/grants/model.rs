//! The central grants file: its serde shape (TOML, or the same structure in
//! JSON), the validated [`Catalog`] it becomes, and [`parse`], which reads one
//! into the other (the rules are in `validate`). Every problem is reported
//! with the file, line (TOML and JSON: `json_line` finds it in JSON) and the
//! field's path.

use super::periods::{Frequency, Span};
use crate::config::{line_of, ConfigError};
use crate::ledger::OveragePolicy;
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod json_line;
mod validate;

/// A date written as a TOML date (`2026-01-31`) or a string (`"2026-01-31"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawDate {
    Text(String),
    Toml(toml::value::Datetime),
}

impl RawDate {
    fn date(&self) -> Option<NaiveDate> {
        let text = match self {
            RawDate::Text(t) => t.clone(),
            RawDate::Toml(d) => d.to_string(),
        };
        NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    printing: Option<RawPrinting>,
    #[serde(default, rename = "resource_type")]
    resource_types: Vec<RawNamed>,
    #[serde(default, rename = "resource")]
    resources: Vec<RawResource>,
    #[serde(default, rename = "time_credit")]
    time_credits: Vec<RawTimeCredit>,
    #[serde(default, rename = "plan")]
    plans: Vec<RawPlan>,
    #[serde(default, rename = "product")]
    products: Vec<RawProduct>,
    #[serde(default, rename = "member")]
    members: Vec<RawMember>,
    #[serde(default, rename = "team")]
    teams: Vec<RawTeam>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrinting {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNamed {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResource {
    id: String,
    #[serde(rename = "type")]
    resource_type: String,
    #[serde(default, rename = "name")]
    _name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeCredit {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "minutes")]
    unit: String,
    resource_types: Vec<String>,
}

fn minutes() -> String {
    "minutes".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBenefit {
    #[serde(default)]
    id: Option<String>,
    credit: String,
    amount: i64,
    #[serde(default)]
    expires: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    id: String,
    #[serde(default)]
    name: Option<String>,
    renews: String,
    #[serde(default)]
    overage_policy: Option<String>,
    #[serde(default)]
    overage_cap_cents: Option<i64>,
    #[serde(default)]
    overage_cap_minutes: Option<i64>,
    #[serde(default, rename = "benefit")]
    benefits: Vec<RawBenefit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProduct {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "benefit")]
    benefits: Vec<RawBenefit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMember {
    id: String,
    name: String,
    #[serde(default)]
    cards: Vec<String>,
    #[serde(default)]
    print_users: Vec<String>,
    #[serde(default)]
    overage_policy: Option<String>,
    #[serde(default)]
    overage_cap_cents: Option<i64>,
    #[serde(default)]
    overage_cap_minutes: Option<i64>,
    #[serde(default)]
    home_site: Option<String>,
    #[serde(default, rename = "plan")]
    subscriptions: Vec<RawSubscription>,
    #[serde(default, rename = "product")]
    purchases: Vec<RawPurchase>,
    #[serde(default, rename = "grant")]
    grants: Vec<RawAccountGrant>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeam {
    id: String,
    #[serde(default)]
    name: Option<String>,
    payer: String,
    members: Vec<String>,
    share: RawShare,
    #[serde(default)]
    combine: bool,
    #[serde(default)]
    member_limit_cents: Option<i64>,
    #[serde(default)]
    member_limit_minutes: Option<i64>,
    #[serde(default)]
    billing: Option<String>,
}

/// `share = "all"` or a list of credits (`["printing", "meeting-hours"]`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawShare {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubscription {
    plan: String,
    start: RawDate,
    #[serde(default)]
    end: Option<RawDate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPurchase {
    product: String,
    date: RawDate,
    reference: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccountGrant {
    #[serde(default)]
    id: Option<String>,
    credit: String,
    amount: i64,
    from: RawDate,
    #[serde(default)]
    until: Option<RawDate>,
}

/// When a benefit's lot expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Expiry {
    /// At the end of the plan period it was issued for (plans' default).
    Period,
    /// A custom duration from the start of its validity (carry-over).
    After(Span),
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Benefit {
    pub id: String,
    pub credit: String,
    pub amount: i64,
    pub expires: Expiry,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeCredit {
    pub name: String,
    pub resource_types: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub name: String,
    pub renews: Frequency,
    pub policy: Option<OveragePolicy>,
    pub benefits: Vec<Benefit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    pub name: String,
    pub benefits: Vec<Benefit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscription {
    pub plan: String,
    pub start: NaiveDate,
    pub end: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Purchase {
    pub product: String,
    pub date: NaiveDate,
    pub reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountGrant {
    pub id: String,
    pub credit: String,
    pub amount: i64,
    pub from: NaiveDate,
    /// Last day it can be used (inclusive), if any.
    pub until: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub id: String,
    pub name: String,
    /// Uppercase hex.
    pub cards: Vec<String>,
    /// Lowercase, without `DOMAIN\` or `@domain`.
    pub print_users: Vec<String>,
    pub policy: Option<OveragePolicy>,
    /// The chain site this member uses most (`home_site`): there escrow may
    /// hold all of their unescrowed credit and stays 7 days idle; elsewhere
    /// half, returned after 24 hours idle (multi-site.md 3.5). Left out
    /// of the catalog body when absent, so a member without one reads as
    /// unchanged to a ledger synced before the field existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home_site: Option<String>,
    pub subscriptions: Vec<Subscription>,
    pub purchases: Vec<Purchase>,
    pub grants: Vec<AccountGrant>,
}

/// Which credits a team pools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Share {
    /// Every credit: printing and every time credit.
    All,
    /// These credits (`printing` and time credit ids), sorted.
    Credits(Vec<String>),
}

/// Who owes a team member's overage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Billing {
    /// Each member owes their own, under their own policy (the default).
    Individual,
    /// The payer owes it, under the payer's policy and cap.
    Merged,
}

impl Billing {
    pub fn as_str(self) -> &'static str {
        match self {
            Billing::Individual => "individual",
            Billing::Merged => "merged",
        }
    }
}

/// A company: members who share the payer's credit (see README "Teams").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Team {
    pub name: String,
    /// A member id; always one of `members`.
    pub payer: String,
    /// Member ids, sorted; each in no other team.
    pub members: Vec<String>,
    pub share: Share,
    /// Members' own plan lots of shared credits join the pool.
    pub combine: bool,
    /// Most a member may take from the pool in a calendar month.
    pub member_limit_cents: Option<i64>,
    pub member_limit_minutes: Option<i64>,
    pub billing: Billing,
}

/// A validated grants file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Catalog {
    #[serde(skip)]
    pub tz: Option<Tz>,
    pub printing_name: String,
    pub resource_types: BTreeMap<String, String>,
    pub resources: BTreeMap<String, String>,
    pub time_credits: BTreeMap<String, TimeCredit>,
    pub plans: BTreeMap<String, Plan>,
    pub products: BTreeMap<String, Product>,
    pub members: BTreeMap<String, Member>,
    pub teams: BTreeMap<String, Team>,
}

/// A location in the file, for errors: `member[2].plan[0].start`.
#[derive(Debug, Clone, Default)]
pub struct Path(Vec<Seg>);

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

impl Path {
    fn key(&self, k: &str) -> Path {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }

    fn at(&self, k: &str, i: usize) -> Path {
        let mut p = self.key(k);
        p.0.push(Seg::Index(i));
        p
    }

    fn at_index(mut self, i: usize) -> Path {
        self.0.push(Seg::Index(i));
        self
    }

    fn dotted(&self) -> String {
        let mut s = String::new();
        for seg in &self.0 {
            match seg {
                Seg::Key(k) if s.is_empty() => s.push_str(k),
                Seg::Key(k) => {
                    s.push('.');
                    s.push_str(k);
                }
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }

    /// The line of this path in a TOML document, if it can be found.
    fn line(&self, text: &str) -> Option<usize> {
        let doc = toml_edit::Document::parse(text.to_string()).ok()?;
        let mut item: &toml_edit::Item = doc.as_item();
        let mut last_span = None;
        for seg in &self.0 {
            let next = match seg {
                Seg::Key(k) => item.get(k.as_str()),
                Seg::Index(i) => item.get(*i),
            };
            match next {
                Some(n) => {
                    item = n;
                    last_span = item.span().or(last_span);
                }
                None => break,
            }
        }
        last_span.map(|s| line_of(text, s.start))
    }
}

/// Which syntax a grants file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Toml,
    Json,
}

impl Syntax {
    /// JSON if the name ends in `.json` or the text starts with `{`.
    pub fn guess(name: &str, text: &str) -> Syntax {
        if name.ends_with(".json") || text.trim_start().starts_with('{') {
            Syntax::Json
        } else {
            Syntax::Toml
        }
    }
}

/// Parses and validates a grants file; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Catalog, ConfigError> {
    let syntax = Syntax::guess(file, text);
    let raw: RawFile = match syntax {
        Syntax::Toml => toml::from_str(text).map_err(|e| ConfigError {
            file: file.into(),
            line: e.span().map(|s| line_of(text, s.start)),
            field: e
                .span()
                .map(|s| crate::config::field_at(text, s.start, e.message()))
                .unwrap_or_else(|| "(syntax)".into()),
            message: e.message().trim().to_string(),
            source: None,
        })?,
        Syntax::Json => serde_json::from_str(text).map_err(|e| ConfigError {
            file: file.into(),
            line: Some(e.line()),
            field: "(json)".into(),
            message: e.to_string(),
            source: Some(std::sync::Arc::new(e)),
        })?,
    };
    validate::catalog(raw, text, file, syntax)
}
