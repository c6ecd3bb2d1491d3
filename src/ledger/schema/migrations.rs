//! The ledger's migrations, in order: migration N brings a ledger to
//! schema version N (`PRAGMA user_version`). Only ever appended to; kept in
//! files by era: [`site`] (1-10), [`years`] (11-14), [`chain`] (15-).

mod chain;
mod site;
mod years;

/// `a` then `b`, at compile time.
const fn join<const A: usize, const B: usize, const N: usize>(
    a: [&'static str; A],
    b: [&'static str; B],
) -> [&'static str; N] {
    assert!(A + B == N, "the joined length");
    let mut out = [""; N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - A];
        i += 1;
    }
    out
}

const ALL: [&str; 22] =
    join::<14, 8, 22>(join::<10, 4, 14>(site::SITE, years::YEARS), chain::CHAIN);

/// Each entry moves the schema from version `i` to `i + 1`. Never edit an
/// entry that has shipped; add a new one (to the last era's file, and to
/// the lengths above).
pub(super) const MIGRATIONS: &[&str] = &ALL;
