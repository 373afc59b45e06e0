#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! A full disk under the store: logins go on from the journal, and once space is back the store
//! writes its checkpoints again without a restart. The store's directory is a small tmpfs that
//! the test fills up.

use pi_tests::{hotp, test_key, Daemon, Pam};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmpfs mounted over a directory for as long as it lives.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fill the file system of `dir` until a write fails; the file that did it.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = fs::File::create(&path).unwrap();
    let chunk = vec![0xA5u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    path
}

fn status_notices(daemon: &Daemon) -> Vec<String> {
    daemon.pictl_json(&["status"])["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

/// Poll `what` every 100 ms for up to `secs`.
fn eventually(secs: u64, mut what: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if what() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn after_the_disk_filled_up_and_space_came_back_the_store_writes_again_without_a_restart() {
    let mut daemon = Daemon::start();
    let key = test_key("full-disk", 20);
    daemon.enroll_hotp("root", &key, None);
    daemon.stop();
    // The store moves onto a 40 MiB tmpfs mounted where it was.
    let state = daemon.dir().join("state");
    let aside = daemon.dir().join("state-aside");
    fs::rename(&state, &aside).unwrap();
    fs::create_dir(&state).unwrap();
    let _tmpfs = Tmpfs::mount(&state, "40m");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", aside.display()))
        .arg(&state)
        .status()
        .unwrap();
    assert!(copied.success());
    daemon.restart();
    let pam = Pam::new(&daemon, "");
    pam.login("root", &hotp(&key, 0, 6))
        .assert_accepted("before the disk fills");

    let filler = fill(&state);
    // Enrolments need new pages in the database: its checkpoints fail now. The journal's
    // files were written in full beforehand, so commits (and logins) go on.
    let mut counter = 1;
    let failing = eventually(20, || {
        let description = "x".repeat(1000);
        let _ = daemon.pictl(&[
            "token",
            "enroll",
            "hotp",
            "--user",
            "root",
            "--otpkey",
            &test_key("filler", 20),
            "--description",
            &description,
        ]);
        status_notices(&daemon)
            .iter()
            .any(|n| n.contains("checkpoints are failing"))
    });
    assert!(
        failing,
        "checkpoints never failed: {:?}\n{}",
        status_notices(&daemon),
        daemon.log()
    );
    pam.login("root", &hotp(&key, counter, 6))
        .assert_accepted("a full disk does not stop logins");
    counter += 1;

    fs::remove_file(&filler).unwrap();
    let recovered = eventually(20, || {
        status_notices(&daemon)
            .iter()
            .any(|n| n.contains("checkpoints succeed again"))
    });
    assert!(
        recovered,
        "still failing after space came back: {:?}\n{}",
        status_notices(&daemon),
        daemon.log()
    );
    let audit = daemon.pictl(&["audit", "show", "--limit", "5"]);
    assert!(
        audit.success(),
        "audit show after recovery: {}",
        audit.describe()
    );
    pam.login("root", &hotp(&key, counter, 6))
        .assert_accepted("after recovery");
    let journal_files = fs::read_dir(state.join("db.journal")).unwrap().count();
    assert!(
        journal_files <= 3,
        "the journal is retired again: {journal_files} files"
    );
    assert!(
        daemon.log().contains("the store was opened again"),
        "{}",
        daemon.log()
    );

    // Everything acknowledged is there after a restart, and no code works twice.
    daemon.restart();
    for used in 0..=counter {
        pam.login("root", &hotp(&key, used, 6))
            .assert_rejected("a code used before");
    }
    pam.login("root", &hotp(&key, counter + 1, 6))
        .assert_accepted("the next code");
}
