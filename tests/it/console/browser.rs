//! The manager's day in a real browser: headless Chromium, over WebDriver,
//! against the console served by a real `tallyd run` (its `[http]`
//! listener) with real peers (a private cupsd with a held queue, a recorded IPP printer
//! whose one job goes to review, a socat pty as the desk's card reader).
//! Screenshots of every page, at desktop and phone widths, go to
//! `target/console-screenshots/`.

use super::{site_with, Listening, MANAGER, PASSWORD};
use crate::support::chromium::Chromium;
use crate::support::daemon::PrinterSpec;
use crate::support::pdf::write_pdf;
use crate::support::peers::Peers;
use crate::support::process::free_port;
use crate::support::pty::{printer_reader, rdm6300, Pty};
use crate::support::recorded::{fixture, with_attr, Recorded, Script};
use fantoccini::{Client, Locator};
use ipp::prelude::IppValue;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);
/// alice's card in the grants file.
const ALICE: &str = "14008EC793";
/// A card no member has in the grants file.
const NEW_CARD: &str = "00C0FFEE11";
/// carol's 12-page job in `eve-completed.ipp`.
const CAROL_TWELVE: i32 = 3;

/// The page's main text (retried while a navigation just started leaves
/// the old page's element stale).
/// The page's main text once it has `needle` (a submitted form's answer
/// may not have replaced the page yet), or as it is at the time limit.
async fn text_having(c: &Client, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let t = text(c).await;
        if t.contains(needle) || start.elapsed() > LIMIT {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text(c: &Client) -> String {
    let start = Instant::now();
    loop {
        let found = match c.find(Locator::Css("main")).await {
            Ok(main) => main.text().await,
            Err(e) => Err(e),
        };
        match found {
            Ok(t) => return t,
            Err(e) if start.elapsed() > LIMIT => panic!("no page text: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn fill(c: &Client, css: &str, value: &str) {
    let e = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    e.clear().await.expect("clear");
    e.send_keys(value).await.expect("type");
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("click");
}

/// Reloads `url` until its main text has `needle`.
async fn wait_for(c: &Client, url: &str, needle: &str) -> String {
    let start = Instant::now();
    loop {
        c.goto(url).await.expect("goto");
        let t = text(c).await;
        if t.contains(needle) {
            return t;
        }
        assert!(start.elapsed() < LIMIT, "no `{needle}` on {url}:\n{t}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[test]
fn a_manager_logs_in_finds_a_member_sees_held_jobs_refunds_resolves_a_review_enrols_a_card_cancels_a_held_job_and_ends_a_room_session(
) {
    let _serial = crate::support::serial();
    let peers = Peers::new();
    let cupsd = peers.cupsd();
    cupsd.add_queue("upstairs", "file:///dev/null", true);
    // A recorded printer: alice's and bob's jobs charged, carol's 12-page
    // job reported as nothing printed: set aside for review.
    let answer = with_attr(
        fixture("eve-completed.ipp"),
        CAROL_TWELVE,
        "job-impressions-completed",
        IppValue::Integer(0),
    );
    let zero = Recorded::start(Script::finished(&answer));
    let site_dir = tempfile::tempdir().expect("tempdir");
    let desk = Pty::start(site_dir.path(), "desk");
    let door = Pty::start(site_dir.path(), "door");
    let printers = [
        PrinterSpec::held("upstairs", &cupsd.queue_uri("upstairs"), "300ms", "4h"),
        PrinterSpec::direct("zero", &zero.uri(), "300ms"),
    ];
    let readers = format!(
        "{}\n[[readers]]\nid = \"door\"\ndevice = \"{}\"\nframing = \"rdm6300\"\nresource = \"room-a\"\ndebounce = \"1s\"\nincrement = \"15m\"\n",
        printer_reader("desk", &desk, "upstairs"),
        door.reader.display()
    );
    let port = free_port();
    let http = format!("\n[http]\nlisten = \"127.0.0.1:{port}\"\n");
    let site = site_with(&printers, &format!("{readers}{http}"));
    let mut daemon = site.start();
    daemon.wait_ready();
    daemon.wait_log("card reader is up reader=desk", LIMIT);
    daemon.wait_log("card reader is up reader=door", LIMIT);
    site.wait_usages("zero", 2, LIMIT);
    daemon.wait_log("job set aside for review", LIMIT);
    // The daemon serves the console on its [http] listener.
    let served = Listening::at(port);
    let alice_before = site.printing_balance("alice");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let b = Chromium::start(&site_dir.path().join("profile")).await;
        let c = &b.client;

        // Log in.
        c.goto(&served.url("/console/now")).await.expect("goto");
        assert!(c
            .current_url()
            .await
            .expect("url")
            .path()
            .ends_with("/console/login"));
        b.screenshots("login").await;
        fill(c, "input[name=name]", MANAGER).await;
        fill(c, "input[name=password]", PASSWORD).await;
        click(c, "form[action='/console/login'] button").await;
        let now = text_having(c, "Held jobs").await;
        // The daemon's listener knows the peer (the login limit per address).
        daemon.wait_log("console login", LIMIT);
        let log = daemon.log();
        let login = crate::support::daemon::lines_with(&log, &["console login"]);
        assert!(
            login.iter().any(|l| l.contains("address=\"127.0.0.1\"")),
            "{log}"
        );
        assert!(now.contains("Held jobs (0)"), "{now}");
        assert!(now.contains("Review queue (1)"), "{now}");
        assert!(now.contains("printer upstairs up"), "{now}");
        assert!(now.contains("reader desk up"), "{now}");

        // Find alice by her card (typed as a reader might print it).
        c.goto(&served.url("/console/members")).await.expect("goto");
        fill(c, "input[name=q]", "14008ec793").await;
        click(c, "form[role=search] button").await;
        // A click does not wait for the page it loads: wait for its text.
        let found = text_having(c, "alice").await;
        assert!(found.contains("alice") && found.contains("card"), "{found}");
        b.screenshots("members").await;
        click(c, "main table a").await;
        let member = text_having(c, "Alice (alice)").await;
        assert!(member.contains("Alice (alice)"), "{member}");
        assert!(member.contains("14008EC793"), "{member}");

        // A job sent to the held queue appears, with its owner and estimate.
        let pdf = write_pdf(peers.dir(), "one", 1);
        let alice_job = cupsd.lp(
            "upstairs",
            "alice",
            &pdf,
            &["-o", "print-color-mode=monochrome"],
        );
        cupsd.wait_state("upstairs", alice_job, 4, LIMIT);
        let now = wait_for(c, &served.url("/console/now"), "Held jobs (1)").await;
        assert!(now.contains("upstairs") && now.contains("alice"), "{now}");
        assert!(now.contains("$0.50"), "page estimate 5 at 10c: {now}");
        b.screenshots("now").await;

        // Refund alice's charged job at `zero`; her balance goes up by it.
        let held = alice_before - site.printing_balance("alice");
        c.goto(&served.url(&member_page("alice")))
            .await
            .expect("goto");
        b.screenshots("member").await;
        click(c, "a[href^='/console/refund?key=print%3Azero']").await;
        let confirm = text_having(c, "Give back").await;
        assert!(confirm.contains("Give back $0.48 to alice"), "{confirm}");
        fill(c, "input[name=reason]", "paper jam").await;
        b.screenshots("refund").await;
        click(c, "input[name=confirm]").await;
        click(c, "form[action='/console/refund'] button").await;
        let done = text_having(c, "Refunded print:zero:").await;
        assert!(done.contains("Refunded print:zero:"), "{done}");
        assert_eq!(site.printing_balance("alice"), alice_before - held + 48);
        c.goto(&served.url(&member_page("alice")))
            .await
            .expect("goto");
        let member = text(c).await;
        assert!(member.contains("paper jam (by maria, console)"), "{member}");
        let shown = format!("${:.2}", (alice_before - held + 48) as f64 / 100.0);
        assert!(member.contains(&shown), "balance {shown} shown:\n{member}");

        // Resolve carol's job in review: charge the 12 impressions.
        let carol_before = site.printing_balance("carol");
        c.goto(&served.url("/console/review")).await.expect("goto");
        b.screenshots("review").await;
        click(c, "a[href^='/console/review/resolve']").await;
        b.screenshots("resolve").await;
        fill(
            c,
            "form[action='/console/review/charge'] input[name=reason]",
            "checked the counter",
        )
        .await;
        click(
            c,
            "form[action='/console/review/charge'] input[name=confirm]",
        )
        .await;
        click(c, "form[action='/console/review/charge'] button").await;
        let done = text_having(c, "12 impressions, $1.20").await;
        assert!(done.contains("12 impressions, $1.20"), "{done}");
        assert_eq!(site.printing_balance("carol"), carol_before - 120);
        let review = site.cli(&["review", "--all"]);
        assert!(review.contains("charged"), "{review}");

        // An unknown card taps at the desk; the manager enrols it to bob;
        // bob's next tap with it releases his held job.
        desk.write(&rdm6300(NEW_CARD));
        daemon.wait_log("unknown card", LIMIT);
        wait_for(c, &served.url("/console/members"), NEW_CARD).await;
        b.screenshots("unknown-cards").await;
        click(c, &format!("a[href='/console/enrol?card={NEW_CARD}']")).await;
        fill(c, "input[name=member]", "bob").await;
        fill(c, "input[name=reason]", "new badge, old one lost").await;
        b.screenshots("enrol").await;
        click(c, "input[name=confirm]").await;
        click(c, "form[action='/console/enrol'] button").await;
        let done = text_having(c, "is bob's now").await;
        assert!(
            done.contains(&format!("Card {NEW_CARD} is bob's now")),
            "{done}"
        );
        let job = cupsd.lp(
            "upstairs",
            "bob@corp.example",
            &pdf,
            &["-o", "print-color-mode=monochrome"],
        );
        cupsd.wait_state("upstairs", job, 4, LIMIT);
        tokio::time::sleep(Duration::from_millis(1100)).await; // past the debounce
        desk.write(&rdm6300(NEW_CARD));
        daemon.wait_log("<6>release member=bob", LIMIT);
        cupsd.wait_state("upstairs", job, 9, LIMIT);
        // The grants file's cards cannot be enrolled to someone else.
        c.goto(&served.url("/console/enrol?card=14008EC793&member=bob"))
            .await
            .expect("goto");
        fill(c, "input[name=reason]", "mistake").await;
        click(c, "input[name=confirm]").await;
        click(c, "form[action='/console/enrol'] button").await;
        let refused = text_having(c, "which wins").await;
        assert!(
            refused.contains("is alice's in the grants file, which wins"),
            "{refused}"
        );

        // Alice's job still waits held: the manager cancels it.
        c.goto(&served.url("/console/now")).await.expect("goto");
        click(
            c,
            &format!("a[href='/console/held/cancel?printer=upstairs&job={alice_job}']"),
        )
        .await;
        fill(c, "input[name=reason]", "left the building").await;
        click(c, "input[name=confirm]").await;
        click(c, "form[action='/console/held/cancel'] button").await;
        let done = text_having(c, "Cancelled job").await;
        assert!(
            done.contains(&format!("Cancelled job {alice_job} at upstairs")),
            "{done}"
        );
        cupsd.wait_state("upstairs", alice_job, 7, LIMIT);

        // Alice taps into room A and leaves without tapping out: the
        // manager ends her session, charged one 15-minute increment.
        let minutes_before = site.time_balance("alice", "room-hours");
        door.write(&rdm6300(ALICE));
        daemon.wait_log("session started member=alice resource=room-a", LIMIT);
        wait_for(c, &served.url("/console/now"), "Open room sessions (1)").await;
        // Ten minutes pass on the daemon's clocks (boot and wall alike).
        site.set_clock_offset(600);
        click(c, "a[href^='/console/session/end?id=']").await;
        fill(c, "input[name=reason]", "forgot to tap out").await;
        click(c, "input[name=confirm]").await;
        click(c, "form[action='/console/session/end'] button").await;
        let done = text_having(c, "Ended alice's session").await;
        assert!(
            done.contains("Ended alice's session in room-a: 0h 15m charged"),
            "{done}"
        );
        assert_eq!(
            site.time_balance("alice", "room-hours"),
            minutes_before - 15
        );

        // This month's report, its chart, and its CSV (fetched by the
        // browser with its session) as `tallyd report --csv` prints it.
        let month = chrono::Utc::now().format("%Y-%m").to_string();
        for by in ["member", "printer"] {
            c.goto(&served.url(&format!("/console/report?month={month}&by={by}")))
                .await
                .expect("goto");
            let report = text(c).await;
            assert!(
                report.contains(&format!("Usage in {month} by {by}")),
                "{report}"
            );
            assert!(report.contains("Printing per day, total"), "{report}");
            if by == "member" {
                b.screenshots("report").await;
            }
            let href = c
                .find(Locator::Css("a[download]"))
                .await
                .expect("the CSV link")
                .attr("href")
                .await
                .expect("href")
                .expect("an href");
            let got = c
                .execute_async(
                    "const done = arguments[arguments.length - 1];\
                     fetch(arguments[0]).then(r => r.text()).then(done);",
                    vec![serde_json::json!(href)],
                )
                .await
                .expect("fetch the CSV");
            let want = site.cli(&["report", "--month", &month, "--by", by, "--csv"]);
            assert_eq!(got.as_str(), Some(want.as_str()), "by {by}");
        }
        b.close().await;
    });
    daemon.stop();
}

/// A member's page with a statement from three days ago to tomorrow: the
/// page's default (this month) would miss a charge made just before a
/// month began, as on a run at midnight on the first.
fn member_page(id: &str) -> String {
    let day = |days: i64| {
        (chrono::Utc::now() + chrono::Duration::days(days))
            .format("%Y-%m-%d")
            .to_string()
    };
    format!("/console/member?id={id}&from={}&to={}", day(-3), day(1))
}
