use super::*;

const OFFLINE_HASH: &str = "$pbkdf2-sha512$1000$MDEyMzQ1Njc4OQ$mVPQ.fSwkOza3/dia49fevDusEmdr5bVF/rIVWxWyF4/x6uO1IKAbP4c4XNxoRwaC8WCRvjhWIVxtPbQ2gqYLQ";
const REFILL: &str =
    "f0336c2e7a9d4c1b8e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7fc6d5";

fn json(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn an_accepted_login_with_offline_values_yields_them_and_the_refill_token() {
    let body = json(serde_json::json!({
        "jsonrpc": "2.0", "id": 2, "version": "privacyIDEA 3.14",
        "result": {"authentication": "ACCEPT", "status": true, "value": true},
        "detail": {"message": "matching 1 tokens", "otplen": 6, "serial": "HOTP1", "type": "hotp"},
        "auth_items": {"offline": [{
            "count": "5", "rounds": "1000", "refilltoken": REFILL,
            "response": {"1": OFFLINE_HASH, "2": OFFLINE_HASH},
            "serial": "HOTP1", "user": "alice", "username": "alice"
        }]}
    }));
    let Check::Accept { serial, offline } = check(&body).unwrap() else {
        panic!("not accepted")
    };
    assert_eq!(serial.as_deref(), Some("HOTP1"));
    assert_eq!(offline.len(), 1);
    let item = &offline[0];
    assert_eq!(item.serial, "HOTP1");
    assert_eq!(item.username.as_deref(), Some("alice"));
    assert_eq!(item.refill_token.as_str(), REFILL);
    assert_eq!(item.values.range(), Some((1, 2)));
    assert!(
        !format!("{item:?}").contains(REFILL),
        "the refill token stays out of logs"
    );
}

#[test]
fn a_wrong_pin_is_a_reject_with_the_servers_message() {
    let body = json(serde_json::json!({
        "result": {"authentication": "REJECT", "status": true, "value": false},
        "detail": {"message": "wrong otp pin"}
    }));
    assert_eq!(
        check(&body).unwrap(),
        Check::Reject {
            message: "wrong otp pin".into()
        }
    );
}

#[test]
fn a_challenge_becomes_one_prompt_with_every_message_once() {
    let body = json(serde_json::json!({
        "result": {"authentication": "CHALLENGE", "status": true, "value": false},
        "detail": {
            "transaction_id": "02568878813523456427",
            "multi_challenge": [
                {"transaction_id": "02568878813523456427", "message": "please enter otp: ", "serial": "HOTP1", "type": "hotp"},
                {"transaction_id": "02568878813523456427", "message": "please enter otp: ", "serial": "TOTP1", "type": "totp"},
                {"transaction_id": "02568878813523456427", "message": "Enter the code sent to a***@example.org\u{1b}[2J", "serial": "EM1", "type": "email"}
            ]
        }
    }));
    let Check::Challenge(c) = check(&body).unwrap() else {
        panic!("no challenge")
    };
    assert_eq!(c.transaction_id, "02568878813523456427");
    assert_eq!(
        c.messages,
        vec![
            "please enter otp:".to_owned(),
            "Enter the code sent to a***@example.org\\u{1b}[2J".to_owned()
        ],
        "trimmed, escaped, each once"
    );
}

#[test]
fn an_unknown_user_is_the_servers_refusal_with_its_code() {
    let body = json(serde_json::json!({
        "result": {"status": false, "error": {"code": 904, "message": "ERR904: The user can not be found in any resolver in this realm!"}},
        "detail": null
    }));
    let Check::Refused(r) = check(&body).unwrap() else {
        panic!("not refused")
    };
    assert_eq!(r.code, Some(904));
    assert!(r.message.starts_with("ERR904"), "{}", r.message);
}

#[test]
fn answers_of_the_wrong_shape_are_refused_whole() {
    let bad: Vec<(&[u8], &str)> = vec![
        (b"", "not JSON"),
        (b"<html>502 Bad Gateway</html>", "not JSON"),
        (b"[]", "top-level"),
        (b"{}", "result"),
        (br#"{"result": {"status": "yes"}}"#, "status"),
        (br#"{"result": {"status": true}}"#, "result.value"),
        (br#"{"result": {"status": true, "value": "true"}}"#, "result.value"),
        (
            br#"{"result": {"status": true, "value": true, "authentication": "REJECT"}}"#,
            "authentication",
        ),
        (
            br#"{"result": {"status": true, "value": false, "authentication": "CHALLENGE"}, "detail": {}}"#,
            "multi_challenge",
        ),
    ];
    for (body, want) in bad {
        let e = check(body).unwrap_err().to_string();
        assert!(e.contains(want), "{:?}: {e}", String::from_utf8_lossy(body));
    }
}

#[test]
fn a_challenge_with_a_strange_transaction_is_refused() {
    for ids in [
        vec![""],
        vec!["12 34"],
        vec!["1/../2"],
        vec!["1", "2"],
        vec![&"9".repeat(65)[..]],
    ] {
        let list: Vec<serde_json::Value> = ids
            .iter()
            .map(|id| serde_json::json!({"transaction_id": id, "message": "otp?"}))
            .collect();
        let body = json(serde_json::json!({
            "result": {"status": true, "value": false},
            "detail": {"multi_challenge": list}
        }));
        assert!(
            matches!(check(&body), Err(BadAnswer::Invalid("transaction_id"))),
            "{ids:?}"
        );
    }
    let many: Vec<serde_json::Value> = (0..=MAX_CHALLENGES)
        .map(|_| serde_json::json!({"transaction_id": "1", "message": "otp?"}))
        .collect();
    let body = json(serde_json::json!({
        "result": {"status": true, "value": false},
        "detail": {"multi_challenge": many}
    }));
    assert!(matches!(check(&body), Err(BadAnswer::TooMany(..))));
}

#[test]
fn garbage_offline_values_refuse_the_whole_answer() {
    for item in [
        serde_json::json!({"refilltoken": REFILL, "serial": "H1", "response": {"1": "$pbkdf2-sha512$1$x$y"}}),
        serde_json::json!({"refilltoken": REFILL, "serial": "H1", "response": {"one": OFFLINE_HASH}}),
        serde_json::json!({"refilltoken": REFILL, "serial": "H1", "response": {"1": 5}}),
        serde_json::json!({"refilltoken": "short", "serial": "H1", "response": {"1": OFFLINE_HASH}}),
        serde_json::json!({"refilltoken": REFILL, "serial": "H 1", "response": {"1": OFFLINE_HASH}}),
        serde_json::json!({"refilltoken": REFILL, "serial": "H1"}),
        serde_json::json!({"serial": "H1", "response": {"1": OFFLINE_HASH}}),
        serde_json::json!("H1"),
    ] {
        let body = json(serde_json::json!({
            "result": {"status": true, "value": true},
            "detail": {"serial": "H1"},
            "auth_items": {"offline": [item.clone()]}
        }));
        assert!(check(&body).is_err(), "{item}");
    }
}

#[test]
fn a_refill_answer_carries_one_tokens_new_values() {
    let body = json(serde_json::json!({
        "result": {"status": true, "value": true},
        "auth_items": {"offline": [{"refilltoken": REFILL, "response": {"6": OFFLINE_HASH, "7": OFFLINE_HASH}, "serial": "HOTP1"}]}
    }));
    let item = refill(&body).unwrap().unwrap();
    assert_eq!(item.values.range(), Some((6, 7)));
    assert_eq!(item.username, None);
    let refused = json(serde_json::json!({
        "result": {"status": false, "error": {"code": 905, "message": "ERR905: Token is not an offline token or refill token is incorrect"}}
    }));
    assert_eq!(refill(&refused).unwrap().unwrap_err().code, Some(905));
    let none = json(serde_json::json!({"result": {"status": true, "value": true}}));
    assert!(refill(&none).is_err());
}

#[test]
fn ssh_and_luks_items_are_read_and_bounded() {
    let body = json(serde_json::json!({
        "result": {"status": true, "value": {"ssh": [
            {"sshkey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice", "username": "alice", "user": "root", "service_id": "webservers", "serial": null}
        ]}}
    }));
    let keys = ssh_keys(&body).unwrap().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].user.as_deref(), Some("root"));
    let none = json(serde_json::json!({"result": {"status": true, "value": {}}}));
    assert!(ssh_keys(&none).unwrap().unwrap().is_empty());

    let body = json(serde_json::json!({
        "result": {"status": true, "value": {"luks": [
            {"challenge": "6c756b7370617373776f7264", "response": "04B30DEB5DCF72AD8AA0A9AFA9B4D24D71617DB5", "slot": "1", "partition": "/dev/sda2"}
        ]}}
    }));
    let items = luks(&body).unwrap().unwrap();
    assert_eq!(
        items[0].response.as_str(),
        "04b30deb5dcf72ad8aa0a9afa9b4d24d71617db5"
    );
    assert_eq!(items[0].slot, Some(1));
    assert_eq!(items[0].partition.as_deref(), Some("/dev/sda2"));
    for bad in [
        serde_json::json!({"response": "zz", "slot": "1"}),
        serde_json::json!({"response": "00", "slot": "300"}),
        serde_json::json!({"response": "00", "slot": "-1"}),
    ] {
        let body =
            json(serde_json::json!({"result": {"status": true, "value": {"luks": [bad.clone()]}}}));
        assert!(luks(&body).is_err(), "{bad}");
    }
}

#[test]
fn the_jwt_is_taken_from_the_auth_answer() {
    let body = json(serde_json::json!({
        "result": {"status": true, "value": {"token": "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VybmFtZSI6ImFkbWluIn0.c2ln", "role": "admin"}}
    }));
    assert_eq!(
        jwt(&body).unwrap().unwrap().as_str(),
        "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VybmFtZSI6ImFkbWluIn0.c2ln"
    );
    let wrong = json(
        serde_json::json!({"result": {"status": false, "error": {"code": 4031, "message": "Authentication failure. Wrong credentials"}}}),
    );
    assert_eq!(jwt(&wrong).unwrap().unwrap_err().code, Some(4031));
}
