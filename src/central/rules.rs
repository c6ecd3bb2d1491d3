//! The centre's pure decisions: which epoch a site ships in, and what to do
//! with each entry of a batch.

/// What the centre knows of the epoch a site says it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochState {
    pub high_water: i64,
    pub closed: bool,
}

/// What a hello leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloVerdict {
    /// Ship on in the site's epoch.
    Continue,
    /// The site's first hello: its epoch is registered as it is.
    Register,
    /// The site wrote less than the centre applied (restored from a
    /// backup), or its epoch is closed or unknown: close the old epoch and
    /// open `epoch`.
    NewEpoch { epoch: i64, close_old: bool },
}

/// Decides a hello from the site's epoch state (if known), the site's
/// highest epoch at the centre (if any), and the site's last written seq.
pub fn hello_verdict(
    known: Option<EpochState>,
    max_epoch: Option<i64>,
    epoch: i64,
    last_seq: i64,
) -> HelloVerdict {
    let next = max_epoch.unwrap_or(0).max(epoch) + 1;
    match (known, max_epoch) {
        (Some(s), _) if !s.closed && last_seq >= s.high_water => HelloVerdict::Continue,
        (Some(s), _) => HelloVerdict::NewEpoch {
            epoch: next,
            close_old: !s.closed,
        },
        (None, None) => HelloVerdict::Register,
        (None, Some(_)) => HelloVerdict::NewEpoch {
            epoch: next,
            close_old: false,
        },
    }
}

/// What to do with one entry, given the epoch's high-water mark and, for an
/// entry at or below it, whether the stored entry has the same content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryVerdict {
    /// The next seq: insert and apply it.
    Apply,
    /// Already applied with the same content: drop it.
    Duplicate,
    /// The same seq with other content: this sender forked.
    Fork,
    /// A seq beyond the next: something before it is missing.
    Gap,
}

pub fn entry_verdict(high_water: i64, seq: i64, same_as_stored: Option<bool>) -> EntryVerdict {
    if seq == high_water + 1 {
        EntryVerdict::Apply
    } else if seq > high_water + 1 {
        EntryVerdict::Gap
    } else if same_as_stored == Some(true) {
        EntryVerdict::Duplicate
    } else {
        EntryVerdict::Fork
    }
}

/// How much of a member's unescrowed credit (`available`) an escrow ask
/// for `want` gets: a shortfall (a release waiting at a tap) all it needs
/// that exists; a top-up ahead of use at most `share_pct` percent of what
/// is available, so credit placed with a site that then goes dark leaves
/// the rest spendable elsewhere (multi-site.md 3.5, 6).
pub fn escrow_amount(want: i64, available: i64, shortfall: bool, share_pct: i64) -> i64 {
    let want = want.max(0);
    let available = available.max(0);
    if shortfall {
        return want.min(available);
    }
    // At most i64::MAX / 100 * 100: the product cannot overflow.
    let share = (available / 100) * share_pct.clamp(0, 100)
        + (available % 100) * share_pct.clamp(0, 100) / 100;
    want.min(share)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: EpochState = EpochState {
        high_water: 10,
        closed: false,
    };

    #[test]
    fn a_site_that_wrote_at_least_what_was_applied_continues() {
        assert_eq!(
            hello_verdict(Some(OPEN), Some(1), 1, 10),
            HelloVerdict::Continue
        );
        assert_eq!(
            hello_verdict(Some(OPEN), Some(1), 1, 15),
            HelloVerdict::Continue
        );
    }

    #[test]
    fn a_restored_site_gets_a_new_epoch_and_the_old_one_closes() {
        let v = hello_verdict(Some(OPEN), Some(1), 1, 4);
        assert_eq!(
            v,
            HelloVerdict::NewEpoch {
                epoch: 2,
                close_old: true
            }
        );
    }

    #[test]
    fn a_closed_or_unknown_epoch_gets_one_past_the_highest() {
        let closed = EpochState {
            closed: true,
            ..OPEN
        };
        let v = hello_verdict(Some(closed), Some(3), 1, 40);
        assert_eq!(
            v,
            HelloVerdict::NewEpoch {
                epoch: 4,
                close_old: false
            }
        );
        let v = hello_verdict(None, Some(3), 2, 0);
        assert_eq!(
            v,
            HelloVerdict::NewEpoch {
                epoch: 4,
                close_old: false
            }
        );
        assert_eq!(hello_verdict(None, None, 1, 7), HelloVerdict::Register);
    }

    #[test]
    fn entries_apply_in_order_once() {
        assert_eq!(entry_verdict(10, 11, None), EntryVerdict::Apply);
        assert_eq!(entry_verdict(10, 12, None), EntryVerdict::Gap);
        assert_eq!(entry_verdict(10, 9, Some(true)), EntryVerdict::Duplicate);
        assert_eq!(entry_verdict(10, 9, Some(false)), EntryVerdict::Fork);
        assert_eq!(entry_verdict(10, 9, None), EntryVerdict::Fork);
    }

    #[test]
    fn an_escrow_top_up_takes_at_most_the_share_and_a_shortfall_what_exists() {
        assert_eq!(escrow_amount(300, 1000, false, 50), 300);
        assert_eq!(escrow_amount(800, 1000, false, 50), 500);
        assert_eq!(escrow_amount(800, 1000, true, 50), 800);
        assert_eq!(escrow_amount(1800, 1000, true, 50), 1000);
        assert_eq!(escrow_amount(-5, 1000, true, 50), 0);
        assert_eq!(escrow_amount(100, -5, false, 50), 0);
        assert_eq!(escrow_amount(i64::MAX, i64::MAX, false, 100), i64::MAX);
        assert_eq!(escrow_amount(99, 199, false, 50), 99);
    }
}
