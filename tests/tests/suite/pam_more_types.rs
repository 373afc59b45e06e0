#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! spass and daypassword tokens through pictl and the real PAM stack; daypassword codes come from
//! `oathtool --totp --time-step-size=86400`, not from pi.

use pi_tests::{test_key, totp, unix_now, Daemon, Pam};

#[test]
fn spass_logs_in_with_the_pin_alone_through_pam() {
    let daemon = Daemon::start();
    let doc = daemon.enroll(&["spass", "--user", "root", "--pin", "correct horse"]);
    assert_eq!(doc["type"], "spass", "{doc}");
    assert_eq!(
        doc["otpauth_url"], "",
        "no app URL for a simple pass: {doc}"
    );
    let pam = Pam::new(&daemon, "");
    pam.login("root", "correct horse")
        .assert_accepted("the PIN is the whole credential");
    pam.login("root", "correct horse")
        .assert_accepted("and it is not used up");
    pam.login("root", "battery staple")
        .assert_rejected("a wrong pass");
    pam.login("root", "")
        .assert_rejected("never an empty answer");
    let refused = daemon.pictl(&[
        "token", "enroll", "spass", "--user", "root", "--digits", "6",
    ]);
    assert_eq!(refused.code(), 1, "{}", refused.describe());
}

#[test]
fn daypassword_code_from_oathtool_works_twice_the_same_day_through_pam() {
    let daemon = Daemon::start();
    let key = test_key("daypassword", 20);
    let doc = daemon.enroll(&["daypassword", "--user", "root", "--otpkey", &key]);
    assert_eq!(doc["token"]["period"], 86_400, "{doc}");
    let pam = Pam::new(&daemon, "");
    // Far from midnight UTC, so both logins fall in the same day.
    let now = unix_now();
    if now % 86_400 > 86_400 - 60 {
        std::thread::sleep(std::time::Duration::from_secs(61));
    }
    let now = unix_now();
    let code = totp(&key, "sha1", 6, 86_400, now);
    pam.login("root", &code).assert_accepted("today's code");
    pam.login("root", &code)
        .assert_accepted("today's code again: a daypassword is reusable within its day");
    let yesterday = totp(&key, "sha1", 6, 86_400, now - 86_400);
    pam.login("root", &yesterday)
        .assert_rejected("yesterday's code");
}

/// An mOTP code computed by Python's hashlib, independently of pi:
/// the first 6 hex digits of md5(str(t // 10) + secret + pin).
fn python_motp(secret: &str, pin: &str, t: u64) -> String {
    let script = format!(
        "import hashlib; print(hashlib.md5(b'{}{secret}{pin}').hexdigest()[:6])",
        t / 10
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn motp_code_from_an_independent_md5_logs_in_once_through_pam() {
    let daemon = Daemon::start();
    let doc = daemon.enroll(&[
        "motp",
        "--user",
        "root",
        "--otpkey",
        "0123456789abcdef",
        "--motppin",
        "4711",
    ]);
    assert_eq!(doc["type"], "motp", "{doc}");
    let pam = Pam::new(&daemon, "");
    let code = python_motp("0123456789abcdef", "4711", unix_now());
    pam.login("root", &code)
        .assert_accepted("the mOTP code of now");
    pam.login("root", &code)
        .assert_rejected("the same code again");
}

#[test]
fn paper_list_and_registration_code_from_pictl_log_in_through_pam() {
    let daemon = Daemon::start();
    let key = test_key("paper", 20);
    let paper = daemon.enroll(&["paper", "--user", "root", "--otpkey", &key, "--count", "5"]);
    let codes: Vec<String> = paper["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..5).map(|c| pi_tests::hotp(&key, c, 6)).collect();
    assert_eq!(
        codes, expected,
        "the printed list is what oathtool computes"
    );
    let pam = Pam::new(&daemon, "");
    pam.login("root", &codes[1])
        .assert_accepted("line 2 of the sheet");
    pam.login("root", &codes[0])
        .assert_rejected("an earlier line");

    let reg = daemon.enroll(&["registration", "--user", "root"]);
    let code = reg["codes"][0].as_str().unwrap().to_owned();
    pam.login("root", &code)
        .assert_accepted("the recovery code works once");
    pam.login("root", &code).assert_rejected("and never again");
    assert_eq!(
        daemon.tokens(Some("root")).len(),
        1,
        "only the paper token is left"
    );
}

#[test]
fn pw_token_is_the_pin_then_the_password_through_pam() {
    let daemon = Daemon::start();
    daemon.enroll(&[
        "pw",
        "--user",
        "root",
        "--pin",
        "77",
        "--password",
        "s3cond factor",
    ]);
    let pam = Pam::new(&daemon, "");
    pam.login("root", "77s3cond factor")
        .assert_accepted("PIN and password");
    pam.login("root", "s3cond factor")
        .assert_rejected("the password without the PIN");
}

#[test]
fn tan_list_from_pictl_works_once_each_in_any_order_through_pam() {
    let daemon = Daemon::start();
    let doc = daemon.enroll(&["tan", "--user", "root", "--count", "3"]);
    let tans: Vec<String> = doc["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(tans.len(), 3, "{doc}");
    let pam = Pam::new(&daemon, "");
    pam.login("root", &tans[2])
        .assert_accepted("the last TAN first");
    pam.login("root", &tans[2]).assert_rejected("a used TAN");
    pam.login("root", &tans[0])
        .assert_accepted("then the first");
}

#[test]
fn an_application_specific_password_opens_only_its_pam_service() {
    let daemon = Daemon::start();
    let mail = Pam::new(&daemon, "");
    let ssh = Pam::new(&daemon, "");
    daemon.enroll(&[
        "applspec",
        "--user",
        "root",
        "--service",
        mail.service(),
        "--password",
        "imap secret",
    ]);
    mail.login("root", "imap secret")
        .assert_accepted("through its own service");
    ssh.login("root", "imap secret")
        .assert_rejected("through any other service");
}

/// testdata/yubico_otp.tsv: the AES key and the device's OTPs in emission order.
fn yubico_vectors() -> (String, Vec<String>) {
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/yubico_otp.tsv"
    ));
    let key = text
        .split("aes_key_hex=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let otps = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect();
    (key, otps)
}

#[test]
fn a_real_yubikeys_otps_log_in_in_order_and_once_through_pam() {
    let (key, otps) = yubico_vectors();
    let daemon = Daemon::start();
    let doc = daemon.enroll(&[
        "yubikey", "--user", "root", "--otpkey", &key, "--digits", "48", "--pin", "42",
    ]);
    assert_eq!(doc["type"], "yubikey", "{doc}");
    let pam = Pam::new(&daemon, "");
    pam.login("root", &format!("42{}", otps[0]))
        .assert_accepted("PIN and the first touch");
    pam.login("root", &format!("42{}", otps[0]))
        .assert_rejected("the same OTP again");
    pam.login("root", &format!("42{}", otps[3]))
        .assert_accepted("a later touch");
    pam.login("root", &format!("42{}", otps[2]))
        .assert_rejected("an earlier touch after a later one");
    pam.login("root", &otps[4])
        .assert_rejected("without the PIN");
    pam.login("root", &format!("42{}", otps[8]))
        .assert_accepted("the last one");
}

#[test]
fn indexedsecret_asks_two_positions_at_the_second_prompt_through_pam() {
    let daemon = Daemon::start();
    let secret: Vec<char> = "k9x2m7qz".chars().collect();
    daemon.enroll(&[
        "indexedsecret",
        "--user",
        "root",
        "--pin",
        "31",
        "--password",
        "k9x2m7qz",
    ]);
    let pam = Pam::new(&daemon, "");
    let mut prompts = Vec::new();
    let run = pam.login_interactive("root", |prompt| {
        prompts.push(prompt.to_owned());
        match prompts.len() {
            1 => Some("31".into()),
            2 => {
                let list = prompt
                    .split("positions ")
                    .nth(1)?
                    .split(" of your secret")
                    .next()?;
                Some(
                    list.split(", ")
                        .map(|p| secret[p.trim().parse::<usize>().unwrap() - 1])
                        .collect(),
                )
            }
            _ => None,
        }
    });
    run.assert_accepted("PIN, then the two characters asked for");
    assert!(
        prompts[1].contains("Please enter the positions"),
        "{prompts:?}"
    );
    let wrong = pam.login_as(pi_tests::Caller::Root, "root", &["31", "!!", "!!", "!!"]);
    wrong.assert_rejected("wrong characters, three times");
}

#[test]
fn question_asks_one_of_the_users_questions_at_the_second_prompt_through_pam() {
    let daemon = Daemon::start();
    let mut args = vec![
        "question".to_owned(),
        "--user".into(),
        "root".into(),
        "--pin".into(),
        "86".into(),
    ];
    for i in 1..=5 {
        args.push("--question".into());
        args.push(format!("Times seven of {i}?={}", i * 7));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    daemon.enroll(&args);
    let pam = Pam::new(&daemon, "");
    let mut asked = 0;
    let run = pam.login_interactive("root", |prompt| {
        asked += 1;
        match asked {
            1 => Some("86".into()),
            2 => {
                let i: u32 = prompt
                    .split("Times seven of ")
                    .nth(1)?
                    .trim_end()
                    .trim_end_matches('?')
                    .parse()
                    .ok()?;
                Some((i * 7).to_string())
            }
            _ => None,
        }
    });
    run.assert_accepted("PIN, then the answer to the question asked");
    assert_eq!(asked, 2, "{:?}", run.out);
}

/// An OCRA response computed by Python, independently of pi (RFC 6287 §5 for a QN suite
/// without counter, PIN, session or time).
fn python_ocra(suite: &str, key_hex: &str, question: &str) -> String {
    let script = format!(
        "import hmac, hashlib\n\
         q = format(int('{question}'), 'X').ljust(256, '0')\n\
         msg = b'{suite}' + b'\\x00' + bytes.fromhex(q)\n\
         mac = hmac.new(bytes.fromhex('{key_hex}'), msg, hashlib.sha1).digest()\n\
         o = mac[-1] & 15\n\
         code = (int.from_bytes(mac[o:o+4], 'big') & 0x7fffffff) % 10**6\n\
         print(str(code).zfill(6))\n"
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn ocra_challenge_is_answered_by_an_independent_implementation_through_pam() {
    let suite = "OCRA-1:HOTP-SHA1-6:QN08";
    let key = test_key("ocra", 20);
    let daemon = Daemon::start();
    daemon.enroll(&[
        "ocra",
        "--user",
        "root",
        "--pin",
        "64",
        "--otpkey",
        &key,
        "--ocrasuite",
        suite,
    ]);
    let pam = Pam::new(&daemon, "");
    let mut asked = 0;
    let run = pam.login_interactive("root", |prompt| {
        asked += 1;
        match asked {
            1 => Some("64".into()),
            2 => {
                let q = prompt
                    .split("challenge ")
                    .nth(1)?
                    .trim_end()
                    .trim_end_matches(':');
                Some(python_ocra(suite, &key, q))
            }
            _ => None,
        }
    });
    run.assert_accepted("PIN, then the response to the challenge");
    let wrong = pam.login_as(
        pi_tests::Caller::Root,
        "root",
        &["64", "000000", "000001", "000002"],
    );
    wrong.assert_rejected("wrong responses");
    // A sanity check of the oracle against RFC 6287's first vector.
    assert_eq!(
        python_ocra(
            suite,
            "3132333435363738393031323334353637383930",
            "00000000"
        ),
        "237653"
    );
}

/// How a daplug dongle types an OTP: each digit's ASCII code in hex, hex digits 0…9 written b…k
/// (written here from the description, independently of pi's decoder).
fn daplug_typed(code: &str) -> String {
    code.chars()
        .flat_map(|c| format!("{:02x}", c as u32).chars().collect::<Vec<_>>())
        .map(|h| (b'b' + h.to_digit(16).unwrap() as u8) as char)
        .collect()
}

#[test]
fn a_daplug_dongle_types_hotp_codes_as_letter_pairs_through_pam() {
    let daemon = Daemon::start();
    let key = test_key("daplug", 20);
    daemon.enroll(&["daplug", "--user", "root", "--otpkey", &key]);
    let pam = Pam::new(&daemon, "");
    let typed = daplug_typed(&pi_tests::hotp(&key, 0, 6));
    assert_eq!(typed.len(), 12);
    pam.login("root", &typed)
        .assert_accepted("the dongle's first code");
    pam.login("root", &typed)
        .assert_rejected("the same code again");
    pam.login("root", &pi_tests::hotp(&key, 1, 6))
        .assert_rejected("plain digits are not what the dongle types");
    let refused = daemon.pictl(&["token", "enroll", "daplug", "--user", "root"]);
    assert_eq!(
        refused.code(),
        1,
        "a daplug needs its key: {}",
        refused.describe()
    );
}

#[test]
fn four_eyes_lets_root_in_only_with_two_admins_codes_through_pam() {
    let daemon = Daemon::start_with(pi_tests::DaemonOptions {
        extra_toml:
            "[resolvers.local]\ntype = \"passwd\"\n[resolvers.people]\ntype = \"flatfile\"\n\
                     file = \"{dir}/admins\"\n[realms.default]\nresolvers = [\"local\"]\n\
                     [realms.admins]\nresolvers = [\"people\"]\n"
                .into(),
        files: vec![(
            "admins".into(),
            "alice:x:5001:5001::/:/bin/false\nbob:x:5002:5002::/:/bin/false\n".into(),
        )],
        ..Default::default()
    });
    let (ka, kb) = (test_key("4eyes-alice", 20), test_key("4eyes-bob", 20));
    daemon.enroll(&[
        "hotp",
        "--user",
        "alice@admins",
        "--otpkey",
        &ka,
        "--pin",
        "pa",
    ]);
    daemon.enroll(&[
        "hotp",
        "--user",
        "bob@admins",
        "--otpkey",
        &kb,
        "--pin",
        "pb",
    ]);
    daemon.enroll(&[
        "4eyes",
        "--user",
        "root",
        "--4eyes",
        "admins:2",
        "--separator",
        "+",
    ]);
    let pam = Pam::new(&daemon, "");
    let code = |k: &str, c: u64| pi_tests::hotp(k, c, 6);
    pam.login("root", &format!("pa{}", code(&ka, 0)))
        .assert_rejected("one admin alone");
    pam.login("root", &format!("pa{}+pb{}", code(&ka, 1), code(&kb, 0)))
        .assert_accepted("alice and bob together");
    pam.login("root", &format!("pa{}+pb{}", code(&ka, 1), code(&kb, 0)))
        .assert_rejected("their codes are spent");
    // The challenge form: the 4eyes token's PIN (none here: an empty answer), then one admin's
    // code per prompt.
    let run = pam.login_as(
        pi_tests::Caller::Root,
        "root",
        &[
            "",
            &format!("pb{}", code(&kb, 1)),
            &format!("pa{}", code(&ka, 2)),
        ],
    );
    run.assert_accepted("bob, then alice, one prompt each");
    assert!(run.out.stderr.contains("(1 still needed)"), "{:?}", run.out);
}
