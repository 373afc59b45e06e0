#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! The privacyIDEA fixture against the real server, with OTPs from `oathtool`: what the tests of
//! pid's upstream realms build on. A login with PIN and OTP is accepted and a wrong OTP rejected,
//! over plain HTTP and over HTTPS from the test's CA; a client trusting another CA gets nowhere;
//! offline attachment hands out PIN+OTP hashes; the database survives a restart; SSH keys and
//! LUKS responses come from `/machine/authitem`; an email token's code arrives by mail and answers
//! its challenge.

use pi_tests::privacyidea::{self, PrivacyIdea, Tls, REALM};
use pi_tests::sinks::Sink;
use pi_tests::{hotp, test_key, totp, wait_for_fresh_totp_step};
use std::process::Command;

const PIN: &str = "4711";

/// A server with user `alice` owning an HOTP token with PIN `PIN`; returns it and the key.
fn server_with_alice(tls: Tls, key_name: &str) -> (PrivacyIdea, String, String) {
    let pi = PrivacyIdea::start(tls);
    pi.add_user("alice");
    let key = test_key(key_name, 20);
    let serial = pi.hotp_token("alice", &key, PIN);
    (pi, key, serial)
}

#[test]
fn pin_and_otp_of_hotp_and_totp_tokens_are_accepted_and_a_wrong_otp_is_rejected_over_http() {
    let (pi, key, _) = server_with_alice(Tls::Plain, "pi-plain");
    assert!(pi.url().starts_with("http://127.0.0.1:"));
    let ok = pi.validate_check("alice", &format!("{PIN}{}", hotp(&key, 0, 6)));
    assert!(ok.accepted(), "{:#}", ok.json);
    // An OTP of the right length that is none of the next values in the window.
    let wrong = format!("{PIN}{}", hotp(&test_key("pi-other", 20), 1, 6));
    let rejected = pi.validate_check("alice", &wrong);
    assert_eq!(rejected.authentication(), "REJECT", "{:#}", rejected.json);
    // The right OTP with the wrong PIN is no better.
    let bad_pin = pi.validate_check("alice", &format!("0000{}", hotp(&key, 1, 6)));
    assert_eq!(bad_pin.authentication(), "REJECT", "{:#}", bad_pin.json);

    pi.add_user("bob");
    let totp_key = test_key("pi-plain-totp", 20);
    pi.totp_token("bob", &totp_key, PIN);
    let now = wait_for_fresh_totp_step(30);
    let code = totp(&totp_key, "sha1", 6, 30, now);
    let ok = pi.validate_check("bob", &format!("{PIN}{code}"));
    assert!(ok.accepted(), "{:#}", ok.json);
    let again = pi.validate_check("bob", &format!("{PIN}{code}"));
    assert_eq!(again.authentication(), "REJECT", "{:#}", again.json);

    // A policy changes what is asked: with `otppin=none` the OTP alone is the password.
    pi.policy("no-pin", "authentication", "otppin=none", Some(REALM));
    let otp_alone = pi.validate_check("alice", &hotp(&key, 2, 6));
    assert!(otp_alone.accepted(), "{:#}", otp_alone.json);
}

#[test]
fn https_with_the_tests_ca_is_accepted_and_a_client_trusting_another_ca_refuses() {
    let (pi, key, _) = server_with_alice(Tls::Ca, "pi-tls");
    assert!(pi.url().starts_with("https://127.0.0.1:"));
    let ok = pi.validate_check("alice", &format!("{PIN}{}", hotp(&key, 0, 6)));
    assert!(ok.accepted(), "{:#}", ok.json);

    let healthz = format!("{}/healthz/", pi.url());
    let right = privacyidea::agent(Some(&pi.ca_file())).get(&healthz).call();
    assert!(right.is_ok(), "a client trusting the CA: {right:?}");
    let wrong = privacyidea::agent(Some(&pi.other_ca_file()))
        .get(&healthz)
        .call();
    let err = wrong.expect_err("a client trusting only another CA must refuse the server");
    assert!(
        err.to_string().contains("UnknownIssuer"),
        "refused for the wrong reason: {err}"
    );
    // curl, an independent TLS client, agrees on both.
    let curl = |ca: &std::path::Path| {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "10", "--cacert"])
            .arg(ca)
            .arg(&healthz);
        pi_tests::process::run(cmd, b"")
    };
    let trusted = curl(&pi.ca_file());
    assert!(
        trusted.success() && trusted.stdout.contains("\"ready\""),
        "{}",
        trusted.describe()
    );
    assert!(!curl(&pi.other_ca_file()).success());
}

#[test]
fn offline_attachment_hands_out_pbkdf2_hashes_of_pin_and_the_next_otps_and_refills_them() {
    let (pi, key, serial) = server_with_alice(Tls::Plain, "pi-offline");
    pi.attach_offline(&serial, 5, 1000);
    let ok = pi.validate_check("alice", &format!("{PIN}{}", hotp(&key, 0, 6)));
    assert!(ok.accepted(), "{:#}", ok.json);
    let item = ok.offline_item();
    assert_eq!(item["serial"], serial.as_str(), "{:#}", ok.json);
    assert_eq!(item["user"], "alice");
    assert!(
        item["refilltoken"].as_str().is_some_and(|t| !t.is_empty()),
        "{item:#}"
    );
    let hashes = item["response"].as_object().expect("response is an object");
    // The values after the one just used: counters 1 to 5.
    let mut counters: Vec<u64> = hashes.keys().map(|k| k.parse().unwrap()).collect();
    counters.sort_unstable();
    assert_eq!(counters, [1, 2, 3, 4, 5], "{item:#}");
    for (counter, hash) in hashes {
        let hash = hash.as_str().expect("a hash is a string");
        let otp = hotp(&key, counter.parse().unwrap(), 6);
        assert!(
            pbkdf2_sha512_matches(hash, &format!("{PIN}{otp}")),
            "hash {counter} is not PBKDF2-SHA512 of PIN and OTP {otp}: {hash}"
        );
    }
    // The client used the first offline value: a refill with it and the refill token hands out
    // one more (counter 6) and a new refill token; the old one is spent.
    let refilltoken = item["refilltoken"].as_str().unwrap();
    let used = format!("{PIN}{}", hotp(&key, 1, 6));
    let refill = pi.offline_refill(&serial, &used, refilltoken);
    let refilled = refill.offline_item();
    let more: Vec<&String> = refilled["response"]
        .as_object()
        .unwrap_or_else(|| panic!("no offline item in {:#}", refill.json))
        .keys()
        .collect();
    assert_eq!(more, ["6"], "{:#}", refill.json);
    assert!(pbkdf2_sha512_matches(
        refilled["response"]["6"].as_str().unwrap(),
        &format!("{PIN}{}", hotp(&key, 6, 6))
    ));
    let new_token = refilled["refilltoken"].as_str().unwrap();
    assert_ne!(new_token, refilltoken);
    let again = pi.offline_refill(&serial, &used, refilltoken);
    assert_ne!(again.json["result"]["status"], true, "{:#}", again.json);
    // Handed out means used up on the server: the next online OTP is counter 7.
    let next = pi.validate_check("alice", &format!("{PIN}{}", hotp(&key, 7, 6)));
    assert!(next.accepted(), "{:#}", next.json);
}

#[test]
fn a_restarted_server_keeps_its_tokens_and_their_counters() {
    let (mut pi, key, _) = server_with_alice(Tls::Plain, "pi-restart");
    let first = pi.validate_check("alice", &format!("{PIN}{}", hotp(&key, 0, 6)));
    assert!(first.accepted(), "{:#}", first.json);
    pi.stop();
    pi.restart();
    let replay = pi.validate_check("alice", &format!("{PIN}{}", hotp(&key, 0, 6)));
    assert_eq!(replay.authentication(), "REJECT", "{:#}", replay.json);
    let next = pi.validate_check("alice", &format!("{PIN}{}", hotp(&key, 1, 6)));
    assert!(next.accepted(), "{:#}", next.json);
}

#[test]
fn ssh_keys_and_luks_responses_come_from_the_machine_authitem_api() {
    let pi = PrivacyIdea::start(Tls::Plain);
    pi.add_user("alice");
    let public_key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPXKEiURoqDIkv75mkLLpV7NibAzSkr02yAefbDeSqsf alice@pi";
    let ssh = pi.sshkey_token("alice", public_key);
    pi.attach_ssh(&ssh, "webservers", "alice");
    let keys = pi.ssh_keys("webservers", "alice");
    assert_eq!(keys[0]["sshkey"], public_key, "{keys:#}");
    assert_eq!(keys[0]["username"], "alice", "{keys:#}");
    assert_eq!(pi.ssh_keys("webservers", "bob"), serde_json::json!([]));

    let key = test_key("pi-luks", 20);
    let luks = pi.luks_token(&key);
    pi.attach_luks(&luks, 3, "/dev/vdb1");
    let challenge = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let items = pi.luks_items(challenge);
    assert_eq!(items[0]["slot"], "3", "{items:#}");
    assert_eq!(items[0]["partition"], "/dev/vdb1", "{items:#}");
    assert_eq!(items[0]["challenge"], challenge, "{items:#}");
    assert_eq!(
        items[0]["response"],
        hmac_sha1_hex(&key, challenge).as_str(),
        "{items:#}"
    );
}

#[test]
fn an_email_token_mails_its_code_and_the_answer_to_the_challenge_is_accepted() {
    let smtp = Sink::smtp();
    let pi = PrivacyIdea::start(Tls::Plain);
    pi.add_user("alice");
    pi.smtp_server("sink", smtp.port);
    pi.email_token("alice", "alice@pi.test", "sink", PIN);
    let challenge = pi.validate_check("alice", PIN);
    assert_eq!(
        challenge.authentication(),
        "CHALLENGE",
        "{:#}",
        challenge.json
    );
    let tx = challenge.transaction_id().to_owned();
    assert!(!tx.is_empty(), "{:#}", challenge.json);
    let mail = smtp.wait_for(1);
    assert!(mail.starts_with("To: alice@pi.test\n"), "{mail}");
    // privacyIDEA sends the code alone as a base64 body.
    assert!(
        mail.contains("Content-Transfer-Encoding: base64\n"),
        "{mail}"
    );
    let body = mail.split_once("\n\n").map_or("", |(_, body)| body);
    let code = String::from_utf8(base64_decode(body.trim())).unwrap();
    assert!(
        code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()),
        "not a 6-digit code: {code:?} in {mail}"
    );
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let wrong = pi.validate_check_tx("alice", wrong, &tx);
    assert_eq!(wrong.authentication(), "REJECT", "{:#}", wrong.json);
    let ok = pi.validate_check_tx("alice", &code, &tx);
    assert!(ok.accepted(), "{:#}", ok.json);
}

/// Whether `hash` (passlib's `$pbkdf2-sha512$ROUNDS$SALT$CHECKSUM`, both in its base64 with `.`
/// for `+` and no padding) is of `password`, recomputed by `openssl kdf`.
fn pbkdf2_sha512_matches(hash: &str, password: &str) -> bool {
    let parts: Vec<&str> = hash.split('$').collect();
    let ["", "pbkdf2-sha512", rounds, salt, checksum] = parts[..] else {
        panic!("not a passlib pbkdf2-sha512 hash: {hash}");
    };
    let mut cmd = Command::new("openssl");
    cmd.args(["kdf", "-keylen", "64", "-kdfopt", "digest:SHA512"])
        .arg("-kdfopt")
        .arg(format!("pass:{password}"))
        .arg("-kdfopt")
        .arg(format!("hexsalt:{}", hex::encode(ab64_decode(salt))))
        .arg("-kdfopt")
        .arg(format!("iter:{rounds}"))
        .arg("PBKDF2");
    let out = pi_tests::process::run(cmd, b"");
    assert!(out.success(), "{}", out.describe());
    let derived = out.stdout.trim().replace(':', "").to_lowercase();
    derived == hex::encode(ab64_decode(checksum))
}

/// passlib's "adapted base64": the standard alphabet with `.` for `+`, without padding.
fn ab64_decode(text: &str) -> Vec<u8> {
    base64_decode(&text.replace('.', "+"))
}

/// Base64 (RFC 4648), padding optional.
fn base64_decode(text: &str) -> Vec<u8> {
    data_encoding::BASE64_NOPAD
        .decode(text.trim_end_matches('=').as_bytes())
        .unwrap_or_else(|e| panic!("{text:?} is not base64: {e}"))
}

/// HMAC-SHA1 of the hex `challenge` under the hex `key`, by `openssl`.
fn hmac_sha1_hex(key_hex: &str, challenge_hex: &str) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["dgst", "-sha1", "-mac", "HMAC", "-macopt"])
        .arg(format!("hexkey:{key_hex}"))
        .arg("-hex");
    let out = pi_tests::process::run(cmd, &hex::decode(challenge_hex).unwrap());
    assert!(out.success(), "{}", out.describe());
    out.stdout.trim().rsplit(' ').next().unwrap().to_owned()
}
