#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! `pictl import pskc`: PSKC files written by an independent implementation of RFC 6030
//! (python-pskc, from PyPI), encrypted under a pre-shared key or a password, imported and then
//! logged in with through the real PAM stack, with codes from oathtool; wrong keys, changed
//! files and hostile XML import nothing.

use pi_tests::{hotp, test_key, totp, wait_for_fresh_totp_step, Caller, CmdOutput, Daemon, Pam};

/// The transport key the "vendor" encrypts with (AES-128), and the file's password.
const TRANSPORT_KEY: &str = "000102030405060708090a0b0c0d0e0f";
const PASSWORD: &str = "Correct horse 7";

/// A PSKC file written by python-pskc: an HOTP key of root at counter 3 and a TOTP key of
/// nobody, encrypted as `how` says (`preshared` or `password`).
fn vendor_file(daemon: &Daemon, how: &str, hotp_key: &str, totp_key: &str) -> String {
    let path = daemon.dir().join(format!("{how}.pskc"));
    let script = r#"
import sys
from binascii import a2b_hex
import pskc
path, how, hotp_key, totp_key, transport, password = sys.argv[1:]
p = pskc.PSKC()
p.add_key(id="hw-1", secret=a2b_hex(hotp_key), algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp",
          response_length=6, response_encoding="DECIMAL", counter=3, manufacturer="TokenVendor",
          serial="HW0001", key_userid="root")
p.add_key(id="hw-2", secret=a2b_hex(totp_key), algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp",
          response_length=6, response_encoding="DECIMAL", time_interval=30, manufacturer="TokenVendor",
          serial="HW0002", key_userid="nobody")
if how == "preshared":
    p.encryption.setup_preshared_key(key=a2b_hex(transport), key_name="transport")
else:
    p.encryption.setup_pbkdf2(password, iterations=2000)
p.write(path)
"#;
    pi_tests::privacyidea::python(
        script,
        &[
            path.to_str().unwrap(),
            how,
            hotp_key,
            totp_key,
            TRANSPORT_KEY,
            PASSWORD,
        ],
    );
    path.display().to_string()
}

fn import(daemon: &Daemon, args: &[&str], stdin: &str) -> CmdOutput {
    let mut all = vec!["import", "pskc"];
    all.extend_from_slice(args);
    daemon.pictl_as(Caller::Root, &all, stdin)
}

fn token_count(daemon: &Daemon) -> usize {
    let doc = daemon.pictl_json(&["token", "list"]);
    doc["tokens"].as_array().map_or(0, Vec::len)
}

#[test]
fn a_vendors_file_under_a_preshared_key_imports_and_its_codes_log_in() {
    let daemon = Daemon::start();
    let (hkey, tkey) = (test_key("pskc-hotp", 20), test_key("pskc-totp", 20));
    let file = vendor_file(&daemon, "preshared", &hkey, &tkey);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("EncryptedValue") && !text.contains(&hkey),
        "{text}"
    );

    let dry = import(&daemon, &[&file, "--key", TRANSPORT_KEY, "--dry-run"], "");
    assert!(dry.success(), "{}", dry.describe());
    assert!(
        dry.stdout
            .contains("2 token(s) for 2 user(s) would be imported"),
        "{}",
        dry.describe()
    );
    assert_eq!(token_count(&daemon), 0, "a dry run changes nothing");

    let key_file = daemon.dir().join("transport.key");
    std::fs::write(&key_file, format!("{TRANSPORT_KEY}\n")).unwrap();
    let now = wait_for_fresh_totp_step(30);
    let out = import(
        &daemon,
        &[&file, "--key-file", key_file.to_str().unwrap()],
        "",
    );
    assert!(out.success(), "{}", out.describe());
    assert!(out.stdout.contains("2 imported"), "{}", out.describe());
    assert!(!out.text().contains(&hkey) && !out.text().contains(TRANSPORT_KEY));

    let pam = Pam::new(&daemon, "");
    pam.login("root", &hotp(&hkey, 2, 6))
        .assert_rejected("below the file's counter 3");
    pam.login("root", &hotp(&hkey, 3, 6))
        .assert_accepted("the HOTP key at the file's counter");
    pam.login("nobody", &totp(&tkey, "sha1", 6, 30, now + 30))
        .assert_accepted("the TOTP key's next code");
    let listed = daemon.pictl(&["token", "list", "--user", "root"]).text();
    assert!(listed.contains("TokenVendor HW0001"), "{listed}");
}

#[test]
fn a_password_protected_file_imports_with_the_password_and_not_with_another() {
    let daemon = Daemon::start();
    let (hkey, tkey) = (test_key("pskc-pw-hotp", 20), test_key("pskc-pw-totp", 20));
    let file = vendor_file(&daemon, "password", &hkey, &tkey);

    let wrong = import(&daemon, &[&file, "--password"], "Correct horse 8\n");
    assert!(!wrong.success(), "{}", wrong.describe());
    assert!(
        wrong.stderr.contains("a wrong key or password"),
        "{}",
        wrong.describe()
    );
    assert!(
        wrong.stderr.contains("nothing was imported"),
        "{}",
        wrong.describe()
    );
    assert!(
        !wrong.text().contains("Correct horse"),
        "{}",
        wrong.describe()
    );
    assert_eq!(token_count(&daemon), 0);

    let out = import(&daemon, &[&file, "--password"], &format!("{PASSWORD}\n"));
    assert!(out.success(), "{}", out.describe());
    Pam::new(&daemon, "")
        .login("root", &hotp(&hkey, 3, 6))
        .assert_accepted("the imported HOTP key");
}

#[test]
fn a_changed_file_or_hostile_xml_imports_nothing_and_says_where() {
    let mut daemon = Daemon::start();
    let (hkey, tkey) = (test_key("pskc-bad-hotp", 20), test_key("pskc-bad-totp", 20));
    let file = vendor_file(&daemon, "preshared", &hkey, &tkey);
    let text = std::fs::read_to_string(&file).unwrap();

    // One bit of the first MAC flipped (its first base64 digit).
    let start = text.find("ValueMAC>").unwrap() + "ValueMAC>".len();
    let mut changed = text.clone();
    let first = changed.as_bytes()[start];
    let flipped = if first == b'A' { "B" } else { "A" };
    changed.replace_range(start..start + 1, flipped);
    let path = daemon.dir().join("changed.pskc");
    std::fs::write(&path, &changed).unwrap();
    let out = import(
        &daemon,
        &[path.to_str().unwrap(), "--key", TRANSPORT_KEY],
        "",
    );
    assert!(!out.success());
    assert!(
        out.stderr.contains("KeyPackage 1") && out.stderr.contains("does not match"),
        "{}",
        out.describe()
    );

    let laughs = daemon.dir().join("laughs.pskc");
    let mut doc = String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\">");
    for i in 0..8 {
        doc.push_str(&format!(
            "<!ENTITY {} \"{}\">",
            (b'b' + i) as char,
            format!("&{};", (b'a' + i) as char).repeat(10)
        ));
    }
    doc.push_str("]>\n<KeyContainer Version=\"1.0\" xmlns=\"urn:ietf:params:xml:ns:keyprov:pskc\">&i;</KeyContainer>\n");
    std::fs::write(&laughs, doc).unwrap();
    let out = import(&daemon, &[laughs.to_str().unwrap()], "");
    assert!(
        !out.success() && out.stderr.contains("not a PSKC file"),
        "{}",
        out.describe()
    );

    let binary = daemon.dir().join("binary.pskc");
    std::fs::write(&binary, [0xffu8, 0xfe, 0x00, 0x3c]).unwrap();
    let out = import(&daemon, &[binary.to_str().unwrap()], "");
    assert!(
        !out.success() && out.stderr.contains("not valid UTF-8"),
        "{}",
        out.describe()
    );

    let big = daemon.dir().join("big.pskc");
    std::fs::write(&big, vec![b' '; 17 * 1024 * 1024]).unwrap();
    let out = import(&daemon, &[big.to_str().unwrap()], "");
    assert!(
        !out.success() && out.stderr.contains("at most"),
        "{}",
        out.describe()
    );
    assert_eq!(token_count(&daemon), 0);
    daemon.assert_serving();
}
