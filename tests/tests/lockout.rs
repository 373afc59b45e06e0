//! The fail counter: `maxfail` wrong attempts make the token unusable even with the right code,
//! until an administrator resets it — what stops a brute force through a screen locker.

use pi_tests::{hotp, test_key, Caller, Daemon, Pam, NOBODY};

#[test]
fn maxfail_wrong_codes_lock_the_token_until_reset() {
    let daemon = Daemon::start();
    let key = test_key("lockout", 20);
    let serial = daemon.enroll_hotp("root", &key, None);
    let set = daemon.pictl(&["token", "set", &serial, "--maxfail", "3"]);
    assert!(set.success(), "{}", set.describe());
    assert_eq!(daemon.token(&serial)["maxfail"], 3);
    let pam = Pam::new(&daemon, "");

    for n in 0..3u64 {
        pam.login("root", &hotp(&key, 900 + n, 6))
            .assert_rejected("wrong code");
    }
    let token = daemon.token(&serial);
    assert_eq!(token["failcount"], 3, "{token}");
    pam.login("root", &hotp(&key, 0, 6))
        .assert_rejected("right code on a locked token");

    let reset = daemon.pictl(&["token", "reset", &serial]);
    assert!(reset.success(), "{}", reset.describe());
    assert_eq!(daemon.token(&serial)["failcount"], 0);
    pam.login("root", &hotp(&key, 1, 6))
        .assert_accepted("fresh code after reset");
}

#[test]
fn lockout_reached_by_an_unprivileged_caller_also_holds_for_root() {
    // A screen locker brute force as uid 65534 against its own account.
    let daemon = Daemon::start();
    let key = test_key("lockout-nobody", 20);
    let serial = daemon.enroll_hotp(NOBODY, &key, None);
    assert!(daemon
        .pictl(&["token", "set", &serial, "--maxfail", "3"])
        .success());
    let pam = Pam::new(&daemon, "");

    for n in 0..3u64 {
        pam.login_as(Caller::Nobody, NOBODY, &[&hotp(&key, 900 + n, 6)])
            .assert_refused("wrong code");
    }
    pam.login("nobody", &hotp(&key, 0, 6))
        .assert_rejected("right code, locked token, even when root's sshd asks");
}
