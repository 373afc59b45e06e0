//! The check pipeline on its own: token records, what the user typed, the rules and the time go
//! in, and a `Table` answers what the daemon's `State` would (secrets, PINs, the user store, the
//! Yubico servers, a realm's tokens). No daemon, no socket, no clock.

use super::*;
use crate::auth::lockout::SourceFails;
use crate::store::{Owner, Store};
use crate::tokens::hotp::tests::record;
use protocol::{HashAlgorithm, TokenType};
use std::sync::Mutex;

/// RFC 4226 Appendix D: the key and the HOTP values of counters 0, 1, 2.
const KEY: &[u8] = b"12345678901234567890";
const HOTP: [&str; 3] = ["755224", "287082", "359152"];
const NOW: i64 = 1_700_000_000;
const CONSOLE: Source = Source::Local(0);

/// A verifier that answers from a table. Secrets are kept unsealed and a PIN "hash" is the PIN
/// itself; every question is counted.
#[derive(Default)]
struct Table {
    /// The user's password in the user store.
    password: Option<&'static str>,
    /// What the Yubico validation servers say.
    yubico_accepts: bool,
    /// The tokens `tokens_in_realm` finds (any realm's, filtered by their owner's realm).
    realm_tokens: Vec<Versioned>,
    asked: Mutex<Asked>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Asked {
    pins: usize,
    waits: usize,
    passwords: Vec<String>,
    yubico: usize,
}

impl Table {
    fn asked(&self) -> Asked {
        self.asked.lock().unwrap().clone()
    }
}

impl Verifier for Table {
    fn open_secret(&self, rec: &TokenRecord) -> Result<Zeroizing<Vec<u8>>, PidError> {
        Ok(Zeroizing::new(rec.otpkey.clone()))
    }

    fn seal_secret(&self, _serial: &str, secret: &[u8]) -> Result<Vec<u8>, PidError> {
        Ok(secret.to_vec())
    }

    async fn verify_pin(&self, stored: Option<&str>, pin: &str) -> Result<bool, PidError> {
        self.asked.lock().unwrap().pins += 1;
        Ok(stored.unwrap_or_default() == pin)
    }

    async fn wait_as_long_as_a_pin_check(&self) {
        self.asked.lock().unwrap().waits += 1;
    }

    async fn check_user_password(
        &self,
        _user: &ResolvedUser,
        password: Secret,
    ) -> Result<bool, PidError> {
        let password = password.expose().to_owned();
        let right = self.password == Some(password.as_str());
        self.asked.lock().unwrap().passwords.push(password);
        Ok(right)
    }

    async fn verify_yubico(&self, _otp: &str) -> Result<bool, PidError> {
        self.asked.lock().unwrap().yubico += 1;
        Ok(self.yubico_accepts)
    }

    fn tokens_in_realm(&self, realm: &str, limit: usize) -> Result<Vec<Versioned>, PidError> {
        Ok(self
            .realm_tokens
            .iter()
            .filter(|v| v.rec.owner.as_ref().is_some_and(|o| o.realm == realm))
            .take(limit)
            .cloned()
            .collect())
    }
}

fn owner(login: &str, realm: &str) -> Owner {
    Owner {
        realm: realm.into(),
        login: login.into(),
    }
}

fn alice() -> ResolvedUser {
    ResolvedUser {
        owner: owner("alice", "r"),
        host_uid: None,
        resolver: "users".into(),
        user_id: "1000".into(),
    }
}

/// An HOTP token of alice's with the RFC 4226 key, maxfail 3.
fn hotp(serial: &str, pin: Option<&str>) -> TokenRecord {
    let mut r = record(TokenType::Hotp, 6, HashAlgorithm::Sha1);
    r.serial = serial.into();
    r.owner = Some(owner("alice", "r"));
    r.otpkey = KEY.to_vec();
    r.pin_hash = pin.map(str::to_owned);
    r.maxfail = 3;
    r
}

/// A token of one type whose secret is `secret` and whose one-time part is that long.
fn fixed(t: TokenType, serial: &str, secret: &[u8], digits: u8) -> TokenRecord {
    let mut r = hotp(serial, None);
    r.token_type = t;
    r.otpkey = secret.to_vec();
    r.digits = digits;
    r
}

fn rules() -> Rules {
    Rules {
        reset_all_user_tokens: false,
        challenge_types: Vec::new(),
        last_auth: None,
        source: CONSOLE,
        lockout: LockoutRules {
            first_secs: 60,
            max_secs: 86_400,
        },
        service: "login".into(),
    }
}

/// The records as a login reads them: from a store, with their compare-and-swap witnesses.
fn stored(recs: &[TokenRecord]) -> Vec<Versioned> {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), 4).unwrap();
    recs.iter()
        .map(|r| {
            store.create_token(r).unwrap();
            store.get_token(&r.serial).unwrap().unwrap()
        })
        .collect()
}

/// Check `pass` typed by alice against `tokens` at `now`.
async fn check_at(
    table: &Table,
    tokens: &[TokenRecord],
    pass: &str,
    now: i64,
    rules: &Rules,
    otppin: OtpPin,
) -> Plan {
    let user = alice();
    let mut pins = PinCheck::new(table, &user, otppin);
    let pass = Secret::new(pass);
    evaluate(
        table,
        stored(tokens),
        Input::Pass(&pass),
        now,
        rules,
        &mut pins,
    )
    .await
    .unwrap()
}

async fn check(table: &Table, tokens: &[TokenRecord], pass: &str, rules: &Rules) -> Plan {
    check_at(table, tokens, pass, NOW, rules, OtpPin::TokenPin).await
}

/// The answer `otp` to a challenge of the tokens `challenged`.
async fn answer(table: &Table, tokens: &[TokenRecord], challenged: &[&str], otp: &str) -> Plan {
    let user = alice();
    let mut pins = PinCheck::new(table, &user, OtpPin::TokenPin);
    let challenged: Vec<Challenged> = challenged
        .iter()
        .map(|s| Challenged {
            serial: (*s).into(),
            message: None,
            data: Zeroizing::new(Vec::new()),
        })
        .collect();
    let otp = Secret::new(otp);
    let input = Input::Answer {
        otp: &otp,
        challenged: &challenged,
    };
    evaluate(table, stored(tokens), input, NOW, &rules(), &mut pins)
        .await
        .unwrap()
}

/// The record the plan stores for `serial`: `None` if it leaves the token as it was,
/// `Some(None)` if it deletes it.
fn change<'a>(plan: &'a Plan, serial: &str) -> Option<Option<&'a TokenRecord>> {
    plan.changes
        .iter()
        .find(|(old, _)| old.rec.serial == serial)
        .map(|(_, new)| new.as_ref())
}

fn changed<'a>(plan: &'a Plan, serial: &str) -> &'a TokenRecord {
    match change(plan, serial) {
        Some(Some(rec)) => rec,
        other => panic!("{serial} should be changed, not {other:?}"),
    }
}

fn fails_from(rec: &TokenRecord, source: &Source) -> u32 {
    rec.fails
        .iter()
        .find(|f| f.source == *source)
        .map_or(0, |f| f.count)
}

#[tokio::test]
async fn the_right_pin_and_otp_are_accepted_and_the_otp_is_spent() {
    let table = Table::default();
    let token = hotp("T1", Some("1234"));
    let plan = check(&table, &[token], &format!("1234{}", HOTP[0]), &rules()).await;
    let v = &plan.verdict;
    assert!(v.accepted, "{v:?}");
    assert_eq!(v.detail, "matching 1 tokens");
    assert_eq!(v.user_message, "");
    assert_eq!(v.serials, ["T1"]);
    assert_eq!(v.token_type.as_deref(), Some("hotp"));
    let spent = changed(&plan, "T1");
    assert_eq!(spent.count, 1, "the next login needs the next value");
    assert_eq!((spent.count_auth, spent.count_auth_success), (1, 1));
    assert_eq!(spent.last_auth, Some(NOW));
}

#[tokio::test]
async fn the_otp_used_last_is_refused_with_a_hint() {
    let table = Table::default();
    let mut token = hotp("T1", Some("1234"));
    token.count = 1;
    let plan = check(&table, &[token], &format!("1234{}", HOTP[0]), &rules()).await;
    assert!(!plan.verdict.accepted);
    assert_eq!(
        plan.verdict.detail,
        "wrong otp value. previous otp used again"
    );
    assert_eq!(
        plan.verdict.user_message,
        "This one-time password was already used; wait for the next one."
    );
    assert_eq!(fails_from(changed(&plan, "T1"), &CONSOLE), 1);
}

#[tokio::test]
async fn a_wrong_otp_on_the_only_token_is_charged_without_a_pin_check_but_as_slowly() {
    let table = Table::default();
    let plan = check(&table, &[hotp("T1", Some("1234"))], "1234000000", &rules()).await;
    assert!(!plan.verdict.accepted);
    assert_eq!(plan.verdict.detail, "wrong otp value (PIN not checked)");
    assert_eq!(plan.verdict.user_message, GENERIC_REJECT);
    let charged = changed(&plan, "T1");
    assert_eq!(fails_from(charged, &CONSOLE), 1);
    assert_eq!((charged.count_auth, charged.count), (1, 0));
    assert_eq!(
        table.asked(),
        Asked {
            waits: 1,
            ..Asked::default()
        },
        "no PIN check, but as long a wait"
    );

    let table = Table::default();
    check(&table, &[hotp("T1", None)], "000000", &rules()).await;
    assert_eq!(
        table.asked(),
        Asked::default(),
        "a token without a PIN has no PIN check to hide"
    );
}

#[tokio::test]
async fn every_token_is_tried_and_the_one_that_matches_lets_in() {
    let table = Table::default();
    let mut other = hotp("T1", Some("1234"));
    other.otpkey = b"another key of twenty".to_vec();
    let plan = check(
        &table,
        &[other, hotp("T2", Some("1234"))],
        &format!("1234{}", HOTP[0]),
        &rules(),
    )
    .await;
    assert!(plan.verdict.accepted);
    assert_eq!(plan.verdict.serials, ["T2"]);
    assert_eq!(
        change(&plan, "T1"),
        None,
        "the other token is left as it was"
    );
    assert_eq!(
        table.asked().pins,
        2,
        "with two tokens both PINs are checked"
    );
}

#[tokio::test]
async fn with_several_tokens_only_the_one_whose_pin_matched_is_charged() {
    let table = Table::default();
    let tokens = [hotp("T1", Some("1111")), hotp("T2", Some("2222"))];
    let plan = check(&table, &tokens, "2222000000", &rules()).await;
    assert_eq!(plan.verdict.detail, "wrong otp value");
    assert_eq!(plan.verdict.serials, ["T2"]);
    assert_eq!(fails_from(changed(&plan, "T2"), &CONSOLE), 1);
    assert_eq!(change(&plan, "T1"), None);
}

#[tokio::test]
async fn with_several_tokens_and_no_pin_matching_every_token_is_charged() {
    let table = Table::default();
    let tokens = [hotp("T1", Some("1111")), hotp("T2", Some("2222"))];
    let plan = check(&table, &tokens, &format!("3333{}", HOTP[0]), &rules()).await;
    assert_eq!(plan.verdict.detail, "wrong otp pin");
    assert_eq!(plan.verdict.serials, ["T1", "T2"]);
    for serial in ["T1", "T2"] {
        let rec = changed(&plan, serial);
        assert_eq!(fails_from(rec, &CONSOLE), 1, "{serial}");
        assert_eq!(
            rec.count, 0,
            "{serial}: the right OTP behind a wrong PIN is not spent"
        );
    }
}

#[tokio::test]
async fn the_pin_alone_triggers_a_challenge_for_the_policys_types_and_charges_nothing() {
    let table = Table::default();
    let mut challenge_response = rules();
    challenge_response.challenge_types = vec![TokenType::Hotp];
    let plan = check(
        &table,
        &[hotp("T1", Some("1234"))],
        "1234",
        &challenge_response,
    )
    .await;
    let v = &plan.verdict;
    assert!(!v.accepted);
    assert_eq!(v.detail, "challenge triggered for 1 tokens");
    assert_eq!(v.user_message, "");
    assert_eq!(
        v.challenge
            .iter()
            .map(|c| c.serial.as_str())
            .collect::<Vec<_>>(),
        ["T1"]
    );
    assert!(plan.changes.is_empty(), "no fail counter is charged");

    let plan = check(&table, &[hotp("T1", Some("1234"))], "1234", &rules()).await;
    assert_eq!(
        plan.verdict.detail, "wrong otp pin",
        "without the policy the PIN alone is a failure"
    );
    assert!(plan.verdict.challenge.is_empty());
}

#[tokio::test]
async fn an_answer_is_checked_against_the_challenged_tokens_only_and_may_be_retried() {
    let table = Table::default();
    let tokens = [hotp("T1", None), hotp("T2", None)];
    let plan = answer(&table, &tokens, &["T2"], HOTP[0]).await;
    assert!(plan.verdict.accepted);
    assert_eq!(plan.verdict.serials, ["T2"]);
    assert_eq!(change(&plan, "T1"), None);

    let plan = answer(&table, &tokens, &["T2"], "000000").await;
    assert_eq!(plan.verdict.detail, "Response did not match the challenge.");
    assert!(plan.verdict.may_retry, "the token is still usable");
    assert_eq!(fails_from(changed(&plan, "T2"), &CONSOLE), 1);
    assert_eq!(change(&plan, "T1"), None);

    let mut last_chance = hotp("T2", None);
    last_chance.maxfail = 1;
    let plan = answer(&table, &[last_chance], &["T2"], "000000").await;
    assert!(
        !plan.verdict.may_retry,
        "a wrong answer that locks the token ends the challenge"
    );
}

#[tokio::test]
async fn a_source_locked_by_its_failures_is_refused_the_right_otp_and_others_are_not() {
    let table = Table::default();
    let attacker = Source::Remote("192.0.2.7".into());
    let mut token = hotp("T1", None);
    token.fails.push(SourceFails {
        source: attacker.clone(),
        count: 3,
        locks: 1,
        locked: Some((NOW - 10, Some(NOW + 50))),
    });
    let mut from_attacker = rules();
    from_attacker.source = attacker.clone();
    let plan = check(&table, &[token.clone()], HOTP[0], &from_attacker).await;
    assert!(!plan.verdict.accepted);
    assert_eq!(plan.verdict.detail, "Failcounter exceeded");
    assert!(plan
        .verdict
        .user_message
        .starts_with("Too many failed attempts"));
    assert!(plan.changes.is_empty(), "the code is not spent");

    let plan = check(&table, &[token.clone()], HOTP[0], &rules()).await;
    assert!(plan.verdict.accepted, "the console is not locked");
    assert_eq!(
        fails_from(changed(&plan, "T1"), &attacker),
        3,
        "a success from the console forgives the attacker nothing"
    );

    let plan = check_at(
        &table,
        &[token],
        HOTP[0],
        NOW + 50,
        &from_attacker,
        OtpPin::TokenPin,
    )
    .await;
    assert!(plan.verdict.accepted, "the lock ends");
    assert_eq!(fails_from(changed(&plan, "T1"), &attacker), 0);
}

#[tokio::test]
async fn revoked_disabled_used_up_and_expired_tokens_are_refused_with_their_reason() {
    let table = Table::default();
    let pass = HOTP[0];
    let mut revoked = hotp("T1", None);
    revoked.revoked = true;
    let plan = check(&table, &[revoked], pass, &rules()).await;
    assert_eq!(
        plan.verdict.detail,
        "This action is not possible, since the token is locked"
    );
    assert_eq!(
        plan.verdict.user_message,
        "Your token has been revoked; ask an administrator for a new one."
    );

    let mut disabled = hotp("T1", None);
    disabled.active = false;
    let mut used_up = hotp("T1", None);
    used_up.count_auth_max = 5;
    used_up.count_auth = 5;
    let mut expired = hotp("T1", None);
    expired.validity_end = Some(NOW - 1);
    let mut early = hotp("T1", None);
    early.validity_start = Some(NOW + 1);
    for (token, reason) in [
        (disabled, "Token is disabled"),
        (used_up, "Authentication counter exceeded"),
        (expired, "Outside validity period"),
        (early, "Outside validity period"),
    ] {
        let plan = check(&table, &[token], pass, &rules()).await;
        assert!(!plan.verdict.accepted, "{reason}");
        assert_eq!(plan.verdict.detail, reason);
        assert_eq!(plan.verdict.user_message, GENERIC_REJECT);
        assert!(
            plan.changes.is_empty(),
            "{reason}: nothing is charged or spent"
        );
    }

    let plan = check(&table, &[], pass, &rules()).await;
    assert_eq!(
        plan.verdict.detail,
        "No suitable token found for authentication."
    );
}

#[tokio::test]
async fn last_auth_refuses_a_token_unused_for_too_long_but_spends_the_otp() {
    let table = Table::default();
    let mut rules = rules();
    rules.last_auth = Some(3600);
    let mut stale = hotp("T1", None);
    stale.last_auth = Some(NOW - 3601);
    let plan = check(&table, &[stale.clone()], HOTP[0], &rules).await;
    assert!(!plan.verdict.accepted);
    assert_eq!(
        plan.verdict.detail,
        "The last successful authentication was too long ago (last_auth)"
    );
    let spent = changed(&plan, "T1");
    assert_eq!(spent.count, 1, "the OTP is spent all the same");
    assert_eq!(spent.last_auth, Some(NOW - 3601), "its last success stays");

    stale.last_auth = Some(NOW - 3600);
    assert!(
        check(&table, &[stale], HOTP[0], &rules)
            .await
            .verdict
            .accepted
    );
}

#[tokio::test]
async fn a_success_clears_its_own_sources_failures_and_with_reset_all_user_tokens_every_token() {
    let table = Table::default();
    let ssh = Source::Remote("198.51.100.1".into());
    let lockout = rules().lockout;
    let mut t1 = hotp("T1", None);
    let mut t2 = hotp("T2", Some("other"));
    for t in [&mut t1, &mut t2] {
        t.charge(&CONSOLE, NOW - 100, &lockout);
        t.charge(&ssh, NOW - 100, &lockout);
    }
    let tokens = [t1, t2];
    let plan = check(&table, &tokens, HOTP[0], &rules()).await;
    assert!(plan.verdict.accepted);
    let t1 = changed(&plan, "T1");
    assert_eq!(fails_from(t1, &CONSOLE), 0);
    assert_eq!(fails_from(t1, &ssh), 1, "another source's failures stay");
    assert_eq!(change(&plan, "T2"), None);

    let mut reset_all = rules();
    reset_all.reset_all_user_tokens = true;
    let plan = check(&table, &tokens, HOTP[0], &reset_all).await;
    let t2 = changed(&plan, "T2");
    assert_eq!(fails_from(t2, &CONSOLE), 0, "every token, for this source");
    assert_eq!(fails_from(t2, &ssh), 1);
}

#[tokio::test]
async fn otppin_userstore_asks_the_store_once_per_password_and_never_an_empty_one() {
    let table = Table {
        password: Some("secret"),
        ..Table::default()
    };
    let tokens = [hotp("T1", Some("token pin")), hotp("T2", None)];
    let plan = check_at(
        &table,
        &tokens,
        &format!("secret{}", HOTP[0]),
        NOW,
        &rules(),
        OtpPin::UserStore,
    )
    .await;
    assert!(plan.verdict.accepted);
    assert_eq!(plan.verdict.serials, ["T1", "T2"]);
    assert_eq!(table.asked().passwords, ["secret"], "asked once for both");
    assert_eq!(table.asked().pins, 0, "the token PINs play no part");

    let table = Table {
        password: Some("secret"),
        ..Table::default()
    };
    let plan = check_at(&table, &tokens, HOTP[1], NOW, &rules(), OtpPin::UserStore).await;
    assert_eq!(plan.verdict.detail, "wrong otp pin");
    assert!(
        table.asked().passwords.is_empty(),
        "an empty password never reaches the user store"
    );
}

#[tokio::test]
async fn otppin_none_takes_the_otp_alone_even_from_a_token_with_a_pin() {
    let table = Table::default();
    let tokens = [hotp("T1", Some("1234")), hotp("T2", Some("5678"))];
    let plan = check_at(&table, &tokens, HOTP[0], NOW, &rules(), OtpPin::None).await;
    assert!(plan.verdict.accepted);
    assert_eq!(table.asked(), Asked::default());
}

#[tokio::test]
async fn a_totp_code_is_judged_at_the_time_passed_in() {
    // RFC 6238 Appendix B: SHA-1, 8 digits, T = 59 s.
    let table = Table::default();
    let mut totp = hotp("T1", None);
    totp.token_type = TokenType::Totp;
    totp.digits = 8;
    let plan = check_at(
        &table,
        &[totp.clone()],
        "94287082",
        59,
        &rules(),
        OtpPin::TokenPin,
    )
    .await;
    assert!(plan.verdict.accepted);
    assert_eq!(changed(&plan, "T1").count, 1, "the step it was accepted at");
    let plan = check_at(
        &table,
        &[totp],
        "94287082",
        59 + 3600,
        &rules(),
        OtpPin::TokenPin,
    )
    .await;
    assert!(!plan.verdict.accepted, "an hour later it is no code");
}

#[tokio::test]
async fn a_yubico_otp_is_asked_of_the_validation_servers_only_when_locally_plausible() {
    let id = "cccccccccccb";
    let otp = format!("{id}{}", "d".repeat(32));
    let token = fixed(TokenType::Yubico, "Y1", id.as_bytes(), 44);
    for (servers_say, accepted) in [(true, true), (false, false)] {
        let table = Table {
            yubico_accepts: servers_say,
            ..Table::default()
        };
        let plan = check(&table, std::slice::from_ref(&token), &otp, &rules()).await;
        assert_eq!(plan.verdict.accepted, accepted);
        assert_eq!(table.asked().yubico, 1);
    }
    let table = Table {
        yubico_accepts: true,
        ..Table::default()
    };
    let someone_elses = format!("cccccccccccd{}", "d".repeat(32));
    let plan = check(&table, &[token], &someone_elses, &rules()).await;
    assert!(!plan.verdict.accepted);
    assert_eq!(table.asked().yubico, 0, "another key's OTP is not sent out");
}

#[tokio::test]
async fn a_registration_code_is_deleted_by_the_login_it_lets_in() {
    let table = Table::default();
    let code = "abcdefghijkmnopqrstuvwxy";
    let token = fixed(TokenType::Registration, "REG1", code.as_bytes(), 24);
    let plan = check(&table, &[token], code, &rules()).await;
    assert!(plan.verdict.accepted);
    assert_eq!(
        change(&plan, "REG1"),
        Some(None),
        "deleted in the same swap"
    );
}

#[tokio::test]
async fn a_spass_is_its_pin_and_never_an_empty_answer() {
    let table = Table::default();
    let mut spass = fixed(TokenType::Spass, "S1", b"unused", 0);
    assert!(
        !check(&table, &[spass.clone()], "", &rules())
            .await
            .verdict
            .accepted
    );
    spass.pin_hash = Some("letmein".into());
    assert!(
        check(&table, &[spass.clone()], "letmein", &rules())
            .await
            .verdict
            .accepted
    );
    assert!(!check(&table, &[spass], "", &rules()).await.verdict.accepted);
}

#[tokio::test]
async fn an_application_specific_password_is_skipped_through_another_service() {
    let table = Table::default();
    let token = fixed(TokenType::Applspec, "A1", b"dovecot\0mailpass", 8);
    let plan = check(&table, std::slice::from_ref(&token), "mailpass", &rules()).await;
    assert!(!plan.verdict.accepted);
    assert_eq!(plan.verdict.detail, Unusable::OtherService.message());
    assert!(plan.changes.is_empty(), "skipped, not charged");

    let mut dovecot = rules();
    dovecot.service = "dovecot".into();
    assert!(
        check(&table, &[token], "mailpass", &dovecot)
            .await
            .verdict
            .accepted
    );
}

/// A 4eyes token of alice's that needs two tokens of realm `admins`, and those admins' tokens
/// (carol's changed by `carol`).
fn four_eyes_setup_with(carol: impl FnOnce(&mut TokenRecord)) -> (TokenRecord, Table) {
    let mut rule = fixed(TokenType::FourEyes, "4E", b"admins:2\0 ", 0);
    rule.pin_hash = Some("start".into());
    let admin = |serial: &str, login: &str, pin: &str| {
        let mut t = hotp(serial, Some(pin));
        t.owner = Some(owner(login, "admins"));
        t
    };
    let mut carols = admin("AC", "carol", "c");
    carol(&mut carols);
    let table = Table {
        realm_tokens: stored(&[admin("AB", "bob", "b"), carols]),
        ..Table::default()
    };
    (rule, table)
}

fn four_eyes_setup() -> (TokenRecord, Table) {
    four_eyes_setup_with(|_| {})
}

#[tokio::test]
async fn four_eyes_takes_codes_of_distinct_admins_tokens_and_spends_them() {
    let (rule, table) = four_eyes_setup();
    let both = format!("b{0} c{0}", HOTP[0]);
    let plan = check(&table, std::slice::from_ref(&rule), &both, &rules()).await;
    assert!(plan.verdict.accepted, "{:?}", plan.verdict);
    for admin in ["AB", "AC"] {
        let spent = changed(&plan, admin);
        assert_eq!((spent.count, spent.last_auth), (1, Some(NOW)), "{admin}");
    }

    let (rule, table) = four_eyes_setup();
    let twice = format!("b{} b{}", HOTP[0], HOTP[1]);
    let plan = check(&table, std::slice::from_ref(&rule), &twice, &rules()).await;
    assert!(!plan.verdict.accepted, "one admin's token counts once");
    assert_eq!(
        changed(&plan, "AB").count,
        1,
        "a code that was used is spent even though the rule was not met"
    );

    let (rule, table) = four_eyes_setup_with(|carols| carols.active = false);
    let plan = check(&table, &[rule], &both, &rules()).await;
    assert!(
        !plan.verdict.accepted,
        "a disabled admin token does not count"
    );

    let (rule, table) = four_eyes_setup();
    let plan = check(&table, &[rule], "start", &rules()).await;
    assert_eq!(plan.verdict.detail, "challenge triggered for 1 tokens");
    assert_eq!(
        plan.verdict.challenge[0].message.as_deref(),
        Some(crate::tokens::foureyes::prompt("admins", 2).as_str()),
        "its PIN alone asks for the codes one by one"
    );
}
