#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! What an administrator reads: text that came from outside (a remote host name, a description)
//! shown by `pictl` without invisible characters that would reorder or hide it.

use pi_tests::{hotp, test_key, Caller, Daemon, Pam};
use std::process::Command;

/// Every character of Unicode general category Cf, Zl and Zp, as Python's `unicodedata` (an
/// implementation independent of pictl's table) knows them.
fn invisible_characters() -> String {
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sys, unicodedata\n\
             sys.stdout.write(''.join(chr(c) for c in range(0x110000)\n\
                 if unicodedata.category(chr(c)) in ('Cf', 'Zl', 'Zp')))",
        ])
        .output()
        .expect("run python3");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.chars().count() > 150, "too few: {text:?}");
    text
}

fn shows_none_of(shown: &str, hidden: &str, context: &str) {
    if let Some(c) = shown.chars().find(|c| hidden.contains(*c)) {
        panic!(
            "U+{:04X} reached the terminal in {context}:\n{shown}",
            u32::from(c)
        );
    }
}

#[test]
fn a_right_to_left_override_in_a_remote_host_is_shown_escaped_by_audit_show() {
    let daemon = Daemon::start();
    let key = test_key("bidi-rhost", 20);
    daemon.enroll_hotp("root", &key, None);
    let rhost = "203.0.113.9\u{202e}moc.elpmaxe";
    Pam::new(&daemon, "")
        .login_with(
            Caller::Root,
            "root",
            &[&hotp(&key, 0, 6)],
            &[("rhost", rhost)],
            &[],
        )
        .assert_accepted("right code");

    let out = daemon.pictl(&["audit", "show", "--limit", "5"]);
    assert!(out.success(), "{}", out.describe());
    shows_none_of(&out.stdout, "\u{202e}", "`pictl audit show`");
    assert!(
        out.stdout.contains("203.0.113.9\\u{202e}moc.elpmaxe"),
        "{}",
        out.describe()
    );
    // Programs reading --json get the text exactly as the login sent it.
    assert!(
        daemon.audit(5).iter().any(|e| e["rhost"] == rhost),
        "{:#?}",
        daemon.audit(5)
    );
}

#[test]
fn invisible_characters_in_a_description_are_shown_escaped_by_token_list_and_show() {
    let daemon = Daemon::start();
    let hidden = invisible_characters();
    let description = format!("phone{hidden}end");
    let serial = pi_tests::daemon::serial_of(&daemon.enroll(&[
        "totp",
        "--user",
        "root",
        "--description",
        &description,
    ]));
    for args in [
        vec!["token", "list"],
        vec!["token", "show", serial.as_str()],
        vec!["token", "list", "--user", "root"],
    ] {
        let out = daemon.pictl(&args);
        assert!(out.success(), "{}", out.describe());
        shows_none_of(&out.stdout, &hidden, &format!("`pictl {}`", args.join(" ")));
        assert!(
            out.stdout.contains("phone\\u{ad}\\u{600}"),
            "{}",
            out.describe()
        );
    }
}

#[test]
fn a_refusal_says_in_words_what_was_asked_with_the_advice_on_the_line_below() {
    let daemon = Daemon::start();
    let out = daemon.pictl_as(Caller::Nobody, &["audit", "show"], "");
    assert_eq!(out.code(), 1, "{}", out.describe());
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.describe());
    assert!(
        lines[0].starts_with("pictl: only administrators may read the audit trail"),
        "{}",
        out.describe()
    );
    assert!(!out.stderr.contains("auditlog"), "{}", out.describe());
    assert!(
        lines[1].starts_with("  the message above says who may: run pictl as root"),
        "{}",
        out.describe()
    );
}

#[test]
fn an_unknown_user_is_not_answered_with_advice_about_serials() {
    let daemon = Daemon::start();
    let out = daemon.pictl(&["token", "enroll", "totp", "--user", "no-such-user-pi"]);
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(
        out.stderr.contains("no-such-user-pi") && out.stderr.contains("getent passwd"),
        "{}",
        out.describe()
    );
    assert!(!out.stderr.contains("serial"), "{}", out.describe());
}

#[test]
fn a_directory_given_as_the_socket_is_called_a_directory() {
    let daemon = Daemon::start();
    let dir = daemon.dir().display().to_string();
    let out = daemon.pictl(&["--socket", &dir, "status"]);
    assert_eq!(out.code(), 3, "{}", out.describe());
    assert!(
        out.stderr
            .contains(&format!("pictl: {dir} is a directory, not pid's socket")),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr.contains("/run/pi/pid.sock") && !out.stderr.contains("refused"),
        "{}",
        out.describe()
    );
}

#[test]
fn the_sshkey_enrollment_names_the_pictl_that_runs_for_sshd_config() {
    let daemon = Daemon::start();
    let key = pi_tests::sshd::SshKey::generate(daemon.dir(), "id_ed25519", &["-t", "ed25519"]);
    let public = key.public.display().to_string();
    let out = daemon.pictl(&[
        "token",
        "enroll",
        "sshkey",
        "--user",
        "root",
        "--sshkey-file",
        &public,
    ]);
    assert!(out.success(), "{}", out.describe());
    let line = format!(
        "AuthorizedKeysCommand {} ssh keys %u",
        pi_tests::bins::pictl().display()
    );
    assert!(
        out.stdout.contains(&line),
        "expected {line:?}\n{}",
        out.describe()
    );
}

#[test]
fn pam_pi_log_lines_do_not_repeat_the_module_name() {
    let daemon = Daemon::start();
    let key = test_key("log-prefix", 20);
    daemon.enroll_hotp("root", &key, None);
    let run = Pam::new(&daemon, "debug").login_with(
        Caller::Root,
        "root",
        &[&hotp(&key, 0, 6)],
        &[],
        // Down to LOG_DEBUG (see `PamRun::syslog_messages`).
        &[("PAM_WRAPPER_DEBUGLEVEL", "2")],
    );
    run.assert_accepted("right code");
    let messages = run.syslog_messages();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("authenticate user=root"))
            && messages.iter().any(|m| m.starts_with("user root accepted")),
        "no pam_pi log lines to check:\n{}",
        run.out.stderr
    );
    for message in &messages {
        assert!(!message.starts_with("pam_pi"), "{message}");
    }
}

#[test]
fn a_restart_only_key_changed_back_before_a_reload_draws_no_restart_warning() {
    let daemon = Daemon::start();
    let started = daemon.config_text();
    let warnings = |daemon: &Daemon| {
        daemon
            .log()
            .matches("takes effect at the next restart")
            .count()
    };
    let changed = started.replace("log_level = \"debug\"", "log_level = \"info\"");
    assert_ne!(changed, started);
    assert!(daemon.reload_config(&changed), "{}", daemon.log());
    assert_eq!(warnings(&daemon), 1, "{}", daemon.log());
    assert!(
        daemon.log().contains("log_level in") && daemon.log().contains("started with"),
        "{}",
        daemon.log()
    );
    assert!(daemon.reload_config(&started), "{}", daemon.log());
    assert_eq!(
        warnings(&daemon),
        1,
        "back to the value pid started with, yet warned:\n{}",
        daemon.log()
    );
    // Changed again, it is still not in force: warned again.
    assert!(daemon.reload_config(&changed), "{}", daemon.log());
    assert_eq!(warnings(&daemon), 2, "{}", daemon.log());
}

#[test]
fn auth_test_says_that_it_spends_the_code() {
    let daemon = Daemon::start();
    let help = daemon.pictl(&["auth", "test", "--help"]);
    assert!(
        help.stdout.contains("a code it accepts is spent"),
        "{}",
        help.describe()
    );
    let key = test_key("auth-test-spends", 20);
    daemon.enroll_hotp("root", &key, None);
    let out = daemon.pictl_as(
        Caller::Root,
        &["auth", "test", "--user", "root"],
        &format!("{}\n", hotp(&key, 0, 6)),
    );
    assert!(out.success(), "{}", out.describe());
    assert!(
        out.stderr
            .contains("this is a real login for root: a code accepted now is spent"),
        "{}",
        out.describe()
    );
}
