#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! A realm served by a real privacyIDEA 3.14 upstream, through the real daemon, `pictl` and PAM
//! stack, with OTPs from `oathtool`: online logins with PIN and OTP, challenge-response, offline
//! values kept from the server's hand-out and used while it is down (spent once, counted when
//! wrong, kept across a `kill -9`, refilled when it answers again), TLS that fails closed with
//! a certificate from another CA, and local realms served beside it.

use pi_tests::pam::{PAM_AUTHINFO_UNAVAIL, PAM_AUTH_ERR, PAM_SUCCESS, PAM_USER_UNKNOWN};
use pi_tests::privacyidea::{PrivacyIdea, Tls, REALM};
use pi_tests::{hotp, test_key, totp, wait_for_fresh_totp_step, Daemon, DaemonOptions, Pam};
use serde_json::Value;

const PIN: &str = "4711";

/// A daemon whose realm `corp` the server serves (as `pi`), beside `default` (host accounts).
/// `upstream_extra` is added to the `[upstream.pi]` table.
fn daemon_for(pi: &PrivacyIdea, ca_file: Option<&std::path::Path>, upstream_extra: &str) -> Daemon {
    let ca = ca_file
        .map(|p| format!("ca_file = {:?}\n", p.display().to_string()))
        .unwrap_or_default();
    Daemon::start_with(DaemonOptions {
        extra_toml: format!(
            "[upstream.pi]\nurls = [\"{}\"]\nrealm = \"{REALM}\"\ntimeout_secs = 4\n\
             connect_timeout_ms = 1000\n{ca}{upstream_extra}\n\
             [resolvers.local]\ntype = \"passwd\"\n\
             [realms.default]\nresolvers = [\"local\"]\n\
             [realms.corp]\nupstream = \"pi\"\n",
            pi.url()
        ),
        ..DaemonOptions::default()
    })
}

fn offline_status(daemon: &Daemon) -> Vec<Value> {
    let doc = daemon.pictl_json(&["offline", "status"]);
    doc["offline"].as_array().cloned().unwrap_or_default()
}

#[test]
fn upstream_users_log_in_online_with_pin_and_otp_while_local_users_stay_local() {
    let pi = PrivacyIdea::start(Tls::Plain);
    pi.add_user("alice");
    pi.add_user("bob");
    let key = test_key("upstream-alice", 20);
    pi.hotp_token("alice", &key, PIN);
    let totp_key = test_key("upstream-bob", 20);
    pi.totp_token("bob", &totp_key, PIN);
    let mut daemon = daemon_for(&pi, None, "");
    let pam = Pam::new(&daemon, "");

    pam.login("alice@corp", &format!("{PIN}{}", hotp(&key, 0, 6)))
        .assert_accepted("the server accepts alice's PIN and first HOTP value");
    pam.login("alice@corp", &format!("{PIN}{}", hotp(&key, 0, 6)))
        .assert_rejected("the server refuses a replay");
    pam.login("alice@corp", &format!("0000{}", hotp(&key, 1, 6)))
        .assert_rejected("a wrong PIN");
    pam.login("alice@corp", &format!("{PIN}{}", hotp(&key, 2, 6)))
        .assert_accepted("the next value, over the kept-alive connection");
    // With use_first_pass the module sends what an earlier module collected, without a prompt.
    let first_pass = Pam::with_auth_stack(
        daemon.socket(),
        &format!(
            "auth required {}\nauth required {{pam_pi}} use_first_pass",
            pi_tests::pam::pam_wrapper_module("pam_set_items.so").display()
        ),
    );
    let authtok = format!("{PIN}{}", hotp(&key, 3, 6));
    first_pass
        .login_with(
            pi_tests::Caller::Root,
            "alice@corp",
            &[],
            &[],
            &[("PAM_AUTHTOK", &authtok)],
        )
        .assert_accepted("PIN+OTP from PAM_AUTHTOK, checked by the server");
    let now = wait_for_fresh_totp_step(30);
    pam.login(
        "bob@corp",
        &format!("{PIN}{}", totp(&totp_key, "sha1", 6, 30, now)),
    )
    .assert_accepted("bob's TOTP");
    assert_eq!(
        pam.return_code("mallory@corp", &[&format!("{PIN}123456")]),
        PAM_USER_UNKNOWN,
        "a user the server does not know is an unknown user"
    );

    // A host account with a local token is still served by the daemon alone.
    let local = test_key("upstream-local-root", 20);
    daemon.enroll_hotp("root", &local, None);
    pam.login("root", &hotp(&local, 0, 6))
        .assert_accepted("root's local token");

    let audit = daemon.audit(50);
    assert!(
        audit.iter().any(|e| e["user"] == "alice"
            && e["success"] == true
            && e["message"]
                .as_str()
                .unwrap_or("")
                .contains("upstream pi: accepted")),
        "each upstream login is audited with its server: {audit:#?}"
    );
    let status = daemon.pictl_json(&["status"]);
    let upstream = &status["upstreams"][0];
    assert_eq!(upstream["name"], "pi", "{status:#}");
    assert_eq!(upstream["reachable"], true, "{status:#}");
    assert_eq!(
        upstream["tls_verified"], false,
        "plain http to 127.0.0.1: {status:#}"
    );
    assert!(
        upstream["version"].as_str().unwrap_or("").contains("3.14"),
        "{status:#}"
    );
    daemon.assert_serving();
}

#[test]
fn a_policy_with_a_realm_condition_applies_to_the_upstream_realm_only() {
    let pi = PrivacyIdea::start(Tls::Plain);
    pi.add_user("alice");
    let daemon = daemon_for(
        &pi,
        None,
        "[[policy]]\nname = \"corp-guests\"\nscope = \"authentication\"\nrealm = [\"corp\"]\n\
         actions = { passOnNoUser = true }\n",
    );
    let pam = Pam::new(&daemon, "");
    assert_eq!(
        pam.return_code("guest@corp", &["anything"]),
        PAM_SUCCESS,
        "the server does not know guest; the policy for realm corp lets the login pass"
    );
    assert_eq!(
        pam.return_code("no-such-user-pi", &["anything"]),
        PAM_USER_UNKNOWN,
        "the local realm has no such policy"
    );
    let audit = daemon.audit(10);
    assert!(
        audit
            .iter()
            .any(|e| e["user"] == "guest"
                && e["message"].as_str().unwrap_or("").contains("corp-guests")),
        "{audit:#?}"
    );
}

#[test]
fn a_challenge_from_the_server_becomes_a_second_prompt() {
    let mut pi = PrivacyIdea::start(Tls::Plain);
    pi.add_user("carol");
    let key = test_key("upstream-carol", 20);
    let serial = pi.hotp_token("carol", &key, PIN);
    pi.attach_offline(&serial, 5, 1000);
    pi.policy("cr", "authentication", "challenge_response=hotp", None);
    let daemon = daemon_for(&pi, None, "");
    let pam = Pam::new(&daemon, "");
    let run = pam.login_as(
        pi_tests::Caller::Root,
        "carol@corp",
        &[PIN, &hotp(&key, 0, 6)],
    );
    run.assert_accepted("the PIN triggers the server's challenge, the OTP answers it");
    // The first login got values 1 to 5 of the OTP alone (privacyIDEA hashes what answered the
    // challenge): the token's next code answers the next challenge from them.
    assert_eq!(
        pam.return_code("carol@corp", &[PIN, "000000", &hotp(&key, 1, 6)]),
        PAM_SUCCESS,
        "a wrong answer may be retried while the server keeps the challenge open"
    );
    pi.stop();
    pam.login("carol@corp", &hotp(&key, 2, 6))
        .assert_accepted("offline, the next OTP without the PIN");
}

#[test]
fn an_email_code_the_server_sends_answers_its_challenge_through_pam() {
    let smtp = pi_tests::sinks::Sink::smtp();
    let pi = PrivacyIdea::start(Tls::Plain);
    pi.add_user("gina");
    pi.smtp_server("sink", smtp.port);
    pi.email_token("gina", "gina@pi.test", "sink", PIN);
    let daemon = daemon_for(&pi, None, "");
    let pam = Pam::new(&daemon, "");
    let mut prompts = Vec::new();
    let run = pam.login_interactive("gina@corp", |prompt| {
        prompts.push(prompt.to_owned());
        match prompts.len() {
            1 => Some(PIN.to_owned()),
            2 => {
                let mail = smtp.wait_for(1);
                let body = mail.split_once("\n\n").map_or("", |(_, body)| body);
                let code = data_encoding::BASE64_NOPAD
                    .decode(body.trim().trim_end_matches('=').as_bytes())
                    .expect("privacyIDEA mails the code as base64");
                Some(String::from_utf8(code).unwrap())
            }
            _ => None,
        }
    });
    run.assert_accepted("the code from the mail answers the server's challenge");
    assert!(
        prompts[1].contains("mail") || prompts[1].contains("otp"),
        "the server's challenge text is the second prompt: {prompts:?}"
    );
}

#[test]
fn offline_values_log_in_while_the_server_is_down_once_each_and_are_refilled_after() {
    let mut pi = PrivacyIdea::start(Tls::Plain);
    pi.add_user("dave");
    let key = test_key("upstream-dave", 20);
    let serial = pi.hotp_token("dave", &key, PIN);
    pi.attach_offline(&serial, 15, 1000);
    let mut daemon = daemon_for(&pi, None, "offline_max_fails = 3\n");
    let pam = Pam::new(&daemon, "");
    let typed = |counter: u64| format!("{PIN}{}", hotp(&key, counter, 6));

    pam.login("dave@corp", &typed(0))
        .assert_accepted("online, and the server hands out values 1 to 15");
    let held = offline_status(&daemon);
    assert_eq!(held.len(), 1, "{held:#?}");
    assert_eq!(held[0]["serial"], serial.as_str());
    assert_eq!(held[0]["remaining"], 15, "{held:#?}");
    assert_eq!(held[0]["first_counter"], 1, "{held:#?}");
    let shown = daemon.pictl(&["offline", "status"]).text();
    assert!(!shown.contains("pbkdf2") && !shown.contains('$'), "{shown}");

    pi.stop();
    pam.login("dave@corp", &typed(1))
        .assert_accepted("offline: the next value");
    assert_eq!(
        pam.return_code("dave@corp", &[&typed(1)]),
        PAM_AUTHINFO_UNAVAIL,
        "a spent value does not log in again; the server cannot be asked"
    );
    pam.login("dave@corp", &typed(3))
        .assert_accepted("skipping a value is allowed inside the window of ten");
    assert_eq!(
        pam.return_code("dave@corp", &[&typed(2)]),
        PAM_AUTHINFO_UNAVAIL,
        "a value below one used is spent too"
    );
    assert_eq!(
        pam.return_code("dave@corp", &[&typed(14)]),
        PAM_AUTHINFO_UNAVAIL,
        "a value beyond the ten lowest is not tried"
    );

    // A kill -9 right after an offline accept: the value stays spent.
    pam.login("dave@corp", &typed(4))
        .assert_accepted("offline again");
    daemon.kill9();
    daemon.restart();
    let pam = Pam::new(&daemon, "");
    assert_eq!(
        pam.return_code("dave@corp", &[&typed(4)]),
        PAM_AUTHINFO_UNAVAIL,
        "replay after kill -9 and restart"
    );

    // The server is back: an offline value still logs in first (the server counts it spent),
    // and what was used offline is refilled in the background.
    pi.restart();
    pam.login("dave@corp", &typed(5))
        .assert_accepted("offline first, with the server up");
    let mut held = offline_status(&daemon);
    for _ in 0..100 {
        if held[0]["refill_due"] == false {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        held = offline_status(&daemon);
    }
    assert_eq!(held[0]["refill_due"], false, "{held:#?}");
    assert!(held[0]["refilled_at"].is_i64(), "{held:#?}");
    assert_eq!(
        (
            &held[0]["remaining"],
            &held[0]["first_counter"],
            &held[0]["last_counter"]
        ),
        (&Value::from(15), &Value::from(6), &Value::from(20)),
        "6 to 15 were left; the server refilled 16 to 20 for the five used: {held:#?}"
    );
    let audit = daemon.audit(50);
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "offline refill" && e["success"] == true),
        "{audit:#?}"
    );

    // Wrong PINs while the server is down are counted; at the limit even the right value waits
    // for the server.
    pi.stop();
    for _ in 0..3 {
        assert_eq!(
            pam.return_code("dave@corp", &[&format!("0000{}", hotp(&key, 6, 6))]),
            PAM_AUTHINFO_UNAVAIL
        );
    }
    let held = offline_status(&daemon);
    assert_eq!(held[0]["fails"], 3, "{held:#?}");
    let locked = pam.login("dave@corp", &typed(6));
    assert!(
        !locked.accepted(),
        "offline logins are locked after 3 wrong codes"
    );

    // An online login forgives them and hands out new values.
    pi.restart();
    pam.login("dave@corp", &typed(21))
        .assert_accepted("online, with the first value the server has not handed out");
    let held = offline_status(&daemon);
    assert_eq!(held[0]["fails"], 0, "{held:#?}");
    assert_eq!(held[0]["first_counter"], 22, "a new hand-out: {held:#?}");
    daemon.assert_serving();
}

/// Restart `daemon` `days` ahead of the rest of the test (libfaketime).
fn restart_days_ahead(daemon: &mut Daemon, days: u32) {
    for (name, value) in pi_tests::faketime::days_ahead(days) {
        daemon.set_env(&name, &value);
    }
    daemon.restart();
}

#[test]
fn offline_values_older_than_offline_max_age_days_wait_for_the_server() {
    let mut pi = PrivacyIdea::start(Tls::Plain);
    pi.add_user("gina");
    let key = test_key("upstream-gina", 20);
    let serial = pi.hotp_token("gina", &key, PIN);
    pi.attach_offline(&serial, 5, 1000);
    let mut daemon = daemon_for(&pi, None, "offline_max_age_days = 2\n");
    let typed = |counter: u64| format!("{PIN}{}", hotp(&key, counter, 6));

    Pam::new(&daemon, "")
        .login("gina@corp", &typed(0))
        .assert_accepted("online, and the server hands out values 1 to 5");
    pi.stop();
    restart_days_ahead(&mut daemon, 1);
    Pam::new(&daemon, "")
        .login("gina@corp", &typed(1))
        .assert_accepted("offline, a day after the hand-out");

    restart_days_ahead(&mut daemon, 3);
    let pam = Pam::new(&daemon, "");
    assert_eq!(
        pam.return_code("gina@corp", &[&typed(2)]),
        PAM_AUTHINFO_UNAVAIL,
        "three days after the hand-out, the values wait for the server"
    );
    let held = offline_status(&daemon);
    assert_eq!(
        (&held[0]["remaining"], &held[0]["fails"]),
        (&Value::from(4), &Value::from(0)),
        "kept for the server's return, and not counted as a wrong code: {held:#?}"
    );
    pi.restart();
    pam.login("gina@corp", &typed(6))
        .assert_accepted("online again, with the first value not handed out");
}

#[test]
fn https_with_the_right_ca_logs_in_and_a_certificate_from_another_ca_fails_closed() {
    let pi = PrivacyIdea::start(Tls::Ca);
    pi.add_user("erin");
    let key = test_key("upstream-erin", 20);
    pi.hotp_token("erin", &key, PIN);

    let daemon = daemon_for(&pi, Some(&pi.ca_file()), "");
    Pam::new(&daemon, "")
        .login("erin@corp", &format!("{PIN}{}", hotp(&key, 0, 6)))
        .assert_accepted("over https, the server's certificate signed by the configured CA");
    for counter in 1..3 {
        Pam::new(&daemon, "")
            .login("erin@corp", &format!("{PIN}{}", hotp(&key, counter, 6)))
            .assert_accepted("the next codes, over the same connection");
    }
    let checks: Vec<_> = pi
        .requests()
        .into_iter()
        .filter(|r| r.path == "/validate/check")
        .collect();
    assert_eq!(checks.len(), 3, "{checks:?}");
    assert!(
        checks
            .iter()
            .all(|r| r.client_port == checks[0].client_port),
        "three logins, one TLS connection (one handshake), kept alive: {checks:?}"
    );
    let status = daemon.pictl_json(&["status"]);
    assert_eq!(status["upstreams"][0]["tls_verified"], true, "{status:#}");

    let wrong = daemon_for(&pi, Some(&pi.other_ca_file()), "");
    let pam = Pam::new(&wrong, "");
    assert_eq!(
        pam.return_code("erin@corp", &[&format!("{PIN}{}", hotp(&key, 1, 6))]),
        PAM_AUTHINFO_UNAVAIL,
        "a certificate the configured CA did not sign: the server is not asked"
    );
    let status = wrong.pictl_json(&["status"]);
    let error = status["upstreams"][0]["last_error"].as_str().unwrap_or("");
    assert!(
        error.contains("certificate") || error.contains("Certificate"),
        "the operator sees why: {status:#}"
    );
    assert_ne!(
        pam.return_code("erin@corp", &[&format!("{PIN}{}", hotp(&key, 1, 6))]),
        PAM_AUTH_ERR,
        "never an answer the server did not give"
    );
}

/// A public key (its private half was thrown away).
const FRANK_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPWcbPbAj7gdsVBXSbCql1o6eOXSFPo+4tj8Elt3hY8L frank@laptop";

/// `password` in a root-only file, for `service_password_file`.
fn service_password_file(password: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pi-admin.pw");
    std::fs::write(&path, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (dir, path)
}

#[test]
fn ssh_keys_attached_on_the_server_reach_sshd_through_an_outage_and_go_when_disabled_there() {
    let mut pi = PrivacyIdea::start(Tls::Plain);
    pi.add_user("frank");
    let serial = pi.sshkey_token("frank", FRANK_KEY);
    pi.attach_ssh(&serial, "webservers", "root");
    let (_pw_dir, pw) = service_password_file(pi_tests::privacyidea::ADMIN_PASSWORD);
    let mut daemon = daemon_for(
        &pi,
        None,
        &format!(
            "service_user = \"{}\"\nservice_password_file = {:?}\nssh_cache_secs = 600\n",
            pi_tests::privacyidea::ADMIN,
            pw.display().to_string()
        ),
    );
    let keys = |daemon: &Daemon| {
        let out = daemon.pictl(&["ssh", "keys", "root", "--service-id", "webservers"]);
        assert_eq!(out.code(), 0, "{}", out.describe());
        out.text()
    };
    let service_logins = |pi: &PrivacyIdea| {
        pi.requests()
            .into_iter()
            .filter(|r| r.path == "/auth")
            .count()
    };
    let before = service_logins(&pi);
    assert!(
        keys(&daemon).contains(FRANK_KEY),
        "the server's key for root"
    );
    assert_eq!(
        service_logins(&pi),
        before + 1,
        "the service account logs in: {:?}",
        pi.requests()
    );
    let other = daemon.pictl(&["ssh", "keys", "nobody", "--service-id", "webservers"]);
    assert!(
        !other.text().contains("ssh-ed25519"),
        "attached for root only"
    );
    assert_eq!(
        service_logins(&pi),
        before + 1,
        "its JWT is reused for the next lookup: {:?}",
        pi.requests()
    );
    let status = daemon.pictl_json(&["status"]);
    assert_eq!(
        status["upstreams"][0]["service_account_ok"], true,
        "{status:#}"
    );

    pi.stop();
    assert!(
        keys(&daemon).contains(FRANK_KEY),
        "the last answer serves sshd while the server is down"
    );
    daemon.restart();
    assert!(
        keys(&daemon).contains(FRANK_KEY),
        "also after pid restarted during the outage"
    );
    pi.restart();
    pi.post("/token/disable", serde_json::json!({"serial": serial}));
    assert!(
        !keys(&daemon).contains(FRANK_KEY),
        "a key disabled on the server is gone at the next answer"
    );
    pi.stop();
    assert!(
        !keys(&daemon).contains(FRANK_KEY),
        "and stays gone through the next outage"
    );
    let audit = daemon.audit(20);
    assert!(
        audit.iter().any(|e| e["action"] == "ssh keys"
            && e["message"]
                .as_str()
                .unwrap_or("")
                .contains("from upstream pi (Cache)")),
        "the audit says where the keys came from: {audit:#?}"
    );
}

#[test]
fn a_service_account_the_server_refuses_shows_in_the_status_and_costs_sshd_nothing() {
    let pi = PrivacyIdea::start(Tls::Plain);
    let (_pw_dir, pw) = service_password_file("not-the-password");
    let daemon = daemon_for(
        &pi,
        None,
        &format!(
            "service_user = \"{}\"\nservice_password_file = {:?}\n",
            pi_tests::privacyidea::ADMIN,
            pw.display().to_string()
        ),
    );
    let out = daemon.pictl(&["ssh", "keys", "root"]);
    assert_eq!(
        out.code(),
        0,
        "sshd still gets the local keys: {}",
        out.describe()
    );
    assert!(!out.text().contains("ssh-"), "{}", out.describe());

    let status = daemon.pictl_json(&["status"]);
    let upstream = &status["upstreams"][0];
    assert_eq!(upstream["service_account_ok"], false, "{status:#}");
    let error = upstream["last_error"].as_str().unwrap_or("");
    assert!(
        error.contains("service_password_file") && error.contains("admin"),
        "the operator sees what to check: {status:#}"
    );
    assert!(!error.contains("not-the-password"), "{error}");
    let text = daemon.pictl(&["status"]).text();
    assert!(text.contains("SERVICE ACCOUNT REFUSED"), "{text}");
    let looked_up = |e: &Value| e["action"] == "ssh keys" && e["user"] == "root";
    let audit = daemon.audit_until(5, looked_up);
    assert!(
        audit.iter().any(looked_up),
        "the lookup is audited: {audit:#?}"
    );
}
