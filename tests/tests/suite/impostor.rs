//! A local user who gets to listen on the daemon's socket (a socket directory they can write,
//! a daemon that is down) must not be believed: pam_pi and pictl check, through the kernel's
//! SO_PEERCRED, that the listener runs as the daemon's uid before they send anything.

use pi_tests::impostor::Impostor;
use pi_tests::process::run;
use pi_tests::{bins, test_key, Pam};
use protocol::paths::{DAEMON_UID_ENV, SOCKET_ENV};
use std::process::Command;

#[test]
fn pam_pi_refuses_an_impostor_that_would_let_anybody_in() {
    let impostor = Impostor::start();
    Pam::for_socket(impostor.socket(), "")
        .login("root", "garbage")
        .assert_unavailable("a listener of uid 65534 is not the daemon");
    assert!(
        impostor.requests().is_empty(),
        "not even the user name reaches the impostor: {:?}",
        impostor.requests()
    );

    // The uid check is what refused: told to trust uid 65534, pam_pi believes its "accept".
    Pam::for_socket(impostor.socket(), "daemon_uid=65534")
        .login("root", "garbage")
        .assert_accepted(
            "daemon_uid=65534 trusts the impostor, so the check above was the refusal",
        );
    assert_eq!(impostor.requests(), ["AuthBegin", "AuthContinue"]);
}

#[test]
fn pictl_sends_no_secret_to_an_impostor_and_names_the_override() {
    let impostor = Impostor::start();
    let pictl = |uid: Option<&str>, args: &[&str]| {
        let mut cmd = Command::new(bins::pictl());
        cmd.args(args).env(SOCKET_ENV, impostor.socket());
        match uid {
            Some(uid) => cmd.env(DAEMON_UID_ENV, uid),
            None => cmd.env_remove(DAEMON_UID_ENV),
        };
        run(cmd, b"")
    };
    let key = test_key("impostor", 20);
    let enroll = [
        "token", "enroll", "hotp", "--user", "root", "--otpkey", &key, "--pin", "4711",
    ];
    let out = pictl(None, &enroll);
    assert_eq!(out.code(), 3, "{}", out.describe());
    let said = out.text();
    let socket = impostor.socket().display().to_string();
    for needle in [
        socket.as_str(),
        "uid 65534",
        "--daemon-uid 65534",
        "PI_DAEMON_UID=65534",
    ] {
        assert!(said.contains(needle), "{needle}\n{}", out.describe());
    }
    assert!(
        impostor.requests().is_empty(),
        "the key and PIN never left pictl: {:?}",
        impostor.requests()
    );

    let json = pictl(None, &["--json", "status"]);
    assert_eq!(json.code(), 3, "{}", json.describe());
    assert!(
        json.stdout.contains("untrusted_daemon"),
        "{}",
        json.describe()
    );

    // Told that the daemon runs as 65534, pictl talks to it: the uid was the refusal.
    let trusting = pictl(Some("65534"), &["status"]);
    assert!(trusting.success(), "{}", trusting.describe());
    assert!(
        trusting.stdout.contains("impostor"),
        "{}",
        trusting.describe()
    );
    // The status, and (the impostor claims the caller administers it) the upstream servers'.
    assert_eq!(impostor.requests(), ["Status", "Admin"]);
}
