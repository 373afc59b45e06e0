//! The reader against RFC 6030's own examples, and files that must be refused.

use super::*;

const FIGURE2: &str = include_str!("../../../tests/data/pskc/rfc6030-figure2.xml");
const FIGURE6: &str = include_str!("../../../tests/data/pskc/rfc6030-figure6.xml");
const FIGURE7: &str = include_str!("../../../tests/data/pskc/rfc6030-figure7.xml");
/// "12345678901234567890", the secret of every RFC example.
const RFC_SECRET_HEX: &str = "3132333435363738393031323334353637383930";
const RFC_PRESHARED_KEY: &str = "12345678901234567890123456789012";

fn as_alice() -> Owner<'static> {
    Owner {
        user: Some("alice"),
        realm: None,
        pool: false,
    }
}

fn preshared() -> Decryption {
    Decryption::Key(Zeroizing::new(hex::decode(RFC_PRESHARED_KEY).unwrap()))
}

fn read_ok(text: &str, decryption: &Decryption) -> Parsed {
    read("keys.xml", text, decryption, &as_alice()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn read_err(text: &str, decryption: &Decryption) -> String {
    match read("keys.xml", text, decryption, &as_alice()) {
        Ok(p) => panic!("accepted: {:?}", p.tokens.len()),
        Err(e) => e.join("\n"),
    }
}

#[test]
fn the_rfcs_plain_key_is_read_with_six_digits_by_default() {
    let parsed = read_ok(FIGURE2, &Decryption::None);
    let [token] = &parsed.tokens[..] else {
        panic!("{:?}", parsed.tokens.len())
    };
    assert_eq!(token.token_type, TokenType::Hotp);
    assert_eq!(token.otpkey.expose(), "31323334", "the secret \"1234\"");
    assert_eq!(token.digits, 6);
    assert_eq!(token.counter, 0);
    assert_eq!(token.user.login, "alice");
    assert_eq!(token.description, "PSKC");
    assert!(
        token.source.contains("Key Id \"12345678\""),
        "{}",
        token.source
    );
    assert!(parsed.notes.iter().any(|n| n.contains("6-digit")));
}

#[test]
fn the_rfcs_preshared_key_example_decrypts_after_its_mac_is_checked() {
    let parsed = read_ok(FIGURE6, &preshared());
    let token = &parsed.tokens[0];
    assert_eq!(token.otpkey.expose(), RFC_SECRET_HEX);
    assert_eq!(token.digits, 8);
    assert_eq!(token.counter, 0);
    assert_eq!(token.description, "PSKC Manufacturer 987654321");
}

#[test]
fn the_rfcs_password_example_decrypts_with_pbkdf2_from_qwerty() {
    let parsed = read_ok(FIGURE7, &Decryption::Password(Secret::new("qwerty")));
    assert_eq!(parsed.tokens[0].otpkey.expose(), RFC_SECRET_HEX);
    assert_eq!(
        parsed.tokens[0].description,
        "PSKC TokenVendorAcme 987654321"
    );
}

#[test]
fn a_wrong_key_or_password_fails_the_mac_and_nothing_is_read() {
    let wrong = Decryption::Key(Zeroizing::new(vec![0x11; 16]));
    let e = read_err(FIGURE6, &wrong);
    assert!(e.contains("MACKey") || e.contains("ValueMAC"), "{e}");
    let e = read_err(FIGURE7, &Decryption::Password(Secret::new("qwertz")));
    assert!(
        e.contains("does not match") || e.contains("cannot decrypt"),
        "{e}"
    );
    assert!(!e.contains("qwertz"), "{e}");
}

#[test]
fn a_changed_ciphertext_or_mac_is_refused() {
    let tampered = FIGURE6.replace(
        "AAECAwQFBgcICQoLDA0OD+cIHItlB3Wra1DUpxVvOx2lef1VmNPCMl8jwZqIUqGv",
        "AAECAwQFBgcICQoLDA0OD+cIHItlB3Wra1DUpxVvOx2lef1VmNPCMl8jwZqIUqGw",
    );
    assert_ne!(tampered, FIGURE6);
    let e = read_err(&tampered, &preshared());
    assert!(e.contains("does not match"), "{e}");
    let tampered = FIGURE6.replace(
        "Su+NvtQfmvfJzF6bmQiJqoLRExc=",
        "Tu+NvtQfmvfJzF6bmQiJqoLRExc=",
    );
    assert!(read_err(&tampered, &preshared()).contains("does not match"));
    let without_mac = FIGURE6.replace(
        "<ValueMAC>Su+NvtQfmvfJzF6bmQiJqoLRExc=\n                    </ValueMAC>",
        "",
    );
    assert!(read_err(&without_mac, &preshared()).contains("without a ValueMAC"));
}

#[test]
fn an_encrypted_file_without_its_key_says_which_option_to_give() {
    assert!(read_err(FIGURE6, &Decryption::None).contains("--key HEX"));
    assert!(read_err(FIGURE7, &Decryption::None).contains("--password"));
}

#[test]
fn a_key_without_an_owner_is_refused_unless_user_is_given() {
    let nobody = Owner {
        user: None,
        realm: None,
        pool: false,
    };
    let e = read("keys.xml", FIGURE2, &Decryption::None, &nobody).unwrap_err();
    assert!(
        e[0].contains("no UserId") && e[0].contains("--user"),
        "{e:?}"
    );
    let with_user = FIGURE2.replace(
        "<Issuer>Issuer-A</Issuer>",
        "<Issuer>Issuer-A</Issuer><UserId>bob</UserId>",
    );
    assert_ne!(with_user, FIGURE2);
    let parsed = read("keys.xml", &with_user, &Decryption::None, &nobody).unwrap();
    assert_eq!(parsed.tokens[0].user.login, "bob");
    // With --pool, a key without a UserId is for nobody; one with a UserId keeps its owner.
    let pool = Owner {
        pool: true,
        ..nobody
    };
    let parsed = read("keys.xml", FIGURE2, &Decryption::None, &pool).unwrap();
    assert_eq!(parsed.tokens[0].user, protocol::UserRef::default());
    let parsed = read("keys.xml", &with_user, &Decryption::None, &pool).unwrap();
    assert_eq!(parsed.tokens[0].user.login, "bob");
}

#[test]
fn every_bad_key_package_is_named_and_nothing_is_read() {
    let two = FIGURE2.replace(
        "</KeyContainer>",
        "<KeyPackage><Key Id=\"b\" Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:hotp\">\
         <AlgorithmParameters><ResponseFormat Length=\"6\" Encoding=\"DECIMAL\"/>\
         </AlgorithmParameters><Data><Secret><PlainValue>MTIz</PlainValue></Secret>\
         <Counter><PlainValue>ten</PlainValue></Counter></Data></Key></KeyPackage>\
         <KeyPackage><Key Id=\"c\" Algorithm=\"urn:example:ocra\"/></KeyPackage></KeyContainer>",
    );
    let e = read_err(&two, &Decryption::None);
    assert!(
        e.contains("KeyPackage 2 (Key Id \"b\"): Data/Counter: not a number"),
        "{e}"
    );
    assert!(
        e.contains("KeyPackage 3 (Key Id \"c\"): Key Algorithm"),
        "{e}"
    );
}

#[test]
fn a_document_type_definition_is_refused_so_no_entity_is_ever_expanded() {
    let laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\">\
        <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\
        <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>\
        <KeyContainer Version=\"1.0\" xmlns=\"urn:ietf:params:xml:ns:keyprov:pskc\">&lol3;\
        </KeyContainer>";
    let e = read_err(laughs, &Decryption::None);
    assert!(e.contains("not a PSKC file"), "{e}");
}

#[test]
fn other_documents_are_refused_with_what_they_are() {
    assert!(read_err("not xml at all", &Decryption::None).contains("not a PSKC file"));
    assert!(read_err("<html/>", &Decryption::None).contains("<html>"));
    let v2 = FIGURE2.replace("Version=\"1.0\"", "Version=\"2.0\"");
    assert!(read_err(&v2, &Decryption::None).contains("only PSKC 1.0"));
}
