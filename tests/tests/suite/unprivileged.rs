//! A local unprivileged process (a screen locker, or an attacker with a shell) as uid 65534:
//! it may check its own account's second factor and nothing else (docs/security.md).

use pi_tests::{hotp, test_key, Caller, Daemon, Pam, NOBODY};

#[test]
fn unprivileged_caller_can_authenticate_its_own_account() {
    let daemon = Daemon::start();
    let key = test_key("nobody-self", 20);
    daemon.enroll_hotp(NOBODY, &key, None);
    let pam = Pam::new(&daemon, "");

    pam.login_as(Caller::Nobody, NOBODY, &[&hotp(&key, 0, 6)])
        .assert_accepted("nobody checking nobody");
    pam.login_as(Caller::Nobody, NOBODY, &[&hotp(&key, 0, 6)])
        .assert_rejected("replay by the same caller");
}

#[test]
fn unprivileged_caller_cannot_authenticate_root_nor_burn_roots_codes() {
    let daemon = Daemon::start();
    let key = test_key("root-target", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");

    let code = hotp(&key, 0, 6);
    pam.login_as(Caller::Nobody, "root", &[&code])
        .assert_refused("uid 65534 asking about root, even with root's right code");
    let token = &daemon.tokens(Some("root"))[0];
    assert_eq!(
        token["failcount"], 0,
        "a refused caller must not touch root's fail counter"
    );
    pam.login("root", &code)
        .assert_accepted("root's code was not consumed by the attempt");
}

#[test]
fn unprivileged_caller_cannot_administer_tokens() {
    let daemon = Daemon::start();
    let serial = daemon.enroll_hotp("root", &test_key("admin-only", 20), None);
    let before = daemon.tokens(None);

    let status = daemon.pictl_as(Caller::Nobody, &["status"], "");
    assert!(
        status.success(),
        "status is open to everyone, so the refusals below are about permission, not about \
         reaching the socket\n{}",
        status.describe()
    );
    // Users see their own tokens (none here), never root's.
    let list = daemon.pictl_as(Caller::Nobody, &["token", "list"], "");
    assert!(list.success(), "{}", list.describe());
    assert!(!list.stdout.contains(&serial), "{}", list.describe());
    let key = test_key("nobody-own", 20);
    // Without a `user` policy there is no self-service; root's tokens do not exist for nobody
    // (their serials do not leak).
    for (args, says) in [
        (
            vec![
                "token", "enroll", "hotp", "--user", NOBODY, "--otpkey", &key,
            ],
            "permission",
        ),
        (vec!["audit", "show"], "permission"),
        (
            vec!["token", "delete", &serial],
            "no such token among yours",
        ),
        (
            vec!["token", "disable", &serial],
            "no such token among yours",
        ),
        (vec!["token", "reset", &serial], "no such token among yours"),
    ] {
        let out = daemon.pictl_as(Caller::Nobody, &args, "");
        assert_eq!(
            out.code(),
            1,
            "pictl {args:?} as nobody\n{}",
            out.describe()
        );
        assert!(
            out.text().to_lowercase().contains(says),
            "pictl {args:?} as nobody must say {says:?}\n{}",
            out.describe()
        );
    }
    assert_eq!(
        daemon.tokens(None),
        before,
        "the store changed after refused admin requests"
    );
}

#[test]
fn unprivileged_json_errors_carry_the_permission_code() {
    let daemon = Daemon::start();
    let out = daemon.pictl_as(Caller::Nobody, &["--json", "audit", "show"], "");
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(
        out.text().contains("permission_denied"),
        "--json output should name the stable error code\n{}",
        out.describe()
    );
}

#[test]
fn rate_limit_stops_an_unprivileged_brute_force_but_not_root() {
    let daemon = pi_tests::Daemon::start_with(pi_tests::DaemonOptions {
        extra_toml: "[limits]\nuser_auth_per_minute = 3\n".into(),
        ..Default::default()
    });
    let key = test_key("rate-limit", 20);
    daemon.enroll_hotp(NOBODY, &key, None);
    let pam = Pam::new(&daemon, "");

    for n in 0..3u64 {
        pam.login_as(Caller::Nobody, NOBODY, &[&hotp(&key, 800 + n, 6)])
            .assert_rejected("wrong code, within the rate limit");
    }
    pam.login_as(Caller::Nobody, NOBODY, &[&hotp(&key, 0, 6)])
        .assert_refused("fourth attempt within a minute, even with the right code");
    pam.login("nobody", &hotp(&key, 0, 6))
        .assert_accepted("root (sshd, login) is not rate limited, and the code was not consumed");
}
