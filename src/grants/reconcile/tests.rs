use super::*;

#[test]
fn rule_4_a_benefit_added_today_reaches_todays_new_member_and_the_next_renewal() {
    let tz: Tz = "Europe/Berlin".parse().expect("zone");
    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).expect("date");
    // The benefit was added by a sync at 10:00 on 30 November.
    let added = local_midnight(tz, day(30)) + 10 * 3600;
    let today = local_midnight(tz, day(30));
    // A member who subscribes on 30 November: their first period began at
    // midnight, before the sync, and still gets it.
    assert!(reaches(tz, added, today, day(30)));
    // A member subscribed since the 3rd, in a period that began on the 3rd:
    // not until their next renewal.
    assert!(!reaches(tz, added, local_midnight(tz, day(3)), day(3)));
    assert!(reaches(
        tz,
        added,
        local_midnight(tz, day(3)) + 31 * 86_400,
        day(3)
    ));
}

#[test]
fn a_member_without_a_home_site_has_the_catalog_body_it_had_before_the_field() {
    let mut member = Member {
        id: "alice".into(),
        name: "Alice".into(),
        cards: vec![],
        print_users: vec![],
        policy: None,
        home_site: None,
        subscriptions: vec![],
        purchases: vec![],
        grants: vec![],
    };
    let before = r#"{"id":"alice","name":"Alice","cards":[],"print_users":[],"policy":null,"subscriptions":[],"purchases":[],"grants":[]}"#;
    assert_eq!(body(&member), before);
    member.home_site = Some("ber-1".into());
    assert!(body(&member).contains(r#""home_site":"ber-1""#));
}
