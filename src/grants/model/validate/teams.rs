//! A grants file's teams: a payer and members who are members of the file,
//! no member in two teams, shared credits the file defines, limits within
//! the bound on amounts, and a billing mode.

use super::super::{Billing, Member, Path, RawShare, RawTeam, Share, Team};
use super::Validator;
use crate::config::ConfigError;
use crate::money;
use std::collections::{BTreeMap, BTreeSet};

impl Validator<'_> {
    /// Teams by id. Every member and the payer must be a member of the
    /// file; the payer must be listed in `members` too; a member belongs to
    /// one team at most.
    pub(super) fn teams(
        &self,
        root: &Path,
        raw: &[RawTeam],
        members: &BTreeMap<String, Member>,
        credits: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, Team>, ConfigError> {
        let mut seen = BTreeSet::new();
        let mut team_of: BTreeMap<String, String> = BTreeMap::new();
        let mut teams = BTreeMap::new();
        for (i, t) in raw.iter().enumerate() {
            let p = root.at("team", i);
            let id = self.id(&p.key("id"), &t.id, &mut seen, "team")?;
            self.name(&p.key("name"), &t.name, "name")?;
            let team_members = self.team_members(&p, &id, t, members, &mut team_of)?;
            self.plain(&p.key("payer"), &t.payer, "payer")?;
            if !members.contains_key(&t.payer) {
                return Err(self.err(&p.key("payer"), format!("unknown member `{}`", t.payer)));
            }
            if !team_members.contains(&t.payer) {
                return Err(self.err(
                    &p.key("payer"),
                    format!("payer `{}` must also be listed in members", t.payer),
                ));
            }
            let team = Team {
                name: t.name.clone().unwrap_or_else(|| id.clone()),
                payer: t.payer.clone(),
                members: team_members.into_iter().collect(),
                share: self.share(&p.key("share"), &t.share, credits)?,
                combine: t.combine,
                member_limit_cents: self.limit(&p, "member_limit_cents", t.member_limit_cents)?,
                member_limit_minutes: self.limit(
                    &p,
                    "member_limit_minutes",
                    t.member_limit_minutes,
                )?,
                billing: self.billing(&p.key("billing"), t.billing.as_deref())?,
            };
            teams.insert(id, team);
        }
        Ok(teams)
    }

    fn team_members(
        &self,
        p: &Path,
        team: &str,
        t: &RawTeam,
        members: &BTreeMap<String, Member>,
        team_of: &mut BTreeMap<String, String>,
    ) -> Result<BTreeSet<String>, ConfigError> {
        let mut out = BTreeSet::new();
        for (j, m) in t.members.iter().enumerate() {
            let mp = p.at("members", j);
            self.plain(&mp, m, "member")?;
            if !members.contains_key(m) {
                return Err(self.err(&mp, format!("unknown member `{m}`")));
            }
            if !out.insert(m.clone()) {
                return Err(self.err(&mp, format!("member `{m}` is listed twice")));
            }
            if let Some(other) = team_of.insert(m.clone(), team.to_string()) {
                return Err(self.err(
                    &mp,
                    format!(
                        "member `{m}` is already in team `{other}`; a member belongs to one team"
                    ),
                ));
            }
        }
        if out.is_empty() {
            return Err(self.err(&p.key("members"), "a team needs members"));
        }
        Ok(out)
    }

    fn share(
        &self,
        p: &Path,
        raw: &RawShare,
        credits: &BTreeSet<String>,
    ) -> Result<Share, ConfigError> {
        let list = match raw {
            RawShare::One(s) if s.trim() == "all" => return Ok(Share::All),
            RawShare::One(s) => {
                self.plain(p, s, "credit")?;
                return Err(self.err(
                    p,
                    format!("`{s}` is not \"all\" or a list of credits like [\"printing\"]"),
                ));
            }
            RawShare::Many(list) => list,
        };
        let mut out = BTreeSet::new();
        for (j, c) in list.iter().enumerate() {
            let cp = p.clone().at_index(j);
            self.plain(&cp, c, "credit")?;
            if !credits.contains(c) {
                return Err(self.err(&cp, format!("unknown credit `{c}`")));
            }
            out.insert(c.clone());
        }
        if out.is_empty() {
            return Err(self.err(p, "a team shares at least one credit (or \"all\")"));
        }
        Ok(Share::Credits(out.into_iter().collect()))
    }

    fn limit(&self, p: &Path, field: &str, limit: Option<i64>) -> Result<Option<i64>, ConfigError> {
        match limit.map(money::non_negative) {
            Some(Err(e)) => Err(self.err(&p.key(field), e.to_string())),
            Some(Ok(n)) => Ok(Some(n)),
            None => Ok(None),
        }
    }

    fn billing(&self, p: &Path, raw: Option<&str>) -> Result<Billing, ConfigError> {
        match raw.map(str::trim) {
            None | Some("individual") => Ok(Billing::Individual),
            Some("merged") => Ok(Billing::Merged),
            Some(other) => {
                self.plain(p, other, "billing")?;
                Err(self.err(p, format!("`{other}` is not `merged` or `individual`")))
            }
        }
    }
}
