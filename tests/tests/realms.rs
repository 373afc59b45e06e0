//! Realms: users who are not accounts of this host (a passwd-format file) log in as `login@realm`
//! through the same PAM stack; a realm never leaks into another.

use pi_tests::pam::PAM_USER_UNKNOWN;
use pi_tests::{hotp, test_key, Daemon, DaemonOptions, Pam};

/// A daemon whose default realm is the host's accounts and whose realm `ext` is a passwd-format
/// file holding `alice` (uid 4242, not an account of this host).
fn daemon_with_file_realm() -> Daemon {
    Daemon::start_with(DaemonOptions {
        extra_toml: "[resolvers.local]\ntype = \"passwd\"\n\
                     [resolvers.people]\ntype = \"flatfile\"\nfile = \"{dir}/people\"\n\
                     [realms.default]\nresolvers = [\"local\"]\n\
                     [realms.ext]\nresolvers = [\"people\"]\n"
            .into(),
        files: vec![(
            "people".into(),
            "alice:x:4242:4242::/nonexistent:/bin/false\n".into(),
        )],
        ..Default::default()
    })
}

#[test]
fn user_of_a_file_realm_logs_in_as_login_at_realm() {
    let daemon = daemon_with_file_realm();
    let key = test_key("realm-alice", 20);
    let doc = daemon.enroll(&["hotp", "--user", "alice@ext", "--otpkey", &key]);
    assert_eq!(doc["token"]["realm"], "ext", "{doc}");
    let listed = daemon.tokens(Some("alice@ext"));
    assert_eq!(listed.len(), 1, "{listed:?}");
    let pam = Pam::new(&daemon, "");

    assert_eq!(
        pam.return_code("alice", &[&hotp(&key, 0, 6)]),
        PAM_USER_UNKNOWN,
        "alice is not in the default realm (the host's accounts)"
    );
    pam.login("alice@ext", &hotp(&key, 0, 6))
        .assert_accepted("alice in her realm");
    pam.login("alice@ext", &hotp(&key, 0, 6))
        .assert_rejected("replay");
}

#[test]
fn enrolling_into_an_unknown_realm_is_refused() {
    let daemon = daemon_with_file_realm();
    let out = daemon.pictl(&["token", "enroll", "hotp", "--user", "alice@nowhere"]);
    assert_eq!(out.code(), 1, "{}", out.describe());
    assert!(
        out.stderr.to_lowercase().contains("realm"),
        "the error should say the realm is unknown\n{}",
        out.describe()
    );
    assert!(daemon.tokens(None).is_empty());
}
