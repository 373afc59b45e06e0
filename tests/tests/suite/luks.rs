#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! LUKS volumes opened by a Yubikey's HMAC-SHA1 response (privacyIDEA's luks application):
//! `pictl luks assign` writes the daemon's response into a key slot of a real LUKS2 image with
//! the real `cryptsetup`, and `pictl luks unlock` opens it with a responder that computes the
//! HMAC with `openssl` — an implementation independent of ours, as are the published vectors
//! the expected passphrases come from. Nothing is mapped: every check is `open
//! --test-passphrase` on a file image, so no loop or device-mapper device is needed.

use pi_tests::process::{self, CmdOutput};
use pi_tests::{Caller, Daemon};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

const SERIAL: &str = "UBOM12345678_2";
/// The passphrase the image is made with, in slot 0.
const INITIAL: &str = "initial passphrase 0";
/// cryptsetup's PBKDF for new slots: tests measure behaviour, not KDFs.
const FAST_PBKDF: [&str; 4] = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"];

/// One line of `testdata/luks_hmac.tsv`.
struct Vector {
    secret_hex: String,
    password: String,
    response: String,
}

/// The published ykchalresp vectors (secret, challenge text, response).
fn vectors() -> Vec<Vector> {
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/luks_hmac.tsv"
    ));
    let vectors: Vec<Vector> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "bad vector line {l:?}");
            Vector {
                secret_hex: f[0].to_owned(),
                password: f[1].to_owned(),
                response: f[2].to_owned(),
            }
        })
        .collect();
    assert!(
        vectors.len() >= 2,
        "testdata/luks_hmac.tsv has too few vectors"
    );
    vectors
}

/// The first executable `cryptsetup` in PATH or the sbin directories.
fn cryptsetup() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join("cryptsetup"))
        .find(|p| p.is_file())
        .expect("cryptsetup is not installed: apt-get install cryptsetup-bin")
}

fn run_cryptsetup(args: &[&str], stdin: &[u8]) -> CmdOutput {
    let mut cmd = Command::new(cryptsetup());
    cmd.args(args);
    process::run(cmd, stdin)
}

/// A daemon, a LUKS2 image with `INITIAL` in slot 0, a key file holding `INITIAL`, and an
/// openssl responder for the Yubikey's secret.
struct Setup {
    daemon: Daemon,
    dir: TempDir,
    img: PathBuf,
    key_file: PathBuf,
    responder: PathBuf,
    vector: Vector,
}

impl Setup {
    fn new() -> Setup {
        Setup::with_vector(0)
    }

    fn with_vector(index: usize) -> Setup {
        Setup::with_daemon(Daemon::start(), index)
    }

    fn with_daemon(daemon: Daemon, index: usize) -> Setup {
        let dir = tempfile::Builder::new()
            .prefix("pi-luks-")
            .tempdir()
            .unwrap();
        // uid 65534 runs pictl in one test: it must reach the image.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let img = dir.path().join("disk.img");
        let truncate = Command::new("truncate")
            .args(["-s", "32M"])
            .arg(&img)
            .status()
            .unwrap();
        assert!(truncate.success());
        let img_s = img.to_str().unwrap();
        let out = run_cryptsetup(
            &[
                "luksFormat",
                "--type",
                "luks2",
                "--batch-mode",
                "--pbkdf",
                "pbkdf2",
                "--pbkdf-force-iterations",
                "1000",
                "--key-file",
                "-",
                img_s,
            ],
            INITIAL.as_bytes(),
        );
        assert!(out.success(), "luksFormat\n{}", out.describe());
        fs::set_permissions(&img, fs::Permissions::from_mode(0o644)).unwrap();
        let key_file = dir.path().join("initial.key");
        fs::write(&key_file, INITIAL).unwrap();
        let vector = vectors().swap_remove(index);
        // The challenge arrives in hex (as for `ykchalresp -2 -x`); perl (Debian-essential)
        // turns it into bytes, openssl computes the HMAC.
        let responder = dir.path().join("responder.sh");
        fs::write(
            &responder,
            format!(
                "#!/bin/sh\nprintf '%s' \"$1\" | perl -e 'local $/; print pack(\"H*\", <STDIN>)' \
                 | openssl dgst -sha1 -mac HMAC -macopt hexkey:{} | sed 's/.*= //'\n",
                vector.secret_hex
            ),
        )
        .unwrap();
        fs::set_permissions(&responder, fs::Permissions::from_mode(0o755)).unwrap();
        Setup {
            daemon,
            dir,
            img,
            key_file,
            responder,
            vector,
        }
    }

    fn img(&self) -> &str {
        self.img.to_str().unwrap()
    }

    fn key_file(&self) -> &str {
        self.key_file.to_str().unwrap()
    }

    fn responder(&self) -> &str {
        self.responder.to_str().unwrap()
    }

    fn ok(&self, args: &[&str]) -> CmdOutput {
        let out = self.daemon.pictl(args);
        assert!(out.success(), "pictl {args:?}\n{}", out.describe());
        out
    }

    /// The Yubikey's secret as a `UBOM…_2` TOTP token of root.
    fn enroll(&self) {
        self.ok(&[
            "token",
            "enroll",
            "totp",
            "--user",
            "root",
            "--serial",
            SERIAL,
            "--otpkey",
            &self.vector.secret_hex,
            "--no-qr",
        ]);
    }

    fn attach(&self, extra: &[&str]) {
        let mut args = vec![
            "machine",
            "attach",
            SERIAL,
            "--app",
            "luks",
            "--device",
            self.img(),
        ];
        args.extend_from_slice(extra);
        self.ok(&args);
    }

    /// `pictl luks ARGS` as root with `stdin`.
    fn luks(&self, args: &[&str], stdin: &str) -> CmdOutput {
        self.luks_as(Caller::Root, args, stdin)
    }

    fn luks_as(&self, caller: Caller, args: &[&str], stdin: &str) -> CmdOutput {
        let mut all = vec!["luks"];
        all.extend_from_slice(args);
        self.daemon.pictl_as(caller, &all, stdin)
    }

    /// `pictl luks assign --device IMG --key-file K` with the fast PBKDF and `extra`.
    fn assign(&self, extra: &[&str], password: &str) -> CmdOutput {
        let mut args = vec![
            "assign",
            "--device",
            self.img(),
            "--key-file",
            self.key_file(),
        ];
        args.extend_from_slice(&FAST_PBKDF);
        args.extend_from_slice(extra);
        self.luks(&args, &format!("{password}\n"))
    }

    /// `pictl luks unlock --test` of the image with `password`, the responder script answering
    /// as the Yubikey would (HMAC by openssl).
    fn unlock_test(&self, password: &str) -> CmdOutput {
        self.luks(
            &[
                "unlock",
                "--device",
                self.img(),
                "--name",
                "x",
                "--test",
                "--responder-cmd",
                self.responder(),
            ],
            &format!("{password}\n"),
        )
    }

    /// Whether `passphrase` opens key slot `slot` (any slot with `None`).
    fn opens(&self, slot: Option<u8>, passphrase: &str) -> bool {
        let slot = slot.map(|s| s.to_string());
        let mut args = vec!["open", "--test-passphrase", "--key-file", "-"];
        if let Some(slot) = &slot {
            args.extend_from_slice(&["--key-slot", slot]);
        }
        args.push(self.img());
        let out = run_cryptsetup(&args, passphrase.as_bytes());
        match out.code() {
            0 => true,
            1 | 2 => false,
            _ => panic!("cryptsetup open failed oddly\n{}", out.describe()),
        }
    }

    fn image_hash(&self) -> String {
        hex::encode(Sha256::digest(fs::read(&self.img).unwrap()))
    }

    /// What the store holds: every assignment and every token.
    fn store_snapshot(&self) -> (Value, Value) {
        (
            self.daemon.pictl_json(&["machine", "list"]),
            self.daemon.pictl_json(&["token", "list"]),
        )
    }

    /// `pictl luks …` is refused with a non-zero `exit` and a message containing `needle`,
    /// and neither the image nor the store changed.
    fn refused_without_change(&self, exit: i32, needle: &str, run: impl FnOnce() -> CmdOutput) {
        let (hash, store) = (self.image_hash(), self.store_snapshot());
        let out = run();
        assert_eq!(out.code(), exit, "{}", out.describe());
        assert!(
            out.stderr.contains(needle),
            "expected {needle:?} in the message\n{}",
            out.describe()
        );
        assert_eq!(self.image_hash(), hash, "the image changed");
        assert_eq!(self.store_snapshot(), store, "the store changed");
    }
}

#[test]
fn assigned_response_opens_its_slot_and_slot_0_still_opens() {
    let s = Setup::new();
    s.enroll();
    s.attach(&["--slot", "1"]);
    assert!(!s.opens(Some(1), &s.vector.response));

    let out = s.assign(&[], &s.vector.password);
    assert!(out.success(), "{}", out.describe());
    assert!(out.stdout.contains("slot 1"), "{}", out.describe());

    assert!(
        s.opens(Some(1), &s.vector.response),
        "the published response does not open slot 1"
    );
    assert!(!s.opens(Some(1), "0000000000000000000000000000000000000000"));
    assert!(s.opens(Some(0), INITIAL), "slot 0 lost its passphrase");
    assert!(!s.opens(Some(0), &s.vector.response), "slot 0 was touched");
    let shown = out.text();
    assert!(
        !shown.contains(&s.vector.response) && !shown.contains(&s.vector.password),
        "pictl printed the passphrase or the password\n{shown}"
    );
}

#[test]
fn a_response_an_upstream_privacyidea_computes_opens_the_slot_it_attached() {
    use pi_tests::privacyidea::{PrivacyIdea, Tls, ADMIN, ADMIN_PASSWORD, MACHINE};
    let pi = PrivacyIdea::start(Tls::Plain);
    let pw_dir = tempfile::tempdir().unwrap();
    let pw = pw_dir.path().join("admin.pw");
    fs::write(&pw, ADMIN_PASSWORD).unwrap();
    fs::set_permissions(&pw, fs::Permissions::from_mode(0o600)).unwrap();
    let daemon = Daemon::start_with(pi_tests::DaemonOptions {
        extra_toml: format!(
            "[upstream.pi]\nurls = [\"{}\"]\nservice_user = \"{ADMIN}\"\n\
             service_password_file = {:?}\n",
            pi.url(),
            pw.display().to_string()
        ),
        ..Default::default()
    });
    let s = Setup::with_daemon(daemon, 0);
    // The token lives on the server only: this daemon has none.
    let serial = pi.luks_token(&s.vector.secret_hex);
    pi.attach_luks(&serial, 3, s.img());
    let out = s.assign(&["--host", MACHINE], &s.vector.password);
    assert!(out.success(), "{}", out.describe());
    assert!(out.stdout.contains("slot 3"), "{}", out.describe());
    assert!(
        s.opens(Some(3), &s.vector.response),
        "the published response opens the slot the server's response was written to"
    );
    assert!(s.opens(Some(0), INITIAL), "slot 0 keeps its passphrase");
    // And the HMAC openssl computes (the responder script, as a Yubikey would answer) opens it.
    let unlock = s.unlock_test(&s.vector.password);
    assert_eq!(unlock.code(), 0, "{}", unlock.describe());
}

#[test]
fn assign_with_a_wrong_password_writes_a_key_the_right_response_does_not_open() {
    let s = Setup::new();
    s.enroll();
    s.attach(&["--slot", "2"]);
    let out = s.assign(&[], "not the password");
    assert!(out.success(), "{}", out.describe());
    assert!(!s.opens(Some(2), &s.vector.response));
}

#[test]
fn assign_json_is_one_document_naming_the_slot_and_serial() {
    let s = Setup::new();
    s.enroll();
    s.attach(&["--slot", "3"]);
    let mut args = vec![
        "--json",
        "luks",
        "assign",
        "--device",
        s.img(),
        "--key-file",
        s.key_file(),
    ];
    args.extend_from_slice(&FAST_PBKDF);
    let out = s
        .daemon
        .pictl_as(Caller::Root, &args, &format!("{}\n", s.vector.password));
    assert!(out.success(), "{}", out.describe());
    let doc: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e})\n{}", out.describe()));
    assert_eq!(doc["slots"][0]["slot"], 3, "{doc}");
    assert_eq!(doc["slots"][0]["serial"], SERIAL, "{doc}");
    assert_eq!(doc["slots"][0]["added"], true, "{doc}");
    assert!(s.opens(Some(3), &s.vector.response));
}

#[test]
fn unlock_with_the_right_password_succeeds_and_a_wrong_one_exits_1() {
    let s = Setup::new();
    s.enroll();
    s.attach(&["--slot", "1"]);
    assert!(s.assign(&[], &s.vector.password).success());
    let unlock = |password: &str| s.unlock_test(password);

    let out = unlock(&s.vector.password);
    assert_eq!(out.code(), 0, "{}", out.describe());

    let out = unlock("wrong password");
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(
        out.stderr.contains("does not open"),
        "the refusal must say why\n{}",
        out.describe()
    );
}

#[test]
fn unlock_refuses_a_responder_that_prints_no_response() {
    let s = Setup::new();
    let out = s.luks(
        &[
            "unlock",
            "--device",
            s.img(),
            "--test",
            "--responder-cmd",
            "echo not-a-response",
        ],
        "pw\n",
    );
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(
        out.stderr.contains("`echo not-a-response`"),
        "the error must name the command\n{}",
        out.describe()
    );
}

#[test]
fn concatenate_assignment_opens_with_password_then_response() {
    let s = Setup::with_vector(1);
    s.enroll();
    s.attach(&["--slot", "2", "--concatenate"]);
    let out = s.assign(&[], &s.vector.password);
    assert!(out.success(), "{}", out.describe());

    let both = format!("{}{}", s.vector.password, s.vector.response);
    assert!(
        s.opens(Some(2), &both),
        "password+response must open slot 2"
    );
    assert!(
        !s.opens(Some(2), &s.vector.response),
        "the response alone must not open a concatenate slot"
    );
    assert!(s.opens(Some(0), INITIAL));

    // The same variant at unlock time.
    let out = s.luks(
        &[
            "unlock",
            "--device",
            s.img(),
            "--test",
            "--concatenate",
            "--responder-cmd",
            s.responder(),
        ],
        &format!("{}\n", s.vector.password),
    );
    assert_eq!(out.code(), 0, "{}", out.describe());
}

#[test]
fn detach_then_clear_slot_removes_the_key_but_keeps_slot_0() {
    let s = Setup::new();
    s.enroll();
    s.attach(&["--slot", "1"]);
    assert!(s.assign(&[], &s.vector.password).success());
    assert!(s.opens(Some(1), &s.vector.response));

    s.ok(&["machine", "detach", SERIAL, "--app", "luks"]);
    let out = s.assign(&["--slot", "1", "--clear-slot"], &s.vector.password);
    assert!(out.success(), "{}", out.describe());

    assert!(
        !s.opens(Some(1), &s.vector.response),
        "slot 1 still opens after --clear-slot"
    );
    assert!(!s.opens(None, &s.vector.response));
    assert!(s.opens(Some(0), INITIAL), "slot 0 lost its passphrase");
}

#[test]
fn clear_slot_replaces_a_key_in_the_assigned_slot() {
    let s = Setup::new();
    s.enroll();
    s.attach(&["--slot", "1"]);
    assert!(s.assign(&[], "first password").success());
    let out = s.assign(&["--clear-slot"], &s.vector.password);
    assert!(out.success(), "{}", out.describe());
    assert!(s.opens(Some(1), &s.vector.response));
    assert!(s.opens(Some(0), INITIAL));
}

#[test]
fn a_device_that_does_not_exist_is_refused() {
    let s = Setup::new();
    s.enroll();
    s.attach(&["--slot", "1"]);
    let missing = s.dir.path().join("no-such.img");
    s.refused_without_change(2, "no-such.img", || {
        s.luks(
            &[
                "assign",
                "--device",
                missing.to_str().unwrap(),
                "--key-file",
                s.key_file(),
            ],
            &format!("{}\n", s.vector.password),
        )
    });
}

#[test]
fn a_plain_file_is_refused_as_not_luks() {
    let s = Setup::new();
    s.enroll();
    s.attach(&["--slot", "1"]);
    let plain = s.dir.path().join("plain.img");
    fs::write(&plain, vec![0u8; 1 << 20]).unwrap();
    let before = fs::read(&plain).unwrap();
    s.refused_without_change(2, "is not a LUKS volume", || {
        s.luks(
            &[
                "assign",
                "--device",
                plain.to_str().unwrap(),
                "--key-file",
                s.key_file(),
            ],
            &format!("{}\n", s.vector.password),
        )
    });
    assert_eq!(fs::read(&plain).unwrap(), before, "the plain file changed");
}

#[test]
fn slot_0_is_refused() {
    let s = Setup::new();
    s.enroll();
    s.attach(&["--slot", "1"]);
    s.refused_without_change(2, "slot 0", || {
        s.assign(&["--slot", "0", "--clear-slot"], &s.vector.password)
    });
    assert!(s.opens(Some(0), INITIAL));
}

#[test]
fn a_slot_in_use_is_refused_without_clear_slot() {
    let s = Setup::new();
    s.enroll();
    s.attach(&["--slot", "1"]);
    // Slot 1 holds some other key.
    let other = s.dir.path().join("other.key");
    fs::write(&other, "another passphrase").unwrap();
    let out = run_cryptsetup(
        &[
            "luksAddKey",
            "--batch-mode",
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--key-slot",
            "1",
            "--key-file",
            s.key_file(),
            s.img(),
            other.to_str().unwrap(),
        ],
        b"",
    );
    assert!(out.success(), "{}", out.describe());

    s.refused_without_change(1, "--clear-slot", || s.assign(&[], &s.vector.password));
    assert!(s.opens(Some(1), "another passphrase"));
    assert!(!s.opens(Some(1), &s.vector.response));
}

#[test]
fn non_ubom_or_non_totp_tokens_cannot_be_attached_for_luks() {
    let s = Setup::new();
    let key = &s.vector.secret_hex;
    s.ok(&[
        "token", "enroll", "totp", "--user", "root", "--serial", "TOTP4711", "--otpkey", key,
        "--no-qr",
    ]);
    s.ok(&[
        "token",
        "enroll",
        "hotp",
        "--user",
        "root",
        "--serial",
        "UBOM4711_2",
        "--otpkey",
        key,
        "--no-qr",
    ]);
    for serial in ["TOTP4711", "UBOM4711_2"] {
        let before = s.store_snapshot();
        let out = s.daemon.pictl(&[
            "machine",
            "attach",
            serial,
            "--app",
            "luks",
            "--slot",
            "1",
            "--device",
            s.img(),
        ]);
        assert_eq!(out.code(), 1, "{serial}\n{}", out.describe());
        assert!(
            out.stderr.contains("UBOM"),
            "{serial}: the refusal must say what luks takes\n{}",
            out.describe()
        );
        assert_eq!(s.store_snapshot(), before, "{serial}: the store changed");
    }
    // With no luks assignment, assign has nothing to write.
    s.refused_without_change(1, "no luks assignment", || {
        s.assign(&[], &s.vector.password)
    });
}

#[test]
fn only_root_is_given_luks_responses() {
    let s = Setup::new();
    s.enroll();
    s.attach(&["--slot", "1"]);
    s.refused_without_change(1, "root", || {
        s.luks_as(
            Caller::Nobody,
            &["assign", "--device", s.img(), "--key-file", s.key_file()],
            &format!("{}\n", s.vector.password),
        )
    });
}

#[test]
fn the_daemon_never_reveals_the_secret_or_logs_the_response() {
    let s = Setup::new();
    s.enroll();
    s.attach(&["--slot", "1"]);
    assert!(s.assign(&[], &s.vector.password).success());

    let secret = s.vector.secret_hex.to_lowercase();
    let seen = [
        s.daemon.pictl_json(&["machine", "list"]).to_string(),
        s.daemon.pictl_json(&["token", "show", SERIAL]).to_string(),
        s.daemon.pictl_json(&["token", "list"]).to_string(),
        s.daemon
            .pictl_json(&["audit", "show", "--limit", "1000"])
            .to_string(),
        s.daemon.log(),
    ];
    for (i, text) in seen.iter().enumerate() {
        let lower = text.to_lowercase();
        assert!(
            !lower.contains(&secret),
            "output {i} contains the token secret:\n{text}"
        );
        assert!(
            !lower.contains(&s.vector.response),
            "output {i} contains the LUKS passphrase:\n{text}"
        );
        assert!(
            !text.contains(&s.vector.password),
            "output {i} contains the password:\n{text}"
        );
    }
}

/// The image path the tests pass is canonical; assignments made with another spelling of it
/// still match.
#[test]
fn an_assignment_naming_the_device_through_a_symlink_matches() {
    let s = Setup::new();
    s.enroll();
    let link = s.dir.path().join("link.img");
    std::os::unix::fs::symlink(&s.img, &link).unwrap();
    s.ok(&[
        "machine",
        "attach",
        SERIAL,
        "--app",
        "luks",
        "--slot",
        "4",
        "--device",
        link.to_str().unwrap(),
    ]);
    let out = s.assign(&[], &s.vector.password);
    assert!(out.success(), "{}", out.describe());
    assert!(s.opens(Some(4), &s.vector.response));
    assert!(Path::new(&link).exists());
}

#[test]
fn without_a_terminal_the_existing_passphrase_must_come_from_key_file() {
    let s = Setup::new();
    s.enroll();
    s.attach(&["--slot", "1"]);
    s.refused_without_change(2, "--key-file", || {
        s.luks(
            &["assign", "--device", s.img()],
            &format!("{}\n{INITIAL}\n", s.vector.password),
        )
    });
}
