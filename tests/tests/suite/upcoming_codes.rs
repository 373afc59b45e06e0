#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! `pictl token otps`: a token's next codes, shown only where an admin policy allows
//! `getmultiotp` (root included), equal to what `oathtool` computes, and not used up by being
//! shown; audited without a code.

use pi_tests::{hotp, test_key, totp, Caller, Daemon, DaemonOptions, Pam};

fn daemon_with(policy: &str) -> Daemon {
    Daemon::start_with(DaemonOptions {
        // nobody's primary group makes it an administrator.
        extra_toml: format!("admin_group = \"nogroup\"\n{policy}"),
        ..DaemonOptions::default()
    })
}

const FOR_EVERY_ADMIN: &str =
    "[[policy]]\nname = \"codes\"\nscope = \"admin\"\nactions = { getmultiotp = true }\n";

#[test]
fn nobody_sees_the_next_codes_without_a_policy_not_even_root() {
    let daemon = daemon_with("");
    let serial = daemon.enroll_hotp("root", &test_key("otps-none", 20), None);
    let out = daemon.pictl(&["token", "otps", &serial]);
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(
        out.stderr.contains("getmultiotp = true"),
        "the refusal says which policy: {}",
        out.describe()
    );
    let admin = daemon.pictl_as(Caller::Nobody, &["token", "otps", &serial], "");
    assert_eq!(admin.code(), 1, "{}", admin.describe());
}

#[test]
fn the_next_hotp_codes_are_oathtools_and_still_log_in_after_being_shown() {
    let daemon = daemon_with(FOR_EVERY_ADMIN);
    let key = test_key("otps-hotp", 20);
    let serial = daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");
    pam.login("root", &hotp(&key, 0, 6))
        .assert_accepted("counter 0");

    let doc = daemon.pictl_json(&["token", "otps", &serial, "--count", "3"]);
    let otps = doc["otps"].as_array().unwrap();
    let listed: Vec<(u64, String)> = otps
        .iter()
        .map(|o| {
            (
                o["counter"].as_u64().unwrap(),
                o["otp"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(u64, String)> = (1..4).map(|c| (c, hotp(&key, c, 6))).collect();
    assert_eq!(
        listed, expected,
        "the codes after the one used, from oathtool"
    );
    pam.login("root", &hotp(&key, 1, 6))
        .assert_accepted("shown, not spent");

    let text = daemon
        .pictl(&["token", "otps", &serial, "--count", "2"])
        .text();
    assert!(
        text.contains(&hotp(&key, 2, 6)) && text.contains(&hotp(&key, 3, 6)),
        "{text}"
    );

    let audit = daemon.audit(5);
    let entry = audit
        .iter()
        .find(|e| e["action"] == "token otps")
        .unwrap_or_else(|| panic!("audited: {audit:#?}"));
    assert_eq!(entry["serial"], serial.as_str());
    let all = serde_json::to_string(&audit).unwrap();
    for c in 1..4 {
        assert!(
            !all.contains(&hotp(&key, c, 6)),
            "no code in the audit trail"
        );
    }
}

#[test]
fn the_next_totp_codes_start_at_the_current_time_step() {
    let daemon = daemon_with(FOR_EVERY_ADMIN);
    let key = test_key("otps-totp", 20);
    let serial = daemon.enroll_totp("root", &key, "sha1", 6, 30, None);
    let now = pi_tests::oath::unix_now();
    let doc = daemon.pictl_json(&["token", "otps", &serial, "--count", "2"]);
    let first = &doc["otps"][0];
    let step = first["counter"].as_u64().unwrap();
    assert!((now / 30..=now / 30 + 1).contains(&step), "{doc:#}");
    assert_eq!(first["valid_from"].as_u64(), Some(step * 30));
    assert_eq!(first["otp"], totp(&key, "sha1", 6, 30, step * 30).as_str());
    assert_eq!(
        doc["otps"][1]["otp"],
        totp(&key, "sha1", 6, 30, step * 30 + 30).as_str()
    );
}

#[test]
fn a_policy_for_an_admin_group_lets_its_members_see_codes_and_not_root() {
    let daemon = daemon_with(&format!("{FOR_EVERY_ADMIN}admin_group = [\"nogroup\"]\n"));
    let key = test_key("otps-group", 20);
    let serial = daemon.enroll_hotp("root", &key, None);
    let admin = daemon.pictl_as(
        Caller::Nobody,
        &["token", "otps", &serial, "--count", "1"],
        "",
    );
    assert!(admin.success(), "{}", admin.describe());
    assert!(
        admin.stdout.contains(&hotp(&key, 0, 6)),
        "{}",
        admin.describe()
    );
    let root = daemon.pictl(&["token", "otps", &serial]);
    assert_eq!(
        root.code(),
        1,
        "the policy names a group root is not in: {}",
        root.describe()
    );
}

#[test]
fn types_without_a_sequence_and_counts_out_of_range_are_refused() {
    let daemon = daemon_with(FOR_EVERY_ADMIN);
    let enrolled = daemon.enroll(&["spass", "--user", "root", "--pin", "Secret-123"]);
    let serial = enrolled["serial"].as_str().unwrap();
    let out = daemon.pictl(&["token", "otps", serial]);
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(
        out.stderr.contains("only HOTP and TOTP"),
        "{}",
        out.describe()
    );
    for count in ["0", "101", "x"] {
        let out = daemon.pictl(&["token", "otps", serial, "--count", count]);
        assert_eq!(out.code(), 2, "--count {count}: {}", out.describe());
    }
    let out = daemon.pictl(&["token", "otps", "NOSUCH0001"]);
    assert_eq!(out.code(), 1, "{}", out.describe());
}
