//! HOTP logins through the whole chain: pamtester → libpam → pam_pi → socket → pid → store.

use pi_tests::{hotp, test_key, Daemon, Pam};

#[test]
fn right_hotp_is_accepted_and_the_same_code_is_refused_the_second_time() {
    let daemon = Daemon::start();
    let key = test_key("hotp-basic", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");

    let first = hotp(&key, 0, 6);
    pam.login("root", &first)
        .assert_accepted("HOTP counter 0 of a fresh token");
    pam.login("root", &first)
        .assert_rejected("counter 0 was already used");
    pam.login("root", &hotp(&key, 1, 6))
        .assert_accepted("the next counter value is fresh");
}

#[test]
fn wrong_hotp_is_rejected() {
    let daemon = Daemon::start();
    let key = test_key("hotp-wrong", 20);
    let serial = daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");

    // Far beyond the look-ahead window: a code the token produced, but not one it accepts now.
    pam.login("root", &hotp(&key, 500, 6))
        .assert_rejected("counter 500 is outside the window");
    // A code of another key.
    pam.login("root", &hotp(&test_key("other", 20), 0, 6))
        .assert_rejected("code of a different key");
    assert_eq!(
        daemon.token(&serial)["failcount"],
        2,
        "each wrong code counts as a failure"
    );
    pam.login("root", &hotp(&key, 0, 6))
        .assert_accepted("the right code still works after failures below maxfail");
    assert_eq!(
        daemon.token(&serial)["failcount"],
        0,
        "a success clears the fail counter"
    );
}

#[test]
fn hotp_inside_the_look_ahead_window_is_accepted_and_earlier_codes_become_invalid() {
    let daemon = Daemon::start();
    let key = test_key("hotp-window", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");

    pam.login("root", &hotp(&key, 5, 6))
        .assert_accepted("counter 5 is inside the window of 10");
    pam.login("root", &hotp(&key, 3, 6))
        .assert_rejected("counter 3 is behind the last accepted value");
    pam.login("root", &hotp(&key, 6, 6))
        .assert_accepted("counter 6 follows 5");
}

#[test]
fn eight_digit_hotp_is_accepted() {
    let daemon = Daemon::start();
    let key = test_key("hotp-8", 20);
    daemon.enroll(&["hotp", "--user", "root", "--otpkey", &key, "--digits", "8"]);
    let pam = Pam::new(&daemon, "");

    pam.login("root", &hotp(&key, 0, 6))
        .assert_rejected("six digits for an eight-digit token");
    pam.login("root", &hotp(&key, 0, 8))
        .assert_accepted("eight-digit code");
}

#[test]
fn hotp_with_pin_needs_pin_followed_by_code() {
    let daemon = Daemon::start();
    let key = test_key("hotp-pin", 20);
    let pin = "Kx7pin";
    daemon.enroll_hotp("root", &key, Some(pin));
    let pam = Pam::new(&daemon, "");

    let code = hotp(&key, 0, 6);
    pam.login("root", &code)
        .assert_rejected("code without the PIN");
    pam.login("root", &format!("wrong{code}"))
        .assert_rejected("wrong PIN, right code");
    pam.login("root", &format!("{code}{pin}"))
        .assert_rejected("PIN after the code");
    pam.login("root", &format!("{pin}{code}"))
        .assert_accepted("PIN then code");
    pam.login("root", &format!("{pin}{code}"))
        .assert_rejected("the same code again");
}

#[test]
fn user_with_several_tokens_may_use_any_of_them() {
    let daemon = Daemon::start();
    let key_a = test_key("multi-a", 20);
    let key_b = test_key("multi-b", 20);
    daemon.enroll_hotp("root", &key_a, None);
    daemon.enroll_hotp("root", &key_b, None);
    let pam = Pam::new(&daemon, "");

    pam.login("root", &hotp(&key_b, 0, 6))
        .assert_accepted("code of the second token");
    pam.login("root", &hotp(&key_a, 0, 6))
        .assert_accepted("code of the first token");
    pam.login("root", &hotp(&key_b, 0, 6))
        .assert_rejected("second token's code again");
}

#[test]
fn tokens_of_another_user_do_not_open_this_account() {
    let daemon = Daemon::start();
    let key = test_key("other-user", 20);
    daemon.enroll_hotp("nobody", &key, None);
    daemon.enroll_hotp("root", &test_key("root-own", 20), None);
    let pam = Pam::new(&daemon, "");

    pam.login("root", &hotp(&key, 0, 6))
        .assert_rejected("nobody's code for root");
    pam.login("nobody", &hotp(&key, 0, 6))
        .assert_accepted("nobody's code for nobody");
}
