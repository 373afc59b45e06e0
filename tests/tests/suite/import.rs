#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! `pictl import`: tokens brought over from pam_oath's usersfile and google-authenticator's
//! files, checked by logging in through the real PAM stack with codes from oathtool.

use pi_tests::{hotp, test_key, totp, wait_for_fresh_totp_step, Caller, CmdOutput, Daemon, Pam};

/// `text` is in `stream` (the stdout or stderr of `out`), or the test fails showing both.
fn says(out: &CmdOutput, stream: &str, text: &str) {
    assert!(
        stream.contains(text),
        "expected {text:?}\n{}",
        out.describe()
    );
}

fn write(daemon: &Daemon, name: &str, text: &str) -> String {
    let path = daemon.dir().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// RFC 4226's key "12345678901234567890": in base32 as google-authenticator writes it, in hex
/// for oathtool.
const GA_KEY_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const GA_KEY_HEX: &str = "3132333435363738393031323334353637383930";

#[test]
fn an_oath_usersfile_imports_once_and_logins_continue_where_pam_oath_stopped() {
    let daemon = Daemon::start();
    let hkey = test_key("import-oath-hotp", 20);
    let tkey = test_key("import-oath-totp", 20);
    // The HOTP line as pam_oath leaves it after accepting counter 5 (written at a time long
    // past, so only its counter matters), the TOTP line never used.
    let file = write(
        &daemon,
        "users.oath",
        &format!(
            "# pam_oath's file\nHOTP root - {hkey} 5 {} 2024-01-01T00:00:00L\n\n\
             HOTP/T30 nobody - {tkey}\n",
            hotp(&hkey, 5, 6)
        ),
    );
    let now = wait_for_fresh_totp_step(30);
    let out = daemon.pictl(&["import", "oath", &file]);
    assert!(out.success(), "{}", out.describe());
    says(
        &out,
        &out.stdout,
        "2 imported, 0 already present, 0 refused",
    );
    assert!(!out.text().contains(&hkey), "a key was printed");

    let pam = Pam::new(&daemon, "");
    pam.login("root", &hotp(&hkey, 4, 6))
        .assert_rejected("counter 4 was spent under pam_oath");
    pam.login("root", &hotp(&hkey, 5, 6))
        .assert_rejected("pam_oath accepted counter 5 last");
    pam.login("root", &hotp(&hkey, 6, 6))
        .assert_accepted("the HOTP continues after pam_oath's last counter");
    pam.login("nobody", &totp(&tkey, "sha1", 6, 30, now))
        .assert_rejected("a TOTP code shown before the import");
    pam.login("nobody", &totp(&tkey, "sha1", 6, 30, now + 30))
        .assert_accepted("the next step's code");

    let again = daemon.pictl(&["import", "oath", &file]);
    assert!(again.success(), "{}", again.describe());
    says(
        &again,
        &again.stdout,
        "0 imported, 2 already present, 0 refused",
    );
    assert_eq!(daemon.tokens(None).len(), 2, "a second run made duplicates");
    let imports = daemon
        .audit(20)
        .into_iter()
        .filter(|e| e["action"] == "token import")
        .count();
    assert!(
        imports >= 6,
        "one audit entry per token and per request: {imports}"
    );
}

/// A PAM service that logs in with the real pam_oath against `usersfile`, which pam_oath
/// rewrites after every login (its directory must be writable).
fn pam_oath(daemon: &Daemon, usersfile: &str) -> Pam {
    Pam::with_auth_stack(
        daemon.socket(),
        &format!("auth required pam_oath.so usersfile={usersfile} window=5"),
    )
}

#[test]
fn no_code_the_real_pam_oath_accepted_is_accepted_after_the_import() {
    let daemon = Daemon::start();
    let hkey = test_key("pam-oath-used-hotp", 20);
    let tkey = test_key("pam-oath-used-totp", 20);
    let file = write(
        &daemon,
        "users.oath",
        &format!("HOTP root - {hkey}\nHOTP/T30 nobody - {tkey}\n"),
    );
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let old = pam_oath(&daemon, &file);
    // HOTP: counter 1, within pam_oath's window. TOTP: the code of two steps ahead, which its
    // window also takes.
    let now = wait_for_fresh_totp_step(30);
    let hotp_used = hotp(&hkey, 1, 6);
    let totp_used = totp(&tkey, "sha1", 6, 30, now + 60);
    old.login("root", &hotp_used)
        .assert_accepted("pam_oath: an HOTP code within its window");
    old.login("nobody", &totp_used)
        .assert_accepted("pam_oath: a TOTP code within its window");
    old.login("root", &hotp_used)
        .assert_rejected("pam_oath itself refuses its last HOTP code again");
    old.login("nobody", &totp_used)
        .assert_rejected("pam_oath itself refuses its last TOTP code again");
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(
        written.contains(&hotp_used) && written.contains(&totp_used),
        "pam_oath did not record its logins:\n{written}"
    );

    let out = daemon.pictl(&["import", "oath", &file]);
    assert!(out.success(), "{}", out.describe());
    says(&out, &out.stdout, "2 imported");
    let pam = Pam::new(&daemon, "");
    pam.login("root", &hotp_used)
        .assert_rejected("pam_oath's last HOTP code, after the import");
    pam.login("nobody", &totp_used)
        .assert_rejected("pam_oath's last TOTP code, after the import");
    pam.login("nobody", &totp(&tkey, "sha1", 6, 30, now + 30))
        .assert_rejected("a TOTP step before pam_oath's last one");
    pam.login("root", &hotp(&hkey, 2, 6))
        .assert_accepted("the HOTP code after pam_oath's last one");
    pam.login("nobody", &totp(&tkey, "sha1", 6, 30, now + 90))
        .assert_accepted("the TOTP step after pam_oath's last one");
}

#[test]
fn a_usersfile_with_a_line_it_cannot_read_imports_nothing_and_names_the_line() {
    let daemon = Daemon::start();
    let key = test_key("import-bad-line", 20);
    let file = write(
        &daemon,
        "users.oath",
        &format!("HOTP root - {key}\nHOTP/T45 root - {key}\nHOTP root 1234 {key}x\n"),
    );
    let out = daemon.pictl(&["import", "oath", &file]);
    assert_eq!(out.code(), 2, "{}", out.describe());
    says(
        &out,
        &out.stderr,
        "users.oath:2: a TOTP time step of \"45\"",
    );
    says(&out, &out.stderr, "users.oath:3: the secret");
    says(&out, &out.stderr, "nothing was imported");
    assert!(
        !out.text().contains(&key) && !out.text().contains("1234"),
        "a secret or password was echoed: {}",
        out.describe()
    );
    assert!(daemon.tokens(None).is_empty(), "a token was imported");
}

#[test]
fn tokens_the_daemon_refuses_are_listed_and_the_others_imported() {
    let daemon = Daemon::start();
    let good = test_key("import-good", 20);
    let file = write(
        &daemon,
        "users.oath",
        &format!("HOTP root - {good}\nHOTP no-such-user-pi - {good}\nHOTP root - 3132333435\n"),
    );
    let out = daemon.pictl(&["import", "oath", &file]);
    assert_eq!(out.code(), 1, "{}", out.describe());
    says(&out, &out.stdout, "users.oath:2: user no-such-user-pi@");
    says(&out, &out.stdout, "users.oath:3: the key has 5 bytes");
    says(
        &out,
        &out.stdout,
        "1 imported, 0 already present, 2 refused",
    );
    let json = daemon.pictl(&["--json", "import", "oath", &file]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        (doc["imported"].as_u64(), doc["present"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(doc["tokens"][1]["status"], "refused", "{doc}");
    Pam::new(&daemon, "")
        .login("root", &hotp(&good, 0, 6))
        .assert_accepted("the good line was imported");
}

#[test]
fn a_google_authenticator_file_brings_its_secret_and_scratch_codes_each_usable_once() {
    let daemon = Daemon::start();
    let text = format!(
        "{GA_KEY_B32}\n\" RATE_LIMIT 3 30 1700000000\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE\n\
         \" TOTP_AUTH\n31415926\n27182818\n"
    );
    // Written by root, so the file's owner (the user it belongs to) is root.
    let file = write(&daemon, "google_authenticator", &text);
    let link = daemon.dir().join("link");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let out = daemon.pictl(&["import", "google-authenticator", link.to_str().unwrap()]);
    assert_eq!(out.code(), 2, "{}", out.describe());
    says(&out, &out.stderr, "symbolic link");

    let now = wait_for_fresh_totp_step(30);
    let out = daemon.pictl(&["import", "google-authenticator", &file]);
    assert!(out.success(), "{}", out.describe());
    says(
        &out,
        &out.stdout,
        "2 imported, 0 already present, 0 refused",
    );
    says(&out, &out.stderr, "RATE_LIMIT is not carried over");
    let types: Vec<String> = daemon
        .tokens(Some("root"))
        .iter()
        .map(|t| t["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(types.len(), 2, "{types:?}");
    assert!(
        types.contains(&"totp".into()) && types.contains(&"tan".into()),
        "{types:?}"
    );

    let pam = Pam::new(&daemon, "");
    pam.login("root", &totp(GA_KEY_HEX, "sha1", 6, 30, now + 30))
        .assert_accepted("the google-authenticator secret");
    pam.login("root", "27182818")
        .assert_accepted("a scratch code");
    pam.login("root", "27182818")
        .assert_rejected("a used scratch code");
    pam.login("root", "31415926")
        .assert_accepted("the other scratch code");

    let again = daemon.pictl(&["import", "google-authenticator", &file]);
    assert!(
        again
            .stdout
            .contains("0 imported, 2 already present, 0 refused"),
        "used scratch codes must not come back: {}",
        again.describe()
    );
    pam.login("root", "31415926")
        .assert_rejected("a scratch code used before the second run");
}

#[test]
fn only_administrators_import_and_a_dry_run_changes_nothing() {
    let daemon = Daemon::start();
    let key = test_key("import-rights", 20);
    // A directory anyone may read, so the refusal below is the daemon's, not the file's.
    let dir = tempfile::Builder::new()
        .prefix("pi-import")
        .tempdir()
        .unwrap();
    let path = dir.path().join("users.oath");
    std::fs::write(&path, format!("HOTP nobody - {key}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = path.to_str().unwrap();

    let out = daemon.pictl_as(Caller::Nobody, &["import", "oath", path], "");
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(daemon.tokens(None).is_empty(), "a user imported a token");

    let out = daemon.pictl(&["import", "oath", path, "--dry-run"]);
    assert!(out.success(), "{}", out.describe());
    says(
        &out,
        &out.stdout,
        "1 token(s) for 1 user(s) would be imported",
    );
    assert!(daemon.tokens(None).is_empty(), "the dry run imported");
}
