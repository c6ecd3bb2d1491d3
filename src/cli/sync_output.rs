//! What `tallyd sync` prints, typed once for `--json` and `--csv`: every lot
//! it issues (or, dry, would issue), every account grant it adjusts or
//! voids, every member it closes, every change to a team, with the same
//! counts as the text.

use crate::grants::reconcile::team_changes::{team_changes, TeamChange};
use crate::grants::reconcile::{Change, SyncPlan};
use serde::Serialize;

/// One lot to issue.
#[derive(Debug, Serialize)]
pub struct IssueLine<'a> {
    pub member: &'a str,
    pub credit: &'a str,
    pub amount: i64,
    pub valid_from: i64,
    pub expires_at: Option<i64>,
    pub source: &'static str,
    pub source_key: &'a str,
    pub note: &'a str,
}

/// One account grant whose lot is adjusted.
#[derive(Debug, Serialize)]
pub struct AdjustLine<'a> {
    pub member: &'a str,
    pub lot: i64,
    pub grant: &'a str,
    pub credit: &'a str,
    pub before: i64,
    pub after: i64,
    pub valid_from: i64,
    pub expires_at: Option<i64>,
}

/// One account grant whose lot is voided.
#[derive(Debug, Serialize)]
pub struct VoidLine<'a> {
    pub member: &'a str,
    pub lot: i64,
    pub grant: &'a str,
    pub credit: &'a str,
    pub amount: i64,
}

/// The whole result.
#[derive(Debug, Serialize)]
pub struct SyncOutput<'a> {
    pub dry_run: bool,
    pub source: &'a str,
    pub digest: &'a str,
    /// Members in the file, as the text line says.
    pub members: usize,
    pub issued: usize,
    pub adjusted: usize,
    pub voided: usize,
    pub closed: usize,
    pub issue: Vec<IssueLine<'a>>,
    pub adjust: Vec<AdjustLine<'a>>,
    pub void: Vec<VoidLine<'a>>,
    pub close: &'a [String],
    /// Teams added or closed, members who join or leave, terms changed.
    pub teams: Vec<TeamChange>,
    pub changes: &'a [Change],
}

impl<'a> SyncOutput<'a> {
    pub fn new(
        plan: &'a SyncPlan,
        dry_run: bool,
        source: &'a str,
        digest: &'a str,
        members: usize,
    ) -> SyncOutput<'a> {
        let issue = plan
            .issues
            .iter()
            .map(|i| IssueLine {
                member: &i.grant.member,
                credit: &i.grant.credit,
                amount: i.grant.amount,
                valid_from: i.grant.valid_from,
                expires_at: i.grant.expires_at,
                source: i.grant.source.as_str(),
                source_key: &i.grant.source_key,
                note: &i.grant.note,
            })
            .collect();
        let adjust = plan
            .edits
            .iter()
            .map(|e| AdjustLine {
                member: &e.member,
                lot: e.lot,
                grant: &e.after.id,
                credit: &e.after.credit,
                before: e.before.amount,
                after: e.after.amount,
                valid_from: e.valid_from,
                expires_at: e.expires_at,
            })
            .collect();
        let void = plan
            .voids
            .iter()
            .map(|v| VoidLine {
                member: &v.member,
                lot: v.lot,
                grant: &v.before.id,
                credit: &v.before.credit,
                amount: v.before.amount,
            })
            .collect();
        SyncOutput {
            dry_run,
            source,
            digest,
            members,
            issued: plan.issues.len(),
            adjusted: plan.edits.len(),
            voided: plan.voids.len(),
            closed: plan.closes.len(),
            issue,
            adjust,
            void,
            close: &plan.closes,
            teams: team_changes(&plan.changes),
            changes: &plan.changes,
        }
    }

    /// One row per action, for `--csv`: action, member, credit, amount (in
    /// cents or minutes; after, for an adjustment), valid_from, expires_at,
    /// what it is.
    pub fn rows(&self) -> Vec<Vec<String>> {
        let opt = |t: Option<i64>| t.map_or(String::new(), |t| t.to_string());
        let mut rows = Vec::new();
        for i in &self.issue {
            rows.push(vec![
                "issue".into(),
                i.member.into(),
                i.credit.into(),
                i.amount.to_string(),
                i.valid_from.to_string(),
                opt(i.expires_at),
                i.source_key.into(),
            ]);
        }
        for a in &self.adjust {
            rows.push(vec![
                "adjust".into(),
                a.member.into(),
                a.credit.into(),
                a.after.to_string(),
                a.valid_from.to_string(),
                opt(a.expires_at),
                format!(
                    "account grant {} (lot {}), was {}",
                    a.grant, a.lot, a.before
                ),
            ]);
        }
        for v in &self.void {
            rows.push(vec![
                "void".into(),
                v.member.into(),
                v.credit.into(),
                v.amount.to_string(),
                String::new(),
                String::new(),
                format!("account grant {} (lot {})", v.grant, v.lot),
            ]);
        }
        for m in self.close {
            let close = ["close", m, "", "", "", "", "removed from the grants file"];
            rows.push(close.iter().map(|s| s.to_string()).collect());
        }
        for t in &self.teams {
            rows.push(vec![
                format!("team-{}", t.change),
                t.member.clone().unwrap_or_default(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                t.describe(),
            ]);
        }
        rows
    }
}
