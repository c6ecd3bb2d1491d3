//! The chain page (`/console/chain`) of a site with `[central]`: this
//! site's outbox from its own ledger, the chain's month by site and one
//! member's credit across the chain from a real `tallyd central` in front
//! of a real PostgreSQL; with the centre gone the page still shows the
//! site's backlog and says the centre did not answer.

use super::refusals::{client, log_in, page, runtime, session_cookie};
use super::{console_section, Served, MANAGER, PASSWORD};
use crate::central::{join_chain, outbox, wait_for};
use crate::support::daemon::{Site, GRANTS};
use crate::support::postgres::{Central, Postgres};
use crate::support::process::free_port;
use std::time::Duration;

fn charge(site: &Site, key: &str, units: &str) {
    site.cli(&[
        "charge", "alice", "--units", units, "--reason", "copier", "--key", key,
    ]);
}

/// The text of `html` with tags dropped and white space squeezed, so
/// table rows read as "Waiting to be shipped 0".
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_chain_page_shows_the_sites_outbox_the_chains_month_and_a_members_credit_and_goes_on_without_the_centre(
) {
    let _serial = crate::support::serial();
    let pg = Postgres::start();
    let port = free_port();
    let central = Central::start_with_grants(&pg, port, GRANTS);
    central.wait_log("central grants sync", Duration::from_secs(20));
    let site = Site::new(&[]);
    let url = format!("http://127.0.0.1:{port}");
    join_chain(&site, &url, "ber-1", 500, &console_section());
    let mut daemon = site.start();
    daemon.wait_ready();
    charge(&site, "k1", "600");
    wait_for("ber-1 shipped", Duration::from_secs(30), || {
        outbox(&site) == (1, 1, 1)
    });

    let served = Served::start(&site);
    runtime().block_on(async {
        let c = client();
        let cookie = session_cookie(&log_in(&c, &served, MANAGER, PASSWORD).await);
        let now = page(&c, &served, &cookie, "/console/now").await;
        assert!(
            now.contains("href=\"/console/chain\""),
            "the nav lists the chain: {now}"
        );
        let member = page(&c, &served, &cookie, "/console/member?id=alice").await;
        assert!(
            member.contains("/console/chain?member=alice"),
            "the member page links to the chain: {member}"
        );

        let chain = text(&page(&c, &served, &cookie, "/console/chain").await);
        for want in [
            "This site: ber-1",
            &format!("Ships its ledger's changes to {url}"),
            "Epoch 1",
            "Entries written 1",
            "Acknowledged by the centre 1",
            "Waiting to be shipped 0",
            "Oldest waiting since nothing waits",
            // The chain's month: ber-1's one usage of $6.00.
            "ber-1 1 $6.00 0h 00m 0 0",
            // Every site the centre lists: ber-1 told it nothing waited
            // (after its first round), ber-2 was never heard.
            "The chain's sites, as the centre knows them",
            "ber-2 - - never - -",
        ] {
            assert!(chain.contains(want), "{want:?} in: {chain}");
        }

        // Alice's credit across the chain: the centre's $10.00 less $6.00.
        let alice = text(&page(&c, &served, &cookie, "/console/chain?member=alice").await);
        for want in [
            "Alice (alice)",
            "printing $4.00",
            "room-hours 10h 00m",
            "overage owed $0.00",
        ] {
            assert!(alice.contains(want), "{want:?} in: {alice}");
        }
        let nobody = text(&page(&c, &served, &cookie, "/console/chain?member=nobody").await);
        assert!(
            nobody.contains("The centre knows no member nobody"),
            "{nobody}"
        );
    });

    // The centre gone: the page still answers with this site's backlog,
    // and says the centre did not answer, in both of its parts.
    drop(central);
    charge(&site, "k2", "100");
    wait_for("k2 in the outbox", Duration::from_secs(10), || {
        outbox(&site).2 == 2
    });
    runtime().block_on(async {
        let c = client();
        let cookie = session_cookie(&log_in(&c, &served, MANAGER, PASSWORD).await);
        let chain = text(&page(&c, &served, &cookie, "/console/chain?member=alice").await);
        for want in [
            "Entries written 2",
            "Acknowledged by the centre 1",
            "Waiting to be shipped 1",
            "ago)",
        ] {
            assert!(chain.contains(want), "{want:?} in: {chain}");
        }
        assert_eq!(
            chain.matches("The centre did not answer").count(),
            3,
            "the sites, the month and the member: {chain}"
        );
    });
    daemon.stop();
}

/// At a site whose lots the centre issues, the console's grant is refused
/// as `tallyd grant` is (the chain's ledger of record would not know the
/// credit), and nothing is granted.
#[test]
fn the_console_grants_nothing_at_a_site_whose_lots_the_centre_issues() {
    use reqwest::{header, StatusCode};
    let site = Site::new(&[]);
    let url = format!("http://127.0.0.1:{}", free_port());
    std::fs::write(
        site.path("central.token"),
        crate::support::postgres::site_token("ber-2") + "\n",
    )
    .expect("token file");
    let central = format!(
        "\n[central]\nurl = \"{url}\"\nsite_id = \"ber-2\"\ntoken_file = \"central.token\"\nissue = \"central\"\n"
    );
    site.write_config_with(&[], &format!("{central}{}", console_section()));
    site.cli(&["sync"]);
    let lots = || -> i64 {
        let conn = rusqlite::Connection::open(site.path("ledger.db")).expect("ledger");
        conn.query_row("SELECT count(*) FROM lots", [], |r| r.get(0))
            .expect("lots")
    };
    let before = lots();
    let served = Served::start(&site);
    runtime().block_on(async {
        let c = client();
        let cookie = session_cookie(&log_in(&c, &served, MANAGER, PASSWORD).await);
        let member = page(&c, &served, &cookie, "/console/member?id=alice").await;
        let token = super::form_token(&member, "/console/grant");
        let r = c
            .post(served.url("/console/grant"))
            .header(header::COOKIE, &cookie)
            .form(&[
                ("csrf", token.as_str()),
                ("member", "alice"),
                ("credit", "printing"),
                ("amount", "2.50"),
                ("reason", "goodwill"),
                ("confirm", "yes"),
            ])
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let body = r.text().await.expect("body");
        assert!(
            body.contains("grant it in the chain&#39;s grants file")
                || body.contains("grant it in the chain's grants file"),
            "{body}"
        );
    });
    assert_eq!(lots(), before, "nothing granted");
}
