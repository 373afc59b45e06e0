#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! Users enroll their own tokens (`pictl enroll`, `pictl token verify`): a token logs in only
//! after its user typed two consecutive codes, the first verification makes a recovery code that
//! is shown once (and written to a file only the user reads), and a user deletes or resets their
//! own token only right after a login with one of their codes. Codes from `oathtool`; logins
//! through libpam.

use pi_tests::oath::hotp_b32;
use pi_tests::{bins, test_key, totp, totp_b32, unix_now, Caller, Daemon, DaemonOptions, Pam};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

const SELF_SERVICE: &str = "[[policy]]\nname = \"self\"\nscope = \"user\"\n\
                            actions = { enroll = \"hotp totp\", delete = true, reset = true }\n";

fn daemon(extra: &str) -> Daemon {
    Daemon::start_with(DaemonOptions {
        extra_toml: format!("{SELF_SERVICE}{extra}"),
        ..DaemonOptions::default()
    })
}

/// `pictl --json ARGS` as nobody; the command must succeed.
fn json_as_nobody(daemon: &Daemon, args: &[&str], stdin: &str) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = daemon.pictl_as(Caller::Nobody, &all, stdin);
    assert!(out.success(), "pictl {all:?} as nobody\n{}", out.describe());
    serde_json::from_str(&out.stdout).unwrap()
}

fn active(daemon: &Daemon, serial: &str) -> bool {
    daemon.token(serial)["active"].as_bool().unwrap()
}

#[test]
fn a_token_users_enroll_themselves_logs_in_only_after_two_consecutive_codes() {
    let daemon = daemon("");
    let enrolled = json_as_nobody(&daemon, &["enroll", "hotp"], "");
    assert_eq!(enrolled["verified"], false, "{enrolled}");
    let serial = enrolled["serial"].as_str().unwrap().to_owned();
    let key = enrolled["otpkey_base32"].as_str().unwrap().to_owned();
    let code = |n| hotp_b32(&key, n, 6);
    assert!(!active(&daemon, &serial));

    let pam = Pam::new(&daemon, "");
    pam.login("nobody", &code(0))
        .assert_rejected("a token nobody confirmed logs nobody in");
    let enable = daemon.pictl(&["token", "enable", &serial]);
    assert_eq!(enable.code(), 1, "{}", enable.describe());
    assert!(
        enable.text().contains("two consecutive codes"),
        "not even root switches it on without the codes\n{}",
        enable.describe()
    );

    let apart = daemon.pictl_as(
        Caller::Nobody,
        &["token", "verify", &serial, &code(1), &code(3)],
        "",
    );
    assert_eq!(apart.code(), 1, "{}", apart.describe());
    assert!(
        apart.text().contains("not consecutive"),
        "{}",
        apart.describe()
    );
    assert!(!active(&daemon, &serial), "two codes apart verify nothing");

    // The codes asked for at the prompts, as a person types them.
    let verified = json_as_nobody(
        &daemon,
        &["token", "verify", &serial],
        &format!("{}\n{}\n", code(1), code(2)),
    );
    assert_eq!(verified["verified"], true, "{verified}");
    assert!(active(&daemon, &serial));
    let recovery = verified["recovery_code"]
        .as_str()
        .unwrap_or_else(|| panic!("the first verification makes a recovery code: {verified}"))
        .to_owned();
    assert_eq!(recovery.len(), 24, "{recovery}");

    pam.login("nobody", &code(2))
        .assert_rejected("the codes typed to verify are spent");
    pam.login("nobody", &code(3))
        .assert_accepted("the verified token logs in");
    pam.login("nobody", &recovery)
        .assert_accepted("the recovery code logs in");
    pam.login("nobody", &recovery)
        .assert_rejected("once: the recovery code is gone after its login");

    let done = daemon.pictl_as(
        Caller::Nobody,
        &["token", "verify", &serial, &code(4), &code(5)],
        "",
    );
    assert!(
        done.code() == 1 && done.text().contains("does not wait for verification"),
        "a token in use is not verified again (its codes stay unspent)\n{}",
        done.describe()
    );
    let roots = daemon.enroll_hotp("root", &test_key("self-verify-root", 20), None);
    let other = daemon.pictl_as(
        Caller::Nobody,
        &["token", "verify", &roots, "123456", "234567"],
        "",
    );
    assert!(
        other.code() == 1 && other.text().contains("no such token among yours"),
        "{}",
        other.describe()
    );
    let again = json_as_nobody(&daemon, &["enroll", "totp"], "");
    let key2 = again["otpkey_base32"].as_str().unwrap().to_owned();
    let now = pi_tests::wait_for_fresh_totp_step(30);
    let second = json_as_nobody(
        &daemon,
        &[
            "token",
            "verify",
            again["serial"].as_str().unwrap(),
            &totp_b32(&key2, "sha1", 6, 30, now),
            &totp_b32(&key2, "sha1", 6, 30, now + 30),
        ],
        "",
    );
    assert_eq!(second["verified"], true, "{second}");
    assert!(
        second["recovery_code"].is_string(),
        "a user whose recovery code was used gets a new one with the next token: {second}"
    );
    let third = json_as_nobody(&daemon, &["enroll", "hotp"], "");
    let key3 = third["otpkey_base32"].as_str().unwrap().to_owned();
    let third = json_as_nobody(
        &daemon,
        &[
            "token",
            "verify",
            third["serial"].as_str().unwrap(),
            &hotp_b32(&key3, 0, 6),
            &hotp_b32(&key3, 1, 6),
        ],
        "",
    );
    assert!(
        third["recovery_code"].is_null(),
        "a user who holds a recovery code gets no second one: {third}"
    );
    let verifications = daemon.audit_until(50, |e| e["action"] == "token verify");
    assert!(
        verifications
            .iter()
            .any(|e| e["action"] == "token verify" && e["success"] == true),
        "verifications are audited: {verifications:?}"
    );
}

/// A directory only nobody may enter, for files nobody writes.
fn nobodys_dir(daemon: &Daemon) -> std::path::PathBuf {
    let dir = daemon.dir().join("nobody-home");
    std::fs::create_dir(&dir).unwrap();
    nix::unistd::chown(
        &dir,
        Some(nix::unistd::Uid::from_raw(65534)),
        Some(nix::unistd::Gid::from_raw(65534)),
    )
    .unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

#[test]
fn pictl_enroll_shows_the_key_asks_for_two_codes_and_writes_the_recovery_code_for_the_user_only() {
    let daemon = daemon("");
    let file = nobodys_dir(&daemon).join("recovery.txt");
    let mut cmd = Caller::Nobody.command(&bins::pictl());
    cmd.args(["enroll", "totp", "--no-qr", "--recovery-file"])
        .arg(&file)
        .env(protocol::paths::SOCKET_ENV, daemon.socket())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    // Read what pictl shows until the key; the rest once it is done.
    let (lines, shown) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let key = loop {
        let line = shown
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("pictl enroll showed no key: {seen:?}"));
        seen.push(line.clone());
        if let Some(key) = line.strip_prefix("key (base32)") {
            break key.trim().to_owned();
        }
    };
    let now = pi_tests::wait_for_fresh_totp_step(30);
    writeln!(
        stdin,
        "{}\n{}",
        totp_b32(&key, "sha1", 6, 30, now),
        totp_b32(&key, "sha1", 6, 30, now + 30)
    )
    .unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    let mut errors = String::new();
    stderr.read_to_string(&mut errors).unwrap();
    // Everything pictl printed: the reader ends, and the channel closes, at the end of stdout.
    let rest: Vec<String> = shown.iter().collect();
    let text = format!("{}\n{}", seen.join("\n"), rest.join("\n"));
    assert!(status.success(), "{status}\n{text}\n{errors}");
    assert!(
        errors.contains("Code the token shows now") && errors.contains("Next code"),
        "pictl asks for the two codes: {errors}"
    );
    assert!(text.contains("verified and active"), "{text}");
    let code_line = rest
        .iter()
        .position(|l| l.contains("recovery code, shown only this once"))
        .unwrap_or_else(|| panic!("the recovery code is shown: {text}"));
    let shown_code = rest[code_line + 2].trim().to_owned();
    assert_eq!(shown_code.len(), 24, "{text}");

    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600, "only its owner reads it");
    assert_eq!(meta.uid(), 65534, "it belongs to the user");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim(),
        shown_code,
        "the file holds the code shown"
    );
    Pam::new(&daemon, "")
        .login("nobody", &shown_code)
        .assert_accepted("the recovery code from the file logs in");
}

#[test]
fn pictl_enroll_gives_up_after_three_wrong_pairs_and_the_token_stays_inactive() {
    let daemon = daemon("");
    let out = daemon.pictl_as(
        Caller::Nobody,
        &["enroll", "hotp", "--no-qr"],
        "000000\n000001\n000002\n000003\n000004\n000005\n",
    );
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert_eq!(
        out.stderr.matches("try again").count(),
        2,
        "two retries, then the refusal\n{}",
        out.describe()
    );
    let tokens = daemon.tokens(Some("nobody"));
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0]["active"], false);
    assert_eq!(
        tokens[0]["failcount"], 3,
        "each wrong pair counts towards the lockout"
    );
}

#[test]
fn users_delete_or_reset_their_own_token_only_right_after_typing_one_of_their_codes() {
    let daemon = daemon("");
    let key_a = test_key("self-proof-a", 20);
    let key_b = test_key("self-proof-b", 20);
    // An administrator's enrollment needs no verification without a verify_enrollment policy.
    let a = daemon.enroll_hotp("nobody", &key_a, None);
    let b = daemon.enroll_hotp("nobody", &key_b, None);
    let token_count = || daemon.tokens(Some("nobody")).len();

    let silent = daemon.pictl_as(Caller::Nobody, &["token", "delete", &b], "");
    assert_eq!(silent.code(), 2, "{}", silent.describe());
    assert!(
        silent.stderr.contains("one of your tokens"),
        "pictl asks for a code: {}",
        silent.describe()
    );
    assert_eq!(token_count(), 2, "no code, nothing deleted");

    let wrong = daemon.pictl_as(Caller::Nobody, &["token", "delete", &b], "000000\n");
    assert_eq!(wrong.code(), 1, "{}", wrong.describe());
    assert!(
        wrong.text().contains("nothing changed"),
        "{}",
        wrong.describe()
    );
    assert_eq!(token_count(), 2, "a wrong code deletes nothing");

    daemon.pictl(&["token", "set", &a, "--maxfail", "1"]);
    Pam::new(&daemon, "")
        .login("nobody", "999999")
        .assert_rejected("a wrong code locks token A");
    assert_eq!(daemon.token(&a)["locked"], true);
    let reset = daemon.pictl_as(
        Caller::Nobody,
        &["token", "reset", &a],
        &format!("{}\n", pi_tests::hotp(&key_b, 0, 6)),
    );
    assert!(reset.success(), "{}", reset.describe());
    assert_eq!(daemon.token(&a)["locked"], false, "B's code proved it");
    assert_eq!(daemon.token(&a)["failcount"], 0);

    let delete = daemon.pictl_as(
        Caller::Nobody,
        &["token", "delete", &b],
        &format!("{}\n", pi_tests::hotp(&key_a, 0, 6)),
    );
    assert!(delete.success(), "{}", delete.describe());
    assert_eq!(token_count(), 1, "A's code proved it");
    // The recovery code proves it too, and is spent by it.
    let recovery = daemon.enroll(&["registration", "--user", "nobody"])["codes"][0]
        .as_str()
        .unwrap()
        .to_owned();
    daemon.pictl(&["token", "set", &a, "--maxfail", "10"]);
    let by_recovery = daemon.pictl_as(
        Caller::Nobody,
        &["token", "reset", &a],
        &format!("{recovery}\n"),
    );
    assert!(by_recovery.success(), "{}", by_recovery.describe());
    assert!(
        !daemon
            .tokens(Some("nobody"))
            .iter()
            .any(|t| t["type"] == "registration"),
        "the recovery code is gone after proving it"
    );
    let entries = daemon.audit_until(20, |e| e["action"] == "token delete");
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "token delete" && e["success"] == true),
        "{entries:?}"
    );
}

#[test]
fn keep_one_token_stops_a_user_deleting_their_last_token_before_any_code_is_asked() {
    let daemon = daemon(
        "[[policy]]\nname = \"keep\"\nscope = \"user\"\nactions = { keep_one_token = true }\n",
    );
    let key_a = test_key("keep-one-a", 20);
    let key_b = test_key("keep-one-b", 20);
    let a = daemon.enroll_hotp("nobody", &key_a, None);
    let b = daemon.enroll_hotp("nobody", &key_b, None);
    daemon.enroll(&["registration", "--user", "nobody"]);

    let delete_b = daemon.pictl_as(
        Caller::Nobody,
        &["token", "delete", &b],
        &format!("{}\n", pi_tests::hotp(&key_a, 0, 6)),
    );
    assert!(delete_b.success(), "A is left: {}", delete_b.describe());

    let delete_a = daemon.pictl_as(Caller::Nobody, &["token", "delete", &a], "");
    assert_eq!(delete_a.code(), 1, "{}", delete_a.describe());
    assert!(
        delete_a.text().contains("keep_one_token") && !delete_a.text().contains("log in"),
        "refused for the policy, before a code is asked (a recovery code does not count)\n{}",
        delete_a.describe()
    );
    assert!(daemon
        .tokens(Some("nobody"))
        .iter()
        .any(|t| t["serial"] == a));
    let root = daemon.pictl(&["token", "delete", &a]);
    assert!(
        root.success(),
        "the policy binds users, not administrators: {}",
        root.describe()
    );
}

#[test]
fn under_verify_enrollment_an_administrators_token_waits_for_its_users_two_codes() {
    let daemon = Daemon::start_with(DaemonOptions {
        // No `user` policy: nobody may enroll nothing, yet verifies the token made for them.
        extra_toml: "[[policy]]\nname = \"verify\"\nscope = \"enrollment\"\n\
                     actions = { verify_enrollment = \"totp\" }\n"
            .into(),
        ..DaemonOptions::default()
    });
    let key = test_key("verify-enrollment", 20);
    let enrolled = daemon.enroll(&["totp", "--user", "nobody", "--otpkey", &key]);
    assert_eq!(enrolled["verified"], false, "{enrolled}");
    let serial = enrolled["serial"].as_str().unwrap().to_owned();
    let hotp_token = daemon.enroll_hotp("root", &test_key("verify-enrollment-hotp", 20), None);
    assert!(
        active(&daemon, &hotp_token),
        "types the policy does not list are active at once"
    );

    let now = pi_tests::wait_for_fresh_totp_step(30);
    let pam = Pam::new(&daemon, "");
    pam.login("nobody", &totp(&key, "sha1", 6, 30, now))
        .assert_rejected("not verified yet");
    let verified = json_as_nobody(
        &daemon,
        &[
            "token",
            "verify",
            &serial,
            &totp(&key, "sha1", 6, 30, now),
            &totp(&key, "sha1", 6, 30, now + 30),
        ],
        "",
    );
    assert_eq!(verified["verified"], true, "{verified}");
    pam.login("nobody", &totp(&key, "sha1", 6, 30, now + 60))
        .assert_accepted("verified, the next step's code logs in");
    assert!(unix_now() >= now, "the clock did not go backwards");
}

#[test]
fn a_verify_enrollment_policy_naming_a_type_without_a_sequence_of_codes_is_refused() {
    let refused = Daemon::try_start_with(DaemonOptions {
        extra_toml: "[[policy]]\nname = \"verify\"\nscope = \"enrollment\"\n\
                     actions = { verify_enrollment = \"totp spass\" }\n"
            .into(),
        ..DaemonOptions::default()
    });
    let Err((_, log)) = refused else {
        panic!("pid started with a verify_enrollment it cannot apply");
    };
    assert!(
        log.contains("verify_enrollment") && log.contains("spass"),
        "{log}"
    );
}

#[test]
fn a_user_who_lost_their_phone_gets_in_with_the_recovery_code_and_replaces_the_token() {
    let daemon = daemon("");
    let enrolled = json_as_nobody(&daemon, &["enroll", "hotp"], "");
    let lost = enrolled["serial"].as_str().unwrap().to_owned();
    let key = enrolled["otpkey_base32"].as_str().unwrap().to_owned();
    let verified = json_as_nobody(
        &daemon,
        &[
            "token",
            "verify",
            &lost,
            &hotp_b32(&key, 0, 6),
            &hotp_b32(&key, 1, 6),
        ],
        "",
    );
    let recovery = verified["recovery_code"].as_str().unwrap().to_owned();

    // The phone is gone: the recovery code is the way in.
    let pam = Pam::new(&daemon, "");
    pam.login("nobody", &recovery)
        .assert_accepted("the recovery code logs in");
    let new = json_as_nobody(&daemon, &["enroll", "hotp"], "");
    let new_serial = new["serial"].as_str().unwrap().to_owned();
    let new_key = new["otpkey_base32"].as_str().unwrap().to_owned();
    let verified = json_as_nobody(
        &daemon,
        &[
            "token",
            "verify",
            &new_serial,
            &hotp_b32(&new_key, 0, 6),
            &hotp_b32(&new_key, 1, 6),
        ],
        "",
    );
    assert!(
        verified["recovery_code"].is_string(),
        "the spent recovery code is replaced: {verified}"
    );
    let delete = daemon.pictl_as(
        Caller::Nobody,
        &["token", "delete", &lost],
        &format!("{}\n", hotp_b32(&new_key, 2, 6)),
    );
    assert!(delete.success(), "{}", delete.describe());
    let left: Vec<String> = daemon
        .tokens(Some("nobody"))
        .iter()
        .map(|t| t["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        left,
        ["hotp", "registration"],
        "the new token and the new recovery code"
    );
    pam.login("nobody", &hotp_b32(&key, 2, 6))
        .assert_rejected("the lost phone's codes log in no more");
    pam.login("nobody", &hotp_b32(&new_key, 3, 6))
        .assert_accepted("the new token logs in");
}

#[test]
fn under_first_token_by_admin_a_user_without_a_token_cannot_enroll_one() {
    let daemon = daemon(
        "[[policy]]\nname = \"admins-first\"\nscope = \"user\"\n\
         actions = { first_token_by_admin = true }\n",
    );
    let refused = daemon.pictl_as(Caller::Nobody, &["enroll", "totp"], "");
    assert_eq!(refused.code(), 1, "{}", refused.describe());
    assert!(
        refused.text().contains("first_token_by_admin"),
        "{}",
        refused.describe()
    );
    assert!(daemon.tokens(Some("nobody")).is_empty(), "nothing enrolled");
    daemon.enroll_hotp("nobody", &test_key("first-by-admin", 20), None);
    let second = json_as_nobody(&daemon, &["enroll", "totp"], "");
    assert_eq!(
        second["verified"], false,
        "with the administrator's token in hand the user adds their own: {second}"
    );
}

#[test]
fn a_recovery_file_the_user_cannot_create_is_refused_before_anything_is_enrolled() {
    let daemon = daemon("");
    let existing = nobodys_dir(&daemon).join("taken.txt");
    std::fs::write(&existing, "keep me").unwrap();
    let root_only = daemon.dir().join("root-only");
    std::fs::create_dir(&root_only).unwrap();
    std::fs::set_permissions(&root_only, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (path, says) in [
        (existing.clone(), "exists"),
        (root_only.join("recovery.txt"), "cannot create files in"),
        (
            daemon.dir().join("no-such-dir/recovery.txt"),
            "create it first",
        ),
    ] {
        let out = daemon.pictl_as(
            Caller::Nobody,
            &["enroll", "totp", "--recovery-file", path.to_str().unwrap()],
            "",
        );
        assert_eq!(out.code(), 2, "{}", out.describe());
        assert!(out.stderr.contains(says), "{says}: {}", out.describe());
    }
    assert!(daemon.tokens(Some("nobody")).is_empty(), "nothing enrolled");
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me");
}

#[test]
fn a_users_own_enrollments_stop_at_limits_user_tokens_whatever_the_policies_allow() {
    let daemon = daemon("[limits]\nuser_tokens = 2\n");
    for _ in 0..2 {
        json_as_nobody(&daemon, &["enroll", "totp"], "");
    }
    let third = daemon.pictl_as(Caller::Nobody, &["enroll", "totp"], "");
    assert_eq!(third.code(), 1, "{}", third.describe());
    assert!(
        third.text().contains("limits.user_tokens = 2"),
        "{}",
        third.describe()
    );
    assert_eq!(
        daemon.tokens(Some("nobody")).len(),
        2,
        "nothing more stored"
    );
    daemon.enroll_hotp("nobody", &test_key("user-tokens-admin", 20), None);
    assert_eq!(
        daemon.tokens(Some("nobody")).len(),
        3,
        "the limit binds the user's own enrollments, not an administrator's"
    );
}
