//! ipptool, the IPP client of cups-ipp-utils: one request per test file,
//! its response parsed ([`IppReply`]), and the requests the peers need
//! (Get-Job-Attributes, Release-Job, Get-Jobs, the attribute lines of a
//! Print-Job).
//!
//! # Facts found on Debian 12 (cups 2.4.2), which these helpers rely on
//!
//! * cupsd answers Get-Jobs with `requested-attributes all` WITHOUT the page
//!   counts (and without `job-name`) of a completed job whose attributes it has
//!   unloaded (about a second after completion); naming the attributes
//!   explicitly (or `job-template,job-description`) makes it load them. The
//!   helpers here always name them.
//! * ipptool prints name/text values escaped (`a"b\c` as `a\"b\\c`, in CSV
//!   quoted once more); [`IppReply`] and [`get_jobs`] undo both. In a test
//!   file `$$` is a literal `$`.
//! * ipptool's `$user` is built in: `-d user=alice` does not override it, so
//!   the test files written here carry literal values instead of variables.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use super::process::{require, run, text_of, unique, COMMAND_TIMEOUT};

/// `job-state` keyword to its enum value (RFC 8011).
pub fn job_state_value(keyword: &str) -> Option<i32> {
    Some(match keyword {
        "pending" => 3,
        "pending-held" => 4,
        "processing" => 5,
        "processing-stopped" => 6,
        "canceled" => 7,
        "aborted" => 8,
        "completed" => 9,
        other => return other.parse().ok(),
    })
}

/// Quotes a value for an ipptool test file.
pub(super) fn quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '$' => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The outcome of one ipptool request.
#[derive(Debug, Clone)]
pub struct IppReply {
    /// e.g. `successful-ok`, `server-error-busy`; empty if no response came.
    pub status: String,
    /// The response attributes as ipptool prints them (`name (type) = value`);
    /// the first occurrence of a name wins.
    pub attrs: HashMap<String, String>,
    /// Everything ipptool printed.
    pub output: String,
}

impl IppReply {
    pub fn ok(&self) -> bool {
        self.status.starts_with("successful-ok")
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.attrs.get(name).and_then(|v| v.parse().ok())
    }
}

/// Runs ipptool (with `-T 10 -tv`) on `test` (the body of one `{ ... }` test,
/// without `STATUS` lines) written into `dir`, and parses the response.
pub fn ipptool(dir: &Path, uri: &str, test: &str) -> IppReply {
    let file = dir.join(format!("ipptool-{}.test", unique()));
    fs::write(&file, format!("{{\n{test}\n}}\n")).expect("write ipptool test");
    let out = run(
        Command::new(require("ipptool"))
            .args(["-T", "10", "-tv", uri])
            .arg(&file),
        COMMAND_TIMEOUT,
    );
    let _ = fs::remove_file(&file);
    let output = text_of(&out);
    let mut status = String::new();
    let mut attrs = HashMap::new();
    let mut in_response = false;
    for line in output.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("status-code = ") {
            status = rest.split(' ').next().unwrap_or("").to_string();
            in_response = true;
            continue;
        }
        if !in_response {
            continue;
        }
        let Some((name, rest)) = line.split_once(" (") else {
            continue;
        };
        let Some((_, value)) = rest.split_once(") =") else {
            continue;
        };
        if name.contains(' ') || name.is_empty() {
            continue;
        }
        attrs
            .entry(name.to_string())
            .or_insert_with(|| unescape(value.trim()));
    }
    IppReply {
        status,
        attrs,
        output,
    }
}

pub(super) fn operation_header(user: &str) -> String {
    format!(
        "ATTR charset attributes-charset utf-8\n\
         ATTR language attributes-natural-language en\n\
         ATTR uri printer-uri $uri\n\
         ATTR name requesting-user-name {}\n",
        quote(user)
    )
}

/// Get-Job-Attributes (all attributes) for `job_id` on `printer_uri`.
pub fn get_job_attributes(dir: &Path, printer_uri: &str, job_id: u32) -> IppReply {
    let test = format!(
        "NAME \"Get-Job-Attributes\"\nOPERATION Get-Job-Attributes\n\
         GROUP operation-attributes-tag\n{}ATTR integer job-id {job_id}\n",
        operation_header("tallyd-tests")
    );
    ipptool(dir, printer_uri, &test)
}

/// Release-Job for `job_id` on `printer_uri`: `Err(status keyword)` unless OK.
pub fn release_job(dir: &Path, printer_uri: &str, job_id: u32) -> Result<(), String> {
    let test = format!(
        "NAME \"Release-Job\"\nOPERATION Release-Job\n\
         GROUP operation-attributes-tag\n{}ATTR integer job-id {job_id}\n",
        operation_header("tallyd-tests")
    );
    let reply = ipptool(dir, printer_uri, &test);
    if reply.ok() {
        Ok(())
    } else if reply.status.is_empty() {
        Err(format!("no IPP response: {}", reply.output))
    } else {
        Err(reply.status)
    }
}

/// The attributes [`get_jobs`] asks for by default.
pub const JOB_LIST_ATTRS: &[&str] = &[
    "job-id",
    "job-state",
    "job-state-reasons",
    "job-name",
    "job-originating-user-name",
    "job-impressions",
    "job-impressions-completed",
    "job-media-sheets-completed",
    "copies",
    "sides",
    "print-color-mode",
    "date-time-at-completed",
];

/// Get-Jobs (`which`: `completed`, `not-completed`, `all`) asking for `attrs`
/// by name (see the module docs on cupsd and `all`), one map per job, newest
/// first; a missing attribute is absent from its map.
pub fn get_jobs(
    dir: &Path,
    printer_uri: &str,
    which: &str,
    attrs: &[&str],
) -> Vec<HashMap<String, String>> {
    let mut test = format!(
        "NAME \"Get-Jobs\"\nOPERATION Get-Jobs\nGROUP operation-attributes-tag\n{}\
         ATTR keyword which-jobs {which}\nATTR keyword requested-attributes {}\n\
         STATUS successful-ok\n",
        operation_header("tallyd-tests"),
        attrs.join(",")
    );
    for attr in attrs {
        test.push_str(&format!("DISPLAY {attr}\n"));
    }
    let file = dir.join(format!("ipptool-{}.test", unique()));
    fs::write(&file, format!("{{\n{test}}}\n")).expect("write ipptool test");
    let out = run(
        Command::new(require("ipptool"))
            .args(["-T", "10", "-c", printer_uri])
            .arg(&file),
        COMMAND_TIMEOUT,
    );
    let _ = fs::remove_file(&file);
    assert!(
        out.status.success(),
        "tests/it/support: Get-Jobs on {printer_uri} failed:\n{}",
        text_of(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let header: Vec<String> = match lines.next() {
        Some(h) => parse_csv_line(h),
        None => return Vec::new(),
    };
    lines
        .filter(|l| !l.is_empty())
        .map(|line| {
            header
                .iter()
                .cloned()
                .zip(parse_csv_line(line))
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k, unescape(&v)))
                .collect()
        })
        .collect()
}

/// Undoes ippAttributeString's escaping (ipptool prints a name or text
/// value `a"b\c` as `a\"b\\c`). Values of a 1setOf stay joined with `,`.
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            _ => out.push(c),
        }
    }
    out
}

/// ipptool's CSV: fields with `,` `"` or `\` are quoted, with `\` escapes.
fn parse_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => {
                if let Some(next) = chars.next() {
                    field.push(next);
                }
            }
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// The ipptool `ATTR` line for a request attribute given as (name, value).
///
/// The group and syntax are inferred: `job-name`, `document-name` and
/// `requesting-user-name` are names; `document-format` a mimeMediaType;
/// `orientation-requested`, `print-quality`, `finishings` enums; digits
/// integers; `true`/`false` booleans; anything else a keyword. Operation
/// attributes (`job-name`, `document-*`, `ipp-attribute-fidelity`,
/// `job-impressions`, `job-k-octets`, `job-media-sheets`, `compression`) go in
/// the operation group, the rest in the job group. Force a syntax with
/// `"SYNTAX:name"`, e.g. `("name:job-sheets", "none")`.
pub(super) fn attr_line(name: &str, value: &str) -> (bool, String) {
    let (syntax, name) = match name.split_once(':') {
        Some((syntax, name)) => (Some(syntax), name),
        None => (None, name),
    };
    let operation = matches!(
        name,
        "job-name"
            | "document-name"
            | "document-format"
            | "ipp-attribute-fidelity"
            | "job-impressions"
            | "job-k-octets"
            | "job-media-sheets"
            | "compression"
    );
    let syntax = syntax.unwrap_or(match name {
        "job-name" | "document-name" | "requesting-user-name" => "name",
        "document-format" => "mimeMediaType",
        "orientation-requested" | "print-quality" | "finishings" => "enum",
        _ if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit()) => "integer",
        _ if value == "true" || value == "false" => "boolean",
        _ => "keyword",
    });
    (
        operation,
        format!("ATTR {syntax} {name} {}\n", quote(value)),
    )
}
