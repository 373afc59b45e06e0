//! What root administers: enrollment and its refusals, listing, assignment and status.

use crate::common::{accepted, local_user, nobody, root_spec, Daemon, HOTP, KEY20};
use protocol::admin::{AdminRequest, AdminResponse, EnrollRequest};
use protocol::{ErrorCode, Outcome, Request, Response, Secret, TokenType};

#[test]
fn bad_enrollment_parameters_are_refused_and_nothing_is_stored() {
    let d = Daemon::start();
    let serial = d.enroll_root_hotp(None);
    let base = || EnrollRequest {
        otpkey: Some(Secret::new(KEY20)),
        ..root_spec(TokenType::Hotp)
    };
    let cases: Vec<(EnrollRequest, ErrorCode)> = vec![
        (
            EnrollRequest {
                serial: Some(serial.clone()),
                ..base()
            },
            ErrorCode::AlreadyExists,
        ),
        (
            EnrollRequest {
                otpkey: Some(Secret::new("zz12")),
                ..base()
            },
            ErrorCode::InvalidArgument,
        ),
        (
            EnrollRequest {
                otpkey: Some(Secret::new("123")),
                ..base()
            },
            ErrorCode::InvalidArgument,
        ),
        (
            EnrollRequest {
                otpkey: Some(Secret::new("1234")),
                ..base()
            },
            ErrorCode::InvalidArgument,
        ),
        (
            EnrollRequest {
                digits: Some(7),
                ..base()
            },
            ErrorCode::InvalidArgument,
        ),
        (
            EnrollRequest {
                period: Some(30),
                ..base()
            },
            ErrorCode::InvalidArgument,
        ),
        (
            EnrollRequest {
                serial: Some("a b".into()),
                ..base()
            },
            ErrorCode::InvalidArgument,
        ),
        (
            EnrollRequest {
                user: Some(local_user("no-such-user-pi")),
                ..base()
            },
            ErrorCode::NotFound,
        ),
        (
            EnrollRequest {
                token_type: None,
                ..base()
            },
            ErrorCode::InvalidArgument,
        ),
    ];
    for (spec, want) in cases {
        let (code, msg) = d.enroll_err(spec);
        assert_eq!(code, want, "{msg}");
        assert!(!msg.is_empty());
    }
    let (code, _) = d.admin_err(AdminRequest::TokenShow {
        serial: "NOPE".into(),
    });
    assert_eq!(code, ErrorCode::NotFound);
    match d.admin(AdminRequest::TokenList {
        user: None,
        after: None,
        limit: 32,
    }) {
        AdminResponse::Tokens { tokens, .. } => assert_eq!(tokens.len(), 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn enrollment_returns_an_otpauth_url_and_generated_keys_work() {
    let d = Daemon::start();
    let e = d.enroll_spec(root_spec(TokenType::Totp));
    assert!(e.token.serial.starts_with("TOTP"));
    let url = e.otpauth_url.expose();
    assert!(url.starts_with("otpauth://totp/"), "{url}");
    assert!(url.contains(&format!("secret={}", e.otpkey_base32.expose())));
    assert!(url.contains("period=30") && url.contains("digits=6"));
    assert_eq!(data_encoding_len(e.otpkey_base32.expose()), 20);
}

fn data_encoding_len(b32: &str) -> usize {
    b32.len() * 5 / 8
}

#[test]
fn listing_pages_through_all_tokens() {
    let d = Daemon::start();
    for i in 0..40 {
        d.enroll_unassigned(&format!("S{i:03}"));
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        match d.admin(AdminRequest::TokenList {
            user: None,
            after: after.clone(),
            limit: 1000,
        }) {
            AdminResponse::Tokens { tokens, next } => {
                assert!(tokens.len() <= 32);
                seen.extend(tokens.into_iter().map(|t| t.serial));
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seen.len(), 40);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn assign_and_unassign_move_a_token_between_users() {
    let d = Daemon::start();
    let serial = d
        .enroll_spec(EnrollRequest {
            token_type: Some(TokenType::Hotp),
            otpkey: Some(Secret::new(KEY20)),
            ..Default::default()
        })
        .token
        .serial;
    assert_eq!(d.login("root", HOTP[0]), Outcome::NoToken);
    d.admin(AdminRequest::TokenAssign {
        serial: serial.clone(),
        user: local_user("root"),
    });
    assert!(accepted(&d.login("root", HOTP[0])));
    let (code, _) = d.admin_err(AdminRequest::TokenAssign {
        serial: serial.clone(),
        user: local_user("nobody"),
    });
    assert_eq!(code, ErrorCode::TokenState);
    d.admin(AdminRequest::TokenUnassign { serial });
    assert_eq!(d.login("root", HOTP[1]), Outcome::NoToken);
}

#[test]
fn status_reports_tokens_and_hides_paths_from_non_admins() {
    let d = Daemon::start();
    d.enroll_root_hotp(None);
    let Response::Status(s) = d.call(Request::Status) else {
        panic!()
    };
    assert_eq!(s.tokens, 1);
    assert!(s.caller_is_admin);
    assert!(!s.store_path.is_empty());
    let Response::Status(s) = d.dispatch_as(&nobody(false), Request::Status) else {
        panic!()
    };
    assert!(s.store_path.is_empty() && !s.caller_is_admin);
}
