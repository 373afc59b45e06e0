#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! An upstream server that misbehaves (a fake one on 127.0.0.1: malformed JSON, an HTML error
//! page, a wrong content type, 10 MiB, a redirect, silence, garbage offline values): through
//! the real daemon and PAM stack, every such answer fails the login closed with a line in the
//! daemon's log that says what was wrong, the daemon keeps serving, and nothing of the answer
//! is kept.

use pi_tests::fake_http::{FakeServer, Reply};
use pi_tests::pam::PAM_AUTHINFO_UNAVAIL;
use pi_tests::{Daemon, DaemonOptions, Pam};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the user types: PIN `test` and RFC 4226's first HOTP value.
const TYPED: &str = "test755224";

/// The published offline value of `TYPED` (passlib pbkdf2_sha512, 1000 rounds).
fn value_of_typed() -> String {
    let tsv = include_str!("../../../testdata/offline_pbkdf2.tsv");
    let line = tsv
        .lines()
        .find(|l| l.starts_with(&format!("{TYPED}\t")))
        .expect("the vector of TYPED");
    line.rsplit('\t').next().unwrap().to_owned()
}

fn accept_with_offline(values: &str) -> String {
    format!(
        r#"{{"result": {{"status": true, "value": true, "authentication": "ACCEPT"}},
            "detail": {{"serial": "HOTP1"}},
            "auth_items": {{"offline": [{{"serial": "HOTP1", "username": "alice",
                "refilltoken": "{}", "response": {values}}}]}}}}"#,
        "ab".repeat(40)
    )
}

fn daemon_at(url: &str) -> Daemon {
    Daemon::start_with(DaemonOptions {
        extra_toml: format!(
            "[upstream.fake]\nurls = [\"{url}\"]\ntimeout_secs = 2\nconnect_timeout_ms = 500\n\
             [resolvers.local]\ntype = \"passwd\"\n\
             [realms.default]\nresolvers = [\"local\"]\n\
             [realms.corp]\nupstream = \"fake\"\n"
        ),
        ..DaemonOptions::default()
    })
}

fn offline_values(daemon: &Daemon) -> Vec<serde_json::Value> {
    daemon.pictl_json(&["offline", "status"])["offline"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn answers_that_are_not_privacyideas_fail_the_login_closed_and_leave_nothing_behind() {
    let html = |status: u16| Reply::Answer {
        status,
        content_type: "text/html".into(),
        body: b"<html><h1>Bad Gateway</h1></html>".to_vec(),
    };
    let accept = r#"{"result": {"status": true, "value": true, "authentication": "ACCEPT"}}"#;
    let garbage_offline = format!(
        r#"{{"1": "{}", "2": "$pbkdf2-sha512$1$x$y"}}"#,
        value_of_typed()
    );
    let cases: Vec<(&str, Reply, &str)> = vec![
        (
            "malformed JSON",
            Reply::json(r#"{"result": {"status": tr"#),
            "the answer is refused",
        ),
        (
            "JSON of another shape",
            Reply::json(r#"{"result": []}"#),
            "the answer is refused",
        ),
        (
            "an HTML error page",
            html(502),
            "answered HTTP 502: <html><h1>Bad Gateway</h1></html>",
        ),
        (
            "a server error",
            Reply::Answer {
                status: 500,
                content_type: "application/json".into(),
                body: br#"{"result": {"status": false}}"#.to_vec(),
            },
            "answered HTTP 500",
        ),
        (
            "an accept that is not JSON",
            Reply::Answer {
                status: 200,
                content_type: "text/plain".into(),
                body: accept.as_bytes().to_vec(),
            },
            "answered \"text/plain\", not JSON",
        ),
        (
            "10 MiB",
            Reply::Answer {
                status: 200,
                content_type: "application/json".into(),
                body: vec![b' '; 10 * 1024 * 1024],
            },
            "answered more than 1048576 bytes",
        ),
        ("a redirect", html(302), "answered HTTP 302"),
        (
            "an accept with garbage offline values",
            Reply::json(&accept_with_offline(&garbage_offline)),
            "PBKDF2 rounds",
        ),
    ];
    for (what, reply, says) in cases {
        let server = FakeServer::start(move |_| reply.clone());
        let mut daemon = daemon_at(server.url());
        let pam = Pam::new(&daemon, "");
        assert_eq!(
            pam.return_code("alice@corp", &[TYPED]),
            PAM_AUTHINFO_UNAVAIL,
            "{what}: the login fails closed"
        );
        let log = daemon.log();
        assert!(log.contains(says), "{what}: the log says {says:?}\n{log}");
        assert!(offline_values(&daemon).is_empty(), "{what}: nothing kept");
        assert_eq!(
            server.requests().len(),
            1,
            "{what}: asked once, no redirect followed"
        );
        daemon.assert_serving();
    }
}

#[test]
fn a_server_that_never_answers_costs_the_login_its_timeout_and_no_more() {
    let server = FakeServer::start(|_| Reply::Hang);
    let mut daemon = daemon_at(server.url());
    let pam = Pam::new(&daemon, "");
    let started = Instant::now();
    assert_eq!(
        pam.return_code("alice@corp", &[TYPED]),
        PAM_AUTHINFO_UNAVAIL
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "timeout_secs = 2, took {took:?}"
    );
    assert!(
        daemon.log().contains("no answer within 2 s"),
        "{}",
        daemon.log()
    );
    daemon.assert_serving();
}

#[test]
fn a_refill_with_garbage_values_changes_nothing_and_is_asked_again_later() {
    let refilled = Arc::new(AtomicBool::new(false));
    let seen_refill = refilled.clone();
    let handout = accept_with_offline(&format!(r#"{{"1": "{}"}}"#, value_of_typed()));
    let server = FakeServer::start(move |req| {
        if req.path.starts_with("/validate/offlinerefill") {
            seen_refill.store(true, Ordering::SeqCst);
            let garbage = r#"{"result": {"status": true, "value": true}, "auth_items": {"offline": [{"serial": "HOTP1", "refilltoken": "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd", "response": {"2": "$pbkdf2-sha512$1000$AAAA$BBBB"}}]}}"#;
            Reply::json(garbage)
        } else {
            Reply::json(&handout)
        }
    });
    let mut daemon = daemon_at(server.url());
    let pam = Pam::new(&daemon, "");
    pam.login("alice@corp", "test000000")
        .assert_accepted("the fake server accepts anything and hands out one value");
    assert_eq!(offline_values(&daemon)[0]["remaining"], 1);
    pam.login("alice@corp", TYPED)
        .assert_accepted("the value, offline first");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !refilled.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "no refill was asked");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let held = offline_values(&daemon);
    assert_eq!(
        held[0]["remaining"], 0,
        "nothing of the garbage kept: {held:?}"
    );
    assert_eq!(held[0]["refill_due"], true, "asked again later: {held:?}");
    assert!(
        daemon.log().contains("offline refill failed"),
        "{}",
        daemon.log()
    );
    daemon.assert_serving();
}

#[test]
fn an_upstream_that_cannot_be_set_up_at_start_fails_its_realm_and_the_others_serve() {
    let server = FakeServer::start(|_| Reply::Close);
    let mut daemon = Daemon::start_with(DaemonOptions {
        extra_toml: format!(
            "[upstream.fake]\nurls = [\"{}\"]\nca_file = \"/nonexistent/pi-test-ca.pem\"\n\
             [resolvers.local]\ntype = \"passwd\"\n\
             [realms.default]\nresolvers = [\"local\"]\n\
             [realms.corp]\nupstream = \"fake\"\n",
            server.url()
        ),
        ..DaemonOptions::default()
    });
    let key = pi_tests::test_key("upstream-broken-local", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");
    pam.login("root", &pi_tests::hotp(&key, 0, 6))
        .assert_accepted("the local realm serves");
    assert_eq!(
        pam.return_code("alice@corp", &[TYPED]),
        PAM_AUTHINFO_UNAVAIL,
        "the upstream realm fails closed"
    );
    assert!(server.requests().is_empty(), "nothing was sent");
    let status = daemon.pictl_json(&["status"]);
    let notices = status["notices"].to_string();
    assert!(
        notices.contains("upstream fake could not be set up") && notices.contains("pi-test-ca.pem"),
        "{status:#}"
    );
    assert!(
        !daemon.reload_config(&daemon.config_text()),
        "a reload with the file still missing is refused"
    );
    daemon.assert_serving();
}
