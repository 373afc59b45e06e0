#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! E-mail and SMS tokens through pictl and the real PAM stack: the PIN sends the code to a real
//! SMTP server / HTTP gateway / program on this host, the test reads it out of what was
//! delivered and answers the second prompt with it.

use pi_tests::sinks::Sink;
use pi_tests::{Daemon, DaemonOptions, Pam};

/// The first run of `n` digits in `text`.
fn code_in(text: &str, n: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    chars
        .windows(n)
        .find(|w| w.iter().all(char::is_ascii_digit))
        .map(|w| w.iter().collect())
        .unwrap_or_else(|| panic!("no {n}-digit code in {text:?}"))
}

/// A daemon that mails through 127.0.0.1:`port` (plain SMTP), plus `extra` TOML; an `[smtp]`
/// table in `extra` adds keys to the mail settings.
fn mailing_daemon(port: u16, extra: &str) -> Daemon {
    let smtp = format!(
        "host = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nsender = \"pi@test.example\"\n"
    );
    let extra_toml = match extra.strip_prefix("[smtp]\n") {
        Some(more) => format!("[smtp]\n{smtp}{more}"),
        None => format!("[smtp]\n{smtp}{extra}"),
    };
    Daemon::start_with(DaemonOptions {
        extra_toml,
        ..Default::default()
    })
}

/// root gets an e-mail token with PIN 75 sending to root@test.example.
fn enroll_root_email(daemon: &Daemon) {
    daemon.enroll(&[
        "email",
        "--user",
        "root",
        "--pin",
        "75",
        "--email",
        "root@test.example",
    ]);
}

/// Log in with `pin`, then answer the second prompt with what `code` reads from the receiver.
fn login_with_sent_code(
    pam: &Pam,
    pin: &str,
    code: impl Fn() -> Option<String>,
) -> (Vec<String>, pi_tests::PamRun) {
    let mut prompts = Vec::new();
    let run = pam.login_interactive("root", |prompt| {
        prompts.push(prompt.to_owned());
        match prompts.len() {
            1 => Some(pin.to_owned()),
            2 => code(),
            _ => None,
        }
    });
    (prompts, run)
}

#[test]
fn an_emailed_code_answers_the_second_prompt_through_pam() {
    let smtp = Sink::smtp();
    let daemon = mailing_daemon(
        smtp.port,
        "[[policy]]\nname = \"mail\"\nscope = \"authentication\"\n\
         actions = { emailsubject = \"Login code\", \
         emailtext = \"Your code: <otp> (for {user}, token <serial>)\" }\n",
    );
    enroll_root_email(&daemon);
    let pam = Pam::new(&daemon, "");
    let (prompts, run) = login_with_sent_code(&pam, "75", || Some(code_in(&smtp.wait_for(1), 6)));
    run.assert_accepted("PIN, then the mailed code");
    assert_eq!(
        prompts[1].trim_end(),
        "Enter the code sent to r***@test.example:",
        "{prompts:?}"
    );
    let mail = smtp.wait_for(1);
    assert!(mail.contains("To: root@test.example"), "{mail}");
    assert!(mail.contains("Subject: Login code"), "{mail}");
    assert!(
        mail.contains("(for root, token PIEM"),
        "the policy's text: {mail}"
    );
    // The same code does not work twice; a new login sends a new one.
    let used = code_in(&mail, 6);
    let (_, again) = login_with_sent_code(&pam, "75", || Some(used.clone()));
    again.assert_refused("a used code");
    assert_ne!(
        code_in(&smtp.wait_for(2), 6),
        used,
        "the next mail has the next code"
    );
}

#[test]
fn an_sms_code_through_an_http_gateway_and_through_a_program() {
    let gateway = Sink::http();
    let daemon = Daemon::start_with(DaemonOptions {
        extra_toml: format!(
            "[sms]\nurl = \"http://127.0.0.1:{}/send\"\nbody = \"to={{phone}}&text={{message}}\"\n\
             success_contains = \"OK\"\n",
            gateway.port
        ),
        ..Default::default()
    });
    daemon.enroll(&[
        "sms",
        "--user",
        "root",
        "--pin",
        "12",
        "--phone",
        "+49 170 1234567",
    ]);
    let pam = Pam::new(&daemon, "");
    let (prompts, run) = login_with_sent_code(&pam, "12", || {
        let request = gateway.wait_for(1);
        Some(code_in(request.split("text=").nth(1)?, 6))
    });
    run.assert_accepted("PIN, then the texted code");
    assert!(prompts[1].contains("***4567"), "{prompts:?}");
    let request = gateway.wait_for(1);
    assert!(
        request.starts_with("POST /send") && request.contains("to=%2B49%20170%201234567"),
        "{request}"
    );

    // A program gateway: the phone number as argument, the message on stdin.
    let out = tempfile::tempdir().unwrap();
    let script = out.path().join("send-sms");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ncat > {}/\"$1\".txt\n", out.path().display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let text = std::fs::read_to_string(daemon.config_path()).unwrap();
    let text = text.replace(
        &format!("url = \"http://127.0.0.1:{}/send\"", gateway.port),
        &format!("command = [\"{}\"]", script.display()),
    );
    assert!(daemon.reload_config(&text), "{}", daemon.log());
    let sent = out.path().join("+49 170 1234567.txt");
    let (_, run) = login_with_sent_code(&pam, "12", || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !sent.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(code_in(&std::fs::read_to_string(&sent).ok()?, 6))
    });
    run.assert_accepted("PIN, then the code the program received");
}

#[test]
fn a_code_that_cannot_be_sent_fails_the_login_with_a_reason() {
    // Nothing listens on this port.
    let daemon = mailing_daemon(9, "[smtp]\ntimeout_secs = 2\n");
    enroll_root_email(&daemon);
    let pam = Pam::new(&daemon, "");
    let run = pam.login_as(pi_tests::Caller::Root, "root", &["75"]);
    run.assert_rejected("no code, no login");
    assert!(
        run.out.text().contains("could not be sent"),
        "the user learns why: {:?}",
        run.out
    );
    // Refusals reach the audit trail with the flusher's next round.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let audit = daemon.audit(10);
        if audit.iter().any(|e| {
            e["message"]
                .as_str()
                .unwrap_or_default()
                .contains("mail server")
        }) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{audit:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_yubico_otp_is_confirmed_by_a_signed_validation_server_through_pam() {
    let key_b64 = "cGktdGVzdC1hcGkta2V5LTIwYg==";
    let server = Sink::yubico(key_b64);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("yubico.key");
    std::fs::write(&key_file, key_b64).unwrap();
    let daemon = Daemon::start_with(DaemonOptions {
        extra_toml: format!(
            "[yubico]\nurls = [\"http://127.0.0.1:{}/wsapi/2.0/verify\"]\nclient_id = \"4711\"\n\
             api_key_file = \"{}\"\n",
            server.port,
            key_file.display()
        ),
        ..Default::default()
    });
    daemon.enroll(&[
        "yubico",
        "--user",
        "root",
        "--tokenid",
        "ccccccbcgujh",
        "--pin",
        "9",
    ]);
    let pam = Pam::new(&daemon, "");
    let otp = "ccccccbcgujhingjrdejhgfnuetrgigvejhhgbkugded";
    pam.login("root", &format!("9{otp}"))
        .assert_accepted("the server says OK");
    pam.login("root", &format!("9{otp}"))
        .assert_rejected("the server says REPLAYED_OTP");
    pam.login("root", &format!("9ccccccbcgujh{}", "c".repeat(32)))
        .assert_rejected("the server says BAD_OTP");
    pam.login("root", &format!("9ccccccbcguji{}", &otp[12..]))
        .assert_rejected("another key's public id is not even sent");
    // A server that signs with another key is not believed.
    let liar = Sink::yubico("b3RoZXIta2V5");
    let text = std::fs::read_to_string(daemon.config_path()).unwrap();
    let text = text.replace(&server.port.to_string(), &liar.port.to_string());
    assert!(daemon.reload_config(&text), "{}", daemon.log());
    let fresh = "ccccccbcgujhrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr";
    pam.login("root", &format!("9{fresh}"))
        .assert_refused("an answer with a wrong signature");
}

#[test]
fn emailautosend_mails_the_next_code_so_the_next_login_is_pin_and_code() {
    let smtp = Sink::smtp();
    let daemon = mailing_daemon(
        smtp.port,
        "[[policy]]\nname = \"auto\"\nscope = \"authentication\"\n\
         actions = { emailautosend = true }\n",
    );
    enroll_root_email(&daemon);
    let pam = Pam::new(&daemon, "");
    let (_, run) = login_with_sent_code(&pam, "75", || Some(code_in(&smtp.wait_for(1), 6)));
    run.assert_accepted("the first code, by challenge");
    let next = code_in(&smtp.wait_for(2), 6);
    pam.login("root", &format!("75{next}"))
        .assert_accepted("the mailed next code with the PIN, in one answer");
    smtp.wait_for(3);
}
