//! The fail counter: `maxfail` wrong attempts make the token unusable even with the right code,
//! for the source they came from (a local account, a remote host, the console), until the lock
//! ends or an administrator resets it — what stops a brute force through a screen locker, su
//! or sshd without letting any of them lock everybody out.

use pi_tests::{hotp, test_key, Caller, Daemon, Pam, NOBODY};

const PAM_SUCCESS: i32 = 0;

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
fn lockout_reached_by_an_unprivileged_caller_holds_for_that_caller_only() {
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
    pam.login_as(Caller::Nobody, NOBODY, &[&hotp(&key, 0, 6)])
        .assert_refused("right code, but uid 65534 locked itself out");
    // `su` run by that account is that account's attempt too, though it runs as root.
    assert_ne!(
        pam.return_code_as_su_by(65534, NOBODY, &[&hotp(&key, 0, 6)]),
        PAM_SUCCESS,
        "right code through su started by uid 65534"
    );
    pam.login("nobody", &hotp(&key, 0, 6))
        .assert_accepted("root's own login (the console) has its own fail counter");
}

#[test]
fn su_started_by_a_user_cannot_lock_roots_token_for_the_console_or_ssh() {
    let daemon = Daemon::start();
    let key = test_key("lockout-su", 20);
    let serial = daemon.enroll_hotp("root", &key, None);
    assert!(daemon
        .pictl(&["token", "set", &serial, "--maxfail", "3"])
        .success());
    let pam = Pam::new(&daemon, "");
    let su_by_nobody =
        |counter: u64| pam.return_code_as_su_by(65534, "root", &[&hotp(&key, counter, 6)]);
    assert_eq!(
        su_by_nobody(0),
        PAM_SUCCESS,
        "su with the right code reaches the daemon"
    );
    for n in 0..5u64 {
        assert_ne!(
            su_by_nobody(900 + n),
            PAM_SUCCESS,
            "su root by uid 65534, wrong code"
        );
    }
    let token = daemon.token(&serial);
    assert_eq!(token["locked"], true, "locked for uid 65534: {token}");
    assert_eq!(token["failcount"], 3, "{token}");
    assert_ne!(
        su_by_nobody(1),
        PAM_SUCCESS,
        "the right code from uid 65534 while it is locked out"
    );
    pam.login("root", &hotp(&key, 1, 6))
        .assert_accepted("root at the console");
    pam.login_with(
        Caller::Root,
        "root",
        &[&hotp(&key, 2, 6)],
        &[("rhost", "192.0.2.7")],
        &[],
    )
    .assert_accepted("root over ssh");
}

#[test]
fn a_remote_hosts_failures_lock_that_host_and_not_the_console() {
    let daemon = Daemon::start();
    let key = test_key("lockout-rhost", 20);
    let serial = daemon.enroll_hotp("root", &key, None);
    assert!(daemon
        .pictl(&["token", "set", &serial, "--maxfail", "3"])
        .success());
    let pam = Pam::new(&daemon, "");
    let from = |host: &str, counter: u64| {
        pam.login_with(
            Caller::Root,
            "root",
            &[&hotp(&key, counter, 6)],
            &[("rhost", host)],
            &[],
        )
    };
    for n in 0..3u64 {
        from("203.0.113.66", 900 + n).assert_rejected("wrong code from the attacker's host");
    }
    from("203.0.113.66", 0).assert_rejected("right code from the locked host");
    from("198.51.100.1", 0).assert_accepted("another host");
    pam.login("root", &hotp(&key, 1, 6))
        .assert_accepted("the console");
    let shown = daemon.pictl(&["token", "show", &serial]);
    assert!(
        shown.stdout.contains("failures from host 203.0.113.66")
            && shown.stdout.contains("3/3, locked for"),
        "pictl token show says which source is locked: {}",
        shown.describe()
    );
    let reset = daemon.pictl(&["token", "reset", &serial]);
    assert!(reset.success(), "{}", reset.describe());
    from("203.0.113.66", 2).assert_accepted("an administrator's reset clears every source");
}
