//! Whether a printer can print now: its `printer-state` and
//! `printer-state-reasons`, read with `Get-Printer-Attributes` before a
//! release. A stopped, jammed, offline or empty printer releases nothing.

use super::client::{IppClient, IppError};
use super::jobs::{integer, text};
use super::requests::printer_attributes_request;
use crate::config::PrinterConfig;
use ipp::prelude::*;

/// `printer-state` stopped (RFC 8011 §5.4.11).
pub const STOPPED: i64 = 5;

/// The attributes asked for.
const REQUESTED: &[&str] = &[
    "printer-state",
    "printer-state-reasons",
    "printer-state-message",
    "color-supported",
    "media-supported",
];

/// Reasons (RFC 8011 §5.4.12, PWG 5100.9) that stop a job from coming out.
/// A reason counts in its bare form or with `-error`; `-warning` and
/// `-report` (toner low, say) never block.
const BLOCKING: &[&str] = &[
    "media-jam",
    "media-empty",
    "media-needed",
    "media-low-empty",
    "toner-empty",
    "marker-supply-empty",
    "marker-waste-full",
    "offline",
    "paused",
    "shutdown",
    "door-open",
    "cover-open",
    "interlock-open",
    "input-tray-missing",
    "output-tray-missing",
    "output-area-full",
    "spool-area-full",
    "stopped-partly",
    "moving-to-paused",
    "timed-out",
];

/// What a printer said about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrinterState {
    pub state: Option<i64>,
    pub reasons: Vec<String>,
    pub message: Option<String>,
    /// `color-supported`, when the printer says.
    pub colour: Option<bool>,
    /// `media-supported` (PWG media names), when the printer says.
    pub media: Vec<String>,
    /// `printer-up-time`: now on the printer's own clock, in the units of
    /// its jobs' `time-at-creation` (RFC 8011 5.4.29; CUPS: Unix seconds).
    pub up_time: Option<i64>,
}

impl PrinterState {
    /// Why nothing should be released to this printer now, or `None` when
    /// it can print.
    pub fn blocked(&self) -> Option<String> {
        let blocking: Vec<&str> = self
            .reasons
            .iter()
            .map(String::as_str)
            .filter(|r| is_blocking(r))
            .collect();
        let stopped = self.state == Some(STOPPED);
        if !stopped && blocking.is_empty() {
            return None;
        }
        let mut why = Vec::new();
        if stopped {
            why.push("stopped".to_string());
        }
        why.extend(blocking.iter().map(|r| r.to_string()));
        if let Some(m) = self.message.as_deref().filter(|m| !m.trim().is_empty()) {
            why.push(format!("\"{}\"", m.trim()));
        }
        Some(why.join(", "))
    }
}

impl PrinterState {
    /// Why this printer cannot print `job` as it asks (a job moved here from
    /// a follow-me queue), or `None`: colour at a mono-only printer, or a
    /// media size it does not list. `colour` is what is known of the job's
    /// colour (its analysis, else its `print-color-mode`).
    pub fn cannot_print(&self, colour: bool, media: Option<&str>) -> Option<String> {
        if colour && self.colour == Some(false) {
            return Some("a colour job at a mono-only printer".into());
        }
        let media = media.filter(|m| m.contains('_'))?;
        let listed = |m: &String| m.eq_ignore_ascii_case(media);
        if !self.media.is_empty() && !self.media.iter().any(listed) {
            return Some(format!("media {media} is not loaded at this printer"));
        }
        None
    }
}

fn is_blocking(reason: &str) -> bool {
    if reason.ends_with("-warning") || reason.ends_with("-report") {
        return false;
    }
    let bare = reason.strip_suffix("-error").unwrap_or(reason);
    BLOCKING.contains(&bare)
}

/// Reads `cfg`'s printer state.
pub async fn fetch(cfg: &PrinterConfig, client: &IppClient) -> Result<PrinterState, IppError> {
    let request = printer_attributes_request(&cfg.uri, REQUESTED)?;
    let response = client.send(&cfg.uri, request, cfg.timeout).await?;
    Ok(parse(&response))
}

/// `printer-up-time` alone (what a held job's age is read against), or
/// `None` when the printer does not say.
pub async fn up_time(cfg: &PrinterConfig, client: &IppClient) -> Result<Option<i64>, IppError> {
    let request = printer_attributes_request(&cfg.uri, &["printer-up-time"])?;
    let response = client.send(&cfg.uri, request, cfg.timeout).await?;
    Ok(parse(&response).up_time)
}

/// The state in a `Get-Printer-Attributes` response.
pub fn parse(response: &IppRequestResponse) -> PrinterState {
    let mut out = PrinterState::default();
    let groups = response
        .attributes()
        .groups_of(DelimiterTag::PrinterAttributes);
    for group in groups {
        let get = |name: &str| group.get(name).map(|a| a.value());
        if let Some(state) = get("printer-state").and_then(integer) {
            out.state = Some(state);
        }
        if let Some(v) = get("printer-state-reasons") {
            out.reasons = all_text(v);
        }
        if let Some(m) = get("printer-state-message").and_then(text) {
            out.message = Some(m);
        }
        if let Some(IppValue::Boolean(b)) = get("color-supported") {
            out.colour = Some(*b);
        }
        if let Some(v) = get("media-supported") {
            out.media = all_text(v);
        }
        if let Some(up) = get("printer-up-time").and_then(integer) {
            out.up_time = Some(up);
        }
    }
    out.reasons.retain(|r| r != "none");
    out
}

fn all_text(v: &IppValue) -> Vec<String> {
    match v {
        IppValue::Array(values) => values.iter().filter_map(text).collect(),
        other => text(other).into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mono_printer_refuses_colour_and_unlisted_media() {
        let mono = PrinterState {
            colour: Some(false),
            media: vec!["iso_a4_210x297mm".into(), "na_letter_8.5x11in".into()],
            ..PrinterState::default()
        };
        assert!(mono.cannot_print(true, None).unwrap().contains("mono-only"));
        assert_eq!(mono.cannot_print(false, Some("iso_a4_210x297mm")), None);
        assert!(mono
            .cannot_print(false, Some("iso_a3_297x420mm"))
            .unwrap()
            .contains("iso_a3"));
        // Not a PWG name, or nothing listed: no judgement.
        assert_eq!(mono.cannot_print(false, Some("A3")), None);
        assert_eq!(
            PrinterState::default().cannot_print(true, Some("iso_a3_297x420mm")),
            None
        );
    }

    fn state(state: i64, reasons: &[&str], message: &str) -> PrinterState {
        PrinterState {
            state: Some(state),
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
            message: Some(message.to_string()).filter(|m| !m.is_empty()),
            ..PrinterState::default()
        }
    }

    #[test]
    fn an_idle_or_busy_printer_with_warnings_can_print() {
        assert_eq!(state(3, &[], "").blocked(), None);
        assert_eq!(state(4, &["toner-low-warning"], "").blocked(), None);
        assert_eq!(
            state(
                3,
                &["media-empty-report", "cups-waiting-for-job-completed"],
                ""
            )
            .blocked(),
            None
        );
    }

    #[test]
    fn jams_empty_trays_and_stopped_queues_block() {
        assert_eq!(
            state(3, &["media-jam-error"], "").blocked().as_deref(),
            Some("media-jam-error")
        );
        assert_eq!(
            state(4, &["media-empty"], "").blocked().as_deref(),
            Some("media-empty")
        );
        assert_eq!(
            state(3, &["offline-report", "toner-empty-error"], "")
                .blocked()
                .as_deref(),
            Some("toner-empty-error")
        );
        // `cupsdisable -r media-jam q1`
        assert_eq!(
            state(5, &["paused"], "media-jam").blocked().as_deref(),
            Some("stopped, paused, \"media-jam\"")
        );
    }
}
