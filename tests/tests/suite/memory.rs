#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! What the daemon's memory holds after logins: no PIN, no PIN and OTP as the user typed them.
//! Someone who can read a process's memory later (a core dump, a swap device, a debugger
//! attached by a compromised root, a kernel bug) must not find them there.

use pi_tests::{hotp, test_key, Daemon, Pam};
use std::fs::File;
use std::os::unix::fs::FileExt;

/// Where in the memory of process `pid` `needle` occurs: the mappings' names and addresses.
fn find_in_memory(pid: u32, needle: &[u8]) -> Vec<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mem = File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut found = Vec::new();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (range, perms) = (fields.next().unwrap(), fields.next().unwrap());
        let name = fields.nth(3).unwrap_or("[anonymous]");
        if !perms.starts_with('r') || name == "[vvar]" || name == "[vsyscall]" {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        let mut region = vec![0u8; (end - start) as usize];
        if mem.read_exact_at(&mut region, start).is_err() {
            continue;
        }
        for (i, w) in region.windows(needle.len()).enumerate() {
            if w == needle {
                found.push(format!("{name} at {:#x}", start + i as u64));
            }
        }
    }
    found
}

#[test]
fn after_logins_the_daemons_memory_holds_no_pin_and_no_answer() {
    const PIN: &str = "Kq7-memory-PIN-x9";
    let daemon = Daemon::start();
    let key = test_key("memory-scan", 20);
    daemon.enroll_hotp("root", &key, Some(PIN));
    let pam = Pam::new(&daemon, "");
    let mut answers = Vec::new();
    for counter in 0..3u64 {
        let answer = format!("{PIN}{}", hotp(&key, counter, 6));
        pam.login("root", &answer)
            .assert_accepted("right PIN and OTP");
        answers.push(answer);
    }
    // A wrong OTP, and a right OTP with a wrong PIN: both paths must wipe what they held.
    pam.login("root", &format!("{PIN}000000"))
        .assert_rejected("wrong OTP");
    pam.login("root", &format!("Kq7-memory-PIX-x9{}", hotp(&key, 3, 6)))
        .assert_rejected("wrong PIN");
    let pid = daemon.process_id();
    let pin_at = find_in_memory(pid, PIN.as_bytes());
    let answers_at: Vec<String> = answers
        .iter()
        .flat_map(|a| find_in_memory(pid, a.as_bytes()))
        .collect();
    assert!(
        pin_at.is_empty() && answers_at.is_empty(),
        "the PIN is still in pid's memory: {pin_at:?}; answers: {answers_at:?}"
    );
    // The scan itself works: it finds what the daemon does keep, such as its socket's path.
    let socket = daemon.socket().display().to_string();
    assert!(!find_in_memory(pid, socket.as_bytes()).is_empty());
}
