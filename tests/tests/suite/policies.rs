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
        ..Default::default()
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
        ..Default::default()
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
    let retry = pam.login_as(
        pi_tests::Caller::Root,
        "root",
        &["2468", "000000", &hotp(&key, 1, 6)],
    );
    retry.assert_accepted("a wrong answer is asked again, and the right one then passes");
    assert!(
        retry
            .out
            .stderr
            .contains("Wrong code, try again. please enter otp"),
        "{:?}",
        retry.out
    );
    pam.login_as(
        pi_tests::Caller::Root,
        "root",
        &["2468", "000000", "111111", "222222"],
    )
    .assert_rejected("three wrong answers end the challenge");
    pam.login("root", &format!("2468{}", hotp(&key, 2, 6)))
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

#[test]
fn challenge_text_is_the_second_prompt_through_pam() {
    let daemon = pi_tests::Daemon::start_with(pi_tests::DaemonOptions {
        extra_toml: "[[policy]]\nname = \"cr\"\nscope = \"authentication\"\n\
                     actions = { challenge_response = \"hotp\", \
                     challenge_text = \"Code from your token {serial}: \" }\n"
            .into(),
        ..Default::default()
    });
    let key = test_key("policy-challenge-text", 20);
    let serial = daemon.enroll_hotp("root", &key, Some("1357"));
    let pam = Pam::new(&daemon, "");
    let run = pam.login_as(pi_tests::Caller::Root, "root", &["1357", &hotp(&key, 0, 6)]);
    run.assert_accepted("PIN, then the OTP at the policy's prompt");
    assert!(
        run.out
            .stderr
            .contains(&format!("Code from your token {serial}: ")),
        "{:?}",
        run.out
    );
}

#[test]
fn auth_max_fail_stops_checking_after_too_many_failures_through_pam() {
    let daemon = pi_tests::Daemon::start_with(pi_tests::DaemonOptions {
        extra_toml: "[[policy]]\nname = \"max\"\nscope = \"authentication\"\n\
                     actions = { auth_max_fail = \"2/1h\" }\n"
            .into(),
        ..Default::default()
    });
    let key = test_key("policy-max-fail", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");
    pam.login("root", "000000").assert_rejected("wrong code 1");
    pam.login("root", "111111").assert_rejected("wrong code 2");
    let run = pam.login("root", &hotp(&key, 0, 6));
    run.assert_rejected("the right code after two failures in the hour");
    assert!(
        run.failed_with("Only 2 failed authentications per 1h allowed."),
        "{:?}",
        run.out
    );
}

#[test]
fn mangle_of_pass_strips_a_prefix_through_pam() {
    let daemon = Daemon::start();
    let key = test_key("policy-mangle-pass", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");
    apply(
        &daemon,
        "\n[[policy]]\nname = \"strip\"\nscope = \"authentication\"\n\
         actions = { mangle = 'pass/^otp://' }\n",
    );
    pam.login("root", &format!("otp:{}", hotp(&key, 0, 6)))
        .assert_accepted("the otp: prefix is removed before the check");
}

/// Today's day as `date` names it (Mon … Sun) and the other six days as one wrapping range.
fn today_and_other_days() -> (String, String) {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let out = std::process::Command::new("date")
        .arg("+%u")
        .output()
        .unwrap();
    let n: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let today = DAYS[n - 1];
    (
        today.to_owned(),
        format!("{}-{}", DAYS[n % 7], DAYS[(n + 5) % 7]),
    )
}

#[test]
fn a_time_condition_applies_a_policy_only_at_the_times_it_names() {
    let (today, others) = today_and_other_days();
    let daemon = Daemon::start();
    let now_pam = Pam::new(&daemon, "");
    let later_pam = Pam::new(&daemon, "");
    apply(
        &daemon,
        &format!(
            "\n[[policy]]\nname = \"today\"\nscope = \"authentication\"\nservice = [\"{}\"]\n\
             time = \"{today}: 00:00-23:59\"\nactions = {{ passOnNoToken = true }}\n\
             [[policy]]\nname = \"other-days\"\nscope = \"authentication\"\nservice = [\"{}\"]\n\
             time = \"{others}: 00:00-23:59\"\nactions = {{ passOnNoToken = true }}\n",
            now_pam.service(),
            later_pam.service()
        ),
    );
    let accepted_today = now_pam.login("root", "").accepted();
    let accepted_other = later_pam.login("root", "").accepted();
    if today_and_other_days().0 != today {
        return; // midnight passed during the test: the day's answer is not defined.
    }
    assert!(accepted_today, "the policy for today applies");
    assert!(!accepted_other, "the policy for the other days does not");
}

#[test]
fn users_enroll_their_own_token_with_pictl_when_a_user_policy_allows_it() {
    let daemon = pi_tests::Daemon::start_with(pi_tests::DaemonOptions {
        extra_toml: "[[policy]]\nname = \"self\"\nscope = \"user\"\n\
                     actions = { enroll = \"hotp\" }\n"
            .into(),
        ..Default::default()
    });
    let key = test_key("policy-self-service", 20);
    let nobody = pi_tests::Caller::Nobody;
    let refused = daemon.pictl_as(
        nobody,
        &[
            "token", "enroll", "hotp", "--user", "root", "--otpkey", &key, "--no-qr",
        ],
        "",
    );
    assert!(!refused.success(), "{}", refused.describe());
    let own = daemon.pictl_as(
        nobody,
        &[
            "--json", "token", "enroll", "hotp", "--user", "nobody", "--otpkey", &key,
        ],
        "",
    );
    assert!(own.success(), "{}", own.describe());
    let serial = pi_tests::daemon::serial_of(&serde_json::from_str(&own.stdout).unwrap());
    // A user's own token logs in once they typed two consecutive codes.
    let verify = daemon.pictl_as(
        nobody,
        &[
            "token",
            "verify",
            &serial,
            &hotp(&key, 0, 6),
            &hotp(&key, 1, 6),
        ],
        "",
    );
    assert!(verify.success(), "{}", verify.describe());
    let totp = daemon.pictl_as(
        nobody,
        &["token", "enroll", "totp", "--user", "nobody", "--no-qr"],
        "",
    );
    assert!(!totp.success(), "totp is not allowed: {}", totp.describe());
    let pam = Pam::new(&daemon, "");
    pam.login("nobody", &hotp(&key, 2, 6))
        .assert_accepted("the self-enrolled token works");
}

#[test]
fn pass_on_no_user_and_hide_specific_error_message_through_pam() {
    let daemon = Daemon::start();
    let open = Pam::new(&daemon, "");
    let hidden = Pam::new(&daemon, "");
    const PAM_AUTH_ERR: i32 = 7;
    const PAM_USER_UNKNOWN: i32 = 10;
    assert_eq!(
        hidden.return_code("no-such-user-pi", &["123456"]),
        PAM_USER_UNKNOWN,
        "without a policy an unknown user is reported as such"
    );
    apply(
        &daemon,
        &format!(
            "\n[[policy]]\nname = \"guests\"\nscope = \"authentication\"\nservice = [\"{}\"]\n\
             actions = {{ passOnNoUser = true }}\n\
             [[policy]]\nname = \"quiet\"\nscope = \"authentication\"\nservice = [\"{}\"]\n\
             actions = {{ hide_specific_error_message = true }}\n",
            open.service(),
            hidden.service()
        ),
    );
    open.login("no-such-user-pi", "")
        .assert_accepted("passOnNoUser lets an unknown user through this service");
    assert_eq!(
        hidden.return_code("no-such-user-pi", &["123456"]),
        PAM_AUTH_ERR,
        "hide_specific_error_message: an unknown user is just a failed login"
    );
}

#[test]
fn last_auth_refuses_a_token_unused_for_longer_than_the_period_through_pam() {
    let daemon = pi_tests::Daemon::start_with(pi_tests::DaemonOptions {
        extra_toml: "[[policy]]\nname = \"stale\"\nscope = \"authentication\"\n\
                     actions = { last_auth = \"1s\" }\n"
            .into(),
        ..Default::default()
    });
    let key = test_key("policy-last-auth", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");
    pam.login("root", &hotp(&key, 0, 6))
        .assert_accepted("first use");
    // More than the policy's one second passes between the two logins.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    pam.login("root", &hotp(&key, 1, 6))
        .assert_rejected("the token's last success is older than last_auth");
}

#[test]
fn reset_all_user_tokens_clears_the_other_tokens_fail_counters_through_pam() {
    let daemon = pi_tests::Daemon::start_with(pi_tests::DaemonOptions {
        extra_toml: "[[policy]]\nname = \"reset\"\nscope = \"authentication\"\n\
                     actions = { reset_all_user_tokens = true }\n"
            .into(),
        ..Default::default()
    });
    let key_a = test_key("policy-reset-a", 20);
    let key_b = test_key("policy-reset-b", 20);
    let a = daemon.enroll_hotp("root", &key_a, None);
    let b = daemon.enroll_hotp("root", &key_b, None);
    let pam = Pam::new(&daemon, "");
    pam.login("root", "000000").assert_rejected("wrong code");
    assert_eq!(daemon.token(&b)["failcount"], 1, "both tokens were charged");
    pam.login("root", &hotp(&key_a, 0, 6))
        .assert_accepted("token a");
    assert_eq!(daemon.token(&a)["failcount"], 0);
    assert_eq!(
        daemon.token(&b)["failcount"],
        0,
        "reset_all_user_tokens cleared token b as well"
    );
}
