//! The token types beyond HOTP and TOTP, each with what it accepts, how often, and which
//! enrollments it refuses: spass, daypassword, pw, registration, paper, motp, tan, applspec,
//! yubikey, indexedsecret, question, ocra and 4eyes.

use crate::common::{
    accepted, auth_begin, host_and_file_realms, policy, root_spec, Daemon, HOTP, KEY20,
};
use protocol::admin::{AdminRequest, EnrollRequest, TokenSettings, UserRef};
use protocol::{ErrorCode, HashAlgorithm, Prompt, Request, Response, Secret, TokenType};

#[test]
fn spass_is_the_pin_alone_and_never_an_empty_answer() {
    let d = Daemon::start_with(
        "[[policy]]\nname = \"kiosk\"\nscope = \"authentication\"\nservice = [\"kiosk\"]\n\
         actions = { otppin = \"none\" }\n",
        1_000_000,
    );
    let e = d.enroll_spec(EnrollRequest {
        pin: Some(Secret::new("s3cret pass")),
        ..root_spec(TokenType::Spass)
    });
    assert_eq!((e.token.digits, e.token.has_pin), (0, true));
    assert!(
        e.otpauth_url.is_empty() && e.otpkey_base32.is_empty(),
        "no key or URL for an app"
    );
    assert!(accepted(&d.login("root", "s3cret pass")));
    assert!(
        accepted(&d.login("root", "s3cret pass")),
        "a pass, not a one-time code"
    );
    assert!(!accepted(&d.login("root", "s3cret pas")));
    assert_eq!(d.show(&e.token.serial).failcount, 1);
    assert!(!accepted(&d.login("root", "")));
    assert!(
        !accepted(&d.login_from("root", "", "kiosk", None)),
        "otppin = none must not turn a spass into 'press enter'"
    );
    let mut with_digits = EnrollRequest {
        pin: Some(Secret::new("x")),
        digits: Some(6),
        ..root_spec(TokenType::Spass)
    };
    let (code, _) = d.enroll_err(with_digits.clone());
    assert_eq!(code, ErrorCode::InvalidArgument);
    with_digits.digits = None;
    with_digits.pin = None;
    let no_pin = d.enroll_spec(with_digits);
    d.admin(AdminRequest::TokenDelete {
        serial: e.token.serial,
    });
    assert!(
        !accepted(&d.login("root", "")),
        "a spass without PIN passes nothing with the token PIN"
    );
    let (code, msg) = d.admin_err(AdminRequest::TokenResync {
        serial: no_pin.token.serial,
        otp1: Secret::new(""),
        otp2: Secret::new(""),
    });
    assert_eq!(code, ErrorCode::InvalidArgument, "{msg}");
}

#[test]
fn daypassword_codes_work_all_day_more_than_once() {
    // Day 3 of the epoch: the code is RFC 4226's HOTP(3) for the RFC key.
    let d = Daemon::start_with("", 3 * 86_400 + 100);
    let spec = EnrollRequest {
        otpkey: Some(Secret::new(KEY20)),
        ..root_spec(TokenType::Daypassword)
    };
    let e = d.enroll_spec(spec.clone());
    assert_eq!(e.token.period, Some(86_400));
    assert!(
        e.otpauth_url.expose().starts_with("otpauth://totp/")
            && e.otpauth_url.expose().contains("period=86400"),
        "apps know it as a TOTP with a day-long period: {}",
        e.otpauth_url.expose()
    );
    assert!(accepted(&d.login("root", HOTP[3])));
    d.clock.advance(80_000);
    assert!(accepted(&d.login("root", HOTP[3])), "again, later that day");
    assert!(!accepted(&d.login("root", HOTP[2])), "yesterday's code");
    d.clock.advance(10_000);
    assert!(!accepted(&d.login("root", HOTP[3])), "the next day");
    assert!(accepted(&d.login("root", HOTP[4])));
    let mut bad = spec;
    bad.period = Some(30);
    let (code, msg) = d.enroll_err(bad);
    assert_eq!(code, ErrorCode::InvalidArgument, "{msg}");
}

#[test]
fn pw_is_pin_then_password() {
    let d = Daemon::start();
    let e = d.enroll_spec(EnrollRequest {
        pin: Some(Secret::new("12")),
        password: Some(Secret::new("hunter2!")),
        ..root_spec(TokenType::Pw)
    });
    assert_eq!(e.token.digits, 8);
    assert!(e.codes.is_empty(), "a given password is not echoed");
    assert!(accepted(&d.login("root", "12hunter2!")));
    assert!(
        accepted(&d.login("root", "12hunter2!")),
        "a password, not a one-time code"
    );
    assert!(
        !accepted(&d.login("root", "hunter2!")),
        "the PIN is still needed"
    );
    assert!(!accepted(&d.login("root", "12hunter2?")));
    let generated = d.enroll_spec(root_spec(TokenType::Pw));
    assert_eq!(generated.codes.len(), 1);
    assert!(accepted(&d.login("root", generated.codes[0].expose())));
}

#[test]
fn a_registration_code_lets_in_once_and_is_gone() {
    let d = Daemon::start();
    let e = d.enroll_spec(root_spec(TokenType::Registration));
    let code = e.codes[0].expose().to_owned();
    assert_eq!(code.len(), 24);
    assert!(!accepted(&d.login("root", "x".repeat(24).as_str())));
    assert!(accepted(&d.login("root", &code)));
    assert!(!accepted(&d.login("root", &code)), "used once");
    let (kind, _) = d.admin_err(AdminRequest::TokenShow {
        serial: e.token.serial,
    });
    assert_eq!(
        kind,
        ErrorCode::NotFound,
        "the spent code's token is deleted"
    );
    let (kind, _) = d.enroll_err(EnrollRequest {
        password: Some(Secret::new("chosen")),
        ..root_spec(TokenType::Registration)
    });
    assert_eq!(
        kind,
        ErrorCode::InvalidArgument,
        "the code is always generated"
    );
}

#[test]
fn a_paper_list_is_rfc_4226_and_used_in_order() {
    let d = Daemon::start();
    let e = d.enroll_spec(EnrollRequest {
        otpkey: Some(Secret::new(KEY20)),
        count: Some(10),
        ..root_spec(TokenType::Paper)
    });
    let codes: Vec<&str> = e.codes.iter().map(|c| c.expose()).collect();
    assert_eq!(codes, HOTP, "the printed list is RFC 4226 Appendix D");
    assert!(e.otpauth_url.is_empty());
    assert!(accepted(&d.login("root", HOTP[0])));
    assert!(
        accepted(&d.login("root", HOTP[5])),
        "skipping lines is fine"
    );
    assert!(!accepted(&d.login("root", HOTP[3])), "an earlier line");
    let (kind, _) = d.enroll_err(EnrollRequest {
        count: Some(5000),
        ..root_spec(TokenType::Paper)
    });
    assert_eq!(kind, ErrorCode::InvalidArgument);
}

#[test]
fn motp_codes_from_the_published_vectors_work_once() {
    // testdata/motp.tsv row 1: secret e3632a5cb2a4c3a5, PIN 1234, t=1111111111.
    let d = Daemon::start_with("", 1_111_111_111);
    let e = d.enroll_spec(EnrollRequest {
        otpkey: Some(Secret::new("e3632a5cb2a4c3a5")),
        motppin: Some(Secret::new("1234")),
        ..root_spec(TokenType::Motp)
    });
    assert!(e.codes.is_empty(), "a given secret is not echoed");
    assert!(accepted(&d.login("root", "e77ccc")));
    assert!(!accepted(&d.login("root", "e77ccc")), "replay");
    let (kind, msg) = d.enroll_err(root_spec(TokenType::Motp));
    assert_eq!(kind, ErrorCode::InvalidArgument);
    assert!(msg.contains("--motppin"), "{msg}");
}

#[test]
fn tans_work_once_each_in_any_order() {
    let d = Daemon::start();
    let e = d.enroll_spec(EnrollRequest {
        count: Some(5),
        ..root_spec(TokenType::Tan)
    });
    let tans: Vec<String> = e.codes.iter().map(|c| c.expose().to_owned()).collect();
    assert_eq!(tans.len(), 5);
    assert!(accepted(&d.login("root", &tans[3])));
    assert!(accepted(&d.login("root", &tans[0])), "any order");
    assert!(!accepted(&d.login("root", &tans[3])), "each once");
    assert_eq!(d.show(&e.token.serial).failcount, 1);
    let (kind, _) = d.enroll_err(EnrollRequest {
        otpkey: Some(Secret::new(KEY20)),
        ..root_spec(TokenType::Tan)
    });
    assert_eq!(kind, ErrorCode::InvalidArgument, "TANs are generated");
}

#[test]
fn an_application_specific_password_serves_only_its_service() {
    let d = Daemon::start();
    d.enroll_spec(EnrollRequest {
        service: Some("dovecot".into()),
        password: Some(Secret::new("mail only")),
        ..root_spec(TokenType::Applspec)
    });
    assert!(accepted(&d.login_from(
        "root",
        "mail only",
        "dovecot",
        None
    )));
    let over_ssh = d.login_from("root", "mail only", "sshd", None);
    assert!(!accepted(&over_ssh), "{over_ssh:?}");
    assert!(d
        .audit()
        .iter()
        .any(|e| e.message.contains("Token is not for this service")));
    let (kind, msg) = d.enroll_err(root_spec(TokenType::Applspec));
    assert_eq!(kind, ErrorCode::InvalidArgument);
    assert!(msg.contains("--service"), "{msg}");
}

#[test]
fn a_yubikey_needs_its_aes_key_and_shows_a_generated_one_once() {
    let d = Daemon::start();
    let generated = d.enroll_spec(root_spec(TokenType::Yubikey));
    assert_eq!(generated.token.digits, 44);
    assert_eq!(
        generated.codes[0].expose().len(),
        32,
        "the AES key in hex, for ykpersonalize"
    );
    for bad in [
        EnrollRequest {
            otpkey: Some(Secret::new(KEY20)),
            ..root_spec(TokenType::Yubikey)
        },
        EnrollRequest {
            digits: Some(20),
            ..root_spec(TokenType::Yubikey)
        },
    ] {
        let (kind, msg) = d.enroll_err(bad);
        assert_eq!(kind, ErrorCode::InvalidArgument, "{msg}");
    }
}

#[test]
fn a_yubikey_challenges_on_the_pin_when_the_policy_lists_it() {
    let d = Daemon::start_with(
        &policy("cr", "authentication", "challenge_response = \"yubikey\""),
        1_000_000,
    );
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/yubico_otp.tsv"
    ));
    let otp = text
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_owned();
    d.enroll_spec(EnrollRequest {
        otpkey: Some(Secret::new("9163508031b20d2fbb1868954e041729")),
        digits: Some(48),
        pin: Some(Secret::new("77")),
        ..root_spec(TokenType::Yubikey)
    });
    let (prompts, outcome) = d.converse("root", "77", &[&otp]);
    assert_eq!(prompts, ["please enter otp: "]);
    assert!(accepted(&outcome), "{outcome:?}");
}

#[test]
fn indexedsecret_asks_two_positions_after_the_pin() {
    let d = Daemon::start();
    d.enroll_spec(EnrollRequest {
        pin: Some(Secret::new("1234")),
        password: Some(Secret::new("k9x2m7qz")),
        ..root_spec(TokenType::Indexedsecret)
    });
    let secret: Vec<char> = "k9x2m7qz".chars().collect();
    let pick = |prompt: &str| -> String {
        let list = prompt
            .trim_start_matches("Please enter the positions ")
            .trim_end_matches(" of your secret: ");
        list.split(", ")
            .map(|p| secret[p.parse::<usize>().unwrap() - 1])
            .collect()
    };
    let (prompt, outcome) = d.answer_challenge("root", "1234", pick);
    assert!(
        prompt.starts_with("Please enter the positions "),
        "{prompt}"
    );
    assert!(accepted(&outcome), "{outcome:?}");
    let (_, outcome) = d.answer_challenge("root", "1234", |_| "zz".into());
    assert!(!accepted(&outcome));
    assert!(
        !accepted(&d.login("root", "1234k9")),
        "no answer without a challenge"
    );
}

#[test]
fn question_asks_one_of_the_users_questions_after_the_pin() {
    let d = Daemon::start();
    let questions: Vec<(String, Secret)> = (1..=5)
        .map(|i| {
            (
                format!("Favourite number {i}?"),
                Secret::new(format!("{}", i * 7)),
            )
        })
        .collect();
    d.enroll_spec(EnrollRequest {
        pin: Some(Secret::new("55")),
        questions,
        ..root_spec(TokenType::Question)
    });
    let reply = |prompt: &str| -> String {
        let i: u32 = prompt
            .trim_start_matches("Favourite number ")
            .trim_end_matches("? ")
            .parse()
            .unwrap();
        format!("{}", i * 7)
    };
    let (prompt, outcome) = d.answer_challenge("root", "55", reply);
    assert!(prompt.starts_with("Favourite number "), "{prompt}");
    assert!(accepted(&outcome), "{outcome:?}");
    let (_, outcome) = d.answer_challenge("root", "55", |_| "0".into());
    assert!(!accepted(&outcome));
    let (kind, _) = d.enroll_err(root_spec(TokenType::Question));
    assert_eq!(kind, ErrorCode::InvalidArgument, "no questions");
}

#[test]
fn ocra_suites_a_pam_login_cannot_serve_are_refused() {
    let d = Daemon::start();
    for suite in [
        "OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1",
        "OCRA-1:HOTP-SHA1-6:QN08-S064",
        "bogus",
    ] {
        let (kind, msg) = d.enroll_err(EnrollRequest {
            ocrasuite: Some(suite.into()),
            ..root_spec(TokenType::Ocra)
        });
        assert_eq!(kind, ErrorCode::InvalidArgument, "{suite}: {msg}");
    }
    let e = d.enroll_spec(root_spec(TokenType::Ocra));
    assert_eq!(
        e.codes[0].expose().len(),
        40,
        "a generated SHA-1 key, shown once"
    );
    match d.call(Request::AuthBegin(auth_begin("root", "test", Some("")))) {
        Response::AuthStep {
            prompt: Prompt::Secret { text },
            ..
        } => {
            let q = text
                .trim_start_matches("Enter the response to challenge ")
                .trim_end_matches(": ");
            assert_eq!(q.len(), 40, "the default suite asks 40 hex digits: {text}");
            assert!(q.bytes().all(|b| b.is_ascii_hexdigit()), "{text}");
        }
        other => panic!("expected a challenge, got {other:?}"),
    }
}

#[test]
fn four_eyes_needs_codes_of_two_distinct_admins() {
    // RFC 6238's SHA-256 vector time: bob's TOTP code is published for it.
    let d = Daemon::start_with_people(
        "alice:x:5001:5001::/:/bin/false\nbob:x:5002:5002::/:/bin/false\n",
        1_111_111_109,
        |people| host_and_file_realms(people, "admins"),
    );
    let admin_token = |login: &str, spec: EnrollRequest| {
        d.enroll_spec(EnrollRequest {
            user: Some(UserRef {
                login: login.into(),
                realm: Some("admins".into()),
            }),
            ..spec
        })
        .token
        .serial
    };
    let alice = admin_token(
        "alice",
        EnrollRequest {
            token_type: Some(TokenType::Hotp),
            otpkey: Some(Secret::new(KEY20)),
            pin: Some(Secret::new("a1")),
            ..Default::default()
        },
    );
    let bob = admin_token(
        "bob",
        EnrollRequest {
            token_type: Some(TokenType::Totp),
            otpkey: Some(Secret::new(
                "3132333435363738393031323334353637383930313233343536373839303132",
            )),
            hash: Some(HashAlgorithm::Sha256),
            digits: Some(8),
            pin: Some(Secret::new("b2")),
            ..Default::default()
        },
    );
    d.enroll_spec(EnrollRequest {
        foureyes: Some("admins:2".into()),
        ..root_spec(TokenType::FourEyes)
    });
    assert!(
        !accepted(&d.login("root", &format!("a1{}", HOTP[0]))),
        "one admin is not enough"
    );
    assert!(
        !accepted(&d.login("root", &format!("a1{} a1{}", HOTP[1], HOTP[2]))),
        "the same admin twice is still one"
    );
    assert!(accepted(
        &d.login("root", &format!("a1{} b268084774", HOTP[3]))
    ));
    assert_eq!(d.show(&alice).count, 4, "alice's code is spent");
    assert!(d.show(&bob).count > 0, "bob's code is spent");
    assert!(
        !accepted(&d.login("root", &format!("a1{} b268084774", HOTP[4]))),
        "bob's code again"
    );
    // The challenge form: the 4eyes token's PIN, then one admin's code per prompt. Bob's next
    // code is RFC 6238's for the next time step.
    d.set(
        &d.first_serial(Some("root")),
        TokenSettings {
            pin: Some(Secret::new("4e")),
            ..Default::default()
        },
    );
    d.clock.advance(2);
    let (prompts, outcome) = d.converse("root", "4e", &[&format!("a1{}", HOTP[5]), "b267062674"]);
    assert_eq!(
        prompts,
        [
            "Code (PIN and OTP) of a token of realm admins (2 still needed): ",
            "Code (PIN and OTP) of a token of realm admins (1 still needed): "
        ]
    );
    assert!(accepted(&outcome), "{outcome:?}");
}

#[test]
fn bad_enrollments_of_every_type_are_refused_and_store_nothing() {
    let d = Daemon::start();
    let before = d.token_count();
    let bad = [
        EnrollRequest {
            digits: Some(6),
            ..root_spec(TokenType::Spass)
        },
        EnrollRequest {
            period: Some(10),
            ..root_spec(TokenType::Daypassword)
        },
        root_spec(TokenType::Motp),
        EnrollRequest {
            password: Some(Secret::new("")),
            ..root_spec(TokenType::Pw)
        },
        EnrollRequest {
            count: Some(0),
            ..root_spec(TokenType::Paper)
        },
        EnrollRequest {
            password: Some(Secret::new("x")),
            ..root_spec(TokenType::Registration)
        },
        EnrollRequest {
            count: Some(100_000),
            ..root_spec(TokenType::Tan)
        },
        root_spec(TokenType::Applspec),
        EnrollRequest {
            digits: Some(10),
            ..root_spec(TokenType::Yubikey)
        },
        EnrollRequest {
            password: Some(Secret::new("a")),
            ..root_spec(TokenType::Indexedsecret)
        },
        root_spec(TokenType::Question),
        EnrollRequest {
            ocrasuite: Some("OCRA-1:HOTP-SHA1-6:QN08-PSHA1".into()),
            ..root_spec(TokenType::Ocra)
        },
        EnrollRequest {
            email: Some("no-at-sign".into()),
            ..root_spec(TokenType::Email)
        },
        EnrollRequest {
            phone: Some("call me".into()),
            ..root_spec(TokenType::Sms)
        },
        EnrollRequest {
            tokenid: Some("short".into()),
            ..root_spec(TokenType::Yubico)
        },
        root_spec(TokenType::Daplug),
        EnrollRequest {
            foureyes: Some("admins".into()),
            ..root_spec(TokenType::FourEyes)
        },
    ];
    for spec in bad {
        let t = spec.token_type;
        let (code, msg) = d.enroll_err(spec);
        assert_eq!(code, ErrorCode::InvalidArgument, "{t:?}: {msg}");
        assert!(!msg.is_empty());
    }
    assert_eq!(d.token_count(), before, "nothing was stored");
}
