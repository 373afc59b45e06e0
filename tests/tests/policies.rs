#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! Policies through the real PAM stack: a rule for one PAM service leaves the others alone.

use pi_tests::{hotp, test_key, Daemon, Pam};

/// Append `toml` to the daemon's config and apply it with SIGHUP.
fn apply(daemon: &Daemon, toml: &str) {
    let text = std::fs::read_to_string(daemon.config_path()).unwrap();
    assert!(
        daemon.reload_config(&format!("{text}{toml}")),
        "reload refused:\n{}",
        daemon.log()
    );
}

#[test]
fn pass_on_no_token_for_sudo_while_sshd_still_requires_a_token() {
    let daemon = Daemon::start();
    let sudo = Pam::new(&daemon, "");
    let sshd = Pam::new(&daemon, "");
    apply(
        &daemon,
        &format!(
            "\n[[policy]]\nname = \"sudo-rollout\"\nscope = \"authentication\"\n\
             service = [\"{}\"]\nactions = {{ passOnNoToken = true }}\n",
            sudo.service()
        ),
    );
    sudo.login("root", "")
        .assert_accepted("sudo passes while root has no token");
    sshd.login("root", "")
        .assert_rejected("sshd requires a token");

    let key = test_key("policy-root", 20);
    daemon.enroll_hotp("root", &key, None);
    sudo.login("root", "")
        .assert_rejected("with a token, sudo needs it too");
    sudo.login("root", &hotp(&key, 0, 6))
        .assert_accepted("sudo with the code");
    sshd.login("root", &hotp(&key, 1, 6))
        .assert_accepted("sshd with the code");
}

#[test]
fn otppin_none_for_one_service_takes_the_code_alone() {
    let daemon = Daemon::start();
    let key = test_key("policy-otppin", 20);
    daemon.enroll_hotp("root", &key, Some("4321"));
    let kiosk = Pam::new(&daemon, "");
    let sshd = Pam::new(&daemon, "");
    apply(
        &daemon,
        &format!(
            "\n[[policy]]\nname = \"kiosk\"\nscope = \"authentication\"\n\
             service = [\"{}\"]\nactions = {{ otppin = \"none\" }}\n",
            kiosk.service()
        ),
    );
    kiosk
        .login("root", &hotp(&key, 0, 6))
        .assert_accepted("code alone at the kiosk");
    sshd.login("root", &hotp(&key, 1, 6))
        .assert_rejected("sshd wants the PIN");
    sshd.login("root", &format!("4321{}", hotp(&key, 2, 6)))
        .assert_accepted("PIN and code over ssh");
}

#[test]
fn policy_check_explains_which_policies_apply_to_a_login() {
    let daemon = pi_tests::Daemon::start_with(pi_tests::DaemonOptions {
        extra_toml: "[[policy]]\nname = \"sudo-rollout\"\nscope = \"authentication\"\n\
                     service = [\"sudo\"]\nactions = { passOnNoToken = true }\n\
                     [[policy]]\nname = \"office\"\nscope = \"authentication\"\n\
                     rhost = [\"10.0.0.0/8\"]\npriority = 2\n\
                     actions = { otppin = \"none\" }\n"
            .into(),
        files: vec![],
    });
    let sudo = daemon.pictl_json(&["policy", "check", "--user", "root", "--service", "sudo"]);
    assert_eq!(
        sudo["matching"],
        serde_json::json!(["sudo-rollout"]),
        "{sudo}"
    );
    assert_eq!(sudo["effective"][0]["action"], "passOnNoToken", "{sudo}");
    assert_eq!(sudo["effective"][0]["value"], "true", "{sudo}");
    let office = daemon.pictl_json(&[
        "policy",
        "check",
        "--user",
        "root",
        "--service",
        "sshd",
        "--rhost",
        "10.9.8.7",
    ]);
    assert_eq!(
        office["matching"],
        serde_json::json!(["office"]),
        "{office}"
    );
    assert_eq!(office["effective"][0]["value"], "none", "{office}");
    let none = daemon.pictl(&["policy", "check", "--user", "root", "--service", "sshd"]);
    assert!(none.stdout.contains("none apply"), "{none:?}");
}

#[test]
fn challenge_response_asks_for_the_otp_after_the_pin_through_pam() {
    let daemon = pi_tests::Daemon::start_with(pi_tests::DaemonOptions {
        extra_toml: "[[policy]]\nname = \"cr\"\nscope = \"authentication\"\n\
                     actions = { challenge_response = \"hotp\" }\n"
            .into(),
        files: vec![],
    });
    let key = test_key("policy-challenge", 20);
    daemon.enroll_hotp("root", &key, Some("2468"));
    let pam = Pam::new(&daemon, "");
    let run = pam.login_as(pi_tests::Caller::Root, "root", &["2468", &hotp(&key, 0, 6)]);
    run.assert_accepted("PIN, then the OTP alone at the second prompt");
    assert!(
        run.out.stderr.contains("please enter otp"),
        "the second prompt was shown: {:?}",
        run.out
    );
    pam.login_as(pi_tests::Caller::Root, "root", &["2468", "000000"])
        .assert_rejected("wrong OTP at the second prompt");
    pam.login("root", &format!("2468{}", hotp(&key, 1, 6)))
        .assert_accepted("PIN and OTP together still work");
}

#[test]
fn mangle_strips_a_domain_suffix_through_pam() {
    let daemon = Daemon::start();
    let key = test_key("policy-mangle", 20);
    daemon.enroll_hotp("root", &key, None);
    let sshd = Pam::new(&daemon, "");
    apply(
        &daemon,
        &format!(
            "\n[[policy]]\nname = \"strip\"\nscope = \"authentication\"\nservice = [\"{}\"]\n\
             actions = {{ mangle = 'user/@corp\\.example$//' }}\n",
            sshd.service()
        ),
    );
    sshd.login("root@corp.example", &hotp(&key, 0, 6))
        .assert_accepted("root@corp.example is root after mangling");
}
