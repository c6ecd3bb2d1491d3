//! A grants file's members: their cards and print user names (each belongs
//! to one member only), overage policy, plan subscriptions, product purchases
//! and account grants, each checked against what the rest of the file defines.

use super::super::{
    AccountGrant, Member, Path, Plan, Product, Purchase, RawAccountGrant, RawMember, RawPurchase,
    RawSubscription, Subscription,
};
use super::Validator;
use crate::config::ConfigError;
use crate::ids::normalize_print_user;
use std::collections::{BTreeMap, BTreeSet};

/// What the file defines that a member's entries may refer to.
pub(super) struct Definitions<'a> {
    /// `printing` and every time credit's id.
    pub(super) credits: &'a BTreeSet<String>,
    pub(super) plans: &'a BTreeMap<String, Plan>,
    pub(super) products: &'a BTreeMap<String, Product>,
}

/// Which member each card and print user name seen so far belongs to.
#[derive(Default)]
struct Owners {
    cards: BTreeMap<String, String>,
    print_users: BTreeMap<String, String>,
}

impl Validator<'_> {
    /// Members by id. No card and no print user belongs to two members, and
    /// no two ids differ only by case (`ALICE` beside `alice` would be two
    /// accounts that read as one on a statement or at the CLI).
    pub(super) fn members(
        &self,
        root: &Path,
        raw: &[RawMember],
        defined: &Definitions<'_>,
    ) -> Result<BTreeMap<String, Member>, ConfigError> {
        let mut members = BTreeMap::new();
        let mut seen = BTreeSet::new();
        let mut folded = BTreeMap::new();
        let mut owners = Owners::default();
        for (i, m) in raw.iter().enumerate() {
            let p = root.at("member", i);
            let id = self.id(&p.key("id"), &m.id, &mut seen, "member")?;
            if let Some(other) = folded.insert(id.to_lowercase(), id.clone()) {
                return Err(self.err(
                    &p.key("id"),
                    format!(
                        "member id `{id}` differs from member `{other}` only by case; ambiguous"
                    ),
                ));
            }
            let member = self.member(&p, &id, m, defined, &mut owners)?;
            members.insert(id, member);
        }
        Ok(members)
    }

    fn member(
        &self,
        p: &Path,
        id: &str,
        m: &RawMember,
        defined: &Definitions<'_>,
        owners: &mut Owners,
    ) -> Result<Member, ConfigError> {
        // Fields are evaluated in the order written, which is the file's: the
        // first problem in it is the one reported.
        self.plain(&p.key("name"), &m.name, "name")?;
        Ok(Member {
            id: id.to_string(),
            name: m.name.clone(),
            cards: self.cards(p, id, &m.cards, &mut owners.cards)?,
            print_users: self.print_users(p, id, &m.print_users, &mut owners.print_users)?,
            policy: self.policy(
                p,
                &m.overage_policy,
                m.overage_cap_cents,
                m.overage_cap_minutes,
            )?,
            home_site: self.home_site(p, &m.home_site)?,
            subscriptions: self.subscriptions(p, &m.subscriptions, defined.plans)?,
            purchases: self.purchases(p, &m.purchases, defined.products)?,
            grants: self.account_grants(p, &m.grants, defined.credits)?,
        })
    }

    /// A member's home site: a site id as `[central] site_id` takes it.
    fn home_site(&self, p: &Path, raw: &Option<String>) -> Result<Option<String>, ConfigError> {
        let Some(site) = raw else { return Ok(None) };
        let p = p.key("home_site");
        self.plain(&p, site, "home site")?;
        if !crate::config::is_site_id(site) {
            return Err(self.err(
                &p,
                format!("home_site {site:?} is not a site id: letters, digits, '-', '_' and '.', at most 64"),
            ));
        }
        Ok(Some(site.clone()))
    }

    /// Member `id`'s cards, as readers report them; none already another
    /// member's.
    fn cards(
        &self,
        p: &Path,
        id: &str,
        raw: &[String],
        owners: &mut BTreeMap<String, String>,
    ) -> Result<Vec<String>, ConfigError> {
        let mut member_cards = Vec::new();
        for (j, c) in raw.iter().enumerate() {
            self.plain(&p.at("cards", j), c, "card id")?;
            // Stored as readers report cards: uppercase hex, at least 10
            // digits (leading zeros kept), an even number of them.
            let Some(card) = crate::ids::CardId::parse(c.trim()).map(|id| id.as_str().to_string())
            else {
                return Err(self.err(
                    &p.at("cards", j),
                    format!("card id `{c}` is not hex digits"),
                ));
            };
            if let Some(other) = owners.insert(card.clone(), id.to_string()) {
                return Err(self.err(
                    &p.at("cards", j),
                    format!("card `{card}` is also member `{other}`'s"),
                ));
            }
            member_cards.push(card);
        }
        Ok(member_cards)
    }

    /// Member `id`'s print user names, normalised; none already another
    /// member's (the same name twice for one member is allowed).
    fn print_users(
        &self,
        p: &Path,
        id: &str,
        raw: &[String],
        owners: &mut BTreeMap<String, String>,
    ) -> Result<Vec<String>, ConfigError> {
        let mut print_users = Vec::new();
        for (j, u) in raw.iter().enumerate() {
            self.plain(&p.at("print_users", j), u, "print user")?;
            let user = normalize_print_user(u);
            if user.is_empty() {
                return Err(self.err(&p.at("print_users", j), "empty print user name"));
            }
            if let Some(other) = owners.insert(user.clone(), id.to_string()) {
                if other != id {
                    return Err(self.err(
                        &p.at("print_users", j),
                        format!("print user `{user}` is also member `{other}`'s"),
                    ));
                }
            }
            print_users.push(user);
        }
        Ok(print_users)
    }

    /// A member's plans: each a known plan, from a start date to an optional
    /// end no earlier.
    fn subscriptions(
        &self,
        p: &Path,
        raw: &[RawSubscription],
        plans: &BTreeMap<String, Plan>,
    ) -> Result<Vec<Subscription>, ConfigError> {
        let mut subscriptions = Vec::new();
        for (j, s) in raw.iter().enumerate() {
            let sp = p.at("plan", j);
            self.plain(&sp.key("plan"), &s.plan, "plan")?;
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
        Ok(subscriptions)
    }

    /// A member's product purchases: each a known product with a reference
    /// used once per product (their lots are keyed by it).
    fn purchases(
        &self,
        p: &Path,
        raw: &[RawPurchase],
        products: &BTreeMap<String, Product>,
    ) -> Result<Vec<Purchase>, ConfigError> {
        let mut purchases = Vec::new();
        let mut refs = BTreeSet::new();
        for (j, pu) in raw.iter().enumerate() {
            let pp = p.at("product", j);
            self.plain(&pp.key("product"), &pu.product, "product")?;
            if !products.contains_key(&pu.product) {
                return Err(self.err(
                    &pp.key("product"),
                    format!("unknown product `{}`", pu.product),
                ));
            }
            self.plain(&pp.key("reference"), &pu.reference, "purchase reference")?;
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
        Ok(purchases)
    }

    /// A member's own grants: a stable id each, a known credit, an amount
    /// from 1 to `MAX_UNITS`, valid from a date until an optional last day
    /// no earlier.
    fn account_grants(
        &self,
        p: &Path,
        raw: &[RawAccountGrant],
        credits: &BTreeSet<String>,
    ) -> Result<Vec<AccountGrant>, ConfigError> {
        let mut grants = Vec::new();
        let mut seen = BTreeSet::new();
        for (j, g) in raw.iter().enumerate() {
            let gp = p.at("grant", j);
            let gid = match &g.id {
                Some(gid) => self.id(&gp.key("id"), gid, &mut seen, "account grant")?,
                None => return Err(self.err(&gp, "an account grant needs a stable `id`")),
            };
            self.plain(&gp.key("credit"), &g.credit, "credit")?;
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
        Ok(grants)
    }
}
