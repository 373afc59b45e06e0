//! What the store keeps across a restart (spent codes, the token count) and what it never holds
//! in clear (OTP keys, PINs).

use crate::common::{accepted, Daemon, HOTP, KEY20};
use protocol::admin::AdminRequest;
use std::path::{Path, PathBuf};

#[test]
fn spent_otp_stays_spent_after_restart() {
    let d = Daemon::start();
    d.enroll_root_hotp(None);
    assert!(accepted(&d.login("root", HOTP[0])));
    let d = d.restart();
    assert!(!accepted(&d.login("root", HOTP[0])));
    assert!(accepted(&d.login("root", HOTP[1])));
}

#[test]
fn secrets_are_not_stored_in_clear() {
    let d = Daemon::start();
    d.enroll_root_hotp(Some("pin-9876"));
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

fn walk(dir: &Path) -> Vec<PathBuf> {
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
fn token_count_survives_restarts_without_walking_the_store() {
    let d = Daemon::start();
    for i in 0..3 {
        d.enroll_unassigned(&format!("C{i}"));
    }
    d.admin(AdminRequest::TokenDelete {
        serial: "C1".into(),
    });
    assert_eq!(d.token_count(), 2);
    let d = d.restart();
    assert_eq!(d.token_count(), 2);
    d.admin(AdminRequest::TokenDelete {
        serial: "C0".into(),
    });
    let d = d.restart();
    assert_eq!(d.token_count(), 1);
}
