#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! Token pools and autoassignment: unassigned tokens in a realm's pool, claimed by a user of
//! the realm who has no token by logging in through PAM with their user store password (a
//! flatfile user's crypt hash) followed by the token's code (oathtool); refused for a wrong
//! password, a user who has a token, a user of another realm, and without the policy.

use pi_tests::daemon::serial_of;
use pi_tests::{hotp, test_key, Caller, Daemon, DaemonOptions, Pam};
use serde_json::Value;

/// `mkpasswd -m sha-512 'correct horse'` (libxcrypt, package whois).
const HASH: &str = "$6$7dgbfJA9hRpxrK3E$64uu0wgxiqTvHFeiecOjI6rHHOt0GGBekCCSKw.VV676sFo8AuVISYWbcegfVF2BlSMIy3q.gtwivWHh/J7e71";
const PASSWORD: &str = "correct horse";

const AUTOASSIGN: &str = "[[policy]]\nname = \"hand-out\"\nscope = \"enrollment\"\n\
                          actions = { autoassignment = \"userstore\" }\n";

/// Realm `ext` holds alice and bob, realm `other` holds dave, all with `PASSWORD`.
fn daemon(policy: &str) -> Daemon {
    daemon_with("", policy)
}

/// `daemon`, with top-level keys `top` (e.g. `admin_group`).
fn daemon_with(top: &str, policy: &str) -> Daemon {
    Daemon::start_with(DaemonOptions {
        extra_toml: format!(
            "{top}\n[resolvers.local]\ntype = \"passwd\"\n\
             [resolvers.people]\ntype = \"flatfile\"\nfile = \"{{dir}}/people\"\n\
             [resolvers.others]\ntype = \"flatfile\"\nfile = \"{{dir}}/others\"\n\
             [realms.default]\nresolvers = [\"local\"]\n\
             [realms.ext]\nresolvers = [\"people\"]\n\
             [realms.other]\nresolvers = [\"others\"]\n{policy}"
        ),
        files: vec![
            (
                "people".into(),
                format!(
                    "alice:{HASH}:4242:4242::/nonexistent:/bin/false\n\
                     bob:{HASH}:4243:4243::/nonexistent:/bin/false\n"
                ),
            ),
            (
                "others".into(),
                format!("dave:{HASH}:4245:4245::/nonexistent:/bin/false\n"),
            ),
        ],
        ..DaemonOptions::default()
    })
}

fn enroll_into_pool(daemon: &Daemon, key: &str, realm: &str) -> String {
    serial_of(&daemon.enroll(&["hotp", "--otpkey", key, "--pool", realm]))
}

fn pool(daemon: &Daemon, realm: &str) -> Vec<String> {
    let doc = daemon.pictl_json(&["token", "list", "--pool", realm]);
    doc["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["serial"].as_str().unwrap().to_owned())
        .collect()
}

fn serials(tokens: &[Value]) -> Vec<String> {
    tokens
        .iter()
        .map(|t| t["serial"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_user_without_a_token_claims_a_pool_token_with_their_password_and_its_code() {
    let daemon = daemon(AUTOASSIGN);
    let key = test_key("pool-alice", 20);
    let serial = enroll_into_pool(&daemon, &key, "ext");
    let other = enroll_into_pool(&daemon, &test_key("pool-other", 20), "ext");
    // The pool lists by serial.
    let mut both = vec![serial.clone(), other.clone()];
    both.sort();
    assert_eq!(pool(&daemon, "ext"), both);
    let shown = daemon.pictl(&["token", "show", &serial]).text();
    assert!(
        shown
            .lines()
            .any(|l| l.contains("pool") && l.contains("ext")),
        "show names the pool: {shown}"
    );
    let pam = Pam::new(&daemon, "");

    pam.login("alice@ext", &format!("wrong horse{}", hotp(&key, 0, 6)))
        .assert_rejected("the right code with a wrong password claims nothing");
    pam.login("alice@ext", &hotp(&key, 0, 6))
        .assert_rejected("the code alone claims nothing");
    assert_eq!(pool(&daemon, "ext"), both);
    assert!(daemon.tokens(Some("alice@ext")).is_empty());

    pam.login("alice@ext", &format!("{PASSWORD}{}", hotp(&key, 0, 6)))
        .assert_accepted("password and a pool token's code");
    assert_eq!(
        serials(&daemon.tokens(Some("alice@ext"))),
        [serial.as_str()]
    );
    assert_eq!(
        pool(&daemon, "ext"),
        [other.as_str()],
        "the token left the pool"
    );

    pam.login("alice@ext", &format!("{PASSWORD}{}", hotp(&key, 0, 6)))
        .assert_rejected("the claiming code is spent");
    pam.login("alice@ext", &hotp(&key, 1, 6))
        .assert_accepted("from now on the token's own rules: no PIN, the next code");

    let audit = daemon.audit(20);
    let entry = audit
        .iter()
        .find(|e| e["action"] == "autoassign")
        .unwrap_or_else(|| panic!("the claim is audited: {audit:#?}"));
    assert_eq!(entry["user"], "alice");
    assert_eq!(entry["realm"], "ext");
    assert_eq!(entry["serial"], serial.as_str());
    assert_eq!(entry["success"], true);
}

#[test]
fn nobody_claims_without_the_policy_with_a_token_of_their_own_or_from_another_realm() {
    let key = test_key("pool-refused", 20);
    {
        let daemon = daemon("");
        let serial = enroll_into_pool(&daemon, &key, "ext");
        Pam::new(&daemon, "")
            .login("alice@ext", &format!("{PASSWORD}{}", hotp(&key, 0, 6)))
            .assert_rejected("without autoassignment a pool token is nobody's way in");
        assert_eq!(pool(&daemon, "ext"), [serial.as_str()]);
    }
    let daemon = daemon(AUTOASSIGN);
    let serial = enroll_into_pool(&daemon, &key, "ext");
    let pam = Pam::new(&daemon, "");
    let own = test_key("pool-bob-own", 20);
    daemon.enroll(&["hotp", "--user", "bob@ext", "--otpkey", &own]);
    pam.login("bob@ext", &format!("{PASSWORD}{}", hotp(&key, 0, 6)))
        .assert_rejected("a user with a token of their own claims nothing");
    pam.login("dave@other", &format!("{PASSWORD}{}", hotp(&key, 0, 6)))
        .assert_rejected("realm ext's pool is not realm other's");
    assert_eq!(pool(&daemon, "ext"), [serial.as_str()]);
    assert!(daemon.tokens(Some("dave@other")).is_empty());
    pam.login("alice@ext", &format!("{PASSWORD}{}", hotp(&key, 0, 6)))
        .assert_accepted("the code tried by the others is still good for alice");
}

#[test]
fn only_unassigned_tokens_go_into_an_existing_realms_pool() {
    let daemon = daemon("");
    let key = test_key("pool-admin", 20);
    let assigned = daemon.enroll_hotp("bob@ext", &key, None);
    let out = daemon.pictl(&["token", "pool", &assigned, "ext"]);
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(out.stderr.contains("unassign"), "{}", out.describe());

    let free = enroll_into_pool(&daemon, &test_key("pool-free", 20), "ext");
    let out = daemon.pictl(&["token", "pool", &free, "nowhere"]);
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(out.stderr.contains("no realm"), "{}", out.describe());
    assert_eq!(
        pool(&daemon, "ext"),
        [free.as_str()],
        "a refusal changes nothing"
    );

    let out = daemon.pictl(&["token", "pool", &free, "other"]);
    assert!(out.success(), "{}", out.describe());
    assert!(pool(&daemon, "ext").is_empty());
    assert_eq!(pool(&daemon, "other"), [free.as_str()]);
    let out = daemon.pictl(&["token", "pool", &free, "--none"]);
    assert!(out.success(), "{}", out.describe());
    assert!(pool(&daemon, "other").is_empty());

    // Assigning a pool token takes it out of the pool.
    daemon.pictl(&["token", "pool", &free, "ext"]);
    let out = daemon.pictl(&["token", "assign", &free, "--user", "alice@ext"]);
    assert!(out.success(), "{}", out.describe());
    assert!(pool(&daemon, "ext").is_empty());

    let out = daemon.pictl(&[
        "token",
        "enroll",
        "hotp",
        "--user",
        "alice@ext",
        "--pool",
        "ext",
    ]);
    assert_eq!(
        out.code(),
        2,
        "--user and --pool together: {}",
        out.describe()
    );
}

/// A vendor's PSKC file written by python-pskc (plain values): two HOTP keys without a UserId
/// (at counter 5) and one for alice.
fn box_of_keys(daemon: &Daemon, keys: [&str; 3]) -> String {
    let path = daemon.dir().join("box.pskc");
    let script = r#"
import sys
from binascii import a2b_hex
import pskc
path, k1, k2, k3 = sys.argv[1:]
p = pskc.PSKC()
for n, k in ((1, k1), (2, k2)):
    p.add_key(id="box-%d" % n, secret=a2b_hex(k), algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp",
              response_length=6, response_encoding="DECIMAL", counter=5, manufacturer="TokenVendor",
              serial="BOX%d" % n)
p.add_key(id="box-3", secret=a2b_hex(k3), algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp",
          response_length=6, response_encoding="DECIMAL", counter=0, manufacturer="TokenVendor",
          serial="BOX3", key_userid="alice")
p.write(path)
"#;
    let path = path.display().to_string();
    pi_tests::privacyidea::python(script, &[&path, keys[0], keys[1], keys[2]]);
    path
}

#[test]
fn a_pskc_box_imports_its_keys_without_a_user_into_the_pool_once() {
    let daemon = daemon(AUTOASSIGN);
    let keys = ["pskc-box-1", "pskc-box-2", "pskc-box-3"].map(|n| test_key(n, 20));
    let file = box_of_keys(&daemon, [&keys[0], &keys[1], &keys[2]]);
    let import = |extra: &[&str]| {
        let mut args = vec!["import", "pskc", &file, "--realm", "ext"];
        args.extend_from_slice(extra);
        daemon.pictl(&args)
    };

    let refused = import(&[]);
    assert!(!refused.success(), "{}", refused.describe());
    assert!(refused.stderr.contains("--pool"), "{}", refused.describe());

    let dry = import(&["--pool", "ext", "--dry-run"]);
    assert!(dry.success(), "{}", dry.describe());
    assert!(
        dry.stdout
            .contains("1 token(s) for 1 user(s) and 2 into the pool of realm ext"),
        "{}",
        dry.describe()
    );
    assert!(pool(&daemon, "ext").is_empty(), "a dry run changes nothing");

    let out = import(&["--pool", "ext"]);
    assert!(out.success(), "{}", out.describe());
    assert!(out.stdout.contains("3 imported"), "{}", out.describe());
    assert_eq!(pool(&daemon, "ext").len(), 2);
    assert_eq!(
        daemon.tokens(Some("alice@ext")).len(),
        1,
        "alice's key is hers"
    );

    let again = import(&["--pool", "ext"]);
    assert!(again.success(), "{}", again.describe());
    assert!(
        again.stdout.contains("0 imported, 3 already present"),
        "a second run adds no duplicate to the pool: {}",
        again.describe()
    );
    assert_eq!(pool(&daemon, "ext").len(), 2);

    let pam = Pam::new(&daemon, "");
    pam.login("bob@ext", &format!("{PASSWORD}{}", hotp(&keys[1], 4, 6)))
        .assert_rejected("below the file's counter 5");
    pam.login("bob@ext", &format!("{PASSWORD}{}", hotp(&keys[1], 5, 6)))
        .assert_accepted("the box's second key at the file's counter");
    assert_eq!(pool(&daemon, "ext").len(), 1);
    let bobs = daemon.tokens(Some("bob@ext"));
    assert_eq!(bobs.len(), 1);
    assert!(
        bobs[0]["description"]
            .as_str()
            .unwrap()
            .contains("TokenVendor BOX2"),
        "{bobs:?}"
    );
}

#[test]
fn an_administrator_manages_pools_only_where_an_admin_policy_allows_tokenrealms() {
    // nobody's primary group makes it an administrator.
    let top = "admin_group = \"nogroup\"";
    let policy = |actions: &str| {
        format!(
            "[[policy]]\nname = \"helpdesk\"\nscope = \"admin\"\nrealm = [\"ext\"]\n\
             actions = {{ {actions} }}\n"
        )
    };
    let daemon = daemon_with(top, &policy("tokenlist = true, enroll = \"hotp\""));
    let serial = daemon.enroll_hotp("bob@ext", &test_key("pool-policy", 20), None);
    daemon.pictl(&["token", "unassign", &serial]);
    let refused = daemon.pictl_as(Caller::Nobody, &["token", "pool", &serial, "ext"], "");
    assert_eq!(refused.code(), 1, "{}", refused.describe());
    assert!(
        refused.stderr.contains("tokenrealms") && refused.stderr.contains("in realm ext"),
        "the refusal names the action and the pool: {}",
        refused.describe()
    );
    assert!(pool(&daemon, "ext").is_empty());

    let daemon = daemon_with(top, &policy("tokenrealms = true"));
    let in_ext = enroll_into_pool(&daemon, &test_key("pool-policy-2", 20), "ext");
    let in_other = enroll_into_pool(&daemon, &test_key("pool-policy-3", 20), "other");
    let nobody = |args: &[&str]| daemon.pictl_as(Caller::Nobody, args, "");
    let listed = nobody(&["--json", "token", "list", "--pool", "ext"]);
    assert!(listed.success(), "{}", listed.describe());
    assert!(listed.stdout.contains(&in_ext), "{}", listed.describe());
    for args in [
        &["token", "list", "--pool", "other"][..],
        &["token", "pool", &in_other, "ext"],
        &["token", "pool", &in_other, "--none"],
    ] {
        let out = nobody(args);
        assert_eq!(
            out.code(),
            1,
            "only realm ext's pool: {args:?} {}",
            out.describe()
        );
    }
    assert_eq!(pool(&daemon, "other"), [in_other.as_str()]);
    let out = nobody(&["token", "pool", &in_ext, "--none"]);
    assert!(out.success(), "{}", out.describe());
    assert!(pool(&daemon, "ext").is_empty());
}

#[test]
fn with_any_pin_what_is_typed_before_the_code_becomes_the_pin_within_the_pin_rules() {
    // The PIN rules of the realm's users (a pool token is enrolled for nobody, without one).
    let policy = "[[policy]]\nname = \"hand-out\"\nscope = \"enrollment\"\nrealm = [\"ext\"]\n\
                  actions = { autoassignment = \"any_pin\", otp_pin_minlength = 4 }\n";
    let daemon = daemon(policy);
    let key = test_key("pool-any-pin", 20);
    let serial = enroll_into_pool(&daemon, &key, "ext");
    let pam = Pam::new(&daemon, "");
    pam.login("alice@ext", &format!("123{}", hotp(&key, 0, 6)))
        .assert_rejected("a PIN shorter than the PIN rules allow");
    assert_eq!(pool(&daemon, "ext"), [serial.as_str()]);
    pam.login("alice@ext", &format!("4711{}", hotp(&key, 0, 6)))
        .assert_accepted("a PIN the rules allow and the code");
    assert_eq!(
        serials(&daemon.tokens(Some("alice@ext"))),
        [serial.as_str()]
    );
    pam.login("alice@ext", &hotp(&key, 1, 6))
        .assert_rejected("the token has the PIN now");
    pam.login("alice@ext", &format!("4711{}", hotp(&key, 2, 6)))
        .assert_accepted("the PIN chosen at the claim and the next code");
}
