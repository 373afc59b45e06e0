//! The fail counter: `maxfail` wrong answers lock a token even for the right code, until an
//! administrator resets it or the lock ends; each further lock lasts twice as long as the last.

use crate::common::{accepted, Daemon, HOTP};
use protocol::admin::{AdminRequest, TokenSettings};
use protocol::Outcome;

#[test]
fn maxfail_wrong_attempts_lock_the_token_until_reset() {
    let d = Daemon::start();
    let serial = d.enroll_root_hotp(None);
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
    d.enroll_root_hotp(None);
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
    let serial = d.enroll_root_hotp(None);
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
