#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! PIN changes through PAM: a login whose PIN change is due is accepted, acct_mgmt answers
//! PAM_NEW_AUTHTOK_REQD and chauthtok sets the new PIN, in one PAM transaction through the real
//! libpam (libpamtest, for the exact return code of each step).

use pi_tests::pam::{Shown, PAM_AUTHTOK_ERR, PAM_NEW_AUTHTOK_REQD, PAM_SUCCESS};
use pi_tests::{hotp, test_key, Caller, Daemon, DaemonOptions, Pam, PamRun};
use protocol::{AuthBegin, ErrorCode, Outcome, Request, Response, Secret};

/// The stack docs/pam.md recommends for PIN changes. The account section ends in pam_permit:
/// where pam_pi has nothing to do (PAM_IGNORE) it succeeds, where it has, pam_pi's
/// PAM_NEW_AUTHTOK_REQD is its answer. In the password section pam_pi's success ends the
/// section (`done`), so what follows (pam_unix in a real stack, pam_deny here) is reached only
/// when pam_pi has nothing to do.
const STACK: &str = "auth required {pam_pi}\n\
                     account required {pam_pi}\n\
                     account required pam_permit.so\n\
                     password [success=done ignore=ignore default=die] {pam_pi}\n\
                     password required pam_deny.so\n";

fn details(daemon: &Daemon, serial: &str) -> serde_json::Value {
    daemon.pictl_json(&["token", "show", serial])["details"].clone()
}

/// A daemon with these enrollment policy actions, and root's HOTP token with PIN `1234`.
struct Setup {
    daemon: Daemon,
    key: String,
    serial: String,
    pam: Pam,
}

impl Setup {
    fn new(name: &str, enrollment_actions: &str) -> Setup {
        let daemon = Daemon::start_with(DaemonOptions {
            extra_toml: format!(
                "[[policy]]\nname = \"pins\"\nscope = \"enrollment\"\n\
                 actions = {{ {enrollment_actions} }}\n"
            ),
            ..Default::default()
        });
        let key = test_key(name, 20);
        let serial = daemon.enroll_hotp("root", &key, Some("1234"));
        let pam = Pam::with_stack(daemon.socket(), STACK);
        Setup {
            daemon,
            key,
            serial,
            pam,
        }
    }

    /// `pin` and the code of `counter`.
    fn pass(&self, pin: &str, counter: u64) -> String {
        format!("{pin}{}", hotp(&self.key, counter, 6))
    }

    /// One transaction: authenticate with `pin` and the code of `counter` (must succeed),
    /// acct_mgmt and chauthtok must give `acct` and `chauthtok`; `typed` answers the prompts
    /// that follow the first.
    fn login(
        &self,
        pin: &str,
        counter: u64,
        (acct, chauthtok): (i32, i32),
        typed: &[&str],
    ) -> Shown {
        let pass = self.pass(pin, counter);
        let answers: Vec<&str> = std::iter::once(pass.as_str())
            .chain(typed.iter().copied())
            .collect();
        let steps = [
            ("authenticate", PAM_SUCCESS),
            ("acct_mgmt", acct),
            ("chauthtok", chauthtok),
        ];
        self.pam
            .transaction("root", &steps, &answers)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A plain login (auth only) with `pin` and the code of `counter`.
    fn plain_login(&self, pin: &str, counter: u64) -> PamRun {
        Pam::new(&self.daemon, "").login("root", &self.pass(pin, counter))
    }
}

/// acct_mgmt and chauthtok with a PIN change due and the change made.
const CHANGED: (i32, i32) = (PAM_NEW_AUTHTOK_REQD, PAM_SUCCESS);
/// With a PIN change due, and the change refused.
const REFUSED: (i32, i32) = (PAM_NEW_AUTHTOK_REQD, PAM_AUTHTOK_ERR);
/// Nothing due: pam_pi ignores both, pam_permit and pam_deny decide.
const NOT_DUE: (i32, i32) = (PAM_SUCCESS, PAM_AUTHTOK_ERR);

#[test]
fn a_pin_the_administrator_set_is_changed_at_the_first_login_and_only_the_new_one_works() {
    let s = Setup::new("pin-change-first", "change_pin_on_first_use = true");
    let due = || details(&s.daemon, &s.serial)["PIN change due"].clone();
    assert!(due().is_string(), "{}", details(&s.daemon, &s.serial));
    let shown = s.login("1234", 0, CHANGED, &["5678", "5678"]);
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
        due().is_null(),
        "a PIN the owner chose, without change_pin_every, is not due again"
    );
    let audit = s
        .daemon
        .audit_until(20, |e| e["message"] == "PIN changed through PAM");
    let messages: Vec<&str> = audit.iter().filter_map(|e| e["message"].as_str()).collect();
    assert!(
        messages.iter().any(|m| m.starts_with("PIN change due")),
        "{messages:?}"
    );
    assert!(messages.iter().all(|m| !m.contains("5678")), "{messages:?}");

    s.plain_login("1234", 1)
        .assert_rejected("the old PIN is gone");
    s.login("5678", 2, NOT_DUE, &[]);
}

#[test]
fn a_repeated_pin_that_differs_changes_nothing() {
    let s = Setup::new("pin-change-mismatch", "change_pin_on_first_use = true");
    let shown = s.login("1234", 0, REFUSED, &["5678", "8765"]);
    assert!(
        shown.errors.iter().any(|e| e.contains("do not match")),
        "{shown:?}"
    );
    s.plain_login("5678", 1)
        .assert_rejected("neither PIN typed was set");
    s.plain_login("1234", 2)
        .assert_accepted("the old PIN still works");
}

#[test]
fn a_pin_the_rules_refuse_is_refused_with_their_message_and_may_be_tried_again() {
    let s = Setup::new(
        "pin-change-rules",
        "change_pin_on_first_use = true, otp_pin_minlength = 4",
    );
    let shown = s.login("1234", 0, REFUSED, &["12", "12", "34", "34", "56", "56"]);
    let refusals = shown
        .errors
        .iter()
        .filter(|e| e.contains("at least 4 characters"))
        .count();
    assert_eq!(refusals, 3, "{shown:?}");
    s.plain_login("12", 1)
        .assert_rejected("no refused PIN was set");
    // Still due: the next login asks again, and a PIN the rules accept on the second try is set.
    s.login("1234", 2, CHANGED, &["12", "12", "5678", "5678"]);
    s.plain_login("5678", 3).assert_accepted("the accepted PIN");
}

#[test]
fn change_pin_every_makes_the_change_due_once_the_period_is_over() {
    let mut s = Setup::new("pin-change-every", "change_pin_every = \"1d\"");
    let due = details(&s.daemon, &s.serial)["PIN change due"].clone();
    assert!(due.is_string(), "{}", details(&s.daemon, &s.serial));
    s.login("1234", 0, NOT_DUE, &[]);

    for (name, value) in pi_tests::faketime::days_ahead(2) {
        s.daemon.set_env(&name, &value);
    }
    s.daemon.restart();
    s.login("1234", 1, CHANGED, &["5678", "5678"]);
    let next = details(&s.daemon, &s.serial)["PIN change due"].clone();
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
    let s = Setup::new("pin-change-ticket", "change_pin_on_first_use = true");
    let daemon = &s.daemon;
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
        authtok: Some(Secret::new(s.pass("1234", 0))),
        ..Default::default()
    });
    let ticket = match client.call(&begin).unwrap() {
        Response::AuthDone(Outcome::AcceptPinChangeDue { ticket, .. }) => ticket,
        other => panic!("expected an accept with a PIN change due, got {other:?}"),
    };
    let answer = request_as_nobody(daemon, &change(&ticket));
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
    s.plain_login("5678", 1)
        .assert_accepted("the PIN set with the ticket");
}
