use super::*;
use crate::error_chain;
use crate::printer::jobs::COMPLETED;

/// Recorded from cupsd 2.4.2 (Debian 12): `Get-Jobs` with tallyd's
/// `requested-attributes` on a queue where `lp -t` had named job 515 with
/// 300 bytes. CUPS lists that name (and a second `job-name` of `Untitled`),
/// and `limit 500` because it cuts job histories at 500.
const CUPS_LONG_NAME: &[u8] =
    include_bytes!("../../../fixtures/ipp/cupsd-2.4.2-get-jobs-300-byte-job-name.bin");

fn attr(out: &mut Vec<u8>, tag: u8, name: &str, value: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

/// A completed job's group: its id, uuid, state, a name of `name_len`
/// bytes, its owner and 3 impressions.
pub(crate) fn job_group(id: i32, name_len: usize) -> Vec<u8> {
    let mut g = vec![JOB_GROUP];
    attr(&mut g, 0x21, "job-id", &id.to_be_bytes());
    let uuid = format!("urn:uuid:00000000-0000-0000-0000-{id:012}");
    attr(&mut g, 0x45, "job-uuid", uuid.as_bytes());
    attr(&mut g, 0x23, "job-state", &9i32.to_be_bytes());
    attr(&mut g, 0x42, "job-name", &vec![b'n'; name_len]);
    attr(&mut g, 0x42, "job-originating-user-name", b"alice");
    attr(
        &mut g,
        0x21,
        "job-impressions-completed",
        &3i32.to_be_bytes(),
    );
    g
}

/// A successful `Get-Jobs` answer with these job groups.
pub(crate) fn answer(groups: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![1, 1, 0, 0, 0, 0, 0, 1, OPERATION_GROUP];
    attr(&mut b, 0x47, "attributes-charset", b"utf-8");
    attr(&mut b, 0x48, "attributes-natural-language", b"en");
    for g in groups {
        b.extend_from_slice(g);
    }
    b.push(END_OF_ATTRIBUTES);
    b
}

fn ids(listing: &Listing) -> Vec<(i32, bool)> {
    listing
        .records
        .iter()
        .map(|r| match r {
            Record::Job(j) => (j.id, true),
            Record::Unreadable(u) => (u.job.as_ref().map_or(0, |j| j.id), false),
        })
        .collect()
}

#[test]
fn a_300_byte_job_name_from_cups_costs_that_job_alone() {
    // Before: the crate refuses the whole answer, so no job of it is read.
    let whole = client::parse_response(CUPS_LONG_NAME.to_vec())
        .err()
        .expect("refused");
    assert_eq!(
        error_chain(&whole),
        "not an IPP response: invalid string length: 300, max: 255"
    );

    let listing = read(CUPS_LONG_NAME).expect("read");
    assert_eq!(ids(&listing), vec![(515, false), (14, true)]);
    assert_eq!(listing.limit, Some(500));
    assert_eq!(listing.broken, None);
    let Record::Unreadable(bad) = &listing.records[0] else {
        panic!("job 515 is unreadable");
    };
    assert_eq!(bad.error, "job-name: invalid string length: 300, max: 255");
    let job = bad.job.as_ref().expect("its identity");
    assert_eq!(
        job.uuid.as_deref(),
        Some("urn:uuid:bbfd29c5-6947-3c3a-796b-4ada86578e6b")
    );
    assert_eq!(job.user.as_deref(), Some("longname"));
    assert_eq!(job.state, COMPLETED);
    assert!(job.created_at.is_some());
    let Record::Job(good) = &listing.records[1] else {
        panic!("job 14 reads");
    };
    assert_eq!(good.user.as_deref(), Some("other"));
    assert_eq!(good.name.as_deref(), Some("f.txt"));
}

#[test]
fn a_65000_byte_name_among_healthy_jobs() {
    let body = answer(&[job_group(1, 5), job_group(2, 65_000), job_group(3, 5)]);
    let listing = read(&body).expect("read");
    assert_eq!(ids(&listing), vec![(1, true), (2, false), (3, true)]);
    let Record::Unreadable(bad) = &listing.records[1] else {
        panic!("job 2 is unreadable");
    };
    assert_eq!(
        bad.error,
        "job-name: invalid string length: 65000, max: 255"
    );
    let job = bad.job.as_ref().expect("identity");
    assert_eq!(job.impressions_completed, Some(3), "its counts are kept");
    assert_eq!(job.name, None);
}

#[test]
fn bytes_that_stop_making_sense_keep_every_job_before_them() {
    let body = answer(&[job_group(1, 5), job_group(2, 5), job_group(3, 5)]);
    let second = answer(&[job_group(1, 5)]).len() - 1;
    // Cut inside job 2's name.
    let cut = &body[..second + 40];
    let listing = read(cut).expect("read");
    assert_eq!(ids(&listing), vec![(1, true)]);
    let why = listing.broken.expect("broken");
    assert!(why.contains("runs past the end"), "{why}");

    // No end-of-attributes tag: the last job is not known to be whole.
    let listing = read(&body[..body.len() - 1]).expect("read");
    assert_eq!(ids(&listing), vec![(1, true), (2, true)]);
    assert!(listing.broken.expect("broken").contains("without an end"));
}

#[test]
fn a_job_without_id_or_uuid_cannot_be_named() {
    let mut g = vec![JOB_GROUP];
    attr(&mut g, 0x23, "job-state", &9i32.to_be_bytes());
    attr(&mut g, 0x41, "job-name", &[b'x'; 2000]);
    let listing = read(&answer(&[g])).expect("read");
    let Record::Unreadable(bad) = &listing.records[0] else {
        panic!("unreadable");
    };
    assert_eq!(bad.job, None);
    assert_eq!(
        bad.error,
        "job-name: invalid string length: 2000, max: 1023"
    );
}

#[test]
fn collections_and_more_values_stay_with_their_attribute() {
    let mut g = job_group(7, 300);
    attr(&mut g, 0x34, "job-impressions-completed-col", b"");
    attr(&mut g, 0x4a, "", b"monochrome");
    attr(&mut g, 0x21, "", &2i32.to_be_bytes());
    attr(&mut g, 0x37, "", b"");
    attr(&mut g, 0x44, "sides", b"one-sided");
    attr(&mut g, 0x44, "", b"two-sided-long-edge");
    let listing = read(&answer(&[g])).expect("read");
    let Record::Unreadable(bad) = &listing.records[0] else {
        panic!("unreadable");
    };
    let job = bad.job.as_ref().expect("identity");
    assert_eq!(job.impressions_col, Some((2, 0)));
    assert_eq!(job.sides.as_deref(), Some("one-sided"));
}

#[test]
fn not_ipp_or_not_a_success_is_an_error() {
    assert!(matches!(read(&[1, 1, 0]), Err(IppError::TooShort(3))));
    assert!(matches!(read(&[9; 16]), Err(IppError::UnknownVersion(9))));
    let mut refused = answer(&[job_group(1, 5)]);
    refused[2..4].copy_from_slice(&0x0406u16.to_be_bytes());
    let e = read(&refused).expect_err("not found");
    assert!(matches!(e, IppError::Status { code: 0x0406, .. }), "{e:?}");
}

#[test]
fn control_characters_in_a_broken_name_are_not_passed_on() {
    let mut g = vec![JOB_GROUP];
    attr(&mut g, 0x21, "job-id", &4i32.to_be_bytes());
    attr(&mut g, 0x42, "job-\nname", &[b'n'; 256]);
    let listing = read(&answer(&[g])).expect("read");
    let Record::Unreadable(bad) = &listing.records[0] else {
        panic!("unreadable");
    };
    assert_eq!(bad.error, "job-?name: invalid string length: 256, max: 255");
}

/// Found by the `ipp_jobs` fuzz target: a `textWithLanguage` value whose
/// inner length runs past it made the `ipp` crate panic (`range end index
/// 2026 out of range for slice of length 9`), and with it the poller, at
/// every poll. Now that job alone is unreadable and the others are read.
#[test]
fn a_value_with_a_language_whose_lengths_run_past_it_costs_that_job_alone() {
    let found =
        include_bytes!("../../../fixtures/fuzz/ipp_jobs/text-with-language-lengths-past-value.ipp");
    let listing = read(found).expect("an IPP answer");
    assert!(listing
        .records
        .iter()
        .any(|r| matches!(r, Record::Unreadable(u) if u.error.contains("lengths run past it"))));

    let mut bad = job_group(7, 8);
    // textWithLanguage: a language of 2026 bytes in a value of 9.
    attr(
        &mut bad,
        0x35,
        "job-name",
        b"\x07\xea\x0b\x1e\x115\x0e\x00+",
    );
    let listing = read(&answer(&[job_group(6, 8), bad, job_group(8, 8)])).expect("read");
    assert_eq!(ids(&listing), vec![(6, true), (7, false), (8, true)]);
    let Record::Unreadable(u) = &listing.records[1] else {
        panic!("job 7 is unreadable");
    };
    assert_eq!(
        u.error,
        "job-name: a value with a language whose lengths run past it"
    );
    let whole = client::parse_response(answer(&[job_group(6, 8), bad_group()])).err();
    assert_eq!(
        whole.map(|e| error_chain(&e)).as_deref(),
        Some("not an IPP response: job-name: a value with a language whose lengths run past it")
    );
}

fn bad_group() -> Vec<u8> {
    let mut g = job_group(9, 8);
    attr(&mut g, 0x36, "job-name", b"\x00\x02en\x00\x09abc");
    g
}
