//! Realms and user stores: users of a passwd-format file log in as `login@realm`, a login
//! given to another account does not inherit its tokens, and the store's password serves as the
//! PIN or, for a user without tokens, alone.

use crate::common::{
    accepted, auth_begin, caller, host_and_file_realms, local_user, policy, Daemon, HOTP, KEY20,
};
use protocol::admin::{AdminRequest, EnrollRequest, UserRef};
use protocol::{ErrorCode, Outcome, Request, Response, Secret, TokenType};
use std::path::Path;

#[test]
fn flatfile_realm_users_authenticate_with_user_at_realm() {
    let d = Daemon::start_with_people("alice:x:4242:4242::/:/bin/false\n", 1_000_000, |people| {
        host_and_file_realms(people, "ext")
    });
    let e = d.enroll_spec(EnrollRequest {
        token_type: Some(TokenType::Hotp),
        user: Some(UserRef {
            login: "alice".into(),
            realm: Some("ext".into()),
        }),
        otpkey: Some(Secret::new(KEY20)),
        ..Default::default()
    });
    assert_eq!(e.token.realm.as_deref(), Some("ext"));
    assert_eq!(
        d.login("alice", HOTP[0]),
        Outcome::UnknownUser,
        "alice is not in the default realm"
    );
    assert!(accepted(&d.login("alice@ext", HOTP[0])));
    // A local caller whose uid equals alice's flatfile uid gains nothing: that uid is not a host
    // account's.
    let begin = Request::AuthBegin(auth_begin("alice@ext", "lock", None));
    let r = d.dispatch_as(&caller(4242, false), begin);
    assert!(matches!(
        r,
        Response::Error {
            code: ErrorCode::PermissionDenied,
            ..
        }
    ));
    let (code, msg) = d.enroll_err(EnrollRequest {
        token_type: Some(TokenType::Hotp),
        user: Some(UserRef {
            login: "alice".into(),
            realm: Some("nowhere".into()),
        }),
        ..Default::default()
    });
    assert_eq!(code, ErrorCode::NotFound);
    assert!(msg.contains("realm"), "{msg}");
}

/// `alice` in a flatfile realm `ext` whose password is `store-pw` (hash made by
/// `openssl passwd -6 -salt saltsalt store-pw`), and `bob` without a usable password.
fn userstore_daemon(policy: &str) -> Daemon {
    Daemon::start_with_people(
        "alice:$6$saltsalt$xuy/UcYk1etEk/A1xkozvEUem8X2YRq1Fmf5GWgDTbF6/xtODl6xQrLiU/JGuNJIJMqqc.XEQbe3kSoonCovJ.:4242:4242::/:/bin/false\n\
         bob:*:4243:4243::/:/bin/false\n",
        1_000_000,
        |people| userstore_extra(people, policy),
    )
}

/// The realm `ext`, the default, of the users in `people`, plus `policy`.
fn userstore_extra(people: &Path, policy: &str) -> String {
    format!(
        "default_realm = \"ext\"\n[resolvers.people]\ntype = \"flatfile\"\nfile = \"{}\"\n\
         [realms.ext]\nresolvers = [\"people\"]\n{policy}",
        people.display()
    )
}

#[test]
fn a_login_given_to_another_account_does_not_inherit_the_previous_owners_tokens() {
    let d = userstore_daemon("");
    let serial = d.enroll(TokenType::Hotp, "alice", KEY20, None, 6);
    assert!(accepted(&d.login("alice", HOTP[0])));
    // alice (uid 4242) leaves; the login name is given to a new person with another uid.
    let people = d.dir.path().join("people");
    std::fs::write(&people, "alice:*:5000:5000::/:/bin/false\n").unwrap();
    let extra = userstore_extra(&people, "");
    let d = d.restart_with(&extra);
    assert_eq!(
        d.login("alice", HOTP[1]),
        Outcome::Reject {
            message: "This account changed since its tokens were enrolled; ask an administrator."
                .into()
        }
    );
    assert_eq!(d.show(&serial).count, 1, "the old token was not even tried");
    let (code, msg) = d.enroll_err(EnrollRequest {
        token_type: Some(TokenType::Hotp),
        user: Some(local_user("alice")),
        ..Default::default()
    });
    assert_eq!(code, ErrorCode::TokenState, "{msg}");
    assert!(msg.contains("now names another account"), "{msg}");
    // Once the previous owner's token is gone, the new alice gets her own.
    d.admin(AdminRequest::TokenDelete { serial });
    let fresh = d.enroll(TokenType::Hotp, "alice", KEY20, None, 6);
    assert!(accepted(&d.login("alice", HOTP[0])));
    assert_eq!(d.show(&fresh).count, 1);
}

#[test]
fn otppin_userstore_takes_the_user_store_password_as_the_pin() {
    let d = userstore_daemon(&policy("us", "authentication", "otppin = \"userstore\""));
    // The token PIN is not what counts any more.
    d.enroll(TokenType::Hotp, "alice", KEY20, Some("1234"), 6);
    assert_eq!(d.first_prompt("alice"), "Password and one-time password: ");
    assert!(accepted(&d.login("alice", &format!("store-pw{}", HOTP[0]))));
    assert!(!accepted(&d.login("alice", &format!("1234{}", HOTP[1]))));
    assert!(!accepted(
        &d.login("alice", &format!("wrong-pw{}", HOTP[2]))
    ));
    assert!(!accepted(&d.login("alice", HOTP[3])), "no password");
    assert!(accepted(&d.login("alice", &format!("store-pw{}", HOTP[4]))));
}

#[test]
fn passthru_lets_a_user_without_tokens_in_with_the_store_password_only() {
    let d = userstore_daemon(&policy("pt", "authentication", "passthru = true"));
    assert_eq!(d.first_prompt("alice"), "Password: ");
    assert!(accepted(&d.login("alice", "store-pw")));
    let (prompts, outcome) = d.converse("alice", "store-pw", &[]);
    assert!(prompts.is_empty() && accepted(&outcome), "{outcome:?}");
    assert!(!accepted(&d.login("alice", "wrong")));
    assert!(!accepted(&d.login("alice", "")));
    assert!(!accepted(&d.login("bob", "")), "'*' is no password");
    assert!(d
        .audit()
        .iter()
        .any(|e| e.success && e.message == "against userstore due to 'pt'"));
    // Once alice has a token, passthru no longer applies: the password alone fails.
    d.enroll(TokenType::Hotp, "alice", KEY20, None, 6);
    assert!(!accepted(&d.login("alice", "store-pw")));
    assert!(accepted(&d.login("alice", HOTP[0])));
}
