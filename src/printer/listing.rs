//! A `Get-Jobs` answer read one job at a time.
//!
//! The `ipp` crate reads a whole response or nothing, so one value it
//! refuses loses every job in the answer: CUPS 2.4 lists a `job-name` of 300
//! bytes when `lp -t` gave one, and the crate refuses names over 255 bytes.
//! Here the bytes are first cut into attribute groups by their framing alone
//! (tag; name length, name; value length, value: RFC 8010 §3.1), then the
//! crate parses each job's group on its own. A job whose group it refuses
//! is kept as [`Unreadable`]: why, and what could be read of it attribute by
//! attribute (its id, uuid, owner and counts), for the review queue. Only
//! bytes that stop making sense as framing end the reading, and every job
//! before them is kept.
//!
//! Pure: tests feed it bytes, among them a response recorded from CUPS
//! (`fixtures/ipp/`).

use super::client::{self, IppError};
use super::jobs::{parse_jobs, Job};
use ipp::parser::{IppParseError, IppParser};
use ipp::prelude::*;
use std::io::Cursor;

/// Tags below this begin a group or end the attributes (RFC 8010 §3.5.1).
const FIRST_VALUE_TAG: u8 = 0x10;
const OPERATION_GROUP: u8 = 0x01;
const JOB_GROUP: u8 = 0x02;
const END_OF_ATTRIBUTES: u8 = 0x03;
const INTEGER: u8 = 0x21;

/// What a `Get-Jobs` answer lists, job by job.
#[derive(Debug, Default)]
pub struct Listing {
    /// Every job whose attributes were read to their end, in the printer's
    /// order.
    pub records: Vec<Record>,
    /// The `limit` the printer says it applied, when it says (CUPS answers
    /// `limit 500` when it cut a longer list).
    pub limit: Option<u32>,
    /// Why the bytes stopped making sense, if they did: inside the job after
    /// the last one in `records`, or before any job.
    pub broken: Option<String>,
}

/// One job of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Job(Job),
    Unreadable(Unreadable),
}

/// A job whose attributes the `ipp` crate cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// What could be read of it, when that includes a `job-id` or a
    /// `job-uuid` (enough for its usual key).
    pub job: Option<Job>,
    /// Why: the first attribute that cannot be read and the crate's reason
    /// (`job-name: invalid string length: 300, max: 255`).
    pub error: String,
}

/// Reads a `Get-Jobs` answer. An error only when it is not an IPP response
/// at all (too short, an unknown version) or its status is not a success.
pub fn read(body: &[u8]) -> Result<Listing, IppError> {
    let head = header(body)?;
    let mut listing = Listing::default();
    let mut framing = Framing { bytes: body, at: 8 };
    // The group being read: its tag and where its attributes begin.
    let mut group: Option<(u8, usize)> = None;
    loop {
        let item = match framing.next() {
            Ok(item) => item,
            Err(why) => {
                listing.broken = Some(why);
                return Ok(listing);
            }
        };
        match item {
            Item::Delimiter { tag, at } => {
                if let Some((JOB_GROUP, start)) = group {
                    if at > start {
                        listing.records.push(record(head, &body[start..at]));
                    }
                }
                if tag == END_OF_ATTRIBUTES {
                    return Ok(listing);
                }
                group = Some((tag, framing.at));
            }
            Item::Value {
                tag, name, value, ..
            } => {
                let in_operation = matches!(group, Some((OPERATION_GROUP, _)));
                if in_operation && tag == INTEGER && name == b"limit" {
                    listing.limit = value
                        .try_into()
                        .ok()
                        .map(i32::from_be_bytes)
                        .and_then(|n| u32::try_from(n).ok());
                }
            }
        }
    }
}

/// The first 8 bytes (version, status, request id), once they are known to
/// be an IPP response whose status is a success.
fn header(body: &[u8]) -> Result<&[u8], IppError> {
    let Some(head) = body.get(..8) else {
        return Err(IppError::TooShort(body.len()));
    };
    if head[0] != 1 && head[0] != 2 {
        return Err(IppError::UnknownVersion(head[0]));
    }
    let status = i16::from_be_bytes([head[2], head[3]]);
    client::success(&IppHeader::new(IppVersion::v1_1(), status, 0))?;
    Ok(head)
}

/// One job from the bytes of its group (its attributes, without the tag).
fn record(head: &[u8], group: &[u8]) -> Record {
    match parse_group(head, group) {
        Ok(job) => Record::Job(job),
        Err(whole) => Record::Unreadable(salvage(head, group, &whole)),
    }
}

/// The crate's reading of one job group.
fn parse_group(head: &[u8], group: &[u8]) -> Result<Job, IppParseError> {
    // The attribute is named by `salvage`, which reads them one by one.
    client::check_with_language(group, 0).map_err(|_| {
        let why = client::LENGTHS_PAST_VALUE;
        IppParseError::from(std::io::Error::new(std::io::ErrorKind::InvalidData, why))
    })?;
    let mut bytes = Vec::with_capacity(head.len() + group.len() + 2);
    bytes.extend_from_slice(head);
    bytes.push(JOB_GROUP);
    bytes.extend_from_slice(group);
    bytes.push(END_OF_ATTRIBUTES);
    let response = IppParser::new(ipp::reader::IppReader::new(Cursor::new(bytes))).parse()?;
    // One job group went in, so one job comes out.
    Ok(parse_jobs(&response).into_iter().next().unwrap_or_default())
}

/// What can be read of a job the crate refuses: every attribute that
/// parses on its own, and the first that does not.
fn salvage(head: &[u8], group: &[u8], whole: &IppParseError) -> Unreadable {
    let mut readable = Vec::with_capacity(group.len());
    let mut first_bad = None;
    for (name, bytes) in attributes(group) {
        match parse_group(head, bytes) {
            Ok(_) => readable.extend_from_slice(bytes),
            Err(e) => {
                first_bad.get_or_insert_with(|| format!("{}: {e}", printable(name)));
            }
        }
    }
    let job = parse_group(head, &readable)
        .ok()
        .filter(|j| j.id != 0 || j.uuid.is_some());
    Unreadable {
        job,
        error: first_bad.unwrap_or_else(|| whole.to_string()),
    }
}

/// A group's attributes: each is a value with a name and every value
/// after it without one (more values, or a collection's members).
fn attributes(group: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out: Vec<(&[u8], usize, usize)> = Vec::new();
    let mut framing = Framing {
        bytes: group,
        at: 0,
    };
    while let Ok(Item::Value { name, start, .. }) = framing.next() {
        match out.last_mut() {
            Some(last) if name.is_empty() => last.2 = framing.at,
            _ => out.push((name, start, framing.at)),
        }
    }
    out.into_iter()
        .map(|(name, start, end)| (name, &group[start..end]))
        .collect()
}

/// An attribute name as a manager may read it: no control characters, at
/// most 64 characters.
fn printable(name: &[u8]) -> String {
    String::from_utf8_lossy(name)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(64)
        .collect()
}

/// One step through IPP attribute framing.
enum Item<'a> {
    /// A group begins, or (`END_OF_ATTRIBUTES`) the attributes end; `at`
    /// is where its tag is.
    Delimiter { tag: u8, at: usize },
    /// One value; `start` is where its tag is.
    Value {
        tag: u8,
        name: &'a [u8],
        value: &'a [u8],
        start: usize,
    },
}

/// Walks attribute framing without judging any value.
struct Framing<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Framing<'a> {
    fn next(&mut self) -> Result<Item<'a>, String> {
        let start = self.at;
        let Some(&tag) = self.bytes.get(start) else {
            return Err(format!(
                "the attributes end at byte {start} without an end-of-attributes tag"
            ));
        };
        self.at += 1;
        if tag < FIRST_VALUE_TAG {
            return Ok(Item::Delimiter { tag, at: start });
        }
        let past_end = || format!("the attribute at byte {start} runs past the end");
        let name = self.field().ok_or_else(past_end)?;
        let value = self.field().ok_or_else(past_end)?;
        Ok(Item::Value {
            tag,
            name,
            value,
            start,
        })
    }

    /// A two-byte length and that many bytes.
    fn field(&mut self) -> Option<&'a [u8]> {
        let len = self.bytes.get(self.at..self.at + 2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let start = self.at + 2;
        let field = self.bytes.get(start..start + len)?;
        self.at = start + len;
        Some(field)
    }
}

#[cfg(test)]
mod tests;
