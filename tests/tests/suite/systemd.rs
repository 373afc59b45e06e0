#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! pid under systemd: the unit files as systemd's own tools judge them, and the real daemon
//! started the way systemd starts it (a passed listening socket, `NOTIFY_SOCKET`, a credentials
//! directory), without a running systemd.

use pi_tests::systemd::{analyze, unit_dir, ServiceManager};
use pi_tests::{bins, hotp, test_key, Daemon, DaemonOptions, Pam};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

/// The units with `/usr/sbin/pid` replaced by the built binary, in a fresh directory:
/// `systemd-analyze verify` checks that ExecStart's program exists.
fn units_with_built_pid() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for unit in ["pid.service", "pid.socket"] {
        let text = std::fs::read_to_string(unit_dir().join(unit)).unwrap();
        let text = text.replace("/usr/sbin/pid", &bins::pid().display().to_string());
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    dir
}

#[test]
fn systemd_analyze_verify_accepts_both_units() {
    let dir = units_with_built_pid();
    let service = dir.path().join("pid.service");
    let socket = dir.path().join("pid.socket");
    // --man=no: the manual pages are installed by the package, not on a build host.
    let out = analyze(&[
        "verify",
        "--man=no",
        service.to_str().unwrap(),
        socket.to_str().unwrap(),
    ]);
    assert!(
        out.success() && out.stderr.trim().is_empty(),
        "systemd-analyze verify complained\n{}",
        out.describe()
    );
}

#[test]
fn systemd_analyze_verify_notices_a_broken_unit() {
    // The check above can fail: a misspelt key is reported.
    let dir = units_with_built_pid();
    let service = dir.path().join("pid.service");
    let text = std::fs::read_to_string(&service).unwrap();
    std::fs::write(&service, text.replace("NotifyAccess=", "NotifyAcess=")).unwrap();
    let out = analyze(&["verify", "--man=no", service.to_str().unwrap()]);
    assert!(out.stderr.contains("NotifyAcess"), "{}", out.describe());
}

#[test]
fn the_service_is_exposed_at_most_2_5_by_systemd_analyze_security() {
    let service = unit_dir().join("pid.service");
    let out = analyze(&["security", "--offline=yes", service.to_str().unwrap()]);
    let exposure: f64 = out
        .stdout
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for pid.service:"))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level printed\n{}", out.describe()));
    assert!(exposure <= 2.5, "exposure {exposure}\n{}", out.stdout);
}

/// A daemon started on a socket the test holds, with notifications to the test.
fn activated(opts: DaemonOptions) -> (Daemon, ServiceManager) {
    let mut daemon = Daemon::prepared(opts);
    let manager = ServiceManager::listen(daemon.socket());
    daemon.launch_with(manager.launcher(0));
    if let Err((status, log)) = daemon.try_start_prepared() {
        panic!("pid refused the passed socket ({status})\n{log}");
    }
    (daemon, manager)
}

#[test]
fn a_passed_socket_is_served_and_systemd_hears_ready_reloading_and_stopping() {
    let (mut daemon, manager) = activated(DaemonOptions::default());
    let ready = manager.wait_for("READY=1");
    assert!(
        ready.contains(&format!(
            "STATUS=serving 0 tokens on {}",
            daemon.socket().display()
        )),
        "{ready:?}"
    );
    assert!(daemon.status().is_some(), "ready, and answering");
    assert!(
        daemon.log().contains("socket_from=\"systemd\""),
        "{}",
        daemon.log()
    );

    let config = daemon.config_text();
    assert!(daemon.reload_config(&config));
    let reloading = manager.wait_for("RELOADING=1");
    let usec = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(usec.is_some_and(|n| n > 0), "{reloading:?}");
    let reloaded = manager.wait_for("READY=1");
    assert!(reloaded.contains("STATUS=reloaded"), "{reloaded:?}");

    // A file that does not validate: refused, and systemd hears why.
    assert!(!daemon.reload_config("version = 2\n"));
    manager.wait_for("RELOADING=1");
    let refused = manager.wait_for("READY=1");
    assert!(refused.contains("STATUS=reload refused: "), "{refused:?}");

    assert!(daemon.stop().success(), "{}", daemon.log());
    manager.wait_for("STOPPING=1");
    assert!(
        std::fs::symlink_metadata(daemon.socket()).is_ok(),
        "pid removed the socket file systemd owns"
    );
}

#[test]
fn a_restart_on_a_held_socket_loses_no_login() {
    let (mut daemon, _manager) = activated(DaemonOptions::default());
    let key = test_key("restart-held-socket", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");
    pam.login("root", &hotp(&key, 0, 6))
        .assert_accepted("daemon A answers");

    assert!(daemon.stop().success(), "{}", daemon.log());
    // No daemon runs: the login waits in the backlog of the socket the test holds.
    let login = std::thread::scope(|scope| {
        let waiting = scope.spawn(|| pam.login("root", &hotp(&key, 1, 6)));
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            !waiting.is_finished(),
            "the login did not wait for a daemon"
        );
        daemon.restart();
        waiting.join().unwrap()
    });
    login.assert_accepted("daemon B answers the login that arrived while none ran");
}

#[test]
fn a_passed_socket_on_another_path_is_refused_naming_both() {
    let mut daemon = Daemon::prepared(DaemonOptions::default());
    let elsewhere = daemon.dir().join("elsewhere.sock");
    let manager = ServiceManager::listen(&elsewhere);
    daemon.launch_with(manager.launcher(0));
    let (status, log) = daemon.try_start_prepared().unwrap_err();
    assert!(!status.success());
    assert!(
        log.contains(&format!("listens on {}", elsewhere.display()))
            && log.contains(&format!("socket = \"{}\"", daemon.socket().display()))
            && log.contains("ListenStream="),
        "{log}"
    );
}

#[test]
fn two_passed_descriptors_are_refused() {
    let mut daemon = Daemon::prepared(DaemonOptions::default());
    let manager = ServiceManager::listen(daemon.socket());
    daemon.launch_with(manager.launcher(1));
    let (status, log) = daemon.try_start_prepared().unwrap_err();
    assert!(!status.success());
    assert!(
        log.contains("LISTEN_FDS=2") && log.contains("exactly one socket"),
        "{log}"
    );
    assert_eq!(
        manager.next_notification(Duration::from_millis(100)),
        None,
        "a daemon that refused to start never says READY=1"
    );
}

/// The config with the key file line replaced by `enckey_credential = "pid-enckey"`.
fn with_key_credential(config: &str) -> String {
    config
        .lines()
        .map(|l| {
            if l.starts_with("enckey_file =") {
                "enckey_credential = \"pid-enckey\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn put_credential(dir: &Path, key: &[u8]) {
    let file = dir.join("pid-enckey");
    if file.exists() {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::write(&file, key).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).unwrap();
}

#[test]
fn the_store_key_moves_from_a_file_to_a_systemd_credential_and_tokens_still_log_in() {
    let mut daemon = Daemon::start();
    let key = test_key("key-credential", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");
    pam.login("root", &hotp(&key, 0, 6))
        .assert_accepted("with the key file");
    let fingerprint = {
        let out = std::process::Command::new(bins::pid())
            .arg("--key-fingerprint")
            .arg(daemon.enckey_path())
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    daemon.stop();

    // What `systemd-creds decrypt` would leave in $CREDENTIALS_DIRECTORY: the file's bytes,
    // root's, mode 0400, in a directory only root enters.
    let creds = daemon.dir().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o500)).unwrap();
    let key_bytes = std::fs::read(daemon.enckey_path()).unwrap();
    put_credential(&creds, &key_bytes);
    std::fs::rename(daemon.enckey_path(), daemon.dir().join("enckey.moved")).unwrap();
    std::fs::write(
        daemon.config_path(),
        with_key_credential(&daemon.config_text()),
    )
    .unwrap();
    daemon.set_env("CREDENTIALS_DIRECTORY", &creds.display().to_string());
    daemon.restart();
    pam.login("root", &hotp(&key, 1, 6))
        .assert_accepted("with the key from the credential");
    assert!(
        !daemon.enckey_path().exists(),
        "pid made no key file beside the credential"
    );

    // Not started by systemd: refused, saying what is needed.
    daemon.remove_env("CREDENTIALS_DIRECTORY");
    let (_, log) = daemon.try_restart().unwrap_err();
    assert!(
        log.contains(
            "enckey_credential needs pid started by systemd with \
             LoadCredentialEncrypted=pid-enckey"
        ),
        "{log}"
    );

    // Another key in the credential: refused with the fingerprint the store needs.
    daemon.set_env("CREDENTIALS_DIRECTORY", &creds.display().to_string());
    put_credential(&creds, &[7u8; 32]);
    let (_, log) = daemon.try_restart().unwrap_err();
    assert!(
        log.contains("key credential pid-enckey")
            && log.contains(&format!("sealed with the key of fingerprint {fingerprint}")),
        "{log}"
    );

    // The credential gone: refused, naming the key the tokens need.
    std::fs::remove_file(creds.join("pid-enckey")).unwrap();
    let (_, log) = daemon.try_restart().unwrap_err();
    assert!(
        log.contains("key credential pid-enckey")
            && log.contains("is missing")
            && log.contains("systemd-creds encrypt --name=pid-enckey"),
        "{log}"
    );
}

#[test]
fn a_missing_key_credential_is_never_made_and_the_refusal_says_how_to_make_one() {
    let mut daemon = Daemon::prepared(DaemonOptions::default());
    let creds = daemon.dir().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o500)).unwrap();
    std::fs::write(
        daemon.config_path(),
        with_key_credential(&daemon.config_text()),
    )
    .unwrap();
    daemon.set_env("CREDENTIALS_DIRECTORY", &creds.display().to_string());
    let (status, log) = daemon.try_start_prepared().unwrap_err();
    assert!(!status.success());
    assert!(
        log.contains("pid never makes a key there")
            && log.contains("head -c32 /dev/urandom | systemd-creds encrypt --name=pid-enckey"),
        "{log}"
    );
    assert!(!creds.join("pid-enckey").exists());
    assert!(!daemon.enckey_path().exists(), "nor a key file");
}
