//! A local caller that is neither root nor in the admin group: it may authenticate its own
//! account, within a rate limit, and manage its own tokens only as far as user policies allow.

use crate::common::{
    auth_begin, enroll_req, error_code, local_user, nobody, policy, Daemon, HOTP, KEY20,
};
use pid::connection::ConnState;
use protocol::admin::{AdminRequest, AdminResponse};
use protocol::{ErrorCode, Outcome, Request, Response, Secret, TokenType};

#[test]
fn non_admin_caller_may_only_authenticate_itself() {
    let d = Daemon::start();
    d.enroll_root_hotp(None);
    d.enroll(TokenType::Hotp, "nobody", KEY20, None, 6);
    let me = nobody(false);
    let mut conn = ConnState::default();
    let mut run = |req: Request| d.dispatch_on(&me, &mut conn, req);
    // Self-service: nobody sees its own tokens and nothing else, and no audit trail.
    let list = Request::Admin(AdminRequest::TokenList {
        user: None,
        after: None,
        limit: 5,
    });
    match run(list) {
        Response::Admin(AdminResponse::Tokens { tokens, .. }) => {
            assert_eq!(tokens.len(), 1);
            assert_eq!(tokens[0].user.as_deref(), Some("nobody"));
        }
        other => panic!("unexpected {other:?}"),
    }
    let root_list = Request::Admin(AdminRequest::TokenList {
        user: Some(local_user("root")),
        after: None,
        limit: 5,
    });
    let audit = Request::Admin(AdminRequest::AuditShow {
        user: None,
        before: None,
        limit: 5,
    });
    for req in [root_list, audit] {
        assert_eq!(error_code(&run(req)), Some(ErrorCode::PermissionDenied));
    }
    let begin = |u: &str| Request::AuthBegin(auth_begin(u, "lock", None));
    assert_eq!(
        error_code(&run(begin("root"))),
        Some(ErrorCode::PermissionDenied)
    );
    assert_eq!(
        error_code(&run(begin("no-such-user-pi"))),
        Some(ErrorCode::PermissionDenied)
    );
    let Response::AuthStep { session, .. } = run(begin("nobody")) else {
        panic!()
    };
    let done = run(Request::AuthContinue {
        session,
        answer: Secret::new(HOTP[0]),
    });
    assert!(matches!(done, Response::AuthDone(Outcome::Accept { .. })));
    // The session cannot be continued a second time.
    let again = run(Request::AuthContinue {
        session,
        answer: Secret::new(HOTP[1]),
    });
    assert_eq!(error_code(&again), Some(ErrorCode::SessionExpired));
}

#[test]
fn non_admin_callers_are_rate_limited() {
    let d = Daemon::start_with("[limits]\nuser_auth_per_minute = 3", 1_000_000);
    let me = nobody(false);
    let mut conn = ConnState::default();
    let begin = Request::AuthBegin(auth_begin("nobody", "lock", None));
    let mut limited = 0;
    for _ in 0..5 {
        let r = d.dispatch_on(&me, &mut conn, begin.clone());
        limited += (error_code(&r) == Some(ErrorCode::RateLimited)) as usize;
    }
    assert_eq!(limited, 2);
}

#[test]
fn users_enroll_and_delete_their_own_tokens_only_as_user_policies_allow() {
    let d = Daemon::start();
    let me = nobody(false);
    assert_eq!(
        error_code(&d.admin_as(&me, enroll_req(TokenType::Totp, None, None))),
        Some(ErrorCode::PermissionDenied),
        "no user policy, no self-service"
    );
    let d = d.restart_with(&policy("self", "user", "enroll = \"totp\", delete = true"));
    let root_token = d.enroll_root_hotp(None);
    let mine = match d.admin_as(&me, enroll_req(TokenType::Totp, None, None)) {
        Response::Admin(AdminResponse::EnrolledUnverified(e)) => e.token,
        other => panic!("a user's own totp token waits for its codes: {other:?}"),
    };
    assert!(!mine.active);
    assert_eq!(mine.user.as_deref(), Some("nobody"));
    assert_eq!(
        error_code(&d.admin_as(&me, enroll_req(TokenType::Hotp, None, None))),
        Some(ErrorCode::PermissionDenied),
        "hotp is not in the policy"
    );
    assert_eq!(
        error_code(&d.admin_as(&me, enroll_req(TokenType::Totp, Some("root"), None))),
        Some(ErrorCode::PermissionDenied),
        "only for oneself"
    );
    for req in [
        AdminRequest::TokenDelete {
            serial: root_token.clone(),
        },
        AdminRequest::TokenShow {
            serial: root_token.clone(),
        },
    ] {
        assert_eq!(
            error_code(&d.admin_as(&me, req)),
            Some(ErrorCode::NotFound),
            "another user's token does not exist for this caller"
        );
    }
    assert_eq!(
        error_code(&d.admin_as(
            &me,
            AdminRequest::TokenDisable {
                serial: mine.serial.clone()
            }
        )),
        Some(ErrorCode::PermissionDenied),
        "disable is not in the policy"
    );
    // Deleting one's own token takes a login by one of one's tokens on the same connection,
    // right before, used once.
    let hotp = d.enroll(TokenType::Hotp, "nobody", KEY20, None, 6);
    let delete = |serial: &str| {
        Request::Admin(AdminRequest::TokenDelete {
            serial: serial.to_owned(),
        })
    };
    let mut conn = ConnState::default();
    assert_eq!(
        error_code(&d.dispatch_on(&me, &mut conn, delete(&mine.serial))),
        Some(ErrorCode::ProofRequired),
        "no login, no delete"
    );
    let log_in = |conn: &mut ConnState, code: &str| {
        let begin = Request::AuthBegin(auth_begin("nobody", "pictl", None));
        let Response::AuthStep { session, .. } = d.dispatch_on(&me, conn, begin) else {
            panic!("no prompt")
        };
        let answer = Secret::new(code);
        d.dispatch_on(&me, conn, Request::AuthContinue { session, answer })
    };
    assert!(matches!(
        log_in(&mut conn, "000000"),
        Response::AuthDone(Outcome::Reject { .. })
    ));
    assert_eq!(
        error_code(&d.dispatch_on(&me, &mut conn, delete(&mine.serial))),
        Some(ErrorCode::ProofRequired),
        "a refused login proves nothing"
    );
    assert!(matches!(
        log_in(&mut conn, HOTP[0]),
        Response::AuthDone(Outcome::Accept { .. })
    ));
    d.dispatch_on(&me, &mut conn, Request::Status);
    assert_eq!(
        error_code(&d.dispatch_on(&me, &mut conn, delete(&mine.serial))),
        Some(ErrorCode::ProofRequired),
        "any request in between discards the login"
    );
    assert!(matches!(
        log_in(&mut conn, HOTP[1]),
        Response::AuthDone(Outcome::Accept { .. })
    ));
    assert_eq!(
        error_code(&d.admin_as(
            &me,
            AdminRequest::TokenDelete {
                serial: mine.serial.clone()
            }
        )),
        Some(ErrorCode::ProofRequired),
        "a login on one connection proves nothing on another"
    );
    assert!(matches!(
        d.dispatch_on(&me, &mut conn, delete(&mine.serial)),
        Response::Admin(AdminResponse::Done { .. })
    ));
    assert_eq!(
        error_code(&d.dispatch_on(&me, &mut conn, delete(&hotp))),
        Some(ErrorCode::ProofRequired),
        "one login, one change"
    );
    assert_eq!(
        d.show(&root_token).serial,
        root_token,
        "root's token untouched"
    );
}

#[test]
fn a_verification_with_malformed_codes_or_serials_is_refused_and_changes_nothing() {
    let d = Daemon::start_with(&policy("self", "user", "enroll = \"hotp\""), 1_000_000);
    let me = nobody(false);
    let serial = match d.admin_as(&me, enroll_req(TokenType::Hotp, None, None)) {
        Response::Admin(AdminResponse::EnrolledUnverified(e)) => e.token.serial,
        other => panic!("unexpected {other:?}"),
    };
    let before = d.show(&serial);
    let verify = |serial: &str, otp1: &str, otp2: &str| {
        error_code(&d.admin_as(
            &me,
            AdminRequest::TokenVerify {
                serial: serial.into(),
                otp1: Secret::new(otp1),
                otp2: Secret::new(otp2),
            },
        ))
    };
    for (otp1, otp2) in [
        ("", "123456"),
        ("12ab56", "123456"),
        ("123456", "\u{202e}123"),
        (&"1".repeat(5_000), "123456"),
    ] {
        assert_eq!(
            verify(&serial, otp1, otp2),
            Some(ErrorCode::InvalidArgument),
            "{otp1:?} {otp2:?}"
        );
    }
    for bad in ["", "NOPE", &"S".repeat(5_000), "../etc"] {
        assert_eq!(
            verify(bad, "123456", "123457"),
            Some(ErrorCode::NotFound),
            "{bad:?}"
        );
    }
    assert_eq!(
        d.show(&serial),
        before,
        "nothing changed, not even the fail counter"
    );
}
