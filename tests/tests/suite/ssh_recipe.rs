#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! README's "SSH: public key *and* a one-time password" recipe, against a real sshd on
//! 127.0.0.1 that starts from Debian 12's shipped `sshd_config`, with pam_pi as the only `auth`
//! module (`/etc/pam.d/sshd` with `common-auth` commented out). The login is nobody (whose
//! shell is nologin): the suite creates no accounts, and root is kept out of password logins by
//! Debian's `PermitRootLogin prohibit-password` anyway — the hole below is every other user's.
//!
//! Why the recipe sets sshd_config first: with Debian's defaults sshd's *password*
//! authentication also runs the PAM stack and hands it the password as the answer to every
//! prompt, so once pam_pi replaces `common-auth`, a one-time password alone logs in.

use pi_tests::sshd::{attach_ssh, enroll_sshkey, Sshd, DEBIAN_DEFAULT_CONFIG};
use pi_tests::{hotp, test_key, Daemon, NOBODY};

/// The recipe's `/etc/ssh/sshd_config.d/pi.conf`. Debian's `sshd_config` includes that
/// directory before its own lines and sshd keeps the first value of each keyword, so these
/// lines come first and override `KbdInteractiveAuthentication no` further down.
const RECIPE: &str = "PasswordAuthentication no\n\
                      KbdInteractiveAuthentication yes\n\
                      AuthenticationMethods publickey,keyboard-interactive\n\
                      UsePAM yes\n";

/// Keys from `pictl ssh keys` only, as README recommends.
const KEYS_FROM_PI: &str = "AuthorizedKeysFile none\n\
                            AuthorizedKeysCommand {keys_command} %u\n\
                            AuthorizedKeysCommandUser nobody\n";

/// Keys from `pictl ssh keys` and, as sshd does by default, from the login's own
/// `~/.ssh/authorized_keys`. nobody's home does not exist, so a root-owned file stands in for it.
const KEYS_FROM_PI_AND_FILE: &str = "AuthorizedKeysFile {keys_dir}/%u.authorized_keys\n\
                                     AuthorizedKeysCommand {keys_command} %u\n\
                                     AuthorizedKeysCommandUser nobody\n";

/// An HOTP token of nobody; codes from `oathtool`.
struct Codes {
    key: String,
    next: u64,
}

impl Codes {
    fn enroll(daemon: &Daemon, name: &str) -> Codes {
        let key = test_key(name, 20);
        daemon.enroll_hotp(NOBODY, &key, None);
        Codes { key, next: 0 }
    }

    /// The next unused code (the caller uses it up, or shows it was not used).
    fn fresh(&mut self) -> String {
        self.next += 1;
        hotp(&self.key, self.next - 1, 6)
    }
}

#[test]
fn the_old_recipe_lets_a_one_time_password_alone_in_by_password_authentication() {
    let daemon = Daemon::start();
    let mut codes = Codes::enroll(&daemon, "ssh-old-recipe");
    // Debian's sshd_config untouched, only the PAM file changed.
    let sshd = Sshd::start_with_config(&daemon, DEBIAN_DEFAULT_CONFIG);

    let wrong = sshd.login_with(None, NOBODY, Some("not-a-code"), &[]);
    wrong.assert_denied("a wrong code: the password method does ask pam_pi");

    let code = codes.fresh();
    let login = sshd.login_with(None, NOBODY, Some(&code), &[]);
    login.assert_authenticated(
        NOBODY,
        "password",
        "no key at all, the one-time password typed as the password: the hole the recipe closes",
    );
}

#[test]
fn the_recipe_refuses_a_one_time_password_or_a_password_alone_and_takes_key_and_code() {
    let daemon = Daemon::start();
    let mut codes = Codes::enroll(&daemon, "ssh-new-recipe");
    let sshd = Sshd::start_with_config(
        &daemon,
        &format!("{RECIPE}{KEYS_FROM_PI}{DEBIAN_DEFAULT_CONFIG}"),
    );
    let key = sshd.user_key("nobody-key");
    attach_ssh(&daemon, &enroll_sshkey(&daemon, NOBODY, &key), NOBODY);

    // One fresh code for every attempt: refused attempts must not be refused for the code.
    let code = codes.fresh();
    for (method, what) in [
        ("password", "a password alone (here the valid code)"),
        ("keyboard-interactive", "the valid code alone"),
    ] {
        let preferred = format!("PreferredAuthentications={method}");
        let refused = sshd.login_with(None, NOBODY, Some(&code), &[&preferred]);
        refused.assert_denied(what);
        assert!(
            refused.prompts.is_empty(),
            "{what}: sshd must refuse before PAM asks anything\n{}",
            refused.describe()
        );
    }
    sshd.login(&key, NOBODY, None)
        .assert_denied("the key alone: the code is required too");

    let login = sshd.login(&key, NOBODY, Some(&code));
    login.assert_authenticated(
        NOBODY,
        "keyboard-interactive/pam",
        "the attached key and the same code, unused by the refused attempts",
    );
    assert!(
        login.sshd_log.contains("Partial publickey for nobody"),
        "the key was the first factor\n{}",
        login.describe()
    );
}

#[test]
fn a_disabled_sshkey_token_logs_in_through_authorized_keys_unless_the_file_is_none() {
    let daemon = Daemon::start();
    let mut codes = Codes::enroll(&daemon, "ssh-authorized-keys-file");
    let with_file = Sshd::start_with_config(
        &daemon,
        &format!("{RECIPE}{KEYS_FROM_PI_AND_FILE}{DEBIAN_DEFAULT_CONFIG}"),
    );
    let pi_only = Sshd::start_with_config(
        &daemon,
        &format!("{RECIPE}{KEYS_FROM_PI}{DEBIAN_DEFAULT_CONFIG}"),
    );
    let key = with_file.user_key("nobody-key");
    let serial = enroll_sshkey(&daemon, NOBODY, &key);
    attach_ssh(&daemon, &serial, NOBODY);
    // The same key in the login's own authorized_keys file, as it was before pi managed keys.
    let file = with_file
        .keys_command()
        .dir()
        .join(format!("{NOBODY}.authorized_keys"));
    std::fs::write(&file, format!("{}\n", key.line())).expect("write authorized_keys");
    let out = daemon.pictl(&["token", "disable", &serial]);
    assert!(out.success(), "{}", out.describe());

    let code = codes.fresh();
    let refused = pi_only.login(&key, NOBODY, Some(&code));
    refused.assert_denied("AuthorizedKeysFile none: the disabled token's key is not offered");
    assert!(
        refused.prompts.is_empty(),
        "the key must be refused before PAM asks for the code\n{}",
        refused.describe()
    );

    with_file
        .login(&key, NOBODY, Some(&code))
        .assert_authenticated(
            NOBODY,
            "keyboard-interactive/pam",
            "without AuthorizedKeysFile none, the file lets the disabled token's key in",
        );

    let out = daemon.pictl(&["token", "enable", &serial]);
    assert!(out.success(), "{}", out.describe());
    pi_only
        .login(&key, NOBODY, Some(&codes.fresh()))
        .assert_authenticated(
            NOBODY,
            "keyboard-interactive/pam",
            "the same key once its token is enabled: the refusal was the disabled token",
        );
}
