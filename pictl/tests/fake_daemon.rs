//! pictl against a tiny scripted daemon on a real Unix socket, speaking the real framing.

// The helpers below are test code outside `#[test]` functions: a broken fixture must fail loudly.
#![allow(clippy::unwrap_used, clippy::panic)]

use pictl::{run_args, Exit, Io};
use protocol::frame::{read_frame, write_frame};
use protocol::{
    AdminRequest, AdminResponse, AuditEntry, Enrolled, ErrorCode, FrameError, HashAlgorithm,
    Outcome, Prompt, Request, Response, Secret, StatusInfo, TokenInfo, TokenType,
};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::thread::JoinHandle;

struct FakeDaemon {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    thread: JoinHandle<Vec<Request>>,
}

impl FakeDaemon {
    /// Serve one connection, answering each request with `script`; the thread returns what it
    /// was asked.
    fn start(mut script: impl FnMut(&Request) -> Response + Send + 'static) -> FakeDaemon {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("pid.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let Ok((mut stream, _)) = listener.accept() else {
                return seen;
            };
            loop {
                match read_frame::<_, Request>(&mut stream) {
                    Ok(request) => {
                        let answer = script(&request);
                        seen.push(request);
                        write_frame(&mut stream, &answer).unwrap();
                    }
                    Err(FrameError::Closed) => return seen,
                    Err(e) => panic!("fake daemon: {e}"),
                }
            }
        });
        FakeDaemon {
            _dir: dir,
            socket,
            thread,
        }
    }

    fn requests(self) -> Vec<Request> {
        self.thread.join().unwrap()
    }
}

struct Run {
    exit: Exit,
    stdout: String,
    stderr: String,
}

fn pictl(socket: &std::path::Path, args: &[&str], stdin: &str) -> Run {
    let mut input = stdin.as_bytes();
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut io = Io {
        stdin: &mut input,
        stdout: &mut stdout,
        stderr: &mut stderr,
        stdin_is_terminal: false,
        stdout_is_terminal: false,
    };
    let socket = socket.to_str().unwrap();
    let argv = ["pictl", "--socket", socket]
        .into_iter()
        .chain(args.iter().copied());
    let exit = run_args(argv, &mut io);
    Run {
        exit,
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

fn token(serial: &str, user: &str) -> TokenInfo {
    TokenInfo {
        serial: serial.to_owned(),
        token_type: TokenType::Totp,
        user: Some(user.to_owned()),
        realm: Some("default".into()),
        active: true,
        revoked: false,
        locked: false,
        failcount: 0,
        maxfail: 10,
        count: 0,
        description: String::new(),
        digits: 6,
        hash: HashAlgorithm::Sha1,
        period: Some(30),
        count_window: 10,
        time_window: Some(180),
        time_shift: None,
        has_pin: false,
        count_auth: 0,
        count_auth_max: 0,
        count_auth_success: 0,
        count_auth_success_max: 0,
        validity_start: None,
        validity_end: None,
        created: 1_700_000_000,
        last_auth: None,
        failcounter_exceeded_at: None,
        details: Vec::new(),
    }
}

/// Two pages: the first ends at TOTP0001, the second holds TOTP0002 and is the last.
fn two_pages(request: &Request) -> Response {
    let Request::Admin(AdminRequest::TokenList { after, .. }) = request else {
        panic!("expected a token list, got {request:?}");
    };
    let (tokens, next) = match after.as_deref() {
        None => (
            vec![token("TOTP0001", "alice")],
            Some("TOTP0001".to_owned()),
        ),
        Some("TOTP0001") => (vec![token("TOTP0002", "bob")], None),
        Some(other) => panic!("unexpected page after {other}"),
    };
    Response::Admin(AdminResponse::Tokens { tokens, next })
}

#[test]
fn token_list_prints_the_tokens_of_every_page() {
    let daemon = FakeDaemon::start(two_pages);
    let run = pictl(&daemon.socket, &["token", "list"], "");
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert!(run.stdout.starts_with("SERIAL"), "{}", run.stdout);
    assert!(
        run.stdout.contains("TOTP0001") && run.stdout.contains("alice"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("TOTP0002") && run.stdout.contains("bob"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let requests = daemon.requests();
    assert_eq!(requests.len(), 2);
    assert!(matches!(
        &requests[0],
        Request::Admin(AdminRequest::TokenList { after: None, limit, .. }) if *limit == protocol::admin::MAX_PAGE
    ));
}

#[test]
fn token_list_json_is_one_document_with_every_token() {
    let daemon = FakeDaemon::start(two_pages);
    let run = pictl(&daemon.socket, &["--json", "token", "list"], "");
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let serials: Vec<&str> = doc["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["serial"].as_str().unwrap())
        .collect();
    assert_eq!(serials, ["TOTP0001", "TOTP0002"]);
    assert_eq!(doc["tokens"][1]["user"], "bob");
}

#[test]
fn a_list_that_does_not_advance_is_refused_instead_of_looping() {
    let daemon = FakeDaemon::start(|_| {
        Response::Admin(AdminResponse::Tokens {
            tokens: vec![token("TOTP0001", "alice")],
            next: Some("TOTP0001".into()),
        })
    });
    let run = pictl(&daemon.socket, &["token", "list"], "");
    assert_eq!(run.exit, Exit::Failed);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(run.stderr.contains("pid bug"), "{}", run.stderr);
    assert_eq!(daemon.requests().len(), 2);
}

#[test]
fn permission_denied_exits_1_with_the_admin_group_hint() {
    let daemon = FakeDaemon::start(|_| Response::Error {
        code: ErrorCode::PermissionDenied,
        message: "uid 1000 may not administer tokens".into(),
    });
    let run = pictl(&daemon.socket, &["token", "delete", "TOTP0001"], "");
    assert_eq!(run.exit, Exit::Failed);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains("uid 1000 may not administer tokens"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("admin_group"), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("may not administer tokens").count(),
        1,
        "printed once: {}",
        run.stderr
    );
    assert_eq!(
        run.stderr.lines().count(),
        2,
        "the message, then the advice below it: {}",
        run.stderr
    );
}

#[test]
fn permission_denied_with_json_is_an_error_document() {
    let daemon = FakeDaemon::start(|_| Response::Error {
        code: ErrorCode::PermissionDenied,
        message: "no".into(),
    });
    let run = pictl(&daemon.socket, &["--json", "token", "show", "S"], "");
    assert_eq!(run.exit, Exit::Failed);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["error"]["code"], "permission_denied");
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains("admin_group"));
}

#[test]
fn missing_socket_exits_3_and_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("not-there.sock");
    let run = pictl(&socket, &["token", "list"], "");
    assert_eq!(run.exit, Exit::Unreachable);
    assert!(
        run.stderr.contains(socket.to_str().unwrap()),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("systemctl status pid"),
        "{}",
        run.stderr
    );
}

#[test]
fn enroll_sends_the_piped_pin_and_prints_json() {
    let daemon = FakeDaemon::start(|request| {
        let Request::Admin(AdminRequest::TokenEnroll(enroll)) = request else {
            panic!("expected an enrollment, got {request:?}");
        };
        let mut info = token(enroll.serial.as_deref().unwrap_or("TOTP0009"), "alice");
        info.digits = enroll.digits.unwrap_or(6);
        Response::Admin(AdminResponse::Enrolled(Box::new(Enrolled {
            token: info,
            otpauth_url: Secret::new("otpauth://totp/pi:alice?secret=JBSWY3DPEHPK3PXP"),
            otpkey_base32: Secret::new("JBSWY3DPEHPK3PXP"),
            codes: Vec::new(),
        })))
    });
    let run = pictl(
        &daemon.socket,
        &[
            "--json", "token", "enroll", "totp", "--user", "alice", "--digits", "8", "--pin", "-",
        ],
        "4711\n",
    );
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["serial"], "TOTP0009");
    assert_eq!(doc["type"], "totp");
    assert_eq!(
        doc["otpauth_url"],
        "otpauth://totp/pi:alice?secret=JBSWY3DPEHPK3PXP"
    );
    assert_eq!(doc["otpkey_base32"], "JBSWY3DPEHPK3PXP");
    assert_eq!(doc["token"]["digits"], 8);
    let requests = daemon.requests();
    let Request::Admin(AdminRequest::TokenEnroll(sent)) = &requests[0] else {
        panic!("{requests:?}");
    };
    assert_eq!(sent.pin.as_ref().map(Secret::expose), Some("4711"));
    assert_eq!(sent.token_type, Some(TokenType::Totp));
    assert!(sent.otpkey.is_none(), "the key is generated by default");
}

#[test]
fn enroll_with_qr_draws_it_even_into_a_pipe() {
    let daemon = FakeDaemon::start(|_| {
        Response::Admin(AdminResponse::Enrolled(Box::new(Enrolled {
            token: token("TOTP0009", "alice"),
            otpauth_url: Secret::new("otpauth://totp/pi:alice?secret=JBSWY3DPEHPK3PXP"),
            otpkey_base32: Secret::new("JBSWY3DPEHPK3PXP"),
            codes: Vec::new(),
        })))
    });
    let run = pictl(
        &daemon.socket,
        &["token", "enroll", "totp", "--user", "alice", "--qr"],
        "",
    );
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert!(run.stdout.contains("TOTP0009"), "{}", run.stdout);
    assert!(run.stdout.contains('█'), "{}", run.stdout);
    assert!(!run.stdout.contains('\x1b'), "no escapes into a pipe");
}

#[test]
fn auth_test_answers_prompts_from_stdin_and_reports_accept() {
    let daemon = FakeDaemon::start(|request| match request {
        Request::AuthBegin(_) => Response::AuthStep {
            session: 7,
            prompt: Prompt::Info {
                text: "Welcome".into(),
            },
        },
        Request::AuthContinue { answer, .. } if answer.is_empty() => Response::AuthStep {
            session: 7,
            prompt: Prompt::Secret {
                text: "PIN+OTP: ".into(),
            },
        },
        Request::AuthContinue { answer, .. } if answer.expose() == "4711123456" => {
            Response::AuthDone(Outcome::Accept {
                message: "welcome, alice".into(),
            })
        }
        other => panic!("unexpected {other:?}"),
    });
    let run = pictl(
        &daemon.socket,
        &["auth", "test", "--user", "alice"],
        "4711123456\n",
    );
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert_eq!(run.stdout, "accepted: welcome, alice\n");
    assert!(
        run.stderr.contains("Welcome") && run.stderr.contains("PIN+OTP: "),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("4711123456"),
        "the answer is never printed"
    );
    let requests = daemon.requests();
    let Request::AuthBegin(begin) = &requests[0] else {
        panic!("{requests:?}");
    };
    assert_eq!(
        (begin.user.as_str(), begin.service.as_str()),
        ("alice", "pictl")
    );
    assert_eq!(requests.len(), 3);
}

fn verdict_of(outcome: Outcome, json: bool) -> Run {
    let daemon = FakeDaemon::start(move |_| Response::AuthDone(outcome.clone()));
    let mut args = vec!["auth", "test", "--user", "bob"];
    if json {
        args.insert(0, "--json");
    }
    pictl(&daemon.socket, &args, "")
}

#[test]
fn auth_test_verdicts_map_to_exit_codes_and_hints() {
    let reject = verdict_of(
        Outcome::Reject {
            message: "wrong otp value".into(),
        },
        false,
    );
    assert_eq!(reject.exit, Exit::Failed);
    assert!(
        reject.stderr.contains("rejected: wrong otp value"),
        "{}",
        reject.stderr
    );

    let no_token = verdict_of(Outcome::NoToken, false);
    assert_eq!(no_token.exit, Exit::Failed);
    assert!(
        no_token
            .stderr
            .contains("pictl token enroll totp --user bob"),
        "{}",
        no_token.stderr
    );

    let unknown = verdict_of(Outcome::UnknownUser, false);
    assert_eq!(unknown.exit, Exit::Failed);
    assert!(
        unknown.stderr.contains("unknown user"),
        "{}",
        unknown.stderr
    );

    let unavailable = verdict_of(Outcome::Unavailable, false);
    assert_eq!(unavailable.exit, Exit::Unreachable);
    assert!(
        unavailable.stderr.contains("journalctl"),
        "{}",
        unavailable.stderr
    );
}

#[test]
fn auth_test_json_names_the_result() {
    for (outcome, result, exit) in [
        (
            Outcome::Accept {
                message: "ok".into(),
            },
            "accept",
            Exit::Ok,
        ),
        (
            Outcome::Reject {
                message: "no".into(),
            },
            "reject",
            Exit::Failed,
        ),
        (Outcome::NoToken, "no_token", Exit::Failed),
        (Outcome::UnknownUser, "unknown_user", Exit::Failed),
        (Outcome::Unavailable, "unavailable", Exit::Unreachable),
    ] {
        let run = verdict_of(outcome, true);
        assert_eq!(run.exit, exit, "{result}");
        let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(doc["result"], result);
        assert!(doc["message"].is_string());
    }
}

#[test]
fn auth_test_gives_up_after_sixteen_prompts() {
    let daemon = FakeDaemon::start(|_| Response::AuthStep {
        session: 1,
        prompt: Prompt::Info {
            text: "again".into(),
        },
    });
    let run = pictl(&daemon.socket, &["auth", "test", "--user", "alice"], "");
    assert_eq!(run.exit, Exit::Failed);
    assert!(run.stderr.contains("more than 16"), "{}", run.stderr);
    // AuthBegin plus one answer per prompt.
    assert_eq!(daemon.requests().len(), 1 + 16);
}

#[test]
fn auth_test_without_an_answer_on_stdin_is_a_usage_error() {
    let daemon = FakeDaemon::start(|_| Response::AuthStep {
        session: 1,
        prompt: Prompt::Secret {
            text: "OTP:".into(),
        },
    });
    let run = pictl(&daemon.socket, &["auth", "test", "--user", "alice"], "");
    assert_eq!(run.exit, Exit::Usage);
    assert!(run.stderr.contains("one line per prompt"), "{}", run.stderr);
}

fn audit_entry(seq: u64) -> AuditEntry {
    AuditEntry {
        seq,
        time: 1_700_000_000 + seq as i64,
        caller_uid: 0,
        caller_pid: 1,
        action: "auth".into(),
        user: Some("alice".into()),
        realm: Some("default".into()),
        serial: Some("TOTP0001".into()),
        token_type: Some("totp".into()),
        service: Some("sshd".into()),
        rhost: None,
        success: seq & 1 == 0,
        message: format!("entry {seq}"),
    }
}

#[test]
fn audit_show_pages_back_until_the_limit() {
    // Entries 10, 9, 8 … newest first, two per page.
    let daemon = FakeDaemon::start(|request| {
        let Request::Admin(AdminRequest::AuditShow { before, limit, .. }) = request else {
            panic!("{request:?}");
        };
        let top = before.unwrap_or(11) - 1;
        let entries: Vec<_> = (0..u64::from(*limit).min(2))
            .map(|i| audit_entry(top - i))
            .collect();
        let next = entries.last().map(|e| e.seq);
        Response::Admin(AdminResponse::Audit { entries, next })
    });
    let run = pictl(&daemon.socket, &["audit", "show", "--limit", "3"], "");
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    let rows: Vec<&str> = run.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{}", run.stdout);
    assert!(
        rows[0].ends_with("entry 10") && rows[2].ends_with("entry 8"),
        "{}",
        run.stdout
    );
    assert_eq!(daemon.requests().len(), 2);
}

#[test]
fn status_shows_uptime_for_humans() {
    let daemon = FakeDaemon::start(|_| {
        Response::Status(StatusInfo {
            version: "0.1.0".into(),
            protocol: 1,
            store_path: "/var/lib/pi/db".into(),
            tokens: 3,
            uptime_secs: 3 * 3600 + 2 * 60 + 5,
            caller_is_admin: true,
            notices: Vec::new(),
        })
    });
    let run = pictl(&daemon.socket, &["status"], "");
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert!(run.stdout.contains("3h 2m"), "{}", run.stdout);
    assert!(run.stdout.contains("/var/lib/pi/db"), "{}", run.stdout);
}

#[test]
fn a_version_mismatch_is_treated_as_unreachable() {
    let daemon = FakeDaemon::start(|_| Response::Error {
        code: ErrorCode::VersionMismatch,
        message: "protocol 2 expected".into(),
    });
    let run = pictl(&daemon.socket, &["status"], "");
    assert_eq!(run.exit, Exit::Unreachable);
    assert!(run.stderr.contains("matching versions"), "{}", run.stderr);
}

#[test]
fn an_answer_that_does_not_fit_the_request_is_a_protocol_error() {
    let daemon = FakeDaemon::start(|_| Response::AuthDone(Outcome::NoToken));
    let run = pictl(&daemon.socket, &["token", "show", "S1"], "");
    assert_eq!(run.exit, Exit::Unreachable);
    assert!(run.stderr.contains("different releases"), "{}", run.stderr);
}

#[test]
fn set_sends_only_the_given_settings() {
    let daemon = FakeDaemon::start(|_| {
        Response::Admin(AdminResponse::Done {
            message: String::new(),
        })
    });
    let run = pictl(
        &daemon.socket,
        &[
            "token",
            "set",
            "S1",
            "--maxfail",
            "5",
            "--validity-end",
            "none",
            "--totp-window",
            "90",
        ],
        "",
    );
    assert_eq!(run.exit, Exit::Ok, "{}", run.stderr);
    assert_eq!(run.stdout, "token S1 updated\n");
    let requests = daemon.requests();
    let Request::Admin(AdminRequest::TokenSet { serial, settings }) = &requests[0] else {
        panic!("{requests:?}");
    };
    assert_eq!(serial, "S1");
    assert_eq!(settings.maxfail, Some(5));
    assert_eq!(settings.validity_end, Some(None));
    assert_eq!(settings.validity_start, None);
    assert_eq!(settings.time_window, Some(90));
    assert!(settings.pin.is_none() && settings.description.is_none());
}
