#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! What an administrator does with `pictl`, checked against what a login then experiences.

use pi_tests::oath::hotp_b32;
use pi_tests::{hotp, test_key, totp_b32, Daemon, DaemonOptions, Pam};
use serde_json::Value;

fn ok(daemon: &Daemon, args: &[&str]) {
    let out = daemon.pictl(args);
    assert!(out.success(), "pictl {args:?}\n{}", out.describe());
}

/// `token show --json` may print the token itself or wrap it as `{"token": …}`.
fn shown_token(doc: &Value) -> &Value {
    if doc.get("serial").is_some() {
        doc
    } else {
        &doc["token"]
    }
}

#[test]
fn enroll_json_has_serial_type_url_key_and_token() {
    let daemon = Daemon::start();
    let key = test_key("enroll-json", 20);
    let doc = daemon.enroll(&["hotp", "--user", "root", "--otpkey", &key]);

    let serial = doc["serial"]
        .as_str()
        .unwrap_or_else(|| panic!("serial: {doc}"));
    assert!(!serial.is_empty());
    assert_eq!(doc["type"], "hotp", "{doc}");
    let url = doc["otpauth_url"]
        .as_str()
        .unwrap_or_else(|| panic!("otpauth_url: {doc}"));
    assert!(url.starts_with("otpauth://hotp/"), "{url}");
    let b32 = doc["otpkey_base32"]
        .as_str()
        .unwrap_or_else(|| panic!("otpkey_base32: {doc}"));
    assert!(
        url.contains(&format!("secret={b32}")),
        "URL must carry the key: {url}"
    );
    assert_eq!(
        hotp_b32(b32, 0, 6),
        hotp(&key, 0, 6),
        "the base32 key shown is not the key enrolled"
    );
    let token = &doc["token"];
    for field in [
        "serial",
        "type",
        "user",
        "realm",
        "active",
        "revoked",
        "locked",
        "failcount",
        "maxfail",
        "count",
        "description",
    ] {
        assert!(
            token.get(field).is_some(),
            "token object lacks {field:?}: {token}"
        );
    }
    assert_eq!(token["serial"], serial);
    assert_eq!(token["user"], "root");
    assert_eq!(token["active"], true);
    assert_eq!(token["revoked"], false);
    assert_eq!(token["failcount"], 0);
    assert_eq!(token["count"], 0);
    assert!(
        token.get("otpkey").is_none() && !token.to_string().contains(&key),
        "the token object must never carry the key: {token}"
    );
}

#[test]
fn totp_enroll_json_url_names_the_algorithm_digits_and_period() {
    let daemon = Daemon::start();
    let doc = daemon.enroll(&[
        "totp", "--user", "root", "--hash", "sha256", "--digits", "8", "--period", "60",
    ]);
    assert_eq!(doc["type"], "totp", "{doc}");
    let url = doc["otpauth_url"]
        .as_str()
        .unwrap_or_else(|| panic!("otpauth_url: {doc}"));
    assert!(url.starts_with("otpauth://totp/"), "{url}");
    let lower = url.to_lowercase();
    for part in ["algorithm=sha256", "digits=8", "period=60"] {
        assert!(lower.contains(part), "URL lacks {part}: {url}");
    }
}

/// What pyotp (an independent otpauth parser, which also insists that the label's issuer and the
/// `issuer` parameter agree) reads from an enrollment's URL: issuer, account name, and the code
/// for `at`.
fn pyotp_reads(url: &str, at: u64) -> Value {
    let script = "import json, sys, pyotp\n\
                  t = pyotp.parse_uri(sys.argv[1])\n\
                  print(json.dumps({'issuer': t.issuer, 'name': t.name, \
                  'code': t.at(int(sys.argv[2]))}))";
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script, url, &at.to_string()])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "pyotp cannot read {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("pyotp's answer is JSON")
}

#[test]
fn the_otpauth_url_names_the_configured_issuer_and_the_realm_of_other_realms_users() {
    let daemon = Daemon::start_with(DaemonOptions::with_file_realm(
        "[tokens]\nissuer = \"ACME Corp ssh\"",
    ));
    let at = 1_700_000_000;
    for (user, name) in [("root", "root"), ("alice@ext", "alice@ext")] {
        let doc = daemon.enroll(&["totp", "--user", user]);
        let url = doc["otpauth_url"].as_str().unwrap_or_default();
        let read = pyotp_reads(url, at);
        assert_eq!(read["issuer"], "ACME Corp ssh", "{url}");
        assert_eq!(read["name"], name, "{url}");
        let b32 = doc["otpkey_base32"].as_str().unwrap_or_default();
        assert_eq!(read["code"], totp_b32(b32, "sha1", 6, 30, at), "{url}");
    }
}

#[test]
fn without_an_issuer_setting_apps_see_the_host_name() {
    let daemon = Daemon::start();
    let doc = daemon.enroll(&["totp", "--user", "root"]);
    let url = doc["otpauth_url"].as_str().unwrap_or_default();
    let host = std::process::Command::new("hostname").output().unwrap();
    let host = String::from_utf8(host.stdout).unwrap();
    let read = pyotp_reads(url, 0);
    assert_eq!(read["issuer"], host.trim(), "{url}");
    assert_eq!(read["name"], "root", "{url}");
}

#[test]
fn enroll_without_json_prints_serial_and_otpauth_url() {
    let daemon = Daemon::start();
    let out = daemon.pictl(&[
        "token", "enroll", "totp", "--user", "root", "--serial", "HUMAN1",
    ]);
    assert!(out.success(), "{}", out.describe());
    assert!(out.stdout.contains("HUMAN1"), "{}", out.describe());
    assert!(out.stdout.contains("otpauth://totp/"), "{}", out.describe());
}

#[test]
fn list_show_disable_enable_revoke_delete() {
    let daemon = Daemon::start();
    let key = test_key("lifecycle", 20);
    let serial = daemon.enroll_hotp("root", &key, None);
    daemon.enroll_hotp("nobody", &test_key("lifecycle-other", 20), None);
    let pam = Pam::new(&daemon, "");

    assert_eq!(daemon.tokens(None).len(), 2);
    let mine = daemon.tokens(Some("root"));
    assert_eq!(mine.len(), 1, "--user filters: {mine:?}");
    assert_eq!(mine[0]["serial"], serial.as_str());

    let shown = daemon.pictl_json(&["token", "show", &serial]);
    assert_eq!(shown_token(&shown)["serial"], serial.as_str(), "{shown}");
    assert_eq!(shown_token(&shown)["user"], "root", "{shown}");

    ok(&daemon, &["token", "disable", &serial]);
    assert_eq!(daemon.token(&serial)["active"], false);
    pam.login("root", &hotp(&key, 0, 6))
        .assert_rejected("disabled token");

    ok(&daemon, &["token", "enable", &serial]);
    assert_eq!(daemon.token(&serial)["active"], true);
    pam.login("root", &hotp(&key, 1, 6))
        .assert_accepted("enabled again");

    ok(&daemon, &["token", "revoke", &serial]);
    let revoked = daemon.token(&serial);
    assert_eq!(revoked["revoked"], true, "{revoked}");
    pam.login("root", &hotp(&key, 2, 6))
        .assert_refused("revoked token");
    let enable = daemon.pictl(&["token", "enable", &serial]);
    assert_eq!(
        enable.code(),
        1,
        "revocation is final\n{}",
        enable.describe()
    );
    pam.login("root", &hotp(&key, 3, 6))
        .assert_refused("still revoked");

    ok(&daemon, &["token", "delete", &serial]);
    assert!(daemon.tokens(Some("root")).is_empty());
    let show = daemon.pictl(&["token", "show", &serial]);
    assert_eq!(
        show.code(),
        1,
        "show of a deleted token\n{}",
        show.describe()
    );
    assert_eq!(
        daemon.tokens(None).len(),
        1,
        "the other user's token is untouched"
    );
}

#[test]
fn resync_with_two_consecutive_codes_far_ahead_moves_the_counter() {
    let daemon = Daemon::start();
    let key = test_key("resync", 20);
    let serial = daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");

    pam.login("root", &hotp(&key, 52, 6))
        .assert_rejected("counter 52 is beyond the window");
    ok(
        &daemon,
        &[
            "token",
            "resync",
            &serial,
            &hotp(&key, 50, 6),
            &hotp(&key, 51, 6),
        ],
    );
    pam.login("root", &hotp(&key, 52, 6))
        .assert_accepted("counter 52 right after the resync pair");
    assert_eq!(daemon.token(&serial)["count"], 53, "next expected counter");
    pam.login("root", &hotp(&key, 51, 6))
        .assert_rejected("the resync codes are spent");
}

#[test]
fn resync_with_codes_that_are_not_consecutive_is_refused() {
    let daemon = Daemon::start();
    let key = test_key("resync-bad", 20);
    let serial = daemon.enroll_hotp("root", &key, None);
    let out = daemon.pictl(&[
        "token",
        "resync",
        &serial,
        &hotp(&key, 50, 6),
        &hotp(&key, 52, 6),
    ]);
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert_eq!(
        daemon.token(&serial)["count"],
        0,
        "a failed resync must not move the counter"
    );
}

#[test]
fn auth_test_runs_the_login_conversation_on_the_terminal() {
    let daemon = Daemon::start();
    let key = test_key("auth-test", 20);
    daemon.enroll_hotp("root", &key, None);
    let code = hotp(&key, 0, 6);

    let accept = daemon.pictl_as(
        pi_tests::Caller::Root,
        &["auth", "test", "--user", "root"],
        &format!("{code}\n"),
    );
    assert_eq!(accept.code(), 0, "{}", accept.describe());
    let reject = daemon.pictl_as(
        pi_tests::Caller::Root,
        &["auth", "test", "--user", "root"],
        &format!("{code}\n"),
    );
    assert_eq!(reject.code(), 1, "replay\n{}", reject.describe());
    Pam::new(&daemon, "")
        .login("root", &code)
        .assert_rejected("spent by `pictl auth test`: same check as PAM");
}

#[test]
fn audit_lists_logins_and_admin_actions_without_secrets() {
    let daemon = Daemon::start();
    let key = test_key("audit", 20);
    let pin = "Audit-PIN-77";
    let serial = daemon.enroll_hotp("root", &key, Some(pin));
    ok(&daemon, &["token", "disable", &serial]);
    ok(&daemon, &["token", "enable", &serial]);
    let pam = Pam::new(&daemon, "");
    let good = hotp(&key, 0, 6);
    let bad = hotp(&key, 400, 6);
    pam.login("root", &format!("{pin}{bad}"))
        .assert_rejected("wrong code");
    pam.login("root", &format!("{pin}{good}"))
        .assert_accepted("right code");

    let entries = daemon.audit(100);
    let has = |pred: &dyn Fn(&Value) -> bool| entries.iter().any(pred);
    let action = |e: &Value| e["action"].as_str().unwrap_or_default().to_owned();
    assert!(
        has(&|e| action(e) == "auth" && e["user"] == "root" && e["success"] == true),
        "no successful auth entry: {entries:#?}"
    );
    assert!(
        has(&|e| action(e) == "auth" && e["user"] == "root" && e["success"] == false),
        "no failed auth entry: {entries:#?}"
    );
    for admin in ["enroll", "disable", "enable"] {
        assert!(
            has(&|e| action(e).contains(admin) && e["serial"] == serial.as_str()),
            "no {admin:?} entry for {serial}: {entries:#?}"
        );
    }
    // Newest first.
    let seqs: Vec<u64> = entries.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "not newest first: {seqs:?}"
    );

    let mut texts = Vec::new();
    collect_strings(&Value::Array(entries), &mut texts);
    for text in &texts {
        for secret in [pin, good.as_str(), bad.as_str(), key.as_str()] {
            assert!(
                !text.contains(secret),
                "audit text {text:?} contains a secret"
            );
        }
    }
    let log = daemon.log();
    assert!(!log.contains(pin), "the daemon log contains the PIN");
    assert!(
        !log.contains(&format!("{pin}{good}")),
        "the daemon log contains PIN+OTP"
    );
    assert!(!log.contains(&key), "the daemon log contains the key");
}

#[test]
fn audit_can_be_filtered_by_user_and_limited() {
    let daemon = Daemon::start();
    let root_key = test_key("audit-root", 20);
    let nobody_key = test_key("audit-nobody", 20);
    daemon.enroll_hotp("root", &root_key, None);
    daemon.enroll_hotp("nobody", &nobody_key, None);
    let pam = Pam::new(&daemon, "");
    pam.login("root", &hotp(&root_key, 0, 6))
        .assert_accepted("root");
    pam.login("nobody", &hotp(&nobody_key, 0, 6))
        .assert_accepted("nobody");

    let doc = daemon.pictl_json(&["audit", "show", "--user", "nobody"]);
    let entries = doc["entries"].as_array().unwrap_or_else(|| panic!("{doc}"));
    assert!(!entries.is_empty(), "{doc}");
    assert!(entries.iter().all(|e| e["user"] == "nobody"), "{doc:#}");
    let doc = daemon.pictl_json(&["audit", "show", "--limit", "1"]);
    assert_eq!(doc["entries"].as_array().map(Vec::len), Some(1), "{doc:#}");
}

#[test]
fn status_answers_for_root() {
    let daemon = Daemon::start();
    let out = daemon.pictl(&["status"]);
    assert!(
        out.success() && !out.stdout.trim().is_empty(),
        "{}",
        out.describe()
    );
    let doc = daemon.pictl_json(&["status"]);
    assert!(doc.is_object(), "{doc}");
}

#[test]
fn unreachable_daemon_is_exit_code_3() {
    let mut daemon = Daemon::start();
    daemon.stop();
    let out = daemon.pictl(&["token", "list"]);
    assert_eq!(out.code(), 3, "{}", out.describe());
    assert!(
        out.stderr.contains(&daemon.socket().display().to_string()),
        "the message should name the socket it tried\n{}",
        out.describe()
    );
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}
