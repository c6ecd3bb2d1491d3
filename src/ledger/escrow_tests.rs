//! The site's side of escrow, on a real SQLite ledger.

use super::*;
use crate::ledger::outbox;
use crate::ledger::usage::{self, HoldOutcome, Origin, Payable, UsageRequest};
use crate::ledger::Ledger;
use crate::site::{OveragePolicy, Site};
use std::path::Path;

const T: Ts = 1_796_000_000;

/// A chain site's ledger whose lots the centre issues, with alice (no
/// lot yet).
fn ledger() -> Ledger {
    let site = Site {
        default_policy: OveragePolicy::CREDITS_ONLY,
        ..Site::default()
    };
    let mut ledger = Ledger::open(Path::new(":memory:"), site).expect("ledger");
    ledger
        .write(|c, _| {
            lots::ensure_member(c, "alice", "Alice", T)?;
            outbox::enable(c, "ber-1")?;
            set_issue(c, Issue::Central)
        })
        .expect("set up");
    ledger
}

/// Active here since `t`, at home or away alike.
fn since(t: Ts) -> Active {
    Active {
        here: "ber-1".into(),
        home_since: t,
        away_since: t,
    }
}

fn slice(id: i64, amount: i64, expires_at: Option<Ts>) -> Slice {
    Slice {
        id,
        credit: "printing".into(),
        amount,
        source: "plan".into(),
        valid_from: T,
        expires_at,
    }
}

fn request(key: &str, amount: i64, at: Ts) -> UsageRequest {
    UsageRequest {
        key: key.into(),
        member: Some("alice".into()),
        origin: Origin::Manual,
        payable: Payable::Printing,
        amount,
        detail: "{}".into(),
        at,
    }
}

fn bodies(ledger: &Ledger) -> Vec<serde_json::Value> {
    outbox::pending(ledger.conn(), 500)
        .expect("pending")
        .iter()
        .map(|e| serde_json::from_str(&e.body).expect("json"))
        .collect()
}

#[test]
fn slices_are_kept_once_spent_as_lots_and_each_entry_says_what_its_usage_took() {
    let mut ledger = ledger();
    let first = next_request(ledger.conn(), 1, "alice", "printing").expect("id");
    let both = [slice(7, 30, None), slice(8, 20, None)];
    let placed = ledger
        .write(|c, _| place(c, "alice", &first, &both, T))
        .expect("placed");
    assert_eq!(placed, 50);
    // The same answer again (a retry) places nothing more.
    let again = ledger
        .write(|c, _| place(c, "alice", &first, &both, T))
        .expect("again");
    assert_eq!(again, 0);
    assert_eq!(
        held(ledger.conn(), "alice", "printing", T).expect("held"),
        50
    );
    let next = next_request(ledger.conn(), 1, "alice", "printing").expect("id");
    assert_ne!(
        first, next,
        "a request that placed slices is not asked again"
    );

    ledger.debit(&request("k1", 35, T + 1)).expect("debit");
    ledger.hold(&request("h1", 10, T + 2)).expect("hold");
    ledger.void("h1", "cancelled", T + 3).expect("void");
    let b = bodies(&ledger);
    assert_eq!(b[0]["slices"], serde_json::json!([[7, 30], [8, 5]]));
    assert_eq!(b[0]["allowance"], 0);
    // A voided hold took nothing, net.
    assert_eq!(b[1]["slices"], serde_json::json!([]));
    assert_eq!(b[2]["slices"], serde_json::json!([]));
}

#[test]
fn a_site_issuing_its_own_lots_ships_no_escrow_fields() {
    let mut ledger = ledger();
    ledger
        .write(|c, _| set_issue(c, Issue::Site))
        .expect("site issue");
    assert!(!issued_centrally(ledger.conn()).expect("issue"));
    ledger.debit(&request("k1", 5, T + 1)).expect("debit");
    let b = bodies(&ledger);
    assert!(b[0].get("slices").is_none() && b[0].get("allowance").is_none());
}

#[test]
fn the_allowance_lets_a_refused_hold_through_until_the_centre_acknowledges_its_use() {
    let mut ledger = ledger();
    ledger
        .write(|c, _| place(c, "alice", "r1", &[slice(1, 30, None)], T))
        .expect("placed");
    let site = ledger.site().clone();
    let hold = |ledger: &mut Ledger, key: &str, allowance: i64| {
        let req = request(key, 50, T + 1);
        ledger
            .write(|c, _| usage::hold_on_allowance(c, &site, &req, allowance))
            .expect("hold")
    };
    // Without allowance credits-only refuses; with 60, 20 of it is used.
    assert!(matches!(
        hold(&mut ledger, "h0", 0),
        HoldOutcome::Refused { .. }
    ));
    assert!(matches!(
        hold(&mut ledger, "h1", 60),
        HoldOutcome::Placed(_)
    ));
    let left =
        |ledger: &Ledger| allowance_left(ledger.conn(), "alice", Unit::Cents, 60).expect("left");
    assert_eq!(left(&ledger), 40);
    // The slice is spent: the next hold needs 50, 40 is left.
    assert!(matches!(
        hold(&mut ledger, "h2", 60),
        HoldOutcome::Refused { .. }
    ));
    assert_eq!(bodies(&ledger)[0]["allowance"], 20);
    // Acknowledged by the centre: whole again.
    let at = outbox::position(ledger.conn()).expect("pos").expect("on");
    ledger
        .write(|c, _| outbox::acknowledge(c, at.epoch, at.last_seq))
        .expect("ack");
    assert_eq!(left(&ledger), 60);
}

#[test]
fn expired_and_idle_slices_come_due_back_and_a_new_epoch_forsakes_the_rest() {
    let mut ledger = ledger();
    let day = 86_400;
    let slices = [slice(1, 30, Some(T + day)), slice(2, 40, None)];
    ledger
        .write(|c, _| place(c, "alice", "r1", &slices, T))
        .expect("placed");
    assert!(due_back(ledger.conn(), T + 10).expect("due").is_empty());
    // The first's date passes (the ledger's expiry sweep zeroes it).
    assert_eq!(due_back(ledger.conn(), T + day).expect("due"), [1]);
    ledger
        .write(|c, _| returned(c, &[1], T + day))
        .expect("returned");
    assert!(due_back(ledger.conn(), T + day).expect("due").is_empty());
    // Alice used this site after the slice came: not idle.
    ledger.debit(&request("k1", 5, T + 2 * day)).expect("debit");
    let idle = ledger
        .write(|c, _| retire_idle(c, &since(T + day), T + 8 * day))
        .expect("idle");
    assert_eq!(idle, 0);
    // Seven days later without use, the second is voided and due back.
    let idle = ledger
        .write(|c, _| retire_idle(c, &since(T + 3 * day), T + 10 * day))
        .expect("idle");
    assert_eq!(idle, 1);
    assert_eq!(due_back(ledger.conn(), T + 10 * day).expect("due"), [2]);
    assert_eq!(
        held(ledger.conn(), "alice", "printing", T + 10 * day).expect("held"),
        0
    );
    // A new epoch: what was not returned yet is voided and counts as
    // returned (the centre closed it).
    ledger
        .write(|c, _| place(c, "alice", "r2", &[slice(3, 10, None)], T + 10 * day))
        .expect("placed");
    let gone = ledger
        .write(|c, _| forsake(c, T + 11 * day))
        .expect("forsake");
    assert_eq!(gone, 2);
    assert_eq!(
        held(ledger.conn(), "alice", "printing", T + 11 * day).expect("held"),
        0
    );
    assert!(due_back(ledger.conn(), T + 11 * day)
        .expect("due")
        .is_empty());
}

#[test]
fn a_recall_voids_the_slice_here_once_and_the_cursor_moves_past_every_entry() {
    let mut ledger = ledger();
    let slices = [slice(1, 30, None), slice(2, 40, None)];
    ledger
        .write(|c, _| place(c, "alice", "r1", &slices, T))
        .expect("placed");
    ledger.debit(&request("k1", 5, T + 1)).expect("debit");
    let entry = |cursor, kind: &str, slice| FeedEntry {
        cursor,
        kind: kind.into(),
        slice,
    };
    // A recall of slice 2, one of a slice never here, one of a kind this
    // site does not know.
    let feed = [
        entry(4, "recall", 2),
        entry(7, "recall", 99),
        entry(9, "later", 1),
    ];
    let recalled = ledger
        .write(|c, _| apply_feed(c, &feed, T + 2))
        .expect("applied");
    assert_eq!(recalled, [2]);
    assert_eq!(feed_cursor(ledger.conn()).expect("cursor"), 9);
    // What slice 1 holds is still spendable; slice 2 is due back.
    assert_eq!(
        held(ledger.conn(), "alice", "printing", T + 2).expect("held"),
        25
    );
    assert_eq!(due_back(ledger.conn(), T + 2).expect("due"), [2]);
    // Read again (a ledger restored from a backup): nothing more.
    let again = ledger
        .write(|c, _| apply_feed(c, &[entry(11, "recall", 2)], T + 3))
        .expect("applied");
    assert!(again.is_empty());
    assert_eq!(feed_cursor(ledger.conn()).expect("cursor"), 11);
    // Slice 99's answer was lost and comes when asked again: it was
    // recalled meanwhile, so it is kept voided, and due back.
    let placed = ledger
        .write(|c, _| place(c, "alice", "r2", &[slice(99, 50, None)], T + 4))
        .expect("placed");
    assert_eq!(placed, 0);
    assert_eq!(
        held(ledger.conn(), "alice", "printing", T + 4).expect("held"),
        25
    );
    assert_eq!(due_back(ledger.conn(), T + 4).expect("due"), [2, 99]);
}

#[test]
fn needs_ask_for_the_members_who_used_this_site_below_a_third_of_the_target() {
    let mut ledger = ledger();
    ledger.debit(&request("k1", 5, T + 10)).expect("debit");
    let first = needs(ledger.conn(), &since(T), T + 20, 200, 60).expect("needs");
    assert_eq!(
        first,
        [Need {
            member: "alice".into(),
            credit: "printing".into(),
            want: 200
        }]
    );
    ledger
        .write(|c, _| place(c, "alice", "r1", &[slice(1, 70, None)], T + 20))
        .expect("placed");
    assert!(needs(ledger.conn(), &since(T), T + 30, 200, 60)
        .expect("needs")
        .is_empty());
    // Nobody used it since then: nothing asked.
    assert!(needs(ledger.conn(), &since(T + 20), T + 30, 200, 60)
        .expect("needs")
        .is_empty());
}

#[test]
fn the_printing_target_is_twice_the_weeks_spend_here_when_that_is_more() {
    let mut ledger = ledger();
    let day = 86_400;
    let want = |ledger: &Ledger, now: Ts| {
        needs(ledger.conn(), &since(T), now, 200, 60)
            .expect("needs")
            .first()
            .map_or(0, |n| n.want)
    };
    ledger.debit(&request("k1", 150, T + 10)).expect("debit");
    ledger.debit(&request("k2", 40, T + 20)).expect("debit");
    // 190 this week: twice is 380.
    assert_eq!(want(&ledger, T + 30), 380);
    // A refunded usage counts for nothing: 150, so 300.
    ledger.refund("k2", "jammed", T + 40).expect("refund");
    assert_eq!(want(&ledger, T + 50), 300);
    // A week later the spend has aged out: the setting, 200.
    assert_eq!(want(&ledger, T + 8 * day), 200);
    // A setting of 0 asks for nothing, whatever was spent.
    assert!(needs(ledger.conn(), &since(T), T + 50, 0, 60)
        .expect("needs")
        .is_empty());
}

#[test]
fn no_team_pool_is_drawn_where_the_centre_issues_the_lots() {
    use crate::ledger::teams::{self, TeamDef};
    let mut ledger = ledger();
    let members = ["alice".to_string(), "bob".to_string()];
    let all = [teams::ALL.to_string()];
    ledger
        .write(|c, _| {
            lots::upsert_member(c, "bob", "Bob", None, None, T)?;
            let team = TeamDef {
                id: "acme",
                name: "Acme",
                payer: "bob",
                members: &members,
                shares: &all,
                combine: false,
                limit_cents: None,
                limit_minutes: None,
                billing: "merged",
            };
            teams::define(c, &[team], T)
        })
        .expect("a team");
    // The payer's slice: the centre counts it as bob's, so alice's usage
    // here must not spend it; it is her own overage.
    ledger
        .write(|c, _| place(c, "bob", "r1", &[slice(1, 100, None)], T))
        .expect("placed");
    let mut r = request("k1", 30, T + 1);
    r.member = Some("alice".into());
    let result = ledger.debit(&r).expect("debit");
    assert_eq!(
        held(ledger.conn(), "bob", "printing", T + 2).expect("held"),
        100
    );
    assert_eq!(result.covered, 0);
}

#[test]
fn a_member_keeps_escrow_a_week_at_home_and_a_day_elsewhere() {
    let mut ledger = ledger();
    let day = 86_400;
    // alice's home is this site; bob's is another; carol has none.
    ledger
        .write(|c, _| {
            lots::upsert_member(c, "alice", "Alice", None, Some("ber-1"), T)?;
            lots::upsert_member(c, "bob", "Bob", None, Some("ber-2"), T)?;
            lots::upsert_member(c, "carol", "Carol", None, None, T)
        })
        .expect("members");
    for (i, m) in ["alice", "bob", "carol"].iter().enumerate() {
        let id = i as i64 + 1;
        ledger
            .write(|c, _| place(c, m, &format!("r{id}"), &[slice(id, 50, None)], T))
            .expect("placed");
        let mut r = request(&format!("k{id}"), 5, T + 10);
        r.member = Some(m.to_string());
        ledger.debit(&r).expect("debit");
    }
    let at = |now: Ts| Active {
        here: "ber-1".into(),
        home_since: now - 7 * day,
        away_since: now - day,
    };
    // Two days on, all three still used this site this week, but only bob
    // is away: his slice goes back, and he is topped up no more.
    let now = T + 2 * day;
    let wanted: Vec<String> = needs(ledger.conn(), &at(now), now, 200, 60)
        .expect("needs")
        .into_iter()
        .map(|n| n.member)
        .collect();
    assert_eq!(wanted, ["alice", "carol"]);
    let idle = ledger
        .write(|c, _| retire_idle(c, &at(now), now))
        .expect("idle");
    assert_eq!(idle, 1);
    assert_eq!(due_back(ledger.conn(), now).expect("due"), [2]);
    // Eight days on, the other two go back as well.
    let now = T + 8 * day;
    let idle = ledger
        .write(|c, _| retire_idle(c, &at(now), now))
        .expect("idle");
    assert_eq!(idle, 2);
}

mod sessions_on_allowance {
    use super::*;
    use crate::config::OtherMember;
    use crate::ledger::catalog::{self, TimeCreditDef};
    use crate::ledger::sessions::{self, TapOutcome};
    use crate::room::clock::Now;
    use crate::room::Room;
    use std::collections::BTreeMap;

    fn room() -> Room {
        Room {
            reader: "door".into(),
            increment_minutes: 15,
            max_secs: 4 * 3600,
            other_member: OtherMember::Refuse,
        }
    }

    fn at(secs: i64) -> Now {
        Now {
            wall: T + secs,
            boot_ms: secs * 1000,
            boot_id: "boot".into(),
        }
    }

    fn with_a_room() -> Ledger {
        let mut ledger = ledger();
        ledger
            .write(|c, _| {
                let types = BTreeMap::from([("meeting".to_string(), "Meeting".to_string())]);
                let rooms = BTreeMap::from([("room-1".to_string(), "meeting".to_string())]);
                let meeting = ["meeting".to_string()];
                let credits = [TimeCreditDef {
                    id: "room-hours",
                    name: "Room hours",
                    resource_types: &meeting,
                }];
                catalog::define(c, &types, &rooms, &credits)
            })
            .expect("a room");
        ledger
    }

    fn tap(ledger: &mut Ledger, secs: i64, allowance: i64) -> TapOutcome {
        let site = ledger.site().clone();
        ledger
            .write(|c, _| {
                sessions::tap_on_allowance(
                    c,
                    &site,
                    &room(),
                    "room-1",
                    "alice",
                    &at(secs),
                    allowance,
                )
            })
            .expect("tap")
            .1
    }

    #[test]
    fn a_session_starts_on_whole_increments_of_the_allowance_and_ends_when_they_are_used() {
        let mut ledger = with_a_room();
        assert!(matches!(tap(&mut ledger, 0, 0), TapOutcome::Refused { .. }));
        // 40 minutes of allowance: two whole 15-minute increments.
        assert!(matches!(
            tap(&mut ledger, 0, 40),
            TapOutcome::Started { .. }
        ));
        let left = |l: &Ledger| allowance_left(l.conn(), "alice", Unit::Minutes, 40).expect("left");
        assert_eq!(left(&ledger), 10, "30 reserved while open");
        let open = sessions::open_at(ledger.conn(), "room-1")
            .expect("open")
            .expect("a session");
        assert_eq!(open.allowance_secs, Some(1800));
        assert!(!sessions::reached_max(&room(), &open, &at(1799)));
        assert!(sessions::reached_max(&room(), &open, &at(1800)));
        // The sweep ends it at 30 minutes, however late it runs.
        let ended = ledger
            .write(|c, site| sessions::end_at_max(c, site, &room(), open, &at(4000)))
            .expect("ended");
        assert_eq!((ended.minutes, ended.charge.overage), (30, 30));
        assert_eq!(ended.reason, "offline allowance used up");
        assert_eq!(left(&ledger), 10, "30 used, not yet acknowledged");
        assert_eq!(bodies(&ledger)[0]["allowance"], 30);
        // 10 minutes left: not one whole increment.
        assert!(matches!(
            tap(&mut ledger, 5000, 40),
            TapOutcome::Refused { .. }
        ));
    }

    #[test]
    fn a_time_credits_target_is_the_longest_session_here_in_30_days_when_longer() {
        let mut ledger = with_a_room();
        let want = |ledger: &Ledger, now: Ts| {
            needs(ledger.conn(), &since(T), now, 200, 20)
                .expect("needs")
                .into_iter()
                .find(|n| n.credit == "room-hours")
                .map_or(0, |n| n.want)
        };
        tap(&mut ledger, 0, 40);
        let open = sessions::open_at(ledger.conn(), "room-1")
            .expect("open")
            .expect("a session");
        ledger
            .write(|c, site| sessions::end_at_max(c, site, &room(), open, &at(4000)))
            .expect("ended");
        // A 30-minute session: more than the 20 set.
        assert_eq!(want(&ledger, T + 5000), 30);
        // 31 days on it counts no more.
        assert_eq!(want(&ledger, T + 31 * 86_400), 20);
    }
}
