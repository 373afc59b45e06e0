//! SIGHUP re-reads pid.toml: a good file takes effect without dropping a login, a bad one is
//! refused with the reason in the log and the running configuration stays in force.

use pi_tests::{hotp, test_key, Daemon, DaemonOptions, Pam};

fn daemon_with_file_realm() -> Daemon {
    Daemon::start_with(DaemonOptions {
        extra_toml: "[resolvers.local]\ntype = \"passwd\"\n\
                     [resolvers.people]\ntype = \"flatfile\"\nfile = \"{dir}/people\"\n\
                     [realms.default]\nresolvers = [\"local\"]\n\
                     [realms.ext]\nresolvers = [\"people\"]\n"
            .into(),
        files: vec![
            (
                "people".into(),
                "alice:x:4242:4242::/nonexistent:/bin/false\n".into(),
            ),
            (
                "ops".into(),
                "bob:x:4343:4343::/nonexistent:/bin/false\n".into(),
            ),
        ],
        ..Default::default()
    })
}

#[test]
fn bad_config_on_sighup_is_refused_and_the_running_one_stays() {
    let mut daemon = daemon_with_file_realm();
    let good = daemon.config_text();
    assert!(
        !daemon.reload_config(&format!("{good}\nbogus_key = 1\n")),
        "refused"
    );
    assert!(
        daemon.log().contains("bogus_key"),
        "the log names the key:\n{}",
        daemon.log()
    );
    daemon.assert_serving();
    // The realm of the running configuration still works.
    let key = test_key("reload-alice", 20);
    daemon.enroll(&["hotp", "--user", "alice@ext", "--otpkey", &key]);
    Pam::new(&daemon, "")
        .login("alice@ext", &hotp(&key, 0, 6))
        .assert_accepted("running configuration kept");
}

#[test]
fn good_config_on_sighup_adds_a_realm_without_a_restart() {
    let mut daemon = daemon_with_file_realm();
    let refused = daemon.pictl(&["token", "enroll", "hotp", "--user", "bob@ops"]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "no realm ops yet: {refused:?}"
    );
    let ops = format!(
        "{}\n[resolvers.opsfile]\ntype = \"flatfile\"\nfile = \"{}/ops\"\n\
         [realms.ops]\nresolvers = [\"opsfile\"]\n",
        daemon.config_text(),
        daemon.dir().display()
    );
    assert!(daemon.reload_config(&ops), "taken");
    daemon.assert_serving();
    let key = test_key("reload-bob", 20);
    daemon.enroll(&["hotp", "--user", "bob@ops", "--otpkey", &key]);
    Pam::new(&daemon, "")
        .login("bob@ops", &hotp(&key, 0, 6))
        .assert_accepted("user of the realm added by the reload");
}
