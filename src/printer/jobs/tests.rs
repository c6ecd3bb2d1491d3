use super::*;
use crate::config::Mode;
use crate::pricing::PriceTable;
use std::time::Duration;

pub(crate) fn printer(colour_default: bool) -> PrinterConfig {
    let prices: PriceTable = toml::from_str(
        r#"
        default_media = "a4"
        [media.a4]
        mono = { one_sided = 10, two_sided = 8 }
        colour = { one_sided = 40, two_sided = 35 }
        [media.a3]
        mono = { one_sided = 20, two_sided = 16 }
        colour = { one_sided = 80, two_sided = 70 }
        "#,
    )
    .expect("table");
    PrinterConfig {
        id: "lobby".into(),
        uri: "ipp://127.0.0.1:631/printers/lobby".into(),
        mode: Mode::Direct,
        prices,
        poll_interval: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
        colour_default,
        page_estimate: 4,
        hold_timeout: Duration::from_secs(3600),
        max_job_impressions: 2000,
        release_to: Vec::new(),
        trust: crate::tls::Trust::System,
    }
}

fn done(state: i32) -> Job {
    Job {
        id: 7,
        state,
        ..Job::default()
    }
}

#[test]
fn what_a_finished_job_costs() {
    let p = printer(false);
    let with = |f: &dyn Fn(&mut Job)| {
        let mut j = done(COMPLETED);
        f(&mut j);
        price_job(&p, &j).map(|x| {
            (
                x.facts.mono_impressions,
                x.facts.colour_impressions,
                x.cents,
            )
        })
    };
    type Cost = Option<(i64, i64, i64)>;
    let cases: Vec<(&str, Cost)> = vec![
        (
            "3 mono impressions",
            with(&|j| j.impressions_completed = Some(3)),
        ),
        (
            "none printed costs nothing",
            with(&|j| j.impressions_completed = Some(0)),
        ),
        ("nothing reported costs nothing", with(&|_| {})),
        (
            "colour from print-color-mode",
            with(&|j| {
                j.impressions_completed = Some(2);
                j.color_mode = Some("color".into());
            }),
        ),
        (
            "auto follows the printer default (mono here)",
            with(&|j| {
                j.impressions_completed = Some(2);
                j.color_mode = Some("auto".into());
            }),
        ),
        (
            "the impressions collection beats print-color-mode",
            with(&|j| {
                j.impressions_completed = Some(5);
                j.color_mode = Some("monochrome".into());
                j.impressions_col = Some((2, 3));
            }),
        ),
        (
            "duplex: 5 impressions are charged, not 3 sheets",
            with(&|j| {
                j.impressions_completed = Some(5);
                j.sheets_completed = Some(3);
                j.sides = Some("two-sided-long-edge".into());
            }),
        ),
        (
            "only sheets reported: two-sided counts both sides",
            with(&|j| {
                j.sheets_completed = Some(3);
                j.sides = Some("two-sided-short-edge".into());
            }),
        ),
        (
            "only sheets reported: one-sided",
            with(&|j| j.sheets_completed = Some(3)),
        ),
        (
            "A3 from media-col or media",
            with(&|j| {
                j.impressions_completed = Some(1);
                j.media = Some("iso_a3_297x420mm".into());
            }),
        ),
    ];
    let want = [
        Some((3, 0, 30)),
        None,
        None,
        Some((0, 2, 80)),
        Some((2, 0, 20)),
        Some((2, 3, 140)),
        Some((5, 0, 40)),
        Some((6, 0, 48)),
        Some((3, 0, 30)),
        Some((1, 0, 20)),
    ];
    for ((name, got), want) in cases.into_iter().zip(want) {
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn the_printer_default_decides_when_the_job_does_not_say() {
    let mut j = done(COMPLETED);
    j.impressions_completed = Some(1);
    assert_eq!(price_job(&printer(true), &j).map(|p| p.cents), Some(40));
    assert_eq!(price_job(&printer(false), &j).map(|p| p.cents), Some(10));
}

#[test]
fn cancelled_and_aborted_jobs_pay_for_what_printed() {
    for state in [CANCELED, ABORTED] {
        let mut j = done(state);
        assert!(j.is_terminal());
        assert_eq!(price_job(&printer(false), &j), None, "nothing printed");
        j.impressions_completed = Some(2);
        assert_eq!(price_job(&printer(false), &j).map(|p| p.cents), Some(20));
    }
    assert!(!done(PENDING_HELD).is_terminal());
    assert!(!done(5).is_terminal());
}

#[test]
fn keys_use_the_uuid_else_the_creation_time() {
    let mut j = done(COMPLETED);
    j.created_tick = Some(12);
    assert_eq!(j.key("p"), "print:p:job-7:tick-12");
    j.created_at = Some(1_790_000_000);
    assert_eq!(j.key("p"), "print:p:job-7:created-1790000000");
    j.uuid = Some("urn:uuid:1234".into());
    assert_eq!(j.key("p"), "print:p:urn:uuid:1234");
}

#[test]
fn owners_match_ignoring_domain_and_case() {
    for name in ["Alice", "CORP\\alice", "alice@corp.example", "ALICE"] {
        let j = Job {
            user: Some(name.into()),
            ..Job::default()
        };
        assert_eq!(j.owner().as_deref(), Some("alice"), "{name}");
    }
    assert_eq!(Job::default().owner(), None);
}

#[test]
fn held_jobs_are_estimated_from_job_impressions_else_the_page_estimate() {
    let p = printer(false);
    let mut j = done(PENDING_HELD);
    assert_eq!(estimate_job(&p, &j).map(|e| e.cents), Some(40));
    j.impressions = Some(6);
    j.sides = Some("two-sided-long-edge".into());
    assert_eq!(estimate_job(&p, &j).map(|e| e.cents), Some(48));
}

/// A `Get-Jobs` response as a printer sends it, parsed back.
fn response(jobs: Vec<Vec<IppAttribute>>) -> IppRequestResponse {
    let mut r = IppRequestResponse::new_response(IppVersion::v1_1(), StatusCode::SuccessfulOk, 1)
        .expect("response");
    for job in jobs {
        r.attributes_mut()
            .groups_mut()
            .push(ipp::attribute::IppAttributeGroup::new(
                DelimiterTag::JobAttributes,
            ));
        let group = r.attributes_mut().groups_mut().last_mut().expect("group");
        group.attributes_mut().extend(job);
    }
    let bytes = r.to_bytes().to_vec();
    super::super::client::parse_response(bytes).expect("round trip")
}

fn attr(name: &str, value: IppValue) -> IppAttribute {
    IppAttribute::with_name(name, value).expect("attribute")
}

#[test]
fn parses_two_jobs_with_every_attribute_we_use() {
    let dt = ipp::value::IppDateTime {
        year: 2026,
        month: 11,
        day: 21,
        hour: 10,
        minutes: 30,
        seconds: 5,
        deci_seconds: 0,
        utc_dir: '+',
        utc_hours: 1,
        utc_mins: 0,
    };
    let mut col = std::collections::BTreeMap::new();
    col.insert("monochrome".try_into().expect("name"), IppValue::Integer(4));
    col.insert("full-color".try_into().expect("name"), IppValue::Integer(2));
    let r = response(vec![
        vec![
            attr("job-id", IppValue::Integer(3)),
            attr("job-uuid", IppValue::new_uri("urn:uuid:abc").expect("uri")),
            attr("job-state", IppValue::Enum(9)),
            attr(
                "job-originating-user-name",
                IppValue::new_name_without_language("CORP\\Bob").expect("name"),
            ),
            attr("date-time-at-creation", IppValue::DateTime(dt.clone())),
            attr("date-time-at-completed", IppValue::DateTime(dt)),
            attr("job-impressions-completed", IppValue::Integer(6)),
            attr("job-impressions-completed-col", IppValue::Collection(col)),
            attr(
                "sides",
                IppValue::new_keyword("two-sided-long-edge").expect("kw"),
            ),
            attr(
                "media",
                IppValue::new_keyword("iso_a3_297x420mm").expect("kw"),
            ),
        ],
        vec![
            attr("job-id", IppValue::Integer(4)),
            attr("job-state", IppValue::Enum(7)),
            attr("time-at-creation", IppValue::Integer(99)),
        ],
    ]);
    let jobs = parse_jobs(&r);
    assert_eq!(jobs.len(), 2);
    let j = &jobs[0];
    assert_eq!((j.id, j.state), (3, COMPLETED));
    assert_eq!(j.owner().as_deref(), Some("bob"));
    assert_eq!(j.impressions_col, Some((4, 2)));
    // 10:30:05 at UTC+1 is 09:30:05 UTC.
    assert_eq!(j.created_at, Some(1_795_253_405));
    assert_eq!(j.media.as_deref(), Some("iso_a3_297x420mm"));
    let priced = price_job(&printer(false), j).expect("priced");
    assert_eq!(priced.cents, 4 * 16 + 2 * 70);
    assert_eq!(jobs[1].key("lobby"), "print:lobby:job-4:tick-99");
}
