//! Validation of a parsed grants file into a [`Catalog`]: ids unique and
//! non-empty, every reference (resource type, credit, plan, product) known,
//! dates, amounts and policies well-formed. The first problem is reported
//! with the path of its field and its line. Every amount and cap is at most
//! [`MAX_UNITS`](money::MAX_UNITS).
//!
//! One validator per section, in the file's order: the definitions (time
//! zone, resource types, resources, time credits), plans and products here,
//! members in `members`.

mod members;
mod teams;

use super::{
    Benefit, Catalog, Expiry, Path, Plan, Product, RawBenefit, RawDate, RawFile, RawNamed, RawPlan,
    RawProduct, RawResource, RawTimeCredit, Syntax, TimeCredit,
};
use crate::config::ConfigError;
use crate::error::escape_controls;
use crate::grants::periods::{Frequency, Span};
use crate::ledger::{OveragePolicy, PolicyKind, PRINTING};
use crate::money;
use chrono::NaiveDate;
use chrono_tz::Tz;
use members::Definitions;
use std::collections::{BTreeMap, BTreeSet};

/// Validates `raw`, read from `text` (named `file` in errors).
pub(super) fn catalog(
    raw: RawFile,
    text: &str,
    file: &str,
    syntax: Syntax,
) -> Result<Catalog, ConfigError> {
    Validator { text, file, syntax }.catalog(raw)
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
                Syntax::Json => path.json_line(self.text),
            },
            field: path.dotted(),
            // The message quotes what the file says: a control character in
            // it must not break the one-line error.
            message: escape_controls(&message.into()).into_owned(),
            source: None,
        }
    }

    /// Refuses `text` (the `what` at `path`) when it holds a control
    /// character: ids, names and references reach log lines, tables and
    /// statements, where a newline or an escape could forge a line.
    fn plain(&self, path: &Path, text: &str, what: &str) -> Result<(), ConfigError> {
        if text.chars().any(char::is_control) {
            return Err(self.err(
                path,
                format!(
                    "{what} `{text}` contains a control character (a newline, carriage return, escape, tab or NUL); refused"
                ),
            ));
        }
        Ok(())
    }

    /// `name` (the `what` at `path`), if given, refused when it holds a
    /// control character.
    fn name(&self, path: &Path, name: &Option<String>, what: &str) -> Result<(), ConfigError> {
        match name {
            Some(n) => self.plain(path, n, what),
            None => Ok(()),
        }
    }

    fn id(
        &self,
        path: &Path,
        id: &str,
        seen: &mut BTreeSet<String>,
        what: &str,
    ) -> Result<String, ConfigError> {
        // Before trimming: a trailing newline is a control character too.
        self.plain(path, id, &format!("{what} id"))?;
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

    /// A benefit's or an account grant's amount: from 1 to [`MAX_UNITS`](money::MAX_UNITS).
    fn amount(&self, path: &Path, amount: i64) -> Result<i64, ConfigError> {
        money::positive(amount).map_err(|e| self.err(path, format!("amount {e}")))
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
        // A cap is from 0 to MAX_UNITS, like any amount.
        for (field, cap) in [
            ("overage_cap_cents", cents),
            ("overage_cap_minutes", minutes),
        ] {
            if let Some(Err(e)) = cap.map(money::non_negative) {
                return Err(self.err(&path.key(field), e.to_string()));
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
            self.plain(&p.key("credit"), &b.credit, "credit")?;
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
        let tz = self.timezone(&root, raw.timezone.as_deref())?;
        let printing_name = raw.printing.and_then(|p| p.name);
        self.name(&root.key("printing").key("name"), &printing_name, "name")?;
        let printing_name = printing_name.unwrap_or_else(|| "Printing credit".into());
        let resource_types = self.resource_types(&root, &raw.resource_types)?;
        let resources = self.resources(&root, &raw.resources, &resource_types)?;
        let time_credits = self.time_credits(&root, &raw.time_credits, &resource_types)?;
        // What a benefit or an account grant may be paid in.
        let credits: BTreeSet<String> = std::iter::once(PRINTING.to_string())
            .chain(time_credits.keys().cloned())
            .collect();
        let plans = self.plans(&root, &raw.plans, &credits)?;
        let products = self.products(&root, &raw.products, &credits)?;
        let defined = Definitions {
            credits: &credits,
            plans: &plans,
            products: &products,
        };
        let members = self.members(&root, &raw.members, &defined)?;
        let teams = self.teams(&root, &raw.teams, &members, &credits)?;
        Ok(Catalog {
            tz,
            printing_name,
            resource_types,
            resources,
            time_credits,
            plans,
            products,
            members,
            teams,
        })
    }

    /// The zone plan periods are anchored in, if the file names one.
    fn timezone(&self, root: &Path, name: Option<&str>) -> Result<Option<Tz>, ConfigError> {
        let Some(t) = name else {
            return Ok(None);
        };
        let tz = t.parse::<Tz>().map_err(|_| {
            self.err(
                &root.key("timezone"),
                format!("unknown time zone `{t}` (use an IANA name like Europe/Lisbon)"),
            )
        })?;
        Ok(Some(tz))
    }

    /// Resource types by id, with their names (the id when unnamed).
    fn resource_types(
        &self,
        root: &Path,
        raw: &[RawNamed],
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        let mut seen = BTreeSet::new();
        let mut resource_types = BTreeMap::new();
        for (i, rt) in raw.iter().enumerate() {
            let p = root.at("resource_type", i);
            let id = self.id(&p.key("id"), &rt.id, &mut seen, "resource type")?;
            self.name(&p.key("name"), &rt.name, "name")?;
            resource_types.insert(id.clone(), rt.name.clone().unwrap_or(id));
        }
        Ok(resource_types)
    }

    /// Resources by id, with their (known) resource type.
    fn resources(
        &self,
        root: &Path,
        raw: &[RawResource],
        resource_types: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        let mut seen = BTreeSet::new();
        let mut resources = BTreeMap::new();
        for (i, r) in raw.iter().enumerate() {
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
        Ok(resources)
    }

    /// Time credits by id: counted in minutes, paying for known resource
    /// types, never named `printing`.
    fn time_credits(
        &self,
        root: &Path,
        raw: &[RawTimeCredit],
        resource_types: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, TimeCredit>, ConfigError> {
        let mut seen = BTreeSet::from([PRINTING.to_string()]);
        let mut time_credits = BTreeMap::new();
        for (i, tc) in raw.iter().enumerate() {
            let p = root.at("time_credit", i);
            if tc.id == PRINTING {
                return Err(self.err(
                    &p.key("id"),
                    "`printing` is the printing credit; choose another id",
                ));
            }
            let id = self.id(&p.key("id"), &tc.id, &mut seen, "time credit")?;
            self.name(&p.key("name"), &tc.name, "name")?;
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
        Ok(time_credits)
    }

    /// Plans by id: how often they renew, their overage policy and the
    /// benefits issued each period (expiring with it unless told).
    fn plans(
        &self,
        root: &Path,
        raw: &[RawPlan],
        credits: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, Plan>, ConfigError> {
        let mut seen = BTreeSet::new();
        let mut plans = BTreeMap::new();
        for (i, pl) in raw.iter().enumerate() {
            let p = root.at("plan", i);
            let id = self.id(&p.key("id"), &pl.id, &mut seen, "plan")?;
            self.name(&p.key("name"), &pl.name, "name")?;
            let renews = self.renews(&p.key("renews"), &pl.renews)?;
            let policy = self.policy(
                &p,
                &pl.overage_policy,
                pl.overage_cap_cents,
                pl.overage_cap_minutes,
            )?;
            let benefits = self.benefits(&p, &pl.benefits, credits, Expiry::Period)?;
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
        Ok(plans)
    }

    /// A plan's renewal frequency: weekly, monthly, quarterly or yearly.
    fn renews(&self, path: &Path, text: &str) -> Result<Frequency, ConfigError> {
        serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|_| {
            self.err(
                path,
                format!("`{text}` is not weekly, monthly, quarterly or yearly"),
            )
        })
    }

    /// Products by id: one-off purchases whose benefits never expire unless
    /// told.
    fn products(
        &self,
        root: &Path,
        raw: &[RawProduct],
        credits: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, Product>, ConfigError> {
        let mut seen = BTreeSet::new();
        let mut products = BTreeMap::new();
        for (i, pr) in raw.iter().enumerate() {
            let p = root.at("product", i);
            let id = self.id(&p.key("id"), &pr.id, &mut seen, "product")?;
            self.name(&p.key("name"), &pr.name, "name")?;
            let benefits = self.benefits(&p, &pr.benefits, credits, Expiry::Never)?;
            products.insert(
                id.clone(),
                Product {
                    name: pr.name.clone().unwrap_or(id),
                    benefits,
                },
            );
        }
        Ok(products)
    }
}
