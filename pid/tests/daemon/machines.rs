//! Machine tokens: SSH keys handed to sshd for the logins they are attached for, and LUKS
//! passphrases computed from a Yubikey's secret, only for root.

use crate::common::{accepted, caller, error_code, nobody, policy, root_spec, Daemon, HOTP, KEY20};
use protocol::admin::{AdminRequest, AdminResponse, EnrollRequest, TokenSettings};
use protocol::{
    ErrorCode, MachineApp, MachineAttach, MachineOptions, Outcome, Request, Response, Secret,
    TokenType,
};

/// A key made with `ssh-keygen -t ed25519 -C test@pi`; its fingerprint from `ssh-keygen -lf`.
const SSH_ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDdTLW29cPwskm6rab6rRQyxyOkpZgO/IVrgV5dICtJJ test@pi";
const SSH_ED25519_FP: &str = "SHA256:r7poyH+Ql7iXdLLkAv18U5bbgDwsBeWKyjZCFGEKH+k";

fn ssh_user(login: &str) -> MachineOptions {
    MachineOptions {
        user: Some(login.into()),
        ..Default::default()
    }
}

fn is_done(r: &Response) -> bool {
    matches!(r, Response::Admin(AdminResponse::Done { .. }))
}

#[test]
fn an_sshkey_token_shows_its_fingerprint_and_takes_no_part_in_pam_logins() {
    let d = Daemon::start();
    let e = d.enroll_sshkey("root", SSH_ED25519);
    let details: std::collections::HashMap<_, _> = e.token.details.iter().cloned().collect();
    assert_eq!(details["fingerprint"], SSH_ED25519_FP);
    assert_eq!(details["key type"], "ssh-ed25519");
    assert!(e.otpauth_url.is_empty() && e.otpkey_base32.is_empty());
    // A user whose only token is a key has no token for PAM.
    assert_eq!(d.login("root", HOTP[0]), Outcome::NoToken);
    // Next to an OTP token the key is invisible: no prompt change, no fail counter.
    d.enroll_root_hotp(None);
    assert!(!accepted(&d.login("root", "000000")));
    assert!(accepted(&d.login("root", HOTP[0])));
    assert_eq!(d.show(&e.token.serial).failcount, 0);
}

#[test]
fn weak_or_malformed_ssh_keys_are_refused_and_nothing_is_stored() {
    let d = Daemon::start();
    for (key, says) in [
        ("", "empty"),
        ("ssh-ed25519 AAAA", "not an OpenSSH public key"),
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP1/U4EddRIpUt9KnC7s5Of2EbdSPO9EAMMeP4C2USZpRV1AIlH7WT2NWPq/xfW6MPbLm1Vs14E7gB00b/JmYLdrmVClpJ+f6AR7ECLCT7up1/63xhv4O1fnxqimFQ8E+4P208UewwI1VBNaFpEy9nXzrith1yrv8iIDGZ3RSAHHAAAAFQCXYFCPFSMLzLKSuYKi64QL8Fgc9QAAAIEA9+GghdabPd7LvKtcNrhXuXmUr7v6OuqC+VdMCz0HgmdRWVeOutRZT+ZxBxCBgLRJFnEj6EwoFhO3zwkyjMim4TwWeotUfI0o4KOuHiuzpnWRbqN/C/ohNWLx+2J6ASQ7zKTxvqhRkImog9/hWuWfBpKLZl6Ae1UlZAFMO/7PSSoAAACBAPJRJbKL/+pv5Ar5dB2pUvwU6kjZmUvKXMLhmv2tI7tFOjXUm+Eiq5s7mWV3Ld4lF+RJtL/7cFJbnKlDTlLKbwr9nEYeMiEwdl8rZ6oeSNy6dO1ux7pJk1ZA06pv+TdaXoTs7ynFvpT4Ie+0LFp1hYYjESmXchr4Z9EcpbsLckx8 x", "DSA"),
        (&format!("{SSH_ED25519}\n{SSH_ED25519}"), "one"),
        (&format!("command=\"sh\" {SSH_ED25519}"), "not an OpenSSH public key"),
    ] {
        let (code, msg) = d.enroll_err(EnrollRequest {
            sshkey: Some(key.into()),
            ..root_spec(TokenType::Sshkey)
        });
        assert_eq!(code, ErrorCode::InvalidArgument, "{key:?}: {msg}");
        assert!(msg.contains(says), "{key:?}: {msg}");
    }
    let (code, _) = d.enroll_err(EnrollRequest {
        sshkey: Some(SSH_ED25519.into()),
        pin: Some(Secret::new("1234")),
        ..root_spec(TokenType::Sshkey)
    });
    assert_eq!(code, ErrorCode::InvalidArgument, "a key has no PIN");
    assert_eq!(d.state.store.count_tokens(), 0);
}

#[test]
fn ssh_keys_are_given_for_usable_attached_tokens_and_the_asked_login_only() {
    let d = Daemon::start();
    let serial = d.enroll_sshkey("root", SSH_ED25519).token.serial;
    assert!(
        d.ssh_keys("root", None).is_empty(),
        "enrolled is not attached"
    );
    assert!(is_done(&d.attach(
        &serial,
        MachineApp::Ssh,
        MachineOptions::default()
    )));
    assert_eq!(d.ssh_keys("root", None), [SSH_ED25519]);
    assert!(
        d.ssh_keys("alice", None).is_empty(),
        "attached for root only"
    );
    d.admin(AdminRequest::TokenDisable {
        serial: serial.clone(),
    });
    assert!(d.ssh_keys("root", None).is_empty(), "disabled");
    d.admin(AdminRequest::TokenEnable {
        serial: serial.clone(),
    });
    d.set(
        &serial,
        TokenSettings {
            validity_end: Some(Some(d.state.clock.now() - 1)),
            ..Default::default()
        },
    );
    assert!(d.ssh_keys("root", None).is_empty(), "expired");
    d.set(
        &serial,
        TokenSettings {
            validity_end: Some(None),
            ..Default::default()
        },
    );
    assert_eq!(d.ssh_keys("root", None).len(), 1);
    // A key attached for a service id is given to every host that asks for that service.
    let other = d
        .enroll_sshkey("root", &SSH_ED25519.replace("test@pi", "svc"))
        .token
        .serial;
    let r = d.call(Request::Admin(AdminRequest::MachineAttach(Box::new(
        MachineAttach {
            serial: other,
            app: MachineApp::Ssh,
            host: Some("web-9".into()),
            options: MachineOptions {
                user: Some("deploy".into()),
                service_id: Some("web".into()),
                ..Default::default()
            },
        },
    ))));
    assert!(is_done(&r), "{r:?}");
    assert_eq!(d.ssh_keys("deploy", Some("web")).len(), 1);
    assert!(
        d.ssh_keys("deploy", None).is_empty(),
        "attached to web-9, not here"
    );
    d.admin(AdminRequest::TokenRevoke { serial });
    assert!(d.ssh_keys("root", None).is_empty(), "revoked");
}

#[test]
fn only_root_and_the_keys_users_may_ask_for_ssh_keys() {
    let d = Daemon::start();
    let serial = d.enroll_sshkey("root", SSH_ED25519).token.serial;
    d.attach(&serial, MachineApp::Ssh, MachineOptions::default());
    let ask = Request::SshKeys {
        user: "root".into(),
        service_id: None,
    };
    // nobody is the default keys user (sshd's AuthorizedKeysCommandUser).
    let keys_user = nobody(false);
    assert!(matches!(
        d.dispatch_as(&keys_user, ask.clone()),
        Response::SshKeys { keys } if keys.len() == 1
    ));
    for who in [caller(1, false), caller(1000, true)] {
        match d.dispatch_as(&who, ask.clone()) {
            Response::Error { code, .. } => assert_eq!(code, ErrorCode::PermissionDenied),
            other => panic!("uid {} got {other:?}", who.uid),
        }
    }
    let d = d.restart_with("[ssh]\nkeys_users = []\n");
    assert_eq!(
        error_code(&d.dispatch_as(&keys_user, ask)),
        Some(ErrorCode::PermissionDenied)
    );
    assert!(d
        .audit()
        .iter()
        .any(|e| e.action == "ssh keys" && e.user.as_deref() == Some("root") && e.success));
}

#[test]
fn attachments_are_validated_audited_and_removed_with_their_token() {
    let d = Daemon::start();
    let key = d.enroll_sshkey("root", SSH_ED25519).token.serial;
    let hotp = d.enroll_root_hotp(None);
    let refused = |r: Response, code: ErrorCode, says: &str| match r {
        Response::Error { code: c, message } => {
            assert_eq!(c, code, "{message}");
            assert!(message.contains(says), "{message}");
        }
        other => panic!("expected a refusal saying {says:?}, got {other:?}"),
    };
    refused(
        d.attach(&hotp, MachineApp::Ssh, MachineOptions::default()),
        ErrorCode::InvalidArgument,
        "sshkey",
    );
    refused(
        d.attach(&hotp, MachineApp::Luks, MachineOptions::default()),
        ErrorCode::InvalidArgument,
        "UBOM",
    );
    refused(
        d.attach(&key, MachineApp::Offline, MachineOptions::default()),
        ErrorCode::InvalidArgument,
        "hotp",
    );
    refused(
        d.attach(
            &key,
            MachineApp::Ssh,
            MachineOptions {
                slot: Some(1),
                ..Default::default()
            },
        ),
        ErrorCode::InvalidArgument,
        "--slot",
    );
    refused(
        d.attach(&key, MachineApp::Ssh, ssh_user("two words")),
        ErrorCode::InvalidArgument,
        "--user",
    );
    refused(
        d.attach("NOSUCH", MachineApp::Ssh, MachineOptions::default()),
        ErrorCode::NotFound,
        "NOSUCH",
    );
    refused(
        d.call(Request::Admin(AdminRequest::MachineAttach(Box::new(
            MachineAttach {
                serial: key.clone(),
                app: MachineApp::Ssh,
                host: Some("bad host/name".into()),
                options: MachineOptions::default(),
            },
        )))),
        ErrorCode::InvalidArgument,
        "host name",
    );
    assert!(d.machines().is_empty(), "no refused attach left anything");

    assert!(is_done(&d.attach(&key, MachineApp::Ssh, ssh_user("alice"))));
    refused(
        d.attach(&key, MachineApp::Ssh, ssh_user("bob")),
        ErrorCode::AlreadyExists,
        "detach it first",
    );
    let offline = d.attach(
        &hotp,
        MachineApp::Offline,
        MachineOptions {
            count: Some(5),
            ..Default::default()
        },
    );
    assert!(is_done(&offline), "{offline:?}");
    let list = d.machines();
    assert_eq!(list.len(), 2);
    let off = list.iter().find(|m| m.app == MachineApp::Offline).unwrap();
    assert_eq!(
        (off.options.count, off.options.rounds),
        (Some(5), Some(6549))
    );
    let ssh = list.iter().find(|m| m.app == MachineApp::Ssh).unwrap();
    assert_eq!(ssh.options.user.as_deref(), Some("alice"));
    assert_eq!(ssh.host, d.state.hostname);
    assert!(d
        .audit()
        .iter()
        .any(|e| e.action == "machine attach" && e.serial.as_deref() == Some(key.as_str())));

    d.admin(AdminRequest::TokenDelete { serial: key });
    assert_eq!(d.machines().len(), 1, "the key's assignment went with it");
    let r = d.call(Request::Admin(AdminRequest::MachineDetach {
        serial: hotp.clone(),
        app: MachineApp::Offline,
        host: None,
    }));
    assert!(is_done(&r), "{r:?}");
    assert!(d.machines().is_empty());
    refused(
        d.call(Request::Admin(AdminRequest::MachineDetach {
            serial: hotp,
            app: MachineApp::Offline,
            host: None,
        })),
        ErrorCode::NotFound,
        "not attached",
    );
}

#[test]
fn users_cannot_attach_their_own_tokens_to_machines() {
    let d = Daemon::start_with(
        &policy("self", "user", "enroll = \"sshkey\", delete = true"),
        1_111_111_109,
    );
    let serial = d.enroll_sshkey("nobody", SSH_ED25519).token.serial;
    let attach = Request::Admin(AdminRequest::MachineAttach(Box::new(MachineAttach {
        serial,
        app: MachineApp::Ssh,
        host: None,
        options: ssh_user("root"),
    })));
    match d.dispatch_as(&nobody(false), attach) {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::PermissionDenied),
        other => panic!("self-service attached a key: {other:?}"),
    }
    assert!(d.machines().is_empty());
}

#[test]
fn luks_responses_are_the_yubikeys_answer_and_only_root_gets_them() {
    let d = Daemon::start();
    // testdata/luks_hmac.tsv, first vector.
    let serial = d
        .enroll_spec(EnrollRequest {
            serial: Some("UBOM12345678_2".into()),
            otpkey: Some(Secret::new(KEY20)),
            ..root_spec(TokenType::Totp)
        })
        .token
        .serial;
    let r = d.attach(
        &serial,
        MachineApp::Luks,
        MachineOptions {
            slot: Some(1),
            device: Some("/dev/vdb".into()),
            ..Default::default()
        },
    );
    assert!(is_done(&r), "{r:?}");
    let ask = || {
        Request::Admin(AdminRequest::LuksResponses {
            password: Secret::new("lukspassword"),
            host: None,
        })
    };
    match d.call(ask()) {
        Response::Admin(AdminResponse::LuksResponses(items)) => {
            assert_eq!(items.len(), 1);
            assert_eq!(
                items[0].response.expose(),
                "04b30deb5dcf72ad8aa0a9afa9b4d24d71617db5"
            );
            assert_eq!(
                (items[0].slot, items[0].device.as_deref()),
                (Some(1), Some("/dev/vdb"))
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // An admin-group member manages tokens, but does not get disk passphrases.
    match d.dispatch_as(&caller(1000, true), ask()) {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::PermissionDenied),
        other => panic!("unexpected {other:?}"),
    }
    d.admin(AdminRequest::TokenDisable { serial });
    match d.call(ask()) {
        Response::Admin(AdminResponse::LuksResponses(items)) => {
            assert!(items.is_empty(), "a disabled token opens nothing")
        }
        other => panic!("unexpected {other:?}"),
    }
    // Neither the password nor the secret reach the audit trail.
    for e in d.audit() {
        assert!(!e.message.contains("lukspassword") && !e.message.contains(KEY20));
    }
}
