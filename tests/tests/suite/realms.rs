//! Realms: users who are not accounts of this host (a passwd-format file) log in as `login@realm`
//! through the same PAM stack; a realm never leaks into another.

use pi_tests::pam::PAM_USER_UNKNOWN;
use pi_tests::{hotp, test_key, Daemon, DaemonOptions, Pam};

/// A daemon whose default realm is the host's accounts and whose realm `ext` is a passwd-format
/// file holding `alice` (uid 4242, not an account of this host).
fn daemon_with_file_realm() -> Daemon {
    Daemon::start_with(DaemonOptions::with_file_realm(""))
}

#[test]
fn user_of_a_file_realm_logs_in_as_login_at_realm() {
    let daemon = daemon_with_file_realm();
    let key = test_key("realm-alice", 20);
    let doc = daemon.enroll(&["hotp", "--user", "alice@ext", "--otpkey", &key]);
    assert_eq!(doc["token"]["realm"], "ext", "{doc}");
    let listed = daemon.tokens(Some("alice@ext"));
    assert_eq!(listed.len(), 1, "{listed:?}");
    let pam = Pam::new(&daemon, "");

    assert_eq!(
        pam.return_code("alice", &[&hotp(&key, 0, 6)]),
        PAM_USER_UNKNOWN,
        "alice is not in the default realm (the host's accounts)"
    );
    pam.login("alice@ext", &hotp(&key, 0, 6))
        .assert_accepted("alice in her realm");
    pam.login("alice@ext", &hotp(&key, 0, 6))
        .assert_rejected("replay");
}

#[test]
fn enrolling_into_an_unknown_realm_is_refused() {
    let daemon = daemon_with_file_realm();
    let out = daemon.pictl(&["token", "enroll", "hotp", "--user", "alice@nowhere"]);
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(
        out.stderr.to_lowercase().contains("realm"),
        "the error should say the realm is unknown\n{}",
        out.describe()
    );
    assert!(daemon.tokens(None).is_empty());
}

#[test]
fn a_user_file_with_a_bad_line_fails_its_realm_closed_and_the_other_realms_serve() {
    let mut daemon = daemon_with_file_realm();
    let (root_key, alice_key) = (
        test_key("bad-file-root", 20),
        test_key("bad-file-alice", 20),
    );
    daemon.enroll_hotp("root", &root_key, None);
    daemon.enroll(&["hotp", "--user", "alice@ext", "--otpkey", &alice_key]);
    daemon.stop();
    let people = daemon.dir().join("people");
    let good = std::fs::read_to_string(&people).unwrap();
    std::fs::write(&people, format!("{good}bad user:x:1:1::/:/bin/false\n")).unwrap();

    daemon.restart();
    let pam = Pam::new(&daemon, "");
    pam.login("root", &hotp(&root_key, 0, 6))
        .assert_accepted("root's realm is served");
    pam.login("alice@ext", &hotp(&alice_key, 0, 6))
        .assert_unavailable("the realm whose file did not load fails closed");
    let notices = daemon.pictl_json(&["status"])["notices"].to_string();
    assert!(
        notices.contains("resolver people did not load")
            && notices.contains("realm ext")
            && notices.contains("line 2"),
        "pictl status says which realm is down and why: {notices}"
    );
    assert!(daemon.log().contains("resolver people did not load"));

    // A reload with the file still broken is refused: nothing changes.
    assert!(!daemon.reload_config(&daemon.config_text()));
    std::fs::write(&people, &good).unwrap();
    assert!(
        daemon.reload_config(&daemon.config_text()),
        "{}",
        daemon.log()
    );
    pam.login("alice@ext", &hotp(&alice_key, 0, 6))
        .assert_accepted("fixed and reloaded");
    assert_eq!(
        daemon.pictl_json(&["status"])["notices"],
        serde_json::json!([])
    );
}
