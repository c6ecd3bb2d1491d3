//! Who is logged in, which form tokens are still good, and how many login
//! attempts a name or an address has left: the console's security state,
//! in memory (a restart logs every manager out). Pure bookkeeping: every
//! call takes the time, so the rules are tested without waiting.
//!
//! - A session is a random 256-bit token (the cookie), ending after
//!   `idle` without a request or [`SESSION_MAX`] after login.
//! - Every form carries a one-time token: issued when the page is rendered,
//!   tied to the session (the login form's to nothing), consumed when the
//!   form is posted. A replayed form finds its token gone.
//! - Login failures are counted per manager name and per client address
//!   over [`FAILURE_WINDOW`]; past the limits, attempts are refused before
//!   the password is checked.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The longest a session lasts, however busy.
pub const SESSION_MAX: Duration = Duration::from_secs(12 * 3600);
/// How long a rendered form's token stays good.
pub const FORM_TTL: Duration = Duration::from_secs(2 * 3600);
/// The window login failures are counted over.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failed logins a manager name may have in the window.
pub const FAILURES_PER_NAME: usize = 5;
/// Failed logins one client address may have in the window.
pub const FAILURES_PER_ADDRESS: usize = 20;
/// Form tokens kept per session (the oldest go first): two hours of the
/// now page reloading itself every 15 s, beside forms open in other tabs.
const TOKENS_PER_SESSION: usize = 512;
/// Login form tokens kept in all.
const LOGIN_TOKENS: usize = 1024;
/// Names and addresses whose failures are tracked, at most.
const TRACKED: usize = 10_000;

/// A random token: 32 bytes from the OS, as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The OS random source failing is not something to go on without.
    if let Err(e) = getrandom::fill(&mut bytes) {
        panic!("the OS random source failed: {e}");
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Session {
    manager: String,
    started: Instant,
    seen: Instant,
    /// Form tokens issued on this session's pages and not yet used.
    tokens: VecDeque<(String, Instant)>,
}

/// Why a posted form is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormRefusal {
    /// No form token came with it.
    Missing,
    /// Its token was used already, expired, or never issued to this session.
    Used,
}

/// Whether a login attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Allowed,
    /// Too many failures lately; try again after this long.
    Limited(Duration),
}

#[derive(Default)]
pub struct Guard {
    sessions: HashMap<String, Session>,
    login_tokens: VecDeque<(String, Instant)>,
    failures: HashMap<String, VecDeque<Instant>>,
}

impl Guard {
    /// Starts a session for `manager`; returns its token (the cookie).
    pub fn log_in(&mut self, manager: &str, now: Instant) -> String {
        let token = random_token();
        self.sessions.insert(
            token.clone(),
            Session {
                manager: manager.to_string(),
                started: now,
                seen: now,
                tokens: VecDeque::new(),
            },
        );
        token
    }

    pub fn log_out(&mut self, session: &str) {
        self.sessions.remove(session);
    }

    /// The manager of a live session, which this request keeps alive;
    /// `None` (and the session gone) once it is idle or too old.
    pub fn manager(&mut self, session: &str, idle: Duration, now: Instant) -> Option<String> {
        let s = self.sessions.get_mut(session)?;
        let alive =
            now.duration_since(s.seen) < idle && now.duration_since(s.started) < SESSION_MAX;
        if !alive {
            self.sessions.remove(session);
            return None;
        }
        s.seen = now;
        Some(s.manager.clone())
    }

    /// Ends every session idle longer than `idle` (called now and then so
    /// abandoned sessions do not pile up).
    pub fn sweep(&mut self, idle: Duration, now: Instant) {
        self.sessions.retain(|_, s| {
            now.duration_since(s.seen) < idle && now.duration_since(s.started) < SESSION_MAX
        });
        self.failures.retain(|_, f| {
            f.retain(|t| now.duration_since(*t) < FAILURE_WINDOW);
            !f.is_empty()
        });
    }

    /// A one-time token for a form on a page of `session`.
    pub fn form_token(&mut self, session: &str, now: Instant) -> String {
        let token = random_token();
        if let Some(s) = self.sessions.get_mut(session) {
            if s.tokens.len() >= TOKENS_PER_SESSION {
                s.tokens.pop_front();
            }
            s.tokens.push_back((token.clone(), now));
        }
        token
    }

    /// Uses up a form token of `session`.
    pub fn use_form_token(
        &mut self,
        session: &str,
        token: Option<&str>,
        now: Instant,
    ) -> Result<(), FormRefusal> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(FormRefusal::Missing)?;
        let s = self.sessions.get_mut(session).ok_or(FormRefusal::Used)?;
        take(&mut s.tokens, token, now)
    }

    /// A one-time token for the login form.
    pub fn login_token(&mut self, now: Instant) -> String {
        let token = random_token();
        if self.login_tokens.len() >= LOGIN_TOKENS {
            self.login_tokens.pop_front();
        }
        self.login_tokens.push_back((token.clone(), now));
        token
    }

    pub fn use_login_token(
        &mut self,
        token: Option<&str>,
        now: Instant,
    ) -> Result<(), FormRefusal> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(FormRefusal::Missing)?;
        take(&mut self.login_tokens, token, now)
    }

    /// Whether a login for `name` from `address` may be tried now.
    pub fn may_attempt(&mut self, name: &str, address: Option<&str>, now: Instant) -> Attempt {
        let name_key = format!("name:{}", name.to_ascii_lowercase());
        let mut wait = self.wait(&name_key, FAILURES_PER_NAME, now);
        if let Some(a) = address {
            wait = wait.max(self.wait(&format!("addr:{a}"), FAILURES_PER_ADDRESS, now));
        }
        match wait {
            Some(d) => Attempt::Limited(d),
            None => Attempt::Allowed,
        }
    }

    /// Counts a failed login against `name` and `address`.
    pub fn failed(&mut self, name: &str, address: Option<&str>, now: Instant) {
        if self.failures.len() >= TRACKED {
            self.sweep(Duration::ZERO, now);
        }
        let mut keys = vec![format!("name:{}", name.to_ascii_lowercase())];
        keys.extend(address.map(|a| format!("addr:{a}")));
        for key in keys {
            self.failures.entry(key).or_default().push_back(now);
        }
    }

    /// How long until `key` has fewer than `limit` failures in the window.
    fn wait(&mut self, key: &str, limit: usize, now: Instant) -> Option<Duration> {
        let f = self.failures.get_mut(key)?;
        f.retain(|t| now.duration_since(*t) < FAILURE_WINDOW);
        if f.len() < limit {
            return None;
        }
        let oldest = f.get(f.len() - limit)?;
        Some(FAILURE_WINDOW.saturating_sub(now.duration_since(*oldest)))
    }
}

/// Removes `token` from `tokens` if it is there and fresh.
fn take(
    tokens: &mut VecDeque<(String, Instant)>,
    token: &str,
    now: Instant,
) -> Result<(), FormRefusal> {
    let at = tokens
        .iter()
        .position(|(t, _)| constant_time_eq(t, token))
        .ok_or(FormRefusal::Used)?;
    let (_, issued) = tokens.remove(at).ok_or(FormRefusal::Used)?;
    match now.duration_since(issued) < FORM_TTL {
        true => Ok(()),
        false => Err(FormRefusal::Used),
    }
}

/// Compares two tokens without stopping at the first difference.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(1800);

    #[test]
    fn a_session_ends_when_idle_or_too_old() {
        let mut g = Guard::default();
        let t0 = Instant::now();
        let s = g.log_in("maria", t0);
        assert_eq!(g.manager(&s, IDLE, t0 + IDLE / 2).as_deref(), Some("maria"));
        // Kept alive by use, up to SESSION_MAX.
        assert!(g.manager(&s, IDLE, t0 + IDLE).is_some());
        assert_eq!(g.manager(&s, IDLE, t0 + IDLE * 3), None, "idle");
        assert_eq!(g.manager(&s, IDLE, t0), None, "gone for good");
        let s = g.log_in("maria", t0);
        let mut t = t0;
        while t < t0 + SESSION_MAX {
            assert!(g.manager(&s, IDLE, t).is_some());
            t += IDLE / 2;
        }
        assert_eq!(g.manager(&s, IDLE, t), None, "too old");
        assert_eq!(g.manager("not-a-session", IDLE, t0), None);
    }

    #[test]
    fn a_form_token_works_once_and_only_for_its_session() {
        let mut g = Guard::default();
        let t0 = Instant::now();
        let a = g.log_in("maria", t0);
        let b = g.log_in("joao", t0);
        let token = g.form_token(&a, t0);
        assert_eq!(
            g.use_form_token(&b, Some(&token), t0),
            Err(FormRefusal::Used)
        );
        assert_eq!(g.use_form_token(&a, None, t0), Err(FormRefusal::Missing));
        assert_eq!(
            g.use_form_token(&a, Some(""), t0),
            Err(FormRefusal::Missing)
        );
        assert_eq!(g.use_form_token(&a, Some(&token), t0), Ok(()));
        assert_eq!(
            g.use_form_token(&a, Some(&token), t0),
            Err(FormRefusal::Used),
            "replayed"
        );
        let old = g.form_token(&a, t0);
        assert_eq!(
            g.use_form_token(&a, Some(&old), t0 + FORM_TTL),
            Err(FormRefusal::Used)
        );
        let login = g.login_token(t0);
        assert_eq!(g.use_login_token(Some(&login), t0), Ok(()));
        assert_eq!(g.use_login_token(Some(&login), t0), Err(FormRefusal::Used));
    }

    #[test]
    fn failures_limit_a_name_and_an_address_for_the_window() {
        let mut g = Guard::default();
        let t0 = Instant::now();
        for _ in 0..FAILURES_PER_NAME {
            assert_eq!(
                g.may_attempt("Maria", Some("10.0.0.1"), t0),
                Attempt::Allowed
            );
            g.failed("Maria", Some("10.0.0.1"), t0);
        }
        assert_eq!(
            g.may_attempt("maria", Some("10.0.0.2"), t0),
            Attempt::Limited(FAILURE_WINDOW),
            "the name is limited, whatever the case or address"
        );
        assert_eq!(
            g.may_attempt("joao", Some("10.0.0.1"), t0),
            Attempt::Allowed
        );
        assert_eq!(
            g.may_attempt("maria", None, t0 + FAILURE_WINDOW),
            Attempt::Allowed
        );
        for i in 0..FAILURES_PER_ADDRESS {
            g.failed(&format!("guess{i}"), Some("10.0.0.9"), t0);
        }
        assert!(matches!(
            g.may_attempt("someone", Some("10.0.0.9"), t0),
            Attempt::Limited(_)
        ));
    }

    #[test]
    fn tokens_are_random_and_long() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
    }
}
