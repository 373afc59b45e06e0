#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed setup should stop the test loudly
//! In-process daemon tests: the real server on a temp socket and a temp store, driven through
//! `protocol::Client`, the blocking client pam_pi uses. OTPs come from the published RFC 4226 /
//! RFC 6238 vectors (testdata/oath.tsv), with the daemon's clock set to the vector's time.

use pid::caller::Caller;
use pid::clock::FixedClock;
use pid::config::Config;
use pid::connection::ConnState;
use pid::State;
use protocol::admin::{AdminRequest, AdminResponse, EnrollRequest, TokenSettings, UserRef};
use protocol::{
    AuthBegin, Client, ErrorCode, HashAlgorithm, MachineApp, MachineAttach, MachineOptions,
    MachineTokenInfo, Outcome, Prompt, Request, Response, Secret, TokenInfo, TokenType,
};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;

const KEY20: &str = "3132333435363738393031323334353637383930";
/// RFC 4226 Appendix D, counters 0..9.
const HOTP: [&str; 10] = [
    "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
    "520489",
];

struct Daemon {
    dir: tempfile::TempDir,
    socket: PathBuf,
    clock: FixedClock,
    state: Arc<State>,
    rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

const CHEAP_ARGON2: &str = "[argon2]\nmemory_kib = 64\niterations = 1\nparallelism = 1\n";

fn config(dir: &std::path::Path, extra: &str) -> Config {
    // The cheapest argon2 unless the test brings its own [argon2] section.
    let argon2 = if extra.contains("[argon2]") {
        ""
    } else {
        CHEAP_ARGON2
    };
    let text = format!(
        "socket = \"{d}/pid.sock\"\nstate_dir = \"{d}/state\"\nenckey_file = \"{d}/enckey\"\n\
         {extra}\n{argon2}",
        d = dir.display()
    );
    Config::parse(&text, "test").unwrap()
}

impl Daemon {
    fn start() -> Daemon {
        Daemon::start_with("", 1_111_111_109)
    }

    fn start_with(extra: &str, now: i64) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        Daemon::start_in(dir, extra, FixedClock::new(now))
    }

    fn start_in(dir: tempfile::TempDir, extra: &str, clock: FixedClock) -> Daemon {
        let cfg = config(dir.path(), extra);
        let socket = cfg.socket.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let c2 = clock.clone();
        let (state, server) = rt.block_on(async move {
            let state = Arc::new(State::open(cfg, Arc::new(c2)).unwrap());
            let listener = pid::server::bind(&state.live().config.socket).unwrap();
            let s2 = state.clone();
            let server = tokio::spawn(async move {
                pid::server::run(listener, s2, async {
                    let _ = rx.await;
                })
                .await
            });
            (state, server)
        });
        Daemon {
            dir,
            socket,
            clock,
            state,
            rt,
            stop: Some(tx),
            server: Some(server),
        }
    }

    /// Stop the server and reopen the same store, as a restart would.
    fn restart(self) -> Daemon {
        self.restart_with("")
    }

    /// Restart with this configuration.
    fn restart_with(mut self, extra: &str) -> Daemon {
        self.shutdown();
        let clock = self.clock.clone();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        drop(self);
        Daemon::start_in(dir, extra, clock)
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = self.rt.block_on(h);
        }
        self.rt.block_on(self.state.store.durable()).unwrap();
    }

    fn client(&self) -> Client {
        Client::connect(&self.socket).unwrap()
    }

    fn call(&self, req: Request) -> Response {
        self.client().call(&req).unwrap()
    }

    fn admin(&self, req: AdminRequest) -> AdminResponse {
        match self.call(Request::Admin(req)) {
            Response::Admin(a) => a,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn admin_err(&self, req: AdminRequest) -> (ErrorCode, String) {
        match self.call(Request::Admin(req)) {
            Response::Error { code, message } => (code, message),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn enroll(&self, t: TokenType, user: &str, key: &str, pin: Option<&str>, digits: u8) -> String {
        let spec = EnrollRequest {
            token_type: Some(t),
            user: Some(UserRef {
                login: user.into(),
                realm: None,
            }),
            otpkey: Some(Secret::new(key)),
            pin: pin.map(Secret::new),
            digits: Some(digits),
            ..Default::default()
        };
        match self.admin(AdminRequest::TokenEnroll(Box::new(spec))) {
            AdminResponse::Enrolled(e) => e.token.serial,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn show(&self, serial: &str) -> TokenInfo {
        match self.admin(AdminRequest::TokenShow {
            serial: serial.into(),
        }) {
            AdminResponse::Token(t) => *t,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn set(&self, serial: &str, settings: TokenSettings) {
        self.admin(AdminRequest::TokenSet {
            serial: serial.into(),
            settings: Box::new(settings),
        });
    }

    fn login(&self, user: &str, pass: &str) -> Outcome {
        let mut c = self.client();
        let begin = AuthBegin {
            user: user.into(),
            service: "test".into(),
            ..Default::default()
        };
        match c.call(&Request::AuthBegin(begin)).unwrap() {
            Response::AuthStep {
                session,
                prompt: Prompt::Secret { .. },
            } => {
                match c
                    .call(&Request::AuthContinue {
                        session,
                        answer: Secret::new(pass),
                    })
                    .unwrap()
                {
                    Response::AuthDone(o) => o,
                    other => panic!("unexpected {other:?}"),
                }
            }
            Response::AuthDone(o) => o,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn audit(&self) -> Vec<protocol::AuditEntry> {
        match self.admin(AdminRequest::AuditShow {
            user: None,
            before: None,
            limit: 32,
        }) {
            AdminResponse::Audit { entries, .. } => entries,
            other => panic!("unexpected {other:?}"),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

fn accepted(o: &Outcome) -> bool {
    matches!(o, Outcome::Accept { .. })
}

#[test]
fn hotp_right_otp_is_accepted_wrong_rejected_and_replay_rejected() {
    let d = Daemon::start();
    let serial = d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
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
    d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
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

impl Daemon {
    /// The serial of the first token listed (of `user`, or of anyone).
    fn first_serial(&self, user: Option<&str>) -> String {
        match self.admin(AdminRequest::TokenList {
            user: user.map(|u| UserRef {
                login: u.into(),
                realm: None,
            }),
            after: None,
            limit: 10,
        }) {
            AdminResponse::Tokens { tokens, .. } => tokens[0].serial.clone(),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn pin_is_required_before_the_otp() {
    let d = Daemon::start();
    let serial = d.enroll(TokenType::Hotp, "root", KEY20, Some("1234"), 6);
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
        token_type: Some(TokenType::Totp),
        user: Some(UserRef {
            login: "root".into(),
            realm: None,
        }),
        otpkey: Some(Secret::new(key)),
        digits: Some(8),
        hash: Some(hash),
        ..Default::default()
    };
    d.admin(AdminRequest::TokenEnroll(Box::new(spec(
        key32,
        HashAlgorithm::Sha256,
    ))));
    d.admin(AdminRequest::TokenEnroll(Box::new(spec(
        key64,
        HashAlgorithm::Sha512,
    ))));
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
    d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
    assert!(accepted(&d.login("root", HOTP[0])));
    assert!(accepted(&d.login("root", "07081804")));
}

#[test]
fn maxfail_wrong_attempts_lock_the_token_until_reset() {
    let d = Daemon::start();
    let serial = d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
    d.set(
        &serial,
        TokenSettings {
            maxfail: Some(3),
            ..Default::default()
        },
    );
    for _ in 0..3 {
        assert!(!accepted(&d.login("root", "000000")));
    }
    let info = d.show(&serial);
    assert_eq!(info.failcount, 3);
    assert!(info.locked);
    match d.login("root", HOTP[0]) {
        Outcome::Reject { message } => assert!(message.contains("locked"), "{message}"),
        other => panic!("right OTP on a locked token: {other:?}"),
    }
    d.admin(AdminRequest::TokenReset {
        serial: serial.clone(),
    });
    assert!(accepted(&d.login("root", HOTP[0])));
}

#[test]
fn fail_counter_clears_itself_after_the_configured_timeout() {
    let d = Daemon::start_with(
        "[tokens]\nfailcounter_clear_timeout_mins = 5\nmaxfail = 2",
        1_000_000,
    );
    d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
    assert!(!accepted(&d.login("root", "000000")));
    assert!(!accepted(&d.login("root", "000000")));
    assert!(!accepted(&d.login("root", HOTP[0])), "locked");
    d.clock.advance(5 * 60 + 1);
    assert!(
        accepted(&d.login("root", HOTP[0])),
        "cleared after the timeout"
    );
}

#[test]
fn after_a_lock_ends_one_more_failure_locks_again_for_twice_as_long() {
    let d = Daemon::start_with(
        "[tokens]\nfailcounter_clear_timeout_mins = 1\nlockout_max_mins = 3\nmaxfail = 2",
        1_000_000,
    );
    let serial = d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
    for _ in 0..2 {
        assert!(!accepted(&d.login("root", "000000")));
    }
    assert!(d.show(&serial).locked);
    d.clock.advance(60);
    assert!(!d.show(&serial).locked, "the first lock lasts a minute");
    assert!(!accepted(&d.login("root", "000000")));
    assert!(d.show(&serial).locked, "one failure is enough now");
    d.clock.advance(119);
    assert!(
        !accepted(&d.login("root", HOTP[0])),
        "still locked: two minutes"
    );
    d.clock.advance(1);
    assert!(!accepted(&d.login("root", "000000")));
    d.clock.advance(179);
    assert!(d.show(&serial).locked, "three minutes at most, but three");
    d.clock.advance(1);
    assert!(accepted(&d.login("root", HOTP[0])));
    assert_eq!(d.show(&serial).failcount, 0, "a success clears the source");
}

#[test]
fn disabled_revoked_and_expired_tokens_are_refused() {
    let d = Daemon::start();
    let serial = d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
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
    let serial = d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
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
    d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
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
    let begin = |u: &str| {
        Request::AuthBegin(AuthBegin {
            user: u.into(),
            service: "t".into(),
            ..Default::default()
        })
    };
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
    d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
    let req = |otp: &str| {
        Request::AuthBegin(AuthBegin {
            user: "root".into(),
            service: "t".into(),
            authtok: Some(Secret::new(otp)),
            ..Default::default()
        })
    };
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
    d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
    let wins: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| accepted(&d.login("root", HOTP[0])) as usize))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(wins, 1);
}

#[test]
fn spent_otp_stays_spent_after_restart() {
    let d = Daemon::start();
    d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
    assert!(accepted(&d.login("root", HOTP[0])));
    let d = d.restart();
    assert!(!accepted(&d.login("root", HOTP[0])));
    assert!(accepted(&d.login("root", HOTP[1])));
}

#[test]
fn bad_enrollment_parameters_are_refused_and_nothing_is_stored() {
    let d = Daemon::start();
    let serial = d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
    let base = || EnrollRequest {
        token_type: Some(TokenType::Hotp),
        user: Some(UserRef {
            login: "root".into(),
            realm: None,
        }),
        otpkey: Some(Secret::new(KEY20)),
        ..Default::default()
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
                user: Some(UserRef {
                    login: "no-such-user-pi".into(),
                    realm: None,
                }),
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
        let (code, msg) = d.admin_err(AdminRequest::TokenEnroll(Box::new(spec)));
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
    let spec = EnrollRequest {
        token_type: Some(TokenType::Totp),
        user: Some(UserRef {
            login: "root".into(),
            realm: None,
        }),
        ..Default::default()
    };
    let AdminResponse::Enrolled(e) = d.admin(AdminRequest::TokenEnroll(Box::new(spec))) else {
        panic!()
    };
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
        let spec = EnrollRequest {
            token_type: Some(TokenType::Hotp),
            serial: Some(format!("S{i:03}")),
            ..Default::default()
        };
        d.admin(AdminRequest::TokenEnroll(Box::new(spec)));
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
    let spec = EnrollRequest {
        token_type: Some(TokenType::Hotp),
        otpkey: Some(Secret::new(KEY20)),
        ..Default::default()
    };
    let AdminResponse::Enrolled(e) = d.admin(AdminRequest::TokenEnroll(Box::new(spec))) else {
        panic!()
    };
    let serial = e.token.serial;
    assert_eq!(d.login("root", HOTP[0]), Outcome::NoToken);
    d.admin(AdminRequest::TokenAssign {
        serial: serial.clone(),
        user: UserRef {
            login: "root".into(),
            realm: None,
        },
    });
    assert!(accepted(&d.login("root", HOTP[0])));
    let (code, _) = d.admin_err(AdminRequest::TokenAssign {
        serial: serial.clone(),
        user: UserRef {
            login: "nobody".into(),
            realm: None,
        },
    });
    assert_eq!(code, ErrorCode::TokenState);
    d.admin(AdminRequest::TokenUnassign { serial });
    assert_eq!(d.login("root", HOTP[1]), Outcome::NoToken);
}

#[test]
fn audit_records_attempts_and_admin_actions_without_secrets() {
    let d = Daemon::start();
    d.enroll(TokenType::Hotp, "root", KEY20, Some("s3cr3tpin"), 6);
    d.login("root", &format!("s3cr3tpin{}", HOTP[0]));
    d.login("root", "s3cr3tpin000000");
    let audit = d.audit();
    assert!(audit
        .iter()
        .any(|e| e.action == "token enroll" && e.success));
    let auths: Vec<_> = audit.iter().filter(|e| e.action == "auth").collect();
    assert_eq!(auths.len(), 2);
    assert!(auths.iter().any(|e| e.success) && auths.iter().any(|e| !e.success));
    assert!(auths.iter().all(|e| e.service.as_deref() == Some("test")));
    let dump = format!("{audit:?}");
    for secret in ["s3cr3tpin", HOTP[0], KEY20] {
        assert!(!dump.contains(secret), "audit leaks {secret}");
    }
}

#[test]
fn non_admin_caller_may_only_authenticate_itself() {
    let d = Daemon::start();
    d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
    d.enroll(TokenType::Hotp, "nobody", KEY20, None, 6);
    let nobody = Caller {
        uid: 65534,
        gid: 65534,
        pid: 1,
        is_admin: false,
        account: 65534,
    };
    let mut conn = ConnState::default();
    let run = |req: Request, conn: &mut ConnState| {
        d.rt.block_on(pid::dispatch::dispatch(&d.state, &nobody, conn, req))
    };
    // Self-service: nobody sees its own tokens and nothing else, and no audit trail.
    let list = Request::Admin(AdminRequest::TokenList {
        user: None,
        after: None,
        limit: 5,
    });
    match run(list, &mut conn) {
        Response::Admin(AdminResponse::Tokens { tokens, .. }) => {
            assert_eq!(tokens.len(), 1);
            assert_eq!(tokens[0].user.as_deref(), Some("nobody"));
        }
        other => panic!("unexpected {other:?}"),
    }
    let root_list = Request::Admin(AdminRequest::TokenList {
        user: Some(UserRef {
            login: "root".into(),
            realm: None,
        }),
        after: None,
        limit: 5,
    });
    let audit = Request::Admin(AdminRequest::AuditShow {
        user: None,
        before: None,
        limit: 5,
    });
    for req in [root_list, audit] {
        assert!(matches!(
            run(req, &mut conn),
            Response::Error {
                code: ErrorCode::PermissionDenied,
                ..
            }
        ));
    }
    let begin = |u: &str| {
        Request::AuthBegin(AuthBegin {
            user: u.into(),
            service: "lock".into(),
            ..Default::default()
        })
    };
    assert!(matches!(
        run(begin("root"), &mut conn),
        Response::Error {
            code: ErrorCode::PermissionDenied,
            ..
        }
    ));
    assert!(matches!(
        run(begin("no-such-user-pi"), &mut conn),
        Response::Error {
            code: ErrorCode::PermissionDenied,
            ..
        }
    ));
    let Response::AuthStep { session, .. } = run(begin("nobody"), &mut conn) else {
        panic!()
    };
    let done = run(
        Request::AuthContinue {
            session,
            answer: Secret::new(HOTP[0]),
        },
        &mut conn,
    );
    assert!(matches!(done, Response::AuthDone(Outcome::Accept { .. })));
    // The session cannot be continued a second time.
    let again = run(
        Request::AuthContinue {
            session,
            answer: Secret::new(HOTP[1]),
        },
        &mut conn,
    );
    assert!(matches!(
        again,
        Response::Error {
            code: ErrorCode::SessionExpired,
            ..
        }
    ));
}

#[test]
fn non_admin_callers_are_rate_limited() {
    let d = Daemon::start_with("[limits]\nuser_auth_per_minute = 3", 1_000_000);
    let nobody = Caller {
        uid: 65534,
        gid: 65534,
        pid: 1,
        is_admin: false,
        account: 65534,
    };
    let mut conn = ConnState::default();
    let begin = Request::AuthBegin(AuthBegin {
        user: "nobody".into(),
        service: "lock".into(),
        ..Default::default()
    });
    let mut limited = 0;
    for _ in 0..5 {
        let r = d.rt.block_on(pid::dispatch::dispatch(
            &d.state,
            &nobody,
            &mut conn,
            begin.clone(),
        ));
        limited += matches!(
            r,
            Response::Error {
                code: ErrorCode::RateLimited,
                ..
            }
        ) as usize;
    }
    assert_eq!(limited, 2);
}

fn raw(d: &Daemon) -> UnixStream {
    let s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s
}

fn read_response(s: &mut UnixStream) -> Option<Response> {
    protocol::frame::read_frame(s).ok()
}

#[test]
fn hostile_frames_are_answered_or_dropped_and_the_daemon_keeps_serving() {
    let d = Daemon::start();
    // Zero length.
    let mut s = raw(&d);
    s.write_all(&[0, 0, 0, 0]).unwrap();
    assert!(matches!(
        read_response(&mut s),
        Some(Response::Error {
            code: ErrorCode::Malformed,
            ..
        })
    ));
    // Oversized announcement: refused without waiting for the body.
    let mut s = raw(&d);
    s.write_all(&[0x7f, 0, 0, 0]).unwrap();
    assert!(matches!(
        read_response(&mut s),
        Some(Response::Error {
            code: ErrorCode::Malformed,
            ..
        })
    ));
    // Wrong protocol version: answered, then closed.
    let mut s = raw(&d);
    let mut frame = protocol::frame::encode(&Request::Status).unwrap();
    frame[4..6].copy_from_slice(&99u16.to_be_bytes());
    s.write_all(&frame).unwrap();
    assert!(matches!(
        read_response(&mut s),
        Some(Response::Error {
            code: ErrorCode::VersionMismatch,
            ..
        })
    ));
    let mut rest = Vec::new();
    assert_eq!(s.read_to_end(&mut rest).unwrap(), 0, "connection closed");
    // Garbage body.
    let mut s = raw(&d);
    let [v0, v1] = protocol::paths::PROTOCOL_VERSION.to_be_bytes();
    s.write_all(&[0, 0, 0, 6, v0, v1, 0xff, 0xff, 0xff, 0xff])
        .unwrap();
    assert!(matches!(
        read_response(&mut s),
        Some(Response::Error {
            code: ErrorCode::Malformed,
            ..
        })
    ));
    // A peer that connects and leaves mid-frame.
    let mut s = raw(&d);
    s.write_all(&[0, 0, 1]).unwrap();
    drop(s);
    assert!(matches!(d.call(Request::Status), Response::Status(_)));
}

#[test]
fn oversized_answer_is_refused_without_touching_tokens() {
    let d = Daemon::start();
    let serial = d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
    let answer = "1".repeat(60 * 1024);
    match d.login("root", &answer) {
        Outcome::Reject { message } => assert!(message.contains("too long"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(d.show(&serial).failcount, 0);
    // A frame over 64 KiB cannot even be sent: the client refuses to encode it.
    let mut c = d.client();
    let huge = Request::AuthContinue {
        session: 1,
        answer: Secret::new("1".repeat(1 << 20)),
    };
    assert!(c.call(&huge).is_err());
    assert!(matches!(d.call(Request::Status), Response::Status(_)));
}

#[test]
fn status_reports_tokens_and_hides_paths_from_non_admins() {
    let d = Daemon::start();
    d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
    let Response::Status(s) = d.call(Request::Status) else {
        panic!()
    };
    assert_eq!(s.tokens, 1);
    assert!(s.caller_is_admin);
    assert!(!s.store_path.is_empty());
    let nobody = Caller {
        uid: 65534,
        gid: 65534,
        pid: 1,
        is_admin: false,
        account: 65534,
    };
    let r = d.rt.block_on(pid::dispatch::dispatch(
        &d.state,
        &nobody,
        &mut ConnState::default(),
        Request::Status,
    ));
    let Response::Status(s) = r else { panic!() };
    assert!(s.store_path.is_empty() && !s.caller_is_admin);
}

#[test]
fn secrets_are_not_stored_in_clear() {
    let d = Daemon::start();
    d.enroll(TokenType::Hotp, "root", KEY20, Some("pin-9876"), 6);
    let mut d = d;
    d.shutdown();
    let mut haystack = Vec::new();
    for entry in walk(&d.dir.path().join("state")) {
        haystack.extend(std::fs::read(entry).unwrap());
    }
    let key = hex::decode(KEY20).unwrap();
    assert!(
        !haystack.windows(key.len()).any(|w| w == key.as_slice()),
        "raw key on disk"
    );
    assert!(
        !haystack.windows(8).any(|w| w == b"pin-9876"),
        "PIN on disk"
    );
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn flatfile_realm_users_authenticate_with_user_at_realm() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("people");
    std::fs::write(&users, "alice:x:4242:4242::/:/bin/false\n").unwrap();
    let extra = format!(
        "[resolvers.local]\ntype = \"passwd\"\n[resolvers.people]\ntype = \"flatfile\"\nfile = \"{}\"\n\
         [realms.default]\nresolvers = [\"local\"]\n[realms.ext]\nresolvers = [\"people\"]\n",
        users.display()
    );
    let d = Daemon::start_in(dir, &extra, FixedClock::new(1_000_000));
    let spec = EnrollRequest {
        token_type: Some(TokenType::Hotp),
        user: Some(UserRef {
            login: "alice".into(),
            realm: Some("ext".into()),
        }),
        otpkey: Some(Secret::new(KEY20)),
        ..Default::default()
    };
    let AdminResponse::Enrolled(e) = d.admin(AdminRequest::TokenEnroll(Box::new(spec))) else {
        panic!()
    };
    assert_eq!(e.token.realm.as_deref(), Some("ext"));
    assert_eq!(
        d.login("alice", HOTP[0]),
        Outcome::UnknownUser,
        "alice is not in the default realm"
    );
    assert!(accepted(&d.login("alice@ext", HOTP[0])));
    // A local caller whose uid equals alice's flatfile uid gains nothing: that uid is not a host
    // account's.
    let caller = Caller {
        uid: 4242,
        gid: 4242,
        pid: 1,
        is_admin: false,
        account: 4242,
    };
    let begin = Request::AuthBegin(AuthBegin {
        user: "alice@ext".into(),
        service: "lock".into(),
        ..Default::default()
    });
    let r = d.rt.block_on(pid::dispatch::dispatch(
        &d.state,
        &caller,
        &mut ConnState::default(),
        begin,
    ));
    assert!(matches!(
        r,
        Response::Error {
            code: ErrorCode::PermissionDenied,
            ..
        }
    ));
    let (code, msg) = d.admin_err(AdminRequest::TokenEnroll(Box::new(EnrollRequest {
        token_type: Some(TokenType::Hotp),
        user: Some(UserRef {
            login: "alice".into(),
            realm: Some("nowhere".into()),
        }),
        ..Default::default()
    })));
    assert_eq!(code, ErrorCode::NotFound);
    assert!(msg.contains("realm"), "{msg}");
}

#[test]
fn refusals_reach_the_audit_trail_even_when_nobody_waits_for_a_commit() {
    let d = Daemon::start();
    let nobody = Caller {
        uid: 65534,
        gid: 65534,
        pid: 7,
        is_admin: false,
        account: 65534,
    };
    let audit = Request::Admin(AdminRequest::AuditShow {
        user: None,
        before: None,
        limit: 5,
    });
    d.rt.block_on(pid::dispatch::dispatch(
        &d.state,
        &nobody,
        &mut ConnState::default(),
        audit,
    ));
    // Written by the flusher's idle round (at most a second later), not by a waiting caller.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if d.audit()
            .iter()
            .any(|e| e.caller_uid == 65534 && e.caller_pid == 7 && !e.success)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "refusal never reached the audit trail"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn wrong_otp_on_the_only_token_costs_no_pin_check() {
    let d = Daemon::start();
    let serial = d.enroll(TokenType::Hotp, "root", KEY20, Some("1234"), 6);
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
        let serial = d.enroll(TokenType::Hotp, "root", KEY20, Some("1234"), 6);
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
fn audit_records_past_keep_days_are_deleted_and_newer_ones_stay() {
    const T0: i64 = 1_111_111_109;
    let d = Daemon::start_with("[audit]\nkeep_days = 1\n", T0);
    d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
    assert!(accepted(&d.login("root", HOTP[0])));
    assert_eq!(
        d.rt.block_on(d.state.prune_audit()).unwrap(),
        0,
        "nothing is a day old yet"
    );
    d.clock.advance(2 * 86_400);
    assert!(accepted(&d.login("root", HOTP[1])));
    assert!(d.rt.block_on(d.state.prune_audit()).unwrap() > 0);
    let left = d.audit();
    assert!(
        left.iter().all(|e| e.time >= T0 + 2 * 86_400),
        "entries from two days ago are gone: {left:?}"
    );
    assert!(left.iter().any(|e| e.action == "auth" && e.success));
}

#[test]
fn with_keep_days_and_max_entries_0_the_audit_trail_is_kept_forever() {
    let d = Daemon::start_with("[audit]\nkeep_days = 0\nmax_entries = 0\n", 1_111_111_109);
    d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
    assert!(accepted(&d.login("root", HOTP[0])));
    let before = d.audit().len();
    d.clock.advance(100 * 365 * 86_400);
    assert!(accepted(&d.login("root", HOTP[1])));
    assert_eq!(d.rt.block_on(d.state.prune_audit()).unwrap(), 0);
    assert!(d.audit().len() > before);
}

#[test]
fn by_default_the_audit_trail_keeps_a_year() {
    let d = Daemon::start();
    d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
    assert!(accepted(&d.login("root", HOTP[0])));
    d.clock.advance(364 * 86_400);
    assert!(accepted(&d.login("root", HOTP[1])));
    assert_eq!(d.rt.block_on(d.state.prune_audit()).unwrap(), 0);
    d.clock.advance(2 * 86_400);
    assert!(accepted(&d.login("root", HOTP[2])));
    assert!(
        d.rt.block_on(d.state.prune_audit()).unwrap() > 0,
        "older than 365 days"
    );
}

#[test]
fn a_wrong_otp_is_answered_no_sooner_than_a_right_otp_with_a_wrong_pin() {
    // A real argon2 cost: a PIN check takes tens of milliseconds.
    let d = Daemon::start_with(
        "[argon2]\nmemory_kib = 4096\niterations = 2\nparallelism = 1\n\
         [tokens]\nmaxfail = 100",
        1_111_111_109,
    );
    d.enroll(TokenType::Hotp, "root", KEY20, Some("1234"), 6);
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
    let a = d.enroll(TokenType::Hotp, "root", KEY20, Some("1111"), 6);
    let b = d.enroll(TokenType::Hotp, "root", KEY20, Some("2222"), 6);
    assert!(!accepted(&d.login("root", "1111000000")));
    assert_eq!((d.show(&a).failcount, d.show(&b).failcount), (1, 0));
    // No PIN matches: privacyIDEA charges every token.
    assert!(!accepted(&d.login("root", "9999000000")));
    assert_eq!((d.show(&a).failcount, d.show(&b).failcount), (2, 1));
}

#[test]
fn token_count_survives_restarts_without_walking_the_store() {
    let d = Daemon::start();
    for i in 0..3 {
        let spec = EnrollRequest {
            token_type: Some(TokenType::Hotp),
            serial: Some(format!("C{i}")),
            ..Default::default()
        };
        d.admin(AdminRequest::TokenEnroll(Box::new(spec)));
    }
    d.admin(AdminRequest::TokenDelete {
        serial: "C1".into(),
    });
    let count = |d: &Daemon| match d.call(Request::Status) {
        Response::Status(s) => s.tokens,
        other => panic!("{other:?}"),
    };
    assert_eq!(count(&d), 2);
    let d = d.restart();
    assert_eq!(count(&d), 2);
    d.admin(AdminRequest::TokenDelete {
        serial: "C0".into(),
    });
    let d = d.restart();
    assert_eq!(count(&d), 1);
}

impl Daemon {
    fn login_from(&self, user: &str, pass: &str, service: &str, rhost: Option<&str>) -> Outcome {
        let mut c = self.client();
        let begin = AuthBegin {
            user: user.into(),
            service: service.into(),
            rhost: rhost.map(str::to_owned),
            authtok: Some(Secret::new(pass)),
            ..Default::default()
        };
        match c.call(&Request::AuthBegin(begin)).unwrap() {
            Response::AuthDone(o) => o,
            other => panic!("unexpected {other:?}"),
        }
    }
}

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
    d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
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
    d.enroll(TokenType::Hotp, "root", KEY20, Some("1234"), 6);
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
        "[[policy]]\nname = \"r\"\nscope = \"authentication\"\n\
         actions = { reset_all_user_tokens = true }\n",
        1_000_000,
    );
    let a = d.enroll(TokenType::Hotp, "root", KEY20, Some("1111"), 6);
    let b = d.enroll(TokenType::Hotp, "root", KEY20, Some("2222"), 6);
    assert!(!accepted(&d.login("root", "9999000000")));
    assert_eq!((d.show(&a).failcount, d.show(&b).failcount), (1, 1));
    assert!(accepted(&d.login("root", &format!("1111{}", HOTP[0]))));
    assert_eq!((d.show(&a).failcount, d.show(&b).failcount), (0, 0));
}

#[test]
fn without_the_policy_only_the_successful_token_is_reset() {
    let d = Daemon::start();
    let a = d.enroll(TokenType::Hotp, "root", KEY20, Some("1111"), 6);
    let b = d.enroll(TokenType::Hotp, "root", KEY20, Some("2222"), 6);
    assert!(!accepted(&d.login("root", "9999000000")));
    assert!(accepted(&d.login("root", &format!("1111{}", HOTP[0]))));
    assert_eq!((d.show(&a).failcount, d.show(&b).failcount), (0, 1));
}

#[test]
fn last_auth_refuses_a_token_unused_for_too_long_and_spends_the_otp() {
    let d = Daemon::start_with(
        "[[policy]]\nname = \"stale\"\nscope = \"authentication\"\n\
         actions = { last_auth = \"10d\" }\n",
        1_000_000,
    );
    let serial = d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
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

impl Daemon {
    /// AuthBegin with `first` as the authtok; then answer every further prompt from `then`.
    /// The prompt a login of `user` starts with (no answer is sent).
    fn first_prompt(&self, user: &str) -> String {
        let begin = AuthBegin {
            user: user.into(),
            service: "test".into(),
            ..Default::default()
        };
        match self.call(Request::AuthBegin(begin)) {
            Response::AuthStep {
                prompt: Prompt::Secret { text },
                ..
            } => text,
            other => panic!("expected a prompt, got {other:?}"),
        }
    }

    fn converse(&self, user: &str, first: &str, then: &[&str]) -> (Vec<String>, Outcome) {
        let mut c = self.client();
        let begin = AuthBegin {
            user: user.into(),
            service: "test".into(),
            authtok: Some(Secret::new(first)),
            ..Default::default()
        };
        let mut prompts = Vec::new();
        let mut answers = then.iter();
        let mut resp = c.call(&Request::AuthBegin(begin)).unwrap();
        loop {
            match resp {
                Response::AuthStep {
                    session,
                    prompt: Prompt::Secret { text },
                } => {
                    prompts.push(text);
                    let answer = answers.next().expect("a prompt nobody expected");
                    resp = c
                        .call(&Request::AuthContinue {
                            session,
                            answer: Secret::new(*answer),
                        })
                        .unwrap();
                }
                Response::AuthDone(o) => return (prompts, o),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

const CHALLENGE: &str = "[[policy]]\nname = \"cr\"\nscope = \"authentication\"\n\
                         actions = { challenge_response = \"hotp totp\" }\n";

#[test]
fn the_pin_alone_triggers_a_challenge_answered_by_the_otp_alone() {
    let d = Daemon::start_with(CHALLENGE, 1_000_000);
    let serial = d.enroll(TokenType::Hotp, "root", KEY20, Some("1234"), 6);
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
    let d = Daemon::start_with(CHALLENGE, 1_000_000);
    let serial = d.enroll(TokenType::Hotp, "root", KEY20, Some("1234"), 6);
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
    d.enroll(TokenType::Hotp, "root", KEY20, Some("1234"), 6);
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
    d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
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

/// `alice` in a flatfile realm `ext` whose password is `store-pw` (hash made by
/// `openssl passwd -6 -salt saltsalt store-pw`), and `bob` without a usable password.
fn userstore_daemon(policy: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("people");
    std::fs::write(
        &users,
        "alice:$6$saltsalt$xuy/UcYk1etEk/A1xkozvEUem8X2YRq1Fmf5GWgDTbF6/xtODl6xQrLiU/JGuNJIJMqqc.XEQbe3kSoonCovJ.:4242:4242::/:/bin/false\n\
         bob:*:4243:4243::/:/bin/false\n",
    )
    .unwrap();
    let extra = userstore_extra(dir.path(), policy);
    Daemon::start_in(dir, &extra, FixedClock::new(1_000_000))
}

/// The realm `ext` of the users in `DIR/people`, plus `policy`.
fn userstore_extra(dir: &std::path::Path, policy: &str) -> String {
    format!(
        "default_realm = \"ext\"\n[resolvers.people]\ntype = \"flatfile\"\nfile = \"{}\"\n\
         [realms.ext]\nresolvers = [\"people\"]\n{policy}",
        dir.join("people").display()
    )
}

#[test]
fn a_login_given_to_another_account_does_not_inherit_the_previous_owners_tokens() {
    let d = userstore_daemon("");
    let serial = d.enroll(TokenType::Hotp, "alice", KEY20, None, 6);
    assert!(accepted(&d.login("alice", HOTP[0])));
    // alice (uid 4242) leaves; the login name is given to a new person with another uid.
    let people = d.dir.path().join("people");
    std::fs::write(&people, "alice:*:5000:5000::/:/bin/false\n").unwrap();
    let extra = userstore_extra(d.dir.path(), "");
    let d = d.restart_with(&extra);
    assert_eq!(
        d.login("alice", HOTP[1]),
        Outcome::Reject {
            message: "This account changed since its tokens were enrolled; ask an administrator."
                .into()
        }
    );
    assert_eq!(d.show(&serial).count, 1, "the old token was not even tried");
    let (code, msg) = d.admin_err(AdminRequest::TokenEnroll(Box::new(EnrollRequest {
        token_type: Some(TokenType::Hotp),
        user: Some(UserRef {
            login: "alice".into(),
            realm: None,
        }),
        ..Default::default()
    })));
    assert_eq!(code, ErrorCode::TokenState, "{msg}");
    assert!(msg.contains("now names another account"), "{msg}");
    // Once the previous owner's token is gone, the new alice gets her own.
    d.admin(AdminRequest::TokenDelete { serial });
    let fresh = d.enroll(TokenType::Hotp, "alice", KEY20, None, 6);
    assert!(accepted(&d.login("alice", HOTP[0])));
    assert_eq!(d.show(&fresh).count, 1);
}

#[test]
fn otppin_userstore_takes_the_user_store_password_as_the_pin() {
    let d = userstore_daemon(
        "[[policy]]\nname = \"us\"\nscope = \"authentication\"\nactions = { otppin = \"userstore\" }\n",
    );
    // The token PIN is not what counts any more.
    d.enroll(TokenType::Hotp, "alice", KEY20, Some("1234"), 6);
    assert_eq!(d.first_prompt("alice"), "Password and one-time password: ");
    assert!(accepted(&d.login("alice", &format!("store-pw{}", HOTP[0]))));
    assert!(!accepted(&d.login("alice", &format!("1234{}", HOTP[1]))));
    assert!(!accepted(
        &d.login("alice", &format!("wrong-pw{}", HOTP[2]))
    ));
    assert!(!accepted(&d.login("alice", HOTP[3])), "no password");
    assert!(accepted(&d.login("alice", &format!("store-pw{}", HOTP[4]))));
}

#[test]
fn passthru_lets_a_user_without_tokens_in_with_the_store_password_only() {
    let d = userstore_daemon(
        "[[policy]]\nname = \"pt\"\nscope = \"authentication\"\nactions = { passthru = true }\n",
    );
    assert_eq!(d.first_prompt("alice"), "Password: ");
    assert!(accepted(&d.login("alice", "store-pw")));
    let (prompts, outcome) = d.converse("alice", "store-pw", &[]);
    assert!(prompts.is_empty() && accepted(&outcome), "{outcome:?}");
    assert!(!accepted(&d.login("alice", "wrong")));
    assert!(!accepted(&d.login("alice", "")));
    assert!(!accepted(&d.login("bob", "")), "'*' is no password");
    assert!(d
        .audit()
        .iter()
        .any(|e| e.success && e.message == "against userstore due to 'pt'"));
    // Once alice has a token, passthru no longer applies: the password alone fails.
    d.enroll(TokenType::Hotp, "alice", KEY20, None, 6);
    assert!(!accepted(&d.login("alice", "store-pw")));
    assert!(accepted(&d.login("alice", HOTP[0])));
}

#[test]
fn challenge_text_replaces_the_default_prompt_and_fills_tags() {
    let d = Daemon::start_with(
        &format!(
            "{CHALLENGE}[[policy]]\nname = \"ct\"\nscope = \"authentication\"\n\
             actions = {{ challenge_text = \"Code for {{user}} from {{serial}}: \" }}\n"
        ),
        1_000_000,
    );
    let serial = d.enroll(TokenType::Hotp, "root", KEY20, Some("1234"), 6);
    let (prompts, outcome) = d.converse("root", "1234", &[HOTP[0]]);
    assert_eq!(prompts, [format!("Code for root from {serial}: ")]);
    assert!(accepted(&outcome));
}

#[test]
fn auth_max_fail_refuses_logins_once_the_period_holds_that_many_failures() {
    let d = Daemon::start_with(
        "[[policy]]\nname = \"max\"\nscope = \"authentication\"\n\
         actions = { auth_max_fail = \"2/1m\" }\n",
        1_000_000,
    );
    let serial = d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
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
    let d = Daemon::start_with(
        "[[policy]]\nname = \"max\"\nscope = \"authentication\"\n\
         actions = { auth_max_success = \"1/1h\" }\n",
        1_000_000,
    );
    d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
    assert!(accepted(&d.login("root", HOTP[0])));
    assert!(!accepted(&d.login("root", HOTP[1])));
    let d = d.restart_with(
        "[[policy]]\nname = \"max\"\nscope = \"authentication\"\n\
         actions = { auth_max_success = \"1/1h\" }\n",
    );
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
        "[[policy]]\nname = \"strip\"\nscope = \"authentication\"\n\
         actions = { mangle = 'pass/^otp://' }\n",
        1_000_000,
    );
    d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
    assert!(accepted(&d.login("root", &format!("otp:{}", HOTP[0]))));
    assert!(accepted(&d.login("root", HOTP[1])));
}

#[test]
fn sms_and_email_texts_are_validated_and_u2f_facets_only_warns() {
    let cfg = |actions: &str| {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "socket = \"{d}/s\"\n[[policy]]\nname = \"p\"\nscope = \"authentication\"\nactions = {{ {actions} }}\n",
            d = dir.path().display()
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

impl Daemon {
    /// Send an admin request as `caller` (not root).
    fn admin_as(&self, caller: &Caller, req: AdminRequest) -> Response {
        self.rt.block_on(pid::dispatch::dispatch(
            &self.state,
            caller,
            &mut ConnState::default(),
            Request::Admin(req),
        ))
    }
}

/// The host account `nobody` (uid 65534, group nogroup), as a plain user or as a member of the
/// admin group.
fn nobody(is_admin: bool) -> Caller {
    Caller {
        uid: 65534,
        gid: 65534,
        pid: 1,
        is_admin,
        account: 65534,
    }
}

fn enroll_req(t: TokenType, user: Option<&str>, pin: Option<&str>) -> AdminRequest {
    AdminRequest::TokenEnroll(Box::new(EnrollRequest {
        token_type: Some(t),
        user: user.map(|u| UserRef {
            login: u.into(),
            realm: None,
        }),
        pin: pin.map(Secret::new),
        ..Default::default()
    }))
}

fn error_code(r: &Response) -> Option<ErrorCode> {
    match r {
        Response::Error { code, .. } => Some(*code),
        _ => None,
    }
}

#[test]
fn users_enroll_and_delete_their_own_tokens_only_as_user_policies_allow() {
    let policy = "[[policy]]\nname = \"self\"\nscope = \"user\"\nactions = { enroll = \"totp\", delete = true }\n";
    let d = Daemon::start();
    let me = nobody(false);
    assert_eq!(
        error_code(&d.admin_as(&me, enroll_req(TokenType::Totp, None, None))),
        Some(ErrorCode::PermissionDenied),
        "no user policy, no self-service"
    );
    let d = d.restart_with(policy);
    let root_token = d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
    let mine = match d.admin_as(&me, enroll_req(TokenType::Totp, None, None)) {
        Response::Admin(AdminResponse::Enrolled(e)) => e.token,
        other => panic!("unexpected {other:?}"),
    };
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
    assert!(matches!(
        d.admin_as(
            &me,
            AdminRequest::TokenDelete {
                serial: mine.serial.clone()
            }
        ),
        Response::Admin(AdminResponse::Done { .. })
    ));
    assert_eq!(
        d.show(&root_token).serial,
        root_token,
        "root's token untouched"
    );
}

#[test]
fn enrollment_policies_set_defaults_and_enforce_pin_rules_and_token_counts() {
    let d = Daemon::start_with(
        "[[policy]]\nname = \"enrol\"\nscope = \"enrollment\"\n\
         actions = { hotp_otplen = 8, hotp_hashlib = \"sha256\", otp_pin_minlength = 4, \
         otp_pin_contents = \"cn\", max_token_per_user = 1 }\n\
         [[policy]]\nname = \"self\"\nscope = \"user\"\nactions = { enroll = \"hotp\" }\n",
        1_000_000,
    );
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
        Response::Admin(AdminResponse::Enrolled(_))
    ));
}

#[test]
fn admin_policies_limit_admin_group_members_but_never_root() {
    let d = Daemon::start_with(
        "[[policy]]\nname = \"helpdesk\"\nscope = \"admin\"\nadmin_group = [\"nogroup\"]\n\
         actions = { tokenlist = true, reset = true }\n",
        1_000_000,
    );
    let serial = d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
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

#[test]
fn spass_is_the_pin_alone_and_never_an_empty_answer() {
    let d = Daemon::start_with(
        "[[policy]]\nname = \"kiosk\"\nscope = \"authentication\"\nservice = [\"kiosk\"]\n\
         actions = { otppin = \"none\" }\n",
        1_000_000,
    );
    let enrolled = d.admin(enroll_req(
        TokenType::Spass,
        Some("root"),
        Some("s3cret pass"),
    ));
    let AdminResponse::Enrolled(e) = enrolled else {
        panic!("unexpected {enrolled:?}")
    };
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
        token_type: Some(TokenType::Spass),
        user: Some(UserRef {
            login: "root".into(),
            realm: None,
        }),
        pin: Some(Secret::new("x")),
        digits: Some(6),
        ..Default::default()
    };
    let (code, _) = d.admin_err(AdminRequest::TokenEnroll(Box::new(with_digits.clone())));
    assert_eq!(code, ErrorCode::InvalidArgument);
    with_digits.digits = None;
    with_digits.pin = None;
    let AdminResponse::Enrolled(no_pin) = d.admin(AdminRequest::TokenEnroll(Box::new(with_digits)))
    else {
        panic!()
    };
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
        token_type: Some(TokenType::Daypassword),
        user: Some(UserRef {
            login: "root".into(),
            realm: None,
        }),
        otpkey: Some(Secret::new(KEY20)),
        ..Default::default()
    };
    let AdminResponse::Enrolled(e) = d.admin(AdminRequest::TokenEnroll(Box::new(spec.clone())))
    else {
        panic!()
    };
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
    let (code, msg) = d.admin_err(AdminRequest::TokenEnroll(Box::new(bad)));
    assert_eq!(code, ErrorCode::InvalidArgument, "{msg}");
}

fn enroll_spec(d: &Daemon, spec: EnrollRequest) -> protocol::Enrolled {
    match d.admin(AdminRequest::TokenEnroll(Box::new(spec))) {
        AdminResponse::Enrolled(e) => *e,
        other => panic!("unexpected {other:?}"),
    }
}

fn root_spec(t: TokenType) -> EnrollRequest {
    EnrollRequest {
        token_type: Some(t),
        user: Some(UserRef {
            login: "root".into(),
            realm: None,
        }),
        ..Default::default()
    }
}

#[test]
fn pw_is_pin_then_password() {
    let d = Daemon::start();
    let e = enroll_spec(
        &d,
        EnrollRequest {
            pin: Some(Secret::new("12")),
            password: Some(Secret::new("hunter2!")),
            ..root_spec(TokenType::Pw)
        },
    );
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
    let generated = enroll_spec(&d, root_spec(TokenType::Pw));
    assert_eq!(generated.codes.len(), 1);
    assert!(accepted(&d.login("root", generated.codes[0].expose())));
}

#[test]
fn a_registration_code_lets_in_once_and_is_gone() {
    let d = Daemon::start();
    let e = enroll_spec(&d, root_spec(TokenType::Registration));
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
    let (kind, _) = d.admin_err(AdminRequest::TokenEnroll(Box::new(EnrollRequest {
        password: Some(Secret::new("chosen")),
        ..root_spec(TokenType::Registration)
    })));
    assert_eq!(
        kind,
        ErrorCode::InvalidArgument,
        "the code is always generated"
    );
}

#[test]
fn a_paper_list_is_rfc_4226_and_used_in_order() {
    let d = Daemon::start();
    let e = enroll_spec(
        &d,
        EnrollRequest {
            otpkey: Some(Secret::new(KEY20)),
            count: Some(10),
            ..root_spec(TokenType::Paper)
        },
    );
    let codes: Vec<&str> = e.codes.iter().map(|c| c.expose()).collect();
    assert_eq!(codes, HOTP, "the printed list is RFC 4226 Appendix D");
    assert!(e.otpauth_url.is_empty());
    assert!(accepted(&d.login("root", HOTP[0])));
    assert!(
        accepted(&d.login("root", HOTP[5])),
        "skipping lines is fine"
    );
    assert!(!accepted(&d.login("root", HOTP[3])), "an earlier line");
    let (kind, _) = d.admin_err(AdminRequest::TokenEnroll(Box::new(EnrollRequest {
        count: Some(5000),
        ..root_spec(TokenType::Paper)
    })));
    assert_eq!(kind, ErrorCode::InvalidArgument);
}

#[test]
fn motp_codes_from_the_published_vectors_work_once() {
    // testdata/motp.tsv row 1: secret e3632a5cb2a4c3a5, PIN 1234, t=1111111111.
    let d = Daemon::start_with("", 1_111_111_111);
    let e = enroll_spec(
        &d,
        EnrollRequest {
            otpkey: Some(Secret::new("e3632a5cb2a4c3a5")),
            motppin: Some(Secret::new("1234")),
            ..root_spec(TokenType::Motp)
        },
    );
    assert!(e.codes.is_empty(), "a given secret is not echoed");
    assert!(accepted(&d.login("root", "e77ccc")));
    assert!(!accepted(&d.login("root", "e77ccc")), "replay");
    let (kind, msg) = d.admin_err(AdminRequest::TokenEnroll(Box::new(root_spec(
        TokenType::Motp,
    ))));
    assert_eq!(kind, ErrorCode::InvalidArgument);
    assert!(msg.contains("--motppin"), "{msg}");
}

#[test]
fn tans_work_once_each_in_any_order() {
    let d = Daemon::start();
    let e = enroll_spec(
        &d,
        EnrollRequest {
            count: Some(5),
            ..root_spec(TokenType::Tan)
        },
    );
    let tans: Vec<String> = e.codes.iter().map(|c| c.expose().to_owned()).collect();
    assert_eq!(tans.len(), 5);
    assert!(accepted(&d.login("root", &tans[3])));
    assert!(accepted(&d.login("root", &tans[0])), "any order");
    assert!(!accepted(&d.login("root", &tans[3])), "each once");
    assert_eq!(d.show(&e.token.serial).failcount, 1);
    let (kind, _) = d.admin_err(AdminRequest::TokenEnroll(Box::new(EnrollRequest {
        otpkey: Some(Secret::new(KEY20)),
        ..root_spec(TokenType::Tan)
    })));
    assert_eq!(kind, ErrorCode::InvalidArgument, "TANs are generated");
}

#[test]
fn an_application_specific_password_serves_only_its_service() {
    let d = Daemon::start();
    enroll_spec(
        &d,
        EnrollRequest {
            service: Some("dovecot".into()),
            password: Some(Secret::new("mail only")),
            ..root_spec(TokenType::Applspec)
        },
    );
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
    let (kind, msg) = d.admin_err(AdminRequest::TokenEnroll(Box::new(root_spec(
        TokenType::Applspec,
    ))));
    assert_eq!(kind, ErrorCode::InvalidArgument);
    assert!(msg.contains("--service"), "{msg}");
}

#[test]
fn a_yubikey_needs_its_aes_key_and_shows_a_generated_one_once() {
    let d = Daemon::start();
    let generated = enroll_spec(&d, root_spec(TokenType::Yubikey));
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
        let (kind, msg) = d.admin_err(AdminRequest::TokenEnroll(Box::new(bad)));
        assert_eq!(kind, ErrorCode::InvalidArgument, "{msg}");
    }
}

/// Start a login with `first`, read the challenge prompt, answer what `answer` makes of it.
fn answer_challenge(
    d: &Daemon,
    user: &str,
    first: &str,
    answer: impl Fn(&str) -> String,
) -> (String, Outcome) {
    let mut c = d.client();
    let begin = AuthBegin {
        user: user.into(),
        service: "test".into(),
        authtok: Some(Secret::new(first)),
        ..Default::default()
    };
    match c.call(&Request::AuthBegin(begin)).unwrap() {
        Response::AuthStep {
            session,
            prompt: Prompt::Secret { text },
        } => {
            let reply = answer(&text);
            match c
                .call(&Request::AuthContinue {
                    session,
                    answer: Secret::new(reply),
                })
                .unwrap()
            {
                Response::AuthDone(o) => (text, o),
                // A wrong answer is asked again: not accepted (yet).
                Response::AuthStep {
                    prompt: Prompt::Secret { text: again },
                    ..
                } => (text, Outcome::Reject { message: again }),
                other => panic!("unexpected {other:?}"),
            }
        }
        other => panic!("expected a challenge, got {other:?}"),
    }
}

#[test]
fn indexedsecret_asks_two_positions_after_the_pin() {
    let d = Daemon::start();
    enroll_spec(
        &d,
        EnrollRequest {
            pin: Some(Secret::new("1234")),
            password: Some(Secret::new("k9x2m7qz")),
            ..root_spec(TokenType::Indexedsecret)
        },
    );
    let secret: Vec<char> = "k9x2m7qz".chars().collect();
    let pick = |prompt: &str| -> String {
        let list = prompt
            .trim_start_matches("Please enter the positions ")
            .trim_end_matches(" of your secret: ");
        list.split(", ")
            .map(|p| secret[p.parse::<usize>().unwrap() - 1])
            .collect()
    };
    let (prompt, outcome) = answer_challenge(&d, "root", "1234", pick);
    assert!(
        prompt.starts_with("Please enter the positions "),
        "{prompt}"
    );
    assert!(accepted(&outcome), "{outcome:?}");
    let (_, outcome) = answer_challenge(&d, "root", "1234", |_| "zz".into());
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
    enroll_spec(
        &d,
        EnrollRequest {
            pin: Some(Secret::new("55")),
            questions,
            ..root_spec(TokenType::Question)
        },
    );
    let reply = |prompt: &str| -> String {
        let i: u32 = prompt
            .trim_start_matches("Favourite number ")
            .trim_end_matches("? ")
            .parse()
            .unwrap();
        format!("{}", i * 7)
    };
    let (prompt, outcome) = answer_challenge(&d, "root", "55", reply);
    assert!(prompt.starts_with("Favourite number "), "{prompt}");
    assert!(accepted(&outcome), "{outcome:?}");
    let (_, outcome) = answer_challenge(&d, "root", "55", |_| "0".into());
    assert!(!accepted(&outcome));
    let (kind, _) = d.admin_err(AdminRequest::TokenEnroll(Box::new(root_spec(
        TokenType::Question,
    ))));
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
        let (kind, msg) = d.admin_err(AdminRequest::TokenEnroll(Box::new(EnrollRequest {
            ocrasuite: Some(suite.into()),
            ..root_spec(TokenType::Ocra)
        })));
        assert_eq!(kind, ErrorCode::InvalidArgument, "{suite}: {msg}");
    }
    let e = enroll_spec(&d, root_spec(TokenType::Ocra));
    assert_eq!(
        e.codes[0].expose().len(),
        40,
        "a generated SHA-1 key, shown once"
    );
    let mut c = d.client();
    let begin = AuthBegin {
        user: "root".into(),
        service: "test".into(),
        authtok: Some(Secret::new("")),
        ..Default::default()
    };
    match c.call(&Request::AuthBegin(begin)).unwrap() {
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
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("admins");
    std::fs::write(
        &users,
        "alice:x:5001:5001::/:/bin/false\nbob:x:5002:5002::/:/bin/false\n",
    )
    .unwrap();
    let extra = format!(
        "[resolvers.local]\ntype = \"passwd\"\n[resolvers.people]\ntype = \"flatfile\"\nfile = \"{}\"\n\
         [realms.default]\nresolvers = [\"local\"]\n[realms.admins]\nresolvers = [\"people\"]\n",
        users.display()
    );
    // RFC 6238's SHA-256 vector time: bob's TOTP code is published for it.
    let d = Daemon::start_in(dir, &extra, FixedClock::new(1_111_111_109));
    let admin_token = |login: &str, spec: EnrollRequest| {
        enroll_spec(
            &d,
            EnrollRequest {
                user: Some(UserRef {
                    login: login.into(),
                    realm: Some("admins".into()),
                }),
                ..spec
            },
        )
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
    enroll_spec(
        &d,
        EnrollRequest {
            foureyes: Some("admins:2".into()),
            ..root_spec(TokenType::FourEyes)
        },
    );
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
    let count = || match d.call(Request::Status) {
        Response::Status(s) => s.tokens,
        other => panic!("unexpected {other:?}"),
    };
    let before = count();
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
        let (code, msg) = d.admin_err(AdminRequest::TokenEnroll(Box::new(spec)));
        assert_eq!(code, ErrorCode::InvalidArgument, "{t:?}: {msg}");
        assert!(!msg.is_empty());
    }
    assert_eq!(count(), before, "nothing was stored");
}

#[test]
fn a_yubikey_challenges_on_the_pin_when_the_policy_lists_it() {
    let d = Daemon::start_with(
        "[[policy]]\nname = \"cr\"\nscope = \"authentication\"\n\
         actions = { challenge_response = \"yubikey\" }\n",
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
    enroll_spec(
        &d,
        EnrollRequest {
            otpkey: Some(Secret::new("9163508031b20d2fbb1868954e041729")),
            digits: Some(48),
            pin: Some(Secret::new("77")),
            ..root_spec(TokenType::Yubikey)
        },
    );
    let (prompts, outcome) = d.converse("root", "77", &[&otp]);
    assert_eq!(prompts, ["please enter otp: "]);
    assert!(accepted(&outcome), "{outcome:?}");
}

// ---- MachineTokens: SSH keys and LUKS ----

/// A key made with `ssh-keygen -t ed25519 -C test@pi`; its fingerprint from `ssh-keygen -lf`.
const SSH_ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDdTLW29cPwskm6rab6rRQyxyOkpZgO/IVrgV5dICtJJ test@pi";
const SSH_ED25519_FP: &str = "SHA256:r7poyH+Ql7iXdLLkAv18U5bbgDwsBeWKyjZCFGEKH+k";

fn caller(uid: u32, is_admin: bool) -> Caller {
    Caller {
        uid,
        gid: uid,
        pid: 1,
        is_admin,
        account: uid,
    }
}

impl Daemon {
    fn dispatch_as(&self, who: &Caller, req: Request) -> Response {
        self.rt.block_on(pid::dispatch::dispatch(
            &self.state,
            who,
            &mut ConnState::default(),
            req,
        ))
    }

    fn enroll_sshkey(&self, user: &str, key: &str) -> protocol::Enrolled {
        enroll_spec(
            self,
            EnrollRequest {
                sshkey: Some(key.into()),
                user: Some(UserRef {
                    login: user.into(),
                    realm: None,
                }),
                ..root_spec(TokenType::Sshkey)
            },
        )
    }

    fn attach(&self, serial: &str, app: MachineApp, options: MachineOptions) -> Response {
        self.call(Request::Admin(AdminRequest::MachineAttach(Box::new(
            MachineAttach {
                serial: serial.into(),
                app,
                host: None,
                options,
            },
        ))))
    }

    fn ssh_keys(&self, login: &str, service_id: Option<&str>) -> Vec<String> {
        match self.call(Request::SshKeys {
            user: login.into(),
            service_id: service_id.map(Into::into),
        }) {
            Response::SshKeys { keys } => keys,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn machines(&self) -> Vec<MachineTokenInfo> {
        match self.admin(AdminRequest::MachineList {
            serial: None,
            app: None,
            host: None,
        }) {
            AdminResponse::Machines(m) => m,
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn ssh_user(login: &str) -> MachineOptions {
    MachineOptions {
        user: Some(login.into()),
        ..Default::default()
    }
}

fn is_done(r: &Response) -> bool {
    matches!(r, Response::Admin(AdminResponse::Done { .. }))
}

#[test]
fn an_sshkey_token_shows_its_fingerprint_and_takes_no_part_in_pam_logins() {
    let d = Daemon::start();
    let e = d.enroll_sshkey("root", SSH_ED25519);
    let details: std::collections::HashMap<_, _> = e.token.details.iter().cloned().collect();
    assert_eq!(details["fingerprint"], SSH_ED25519_FP);
    assert_eq!(details["key type"], "ssh-ed25519");
    assert!(e.otpauth_url.is_empty() && e.otpkey_base32.is_empty());
    // A user whose only token is a key has no token for PAM.
    assert_eq!(d.login("root", HOTP[0]), Outcome::NoToken);
    // Next to an OTP token the key is invisible: no prompt change, no fail counter.
    d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
    assert!(!accepted(&d.login("root", "000000")));
    assert!(accepted(&d.login("root", HOTP[0])));
    assert_eq!(d.show(&e.token.serial).failcount, 0);
}

#[test]
fn weak_or_malformed_ssh_keys_are_refused_and_nothing_is_stored() {
    let d = Daemon::start();
    for (key, says) in [
        ("", "empty"),
        ("ssh-ed25519 AAAA", "not an OpenSSH public key"),
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP1/U4EddRIpUt9KnC7s5Of2EbdSPO9EAMMeP4C2USZpRV1AIlH7WT2NWPq/xfW6MPbLm1Vs14E7gB00b/JmYLdrmVClpJ+f6AR7ECLCT7up1/63xhv4O1fnxqimFQ8E+4P208UewwI1VBNaFpEy9nXzrith1yrv8iIDGZ3RSAHHAAAAFQCXYFCPFSMLzLKSuYKi64QL8Fgc9QAAAIEA9+GghdabPd7LvKtcNrhXuXmUr7v6OuqC+VdMCz0HgmdRWVeOutRZT+ZxBxCBgLRJFnEj6EwoFhO3zwkyjMim4TwWeotUfI0o4KOuHiuzpnWRbqN/C/ohNWLx+2J6ASQ7zKTxvqhRkImog9/hWuWfBpKLZl6Ae1UlZAFMO/7PSSoAAACBAPJRJbKL/+pv5Ar5dB2pUvwU6kjZmUvKXMLhmv2tI7tFOjXUm+Eiq5s7mWV3Ld4lF+RJtL/7cFJbnKlDTlLKbwr9nEYeMiEwdl8rZ6oeSNy6dO1ux7pJk1ZA06pv+TdaXoTs7ynFvpT4Ie+0LFp1hYYjESmXchr4Z9EcpbsLckx8 x", "DSA"),
        (&format!("{SSH_ED25519}\n{SSH_ED25519}"), "one"),
        (&format!("command=\"sh\" {SSH_ED25519}"), "not an OpenSSH public key"),
    ] {
        let (code, msg) = d.admin_err(AdminRequest::TokenEnroll(Box::new(EnrollRequest {
            sshkey: Some(key.into()),
            ..root_spec(TokenType::Sshkey)
        })));
        assert_eq!(code, ErrorCode::InvalidArgument, "{key:?}: {msg}");
        assert!(msg.contains(says), "{key:?}: {msg}");
    }
    let (code, _) = d.admin_err(AdminRequest::TokenEnroll(Box::new(EnrollRequest {
        sshkey: Some(SSH_ED25519.into()),
        pin: Some(Secret::new("1234")),
        ..root_spec(TokenType::Sshkey)
    })));
    assert_eq!(code, ErrorCode::InvalidArgument, "a key has no PIN");
    assert_eq!(d.state.store.count_tokens(), 0);
}

#[test]
fn ssh_keys_are_given_for_usable_attached_tokens_and_the_asked_login_only() {
    let d = Daemon::start();
    let serial = d.enroll_sshkey("root", SSH_ED25519).token.serial;
    assert!(
        d.ssh_keys("root", None).is_empty(),
        "enrolled is not attached"
    );
    assert!(is_done(&d.attach(
        &serial,
        MachineApp::Ssh,
        MachineOptions::default()
    )));
    assert_eq!(d.ssh_keys("root", None), [SSH_ED25519]);
    assert!(
        d.ssh_keys("alice", None).is_empty(),
        "attached for root only"
    );
    d.admin(AdminRequest::TokenDisable {
        serial: serial.clone(),
    });
    assert!(d.ssh_keys("root", None).is_empty(), "disabled");
    d.admin(AdminRequest::TokenEnable {
        serial: serial.clone(),
    });
    d.set(
        &serial,
        TokenSettings {
            validity_end: Some(Some(d.state.clock.now() - 1)),
            ..Default::default()
        },
    );
    assert!(d.ssh_keys("root", None).is_empty(), "expired");
    d.set(
        &serial,
        TokenSettings {
            validity_end: Some(None),
            ..Default::default()
        },
    );
    assert_eq!(d.ssh_keys("root", None).len(), 1);
    // A key attached for a service id is given to every host that asks for that service.
    let other = d
        .enroll_sshkey("root", &SSH_ED25519.replace("test@pi", "svc"))
        .token
        .serial;
    let r = d.call(Request::Admin(AdminRequest::MachineAttach(Box::new(
        MachineAttach {
            serial: other,
            app: MachineApp::Ssh,
            host: Some("web-9".into()),
            options: MachineOptions {
                user: Some("deploy".into()),
                service_id: Some("web".into()),
                ..Default::default()
            },
        },
    ))));
    assert!(is_done(&r), "{r:?}");
    assert_eq!(d.ssh_keys("deploy", Some("web")).len(), 1);
    assert!(
        d.ssh_keys("deploy", None).is_empty(),
        "attached to web-9, not here"
    );
    d.admin(AdminRequest::TokenRevoke { serial });
    assert!(d.ssh_keys("root", None).is_empty(), "revoked");
}

#[test]
fn only_root_and_the_keys_users_may_ask_for_ssh_keys() {
    let d = Daemon::start();
    let serial = d.enroll_sshkey("root", SSH_ED25519).token.serial;
    d.attach(&serial, MachineApp::Ssh, MachineOptions::default());
    let ask = Request::SshKeys {
        user: "root".into(),
        service_id: None,
    };
    // nobody is the default keys user (sshd's AuthorizedKeysCommandUser).
    let nobody = caller(65534, false);
    assert!(matches!(
        d.dispatch_as(&nobody, ask.clone()),
        Response::SshKeys { keys } if keys.len() == 1
    ));
    for who in [caller(1, false), caller(1000, true)] {
        match d.dispatch_as(&who, ask.clone()) {
            Response::Error { code, .. } => assert_eq!(code, ErrorCode::PermissionDenied),
            other => panic!("uid {} got {other:?}", who.uid),
        }
    }
    let d = d.restart_with("[ssh]\nkeys_users = []\n");
    assert!(matches!(
        d.dispatch_as(&nobody, ask),
        Response::Error {
            code: ErrorCode::PermissionDenied,
            ..
        }
    ));
    assert!(d
        .audit()
        .iter()
        .any(|e| e.action == "ssh keys" && e.user.as_deref() == Some("root") && e.success));
}

#[test]
fn attachments_are_validated_audited_and_removed_with_their_token() {
    let d = Daemon::start();
    let key = d.enroll_sshkey("root", SSH_ED25519).token.serial;
    let hotp = d.enroll(TokenType::Hotp, "root", KEY20, None, 6);
    let refused = |r: Response, code: ErrorCode, says: &str| match r {
        Response::Error { code: c, message } => {
            assert_eq!(c, code, "{message}");
            assert!(message.contains(says), "{message}");
        }
        other => panic!("expected a refusal saying {says:?}, got {other:?}"),
    };
    refused(
        d.attach(&hotp, MachineApp::Ssh, MachineOptions::default()),
        ErrorCode::InvalidArgument,
        "sshkey",
    );
    refused(
        d.attach(&hotp, MachineApp::Luks, MachineOptions::default()),
        ErrorCode::InvalidArgument,
        "UBOM",
    );
    refused(
        d.attach(&key, MachineApp::Offline, MachineOptions::default()),
        ErrorCode::InvalidArgument,
        "hotp",
    );
    refused(
        d.attach(
            &key,
            MachineApp::Ssh,
            MachineOptions {
                slot: Some(1),
                ..Default::default()
            },
        ),
        ErrorCode::InvalidArgument,
        "--slot",
    );
    refused(
        d.attach(&key, MachineApp::Ssh, ssh_user("two words")),
        ErrorCode::InvalidArgument,
        "--user",
    );
    refused(
        d.attach("NOSUCH", MachineApp::Ssh, MachineOptions::default()),
        ErrorCode::NotFound,
        "NOSUCH",
    );
    refused(
        d.call(Request::Admin(AdminRequest::MachineAttach(Box::new(
            MachineAttach {
                serial: key.clone(),
                app: MachineApp::Ssh,
                host: Some("bad host/name".into()),
                options: MachineOptions::default(),
            },
        )))),
        ErrorCode::InvalidArgument,
        "host name",
    );
    assert!(d.machines().is_empty(), "no refused attach left anything");

    assert!(is_done(&d.attach(&key, MachineApp::Ssh, ssh_user("alice"))));
    refused(
        d.attach(&key, MachineApp::Ssh, ssh_user("bob")),
        ErrorCode::AlreadyExists,
        "detach it first",
    );
    let offline = d.attach(
        &hotp,
        MachineApp::Offline,
        MachineOptions {
            count: Some(5),
            ..Default::default()
        },
    );
    assert!(is_done(&offline), "{offline:?}");
    let list = d.machines();
    assert_eq!(list.len(), 2);
    let off = list.iter().find(|m| m.app == MachineApp::Offline).unwrap();
    assert_eq!(
        (off.options.count, off.options.rounds),
        (Some(5), Some(6549))
    );
    let ssh = list.iter().find(|m| m.app == MachineApp::Ssh).unwrap();
    assert_eq!(ssh.options.user.as_deref(), Some("alice"));
    assert_eq!(ssh.host, d.state.hostname);
    assert!(d
        .audit()
        .iter()
        .any(|e| e.action == "machine attach" && e.serial.as_deref() == Some(key.as_str())));

    d.admin(AdminRequest::TokenDelete { serial: key });
    assert_eq!(d.machines().len(), 1, "the key's assignment went with it");
    let r = d.call(Request::Admin(AdminRequest::MachineDetach {
        serial: hotp.clone(),
        app: MachineApp::Offline,
        host: None,
    }));
    assert!(is_done(&r), "{r:?}");
    assert!(d.machines().is_empty());
    refused(
        d.call(Request::Admin(AdminRequest::MachineDetach {
            serial: hotp,
            app: MachineApp::Offline,
            host: None,
        })),
        ErrorCode::NotFound,
        "not attached",
    );
}

#[test]
fn users_cannot_attach_their_own_tokens_to_machines() {
    let d = Daemon::start_with(
        "[[policy]]\nname = \"self\"\nscope = \"user\"\nactions = { enroll = \"sshkey\", delete = true }\n",
        1_111_111_109,
    );
    let serial = d.enroll_sshkey("nobody", SSH_ED25519).token.serial;
    let attach = Request::Admin(AdminRequest::MachineAttach(Box::new(MachineAttach {
        serial,
        app: MachineApp::Ssh,
        host: None,
        options: ssh_user("root"),
    })));
    match d.dispatch_as(&caller(65534, false), attach) {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::PermissionDenied),
        other => panic!("self-service attached a key: {other:?}"),
    }
    assert!(d.machines().is_empty());
}

#[test]
fn luks_responses_are_the_yubikeys_answer_and_only_root_gets_them() {
    let d = Daemon::start();
    // testdata/luks_hmac.tsv, first vector.
    let serial = enroll_spec(
        &d,
        EnrollRequest {
            serial: Some("UBOM12345678_2".into()),
            otpkey: Some(Secret::new(KEY20)),
            ..root_spec(TokenType::Totp)
        },
    )
    .token
    .serial;
    let r = d.attach(
        &serial,
        MachineApp::Luks,
        MachineOptions {
            slot: Some(1),
            device: Some("/dev/vdb".into()),
            ..Default::default()
        },
    );
    assert!(is_done(&r), "{r:?}");
    let ask = || {
        Request::Admin(AdminRequest::LuksResponses {
            password: Secret::new("lukspassword"),
            host: None,
        })
    };
    match d.call(ask()) {
        Response::Admin(AdminResponse::LuksResponses(items)) => {
            assert_eq!(items.len(), 1);
            assert_eq!(
                items[0].response.expose(),
                "04b30deb5dcf72ad8aa0a9afa9b4d24d71617db5"
            );
            assert_eq!(
                (items[0].slot, items[0].device.as_deref()),
                (Some(1), Some("/dev/vdb"))
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // An admin-group member manages tokens, but does not get disk passphrases.
    match d.dispatch_as(&caller(1000, true), ask()) {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::PermissionDenied),
        other => panic!("unexpected {other:?}"),
    }
    d.admin(AdminRequest::TokenDisable { serial });
    match d.call(ask()) {
        Response::Admin(AdminResponse::LuksResponses(items)) => {
            assert!(items.is_empty(), "a disabled token opens nothing")
        }
        other => panic!("unexpected {other:?}"),
    }
    // Neither the password nor the secret reach the audit trail.
    for e in d.audit() {
        assert!(!e.message.contains("lukspassword") && !e.message.contains(KEY20));
    }
}
