//! The central grants file: its serde shape (TOML, or the same structure in
//! JSON) and validation into a [`Catalog`]. Every problem is reported with the
//! file, line (TOML; JSON syntax errors too) and the field's path.

use super::periods::{Frequency, Span};
use crate::config::{line_of, ConfigError};
use crate::ids::normalize_print_user;
use crate::ledger::{OveragePolicy, PolicyKind, PRINTING};
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

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
    #[serde(default, rename = "plan")]
    subscriptions: Vec<RawSubscription>,
    #[serde(default, rename = "product")]
    purchases: Vec<RawPurchase>,
    #[serde(default, rename = "grant")]
    grants: Vec<RawAccountGrant>,
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
    pub subscriptions: Vec<Subscription>,
    pub purchases: Vec<Purchase>,
    pub grants: Vec<AccountGrant>,
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
    let v = Validator { text, file, syntax };
    v.catalog(raw)
}

struct Validator<'a> {
    text: &'a str,
    file: &'a str,
    syntax: Syntax,
}

impl Validator<'_> {
    fn err(&self, path: &Path, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.into(),
            line: match self.syntax {
                Syntax::Toml => path.line(self.text),
                Syntax::Json => None,
            },
            field: path.dotted(),
            message: message.into(),
            source: None,
        }
    }

    fn id(
        &self,
        path: &Path,
        id: &str,
        seen: &mut BTreeSet<String>,
        what: &str,
    ) -> Result<String, ConfigError> {
        let id = id.trim();
        if id.is_empty() {
            return Err(self.err(path, format!("{what} id must not be empty")));
        }
        if !seen.insert(id.to_string()) {
            return Err(self.err(path, format!("duplicate {what} id `{id}`")));
        }
        Ok(id.to_string())
    }

    fn date(&self, path: &Path, d: &RawDate) -> Result<NaiveDate, ConfigError> {
        d.date()
            .ok_or_else(|| self.err(path, "not a date (YYYY-MM-DD)"))
    }

    fn amount(&self, path: &Path, amount: i64) -> Result<i64, ConfigError> {
        if amount <= 0 {
            return Err(self.err(path, format!("amount must be more than zero, got {amount}")));
        }
        Ok(amount)
    }

    fn policy(
        &self,
        path: &Path,
        kind: &Option<String>,
        cents: Option<i64>,
        minutes: Option<i64>,
    ) -> Result<Option<OveragePolicy>, ConfigError> {
        let Some(kind) = kind else {
            if cents.is_some() || minutes.is_some() {
                return Err(self.err(
                    &path.key("overage_policy"),
                    "an overage cap needs overage_policy = \"credits-then-invoice\"",
                ));
            }
            return Ok(None);
        };
        let kind = PolicyKind::parse(kind).ok_or_else(|| {
            self.err(
                &path.key("overage_policy"),
                format!("`{kind}` is not `credits-only` or `credits-then-invoice`"),
            )
        })?;
        for (field, cap) in [
            ("overage_cap_cents", cents),
            ("overage_cap_minutes", minutes),
        ] {
            if cap.is_some_and(|c| c < 0) {
                return Err(self.err(&path.key(field), "must not be negative"));
            }
        }
        Ok(Some(OveragePolicy {
            kind,
            cap_cents: cents,
            cap_minutes: minutes,
        }))
    }

    fn benefits(
        &self,
        path: &Path,
        raw: &[RawBenefit],
        credits: &BTreeSet<String>,
        default: Expiry,
    ) -> Result<Vec<Benefit>, ConfigError> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (i, b) in raw.iter().enumerate() {
            let p = path.at("benefit", i);
            let id = match &b.id {
                Some(id) => self.id(&p.key("id"), id, &mut seen, "benefit")?,
                None => {
                    return Err(self.err(&p, "a benefit needs a stable `id` (lots are keyed by it)"))
                }
            };
            if !credits.contains(&b.credit) {
                return Err(self.err(&p.key("credit"), format!("unknown credit `{}`", b.credit)));
            }
            let expires = match b.expires.as_deref().map(str::trim) {
                None => default,
                Some("period") if default == Expiry::Period => Expiry::Period,
                Some("period") => {
                    return Err(self.err(&p.key("expires"), "`period` applies to plan benefits only; use `never` or a duration like `6 months`"))
                }
                Some("never") => Expiry::Never,
                Some(text) => Expiry::After(Span::parse(text).ok_or_else(|| {
                    self.err(
                        &p.key("expires"),
                        format!("`{text}` is not `period`, `never` or a duration like `3 months`"),
                    )
                })?),
            };
            out.push(Benefit {
                id,
                credit: b.credit.clone(),
                amount: self.amount(&p.key("amount"), b.amount)?,
                expires,
            });
        }
        Ok(out)
    }

    fn catalog(&self, raw: RawFile) -> Result<Catalog, ConfigError> {
        let root = Path::default();
        let tz = match &raw.timezone {
            Some(t) => Some(t.parse::<Tz>().map_err(|_| {
                self.err(
                    &root.key("timezone"),
                    format!("unknown time zone `{t}` (use an IANA name like Europe/Lisbon)"),
                )
            })?),
            None => None,
        };
        let printing_name = raw
            .printing
            .and_then(|p| p.name)
            .unwrap_or_else(|| "Printing credit".into());
        let mut seen = BTreeSet::new();
        let mut resource_types = BTreeMap::new();
        for (i, rt) in raw.resource_types.iter().enumerate() {
            let p = root.at("resource_type", i);
            let id = self.id(&p.key("id"), &rt.id, &mut seen, "resource type")?;
            resource_types.insert(id.clone(), rt.name.clone().unwrap_or(id));
        }
        let mut seen = BTreeSet::new();
        let mut resources = BTreeMap::new();
        for (i, r) in raw.resources.iter().enumerate() {
            let p = root.at("resource", i);
            let id = self.id(&p.key("id"), &r.id, &mut seen, "resource")?;
            if !resource_types.contains_key(&r.resource_type) {
                return Err(self.err(
                    &p.key("type"),
                    format!("unknown resource type `{}`", r.resource_type),
                ));
            }
            resources.insert(id, r.resource_type.clone());
        }
        let mut seen = BTreeSet::from([PRINTING.to_string()]);
        let mut time_credits = BTreeMap::new();
        for (i, tc) in raw.time_credits.iter().enumerate() {
            let p = root.at("time_credit", i);
            if tc.id == PRINTING {
                return Err(self.err(
                    &p.key("id"),
                    "`printing` is the printing credit; choose another id",
                ));
            }
            let id = self.id(&p.key("id"), &tc.id, &mut seen, "time credit")?;
            if tc.unit != "minutes" {
                return Err(self.err(
                    &p.key("unit"),
                    format!("time credits count minutes, not `{}`", tc.unit),
                ));
            }
            for (j, rt) in tc.resource_types.iter().enumerate() {
                if !resource_types.contains_key(rt) {
                    return Err(self.err(
                        &p.at("resource_types", j),
                        format!("unknown resource type `{rt}`"),
                    ));
                }
            }
            time_credits.insert(
                id.clone(),
                TimeCredit {
                    name: tc.name.clone().unwrap_or(id),
                    resource_types: tc.resource_types.clone(),
                },
            );
        }
        let credits: BTreeSet<String> = seen;
        let mut seen = BTreeSet::new();
        let mut plans = BTreeMap::new();
        for (i, pl) in raw.plans.iter().enumerate() {
            let p = root.at("plan", i);
            let id = self.id(&p.key("id"), &pl.id, &mut seen, "plan")?;
            let renews: Frequency = serde_json::from_value(serde_json::Value::String(
                pl.renews.clone(),
            ))
            .map_err(|_| {
                self.err(
                    &p.key("renews"),
                    format!(
                        "`{}` is not weekly, monthly, quarterly or yearly",
                        pl.renews
                    ),
                )
            })?;
            let policy = self.policy(
                &p,
                &pl.overage_policy,
                pl.overage_cap_cents,
                pl.overage_cap_minutes,
            )?;
            let benefits = self.benefits(&p, &pl.benefits, &credits, Expiry::Period)?;
            plans.insert(
                id.clone(),
                Plan {
                    name: pl.name.clone().unwrap_or(id),
                    renews,
                    policy,
                    benefits,
                },
            );
        }
        let mut seen = BTreeSet::new();
        let mut products = BTreeMap::new();
        for (i, pr) in raw.products.iter().enumerate() {
            let p = root.at("product", i);
            let id = self.id(&p.key("id"), &pr.id, &mut seen, "product")?;
            let benefits = self.benefits(&p, &pr.benefits, &credits, Expiry::Never)?;
            products.insert(
                id.clone(),
                Product {
                    name: pr.name.clone().unwrap_or(id),
                    benefits,
                },
            );
        }
        let mut members = BTreeMap::new();
        let (mut seen, mut cards, mut users) = (BTreeSet::new(), BTreeMap::new(), BTreeMap::new());
        for (i, m) in raw.members.iter().enumerate() {
            let p = root.at("member", i);
            let id = self.id(&p.key("id"), &m.id, &mut seen, "member")?;
            let member = self.member(
                &p, &id, m, &credits, &plans, &products, &mut cards, &mut users,
            )?;
            members.insert(id, member);
        }
        Ok(Catalog {
            tz,
            printing_name,
            resource_types,
            resources,
            time_credits,
            plans,
            products,
            members,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn member(
        &self,
        p: &Path,
        id: &str,
        m: &RawMember,
        credits: &BTreeSet<String>,
        plans: &BTreeMap<String, Plan>,
        products: &BTreeMap<String, Product>,
        cards: &mut BTreeMap<String, String>,
        users: &mut BTreeMap<String, String>,
    ) -> Result<Member, ConfigError> {
        let mut member_cards = Vec::new();
        for (j, c) in m.cards.iter().enumerate() {
            // Stored as readers report cards: uppercase hex, at least 10
            // digits (leading zeros kept), an even number of them.
            let Some(card) = crate::ids::CardId::parse(c.trim()).map(|id| id.as_str().to_string())
            else {
                return Err(self.err(
                    &p.at("cards", j),
                    format!("card id `{c}` is not hex digits"),
                ));
            };
            if let Some(other) = cards.insert(card.clone(), id.to_string()) {
                return Err(self.err(
                    &p.at("cards", j),
                    format!("card `{card}` is also member `{other}`'s"),
                ));
            }
            member_cards.push(card);
        }
        let mut print_users = Vec::new();
        for (j, u) in m.print_users.iter().enumerate() {
            let user = normalize_print_user(u);
            if user.is_empty() {
                return Err(self.err(&p.at("print_users", j), "empty print user name"));
            }
            if let Some(other) = users.insert(user.clone(), id.to_string()) {
                if other != id {
                    return Err(self.err(
                        &p.at("print_users", j),
                        format!("print user `{user}` is also member `{other}`'s"),
                    ));
                }
            }
            print_users.push(user);
        }
        let policy = self.policy(
            p,
            &m.overage_policy,
            m.overage_cap_cents,
            m.overage_cap_minutes,
        )?;
        let mut subscriptions = Vec::new();
        for (j, s) in m.subscriptions.iter().enumerate() {
            let sp = p.at("plan", j);
            if !plans.contains_key(&s.plan) {
                return Err(self.err(&sp.key("plan"), format!("unknown plan `{}`", s.plan)));
            }
            let start = self.date(&sp.key("start"), &s.start)?;
            let end = match &s.end {
                Some(e) => Some(self.date(&sp.key("end"), e)?),
                None => None,
            };
            if end.is_some_and(|e| e < start) {
                return Err(self.err(&sp.key("end"), "end is before start"));
            }
            subscriptions.push(Subscription {
                plan: s.plan.clone(),
                start,
                end,
            });
        }
        let mut purchases = Vec::new();
        let mut refs = BTreeSet::new();
        for (j, pu) in m.purchases.iter().enumerate() {
            let pp = p.at("product", j);
            if !products.contains_key(&pu.product) {
                return Err(self.err(
                    &pp.key("product"),
                    format!("unknown product `{}`", pu.product),
                ));
            }
            if pu.reference.trim().is_empty() {
                return Err(self.err(
                    &pp.key("reference"),
                    "a purchase needs a reference (lots are keyed by it)",
                ));
            }
            if !refs.insert((pu.product.clone(), pu.reference.clone())) {
                return Err(self.err(
                    &pp.key("reference"),
                    format!("duplicate purchase reference `{}`", pu.reference),
                ));
            }
            let date = self.date(&pp.key("date"), &pu.date)?;
            purchases.push(Purchase {
                product: pu.product.clone(),
                date,
                reference: pu.reference.clone(),
            });
        }
        let mut grants = Vec::new();
        let mut seen = BTreeSet::new();
        for (j, g) in m.grants.iter().enumerate() {
            let gp = p.at("grant", j);
            let gid = match &g.id {
                Some(gid) => self.id(&gp.key("id"), gid, &mut seen, "account grant")?,
                None => return Err(self.err(&gp, "an account grant needs a stable `id`")),
            };
            if !credits.contains(&g.credit) {
                return Err(self.err(&gp.key("credit"), format!("unknown credit `{}`", g.credit)));
            }
            let from = self.date(&gp.key("from"), &g.from)?;
            let until = match &g.until {
                Some(u) => Some(self.date(&gp.key("until"), u)?),
                None => None,
            };
            if until.is_some_and(|u| u < from) {
                return Err(self.err(&gp.key("until"), "until is before from"));
            }
            grants.push(AccountGrant {
                id: gid,
                credit: g.credit.clone(),
                amount: self.amount(&gp.key("amount"), g.amount)?,
                from,
                until,
            });
        }
        Ok(Member {
            id: id.to_string(),
            name: m.name.clone(),
            cards: member_cards,
            print_users,
            policy,
            subscriptions,
            purchases,
            grants,
        })
    }
}
