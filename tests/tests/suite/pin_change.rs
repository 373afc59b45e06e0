#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! PIN changes through PAM: a login whose PIN change is due is accepted, acct_mgmt answers
//! PAM_NEW_AUTHTOK_REQD and chauthtok sets the new PIN, in one PAM transaction through the real
//! libpam (libpamtest, for the exact return code of each step).

use pi_tests::pam::{PAM_AUTHTOK_ERR, PAM_NEW_AUTHTOK_REQD, PAM_SUCCESS};
use pi_tests::{hotp, test_key, Caller, Daemon, DaemonOptions, Pam};
use protocol::{AuthBegin, ErrorCode, Outcome, Request, Response, Secret};

/// pam_pi in every section it takes part in, each followed by pam_permit: where pam_pi has
/// nothing to do (PAM_IGNORE) the section succeeds, where it has, its answer is the section's.
const STACK: &str = "auth required {pam_pi}\n\
                     account required {pam_pi}\n\
                     account required pam_permit.so\n\
                     password required {pam_pi}\n\
                     password required pam_permit.so\n";

fn daemon_with(enrollment_actions: &str) -> Daemon {
    Daemon::start_with(DaemonOptions {
        extra_toml: format!(
            "[[policy]]\nname = \"pins\"\nscope = \"enrollment\"\nactions = {{ {enrollment_actions} }}\n"
        ),
        ..Default::default()
    })
}

fn details(daemon: &Daemon, serial: &str) -> serde_json::Value {
    daemon.pictl_json(&["token", "show", serial])["details"].clone()
}

fn login_steps(acct: i32, chauthtok: i32) -> [(&'static str, i32); 3] {
    [
        ("authenticate", PAM_SUCCESS),
        ("acct_mgmt", acct),
        ("chauthtok", chauthtok),
    ]
}

#[test]
fn a_pin_the_administrator_set_is_changed_at_the_first_login_and_only_the_new_one_works() {
    let daemon = daemon_with("change_pin_on_first_use = true");
    let key = test_key("pin-change-first", 20);
    let serial = daemon.enroll_hotp("root", &key, Some("1234"));
    assert!(
        details(&daemon, &serial)["PIN change due"].is_string(),
        "{}",
        details(&daemon, &serial)
    );
    let pam = Pam::with_stack(daemon.socket(), STACK);
    let shown = pam
        .transaction(
            "root",
            &login_steps(PAM_NEW_AUTHTOK_REQD, PAM_SUCCESS),
            &[&format!("1234{}", hotp(&key, 0, 6)), "5678", "5678"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        shown
            .errors
            .iter()
            .any(|e| e.contains("must set a new PIN")),
        "{shown:?}"
    );
    assert!(
        shown
            .info
            .iter()
            .any(|i| i.contains("PIN has been changed")),
        "{shown:?}"
    );
    assert!(
        details(&daemon, &serial)["PIN change due"].is_null(),
        "a PIN the owner chose, without change_pin_every, is not due again: {}",
        details(&daemon, &serial)
    );
    let audit = daemon.audit_until(20, |e| e["message"] == "PIN changed through PAM");
    let messages: Vec<&str> = audit.iter().filter_map(|e| e["message"].as_str()).collect();
    assert!(
        messages.iter().any(|m| m.starts_with("PIN change due")),
        "{messages:?}"
    );
    assert!(messages.iter().all(|m| !m.contains("5678")), "{messages:?}");

    let plain = Pam::new(&daemon, "");
    plain
        .login("root", &format!("1234{}", hotp(&key, 1, 6)))
        .assert_rejected("the old PIN is gone");
    // Nothing is due any more: the account and password sections are left alone.
    pam.transaction(
        "root",
        &login_steps(PAM_SUCCESS, PAM_SUCCESS),
        &[&format!("5678{}", hotp(&key, 2, 6))],
    )
    .unwrap_or_else(|e| panic!("the new PIN logs in, nothing more is asked: {e}"));
}

#[test]
fn a_repeated_pin_that_differs_changes_nothing() {
    let daemon = daemon_with("change_pin_on_first_use = true");
    let key = test_key("pin-change-mismatch", 20);
    daemon.enroll_hotp("root", &key, Some("1234"));
    let pam = Pam::with_stack(daemon.socket(), STACK);
    let shown = pam
        .transaction(
            "root",
            &login_steps(PAM_NEW_AUTHTOK_REQD, PAM_AUTHTOK_ERR),
            &[&format!("1234{}", hotp(&key, 0, 6)), "5678", "8765"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        shown.errors.iter().any(|e| e.contains("do not match")),
        "{shown:?}"
    );
    let plain = Pam::new(&daemon, "");
    plain
        .login("root", &format!("5678{}", hotp(&key, 1, 6)))
        .assert_rejected("neither PIN typed was set");
    plain
        .login("root", &format!("1234{}", hotp(&key, 2, 6)))
        .assert_accepted("the old PIN still works");
}

#[test]
fn a_pin_the_rules_refuse_is_refused_with_their_message_and_may_be_tried_again() {
    let daemon = daemon_with("change_pin_on_first_use = true, otp_pin_minlength = 4");
    let key = test_key("pin-change-rules", 20);
    daemon.enroll_hotp("root", &key, Some("1234"));
    let pam = Pam::with_stack(daemon.socket(), STACK);
    let shown = pam
        .transaction(
            "root",
            &login_steps(PAM_NEW_AUTHTOK_REQD, PAM_AUTHTOK_ERR),
            &[
                &format!("1234{}", hotp(&key, 0, 6)),
                "12",
                "12",
                "34",
                "34",
                "56",
                "56",
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let refusals = shown
        .errors
        .iter()
        .filter(|e| e.contains("at least 4 characters"))
        .count();
    assert_eq!(refusals, 3, "{shown:?}");
    let plain = Pam::new(&daemon, "");
    plain
        .login("root", &format!("12{}", hotp(&key, 1, 6)))
        .assert_rejected("no refused PIN was set");

    // Still due: the next login asks again, and a PIN the rules accept on the second try is set.
    pam.transaction(
        "root",
        &login_steps(PAM_NEW_AUTHTOK_REQD, PAM_SUCCESS),
        &[
            &format!("1234{}", hotp(&key, 2, 6)),
            "12",
            "12",
            "5678",
            "5678",
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    plain
        .login("root", &format!("5678{}", hotp(&key, 3, 6)))
        .assert_accepted("the accepted PIN");
}

#[test]
fn change_pin_every_makes_the_change_due_once_the_period_is_over() {
    let mut daemon = daemon_with("change_pin_every = \"1d\"");
    let key = test_key("pin-change-every", 20);
    let serial = daemon.enroll_hotp("root", &key, Some("1234"));
    let due = details(&daemon, &serial)["PIN change due"].clone();
    assert!(due.is_string(), "{}", details(&daemon, &serial));
    let pam = Pam::with_stack(daemon.socket(), STACK);
    pam.transaction(
        "root",
        &login_steps(PAM_SUCCESS, PAM_SUCCESS),
        &[&format!("1234{}", hotp(&key, 0, 6))],
    )
    .unwrap_or_else(|e| panic!("not due within the day: {e}"));

    for (name, value) in pi_tests::faketime::days_ahead(2) {
        daemon.set_env(&name, &value);
    }
    daemon.restart();
    pam.transaction(
        "root",
        &login_steps(PAM_NEW_AUTHTOK_REQD, PAM_SUCCESS),
        &[&format!("1234{}", hotp(&key, 1, 6)), "5678", "5678"],
    )
    .unwrap_or_else(|e| panic!("due two days later: {e}"));
    let next = details(&daemon, &serial)["PIN change due"].clone();
    assert!(
        next.as_str() > due.as_str(),
        "due again a day after the change: {due} then {next}"
    );
}

/// Send `request` from a process running as `nobody` and return the daemon's answer.
fn request_as_nobody(daemon: &Daemon, request: &Request) -> Response {
    const SCRIPT: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(bytes.fromhex(sys.stdin.read().strip()))
head = b""
while len(head) < 4:
    head += s.recv(4 - len(head))
n = struct.unpack(">I", head)[0]
body = b""
while len(body) < n:
    body += s.recv(n - len(body))
print((head + body).hex())
"#;
    let frame = protocol::frame::encode(request).unwrap();
    let mut cmd = Caller::Nobody.command(std::path::Path::new("/usr/bin/python3"));
    cmd.args(["-c", SCRIPT, &daemon.socket().display().to_string()]);
    let out = pi_tests::process::run(cmd, hex::encode(frame).as_bytes());
    let bytes = hex::decode(out.stdout.trim()).unwrap_or_else(|_| panic!("{}", out.describe()));
    protocol::frame::read_frame(&mut &bytes[..]).unwrap()
}

#[test]
fn a_forged_ticket_is_refused_and_another_uid_cannot_use_a_real_one() {
    let daemon = daemon_with("change_pin_on_first_use = true");
    let key = test_key("pin-change-ticket", 20);
    daemon.enroll_hotp("root", &key, Some("1234"));
    let mut client = daemon.client();
    let change = |ticket: &Secret| Request::PinChange {
        ticket: ticket.clone(),
        pin: Secret::new("5678"),
    };
    let expired = |r: &Response| {
        matches!(
            r,
            Response::Error {
                code: ErrorCode::SessionExpired,
                ..
            }
        )
    };

    let forged = Secret::new("00112233445566778899aabbccddeeff");
    let answer = client.call(&change(&forged)).unwrap();
    assert!(expired(&answer), "{answer:?}");

    let begin = Request::AuthBegin(AuthBegin {
        user: "root".into(),
        service: "pi-test".into(),
        authtok: Some(Secret::new(format!("1234{}", hotp(&key, 0, 6)))),
        ..Default::default()
    });
    let ticket = match client.call(&begin).unwrap() {
        Response::AuthDone(Outcome::AcceptPinChangeDue { ticket, .. }) => ticket,
        other => panic!("expected an accept with a PIN change due, got {other:?}"),
    };
    let answer = request_as_nobody(&daemon, &change(&ticket));
    assert!(
        expired(&answer),
        "a ticket of root's login is not nobody's: {answer:?}"
    );
    let answer = client.call(&change(&ticket)).unwrap();
    assert!(
        matches!(answer, Response::PinChanged { .. }),
        "the uid that logged in still may: {answer:?}"
    );
    let answer = client.call(&change(&ticket)).unwrap();
    assert!(expired(&answer), "a ticket is used once: {answer:?}");
    Pam::new(&daemon, "")
        .login("root", &format!("5678{}", hotp(&key, 1, 6)))
        .assert_accepted("the PIN set with the ticket");
}
