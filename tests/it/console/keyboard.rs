//! The console with a keyboard only, in headless Chromium: from a page
//! with nothing focused, Tab reaches the login form's fields, the manager
//! types, Enter logs in; Tab reaches "Members" in the navigation, Enter
//! opens it, Tab reaches the search field, typing and Enter find a member.
//! Keys go through WebDriver's input actions, as a keyboard's would (to
//! whatever has the focus). On each page, every visible form control has a
//! label.

use super::{site_with, Served, MANAGER, PASSWORD};
use crate::support::chromium::Chromium;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::Client;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);
/// More Tabs than any console page has stops before its first field.
const MAX_TABS: usize = 30;

/// Presses each key of `keys` in turn, on whatever has the focus.
async fn press(c: &Client, keys: &str) {
    let mut actions = KeyActions::new("keyboard".into());
    for k in keys.chars() {
        actions = actions
            .then(KeyAction::Down { value: k })
            .then(KeyAction::Up { value: k });
    }
    c.perform_actions(actions).await.expect("keys");
}

/// What has the focus, as `tag name=… href=…` (empty parts left out).
async fn focused(c: &Client) -> String {
    let js = "const e = document.activeElement; \
              return [e.tagName.toLowerCase(), \
                      e.name ? 'name=' + e.name : '', \
                      e.getAttribute('href') ? 'href=' + e.getAttribute('href') : ''] \
                     .filter(Boolean).join(' ');";
    let v = c.execute(js, vec![]).await.expect("focused element");
    v.as_str().expect("a string").to_string()
}

/// Presses Tab until `want` has the focus; panics if it never does.
async fn tab_to(c: &Client, want: &str) {
    let mut seen = Vec::new();
    for _ in 0..MAX_TABS {
        let now = focused(c).await;
        if now == want {
            return;
        }
        seen.push(now);
        press(c, &Key::Tab.to_string()).await;
    }
    panic!("Tab never reached `{want}`; it went through {seen:?}");
}

/// Takes the focus away, as on a page just opened without autofocus.
async fn blur(c: &Client) {
    c.execute(
        "document.activeElement && document.activeElement.blur();",
        vec![],
    )
    .await
    .expect("blur");
}

/// The visible form controls with no label (neither a `<label>` nor an
/// `aria-label`), as `tag name`.
async fn unlabelled(c: &Client) -> Vec<String> {
    let js = "return Array.from(document.querySelectorAll('input, select, textarea')) \
              .filter(e => e.type !== 'hidden') \
              .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')) \
              .map(e => e.tagName.toLowerCase() + ' ' + (e.name || ''));";
    let v = c.execute(js, vec![]).await.expect("controls");
    v.as_array()
        .expect("a list")
        .iter()
        .map(|s| s.as_str().unwrap_or("?").to_string())
        .collect()
}

/// How many form controls the page has (so a page with none cannot pass
/// the label check by accident).
async fn controls(c: &Client) -> u64 {
    let js =
        "return document.querySelectorAll('input:not([type=hidden]), select, textarea').length;";
    c.execute(js, vec![])
        .await
        .expect("count")
        .as_u64()
        .expect("a number")
}

async fn wait_path(c: &Client, path: &str) {
    let start = Instant::now();
    loop {
        let url = c.current_url().await.expect("url");
        if url.path() == path {
            return;
        }
        assert!(start.elapsed() < LIMIT, "still at {url}, not {path}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn main_text(c: &Client) -> String {
    let js = "const m = document.querySelector('main'); return m ? m.innerText : '';";
    let v = c.execute(js, vec![]).await.expect("text");
    v.as_str().unwrap_or_default().to_string()
}

#[test]
fn a_manager_logs_in_and_finds_a_member_with_the_keyboard_alone_and_every_control_has_a_label() {
    let _serial = crate::support::serial();
    let site = site_with(&[], "");
    let served = Served::start(&site);
    let profile = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let b = Chromium::start(&profile.path().join("profile")).await;
        let c = &b.client;
        c.goto(&served.url("/console/login")).await.expect("goto");
        assert!(controls(c).await >= 2);
        assert_eq!(unlabelled(c).await, Vec::<String>::new(), "login page");

        blur(c).await;
        tab_to(c, "input name=name").await;
        press(c, MANAGER).await;
        press(c, &Key::Tab.to_string()).await;
        assert_eq!(focused(c).await, "input name=password");
        press(c, PASSWORD).await;
        press(c, &Key::Enter.to_string()).await;
        wait_path(c, "/console/now").await;

        blur(c).await;
        tab_to(c, "a href=/console/members").await;
        press(c, &Key::Enter.to_string()).await;
        wait_path(c, "/console/members").await;
        assert!(controls(c).await >= 1);
        assert_eq!(unlabelled(c).await, Vec::<String>::new(), "members page");

        blur(c).await;
        tab_to(c, "input name=q").await;
        press(c, "Alice").await;
        press(c, &Key::Enter.to_string()).await;
        let start = Instant::now();
        loop {
            let url = c.current_url().await.expect("url");
            let text = main_text(c).await;
            if url.query().is_some_and(|q| q.contains("q=Alice")) && text.contains("alice") {
                break;
            }
            assert!(start.elapsed() < LIMIT, "no alice found at {url}:\n{text}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        b.close().await;
    });
}
