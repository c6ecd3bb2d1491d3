//! The console's page frame and the small pieces pages share, as maud
//! templates (HTML checked at compile time, every value escaped).

use maud::{html, Markup, DOCTYPE};

/// The stylesheet, served at `/console/style.css`.
pub const STYLE: &str = include_str!("style.css");

/// Who is looking at a page, and the token its logout form carries.
pub struct Viewer<'a> {
    pub manager: &'a str,
    pub logout_token: &'a str,
    /// Reload the page every this many seconds.
    pub refresh: Option<u32>,
    /// The site is in a chain (`[central]`): the chain page is listed.
    pub chain: bool,
}

/// A whole page: the header with the site, the sections and the manager's
/// logout, and `body`.
pub fn page(site: &str, title: &str, viewer: Option<&Viewer<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (site) }
                link rel="stylesheet" href="/console/style.css";
                @if let Some(secs) = viewer.and_then(|v| v.refresh) {
                    meta http-equiv="refresh" content=(secs);
                }
            }
            body {
                header {
                    span.site { (site) " console" }
                    @if let Some(v) = viewer {
                        nav aria-label="Sections" {
                            a href="/console/now" { "Now" }
                            a href="/console/members" { "Members" }
                            a href="/console/review" { "Review" }
                            a href="/console/report" { "Reports" }
                            @if v.chain { a href="/console/chain" { "Chain" } }
                        }
                        form.inline method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(v.logout_token);
                            span.note { (v.manager) }
                            button.quiet type="submit" { "Log out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// The hidden one-time token every form carries.
pub fn csrf(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// The confirmation box every action form has.
pub fn confirm(what: &str) -> Markup {
    html! {
        label.check {
            input type="checkbox" name="confirm" value="yes" required;
            (what)
        }
    }
}

/// A reason field (required: the CLI asks for one).
pub fn reason(label: &str) -> Markup {
    html! {
        label { (label) input type="text" name="reason" required maxlength="200"; }
    }
}
