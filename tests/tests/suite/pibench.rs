#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! The load generator's counting, not its speed: whatever driver, every answer must be the one
//! the OTP it sent deserves (no "unexpected" answers), or its numbers mean nothing. Short runs
//! with few users; the timings it prints are not looked at.

use pi_tests::bins;
use std::process::Command;

/// accepted/s, rejected/s and unexpected answers from pibench's `pid` row.
fn run(extra: &[&str]) -> (f64, f64, u64) {
    let out = Command::new(bins::pibench())
        .args(["--users", "40", "--clients", "4", "--duration", "0.5"])
        .args(extra)
        .output()
        .expect("pibench starts");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pibench {extra:?} failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = text
        .lines()
        // The table row, not "pid ready after …".
        .find(|l| l.starts_with("pid ") && l.split_whitespace().count() == 11)
        .unwrap_or_else(|| panic!("no pid row in {text}"));
    let f: Vec<&str> = row.split_whitespace().collect();
    (
        f[1].parse().expect("accepted/s"),
        f[2].parse().expect("rejected/s"),
        f[3].parse().expect("unexpected"),
    )
}

#[test]
fn poll_driven_clients_get_every_right_hotp_accepted() {
    let (accepted, rejected, unexpected) = run(&["--type", "hotp"]);
    assert!(accepted > 0.0);
    assert_eq!((rejected, unexpected), (0.0, 0));
}

#[test]
fn poll_driven_clients_get_wrong_codes_rejected_and_right_ones_accepted() {
    let (accepted, rejected, unexpected) = run(&[
        "--type",
        "totp",
        "--wrong-share",
        "0.5",
        "--client-threads",
        "2",
    ]);
    assert!(accepted > 0.0 && rejected > 0.0);
    assert_eq!(unexpected, 0);
}

#[test]
fn poll_driven_clients_speak_the_pam_conversation() {
    let (accepted, _, unexpected) = run(&["--type", "hotp", "--conversation"]);
    assert!(accepted > 0.0);
    assert_eq!(unexpected, 0);
}

#[test]
fn blocking_clients_count_the_same_way() {
    let (accepted, rejected, unexpected) =
        run(&["--type", "hotp", "--blocking", "--wrong-share", "1.0"]);
    assert_eq!(accepted, 0.0);
    assert!(rejected > 0.0);
    assert_eq!(unexpected, 0);
}

#[test]
fn paused_reconnecting_clients_count_the_same_way() {
    let (accepted, _, unexpected) = run(&[
        "--type",
        "hotp",
        "--conversation",
        "--reconnect",
        "--pause-ms",
        "2",
    ]);
    assert!(accepted > 0.0);
    assert_eq!(unexpected, 0);
}

#[test]
fn a_reused_store_of_another_token_type_is_refused_not_counted_as_unexpected() {
    let dir = tempfile::tempdir().unwrap();
    let workdir = dir.path().to_str().unwrap();
    let (accepted, _, _) = run(&["--type", "hotp", "--workdir", workdir]);
    assert!(accepted > 0.0);
    let out = Command::new(bins::pibench())
        .args(["--users", "40", "--clients", "4", "--duration", "0.5"])
        .args(["--type", "totp", "--workdir", workdir])
        .output()
        .expect("pibench starts");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("use another --workdir"), "{all}");
}
