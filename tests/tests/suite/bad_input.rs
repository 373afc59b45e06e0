//! Operator mistakes: each gets a clear error and a non-zero exit, and none changes the store or
//! disturbs the daemon.

use pi_tests::process::CmdOutput;
use pi_tests::{hotp, test_key, Daemon, Pam};

/// The command failed as a refusal or usage error, saying something that contains one of `words`.
fn assert_clear_error(out: &CmdOutput, what: &str, words: &[&str]) {
    let code = out.code();
    assert!(
        code == 1 || code == 2,
        "{what}: exit {code}, expected 1 or 2\n{}",
        out.describe()
    );
    let text = out.stderr.to_lowercase();
    assert!(
        words.iter().any(|w| text.contains(&w.to_lowercase())),
        "{what}: stderr should mention one of {words:?}\n{}",
        out.describe()
    );
}

/// A daemon holding one HOTP token `DUP1` for root; returns it with the token's key.
fn daemon_with_one_token() -> (Daemon, String) {
    let daemon = Daemon::start();
    let key = test_key("bad-input", 20);
    daemon.enroll(&[
        "hotp", "--user", "root", "--otpkey", &key, "--serial", "DUP1",
    ]);
    (daemon, key)
}

/// Run `args`, check the error, check that nothing changed and that the daemon still serves a
/// login (with HOTP counter `counter`).
fn assert_refused_without_side_effects(
    daemon: &mut Daemon,
    key: &str,
    counter: u64,
    args: &[&str],
    words: &[&str],
) {
    let what = format!("pictl {args:?}");
    let before = daemon.tokens(None);
    let out = daemon.pictl(args);
    assert_clear_error(&out, &what, words);
    assert_eq!(daemon.tokens(None), before, "{what}: the store changed");
    daemon.assert_serving();
    Pam::new(daemon, "")
        .login("root", &hotp(key, counter, 6))
        .assert_accepted("the daemon still serves logins");
}

fn refused_without_side_effects(args: &[&str], words: &[&str]) {
    let (mut daemon, key) = daemon_with_one_token();
    assert_refused_without_side_effects(&mut daemon, &key, 0, args, words);
}

#[test]
fn duplicate_serial_is_refused() {
    let key = test_key("dup", 20);
    refused_without_side_effects(
        &[
            "token", "enroll", "hotp", "--user", "root", "--otpkey", &key, "--serial", "DUP1",
        ],
        &["exist", "DUP1"],
    );
}

#[test]
fn malformed_hex_key_is_refused() {
    refused_without_side_effects(
        &[
            "token",
            "enroll",
            "hotp",
            "--user",
            "root",
            "--otpkey",
            "zz12-not-hex",
        ],
        &["hex", "otpkey", "key"],
    );
}

#[test]
fn odd_length_hex_key_is_refused() {
    refused_without_side_effects(
        &[
            "token", "enroll", "hotp", "--user", "root", "--otpkey", "31323",
        ],
        &["hex", "otpkey", "key"],
    );
}

#[test]
fn seven_digits_are_refused() {
    let key = test_key("seven", 20);
    refused_without_side_effects(
        &[
            "token", "enroll", "hotp", "--user", "root", "--otpkey", &key, "--digits", "7",
        ],
        &["digit"],
    );
}

#[test]
fn unknown_hash_is_refused() {
    refused_without_side_effects(
        &["token", "enroll", "totp", "--user", "root", "--hash", "md5"],
        &["hash", "md5", "sha"],
    );
}

#[test]
fn period_other_than_30_or_60_is_refused() {
    refused_without_side_effects(
        &[
            "token", "enroll", "totp", "--user", "root", "--period", "45",
        ],
        &["period", "45"],
    );
}

#[test]
fn enrolling_for_an_unknown_user_is_refused() {
    refused_without_side_effects(
        &["token", "enroll", "hotp", "--user", pi_tests::NO_SUCH_USER],
        &[pi_tests::NO_SUCH_USER, "user"],
    );
}

#[test]
fn unknown_serial_is_refused_by_every_token_command() {
    let (mut daemon, key) = daemon_with_one_token();
    for (counter, args) in [
        vec!["token", "show", "NOPE404"],
        vec!["token", "delete", "NOPE404"],
        vec!["token", "disable", "NOPE404"],
        vec!["token", "enable", "NOPE404"],
        vec!["token", "revoke", "NOPE404"],
        vec!["token", "reset", "NOPE404"],
        vec!["token", "set", "NOPE404", "--maxfail", "3"],
        vec!["token", "resync", "NOPE404", "123456", "234567"],
    ]
    .into_iter()
    .enumerate()
    {
        let words = ["NOPE404", "not found"];
        assert_refused_without_side_effects(&mut daemon, &key, counter as u64, &args, &words);
    }
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let daemon = Daemon::start();
    let out = daemon.pictl(&["token", "frobnicate"]);
    assert_eq!(out.code(), 2, "{}", out.describe());
}
