#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! The user store's password (`otppin = "userstore"`, `passthru`): a flatfile user's crypt hash,
//! a host account's password through the daemon's PAM service (`pi-userstore`, here backed by
//! pam_wrapper's `pam_matrix.so`), and the two guards that keep that PAM service from asking pi
//! again (refused at start; pam_pi refusing to run inside the daemon).

use pi_tests::pam::pam_wrapper_module;
use pi_tests::{bins, hotp, test_key, Daemon, DaemonOptions, Pam};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tempfile::TempDir;

/// `mkpasswd -m sha-512 'correct horse'` (libxcrypt, package whois).
const ALICE_HASH: &str = "$6$7dgbfJA9hRpxrK3E$64uu0wgxiqTvHFeiecOjI6rHHOt0GGBekCCSKw.VV676sFo8AuVISYWbcegfVF2BlSMIy3q.gtwivWHh/J7e71";
const ALICE_PASSWORD: &str = "correct horse";
/// root's password in the pam_matrix database of the `pi-userstore` service.
const ROOT_PASSWORD: &str = "matrix-pw";
const SERVICE: &str = "pi-userstore";

const OTPPIN_USERSTORE: &str = "[[policy]]\nname = \"store-pin\"\nscope = \"authentication\"\n\
                                actions = { otppin = \"userstore\" }\n";
const PASSTHRU: &str =
    "[[policy]]\nname = \"store-pass\"\nscope = \"authentication\"\nactions = { passthru = true }\n";

/// A private PAM service directory for the daemon: `pi-userstore` authenticates against a
/// pam_matrix database in which root's password is `ROOT_PASSWORD`.
struct ServiceDir {
    dir: TempDir,
}

impl ServiceDir {
    fn new() -> ServiceDir {
        let dir = tempfile::Builder::new()
            .prefix("pi-test-userstore-")
            .tempdir()
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(
            dir.path().join("passdb"),
            format!("root:{ROOT_PASSWORD}:{SERVICE}\n"),
        )
        .unwrap();
        ServiceDir { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The pam_matrix stack: password check and account check against the database.
    fn matrix_stack(&self) -> String {
        let matrix = pam_wrapper_module("pam_matrix.so");
        let passdb = self.path().join("passdb");
        format!(
            "auth required {m} passdb={p}\naccount required {m} passdb={p}\n",
            m = matrix.display(),
            p = passdb.display()
        )
    }

    fn write(&self, name: &str, text: &str) {
        fs::write(self.path().join(name), text).unwrap();
    }

    /// The daemon's environment: libpam under pam_wrapper, services from this directory.
    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("LD_PRELOAD".into(), "libpam_wrapper.so".into()),
            ("PAM_WRAPPER".into(), "1".into()),
            (
                "PAM_WRAPPER_SERVICE_DIR".into(),
                self.path().display().to_string(),
            ),
        ]
    }
}

/// Host accounts in the default realm (checked through `pi-userstore`), flatfile users in `ext`.
fn options(services: &ServiceDir, policy: &str) -> DaemonOptions {
    DaemonOptions {
        extra_toml: format!(
            "[resolvers.local]\ntype = \"passwd\"\n\
             [resolvers.people]\ntype = \"flatfile\"\nfile = \"{{dir}}/people\"\n\
             [realms.default]\nresolvers = [\"local\"]\n\
             [realms.ext]\nresolvers = [\"people\"]\n{policy}"
        ),
        files: vec![(
            "people".into(),
            format!(
                "alice:{ALICE_HASH}:4242:4242::/nonexistent:/bin/false\n\
                 bob:{ALICE_HASH}:4243:4243::/nonexistent:/bin/false\n\
                 carol:!:4244:4244::/nonexistent:/bin/false\n"
            ),
        )],
        env: services.env(),
    }
}

fn start(policy: &str) -> (ServiceDir, Daemon) {
    let services = ServiceDir::new();
    services.write(SERVICE, &services.matrix_stack());
    let daemon = Daemon::start_with(options(&services, policy));
    (services, daemon)
}

#[test]
fn flatfile_user_logs_in_with_the_files_password_and_an_otp() {
    let (_services, daemon) = start(OTPPIN_USERSTORE);
    let key = test_key("userstore-alice", 20);
    daemon.enroll(&["hotp", "--user", "alice@ext", "--otpkey", &key]);
    let pam = Pam::new(&daemon, "");

    pam.login(
        "alice@ext",
        &format!("{ALICE_PASSWORD}{}", hotp(&key, 0, 6)),
    )
    .assert_accepted("the crypt hash's password and the OTP");
    pam.login("alice@ext", &format!("wrong horse{}", hotp(&key, 1, 6)))
        .assert_rejected("wrong password, right OTP");
    pam.login("alice@ext", &hotp(&key, 2, 6))
        .assert_rejected("no password at all: an empty password never passes");
    pam.login(
        "alice@ext",
        &format!("{ALICE_PASSWORD}{}", hotp(&key, 3, 6)),
    )
    .assert_accepted("the right password again");
}

#[test]
fn host_account_logs_in_with_the_pam_service_password_and_an_otp() {
    let (_services, daemon) = start(OTPPIN_USERSTORE);
    let key = test_key("userstore-root", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");

    pam.login("root", &format!("{ROOT_PASSWORD}{}", hotp(&key, 0, 6)))
        .assert_accepted("pam_matrix's password and the OTP");
    pam.login("root", &format!("not-the-pw{}", hotp(&key, 1, 6)))
        .assert_rejected("wrong password, right OTP");
    pam.login("root", &format!("{ROOT_PASSWORD}{}", hotp(&key, 2, 6)))
        .assert_accepted("the right password again");
}

#[test]
fn passthru_accepts_the_store_password_of_a_user_without_a_token() {
    let (_services, daemon) = start(PASSTHRU);
    let pam = Pam::new(&daemon, "");

    pam.login("bob@ext", ALICE_PASSWORD)
        .assert_accepted("flatfile password, no token");
    pam.login("bob@ext", "wrong horse")
        .assert_rejected("wrong flatfile password");
    pam.login("carol@ext", "!")
        .assert_rejected("a locked hash (`!`) matches nothing");
    pam.login("root", ROOT_PASSWORD)
        .assert_accepted("PAM service password, no token");
    pam.login("root", "not-the-pw")
        .assert_rejected("wrong PAM service password");
}

#[test]
fn a_userstore_service_that_loads_pam_pi_is_refused_at_start() {
    let services = ServiceDir::new();
    services.write(
        "common-pi",
        &format!(
            "auth required {} socket=/nonexistent/pid.sock\n",
            bins::pam_pi().display()
        ),
    );
    services.write(
        SERVICE,
        &format!("{}auth include common-pi\n", services.matrix_stack()),
    );
    let refused = match Daemon::try_start_with(options(&services, OTPPIN_USERSTORE)) {
        Ok(mut daemon) => {
            let log = daemon.log();
            daemon.stop();
            panic!("pid started with a pi-userstore service that loads pam_pi\n{log}");
        }
        Err((status, log)) => {
            assert!(!status.success(), "{status}\n{log}");
            log
        }
    };
    assert!(
        refused.contains("would ask pi for a second factor while pi checks the password")
            && refused.contains("common-pi")
            && refused.contains("pam_unix.so"),
        "the refusal names the problem, the file and the fix:\n{refused}"
    );
}

/// The service passes the start-up check, then is changed to load pam_pi (libpam reads an
/// included file at every pam_start; an absolute include path is read in place, not from
/// pam_wrapper's copy of the service directory). pam_pi, now loaded inside the daemon, must
/// refuse without talking to it, and the login must fail instead of recursing.
#[test]
fn pam_pi_loaded_inside_the_daemon_fails_the_login_instead_of_recursing() {
    let services = ServiceDir::new();
    let stacks = tempfile::tempdir().unwrap();
    let stack = stacks.path().join("stack");
    fs::write(&stack, services.matrix_stack()).unwrap();
    services.write(
        SERVICE,
        &format!(
            "auth include {s}\naccount include {s}\n",
            s = stack.display()
        ),
    );
    let daemon = Daemon::start_with(options(&services, OTPPIN_USERSTORE));
    let key = test_key("userstore-recursion", 20);
    daemon.enroll_hotp("root", &key, None);
    let pam = Pam::new(&daemon, "");
    pam.login("root", &format!("{ROOT_PASSWORD}{}", hotp(&key, 0, 6)))
        .assert_accepted("before the change, the service checks the password");

    fs::write(
        &stack,
        format!(
            "auth required {} socket={}\naccount required pam_permit.so\n",
            bins::pam_pi().display(),
            daemon.socket().display()
        ),
    )
    .unwrap();
    pam.login("root", &format!("{ROOT_PASSWORD}{}", hotp(&key, 1, 6)))
        .assert_rejected("pam_pi inside the daemon answers no");

    let log = daemon.log();
    assert!(
        log.contains("pam_pi loaded by the PAM service pid uses for password checks"),
        "pam_pi logs why it refused (pam_wrapper sends pam_syslog to stderr):\n{log}"
    );
    let entries = daemon.audit(50);
    assert!(
        !entries.iter().any(|e| e["service"] == SERVICE),
        "pam_pi inside the daemon sent a request (the daemon audited a login of service \
         {SERVICE}): {entries:#?}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["service"] == pam.service() && e["success"] == false),
        "the outer login is audited as failed: {entries:#?}"
    );
}
