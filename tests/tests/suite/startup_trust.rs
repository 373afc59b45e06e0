#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! What pid trusts when it starts: the directories of its socket, store and key file (owned by
//! root, writable by nobody else, up to /), its store files (never through a symbolic link),
//! the socket's mode, and a key file that matches the store.

use pi_tests::process::{run, run_with_deadline, CmdOutput};
use pi_tests::{bins, hotp, test_key, Daemon, Pam, NOBODY_UID};
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A root-owned 0755 directory for one test's own layout.
fn workdir() -> tempfile::TempDir {
    pi_tests::reachable_tempdir("pi-test-trust-")
}

struct Layout {
    config: PathBuf,
}

/// A pid.toml under `dir` with the given socket, state directory and key file.
fn layout(dir: &Path, socket: &Path, state: &Path, key: &Path) -> Layout {
    let config = dir.join("pid.toml");
    fs::write(
        &config,
        format!(
            "version = 1\nsocket = {:?}\nstate_dir = {:?}\nenckey_file = {:?}\n\
             [argon2]\nmemory_kib = 1024\niterations = 1\nparallelism = 1\n",
            socket.display().to_string(),
            state.display().to_string(),
            key.display().to_string(),
        ),
    )
    .unwrap();
    Layout { config }
}

impl Layout {
    /// `pid --config`: it must refuse within 10 s (a daemon that starts fails the test there).
    fn refused_start(&self) -> CmdOutput {
        let mut cmd = Command::new(bins::pid());
        cmd.arg("--config").arg(&self.config);
        let out = run_with_deadline(cmd, b"", Duration::from_secs(10));
        assert_ne!(out.code(), 0, "{}", out.describe());
        out
    }

    fn check_config(&self) -> CmdOutput {
        let mut cmd = Command::new(bins::pid());
        cmd.arg("--check-config").arg(&self.config);
        run(cmd, b"")
    }
}

/// The start is refused and `pid --check-config` reports the same, both naming `path` and
/// saying what to run.
fn assert_refused_naming(layout: &Layout, path: &Path, fix: &str) {
    let shown = path.display().to_string();
    let check = layout.check_config();
    assert_eq!(check.code(), 2, "{}", check.describe());
    for (what, out) in [("start", layout.refused_start()), ("--check-config", check)] {
        let text = out.text();
        assert!(
            text.contains(&shown) && text.contains(fix),
            "{what} must name {shown} and say `{fix}`\n{}",
            out.describe()
        );
    }
}

#[test]
fn the_socket_is_open_to_everyone_and_alone_in_its_directory() {
    let daemon = Daemon::start();
    let meta = fs::symlink_metadata(daemon.socket()).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o666);
    let leftovers: Vec<_> = fs::read_dir(daemon.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_state_directory_of_another_user_is_refused() {
    let dir = workdir();
    let state = dir.path().join("state");
    fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(NOBODY_UID), Some(NOBODY_UID)).unwrap();
    let layout = layout(
        dir.path(),
        &dir.path().join("pid.sock"),
        &state,
        &dir.path().join("enckey"),
    );
    assert_refused_naming(&layout, &state, "chown root:root");
    assert!(
        fs::read_dir(&state).unwrap().next().is_none(),
        "nothing was created in the refused directory"
    );
}

#[test]
fn a_socket_directory_others_may_write_is_refused() {
    let dir = workdir();
    let run_dir = dir.path().join("run");
    fs::create_dir(&run_dir).unwrap();
    chmod(&run_dir, 0o775);
    let layout = layout(
        dir.path(),
        &run_dir.join("pid.sock"),
        &dir.path().join("state"),
        &dir.path().join("enckey"),
    );
    assert_refused_naming(&layout, &run_dir, "chmod go-w");
    assert!(!run_dir.join("pid.sock").exists());
}

#[test]
fn a_key_directory_under_a_world_writable_parent_without_sticky_bit_is_refused() {
    let dir = workdir();
    let shared = dir.path().join("shared");
    let keys = shared.join("keys");
    fs::create_dir_all(&keys).unwrap();
    chmod(&shared, 0o777);
    let layout = layout(
        dir.path(),
        &dir.path().join("pid.sock"),
        &dir.path().join("state"),
        &keys.join("enckey"),
    );
    assert_refused_naming(&layout, &shared, "chmod go-w");
    assert!(!keys.join("enckey").exists(), "no key was made");
    // With the sticky bit, as /tmp has (every harness daemon lives below /tmp), it is fine.
    chmod(&shared, 0o1777);
    let out = layout.check_config();
    assert_eq!(out.code(), 0, "{}", out.describe());
}

/// Stop the daemon (if it runs), let `tamper` change its directory, start it again: it must
/// refuse.
fn refused_after(daemon: &mut Daemon, tamper: impl FnOnce(&Path)) -> String {
    if daemon.is_running() {
        daemon.stop();
    }
    tamper(daemon.dir());
    match daemon.try_restart() {
        Ok(()) => panic!("pid started:\n{}", daemon.log()),
        Err((_, log)) => log,
    }
}

/// Stop a daemon, let `plant` put links to a root file (its second argument) in place of store
/// files in the daemon's directory (its first): the start must be refused with a message
/// naming `named` and the link, and the root file must stay as it was.
fn assert_link_refused(named: &str, plant: impl FnOnce(&Path, &Path)) {
    let mut daemon = Daemon::start();
    let victim = daemon.dir().join("victim");
    fs::write(&victim, "root's file\n").unwrap();
    chmod(&victim, 0o600);
    let log = refused_after(&mut daemon, |dir| plant(dir, &victim));
    assert!(
        log.contains(named) && log.contains("symbolic link"),
        "{log}"
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "root's file\n");
}

#[test]
fn a_store_database_behind_a_symlink_is_refused() {
    assert_link_refused("db.redb", |dir, victim| {
        let db = dir.join("state/db.redb");
        fs::rename(&db, dir.join("moved.redb")).unwrap();
        std::os::unix::fs::symlink(victim, &db).unwrap();
    });
}

#[test]
fn a_journal_file_behind_a_symlink_is_refused() {
    assert_link_refused("db.journal", |dir, victim| {
        let mut planted = 0;
        for entry in fs::read_dir(dir.join("state/db.journal")).unwrap() {
            let path = entry.unwrap().path();
            fs::remove_file(&path).unwrap();
            std::os::unix::fs::symlink(victim, &path).unwrap();
            planted += 1;
        }
        assert!(planted > 0, "the journal directory had files");
    });
}

/// The fingerprint of a key, computed by openssl (an HMAC-SHA256 of a fixed label, first 16
/// bytes), not by pid.
fn openssl_fingerprint(key: &[u8]) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["dgst", "-sha256", "-mac", "HMAC", "-macopt"])
        .arg(format!("hexkey:{}", hex::encode(key)));
    let out = run(cmd, b"pi enckey fingerprint v1");
    assert!(out.success(), "{}", out.describe());
    let digest = out.stdout.trim().rsplit(' ').next().unwrap().to_owned();
    assert_eq!(digest.len(), 64, "{}", out.describe());
    digest[..32].to_owned()
}

fn write_key(path: &Path, key: &[u8]) {
    let _ = fs::remove_file(path);
    fs::write(path, key).unwrap();
    chmod(path, 0o400);
}

#[test]
fn a_lost_or_wrong_key_file_stops_the_start_and_names_the_key_to_restore() {
    let mut daemon = Daemon::start();
    let otp_key = test_key("lost-key", 20);
    daemon.enroll_hotp("root", &otp_key, None);
    let key_file = daemon.enckey_path();
    let saved = fs::read(&key_file).unwrap();
    let wanted = openssl_fingerprint(&saved);

    let log = refused_after(&mut daemon, |_| fs::remove_file(&key_file).unwrap());
    assert!(
        log.contains(&wanted) && log.contains(&key_file.display().to_string()),
        "the refusal names the missing file and the fingerprint to restore\n{log}"
    );
    assert!(!key_file.exists(), "no new key replaced the lost one");

    let other = [0x5au8; 32];
    write_key(&key_file, &other);
    let log = refused_after(&mut daemon, |_| {});
    assert!(
        log.contains(&wanted) && log.contains(&openssl_fingerprint(&other)),
        "a wrong key is refused naming both fingerprints\n{log}"
    );

    // A backup is found by its fingerprint.
    let backup = daemon.dir().join("backup-enckey");
    fs::write(&backup, &saved).unwrap();
    let mut cmd = Command::new(bins::pid());
    cmd.arg("--key-fingerprint").arg(&backup);
    let out = run(cmd, b"");
    assert_eq!(out.stdout.trim(), wanted, "{}", out.describe());

    write_key(&key_file, &saved);
    daemon
        .try_restart()
        .unwrap_or_else(|(status, log)| panic!("the right key was refused ({status}):\n{log}"));
    Pam::new(&daemon, "")
        .login("root", &hotp(&otp_key, 0, 6))
        .assert_accepted("the restored key opens the token");
}

#[test]
fn a_new_key_is_made_only_for_an_empty_store() {
    let mut daemon = Daemon::start();
    let key_file = daemon.enckey_path();
    let first = fs::read(&key_file).unwrap();
    daemon.stop();
    fs::remove_file(&key_file).unwrap();
    daemon.restart();
    let second = fs::read(&key_file).unwrap();
    assert_ne!(first, second, "a store without tokens gets a new key");
    // … and remembers it from then on.
    let otp_key = test_key("new-key", 20);
    daemon.enroll_hotp("root", &otp_key, None);
    let log = refused_after(&mut daemon, |_| fs::remove_file(&key_file).unwrap());
    assert!(log.contains(&openssl_fingerprint(&second)), "{log}");
}
