//! The audit trail: every attempt and admin action without a secret in it, refusals written even
//! when nobody waits for them, and entries kept as long as configured and no longer.

use crate::common::{accepted, nobody, Daemon, HOTP, KEY20};
use pid::caller::Caller;
use protocol::admin::AdminRequest;
use protocol::Request;

#[test]
fn audit_records_attempts_and_admin_actions_without_secrets() {
    let d = Daemon::start();
    d.enroll_root_hotp(Some("s3cr3tpin"));
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
fn refusals_reach_the_audit_trail_even_when_nobody_waits_for_a_commit() {
    let d = Daemon::start();
    let who = Caller {
        pid: 7,
        ..nobody(false)
    };
    let audit = Request::Admin(AdminRequest::AuditShow {
        user: None,
        before: None,
        limit: 5,
    });
    d.dispatch_as(&who, audit);
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
fn audit_records_past_keep_days_are_deleted_and_newer_ones_stay() {
    const T0: i64 = 1_111_111_109;
    let d = Daemon::start_with("[audit]\nkeep_days = 1\n", T0);
    d.enroll_root_hotp(None);
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
    d.enroll_root_hotp(None);
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
    d.enroll_root_hotp(None);
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
