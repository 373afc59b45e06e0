//! The check of a login against HOTP and TOTP tokens: the published vectors, replays, the PIN
//! before the OTP, several tokens of one user, and what a wrong answer costs.

use crate::common::{accepted, auth_begin, root_spec, Daemon, CHEAP_ARGON2, HOTP, KEY20};
use protocol::admin::{AdminRequest, EnrollRequest, TokenSettings};
use protocol::{ErrorCode, HashAlgorithm, Outcome, Request, Response, Secret, TokenType};

#[test]
fn hotp_right_otp_is_accepted_wrong_rejected_and_replay_rejected() {
    let d = Daemon::start();
    let serial = d.enroll_root_hotp(None);
    assert!(accepted(&d.login("root", HOTP[0])));
    assert!(!accepted(&d.login("root", HOTP[0])), "replay");
    assert!(!accepted(&d.login("root", "000000")));
    // counter 3 is inside the window from 1: accepted, and 1, 2 are then spent.
    assert!(accepted(&d.login("root", HOTP[3])));
    assert!(!accepted(&d.login("root", HOTP[2])));
    assert_eq!(d.show(&serial).count, 4, "stored count is matched + 1");
}

#[test]
fn hotp_outside_the_window_is_rejected() {
    let d = Daemon::start();
    d.enroll_root_hotp(None);
    d.set(
        &d.first_serial(None),
        TokenSettings {
            count_window: Some(3),
            ..Default::default()
        },
    );
    assert!(
        !accepted(&d.login("root", HOTP[3])),
        "counter 3 is outside [0, 3)"
    );
    assert!(accepted(&d.login("root", HOTP[2])));
}

#[test]
fn pin_is_required_before_the_otp() {
    let d = Daemon::start();
    let serial = d.enroll_root_hotp(Some("1234"));
    assert!(!accepted(&d.login("root", HOTP[0])), "OTP without PIN");
    assert_eq!(d.show(&serial).failcount, 1);
    assert!(
        !accepted(&d.login("root", &format!("{}1234", HOTP[0]))),
        "OTP before PIN"
    );
    assert!(
        !accepted(&d.login("root", &format!("9999{}", HOTP[0]))),
        "wrong PIN"
    );
    assert!(accepted(&d.login("root", &format!("1234{}", HOTP[0]))));
    assert_eq!(
        d.show(&serial).failcount,
        0,
        "success resets the fail counter"
    );
}

#[test]
fn totp_vectors_are_accepted_at_their_time_and_replay_is_refused() {
    let d = Daemon::start_with("", 1_111_111_109);
    d.enroll(TokenType::Totp, "root", KEY20, None, 8);
    assert!(accepted(&d.login("root", "07081804")));
    assert!(!accepted(&d.login("root", "07081804")), "same step twice");
    d.clock.set(1_111_111_111);
    assert!(accepted(&d.login("root", "14050471")), "next step");
    d.clock.set(1_111_111_111 + 10 * 30);
    assert!(
        !accepted(&d.login("root", "94287082")),
        "a code from 1970 is far outside"
    );
}

#[test]
fn totp_sha256_and_sha512_vectors_work() {
    let d = Daemon::start_with("", 1_234_567_890);
    let key32 = "3132333435363738393031323334353637383930313233343536373839303132";
    let key64 = "31323334353637383930313233343536373839303132333435363738393031323334353637383930313233343536373839303132333435363738393031323334";
    let spec = |key: &str, hash| EnrollRequest {
        otpkey: Some(Secret::new(key)),
        digits: Some(8),
        hash: Some(hash),
        ..root_spec(TokenType::Totp)
    };
    d.enroll_spec(spec(key32, HashAlgorithm::Sha256));
    d.enroll_spec(spec(key64, HashAlgorithm::Sha512));
    assert!(
        accepted(&d.login("root", "91819424")),
        "sha256 at 1234567890"
    );
    assert!(
        accepted(&d.login("root", "93441116")),
        "sha512 at 1234567890"
    );
}

#[test]
fn every_token_of_the_user_is_tried() {
    let d = Daemon::start_with("", 1_111_111_109);
    d.enroll(TokenType::Totp, "root", KEY20, None, 8);
    d.enroll_root_hotp(None);
    assert!(accepted(&d.login("root", HOTP[0])));
    assert!(accepted(&d.login("root", "07081804")));
}

#[test]
fn disabled_revoked_and_expired_tokens_are_refused() {
    let d = Daemon::start();
    let serial = d.enroll_root_hotp(None);
    d.admin(AdminRequest::TokenDisable {
        serial: serial.clone(),
    });
    assert!(!accepted(&d.login("root", HOTP[0])));
    d.admin(AdminRequest::TokenEnable {
        serial: serial.clone(),
    });
    d.set(
        &serial,
        TokenSettings {
            validity_end: Some(Some(1_000)),
            ..Default::default()
        },
    );
    assert!(!accepted(&d.login("root", HOTP[0])), "validity ended");
    d.set(
        &serial,
        TokenSettings {
            validity_end: Some(None),
            ..Default::default()
        },
    );
    assert!(accepted(&d.login("root", HOTP[0])));
    d.admin(AdminRequest::TokenRevoke {
        serial: serial.clone(),
    });
    assert!(!accepted(&d.login("root", HOTP[1])));
    let (code, msg) = d.admin_err(AdminRequest::TokenEnable {
        serial: serial.clone(),
    });
    assert_eq!(code, ErrorCode::TokenState, "{msg}");
    d.admin(AdminRequest::TokenDelete { serial });
    assert_eq!(d.login("root", HOTP[1]), Outcome::NoToken);
}

#[test]
fn auth_counter_limit_makes_the_token_unusable() {
    let d = Daemon::start();
    let serial = d.enroll_root_hotp(None);
    d.set(
        &serial,
        TokenSettings {
            count_auth_success_max: Some(1),
            ..Default::default()
        },
    );
    assert!(accepted(&d.login("root", HOTP[0])));
    assert!(!accepted(&d.login("root", HOTP[1])));
}

#[test]
fn previous_otp_used_again_gives_a_hint() {
    let d = Daemon::start();
    d.enroll_root_hotp(None);
    assert!(accepted(&d.login("root", HOTP[0])));
    match d.login("root", HOTP[0]) {
        Outcome::Reject { message } => assert!(message.contains("already used"), "{message}"),
        other => panic!("{other:?}"),
    }
    let audit = d.audit();
    assert!(audit
        .iter()
        .any(|e| e.message == "wrong otp value. previous otp used again"));
}

#[test]
fn resync_with_two_consecutive_otps_moves_the_counter() {
    let d = Daemon::start();
    // Fresh token at count 0: counters 7 and 8 are outside the login window but resync finds
    // them; the next expected value is then 9.
    let serial2 = d.enroll(TokenType::Hotp, "nobody", KEY20, None, 6);
    d.admin(AdminRequest::TokenResync {
        serial: serial2.clone(),
        otp1: Secret::new(HOTP[7]),
        otp2: Secret::new(HOTP[8]),
    });
    assert_eq!(d.show(&serial2).count, 9);
    let (code, _) = d.admin_err(AdminRequest::TokenResync {
        serial: serial2.clone(),
        otp1: Secret::new(HOTP[1]),
        otp2: Secret::new(HOTP[3]),
    });
    assert_eq!(code, ErrorCode::InvalidArgument);
    assert_eq!(d.show(&serial2).count, 9, "a failed resync changes nothing");
}

#[test]
fn user_without_token_and_unknown_user_are_told_apart() {
    let d = Daemon::start();
    let mut c = d.client();
    let begin = |u: &str| Request::AuthBegin(auth_begin(u, "t", None));
    assert_eq!(
        c.call(&begin("root")).unwrap(),
        Response::AuthDone(Outcome::NoToken)
    );
    assert_eq!(
        c.call(&begin("no-such-user-pi")).unwrap(),
        Response::AuthDone(Outcome::UnknownUser)
    );
    assert_eq!(
        c.call(&begin("bad\0name")).unwrap(),
        Response::AuthDone(Outcome::UnknownUser)
    );
}

#[test]
fn authtok_from_an_earlier_module_is_checked_without_prompting() {
    let d = Daemon::start();
    d.enroll_root_hotp(None);
    let req = |otp: &str| Request::AuthBegin(auth_begin("root", "t", Some(otp)));
    let mut c = d.client();
    assert!(matches!(
        c.call(&req(HOTP[0])).unwrap(),
        Response::AuthDone(Outcome::Accept { .. })
    ));
    assert!(matches!(
        c.call(&req(HOTP[0])).unwrap(),
        Response::AuthDone(Outcome::Reject { .. })
    ));
}

#[test]
fn concurrent_logins_with_the_same_otp_accept_exactly_one() {
    let d = Daemon::start();
    d.enroll_root_hotp(None);
    let wins: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| accepted(&d.login("root", HOTP[0])) as usize))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(wins, 1);
}

#[test]
fn wrong_otp_on_the_only_token_costs_no_pin_check() {
    let d = Daemon::start();
    let serial = d.enroll_root_hotp(Some("1234"));
    let before = d.state.pins.verifications();
    for _ in 0..3 {
        assert!(!accepted(&d.login("root", "1234000000")));
    }
    assert_eq!(
        d.state.pins.verifications(),
        before,
        "argon2 ran for a wrong OTP"
    );
    assert_eq!(d.show(&serial).failcount, 3, "the fail counter still rises");
    // The previous OTP is recognised, and then the PIN is checked for the hint.
    assert!(accepted(&d.login("root", &format!("1234{}", HOTP[0]))));
    match d.login("root", &format!("1234{}", HOTP[0])) {
        Outcome::Reject { message } => assert!(message.contains("already used"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_pin_argon2_accepted_is_remembered_only_when_switched_on_and_only_for_that_pin() {
    for (cache_secs, argon2_runs_for_two_logins) in [(0, 2), (60, 1)] {
        let d = Daemon::start_with(
            &format!("{CHEAP_ARGON2}verified_pin_cache_secs = {cache_secs}\n"),
            1_111_111_109,
        );
        let serial = d.enroll_root_hotp(Some("1234"));
        let runs = |d: &Daemon| d.state.pins.verifications();
        let before = runs(&d);
        assert!(accepted(&d.login("root", &format!("1234{}", HOTP[0]))));
        assert!(accepted(&d.login("root", &format!("1234{}", HOTP[1]))));
        assert_eq!(
            runs(&d) - before,
            argon2_runs_for_two_logins,
            "cache {cache_secs} s"
        );
        // A wrong PIN with the right OTP is never answered from the cache.
        assert!(!accepted(&d.login("root", &format!("9999{}", HOTP[2]))));
        assert_eq!(runs(&d) - before, argon2_runs_for_two_logins + 1);
        // After a PIN change the remembered old PIN no longer opens the token.
        d.set(
            &serial,
            TokenSettings {
                pin: Some(Secret::new("5678")),
                ..Default::default()
            },
        );
        assert!(!accepted(&d.login("root", &format!("1234{}", HOTP[3]))));
        assert!(accepted(&d.login("root", &format!("5678{}", HOTP[4]))));
    }
}

#[test]
fn a_wrong_otp_is_answered_no_sooner_than_a_right_otp_with_a_wrong_pin() {
    // A real argon2 cost: a PIN check takes tens of milliseconds.
    let d = Daemon::start_with(
        "[argon2]\nmemory_kib = 4096\niterations = 2\nparallelism = 1\n\
         [tokens]\nmaxfail = 100",
        1_111_111_109,
    );
    d.enroll_root_hotp(Some("1234"));
    let timed = |pass: &str| {
        let started = std::time::Instant::now();
        assert!(!accepted(&d.login("root", pass)));
        started.elapsed()
    };
    let median = |mut t: Vec<std::time::Duration>| {
        t.sort();
        t[t.len() / 2]
    };
    // HOTP[1..] stay unused: a right OTP with a wrong PIN is refused and not spent.
    let right_otp = median((0..5).map(|_| timed(&format!("9999{}", HOTP[1]))).collect());
    let wrong_otp = median((0..5).map(|_| timed("1234000000")).collect());
    assert!(
        wrong_otp * 10 >= right_otp * 7,
        "a wrong OTP took {wrong_otp:?}, a right one with a wrong PIN {right_otp:?}: the \
         difference tells a guesser which part was right"
    );
}

#[test]
fn with_several_tokens_only_the_pin_matching_one_is_charged() {
    let d = Daemon::start();
    let a = d.enroll_root_hotp(Some("1111"));
    let b = d.enroll_root_hotp(Some("2222"));
    assert!(!accepted(&d.login("root", "1111000000")));
    assert_eq!((d.show(&a).failcount, d.show(&b).failcount), (1, 0));
    // No PIN matches: privacyIDEA charges every token.
    assert!(!accepted(&d.login("root", "9999000000")));
    assert_eq!((d.show(&a).failcount, d.show(&b).failcount), (2, 1));
}
