//! The independent model: what the test expects from the API's own answers,
//! kept next to the ledger it drives.

use std::collections::BTreeMap;

use proptest::sample::Index;
use rusqlite::Connection;
use tallyd::ledger::lots::GrantRequest;
use tallyd::ledger::{Charge, Ledger, UsageRequest};
use tempfile::TempDir;

use crate::setup::{fresh_ledger, member_index, unit_of, MEMBERS, T0};
use crate::sql::Spendable;

/// Per member and unit, what the test expects from the API's own answers.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Acc {
    /// Granted by grants and refund regrants.
    pub(crate) granted: i64,
    /// Taken from lots by debits and settled holds, less refunds restored.
    pub(crate) used: i64,
    /// Reserved on lots by open holds.
    pub(crate) held: i64,
    /// On the overage account.
    pub(crate) overage: i64,
}

#[derive(Debug, Clone)]
pub(crate) enum HoldState {
    Open,
    Settled { actual: i64, charge: Charge },
    Voided,
}

#[derive(Debug, Clone)]
pub(crate) struct Rec {
    pub(crate) req: UsageRequest,
    pub(crate) is_hold: bool,
    pub(crate) first: Charge,
    /// `Some` for holds.
    pub(crate) hold: Option<HoldState>,
    pub(crate) refunded: bool,
}

impl Rec {
    /// A debit, or a hold just placed (open).
    pub(crate) fn new(req: UsageRequest, first: Charge, is_hold: bool) -> Self {
        Rec {
            req,
            is_hold,
            first,
            hold: is_hold.then_some(HoldState::Open),
            refunded: false,
        }
    }
}

pub(crate) struct Harness {
    pub(crate) _dir: TempDir,
    pub(crate) ledger: Ledger,
    pub(crate) now: i64,
    pub(crate) seq: u64,
    pub(crate) acc: [[Acc; 2]; MEMBERS.len()],
    pub(crate) recs: Vec<Rec>,
    pub(crate) grants: Vec<(GrantRequest, i64)>,
    /// Spendable credit right after the last operation at each instant.
    pub(crate) past: BTreeMap<i64, Spendable>,
}

/// The position of one of the `items` that `keep` accepts, chosen by `index`.
pub(crate) fn pick<T>(items: &[T], index: &Index, keep: impl Fn(&T) -> bool) -> Option<usize> {
    let matching: Vec<usize> = (0..items.len()).filter(|&i| keep(&items[i])).collect();
    if matching.is_empty() {
        None
    } else {
        Some(matching[index.index(matching.len())])
    }
}

impl Harness {
    pub(crate) fn new() -> Self {
        let (dir, ledger) = fresh_ledger();
        // Durability is the crash test's business; without an fsync per
        // commit this test is bound by CPU, not by the disk.
        ledger
            .conn()
            .pragma_update(None, "synchronous", "OFF")
            .expect("synchronous off");
        Harness {
            _dir: dir,
            ledger,
            now: T0,
            seq: 0,
            acc: [[Acc::default(); 2]; MEMBERS.len()],
            recs: Vec::new(),
            grants: Vec::new(),
            past: BTreeMap::new(),
        }
    }

    pub(crate) fn conn(&self) -> &Connection {
        self.ledger.conn()
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The account of an attributed request's member, in its payable's unit.
    pub(crate) fn acc_of(&mut self, req: &UsageRequest) -> &mut Acc {
        let member = req.member.as_deref().expect("an attributed usage");
        &mut self.acc[member_index(member)][unit_of(&req.payable)]
    }

    /// A recorded usage that `keep` accepts, chosen by `index`: its position
    /// and a copy.
    pub(crate) fn pick_rec(
        &self,
        index: &Index,
        keep: impl Fn(&Rec) -> bool,
    ) -> Option<(usize, Rec)> {
        pick(&self.recs, index, keep).map(|i| (i, self.recs[i].clone()))
    }
}
