//! Whatever a local process sends to the socket, the daemon answers or drops that connection
//! and keeps serving everyone else.

use crate::common::{error_code, Daemon};
use protocol::{ErrorCode, Outcome, Request, Response, Secret};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

/// Send `bytes` on a connection of their own: the connection, and the error code of the answer
/// (none if the daemon closed the connection without one).
fn send_raw(d: &Daemon, bytes: &[u8]) -> (UnixStream, Option<ErrorCode>) {
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s.write_all(bytes).unwrap();
    let answer = protocol::frame::read_frame::<_, Response>(&mut s).ok();
    (s, answer.as_ref().and_then(error_code))
}

#[test]
fn hostile_frames_are_answered_or_dropped_and_the_daemon_keeps_serving() {
    let d = Daemon::start();
    // Each connection stays open to the end: the daemon serves beside them.
    // Zero length.
    let (_zero, code) = send_raw(&d, &[0, 0, 0, 0]);
    assert_eq!(code, Some(ErrorCode::Malformed));
    // Oversized announcement: refused without waiting for the body.
    let (_oversized, code) = send_raw(&d, &[0x7f, 0, 0, 0]);
    assert_eq!(code, Some(ErrorCode::Malformed));
    // Wrong protocol version: answered, then closed.
    let mut frame = protocol::frame::encode(&Request::Status).unwrap();
    frame[4..6].copy_from_slice(&99u16.to_be_bytes());
    let (mut s, code) = send_raw(&d, &frame);
    assert_eq!(code, Some(ErrorCode::VersionMismatch));
    let mut rest = Vec::new();
    assert_eq!(s.read_to_end(&mut rest).unwrap(), 0, "connection closed");
    // Garbage body.
    let [v0, v1] = protocol::paths::PROTOCOL_VERSION.to_be_bytes();
    let (_garbage, code) = send_raw(&d, &[0, 0, 0, 6, v0, v1, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(code, Some(ErrorCode::Malformed));
    // A peer that connects and leaves mid-frame.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(&[0, 0, 1]).unwrap();
    drop(s);
    assert!(matches!(d.call(Request::Status), Response::Status(_)));
}

#[test]
fn oversized_answer_is_refused_without_touching_tokens() {
    let d = Daemon::start();
    let serial = d.enroll_root_hotp(None);
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
