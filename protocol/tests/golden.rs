#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code
//! bincode encodes enum variants by index: a reordered or inserted variant silently changes the
//! meaning of every frame an older peer sends. These tests pin the bytes of one value of every
//! variant, and check that every variant survives a round trip.
//!
//! If a test here fails because you *appended* a variant, add its value and bytes. If it fails
//! for an existing variant, you broke the wire format: put the variant back.

use protocol::admin::*;
use protocol::frame::{decode_value, encode_value};
use protocol::*;

fn token_info() -> TokenInfo {
    TokenInfo {
        serial: "S".into(),
        token_type: TokenType::Totp,
        user: Some("u".into()),
        realm: Some("r".into()),
        active: true,
        revoked: false,
        locked: false,
        failcount: 1,
        maxfail: 10,
        count: 2,
        description: "d".into(),
        digits: 6,
        hash: HashAlgorithm::Sha256,
        period: Some(30),
        count_window: 10,
        time_window: Some(180),
        time_shift: Some(-30),
        has_pin: true,
        count_auth: 3,
        count_auth_max: 0,
        count_auth_success: 2,
        count_auth_success_max: 0,
        validity_start: None,
        validity_end: Some(5),
        created: 7,
        last_auth: None,
        failcounter_exceeded_at: None,
        details: vec![("k".into(), "v".into())],
    }
}

fn audit_entry() -> AuditEntry {
    AuditEntry {
        seq: 1,
        time: 2,
        caller_uid: 0,
        caller_pid: 3,
        action: "auth".into(),
        user: Some("u".into()),
        realm: None,
        serial: None,
        token_type: None,
        service: Some("s".into()),
        rhost: None,
        success: true,
        message: "m".into(),
    }
}

fn user() -> UserRef {
    UserRef {
        login: "u".into(),
        realm: None,
    }
}

fn machine_options() -> MachineOptions {
    MachineOptions {
        user: Some("u".into()),
        service_id: None,
        slot: Some(2),
        device: Some("d".into()),
        concatenate: true,
        count: Some(5),
        rounds: None,
    }
}

fn requests() -> Vec<Request> {
    let admin = |a| Request::Admin(a);
    vec![
        Request::Status,
        Request::AuthBegin(AuthBegin {
            user: "u".into(),
            service: "s".into(),
            rhost: Some("h".into()),
            tty: None,
            ruser: None,
            authtok: Some(Secret::new("p")),
        }),
        Request::AuthContinue {
            session: 5,
            answer: Secret::new("a"),
        },
        admin(AdminRequest::TokenEnroll(Box::new(EnrollRequest {
            token_type: Some(TokenType::Hotp),
            user: Some(user()),
            serial: Some("S".into()),
            otpkey: Some(Secret::new("ab")),
            digits: Some(6),
            hash: Some(HashAlgorithm::Sha512),
            period: None,
            pin: None,
            description: Some("d".into()),
            motppin: None,
            password: None,
            count: Some(5),
            service: None,
            questions: vec![("q".into(), Secret::new("a"))],
            ocrasuite: None,
            email: None,
            phone: None,
            tokenid: None,
            foureyes: None,
            separator: None,
            sshkey: Some("k".into()),
        }))),
        admin(AdminRequest::TokenList {
            user: Some(user()),
            after: None,
            limit: 3,
        }),
        admin(AdminRequest::TokenShow { serial: "S".into() }),
        admin(AdminRequest::TokenDelete { serial: "S".into() }),
        admin(AdminRequest::TokenEnable { serial: "S".into() }),
        admin(AdminRequest::TokenDisable { serial: "S".into() }),
        admin(AdminRequest::TokenRevoke { serial: "S".into() }),
        admin(AdminRequest::TokenSet {
            serial: "S".into(),
            settings: Box::new(TokenSettings {
                maxfail: Some(3),
                validity_end: Some(None),
                ..Default::default()
            }),
        }),
        admin(AdminRequest::TokenReset { serial: "S".into() }),
        admin(AdminRequest::TokenResync {
            serial: "S".into(),
            otp1: Secret::new("1"),
            otp2: Secret::new("2"),
        }),
        admin(AdminRequest::TokenAssign {
            serial: "S".into(),
            user: user(),
        }),
        admin(AdminRequest::TokenUnassign { serial: "S".into() }),
        admin(AdminRequest::AuditShow {
            user: None,
            before: Some(9),
            limit: 4,
        }),
        admin(AdminRequest::PolicyCheck {
            user: user(),
            service: "s".into(),
            rhost: Some("h".into()),
        }),
        admin(AdminRequest::MachineAttach(Box::new(MachineAttach {
            serial: "S".into(),
            app: MachineApp::Luks,
            host: Some("h".into()),
            options: machine_options(),
        }))),
        admin(AdminRequest::MachineDetach {
            serial: "S".into(),
            app: MachineApp::Ssh,
            host: None,
        }),
        admin(AdminRequest::MachineList {
            serial: None,
            app: Some(MachineApp::Offline),
            host: Some("h".into()),
        }),
        admin(AdminRequest::LuksResponses {
            password: Secret::new("p"),
            host: None,
        }),
        Request::SshKeys {
            user: "u".into(),
            service_id: Some("w".into()),
        },
        admin(AdminRequest::TokenImport(Box::new(ImportRequest {
            tokens: vec![ImportedToken {
                source: "f:1".into(),
                user: user(),
                token_type: TokenType::Tan,
                otpkey: Secret::new("ab"),
                digits: 8,
                hash: HashAlgorithm::Sha1,
                period: Some(30),
                counter: 5,
                pin: Some(Secret::new("p")),
                tans: vec![Secret::new("t")],
                description: "d".into(),
            }],
        }))),
        admin(AdminRequest::OfflineStatus { user: Some(user()) }),
        admin(AdminRequest::UpstreamStatus),
        admin(AdminRequest::TokenOtps {
            serial: "s".into(),
            count: 3,
        }),
        admin(AdminRequest::TokenVerify {
            serial: "s".into(),
            otp1: Secret::new("1"),
            otp2: Secret::new("2"),
        }),
        admin(AdminRequest::TokenPool {
            serial: "s".into(),
            realm: Some("r".into()),
        }),
        admin(AdminRequest::TokenListPool {
            realm: "r".into(),
            after: Some("a".into()),
            limit: 5,
        }),
        admin(AdminRequest::TokenEnrollPool {
            realm: "r".into(),
            spec: Box::new(EnrollRequest {
                token_type: Some(TokenType::Hotp),
                digits: Some(6),
                ..EnrollRequest::default()
            }),
        }),
        admin(AdminRequest::TokenImportPool {
            realm: "r".into(),
            batch: Box::new(ImportRequest {
                tokens: vec![ImportedToken {
                    source: "f:2".into(),
                    user: UserRef::default(),
                    token_type: TokenType::Hotp,
                    otpkey: Secret::new("ab"),
                    digits: 6,
                    hash: HashAlgorithm::Sha1,
                    period: None,
                    counter: 0,
                    pin: None,
                    tans: vec![],
                    description: String::new(),
                }],
            }),
        }),
        Request::PinChange {
            ticket: Secret::new("t"),
            pin: Secret::new("p"),
        },
    ]
}

fn responses() -> Vec<Response> {
    let admin = |a| Response::Admin(a);
    vec![
        Response::Error {
            code: ErrorCode::PermissionDenied,
            message: "m".into(),
        },
        Response::AuthStep {
            session: 1,
            prompt: Prompt::Secret { text: "t".into() },
        },
        Response::AuthStep {
            session: 1,
            prompt: Prompt::Echo { text: "t".into() },
        },
        Response::AuthStep {
            session: 1,
            prompt: Prompt::Info { text: "t".into() },
        },
        Response::AuthStep {
            session: 1,
            prompt: Prompt::Error { text: "t".into() },
        },
        Response::AuthDone(Outcome::Accept {
            message: "a".into(),
        }),
        Response::AuthDone(Outcome::Reject {
            message: "r".into(),
        }),
        Response::AuthDone(Outcome::NoToken),
        Response::AuthDone(Outcome::UnknownUser),
        Response::AuthDone(Outcome::Unavailable),
        Response::AuthDone(Outcome::ServerUnreachable {
            message: "m".into(),
        }),
        Response::Status(StatusInfo {
            version: "v".into(),
            protocol: 1,
            store_path: "p".into(),
            tokens: 2,
            uptime_secs: 3,
            caller_is_admin: true,
            notices: vec!["n".into()],
        }),
        admin(AdminResponse::Done {
            message: "m".into(),
        }),
        admin(AdminResponse::Enrolled(Box::new(Enrolled {
            token: token_info(),
            otpauth_url: Secret::new("otpauth://x"),
            otpkey_base32: Secret::new("AB"),
            codes: vec![Secret::new("1")],
        }))),
        admin(AdminResponse::Token(Box::new(token_info()))),
        admin(AdminResponse::Tokens {
            tokens: vec![token_info()],
            next: Some("S".into()),
        }),
        admin(AdminResponse::Audit {
            entries: vec![audit_entry()],
            next: None,
        }),
        admin(AdminResponse::PolicyCheck(Box::new(PolicyReport {
            login: "u".into(),
            realm: "r".into(),
            resolver: None,
            matching: vec!["p".into()],
            effective: vec![PolicyDecision {
                action: "a".into(),
                value: "v".into(),
                policy: "p".into(),
            }],
        }))),
        admin(AdminResponse::Machines(vec![MachineTokenInfo {
            serial: "S".into(),
            token_type: TokenType::Sshkey,
            app: MachineApp::Ssh,
            host: "h".into(),
            options: machine_options(),
            created: 7,
        }])),
        admin(AdminResponse::LuksResponses(vec![LuksResponse {
            serial: "S".into(),
            slot: Some(1),
            device: None,
            concatenate: false,
            response: Secret::new("ab"),
        }])),
        Response::SshKeys {
            keys: vec!["k".into()],
        },
        admin(AdminResponse::Imported(vec![
            ImportResult {
                source: "f:1".into(),
                outcome: ImportOutcome::Enrolled { serial: "S".into() },
            },
            ImportResult {
                source: "f:2".into(),
                outcome: ImportOutcome::Present { serial: "S".into() },
            },
            ImportResult {
                source: "f:3".into(),
                outcome: ImportOutcome::Refused {
                    message: "m".into(),
                },
            },
        ])),
        admin(AdminResponse::Offline(vec![OfflineInfo {
            login: "u".into(),
            realm: "r".into(),
            serial: "S".into(),
            upstream: "p".into(),
            remaining: 3,
            first_counter: Some(4),
            last_counter: Some(6),
            fails: 1,
            max_fails: 10,
            received_at: 7,
            refilled_at: None,
            refill_due: true,
        }])),
        admin(AdminResponse::Upstreams(vec![UpstreamInfo {
            name: "p".into(),
            urls: vec!["https://h".into()],
            realms: vec!["r".into()],
            tls: true,
            reachable: Some(true),
            version: Some("v".into()),
            service_account: true,
            service_account_ok: None,
            last_error: None,
        }])),
        admin(AdminResponse::Otps {
            serial: "s".into(),
            otps: vec![UpcomingOtp {
                counter: 7,
                valid_from: Some(210),
                otp: Secret::new("123456"),
            }],
        }),
        admin(AdminResponse::EnrolledUnverified(Box::new(Enrolled {
            token: token_info(),
            otpauth_url: Secret::new("u"),
            otpkey_base32: Secret::new("k"),
            codes: vec![],
        }))),
        admin(AdminResponse::Verified {
            token: Box::new(token_info()),
            recovery_code: Some(Secret::new("c")),
        }),
        Response::AuthDone(Outcome::AcceptPinChangeDue {
            message: "m".into(),
            ticket: Secret::new("t"),
        }),
        Response::PinChanged {
            message: "m".into(),
        },
    ]
}

#[test]
fn every_request_variant_round_trips() {
    for r in requests() {
        let bytes = protocol::frame::encode(&r).unwrap();
        let mut rd = &bytes[..];
        assert_eq!(
            protocol::frame::read_frame::<_, Request>(&mut rd).unwrap(),
            r
        );
    }
}

#[test]
fn every_response_variant_round_trips() {
    for r in responses() {
        let bytes = protocol::frame::encode(&r).unwrap();
        let mut rd = &bytes[..];
        assert_eq!(
            protocol::frame::read_frame::<_, Response>(&mut rd).unwrap(),
            r
        );
    }
    for c in ErrorCode::ALL {
        assert_eq!(
            decode_value::<ErrorCode>(&encode_value(&c).unwrap()).unwrap(),
            c
        );
    }
}

fn hex_all<T: serde::Serialize>(values: &[T]) -> Vec<String> {
    values
        .iter()
        .map(|v| hex::encode(encode_value(v).unwrap()))
        .collect()
}

#[test]
fn request_bytes_are_pinned() {
    let got = hex_all(&requests());
    let want = GOLDEN_REQUESTS;
    assert_eq!(
        got.len(),
        want.len(),
        "a request variant was added: pin its bytes here"
    );
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            g,
            w,
            "request #{i} changed on the wire: {:?}",
            requests()[i]
        );
    }
}

#[test]
fn response_bytes_are_pinned() {
    let got = hex_all(&responses());
    let want = GOLDEN_RESPONSES;
    assert_eq!(
        got.len(),
        want.len(),
        "a response variant was added: pin its bytes here"
    );
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            g,
            w,
            "response #{i} changed on the wire: {:?}",
            responses()[i]
        );
    }
}

/// docs/protocol.md's table of error codes is the contract operators and scripts read: every
/// code with its wire number and its name, and no other.
#[test]
fn error_codes_are_the_documented_numbers_and_names() {
    let doc = include_str!("../../docs/protocol.md");
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Error codes"))
        .expect("docs/protocol.md has a section \"Error codes\"");
    // | 0 | `version_mismatch` | meaning | what the operator does |
    let documented: Vec<(u8, &str)> = section
        .lines()
        .filter_map(|line| {
            let mut cells = line.split('|').map(str::trim).skip(1);
            let number = cells.next()?.parse().ok()?;
            let name = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            Some((number, name))
        })
        .collect();
    let got: Vec<(u8, &str)> = ErrorCode::ALL
        .iter()
        .map(|c| (encode_value(c).unwrap()[0], c.as_str()))
        .collect();
    assert_eq!(got, documented);
}

#[test]
fn the_frame_header_is_length_then_version() {
    let bytes = protocol::frame::encode(&Request::Status).unwrap();
    assert_eq!(bytes, [0, 0, 0, 3, 0, 4, 0]);
}

// Generated once from the code above, then frozen.
const GOLDEN_REQUESTS: &[&str] = &[
    "00",
    "01017501730101680000010170",
    "02050161",
    // protocol 2 appended motppin 00, password 00, count 0105, service 00, questions 0101710161,
    // then ocrasuite, email, phone, tokenid, foureyes and separator, 00 each; protocol 3 sshkey 01016b.
    "0300010001017500010153010261620106010200000101640000010500010171016100000000000001016b",
    "0301010175000003",
    "03020153",
    "03030153",
    "03040153",
    "03050153",
    "03060153",
    "030701530001030000000001000000",
    "03080153",
    "0309015301310132",
    "030a0153017500",
    "030b0153",
    "030c00010904",
    "030d0175000173010168",
    "030e01530101016801017500010201016401010500",
    "030f01530000",
    "0310000102010168",
    "0311017000",
    "040175010177",
    // appended without a version bump: older peers never send it
    "03120103663a31017500080261620800011e050101700101740164",
    "031301017500",
    "0314",
    "0315017303",
    "0316017301310132",
    "03170173010172",
    "0318017201016105",
    "031901720100000000010600000000000000000000000000000000",
    "031a01720103663a3200000002616206000000000000",
    "0501740170",
];
const GOLDEN_RESPONSES: &[&str] = &[
    "0002016d",
    "0101000174",
    "0101010174",
    "0101020174",
    "0101030174",
    "02000161",
    "02010172",
    "0202",
    "0203",
    "0204",
    "0205016d",
    "03017601017002030101016e",
    "0400016d",
    // protocol 2 appended the codes (01 0131); protocol 3 the token's details (01 016b 0176).
    "0401015301010175010172010000010a0201640601011e0a01b4013b010300020000010a0e000001016b01760b6f7470617574683a2f2f78024142010131",
    // protocol 3 appended the token's details: 01 016b 0176.
    "0402015301010175010172010000010a0201640601011e0a01b4013b010300020000010a0e000001016b0176",
    "040301015301010175010172010000010a0201640601011e0a01b4013b010300020000010a0e000001016b0176010153",
    "0404010104000604617574680101750000000101730001016d00",
    "0405017501720001017001016101760170",
    "040601015313000168010175000102010164010105000e",
    "040701015301010000026162",
    "0501016b",
    "04080303663a3100015303663a3201015303663a3302016d",
    "04090101750172015301700301040106010a0e0001",
    "040a010170010968747470733a2f2f68010172010101010176010000",
    "040b0173010701fba40106313233343536",
    "040c015301010175010172010000010a0201640601011e0a01b4013b010300020000010a0e000001016b01760175016b00",
    "040d015301010175010172010000010a0201640601011e0a01b4013b010300020000010a0e000001016b0176010163",
    "0206016d0174",
    "06016d",
];

#[test]
fn token_type_indices_are_stable() {
    let all = [
        TokenType::Hotp,
        TokenType::Totp,
        TokenType::Spass,
        TokenType::Daypassword,
        TokenType::Motp,
        TokenType::Pw,
        TokenType::Paper,
        TokenType::Registration,
        TokenType::Tan,
        TokenType::Applspec,
        TokenType::Yubikey,
        TokenType::Indexedsecret,
        TokenType::Question,
        TokenType::Ocra,
        TokenType::Email,
        TokenType::Sms,
        TokenType::Yubico,
        TokenType::Daplug,
        TokenType::FourEyes,
        TokenType::Sshkey,
    ];
    let bytes: Vec<String> = all
        .iter()
        .map(|t| hex::encode(encode_value(t).unwrap()))
        .collect();
    // Each variant is its index, in declaration order: append new types at the end.
    let expected: Vec<String> = (0..all.len()).map(|i| format!("{i:02x}")).collect();
    assert_eq!(bytes, expected);
    assert_eq!(
        all.to_vec(),
        TokenType::ALL.to_vec(),
        "TokenType::ALL lists every type in order"
    );
    for t in all {
        assert_eq!(
            decode_value::<TokenType>(&encode_value(&t).unwrap()).unwrap(),
            t
        );
    }
}

#[test]
#[ignore = "prints the golden bytes to paste above after an intentional append"]
fn print_golden_bytes() {
    println!("{:#?}", hex_all(&requests()));
    println!("{:#?}", hex_all(&responses()));
}
