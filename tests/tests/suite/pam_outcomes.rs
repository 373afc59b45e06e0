//! How each daemon outcome reaches the PAM stack (`pam_pi/src/error.rs`): fail closed, and
//! `nullok` / `ignore_unknown_user` turn exactly one outcome into `PAM_IGNORE`, never into success.

use pi_tests::pam::{PAM_AUTHINFO_UNAVAIL, PAM_AUTH_ERR, PAM_SUCCESS, PAM_USER_UNKNOWN};
use pi_tests::{hotp, test_key, Caller, Daemon, Pam, NO_SUCH_USER};
use std::time::{Duration, Instant};

/// pam_pi first; `success=done` ends the stack on success, `ignore=ignore` passes on to the next
/// line, anything else fails the stack. The second line then shows whether pam_pi said IGNORE.
fn stack_then(daemon: &Daemon, options: &str, then: &str) -> Pam {
    Pam::with_auth_stack(
        daemon.socket(),
        &format!(
            "auth [success=done ignore=ignore default=die] {{pam_pi}} {options}\n\
             auth required {then}"
        ),
    )
}

#[test]
fn user_without_token_is_rejected() {
    let daemon = Daemon::start();
    daemon.enroll_hotp("root", &test_key("someone-else", 20), None);
    let pam = Pam::new(&daemon, "");

    pam.login("nobody", "123456")
        .assert_rejected("nobody has no token");
    assert_eq!(pam.return_code("nobody", &["123456"]), PAM_AUTH_ERR);
    // Without nullok the module must fail, not pass the decision on.
    stack_then(&daemon, "", "pam_permit.so")
        .login("nobody", "123456")
        .assert_refused("no token and no nullok, even with pam_permit after it");
}

#[test]
fn nullok_turns_no_token_into_ignore_not_success() {
    let daemon = Daemon::start();
    // No answers on stdin: NoToken must come before any prompt.
    stack_then(&daemon, "nullok", "pam_permit.so")
        .login_as(Caller::Root, "nobody", &[])
        .assert_accepted("IGNORE passes the decision to pam_permit");
    stack_then(&daemon, "nullok", "pam_deny.so")
        .login_as(Caller::Root, "nobody", &[])
        .assert_rejected("IGNORE passes the decision to pam_deny: pam_pi did not say success");
}

#[test]
fn nullok_does_not_help_a_user_who_has_a_token() {
    let daemon = Daemon::start();
    let key = test_key("nullok-with-token", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = stack_then(&daemon, "nullok", "pam_permit.so");

    pam.login("root", &hotp(&key, 700, 6))
        .assert_refused("wrong code, token present");
    pam.login("root", &hotp(&key, 0, 6))
        .assert_accepted("right code");
}

#[test]
fn unknown_user_is_user_unknown_and_ignore_unknown_user_makes_it_ignore() {
    let daemon = Daemon::start();
    assert_eq!(
        Pam::new(&daemon, "").return_code(NO_SUCH_USER, &["123456"]),
        PAM_USER_UNKNOWN
    );
    stack_then(&daemon, "", "pam_permit.so")
        .login(NO_SUCH_USER, "123456")
        .assert_refused("unknown user without ignore_unknown_user");
    stack_then(&daemon, "ignore_unknown_user", "pam_permit.so")
        .login(NO_SUCH_USER, "123456")
        .assert_accepted("IGNORE passes the decision to pam_permit");
    stack_then(&daemon, "ignore_unknown_user", "pam_deny.so")
        .login(NO_SUCH_USER, "123456")
        .assert_rejected("IGNORE passes the decision to pam_deny");
}

#[test]
fn exact_return_codes_for_accept_and_reject() {
    let daemon = Daemon::start();
    let key = test_key("exact-codes", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");

    assert_eq!(
        pam.return_code("root", &[&hotp(&key, 300, 6)]),
        PAM_AUTH_ERR
    );
    assert_eq!(pam.return_code("root", &[&hotp(&key, 0, 6)]), PAM_SUCCESS);
    assert_eq!(pam.return_code("root", &[&hotp(&key, 0, 6)]), PAM_AUTH_ERR);
}

#[test]
fn stopped_daemon_means_authinfo_unavailable_not_a_crash() {
    let mut daemon = Daemon::start();
    let key = test_key("stopped", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");
    daemon.stop();

    pam.login("root", &hotp(&key, 0, 6))
        .assert_unavailable("daemon stopped");
    assert_eq!(
        pam.return_code("root", &[&hotp(&key, 0, 6)]),
        PAM_AUTHINFO_UNAVAIL
    );
    // The code was never checked, so it is still good once the daemon is back.
    daemon.restart();
    pam.login("root", &hotp(&key, 0, 6))
        .assert_accepted("daemon back");
}

#[test]
fn socket_that_never_existed_means_authinfo_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let pam = Pam::for_socket(&dir.path().join("no-daemon-here.sock"), "");
    pam.login("root", "123456").assert_unavailable("no socket");
    assert_eq!(pam.return_code("root", &["123456"]), PAM_AUTHINFO_UNAVAIL);
}

#[test]
fn hung_daemon_fails_closed_within_the_module_timeout() {
    let mut daemon = Daemon::start();
    let key = test_key("hung", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "timeout=2");

    daemon.freeze();
    let started = Instant::now();
    let run = pam.login("root", &hotp(&key, 0, 6));
    let took = started.elapsed();
    daemon.thaw();
    run.assert_unavailable("daemon does not answer");
    assert!(
        took < Duration::from_secs(10),
        "a hung daemon held the login for {took:?} despite timeout=2"
    );
    daemon.assert_serving();
    pam.login("root", &hotp(&key, 1, 6))
        .assert_accepted("daemon answering again");
}
