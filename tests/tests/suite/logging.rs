#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! pid's log: a level that names no level is refused, a missing admin group is pointed out,
//! a log that cannot be written never stops the daemon, and the journal gets each event's
//! fields as its own.

use pi_tests::process::{run, CmdOutput};
use pi_tests::{bins, hotp, test_key, Daemon, DaemonOptions, Pam};
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn check_config(dir: &Path, toml: &str) -> CmdOutput {
    let path = dir.join("pid.toml");
    std::fs::write(&path, toml).unwrap();
    let mut cmd = Command::new(bins::pid());
    cmd.arg("--check-config").arg(&path);
    run(cmd, b"")
}

#[test]
fn a_log_level_that_names_no_level_is_refused_listing_the_levels() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["verbose", "warning", "pid=loud"] {
        let out = check_config(dir.path(), &format!("log_level = {bad:?}\n"));
        assert_eq!(out.code(), 2, "{bad}\n{}", out.describe());
        assert!(
            out.stderr.contains(bad) && out.stderr.contains("error, warn, info, debug, trace"),
            "{bad}\n{}",
            out.describe()
        );
    }
    let out = check_config(dir.path(), "log_level = \"info,pid::realm=debug\"\n");
    assert_eq!(out.code(), 0, "{}", out.describe());
}

#[test]
fn an_admin_group_the_host_lacks_is_pointed_out_at_check_and_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = "admin_group = \"pi-test-no-such-group\"\n";
    let out = check_config(dir.path(), missing);
    assert_eq!(out.code(), 0, "a warning, not an error\n{}", out.describe());
    assert!(
        out.stderr.contains("groupadd pi-test-no-such-group"),
        "{}",
        out.describe()
    );
    let out = check_config(dir.path(), "admin_group = \"root\"\n");
    assert!(!out.stderr.contains("groupadd"), "{}", out.describe());

    let daemon = Daemon::start_with(DaemonOptions {
        extra_toml: missing.into(),
        ..Default::default()
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while !daemon.log().contains("groupadd pi-test-no-such-group") {
        assert!(Instant::now() < deadline, "{}", daemon.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Logins keep working while every log line fails, and SIGTERM still ends pid cleanly.
fn serves_without_a_log(mut daemon: Daemon) {
    let key = test_key("no-log", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");
    pam.login("root", &hotp(&key, 0, 6))
        .assert_accepted("the first login after the log broke");
    pam.login("root", &hotp(&key, 0, 6))
        .assert_rejected("a replay: the daemon still decides");
    pam.login("root", &hotp(&key, 1, 6))
        .assert_accepted("and keeps answering");
    daemon.assert_serving();
    let status = daemon.stop();
    assert!(
        status.success(),
        "pid ended with {status}\n{}",
        daemon.log()
    );
}

#[test]
fn a_closed_stderr_pipe_loses_log_lines_not_logins() {
    // Close-on-exec: no process started meanwhile (pid itself included) may hold the read end.
    let (read, write): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let daemon = Daemon::start_with_stderr(DaemonOptions::default(), Stdio::from(write));
    // The terminal pid was started from is gone: every write to stderr now fails (EPIPE).
    drop(read);
    serves_without_a_log(daemon);
}

#[test]
fn a_stderr_that_fails_every_write_loses_log_lines_not_logins() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let daemon = Daemon::start_with_stderr(
        DaemonOptions {
            // /dev/full is a device, as a terminal is: without this a host with journald
            // would get the log instead.
            extra_toml: "log_target = \"stderr\"\n".into(),
            ..Default::default()
        },
        Stdio::from(full),
    );
    serves_without_a_log(daemon);
}

/// One datagram in journald's native format, as a map (binary-safe values included).
fn parse_journal_record(mut data: &[u8]) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    while !data.is_empty() {
        let end = data.iter().position(|&b| b == b'\n').expect("a field ends");
        let line = &data[..end];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            fields.insert(
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            );
            data = &data[end + 1..];
        } else {
            let rest = &data[end + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            fields.insert(
                String::from_utf8_lossy(line).into_owned(),
                String::from_utf8_lossy(&rest[8..8 + len]).into_owned(),
            );
            data = &rest[8 + len + 1..];
        }
    }
    fields
}

#[test]
fn the_journal_gets_each_login_with_its_fields() {
    let journal_dir = tempfile::tempdir().unwrap();
    let path = journal_dir.path().join("journal.sock");
    let journal = UnixDatagram::bind(&path).unwrap();
    journal
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // Read all the time: a datagram socket queues only a few records.
    let records = Arc::new(Mutex::new(Vec::new()));
    let seen = records.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Ok(n) = journal.recv(&mut buf) {
                seen.lock().unwrap().push(parse_journal_record(&buf[..n]));
            }
        }
    });
    let daemon = Daemon::start_with(DaemonOptions {
        extra_toml: format!(
            "log_target = \"journal\"\njournal_socket = {:?}\n",
            path.display().to_string()
        ),
        env: vec![("RUST_LOG".into(), "info".into())],
        ..Default::default()
    });
    let key = test_key("journal", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");
    pam.login("root", &hotp(&key, 0, 6))
        .assert_accepted("the right code");

    let deadline = Instant::now() + Duration::from_secs(10);
    let login = loop {
        let found = records
            .lock()
            .unwrap()
            .iter()
            .find(|r| {
                r.get("MESSAGE")
                    .is_some_and(|m| m.starts_with("authentication"))
            })
            .cloned();
        if let Some(record) = found {
            break record;
        }
        assert!(
            Instant::now() < deadline,
            "no authentication record in the journal: {:?}",
            records.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let want = [
        ("USER", "root"),
        ("SERVICE", pam.service()),
        ("ACCEPTED", "true"),
        ("PRIORITY", "6"),
        ("SYSLOG_IDENTIFIER", "pid"),
    ];
    for (name, value) in want {
        assert_eq!(
            login.get(name).map(String::as_str),
            Some(value),
            "{name} in {login:?}"
        );
    }
    assert!(
        login["MESSAGE"].contains("user=root"),
        "journalctl's default view shows the fields too: {login:?}"
    );
    assert!(
        daemon.log().is_empty(),
        "nothing went to stderr:\n{}",
        daemon.log()
    );
}
