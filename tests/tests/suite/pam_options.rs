//! pam_pi's options (README.md) and the PAM items it passes to the daemon, observed through a real
//! PAM stack.

use pi_tests::pam::pam_wrapper_module;
use pi_tests::{hotp, test_key, Caller, Daemon, Pam};

/// `pam_set_items.so` copies `PAM_AUTHTOK` from the environment into the PAM handle: it plays the
/// earlier module that already collected a password.
fn after_password_module(daemon: &Daemon, options: &str) -> Pam {
    Pam::with_auth_stack(
        daemon.socket(),
        &format!(
            "auth required {}\nauth required {{pam_pi}} {options}",
            pam_wrapper_module("pam_set_items.so").display()
        ),
    )
}

#[test]
fn use_first_pass_checks_the_earlier_password_without_prompting() {
    let daemon = Daemon::start();
    let key = test_key("first-pass", 20);
    daemon.enroll_hotp("root", &key, Some("fp1"));
    let pam = after_password_module(&daemon, "use_first_pass");
    let authtok = format!("fp1{}", hotp(&key, 0, 6));

    // No answers on stdin: a prompt would fail the login.
    pam.login_with(Caller::Root, "root", &[], &[], &[("PAM_AUTHTOK", &authtok)])
        .assert_accepted("PIN+OTP taken from PAM_AUTHTOK");
    pam.login_with(Caller::Root, "root", &[], &[], &[("PAM_AUTHTOK", &authtok)])
        .assert_rejected("the same PIN+OTP again");
}

#[test]
fn without_first_pass_options_the_module_prompts_and_ignores_the_earlier_password() {
    let daemon = Daemon::start();
    let key = test_key("no-first-pass", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = after_password_module(&daemon, "");

    // The earlier password is the Unix password, never an OTP: it must not be sent as one.
    pam.login_with(
        Caller::Root,
        "root",
        &[&hotp(&key, 0, 6)],
        &[],
        &[("PAM_AUTHTOK", "unix-password")],
    )
    .assert_accepted("the prompted code counts");
    let token = &daemon.tokens(Some("root"))[0];
    assert_eq!(
        token["failcount"], 0,
        "the Unix password was checked as an OTP: {token}"
    );
}

#[test]
fn unknown_options_are_ignored() {
    let daemon = Daemon::start();
    let key = test_key("unknown-option", 20);
    daemon.enroll_hotp("root", &key, None);
    Pam::new(&daemon, "no_such_option frobnicate=3")
        .login("root", &hotp(&key, 0, 6))
        .assert_accepted("an unknown option must not break logins");
}

#[test]
fn debug_logging_never_contains_the_pin_or_the_code() {
    let daemon = Daemon::start();
    let key = test_key("debug-log", 20);
    let pin = "dbgPIN";
    daemon.enroll_hotp("root", &key, Some(pin));
    let code = hotp(&key, 0, 6);
    let run = Pam::new(&daemon, "debug").login_with(
        Caller::Root,
        "root",
        &[&format!("{pin}{code}")],
        &[],
        // pam_wrapper prints the module's syslog messages down to LOG_DEBUG on stderr.
        &[("PAM_WRAPPER_DEBUGLEVEL", "2")],
    );
    run.assert_accepted("right PIN+code");
    let syslog: Vec<&str> = run
        .out
        .stderr
        .lines()
        .filter(|l| l.contains("SYSLOG"))
        .collect();
    assert!(
        syslog.iter().any(|l| l.contains("authenticate user=root")),
        "`debug` produced no pam_pi log lines to check:\n{}",
        run.out.stderr
    );
    for line in &syslog {
        assert!(
            !line.contains(pin) && !line.contains(&code),
            "secret in the log: {line}"
        );
    }
}

#[test]
fn service_and_rhost_reach_the_audit_trail() {
    let daemon = Daemon::start();
    let key = test_key("rhost", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");
    pam.login_with(
        Caller::Root,
        "root",
        &[&hotp(&key, 0, 6)],
        &[("rhost", "192.0.2.7")],
        &[],
    )
    .assert_accepted("right code");
    let entries = daemon.audit(10);
    assert!(
        entries.iter().any(|e| e["action"] == "auth"
            && e["service"] == pam.service()
            && e["rhost"] == "192.0.2.7"),
        "no auth entry with service and rhost: {entries:#?}"
    );
}
