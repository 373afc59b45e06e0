//! TOTP logins through libpam. Codes are computed by oathtool for an explicit `now`; a test that
//! would compute a code in the last seconds of a time step waits for the next step first.

use pi_tests::oath::totp_b32;
use pi_tests::{test_key, totp, wait_for_fresh_totp_step, Daemon, Pam};

/// Enroll a TOTP token with these parameters and check: right code accepted once, replay refused,
/// a code from an hour ago refused, a code of the next step still accepted afterwards.
fn right_totp_is_accepted_once(hash: &str, digits: u8, period: u32, key_len: usize) {
    let daemon = Daemon::start();
    let key = test_key(&format!("totp-{hash}-{digits}-{period}"), key_len);
    daemon.enroll_totp("root", &key, hash, digits, period, None);
    let pam = Pam::new(&daemon, "");

    let now = wait_for_fresh_totp_step(period);
    pam.login("root", &totp(&key, hash, digits, period, now - 3600))
        .assert_rejected("a code from an hour ago");
    let code = totp(&key, hash, digits, period, now);
    pam.login("root", &code).assert_accepted("the current code");
    pam.login("root", &code)
        .assert_rejected("the same code replayed");
    pam.login(
        "root",
        &totp(&key, hash, digits, period, now - u64::from(period)),
    )
    .assert_rejected("the previous step, older than the last accepted one");
    pam.login(
        "root",
        &totp(&key, hash, digits, period, now + u64::from(period)),
    )
    .assert_accepted("the next step (within the time window) is newer than the last accepted");
}

#[test]
fn totp_sha1_six_digits_is_accepted_once() {
    right_totp_is_accepted_once("sha1", 6, 30, 20);
}

#[test]
fn totp_sha256_eight_digits_is_accepted_once() {
    right_totp_is_accepted_once("sha256", 8, 30, 32);
}

#[test]
fn totp_sha512_eight_digits_sixty_second_step_is_accepted_once() {
    right_totp_is_accepted_once("sha512", 8, 60, 64);
}

#[test]
fn totp_with_pin_needs_pin_followed_by_code() {
    let daemon = Daemon::start();
    let key = test_key("totp-pin", 20);
    let pin = "9q!pin";
    daemon.enroll_totp("root", &key, "sha1", 6, 30, Some(pin));
    let pam = Pam::new(&daemon, "");

    let now = wait_for_fresh_totp_step(30);
    let code = totp(&key, "sha1", 6, 30, now);
    pam.login("root", &code)
        .assert_rejected("code without the PIN");
    pam.login("root", &format!("{pin}x{code}"))
        .assert_rejected("wrong PIN");
    pam.login("root", &format!("{pin}{code}"))
        .assert_accepted("PIN then code");
    pam.login("root", &format!("{pin}{code}"))
        .assert_rejected("replayed PIN+code");
}

#[test]
fn totp_with_a_key_the_daemon_generated_works_from_the_enrollment_output() {
    let daemon = Daemon::start();
    let enrolled = daemon.enroll(&["totp", "--user", "root"]);
    let key = enrolled["otpkey_base32"]
        .as_str()
        .unwrap_or_else(|| panic!("no otpkey_base32 in {enrolled}"));
    let pam = Pam::new(&daemon, "");

    let now = wait_for_fresh_totp_step(30);
    pam.login("root", &totp_b32(key, "sha1", 6, 30, now))
        .assert_accepted("code from the key shown at enrollment");
}

#[test]
fn time_window_bounds_how_far_a_clock_may_be_off() {
    // Default window 180 s: two steps ahead is a clock a little fast, twenty steps is not a clock.
    let daemon = Daemon::start();
    let key = test_key("totp-window", 20);
    daemon.enroll_totp("root", &key, "sha1", 6, 30, None);
    let pam = Pam::new(&daemon, "");

    let now = wait_for_fresh_totp_step(30);
    pam.login("root", &totp(&key, "sha1", 6, 30, now + 600))
        .assert_rejected("ten minutes ahead is beyond the default 180 s window");
    pam.login("root", &totp(&key, "sha1", 6, 30, now + 60))
        .assert_accepted("one minute ahead is inside the window");
}
