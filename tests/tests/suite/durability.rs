#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! Durability before success (docs/security.md): an OTP that was accepted is spent on disk
//! before the login succeeds, so killing the daemon right afterwards cannot make it valid again.

use pi_tests::{hotp, test_key, totp, wait_for_fresh_totp_step, Daemon, Pam};

#[test]
fn accepted_hotp_stays_spent_after_kill_9_and_restart() {
    let mut daemon = Daemon::start();
    let key = test_key("crash-hotp", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");

    let code = hotp(&key, 0, 6);
    pam.login("root", &code).assert_accepted("first use");
    daemon.kill9();
    daemon.restart();
    pam.login("root", &code)
        .assert_rejected("replay after kill -9 and restart");
    pam.login("root", &hotp(&key, 1, 6))
        .assert_accepted("the store survived the crash");
}

#[test]
fn accepted_totp_stays_spent_after_kill_9_and_restart() {
    let mut daemon = Daemon::start();
    let key = test_key("crash-totp", 20);
    daemon.enroll_totp("root", &key, "sha1", 6, 30, None);
    let pam = Pam::new(&daemon, "");

    let now = wait_for_fresh_totp_step(30);
    let code = totp(&key, "sha1", 6, 30, now);
    pam.login("root", &code).assert_accepted("first use");
    daemon.kill9();
    daemon.restart();
    pam.login("root", &code)
        .assert_rejected("replay after kill -9 and restart");
}

#[test]
fn every_accepted_hotp_stays_spent_after_a_crash_under_a_series_of_logins() {
    let mut daemon = Daemon::start();
    let key = test_key("crash-series", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");

    let codes: Vec<String> = (0..5).map(|c| hotp(&key, c, 6)).collect();
    for code in &codes {
        pam.login("root", code).assert_accepted("fresh code");
    }
    daemon.kill9();
    daemon.restart();
    for code in &codes {
        pam.login("root", code)
            .assert_rejected("replay of a code spent before the crash");
    }
}

/// The store's journal is checkpointed into redb every half second and its files are reused:
/// logins spread over several checkpoints, then a crash, must all stay spent, whichever of
/// them redb or the journal holds.
#[test]
fn accepted_hotp_stays_spent_across_journal_checkpoints_and_a_crash() {
    let mut daemon = Daemon::start();
    let key = test_key("crash-checkpoints", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");

    let codes: Vec<String> = (0..8).map(|c| hotp(&key, c, 6)).collect();
    for code in &codes {
        pam.login("root", code).assert_accepted("fresh code");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    daemon.kill9();
    daemon.restart();
    for code in &codes {
        pam.login("root", code)
            .assert_rejected("replay of a code spent before the crash");
    }
    pam.login("root", &hotp(&key, 8, 6))
        .assert_accepted("the next code still works");
    // And once more after a clean stop, which checkpoints everything.
    daemon.restart();
    pam.login("root", &codes[7])
        .assert_rejected("replay after a clean restart");
    pam.login("root", &hotp(&key, 9, 6))
        .assert_accepted("the store is whole after a clean restart");
}

#[test]
fn tokens_and_their_keys_survive_a_clean_restart() {
    let mut daemon = Daemon::start();
    let key = test_key("restart", 20);
    let serial = daemon.enroll_hotp("root", &key, Some("pin42"));
    daemon.restart();

    let listed = daemon.tokens(Some("root"));
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["serial"], serial.as_str());
    Pam::new(&daemon, "")
        .login("root", &format!("pin42{}", hotp(&key, 0, 6)))
        .assert_accepted("PIN and key decrypted after restart");
}

#[test]
fn enckey_file_is_created_private_on_first_start() {
    use std::os::unix::fs::PermissionsExt;
    let daemon = Daemon::start();
    let meta = std::fs::metadata(daemon.enckey_path())
        .unwrap_or_else(|e| panic!("{}: {e}", daemon.enckey_path().display()));
    assert_eq!(
        meta.permissions().mode() & 0o077,
        0,
        "key file readable by group or others"
    );
    assert!(meta.len() >= 32, "an AES-256 key needs at least 32 bytes");
}

#[test]
fn store_on_disk_does_not_contain_the_otp_key_or_the_pin() {
    let mut daemon = Daemon::start();
    // Distinctive, so a plain copy anywhere in the store files would be found.
    let key = hex::encode("plainkey-MUST-NOT-LEAK");
    let pin = "pin-MUST-NOT-LEAK";
    daemon.enroll_hotp("root", &key, Some(pin));
    daemon.stop();

    let mut leaks = Vec::new();
    for entry in walk(&daemon.dir().join("state")) {
        let bytes = std::fs::read(&entry).unwrap();
        for needle in [
            key.as_bytes(),
            b"plainkey-MUST-NOT-LEAK".as_slice(),
            pin.as_bytes(),
        ] {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                leaks.push(format!(
                    "{} contains {:?}",
                    entry.display(),
                    String::from_utf8_lossy(needle)
                ));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets stored in clear: {leaks:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    assert!(
        dir.is_dir(),
        "{} does not exist: where does the daemon keep its store?",
        dir.display()
    );
    let entries = std::fs::read_dir(dir).into_iter().flatten();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Logins that overlap go through the flusher's group commit; one alone after a quiet moment
/// commits on the thread that served it. Either way an accepted code is on disk before the answer:
/// a crash in the middle of such a mix must not bring any of them back.
#[test]
fn accepted_hotp_stays_spent_after_a_crash_when_logins_overlap() {
    use protocol::{AuthBegin, Outcome, Request, Response, Secret};
    let mut daemon = Daemon::start();
    let keys: Vec<String> = (0..4)
        .map(|i| test_key(&format!("crash-overlap-{i}"), 20))
        .collect();
    let serials: Vec<String> = keys
        .iter()
        .map(|key| daemon.enroll_hotp("root", key, None))
        .collect();
    let login = |daemon: &Daemon, code: String| -> Response {
        let begin = AuthBegin {
            user: "root".into(),
            service: "pi-test".into(),
            authtok: Some(Secret::new(code)),
            ..AuthBegin::default()
        };
        daemon.client().call(&Request::AuthBegin(begin)).unwrap()
    };
    std::thread::scope(|s| {
        for key in &keys {
            let daemon = &daemon;
            s.spawn(move || {
                for counter in 0..10 {
                    match login(daemon, hotp(key, counter, 6)) {
                        Response::AuthDone(Outcome::Accept { .. }) => {}
                        other => panic!("counter {counter}: expected Accept, got {other:?}"),
                    }
                    if counter % 3 == 0 {
                        // Now and then a quiet moment, for a commit on the serving thread.
                        std::thread::sleep(std::time::Duration::from_millis(3));
                    }
                }
            });
        }
    });
    // And the crash right after a login that came alone, a while after the others (committed
    // on the serving thread).
    std::thread::sleep(std::time::Duration::from_millis(300));
    match login(&daemon, hotp(&keys[0], 10, 6)) {
        Response::AuthDone(Outcome::Accept { .. }) => {}
        other => panic!("a lone login: expected Accept, got {other:?}"),
    }
    daemon.kill9();
    daemon.restart();
    for (i, (key, serial)) in keys.iter().zip(&serials).enumerate() {
        let spent = if i == 0 { 11 } else { 10 };
        assert_eq!(
            daemon.token(serial)["count"],
            spent,
            "{serial}: every accepted code is spent after the crash"
        );
        match login(&daemon, hotp(key, spent - 1, 6)) {
            Response::AuthDone(Outcome::Reject { .. }) => {}
            other => panic!("{serial}: the last code replayed after the crash: {other:?}"),
        }
        match login(&daemon, hotp(key, spent, 6)) {
            Response::AuthDone(Outcome::Accept { .. }) => {}
            other => panic!("{serial}: the next code after the crash: {other:?}"),
        }
    }
}

/// The journal's records as the daemon writes them: `[u32 length][u32 CRC][u64 file number]
/// [u64 offset where the record's commit began][payload]`. Returns (start, commit start) of
/// each intact record of the file's own number, in order.
fn journal_records(data: &[u8], seq: u64) -> Vec<(usize, u64)> {
    const HEADER: usize = 24;
    let le32 = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().unwrap()) as usize;
    let le64 = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().unwrap());
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + HEADER <= data.len() {
        let len = le32(&data[pos..]);
        if len == 0 || pos + HEADER + len > data.len() || le64(&data[pos + 8..]) != seq {
            break;
        }
        out.push((pos, le64(&data[pos + 16..])));
        pos += HEADER + len;
    }
    out
}

/// The newest journal file of a stopped daemon, its number and contents.
fn newest_journal(daemon: &Daemon) -> (std::path::PathBuf, u64, Vec<u8>) {
    let dir = daemon.dir().join("state").join("db.journal");
    let (seq, path) = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let seq = name.strip_prefix("journal-")?.parse::<u64>().ok()?;
            Some((seq, e.path()))
        })
        .max()
        .expect("a journal file");
    let data = std::fs::read(&path).unwrap();
    (path, seq, data)
}

#[test]
fn damage_to_an_acknowledged_journal_record_refuses_to_start_and_says_what_to_do() {
    let mut daemon = Daemon::start();
    let key = test_key("damaged-journal", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");
    // Logins in quick succession, then a crash: the newest journal file holds several commits
    // (a checkpoint every half second retires the files it covers, so try a few times).
    let mut counter = 0;
    let (path, damaged) = loop {
        for _ in 0..4 {
            pam.login("root", &hotp(&key, counter, 6))
                .assert_accepted("fresh code");
            counter += 1;
        }
        daemon.kill9();
        let (path, seq, data) = newest_journal(&daemon);
        let records = journal_records(&data, seq);
        // A record of a commit that another commit followed: acknowledged.
        let acknowledged = records
            .iter()
            .find(|(_, commit)| records.iter().any(|(_, later)| later > commit));
        if let Some(&(at, _)) = acknowledged {
            break (path, at);
        }
        assert!(
            counter < 40,
            "no journal file with two commits: {records:?}"
        );
        daemon.restart();
    };
    let mut data = std::fs::read(&path).unwrap();
    data[damaged + 24] ^= 0x01;
    std::fs::write(&path, &data).unwrap();
    let (status, log) = daemon
        .try_restart()
        .expect_err("a damaged journal must stop the start");
    assert!(!status.success());
    assert!(
        log.contains(&format!("{} is damaged at byte {damaged}", path.display()))
            && log.contains("Restore")
            && log.contains("move"),
        "the refusal names the file, the place and what to do:\n{log}"
    );
}
