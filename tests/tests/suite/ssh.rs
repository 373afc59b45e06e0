#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! SSH keys as tokens (privacyIDEA's `sshkey` type and ssh machine application): a real `sshd` on
//! 127.0.0.1 asks `pictl ssh keys %u` for the authorized keys of the login, and with
//! `AuthenticationMethods publickey,keyboard-interactive` asks pam_pi for a TOTP code as well.
//! Fingerprints are checked against `ssh-keygen -lf`, an implementation independent of ours.

use pi_tests::process::CmdOutput;
use pi_tests::sshd::{
    attach_ssh, enroll_sshkey, ssh_keys, type_and_blob, KeysCommand, SshKey, Sshd, SshdOptions,
};
use pi_tests::{test_key, totp, wait_for_fresh_totp_step, Caller, Daemon, NOBODY};
use serde_json::Value;
use std::process::Command;

/// The serial of the only token `user` has.
fn only_serial(daemon: &Daemon, user: &str) -> String {
    let tokens = daemon.tokens(Some(user));
    assert_eq!(tokens.len(), 1, "expected one token of {user}: {tokens:?}");
    tokens[0]["serial"]
        .as_str()
        .unwrap_or_else(|| panic!("token without serial: {tokens:?}"))
        .to_owned()
}

/// `pictl ssh keys` succeeded; its lines as `TYPE BASE64`, sorted.
fn printed_keys(out: &CmdOutput, what: &str) -> Vec<String> {
    assert!(
        out.success(),
        "{what}: pictl ssh keys failed\n{}",
        out.describe()
    );
    let mut keys: Vec<String> = out
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            type_and_blob(l).unwrap_or_else(|| panic!("{what}: not an authorized_keys line: {l:?}"))
        })
        .collect();
    keys.sort();
    keys
}

fn sorted(keys: &[&SshKey]) -> Vec<String> {
    let mut keys: Vec<String> = keys.iter().map(|k| k.type_and_blob()).collect();
    keys.sort();
    keys
}

/// Some string in `doc` (at any depth) is `fingerprint` or has it as a whitespace-separated word.
fn mentions(doc: &Value, fingerprint: &str) -> bool {
    match doc {
        Value::String(s) => s.split_whitespace().any(|w| w == fingerprint),
        Value::Array(items) => items.iter().any(|v| mentions(v, fingerprint)),
        Value::Object(map) => map.values().any(|v| mentions(v, fingerprint)),
        _ => false,
    }
}

#[test]
fn key_attached_for_root_logs_in_over_ssh() {
    let daemon = Daemon::start();
    let sshd = Sshd::start(&daemon);
    let key = sshd.user_key("root-key");
    let public = key.public.display().to_string();

    let out = daemon.pictl(&[
        "token",
        "enroll",
        "sshkey",
        "--user",
        "root",
        "--sshkey-file",
        &public,
    ]);
    assert!(out.success(), "{}", out.describe());
    assert!(
        out.stdout.contains(&key.fingerprint()),
        "enrollment should print the key's fingerprint {}\n{}",
        key.fingerprint(),
        out.describe()
    );
    attach_ssh(&daemon, &only_serial(&daemon, "root"), "root");

    let login = sshd.login(&key, "root", None);
    login.assert_logged_in("the key is attached for root on this host");
    assert!(
        login.sshd_log.contains("Accepted publickey for root"),
        "sshd should name the method that let root in\n{}",
        login.describe()
    );
}

#[test]
fn disabled_sshkey_token_no_longer_logs_in() {
    let daemon = Daemon::start();
    let sshd = Sshd::start(&daemon);
    let key = sshd.user_key("root-key");
    let serial = enroll_sshkey(&daemon, "root", &key);
    attach_ssh(&daemon, &serial, "root");
    sshd.login(&key, "root", None)
        .assert_logged_in("attached and enabled");

    let out = daemon.pictl(&["token", "disable", &serial]);
    assert!(out.success(), "{}", out.describe());
    sshd.login(&key, "root", None)
        .assert_denied("the token is disabled");

    let out = daemon.pictl(&["token", "enable", &serial]);
    assert!(out.success(), "{}", out.describe());
    sshd.login(&key, "root", None)
        .assert_logged_in("enabled again");
}

#[test]
fn key_attached_for_another_login_does_not_let_root_in() {
    let daemon = Daemon::start();
    let sshd = Sshd::start(&daemon);
    let key = sshd.user_key("nobody-key");
    let serial = enroll_sshkey(&daemon, "root", &key);
    attach_ssh(&daemon, &serial, NOBODY);
    assert_eq!(
        printed_keys(&ssh_keys(&daemon, Caller::Nobody, NOBODY), "keys of nobody"),
        sorted(&[&key]),
        "the attachment exists, for the login nobody"
    );

    sshd.login(&key, "root", None)
        .assert_denied("the key is attached for the login nobody, not root");
}

#[test]
fn unattached_key_does_not_log_in() {
    let daemon = Daemon::start();
    let sshd = Sshd::start(&daemon);
    let key = sshd.user_key("root-key");
    let serial = enroll_sshkey(&daemon, "root", &key);

    sshd.login(&key, "root", None)
        .assert_denied("enrolled for root but attached to no host");
    attach_ssh(&daemon, &serial, "root");
    sshd.login(&key, "root", None)
        .assert_logged_in("the same key once attached: the denial was about the attachment");
}

#[test]
fn ssh_key_and_totp_code_log_in_together() {
    let daemon = Daemon::start();
    let sshd = Sshd::start_with(
        &daemon,
        SshdOptions {
            authentication_methods: "publickey,keyboard-interactive".into(),
        },
    );
    let key = sshd.user_key("root-key");
    attach_ssh(&daemon, &enroll_sshkey(&daemon, "root", &key), "root");
    let otpkey = test_key("ssh-totp", 20);
    daemon.enroll_totp("root", &otpkey, "sha1", 6, 30, None);
    let stranger = sshd.user_key("stranger");

    let now = wait_for_fresh_totp_step(30);
    let right = totp(&otpkey, "sha1", 6, 30, now);
    let unused = sshd.login(&stranger, "root", Some(&right));
    unused.assert_denied("a key that is not attached, even with the right code");
    assert!(
        unused.prompts.is_empty(),
        "sshd must refuse the key before PAM asks for a code\n{}",
        unused.describe()
    );

    let mut wrong = totp(&otpkey, "sha1", 6, 30, now - 3600);
    if wrong == right {
        wrong = totp(&otpkey, "sha1", 6, 30, now - 7200);
    }
    let denied = sshd.login(&key, "root", Some(&wrong));
    denied.assert_denied("the attached key with a wrong TOTP code");
    assert!(
        denied.sshd_log.contains("Partial publickey") && !denied.prompts.is_empty(),
        "the key must have been accepted and the code asked for: the refusal is the code's\n{}",
        denied.describe()
    );

    let now = wait_for_fresh_totp_step(30);
    let login = sshd.login(&key, "root", Some(&totp(&otpkey, "sha1", 6, 30, now)));
    login.assert_logged_in(
        "the attached key and the current TOTP code (root also has an sshkey token)",
    );
    assert!(
        login.sshd_log.contains("Accepted keyboard-interactive"),
        "the second factor went through PAM\n{}",
        login.describe()
    );
}

#[test]
fn pictl_ssh_keys_answers_empty_and_exit_0_when_the_daemon_is_down() {
    let mut daemon = Daemon::start();
    let keys = KeysCommand::new(&daemon);
    let dir = tempfile::tempdir().unwrap();
    let key = SshKey::generate(dir.path(), "root-key", &["-t", "ed25519"]);
    attach_ssh(&daemon, &enroll_sshkey(&daemon, "root", &key), "root");
    assert_eq!(
        printed_keys(&keys.run("root"), "daemon up, through the sshd wrapper"),
        sorted(&[&key]),
        "with the daemon up the key is printed, so the empty answers below mean \"down\""
    );

    daemon.stop();
    for (what, out) in [
        (
            "pictl ssh keys root",
            ssh_keys(&daemon, Caller::Nobody, "root"),
        ),
        ("the AuthorizedKeysCommand script", keys.run("root")),
    ] {
        assert_eq!(out.code(), 0, "{what}, daemon down\n{}", out.describe());
        assert!(
            out.stdout.trim().is_empty(),
            "{what}, daemon down: no key may be printed\n{}",
            out.describe()
        );
    }
}

#[test]
fn pictl_ssh_keys_answers_empty_and_exit_0_when_the_daemon_hangs() {
    let daemon = Daemon::start();
    let keys = KeysCommand::new(&daemon);
    daemon.freeze();
    // `process::run` fails the test if the command does not return: sshd would wait as long.
    let out = keys.run("root");
    daemon.thaw();
    assert_eq!(out.code(), 0, "daemon hung\n{}", out.describe());
    assert!(out.stdout.trim().is_empty(), "{}", out.describe());
}

#[test]
fn ssh_keys_prints_only_the_keys_of_the_asked_login() {
    let daemon = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let gen = |name: &str| SshKey::generate(dir.path(), name, &["-t", "ed25519"]);
    let (kept, revoked, expired, disabled) =
        (gen("kept"), gen("revoked"), gen("expired"), gen("disabled"));
    let mut serials = Vec::new();
    for key in [&kept, &revoked, &expired, &disabled] {
        let serial = enroll_sshkey(&daemon, "root", key);
        attach_ssh(&daemon, &serial, "root");
        serials.push(serial);
    }
    let keys_of = |login: &str| {
        printed_keys(
            &ssh_keys(&daemon, Caller::Nobody, login),
            &format!("keys of {login}, asked as nobody"),
        )
    };
    assert_eq!(
        keys_of("root"),
        sorted(&[&kept, &revoked, &expired, &disabled]),
        "every attached, usable key of root"
    );
    assert_eq!(keys_of(NOBODY), Vec::<String>::new(), "nobody has no key");

    for args in [
        vec!["token", "revoke", serials[1].as_str()],
        vec![
            "token",
            "set",
            serials[2].as_str(),
            "--validity-end",
            "2020-01-01T00:00:00Z",
        ],
        vec!["token", "disable", serials[3].as_str()],
    ] {
        let out = daemon.pictl(&args);
        assert!(out.success(), "pictl {args:?}\n{}", out.describe());
    }
    assert_eq!(
        keys_of("root"),
        sorted(&[&kept]),
        "revoked, expired and disabled tokens are not printed"
    );

    let other = gen("other");
    attach_ssh(&daemon, &enroll_sshkey(&daemon, "root", &other), NOBODY);
    assert_eq!(
        keys_of(NOBODY),
        sorted(&[&other]),
        "the key attached for nobody"
    );
    assert_eq!(
        keys_of("root"),
        sorted(&[&kept]),
        "a key attached for nobody is not root's"
    );
    assert_eq!(
        keys_of(pi_tests::NO_SUCH_USER),
        Vec::<String>::new(),
        "a login that does not exist has no keys"
    );
}

/// `pictl token enroll sshkey --user root --sshkey LINE` exits 1 saying one of `words`, and
/// creates no token.
fn assert_enroll_refused(daemon: &Daemon, line: &str, what: &str, words: &[&str]) -> CmdOutput {
    // `--sshkey=LINE`: a line starting with `-` must reach the check, not clap's option parser.
    assert_enroll_args_refused(daemon, &[&format!("--sshkey={line}")], &[1], what, words)
}

/// `pictl token enroll sshkey --user root KEY_ARGS` exits with one of `exits` saying one of
/// `words`, and creates no token.
fn assert_enroll_args_refused(
    daemon: &Daemon,
    key_args: &[&str],
    exits: &[i32],
    what: &str,
    words: &[&str],
) -> CmdOutput {
    let before = daemon.tokens(None);
    let mut args = vec!["token", "enroll", "sshkey", "--user", "root"];
    args.extend_from_slice(key_args);
    let out = daemon.pictl(&args);
    assert!(
        exits.contains(&out.code()),
        "{what}: expected exit {exits:?}\n{}",
        out.describe()
    );
    let text = out.text().to_lowercase();
    assert!(
        words.iter().any(|w| text.contains(w)),
        "{what}: the error should mention one of {words:?}\n{}",
        out.describe()
    );
    assert_eq!(daemon.tokens(None), before, "{what}: a token was created");
    out
}

#[test]
fn sshkey_enrollment_refuses_malformed_keys() {
    let daemon = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let good = SshKey::generate(dir.path(), "good", &["-t", "ed25519"]);
    let blob = good.type_and_blob();
    let blob = blob.split_whitespace().nth(1).unwrap();
    for (line, what) in [
        ("not a key".to_owned(), "free text"),
        ("ssh-ed25519".to_owned(), "a type without a key"),
        (
            "ssh-ed25519 !!!not-base64!!!".to_owned(),
            "a key that is not base64",
        ),
        (
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5".to_owned(),
            "a key truncated after its type",
        ),
        (
            format!("ssh-rsa {blob} mismatch"),
            "an ed25519 key announced as ssh-rsa",
        ),
        (
            format!("ssh-ed25519 {}", &blob[..blob.len() - 8]),
            "an ed25519 key missing its last bytes",
        ),
    ] {
        assert_enroll_refused(&daemon, &line, what, &["key"]);
    }
}

#[test]
fn sshkey_enrollment_refuses_a_private_key_without_echoing_it() {
    let daemon = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let key = SshKey::generate(dir.path(), "pasted", &["-t", "ed25519"]);
    let private = std::fs::read_to_string(&key.private).unwrap();
    let body = private.lines().nth(1).unwrap();
    let path = key.private.display().to_string();
    // A refusal by pictl itself (usage, 2) or by the daemon (1) will do, as long as it says
    // what went wrong: a private key where the public one belongs.
    for (key_args, what) in [
        (
            vec!["--sshkey-file", path.as_str()],
            "the private key file instead of the .pub",
        ),
        (vec!["--sshkey", private.as_str()], "a pasted private key"),
    ] {
        let out =
            assert_enroll_args_refused(&daemon, &key_args, &[1, 2], what, &["private", ".pub"]);
        assert!(
            !out.text().contains(body),
            "the private key must not be echoed back\n{}",
            out.describe()
        );
    }
}

/// A DSA public key (`ssh-keygen -t dsa`, OpenSSH 9.2): ssh-dss is disabled in OpenSSH since 7.0
/// and DSA keys are 1024 bits.
const DSA_KEY: &str = "ssh-dss AAAAB3NzaC1kc3MAAACBALvXbjG/Scv3VLy2IXN6lRqs9hhldYXhjfQpNWSTwd1HDJFH2lPoa8uMp/wKuULYTlQr0KGUkrS3tS/vGRaDB/Q5ET6WzlcZwfZddk0VrplpqEQ7tWyloGoJJeq8TqGHsAUXsrMhbrAAmS7W3g20EEoDJv1PCtT4sqPY2UlNYNV/AAAAFQC2EYqnwlbt+HXrFuA8fz6pmHKo2QAAAIEAl24XqA0ZIbpoSy+WDkJ2DvTs5PwyoHSlpKRWzXKG/ynl234Tx7XGgfxjV3eZwtZ64F3Z75pHoxlSkqaJdlIpN0OPEbyKmcZo1KMrAIGYHqA9Bc5ktC2u15YVUSEvyteIajL7PNeSUUsfs6FxmFux0H/qlhRDGP6yYe2cC8VCv+wAAACBAKf2yRQ9hFqaMSyyuQd9RV/XYnslGkTSE7SOOGhjShlnUFBtkC+W4Tw982yktTpTbeqdUpHtxhF3pOFUojZz8lZGQIdkLhbe10hNRARCCN9f45DLdRHfYaqEW0enraF+TWlaeCsGWDhEZnhCPDsavh7fA+1mwvmiG30LxcMCjysF pi-test-dsa";

#[test]
fn sshkey_enrollment_refuses_a_dsa_key() {
    let daemon = Daemon::start();
    assert_enroll_refused(&daemon, DSA_KEY, "a DSA key", &["dsa", "dss"]);
}

/// An `ssh-rsa` line for a fresh 1024-bit RSA key, made by openssl and converted by ssh-keygen
/// (newer ssh-keygen refuses to generate one).
fn rsa_1024_line(dir: &std::path::Path) -> String {
    let pem = dir.join("rsa1024.pem");
    let public_pem = dir.join("rsa1024.pub.pem");
    for args in [
        vec![
            "genrsa".into(),
            "-out".into(),
            pem.display().to_string(),
            "1024".into(),
        ],
        vec![
            "rsa".into(),
            "-in".into(),
            pem.display().to_string(),
            "-pubout".into(),
            "-out".into(),
            public_pem.display().to_string(),
        ],
    ] {
        let mut cmd = Command::new("openssl");
        cmd.args(&args);
        let out = pi_tests::process::run(cmd, b"");
        assert!(out.success(), "openssl {args:?}\n{}", out.describe());
    }
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-i", "-m", "PKCS8", "-f"]).arg(&public_pem);
    let out = pi_tests::process::run(cmd, b"");
    assert!(out.success(), "ssh-keygen -i\n{}", out.describe());
    let line = out.stdout.trim().to_owned();
    assert!(line.starts_with("ssh-rsa "), "{}", out.describe());
    line
}

#[test]
fn sshkey_enrollment_refuses_a_1024_bit_rsa_key() {
    let daemon = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let line = rsa_1024_line(dir.path());
    assert_enroll_refused(
        &daemon,
        &line,
        "a 1024-bit RSA key",
        &["1024", "bit", "short"],
    );
}

#[test]
fn sshkey_enrollment_accepts_ed25519_ecdsa_and_rsa_with_the_ssh_keygen_fingerprint() {
    let daemon = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    for (name, args) in [
        ("ed25519", vec!["-t", "ed25519"]),
        ("ecdsa256", vec!["-t", "ecdsa", "-b", "256"]),
        ("rsa3072", vec!["-t", "rsa", "-b", "3072"]),
    ] {
        let key = SshKey::generate(dir.path(), name, &args);
        let fingerprint = key.fingerprint();
        let enrolled = daemon.enroll(&["sshkey", "--user", "root", "--sshkey", &key.line()]);
        assert!(
            mentions(&enrolled, &fingerprint),
            "{name}: enrollment should give the fingerprint ssh-keygen prints, {fingerprint}\n\
             {enrolled:#}"
        );
        let serial = pi_tests::daemon::serial_of(&enrolled);
        let token = daemon.token(&serial);
        assert_eq!(token["type"], "sshkey", "{name}: {token:#}");
        assert!(
            mentions(&token, &fingerprint),
            "{name}: `token list` should show the fingerprint {fingerprint}\n{token:#}"
        );
    }
}
