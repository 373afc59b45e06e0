//! Policies: authentication actions that change a login for the services and hosts they name,
//! challenge-response, enrollment rules, and what admin-group members may do.

use crate::common::{accepted, enroll_req, error_code, nobody, policy, Daemon, HOTP};
use pid::config::Config;
use protocol::admin::{AdminRequest, AdminResponse, EnrollRequest, TokenSettings};
use protocol::{ErrorCode, HashAlgorithm, Outcome, Request, Response, Secret, TokenType};

const POLICIES: &str = r#"
[[policy]]
name = "sudo-rollout"
scope = "authentication"
service = ["sudo"]
actions = { passOnNoToken = true }

[[policy]]
name = "office"
scope = "authentication"
rhost = ["10.0.0.0/8"]
service = ["sshd"]
actions = { passOnNoToken = true }
"#;

#[test]
fn pass_on_no_token_applies_only_to_the_services_and_hosts_it_names() {
    let d = Daemon::start_with(POLICIES, 1_000_000);
    assert!(
        accepted(&d.login_from("root", "", "sudo", None)),
        "sudo passes without a token"
    );
    assert_eq!(
        d.login_from("root", "", "sshd", None),
        Outcome::NoToken,
        "sshd from anywhere"
    );
    assert!(
        accepted(&d.login_from("root", "", "sshd", Some("10.1.2.3"))),
        "sshd from the office"
    );
    assert_eq!(
        d.login_from("root", "", "sshd", Some("192.0.2.1")),
        Outcome::NoToken
    );
    assert!(d
        .audit()
        .iter()
        .any(|e| e.message == "user has no token, accepted due to 'sudo-rollout'"));
    // Once the user has a token, the policy no longer applies: the token is required.
    d.enroll_root_hotp(None);
    assert!(!accepted(&d.login_from("root", "", "sudo", None)));
    assert!(accepted(&d.login_from("root", HOTP[0], "sudo", None)));
}

#[test]
fn pass_on_no_user_accepts_unknown_users_and_hide_specific_error_message_hides_them() {
    let d = Daemon::start_with(
        "[[policy]]\nname = \"p\"\nscope = \"authentication\"\nservice = [\"kiosk\"]\n\
         actions = { passOnNoUser = true }\n\
         [[policy]]\nname = \"h\"\nscope = \"authentication\"\nservice = [\"sshd\"]\n\
         actions = { hide_specific_error_message = true }\n",
        1_000_000,
    );
    assert!(accepted(&d.login_from(
        "no-such-user-pi",
        "x",
        "kiosk",
        None
    )));
    assert_eq!(
        d.login_from("no-such-user-pi", "x", "login", None),
        Outcome::UnknownUser
    );
    match d.login_from("no-such-user-pi", "x", "sshd", None) {
        Outcome::Reject { message } => assert_eq!(message, "Authentication failed."),
        other => panic!("unknown user revealed: {other:?}"),
    }
    match d.login_from("root", "x", "sshd", None) {
        Outcome::Reject { message } => assert_eq!(message, "Authentication failed."),
        other => panic!("missing token revealed: {other:?}"),
    }
}

#[test]
fn otppin_none_takes_the_otp_alone_even_when_the_token_has_a_pin() {
    let d = Daemon::start_with(
        "[[policy]]\nname = \"nopin\"\nscope = \"authentication\"\nservice = [\"sudo\"]\n\
         actions = { otppin = \"none\" }\n",
        1_000_000,
    );
    d.enroll_root_hotp(Some("1234"));
    assert!(!accepted(&d.login_from(
        "root",
        &format!("1234{}", HOTP[0]),
        "sudo",
        None
    )));
    assert!(accepted(&d.login_from("root", HOTP[0], "sudo", None)));
    assert!(
        !accepted(&d.login_from("root", HOTP[1], "sshd", None)),
        "elsewhere the PIN counts"
    );
    assert!(accepted(&d.login_from(
        "root",
        &format!("1234{}", HOTP[1]),
        "sshd",
        None
    )));
}

#[test]
fn reset_all_user_tokens_clears_every_fail_counter_on_success() {
    let d = Daemon::start_with(
        &policy("r", "authentication", "reset_all_user_tokens = true"),
        1_000_000,
    );
    let a = d.enroll_root_hotp(Some("1111"));
    let b = d.enroll_root_hotp(Some("2222"));
    assert!(!accepted(&d.login("root", "9999000000")));
    assert_eq!((d.show(&a).failcount, d.show(&b).failcount), (1, 1));
    assert!(accepted(&d.login("root", &format!("1111{}", HOTP[0]))));
    assert_eq!((d.show(&a).failcount, d.show(&b).failcount), (0, 0));
}

#[test]
fn without_the_policy_only_the_successful_token_is_reset() {
    let d = Daemon::start();
    let a = d.enroll_root_hotp(Some("1111"));
    let b = d.enroll_root_hotp(Some("2222"));
    assert!(!accepted(&d.login("root", "9999000000")));
    assert!(accepted(&d.login("root", &format!("1111{}", HOTP[0]))));
    assert_eq!((d.show(&a).failcount, d.show(&b).failcount), (0, 1));
}

#[test]
fn last_auth_refuses_a_token_unused_for_too_long_and_spends_the_otp() {
    let d = Daemon::start_with(
        &policy("stale", "authentication", "last_auth = \"10d\""),
        1_000_000,
    );
    let serial = d.enroll_root_hotp(None);
    assert!(
        accepted(&d.login("root", HOTP[0])),
        "never used before: allowed"
    );
    d.clock.advance(9 * 86_400);
    assert!(accepted(&d.login("root", HOTP[1])), "used nine days ago");
    d.clock.advance(11 * 86_400);
    match d.login("root", HOTP[2]) {
        Outcome::Reject { message } => assert!(message.contains("too long"), "{message}"),
        other => panic!("stale token accepted: {other:?}"),
    }
    assert_eq!(d.show(&serial).count, 3, "the OTP is spent all the same");
    assert!(
        !accepted(&d.login("root", HOTP[3])),
        "still stale: last success not moved"
    );
}

/// HOTP and TOTP tokens challenge for the OTP when the PIN comes alone.
fn challenge() -> String {
    policy("cr", "authentication", "challenge_response = \"hotp totp\"")
}

#[test]
fn the_pin_alone_triggers_a_challenge_answered_by_the_otp_alone() {
    let d = Daemon::start_with(&challenge(), 1_000_000);
    let serial = d.enroll_root_hotp(Some("1234"));
    let (prompts, outcome) = d.converse("root", "1234", &[HOTP[0]]);
    assert_eq!(prompts, ["please enter otp: "]);
    assert!(accepted(&outcome), "{outcome:?}");
    // PIN+OTP in one go still works.
    let (prompts, outcome) = d.converse("root", &format!("1234{}", HOTP[1]), &[]);
    assert!(prompts.is_empty() && accepted(&outcome), "{outcome:?}");
    // A wrong answer is charged and the same challenge asked again; the right code then passes.
    let (prompts, outcome) = d.converse("root", "1234", &["000000", HOTP[2]]);
    assert_eq!(
        prompts,
        [
            "please enter otp: ",
            "Wrong code, try again. please enter otp: "
        ]
    );
    assert!(accepted(&outcome), "{outcome:?}");
    assert!(d
        .audit()
        .iter()
        .any(|e| e.message == "Response did not match the challenge."));
    // Three wrong answers end the conversation, each one charged.
    let (prompts, outcome) = d.converse("root", "1234", &["000000", "111111", "222222"]);
    assert_eq!(prompts.len(), 3);
    assert!(!accepted(&outcome));
    assert_eq!(d.show(&serial).failcount, 3);
    // A wrong PIN triggers nothing.
    let (prompts, outcome) = d.converse("root", "9999", &[]);
    assert!(prompts.is_empty() && !accepted(&outcome));
}

#[test]
fn a_challenge_is_not_retried_once_its_token_is_locked() {
    let d = Daemon::start_with(&challenge(), 1_000_000);
    let serial = d.enroll_root_hotp(Some("1234"));
    d.set(
        &serial,
        TokenSettings {
            maxfail: Some(2),
            ..Default::default()
        },
    );
    let (prompts, outcome) = d.converse("root", "1234", &["000000", "111111"]);
    assert_eq!(
        prompts.len(),
        2,
        "the second wrong answer locks the token: no third prompt"
    );
    assert!(!accepted(&outcome));
    assert_eq!(d.show(&serial).failcount, 2);
}

#[test]
fn without_the_policy_the_pin_alone_is_just_a_failure() {
    let d = Daemon::start();
    d.enroll_root_hotp(Some("1234"));
    let (prompts, outcome) = d.converse("root", "1234", &[]);
    assert!(prompts.is_empty() && !accepted(&outcome));
}

#[test]
fn mangle_strips_a_domain_suffix_before_the_user_is_looked_up() {
    let d = Daemon::start_with(
        "[[policy]]\nname = \"strip\"\nscope = \"authentication\"\nservice = [\"sshd\"]\n\
         actions = { mangle = 'user/@corp\\.example$//' }\n",
        1_000_000,
    );
    d.enroll_root_hotp(None);
    assert!(accepted(&d.login_from(
        "root@corp.example",
        HOTP[0],
        "sshd",
        None
    )));
    assert_eq!(
        d.login_from("root@corp.example", HOTP[1], "login", None),
        Outcome::UnknownUser,
        "only sshd logins are rewritten"
    );
    let audit = d.audit();
    assert!(audit
        .iter()
        .any(|e| e.user.as_deref() == Some("root") && e.success));
}

#[test]
fn challenge_text_replaces_the_default_prompt_and_fills_tags() {
    let text = policy(
        "ct",
        "authentication",
        "challenge_text = \"Code for {user} from {serial}: \"",
    );
    let d = Daemon::start_with(&format!("{}{text}", challenge()), 1_000_000);
    let serial = d.enroll_root_hotp(Some("1234"));
    let (prompts, outcome) = d.converse("root", "1234", &[HOTP[0]]);
    assert_eq!(prompts, [format!("Code for root from {serial}: ")]);
    assert!(accepted(&outcome));
}

#[test]
fn auth_max_fail_refuses_logins_once_the_period_holds_that_many_failures() {
    let d = Daemon::start_with(
        &policy("max", "authentication", "auth_max_fail = \"2/1m\""),
        1_000_000,
    );
    let serial = d.enroll_root_hotp(None);
    assert!(!accepted(&d.login("root", "000000")));
    assert!(!accepted(&d.login("root", "111111")));
    // The right OTP is not even looked at now: the token's counter stays.
    assert_eq!(
        d.login("root", HOTP[0]),
        Outcome::Reject {
            message: "Only 2 failed authentications per 1m allowed.".into()
        }
    );
    assert_eq!(d.show(&serial).count, 0);
    assert_eq!(d.show(&serial).failcount, 2);
    // A minute later the failures are out of the period.
    d.clock.advance(61);
    assert!(accepted(&d.login("root", HOTP[0])));
}

#[test]
fn auth_max_success_limits_successes_and_survives_a_restart() {
    let max = policy("max", "authentication", "auth_max_success = \"1/1h\"");
    let d = Daemon::start_with(&max, 1_000_000);
    d.enroll_root_hotp(None);
    assert!(accepted(&d.login("root", HOTP[0])));
    assert!(!accepted(&d.login("root", HOTP[1])));
    let d = d.restart_with(&max);
    assert!(
        !accepted(&d.login("root", HOTP[1])),
        "the success before the restart still counts"
    );
    d.clock.advance(3601);
    assert!(accepted(&d.login("root", HOTP[1])));
}

#[test]
fn mangle_of_pass_rewrites_what_the_user_typed() {
    let d = Daemon::start_with(
        &policy("strip", "authentication", "mangle = 'pass/^otp://'"),
        1_000_000,
    );
    d.enroll_root_hotp(None);
    assert!(accepted(&d.login("root", &format!("otp:{}", HOTP[0]))));
    assert!(accepted(&d.login("root", HOTP[1])));
}

#[test]
fn sms_and_email_texts_are_validated_and_u2f_facets_only_warns() {
    let cfg = |actions: &str| {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "socket = \"{}/s\"\n{}",
            dir.path().display(),
            policy("p", "authentication", actions)
        );
        Config::parse(&text, "t").map(|c| c.load_policies().map(|p| p.warnings().to_vec()))
    };
    let ok = cfg(
        "smstext = \"Your code {otp}\", smsautosend = true, emailtext = \"{otp} for {user}\", \
         emailsubject = \"Your OTP\", emailautosend = false",
    );
    assert_eq!(ok.unwrap().unwrap(), Vec::<String>::new());
    let warned = cfg("u2f_facets = \"https://example.org\"")
        .unwrap()
        .unwrap();
    assert!(warned[0].contains("u2f_facets is ignored"), "{warned:?}");
    assert!(cfg("smstext = \"{pin}\"").is_err());
    assert!(cfg("emailautosend = \"sometimes\"").is_err());
}

#[test]
fn enrollment_policies_set_defaults_and_enforce_pin_rules_and_token_counts() {
    let enrol = policy(
        "enrol",
        "enrollment",
        "hotp_otplen = 8, hotp_hashlib = \"sha256\", otp_pin_minlength = 4, \
         otp_pin_contents = \"cn\", max_token_per_user = 1",
    );
    let own = policy("self", "user", "enroll = \"hotp\"");
    let d = Daemon::start_with(&format!("{enrol}{own}"), 1_000_000);
    let bad_pins = [None, Some("ab1"), Some("abcd"), Some("1234")];
    for pin in bad_pins {
        assert_eq!(
            error_code(&d.call(Request::Admin(enroll_req(
                TokenType::Hotp,
                Some("root"),
                pin
            )))),
            Some(ErrorCode::InvalidArgument),
            "{pin:?}"
        );
    }
    let t = match d.admin(enroll_req(TokenType::Hotp, Some("root"), Some("abc1"))) {
        AdminResponse::Enrolled(e) => e.token,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!((t.digits, t.hash), (8, HashAlgorithm::Sha256));
    assert_eq!(
        error_code(&d.call(Request::Admin(enroll_req(
            TokenType::Hotp,
            Some("root"),
            Some("abc1")
        )))),
        Some(ErrorCode::PermissionDenied),
        "max_token_per_user"
    );
    // A PIN change follows the same rules.
    let weak = AdminRequest::TokenSet {
        serial: t.serial.clone(),
        settings: Box::new(TokenSettings {
            pin: Some(Secret::new("1")),
            ..Default::default()
        }),
    };
    assert_eq!(
        error_code(&d.call(Request::Admin(weak))),
        Some(ErrorCode::InvalidArgument)
    );
    // A user may not override the policy's OTP length.
    let mut own = EnrollRequest {
        token_type: Some(TokenType::Hotp),
        pin: Some(Secret::new("abc1")),
        digits: Some(6),
        ..Default::default()
    };
    assert_eq!(
        error_code(&d.admin_as(
            &nobody(false),
            AdminRequest::TokenEnroll(Box::new(own.clone()))
        )),
        Some(ErrorCode::PermissionDenied)
    );
    own.digits = None;
    assert!(matches!(
        d.admin_as(&nobody(false), AdminRequest::TokenEnroll(Box::new(own))),
        Response::Admin(AdminResponse::EnrolledUnverified(_))
    ));
}

#[test]
fn admin_policies_limit_admin_group_members_but_never_root() {
    let d = Daemon::start_with(
        "[[policy]]\nname = \"helpdesk\"\nscope = \"admin\"\nadmin_group = [\"nogroup\"]\n\
         actions = { tokenlist = true, reset = true }\n",
        1_000_000,
    );
    let serial = d.enroll_root_hotp(None);
    let helpdesk = nobody(true);
    assert!(matches!(
        d.admin_as(
            &helpdesk,
            AdminRequest::TokenList {
                user: None,
                after: None,
                limit: 5
            }
        ),
        Response::Admin(AdminResponse::Tokens { .. })
    ));
    assert!(matches!(
        d.admin_as(
            &helpdesk,
            AdminRequest::TokenReset {
                serial: serial.clone()
            }
        ),
        Response::Admin(AdminResponse::Done { .. })
    ));
    for req in [
        AdminRequest::TokenDelete {
            serial: serial.clone(),
        },
        enroll_req(TokenType::Hotp, Some("root"), None),
        AdminRequest::AuditShow {
            user: None,
            before: None,
            limit: 5,
        },
    ] {
        assert_eq!(
            error_code(&d.admin_as(&helpdesk, req)),
            Some(ErrorCode::PermissionDenied)
        );
    }
    // Root is not bound by admin policies.
    assert!(matches!(
        d.admin(AdminRequest::TokenDelete { serial }),
        AdminResponse::Done { .. }
    ));
}
