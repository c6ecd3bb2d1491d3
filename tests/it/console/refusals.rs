//! What the console refuses, over plain HTTP: a wrong password (and, past
//! the limit, any password), a request without a session, a form without
//! its one-time token, and a form sent twice. Each refusal changes nothing
//! in the ledger.

use super::{form_token, site_with, Served, MANAGER, PASSWORD};
use reqwest::{header, redirect, Client, StatusCode};

pub(super) fn client() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("client")
}

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Posts the login form (with a fresh token); the response.
pub(super) async fn log_in(
    c: &Client,
    s: &Served,
    name: &str,
    password: &str,
) -> reqwest::Response {
    let page = c
        .get(s.url("/console/login"))
        .send()
        .await
        .expect("login page");
    let token = form_token(&page.text().await.expect("body"), "/console/login");
    c.post(s.url("/console/login"))
        .form(&[
            ("csrf", token.as_str()),
            ("name", name),
            ("password", password),
        ])
        .send()
        .await
        .expect("post login")
}

/// The session cookie a good login sets (`name=value`), checked for its
/// attributes.
pub(super) fn session_cookie(r: &reqwest::Response) -> String {
    let set = r
        .headers()
        .get(header::SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(
        !set.contains("Secure"),
        "no TLS here, and secure_cookies unset: {set}"
    );
    set.split(';').next().expect("name=value").to_string()
}

pub(super) async fn page(c: &Client, s: &Served, cookie: &str, path: &str) -> String {
    let r = c
        .get(s.url(path))
        .header(header::COOKIE, cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.expect("body")
}

#[test]
fn console_refuses_a_wrong_password_and_then_any_for_a_while() {
    let site = site_with(&[], "");
    let s = Served::start(&site);
    runtime().block_on(async {
        let c = client();
        let r = log_in(&c, &s, MANAGER, "not the password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers().get(header::SET_COOKIE).is_none());
        assert!(r
            .text()
            .await
            .expect("body")
            .contains("wrong name or password"));
        let r = log_in(&c, &s, "nobody", PASSWORD).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "an unknown name");
        for _ in 1..5 {
            let r = log_in(&c, &s, MANAGER, "guess").await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
        // Five failures for the name: now even the right password waits.
        let r = log_in(&c, &s, MANAGER, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(r.headers().get(header::SET_COOKIE).is_none());
        assert!(r
            .text()
            .await
            .expect("body")
            .contains("too many failed logins"));
        // A login form without its token, or with one used before.
        let r = c
            .post(s.url("/console/login"))
            .form(&[("name", MANAGER), ("password", PASSWORD)])
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    });
}

#[test]
fn console_refuses_a_request_without_a_session() {
    let site = site_with(&[], "");
    let s = Served::start(&site);
    let before = site.printing_balance("alice");
    runtime().block_on(async {
        let c = client();
        for path in [
            "/console/now",
            "/console/members?q=alice",
            "/console/member?id=alice",
        ] {
            let r = c.get(s.url(path)).send().await.expect("get");
            assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
            assert_eq!(r.headers()[header::LOCATION], "/console/login", "{path}");
        }
        let forged =
            "tallyd_console=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let r = c
            .post(s.url("/console/grant"))
            .header(header::COOKIE, forged)
            .form(&[
                ("csrf", "x"),
                ("member", "alice"),
                ("credit", "printing"),
                ("amount", "50.00"),
                ("reason", "free money"),
                ("confirm", "yes"),
            ])
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    });
    assert_eq!(site.printing_balance("alice"), before, "nothing granted");
}

#[test]
fn console_refuses_a_form_without_its_token_or_sent_twice() {
    let site = site_with(&[], "");
    let s = Served::start(&site);
    let before = site.printing_balance("alice");
    runtime().block_on(async {
        let c = client();
        let r = log_in(&c, &s, MANAGER, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let cookie = session_cookie(&r);
        let member = page(&c, &s, &cookie, "/console/member?id=alice").await;
        let token = form_token(&member, "/console/grant");
        let grant = |token: Option<String>| {
            let mut form = vec![
                ("member", "alice".to_string()),
                ("credit", "printing".into()),
                ("amount", "2.50".into()),
                ("reason", "goodwill".into()),
                ("confirm", "yes".into()),
            ];
            form.extend(token.map(|t| ("csrf", t)));
            c.post(s.url("/console/grant"))
                .header(header::COOKIE, &cookie)
                .form(&form)
                .send()
        };
        let r = grant(None).await.expect("post");
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "no token");
        assert!(r.text().await.expect("body").contains("without its token"));
        let r = grant(Some(token.clone())).await.expect("post");
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r
            .text()
            .await
            .expect("body")
            .contains("Granted $2.50 of printing to alice"));
        let r = grant(Some(token)).await.expect("post");
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "replayed");
        assert!(r.text().await.expect("body").contains("sent already"));
        // Unconfirmed: refused, and its token is spent.
        let member = page(&c, &s, &cookie, "/console/member?id=alice").await;
        let token = form_token(&member, "/console/grant");
        let r = c
            .post(s.url("/console/grant"))
            .header(header::COOKIE, &cookie)
            .form(&[
                ("csrf", token.as_str()),
                ("member", "alice"),
                ("credit", "printing"),
                ("amount", "1.00"),
                ("reason", "x"),
            ])
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    });
    assert_eq!(site.printing_balance("alice"), before + 250, "granted once");
    let statement = site.cli(&["statement", "alice"]);
    assert!(
        statement.contains("goodwill (by maria, console)"),
        "the history names the manager:\n{statement}"
    );
}
