//! Any local process can connect to the socket (mode 0666). Whatever it sends, the daemon drops
//! that connection and keeps serving everyone else (docs/security.md).

use pi_tests::wire::{self, Raw};
use pi_tests::{hotp, test_key, Daemon, Pam};
use protocol::{AuthBegin, ErrorCode, Request, Response};
use std::time::Duration;

const CLOSE_DEADLINE: Duration = Duration::from_secs(5);

/// A daemon with one HOTP token for root, so "still serving" can mean a full login.
fn daemon_with_token(name: &str) -> (Daemon, String) {
    let daemon = Daemon::start();
    let key = test_key(name, 20);
    daemon.enroll_hotp("root", &key, None);
    (daemon, key)
}

fn assert_still_serves_logins(daemon: &mut Daemon, key: &str, counter: u64) {
    daemon.assert_serving();
    Pam::new(daemon, "")
        .login("root", &hotp(key, counter, 6))
        .assert_accepted("a clean client after the hostile one");
}

#[test]
fn zero_length_frame_closes_only_that_connection() {
    let (mut daemon, key) = daemon_with_token("zero-frame");
    let mut raw = Raw::connect(daemon.socket());
    raw.send(&[0, 0, 0, 0]).unwrap();
    raw.expect_closed_within(CLOSE_DEADLINE);
    assert_still_serves_logins(&mut daemon, &key, 0);
}

#[test]
fn oversized_length_is_refused_without_waiting_for_the_body() {
    let (mut daemon, key) = daemon_with_token("oversized-length");
    for announced in [protocol::paths::MAX_FRAME as u32 + 1, u32::MAX] {
        let mut raw = Raw::connect(daemon.socket());
        // Only the header: a daemon that waited for (or allocated) the body would hang here.
        raw.send(&announced.to_be_bytes()).unwrap();
        raw.expect_closed_within(CLOSE_DEADLINE);
    }
    assert_still_serves_logins(&mut daemon, &key, 0);
}

#[test]
fn random_garbage_does_not_disturb_the_daemon() {
    let (mut daemon, key) = daemon_with_token("garbage");
    for seed in 1..=20u64 {
        let mut raw = Raw::connect(daemon.socket());
        let _ = raw.send(&wire::garbage(seed, 64 + (seed as usize) * 97));
        drop(raw);
    }
    // Plausible header, undecodable body.
    let mut bytes = 200u32.to_be_bytes().to_vec();
    bytes.extend_from_slice(&protocol::paths::PROTOCOL_VERSION.to_be_bytes());
    bytes.extend(wire::garbage(99, 198));
    let mut raw = Raw::connect(daemon.socket());
    raw.send(&bytes).unwrap();
    // The framing is intact, so the daemon may answer Malformed and keep the connection, or close.
    match raw.read_response(CLOSE_DEADLINE) {
        Ok(Response::Error { .. }) | Err(protocol::FrameError::Closed) => {}
        Err(protocol::FrameError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("an undecodable body earned {other:?}"),
    }
    assert_still_serves_logins(&mut daemon, &key, 0);
}

#[test]
fn wrong_protocol_version_gets_version_mismatch_then_close() {
    let (mut daemon, key) = daemon_with_token("version");
    let mut raw = Raw::connect(daemon.socket());
    let other = protocol::paths::PROTOCOL_VERSION + 1;
    raw.send(&wire::frame_with_version(other, &Request::Status))
        .unwrap();
    let answers = raw.expect_closed_within(CLOSE_DEADLINE);
    assert!(
        matches!(
            answers.as_slice(),
            [Response::Error {
                code: ErrorCode::VersionMismatch,
                ..
            }]
        ),
        "expected exactly one Error{{VersionMismatch}} before the close, got {answers:?}"
    );
    assert_still_serves_logins(&mut daemon, &key, 0);
}

#[test]
fn one_mebibyte_answer_mid_conversation_is_refused_and_the_token_is_unharmed() {
    let (mut daemon, key) = daemon_with_token("huge-answer");
    let mut raw = Raw::connect(daemon.socket());
    raw.send_request(&Request::AuthBegin(AuthBegin {
        user: "root".into(),
        service: "pi-test".into(),
        ..AuthBegin::default()
    }));
    let session = match raw.read_response(CLOSE_DEADLINE) {
        Ok(Response::AuthStep { session, .. }) => session,
        other => panic!("expected a prompt for root, got {other:?}"),
    };
    let _ = raw.send(&wire::oversized_auth_continue(session, 1 << 20));
    let answers = raw.expect_closed_within(CLOSE_DEADLINE);
    assert!(
        !answers.iter().any(|r| matches!(r, Response::AuthDone(_))),
        "an oversized answer must not be judged: {answers:?}"
    );
    assert_still_serves_logins(&mut daemon, &key, 0);
}

#[test]
fn truncated_frame_then_hangup_does_not_disturb_the_daemon() {
    let (mut daemon, key) = daemon_with_token("truncated");
    let frame = protocol::frame::encode(&Request::Status).unwrap();
    for cut in 1..frame.len() {
        let mut raw = Raw::connect(daemon.socket());
        raw.send(&frame[..cut]).unwrap();
        drop(raw);
    }
    assert_still_serves_logins(&mut daemon, &key, 0);
}

#[test]
fn answer_to_a_session_of_another_connection_is_refused() {
    let (mut daemon, key) = daemon_with_token("foreign-session");
    let mut owner = Raw::connect(daemon.socket());
    owner.send_request(&Request::AuthBegin(AuthBegin {
        user: "root".into(),
        service: "pi-test".into(),
        ..AuthBegin::default()
    }));
    let session = match owner.read_response(CLOSE_DEADLINE) {
        Ok(Response::AuthStep { session, .. }) => session,
        other => panic!("expected a prompt for root, got {other:?}"),
    };
    let mut thief = Raw::connect(daemon.socket());
    thief.send_request(&Request::AuthContinue {
        session,
        answer: protocol::Secret::new(hotp(&key, 0, 6)),
    });
    let answer = thief.read_response(CLOSE_DEADLINE);
    assert!(
        !matches!(
            answer,
            Ok(Response::AuthDone(protocol::Outcome::Accept { .. }))
        ),
        "a session was answered from another connection"
    );
    drop(owner);
    drop(thief);
    assert_still_serves_logins(&mut daemon, &key, 0);
}

#[test]
fn many_idle_connections_do_not_block_a_login() {
    let (mut daemon, key) = daemon_with_token("idle");
    let idle: Vec<Raw> = (0..100).map(|_| Raw::connect(daemon.socket())).collect();
    assert_still_serves_logins(&mut daemon, &key, 0);
    drop(idle);
}
