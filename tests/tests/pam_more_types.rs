#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! spass and daypassword tokens through pictl and the real PAM stack; daypassword codes come from
//! `oathtool --totp --time-step-size=86400`, not from pi.

use pi_tests::{test_key, totp, unix_now, Daemon, Pam};

#[test]
fn spass_logs_in_with_the_pin_alone_through_pam() {
    let daemon = Daemon::start();
    let doc = daemon.enroll(&["spass", "--user", "root", "--pin", "correct horse"]);
    assert_eq!(doc["type"], "spass", "{doc}");
    assert_eq!(
        doc["otpauth_url"], "",
        "no app URL for a simple pass: {doc}"
    );
    let pam = Pam::new(&daemon, "");
    pam.login("root", "correct horse")
        .assert_accepted("the PIN is the whole credential");
    pam.login("root", "correct horse")
        .assert_accepted("and it is not used up");
    pam.login("root", "battery staple")
        .assert_rejected("a wrong pass");
    pam.login("root", "")
        .assert_rejected("never an empty answer");
    let refused = daemon.pictl(&[
        "token", "enroll", "spass", "--user", "root", "--digits", "6",
    ]);
    assert_eq!(refused.code(), 1, "{}", refused.describe());
}

#[test]
fn daypassword_code_from_oathtool_works_twice_the_same_day_through_pam() {
    let daemon = Daemon::start();
    let key = test_key("daypassword", 20);
    let doc = daemon.enroll(&["daypassword", "--user", "root", "--otpkey", &key]);
    assert_eq!(doc["token"]["period"], 86_400, "{doc}");
    let pam = Pam::new(&daemon, "");
    // Far from midnight UTC, so both logins fall in the same day.
    let now = unix_now();
    if now % 86_400 > 86_400 - 60 {
        std::thread::sleep(std::time::Duration::from_secs(61));
    }
    let now = unix_now();
    let code = totp(&key, "sha1", 6, 86_400, now);
    pam.login("root", &code).assert_accepted("today's code");
    pam.login("root", &code)
        .assert_accepted("today's code again: a daypassword is reusable within its day");
    let yesterday = totp(&key, "sha1", 6, 86_400, now - 86_400);
    pam.login("root", &yesterday)
        .assert_rejected("yesterday's code");
}
