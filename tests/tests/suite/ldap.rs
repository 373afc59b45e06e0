#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! The `ldap` resolver against a real OpenLDAP `slapd` on 127.0.0.1, through the real daemon,
//! `pictl` and PAM stack: directory users enrol and log in as `login@corp`; a directory that is
//! down, misconfigured or untrusted fails the login closed while other realms keep working; a
//! login is never filter syntax.

use pi_tests::pam::{PAM_AUTHINFO_UNAVAIL, PAM_AUTH_ERR, PAM_SUCCESS, PAM_USER_UNKNOWN};
use pi_tests::slapd::{Slapd, SlapdOptions, CAROL, CAROL_PASSWORD, DAVE, ERIN, SERVICE_PASSWORD};
use pi_tests::{hotp, test_key, Daemon, DaemonOptions, Pam};
use std::path::Path;
use std::time::{Duration, Instant};

/// A daemon with three realms: `default` (host accounts), `ext` (a passwd-format file holding
/// `alice`) and `corp` (the directory, through the resolver table `resolver`). `extra` is
/// appended (policies).
fn daemon_with(resolver: &str, extra: &str) -> Daemon {
    Daemon::start_with(DaemonOptions {
        extra_toml: format!(
            "[resolvers.local]\ntype = \"passwd\"\n\
             [resolvers.people]\ntype = \"flatfile\"\nfile = \"{{dir}}/people\"\n\
             {resolver}\
             [realms.default]\nresolvers = [\"local\"]\n\
             [realms.ext]\nresolvers = [\"people\"]\n\
             [realms.corp]\nresolvers = [\"dir\"]\n\
             {extra}\n"
        ),
        files: vec![(
            "people".into(),
            "alice:x:4242:4242::/nonexistent:/bin/false\n".into(),
        )],
        ..DaemonOptions::default()
    })
}

/// The directory on plain `ldap://`, searched by the service account with the right password.
fn plain_setup() -> (Slapd, Daemon) {
    let slapd = Slapd::start();
    let pw = slapd.write_secret("bind.pw", &format!("{SERVICE_PASSWORD}\n"));
    let daemon = daemon_with(&slapd.resolver_toml("dir", &slapd.uri(), &pw, ""), "");
    (slapd, daemon)
}

/// `pictl token enroll hotp --user USER` that must fail; returns stdout+stderr.
fn enrol_fails(daemon: &Daemon, user: &str) -> String {
    let key = test_key("ldap-refused", 20);
    let out = daemon.pictl(&["token", "enroll", "hotp", "--user", user, "--otpkey", &key]);
    assert_ne!(
        out.code(),
        0,
        "enrolling {user} should fail\n{}",
        out.describe()
    );
    out.text()
}

fn tls_setup(
    uri_of: impl Fn(&Slapd) -> String,
    extra: impl Fn(&Slapd) -> String,
) -> (Slapd, Daemon) {
    let slapd = Slapd::start_with(SlapdOptions { tls: true });
    let pw = slapd.write_secret("bind.pw", SERVICE_PASSWORD);
    let resolver = slapd.resolver_toml("dir", &uri_of(&slapd), &pw, &extra(&slapd));
    let daemon = daemon_with(&resolver, "");
    (slapd, daemon)
}

fn ca_line(path: &Path) -> String {
    format!("ca_file = {:?}", path.display().to_string())
}

#[test]
fn directory_user_enrols_a_token_and_logs_in_with_its_otp() {
    let (_slapd, daemon) = plain_setup();
    let key = test_key("ldap-carol", 20);
    let doc = daemon.enroll(&["hotp", "--user", "carol@corp", "--otpkey", &key]);
    assert_eq!(doc["token"]["realm"], "corp", "{doc}");
    let pam = Pam::new(&daemon, "");
    pam.login("carol@corp", &hotp(&key, 0, 6))
        .assert_accepted("carol is in the directory and has a token");
    pam.login("carol@corp", &hotp(&key, 0, 6))
        .assert_rejected("replay");
    pam.login("carol@corp", &hotp(&key, 1, 6))
        .assert_accepted("the next code, over the reused search connection");
    assert_eq!(
        pam.return_code(CAROL, &[&hotp(&key, 2, 6)]),
        PAM_USER_UNKNOWN,
        "carol is no account of this host: the default realm does not know her"
    );
}

#[test]
fn user_missing_from_the_directory_is_an_unknown_user() {
    let (_slapd, mut daemon) = plain_setup();
    let pam = Pam::new(&daemon, "");
    assert_eq!(
        pam.return_code("mallory@corp", &["123456"]),
        PAM_USER_UNKNOWN
    );
    // erin's entry exists but is no posixAccount: the default filter leaves her out.
    assert_eq!(
        pam.return_code(&format!("{ERIN}@corp"), &["123456"]),
        PAM_USER_UNKNOWN
    );
    let text = enrol_fails(&daemon, "mallory@corp");
    assert!(
        !text.contains("user store unavailable"),
        "a missing user is not a directory failure\n{text}"
    );
    daemon.assert_serving();
}

#[test]
fn a_login_the_directory_matches_twice_fails_closed() {
    let (_slapd, daemon) = plain_setup();
    let text = enrol_fails(&daemon, &format!("{DAVE}@corp"));
    assert!(
        text.contains("several entries"),
        "the error must say the login is ambiguous\n{text}"
    );
    let pam = Pam::new(&daemon, "");
    let rc = pam.return_code(&format!("{DAVE}@corp"), &["123456"]);
    assert_ne!(rc, PAM_SUCCESS);
    assert_ne!(
        rc, PAM_USER_UNKNOWN,
        "ambiguity is an error, not an absence"
    );
}

#[test]
fn filter_syntax_in_a_login_finds_nobody() {
    let (_slapd, daemon) = plain_setup();
    let pam = Pam::new(&daemon, "");
    // Unescaped, `*` would match every user (several entries: an error, not "unknown"), and
    // `c*)(uid=*` would match carol.
    for login in ["*", "c*", "c*)(uid=*", "*)(|(uid=*", "carol)(uid=*"] {
        let user = format!("{login}@corp");
        assert_eq!(
            pam.return_code(&user, &["123456"]),
            PAM_USER_UNKNOWN,
            "{user:?} must be a literal login that nobody has\n{}",
            daemon.log()
        );
        let text = enrol_fails(&daemon, &user);
        assert!(!text.contains("several entries"), "{user}: {text}");
    }
}

#[test]
fn a_login_the_directory_matches_only_by_case_is_not_that_user() {
    // uid matching is case-insensitive in LDAP; tokens are keyed by the exact login, so "Carol"
    // must not become a user without tokens (passOnNoToken would let her in).
    let (_slapd, daemon) = plain_setup();
    let pam = Pam::new(&daemon, "");
    assert_eq!(pam.return_code("CAROL@corp", &["123456"]), PAM_USER_UNKNOWN);
}

#[test]
fn wrong_service_account_password_fails_closed_with_a_clear_error() {
    let (slapd, daemon) = plain_setup();
    let key = test_key("ldap-bindpw", 20);
    daemon.enroll(&["hotp", "--user", "carol@corp", "--otpkey", &key]);
    daemon.enroll(&["hotp", "--user", "alice@ext", "--otpkey", &key]);
    let pam = Pam::new(&daemon, "");
    pam.login("carol@corp", &hotp(&key, 0, 6))
        .assert_accepted("the right service password");

    slapd.write_secret("bind.pw", "not-the-service-password\n");
    assert!(
        daemon.reload_config(&daemon.config_text()),
        "a reload must not need the directory\n{}",
        daemon.log()
    );
    let rc = pam.return_code("carol@corp", &[&hotp(&key, 1, 6)]);
    assert!(
        rc == PAM_AUTHINFO_UNAVAIL || rc == PAM_AUTH_ERR,
        "a valid OTP must not log in when the directory cannot be searched (rc {rc})\n{}",
        daemon.log()
    );
    let text = enrol_fails(&daemon, "carol@corp");
    for needle in [
        "resolver dir",
        "service account",
        "invalidCredentials",
        "bind.pw",
    ] {
        assert!(
            text.contains(needle),
            "the operator's error must say {needle:?}\n{text}"
        );
    }
    assert!(
        !text.contains("not-the-service-password")
            && !daemon.log().contains("not-the-service-password"),
        "the bind password must never be shown"
    );
    pam.login("alice@ext", &hotp(&key, 0, 6))
        .assert_accepted("another realm is unaffected");
}

#[test]
fn directory_down_fails_closed_other_realms_log_in_and_it_recovers() {
    let (mut slapd, mut daemon) = plain_setup();
    let carol_key = test_key("ldap-down-carol", 20);
    let alice_key = test_key("ldap-down-alice", 20);
    daemon.enroll(&["hotp", "--user", "carol@corp", "--otpkey", &carol_key]);
    daemon.enroll(&["hotp", "--user", "alice@ext", "--otpkey", &alice_key]);
    let pam = Pam::new(&daemon, "");
    pam.login("carol@corp", &hotp(&carol_key, 0, 6))
        .assert_accepted("directory up");

    slapd.stop();
    let rc = pam.return_code("carol@corp", &[&hotp(&carol_key, 1, 6)]);
    assert!(
        rc == PAM_AUTHINFO_UNAVAIL || rc == PAM_AUTH_ERR,
        "directory down: a valid OTP must not log in, nor be 'unknown user' (rc {rc})\n{}",
        daemon.log()
    );
    assert!(
        daemon
            .log()
            .contains(&format!("resolver dir ({})", slapd.uri())),
        "the daemon's log must name the resolver and server that failed\n{}",
        daemon.log()
    );
    let text = enrol_fails(&daemon, "carol@corp");
    assert!(
        text.contains(&slapd.uri()) && text.contains("check"),
        "the error names the server and what to check\n{text}"
    );
    pam.login("alice@ext", &hotp(&alice_key, 0, 6))
        .assert_accepted("the flatfile realm does not depend on the directory");
    daemon.assert_serving();

    slapd.restart();
    pam.login("carol@corp", &hotp(&carol_key, 2, 6))
        .assert_accepted("the resolver reconnects once the directory is back");
}

#[test]
fn a_restarted_directory_is_reconnected_without_a_failed_login() {
    let (mut slapd, daemon) = plain_setup();
    let key = test_key("ldap-restart", 20);
    daemon.enroll(&["hotp", "--user", "carol@corp", "--otpkey", &key]);
    let pam = Pam::new(&daemon, "");
    pam.login("carol@corp", &hotp(&key, 0, 6))
        .assert_accepted("the search connection is now open and cached");
    slapd.restart();
    pam.login("carol@corp", &hotp(&key, 1, 6))
        .assert_accepted("the broken cached connection is replaced once");
    assert!(
        daemon
            .log()
            .contains("LDAP search connection broke; reconnecting"),
        "the login must have gone through the reconnect\n{}",
        daemon.log()
    );
}

#[test]
fn a_hung_directory_fails_closed_within_the_timeout() {
    let (slapd, daemon) = plain_setup(); // timeout_secs = 3
    let key = test_key("ldap-hung", 20);
    daemon.enroll(&["hotp", "--user", "carol@corp", "--otpkey", &key]);
    let pam = Pam::new(&daemon, "");
    pam.login("carol@corp", &hotp(&key, 0, 6))
        .assert_accepted("directory answering");
    slapd.freeze();
    let started = Instant::now();
    let rc = pam.return_code("carol@corp", &[&hotp(&key, 1, 6)]);
    let took = started.elapsed();
    slapd.thaw();
    assert!(
        rc == PAM_AUTHINFO_UNAVAIL || rc == PAM_AUTH_ERR,
        "a directory that does not answer is no user store (rc {rc})\n{}",
        daemon.log()
    );
    assert!(
        took < Duration::from_secs(10),
        "the login took {took:?}: every LDAP step is bounded by timeout_secs = 3"
    );
    assert!(
        daemon.log().contains("no answer within 3 s"),
        "the log must say the directory did not answer\n{}",
        daemon.log()
    );
    pam.login("carol@corp", &hotp(&key, 2, 6))
        .assert_accepted("answering again");
}

#[test]
fn ldaps_with_the_servers_ca_works() {
    let (_slapd, daemon) = tls_setup(Slapd::ldaps_uri, |s| ca_line(&s.ca_file()));
    let key = test_key("ldaps-carol", 20);
    daemon.enroll(&["hotp", "--user", "carol@corp", "--otpkey", &key]);
    Pam::new(&daemon, "")
        .login("carol@corp", &hotp(&key, 0, 6))
        .assert_accepted("ldaps:// with ca_file");
}

#[test]
fn starttls_with_the_servers_ca_works() {
    let (_slapd, daemon) = tls_setup(Slapd::uri, |s| {
        format!("starttls = true\n{}", ca_line(&s.ca_file()))
    });
    let key = test_key("starttls-carol", 20);
    daemon.enroll(&["hotp", "--user", "carol@corp", "--otpkey", &key]);
    Pam::new(&daemon, "")
        .login("carol@corp", &hotp(&key, 0, 6))
        .assert_accepted("STARTTLS with ca_file");
}

#[test]
fn ldaps_with_another_ca_fails_closed_with_a_certificate_error() {
    let (_slapd, daemon) = tls_setup(Slapd::ldaps_uri, |s| ca_line(&s.other_ca_file()));
    let text = enrol_fails(&daemon, "carol@corp");
    assert!(
        text.contains("certificate") && text.contains("ca_file"),
        "the error must say the certificate is not trusted and what to check\n{text}"
    );
    let rc = Pam::new(&daemon, "").return_code("carol@corp", &["123456"]);
    assert!(
        rc == PAM_AUTHINFO_UNAVAIL || rc == PAM_AUTH_ERR,
        "an untrusted server is no user store (rc {rc})"
    );
}

#[test]
fn starttls_without_a_ca_file_does_not_trust_a_private_ca() {
    // No ca_file: the system trust store, which does not hold the test CA.
    let (_slapd, daemon) = tls_setup(Slapd::uri, |_| "starttls = true".into());
    let text = enrol_fails(&daemon, "carol@corp");
    assert!(text.contains("certificate"), "{text}");
}

#[test]
fn otppin_userstore_takes_the_directory_password_as_the_pin() {
    let slapd = Slapd::start();
    let pw = slapd.write_secret("bind.pw", SERVICE_PASSWORD);
    let daemon = daemon_with(
        &slapd.resolver_toml("dir", &slapd.uri(), &pw, ""),
        "[[policy]]\nname = \"corp-password\"\nscope = \"authentication\"\n\
         realm = [\"corp\"]\nactions = { otppin = \"userstore\" }\n",
    );
    let key = test_key("ldap-userstore", 20);
    daemon.enroll(&["hotp", "--user", "carol@corp", "--otpkey", &key]);
    let pam = Pam::new(&daemon, "");
    pam.login(
        "carol@corp",
        &format!("{CAROL_PASSWORD}{}", hotp(&key, 0, 6)),
    )
    .assert_accepted("directory password + OTP");
    pam.login("carol@corp", &format!("wrong-password{}", hotp(&key, 1, 6)))
        .assert_rejected("wrong directory password, right OTP");
    pam.login("carol@corp", &hotp(&key, 1, 6))
        .assert_rejected("the OTP alone: an empty password never binds");
    pam.login(
        "carol@corp",
        &format!("{CAROL_PASSWORD}{}", hotp(&key, 2, 6)),
    )
    .assert_accepted("the right password again");
}

#[test]
fn check_config_refuses_starttls_over_ldaps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pid.toml");
    std::fs::write(
        &path,
        "version = 1\n[resolvers.dir]\ntype = \"ldap\"\nuri = \"ldaps://127.0.0.1\"\n\
         base = \"dc=pi,dc=test\"\nstarttls = true\n",
    )
    .unwrap();
    let mut cmd = std::process::Command::new(pi_tests::bins::pid());
    cmd.arg("--check-config").arg(&path);
    let out = pi_tests::process::run(cmd, b"");
    assert_ne!(out.code(), 0, "{}", out.describe());
    assert!(
        out.text().contains("resolvers.dir.starttls"),
        "{}",
        out.describe()
    );
}
