//! A joining site's manual grants (`tallyd grant`, the console's grant):
//! credit no grants file holds, made chain credit by `tallyd central
//! import` (issue 18, the migration). Each becomes a chain lot of source
//! `adjustment`, keyed by the site and its own key, so a second import
//! adds nothing. A grant for a member the chain does not know refuses the
//! whole import: the chain's grants file names its members.

use super::pg::{self, Pg};
use super::protocol::{GrantsImport, GrantsImported, SiteGrant};
use crate::ledger::allocate::SourceKind;
use crate::ledger::lots::GrantRequest;
use deadpool_postgres::Client;

/// Why a grant cannot be chain credit whatever the centre holds: an amount
/// out of bounds, or a validity that ends before it starts.
pub fn invalid(g: &SiteGrant) -> Option<String> {
    if crate::money::positive(g.amount).is_err() {
        return Some(format!(
            "grant {}: amount {} is not from 1 to {}",
            g.key,
            g.amount,
            crate::money::MAX_UNITS
        ));
    }
    if g.expires_at.is_some_and(|e| e <= g.valid_from) {
        return Some(format!("grant {}: expires before it is valid", g.key));
    }
    None
}

/// Imports `imp`'s grants in one transaction (under the issuer's lock, as
/// every lot the centre issues): all of them, or none when a member is
/// unknown.
pub async fn import(client: &mut Client, imp: &GrantsImport) -> Pg<GrantsImported> {
    let tx = client.transaction().await?;
    tx.execute(super::issue::ISSUER_LOCK, &[]).await?;
    let members: Vec<&str> = imp.grants.iter().map(|g| g.member.as_str()).collect();
    let unknown = pg::query(
        &tx,
        "SELECT DISTINCT m FROM unnest($1::text[]) m
         WHERE NOT EXISTS (SELECT 1 FROM members WHERE id = m) ORDER BY m",
        &[&members],
    )
    .await?;
    let mut out = GrantsImported {
        unknown_members: unknown.iter().map(|r| r.get(0)).collect(),
        ..GrantsImported::default()
    };
    if !out.unknown_members.is_empty() {
        return Ok(out);
    }
    for g in &imp.grants {
        let lot = GrantRequest {
            member: g.member.clone(),
            credit: g.credit.clone(),
            amount: g.amount,
            valid_from: g.valid_from,
            expires_at: g.expires_at,
            source: SourceKind::Adjustment,
            source_key: format!("site:{}:{}", imp.site_id, g.key),
            note: format!("{} (granted at site {})", g.note, imp.site_id),
            at: g.at,
        };
        match super::issue::new_lot(&tx, &lot).await? {
            Some(_) => out.added += 1,
            None => out.already += 1,
        }
    }
    tx.commit().await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{invalid, SiteGrant};

    fn grant(amount: i64, expires_at: Option<i64>) -> SiteGrant {
        SiteGrant {
            key: "adjustment:desk-1".into(),
            member: "alice".into(),
            credit: "printing".into(),
            amount,
            valid_from: 1_000,
            expires_at,
            note: "cash".into(),
            at: 1_000,
        }
    }

    #[test]
    fn only_grants_a_ledger_could_hold_are_taken() {
        assert_eq!(invalid(&grant(300, None)), None);
        assert_eq!(invalid(&grant(300, Some(2_000))), None);
        for bad in [0, -5, crate::money::MAX_UNITS + 1, i64::MAX] {
            assert!(invalid(&grant(bad, None)).is_some(), "{bad}");
        }
        assert!(invalid(&grant(300, Some(1_000)))
            .is_some_and(|why| why.contains("expires before it is valid")));
    }
}
