//! Password checks for `passwd` users (host accounts) through a PAM service of the
//! administrator's choosing (`pam_service`, default `pi-userstore`): `pam_authenticate`, then
//! `pam_acct_mgmt`, with a conversation that answers only the password.
//!
//! Threats and invariants:
//! - Recursion: if that service loads `pam_pi.so`, checking a password would ask pi for a second
//!   factor, whose check asks PAM again... `inspect_service_file` refuses such a service when the
//!   resolver is built, and `pam_pi` refuses to talk to the daemon it is loaded into (it compares
//!   the socket's SO_PEERCRED pid with its own), so a file edited after start fails closed too.
//! - Unexpected questions: a module that asks anything but the password (an echo-on prompt
//!   other than the user name) gets no answer, and the check is an error the operator sees,
//!   never a silent "wrong password".
//! - An empty password is never checked (`PAM_DISALLOW_NULL_AUTHTOK` as well: a host account
//!   without a password must not pass as "password correct").
//! - The password: borrowed from the caller's `Secret` (zeroised on drop) for the whole call.
//!   pam-client's conversation API takes each answer as a `CString`, copies it for libpam and
//!   frees ours without clearing it: that one heap copy per prompt is outside our control.
//!   libpam clears its own copies (`PAM_AUTHTOK`) in `pam_end`.

use crate::error::PidError;
use pam_client::{Context, ConversationHandler, ErrorCode, Flag};
use protocol::Secret;
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};

/// Where libpam reads service files.
pub const PAM_DIR: &str = "/etc/pam.d";
/// Linux-PAM's own limit on nested `include`/`substack` (PAM_SUBSTACK_MAX_LEVEL).
const MAX_INCLUDE_DEPTH: usize = 16;
/// File names of the pi PAM module: as installed, and as cargo builds it (the test suite).
const PAM_PI_FILES: [&str; 2] = ["pam_pi.so", "libpam_pi.so"];
/// Informational messages a service may send during one check that are kept for the log.
const MAX_MESSAGES: usize = 8;
const MAX_MESSAGE_LEN: usize = 200;

/// Whether `password` is `login`'s password according to PAM service `service`. `Ok(false)`
/// for a wrong password, an unknown, locked or expired account; `Err(UserStore)` when the
/// service cannot answer (broken stack, module unavailable, a question pi cannot answer).
/// Blocking (modules may sleep on failure, talk to LDAP ...): call off the executor.
pub fn check_password(service: &str, login: &str, password: &Secret) -> Result<bool, PidError> {
    if password.is_empty() {
        return Ok(false);
    }
    let answer = Answer {
        login,
        password,
        refused: None,
        messages: Vec::new(),
    };
    let mut pam =
        Context::new(service, Some(login), answer).map_err(|error| PamFailure::Start {
            service: service.to_owned(),
            error,
        })?;
    let result = pam
        .authenticate(Flag::SILENT | Flag::DISALLOW_NULL_AUTHTOK)
        .and_then(|()| pam.acct_mgmt(Flag::SILENT | Flag::DISALLOW_NULL_AUTHTOK));
    let answer = pam.conversation();
    for message in &answer.messages {
        tracing::debug!("PAM service {service:?} told user {login:?}: {message}");
    }
    if let Some(prompt) = &answer.refused {
        return Err(PamFailure::Question {
            service: service.to_owned(),
            login: login.to_owned(),
            prompt: prompt.clone(),
        }
        .into());
    }
    let code = match result {
        Ok(()) => return Ok(true),
        Err(e) => e.code(),
    };
    match verdict(code) {
        Some(false) => {
            tracing::debug!(
                "PAM service {service:?} refused the password of {login:?} (PAM_{code:?})"
            );
            Ok(false)
        }
        _ => Err(PamFailure::Unanswered {
            service: service.to_owned(),
            login: login.to_owned(),
            code,
        }
        .into()),
    }
}

/// Why a PAM service could not check a password. The PAM error is part of the sentence, before
/// what to check, so it is not a source as well.
#[derive(Debug, thiserror::Error)]
pub enum PamFailure {
    #[error(
        "PAM service {service:?}: pam_start failed ({error}, PAM_{:?}); check that libpam is \
         installed and {} is readable",
        error.code(),
        service_path(service).display()
    )]
    Start {
        service: String,
        error: pam_client::Error,
    },
    /// The service asked something other than the password, which pi does not answer.
    #[error(
        "PAM service {service:?} asked {prompt:?} while checking the password of {login:?}; pi \
         answers only the password: remove the module that asks this from {}",
        service_path(service).display()
    )]
    Question {
        service: String,
        login: String,
        prompt: String,
    },
    /// The service failed in a way that says nothing about the password.
    #[error(
        "PAM service {service:?} could not check the password of {login:?} (PAM_{code:?}); check \
         the modules in {} and the system log",
        service_path(service).display()
    )]
    Unanswered {
        service: String,
        login: String,
        code: ErrorCode,
    },
}

/// `Some(false)`: the service answered "not this password / not this account". `None`: it
/// could not answer, which must fail closed as an error rather than look like a typo.
fn verdict(code: ErrorCode) -> Option<bool> {
    match code {
        ErrorCode::AUTH_ERR
        | ErrorCode::USER_UNKNOWN
        | ErrorCode::MAXTRIES
        | ErrorCode::PERM_DENIED
        | ErrorCode::ACCT_EXPIRED
        | ErrorCode::NEW_AUTHTOK_REQD
        | ErrorCode::AUTHTOK_EXPIRED
        | ErrorCode::CRED_EXPIRED => Some(false),
        _ => None,
    }
}

/// The conversation: the password to every hidden prompt, the login to a visible prompt that
/// asks for the user name, nothing to anything else.
struct Answer<'a> {
    login: &'a str,
    password: &'a Secret,
    /// The first visible prompt that was not refused an answer, for the operator.
    refused: Option<String>,
    messages: Vec<String>,
}

impl Answer<'_> {
    fn note(&mut self, kind: &str, msg: &CStr) {
        if self.messages.len() < MAX_MESSAGES {
            let mut text = format!("{kind}: {}", msg.to_string_lossy());
            if text.len() > MAX_MESSAGE_LEN {
                let mut end = MAX_MESSAGE_LEN;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
            }
            self.messages.push(text);
        }
    }
}

/// Whether a visible prompt asks for the user name (`pam_get_user`'s "login: ", "Username: ").
/// pam_start already set the user, so well-behaved modules never ask.
fn asks_for_user_name(prompt: &str) -> bool {
    let p = prompt.to_lowercase();
    (p.contains("login") || p.contains("user")) && !p.contains("password")
}

impl ConversationHandler for Answer<'_> {
    fn prompt_echo_on(&mut self, prompt: &CStr) -> Result<CString, ErrorCode> {
        let text = prompt.to_string_lossy();
        if asks_for_user_name(&text) {
            return CString::new(self.login).map_err(|_| ErrorCode::CONV_ERR);
        }
        if self.refused.is_none() {
            self.refused = Some(text.chars().take(MAX_MESSAGE_LEN).collect());
        }
        Err(ErrorCode::CONV_ERR)
    }

    fn prompt_echo_off(&mut self, _prompt: &CStr) -> Result<CString, ErrorCode> {
        // A NUL cannot be passed through C; such a password cannot be anybody's.
        CString::new(self.password.expose()).map_err(|_| ErrorCode::CONV_ERR)
    }

    fn text_info(&mut self, msg: &CStr) {
        self.note("info", msg);
    }

    fn error_msg(&mut self, msg: &CStr) {
        self.note("error", msg);
    }

    fn radio_prompt(&mut self, prompt: &CStr) -> Result<bool, ErrorCode> {
        if self.refused.is_none() {
            self.refused = Some(
                prompt
                    .to_string_lossy()
                    .chars()
                    .take(MAX_MESSAGE_LEN)
                    .collect(),
            );
        }
        Err(ErrorCode::CONV_ERR)
    }
}

/// The directory libpam reads services from: `/etc/pam.d`, or pam_wrapper's private directory
/// when the daemon runs under pam_wrapper (the test suite), which reads it only with
/// `PAM_WRAPPER=1`.
fn service_dir() -> PathBuf {
    let wrapped = std::env::var_os("PAM_WRAPPER").is_some_and(|v| v == "1");
    match std::env::var_os("PAM_WRAPPER_SERVICE_DIR") {
        Some(dir) if wrapped && !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(PAM_DIR),
    }
}

fn service_path(service: &str) -> PathBuf {
    service_dir().join(service)
}

/// What is wrong with a service file for password checks.
#[derive(Debug, thiserror::Error)]
pub enum ServiceProblem {
    /// No such file: libpam would use the `other` service instead.
    #[error("{0}")]
    Missing(String),
    /// The stack loads pam_pi: checking a password would recurse into pi.
    #[error("{0}")]
    LoadsPamPi(String),
    /// Unreadable, or includes nested too deep.
    #[error("{0}")]
    Broken(String),
}

/// Refuse a service whose `auth` or `account` stack loads `pam_pi.so`, following `@include`,
/// `include` and `substack` lines; a missing service file is a problem too. The kind of problem
/// says whether the service may still be used.
pub fn inspect_service_file(service: &str) -> Result<(), ServiceProblem> {
    inspect_in(&service_dir(), service)
}

fn inspect_in(dir: &Path, service: &str) -> Result<(), ServiceProblem> {
    let path = dir.join(service);
    if !path.exists() {
        return Err(ServiceProblem::Missing(format!(
            "PAM service file {} does not exist, so user store password checks of host \
             accounts would run PAM's `other` service; create it with the lines \
             `auth required pam_unix.so` and `account required pam_unix.so`",
            path.display()
        )));
    }
    let mut walk = Walk {
        dir,
        service,
        chain: Vec::new(),
    };
    walk.file(&path, None)
}

/// The PAM module types `check_password` runs.
const CHECKED_TYPES: [&str; 2] = ["auth", "account"];

struct Walk<'a> {
    dir: &'a Path,
    service: &'a str,
    /// Files being read, outermost first (for messages and the depth bound).
    chain: Vec<PathBuf>,
}

impl Walk<'_> {
    /// Read one file; `only` restricts it to one module type (a `TYPE include FILE` line
    /// includes only FILE's lines of TYPE; `@include` includes all of it).
    fn file(&mut self, path: &Path, only: Option<&str>) -> Result<(), ServiceProblem> {
        if self.chain.len() >= MAX_INCLUDE_DEPTH {
            return Err(ServiceProblem::Broken(format!(
                "PAM service {:?}: includes nest deeper than {MAX_INCLUDE_DEPTH} levels at {} \
                 (an include loop?); fix the include lines",
                self.service,
                path.display()
            )));
        }
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            // libpam fails that line; a file that is not there loads no module.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !self.chain.is_empty() => {
                return Ok(())
            }
            Err(e) => {
                return Err(ServiceProblem::Broken(format!(
                    "cannot read PAM service file {}: {e}; make it readable by root",
                    path.display()
                )))
            }
        };
        self.chain.push(path.to_path_buf());
        // Linux-PAM joins a line ending in a backslash with the next one.
        let text = text.replace("\\\n", " ");
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default();
            let tokens = tokens(line);
            let Some(first) = tokens.first() else {
                continue;
            };
            if first == "@include" {
                if let Some(name) = tokens.get(1) {
                    let target = self.resolve(name);
                    self.file(&target, only)?;
                }
                continue;
            }
            let kind = first.trim_start_matches('-').to_ascii_lowercase();
            if only.is_some_and(|o| o != kind) || !CHECKED_TYPES.contains(&kind.as_str()) {
                continue;
            }
            let (Some(control), Some(module)) = (tokens.get(1), tokens.get(2)) else {
                continue;
            };
            if control == "include" || control == "substack" {
                let target = self.resolve(module);
                self.file(&target, Some(&kind))?;
                continue;
            }
            let file_name = Path::new(module)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if PAM_PI_FILES.contains(&file_name.as_str()) {
                let via: Vec<String> = self.chain.iter().map(|p| p.display().to_string()).collect();
                return Err(ServiceProblem::LoadsPamPi(format!(
                    "PAM service {:?} loads {module} ({}, line {}): it would ask pi for a second \
                     factor while pi checks the password; use pam_unix.so there (`auth \
                     required pam_unix.so`, `account required pam_unix.so`) or point \
                     `pam_service` at a service without pam_pi",
                    self.service,
                    via.join(" -> "),
                    i + 1
                )));
            }
        }
        self.chain.pop();
        Ok(())
    }

    /// An included name: an absolute path, or a file in the service directory.
    fn resolve(&self, name: &str) -> PathBuf {
        if name.starts_with('/') {
            PathBuf::from(name)
        } else {
            self.dir.join(name)
        }
    }
}

/// Whitespace-separated tokens, with a bracketed control (`[success=1 default=ignore]`) kept
/// as one token.
fn tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        let end = if rest.starts_with('[') {
            rest.find(']').map_or(rest.len(), |e| e + 1)
        } else {
            rest.find(char::is_whitespace).unwrap_or(rest.len())
        };
        out.push(rest[..end].to_owned());
        rest = rest[end..].trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn inspect(files: &[(&str, &str)]) -> Result<(), ServiceProblem> {
        let dir = dir_with(files);
        inspect_in(dir.path(), "pi-userstore")
    }

    #[test]
    fn a_pam_unix_service_is_accepted() {
        inspect(&[(
            "pi-userstore",
            "# password checks for pi\nauth required pam_unix.so\naccount required pam_unix.so\n",
        )])
        .unwrap();
    }

    #[test]
    fn a_service_loading_pam_pi_is_refused_with_the_fix() {
        for line in [
            "auth required pam_pi.so",
            "auth [success=done default=die] pam_pi.so socket=/run/pi/pid.sock",
            "-auth sufficient /usr/lib/x86_64-linux-gnu/security/pam_pi.so",
            "account required /work/target/debug/libpam_pi.so",
            "auth \\\n  required pam_pi.so",
        ] {
            let text = format!("auth required pam_unix.so\n{line}\n");
            match inspect(&[("pi-userstore", &text)]) {
                Err(ServiceProblem::LoadsPamPi(msg)) => {
                    assert!(msg.contains("line 2"), "{msg}");
                    assert!(msg.contains("pam_unix.so"), "{msg}");
                }
                other => panic!("{line:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn pam_pi_deep_in_an_include_chain_is_found() {
        let result = inspect(&[
            ("pi-userstore", "@include common-auth\naccount include common-account\n"),
            ("common-auth", "auth substack level2\n"),
            ("common-account", "account required pam_unix.so\n"),
            ("level2", "auth required pam_env.so\nauth include level3\n"),
            ("level3", "# deepest\nauth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_pi.so\n"),
        ]);
        match result {
            Err(ServiceProblem::LoadsPamPi(msg)) => {
                assert!(msg.contains("level3, line 3"), "{msg}");
                assert!(msg.contains("common-auth -> "), "the chain is named: {msg}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pam_pi_outside_the_checked_types_is_not_a_recursion() {
        // `auth include X` takes only X's auth lines; session and password stacks never run.
        inspect(&[
            ("pi-userstore", "auth include common\naccount required pam_unix.so\nsession optional pam_pi.so\n"),
            ("common", "auth required pam_unix.so\nsession required pam_pi.so\npassword required pam_pi.so\n"),
        ])
        .unwrap();
    }

    #[test]
    fn comments_do_not_load_modules() {
        inspect(&[(
            "pi-userstore",
            "# auth required pam_pi.so\nauth required pam_unix.so # not pam_pi.so\naccount required pam_unix.so\n",
        )])
        .unwrap();
    }

    #[test]
    fn a_missing_service_file_says_how_to_create_it() {
        match inspect(&[]) {
            Err(ServiceProblem::Missing(msg)) => {
                assert!(msg.contains("does not exist"), "{msg}");
                assert!(msg.contains("auth required pam_unix.so"), "{msg}");
                assert!(msg.contains("account required pam_unix.so"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_missing_included_file_loads_nothing() {
        inspect(&[("pi-userstore", "@include gone\nauth required pam_unix.so\n")]).unwrap();
    }

    #[test]
    fn an_include_loop_is_bounded() {
        match inspect(&[
            ("pi-userstore", "@include a\n"),
            ("a", "auth include pi-userstore\n"),
        ]) {
            Err(ServiceProblem::Broken(msg)) => assert!(msg.contains("loop"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn absolute_include_paths_are_followed() {
        let outside = dir_with(&[("stack", "auth required pam_pi.so\n")]);
        let line = format!("auth include {}\n", outside.path().join("stack").display());
        assert!(matches!(
            inspect(&[("pi-userstore", &line)]),
            Err(ServiceProblem::LoadsPamPi(_))
        ));
    }

    #[test]
    fn bracketed_controls_stay_one_token() {
        assert_eq!(
            tokens("  auth [success=1 default=ignore]  pam_unix.so nullok"),
            vec![
                "auth",
                "[success=1 default=ignore]",
                "pam_unix.so",
                "nullok"
            ]
        );
    }

    #[test]
    fn only_user_name_prompts_are_answered_visibly() {
        assert!(asks_for_user_name("login: "));
        assert!(asks_for_user_name("Username: "));
        assert!(!asks_for_user_name("Verification code: "));
        assert!(!asks_for_user_name("User password: "));
    }

    #[test]
    fn unanswerable_pam_codes_are_errors_and_refusals_are_false() {
        for code in [
            ErrorCode::AUTH_ERR,
            ErrorCode::USER_UNKNOWN,
            ErrorCode::MAXTRIES,
            ErrorCode::PERM_DENIED,
            ErrorCode::ACCT_EXPIRED,
        ] {
            assert_eq!(verdict(code), Some(false), "{code:?}");
        }
        for code in [
            ErrorCode::AUTHINFO_UNAVAIL,
            ErrorCode::SERVICE_ERR,
            ErrorCode::SYSTEM_ERR,
            ErrorCode::ABORT,
            ErrorCode::CONV_ERR,
            ErrorCode::CRED_INSUFFICIENT,
            ErrorCode::OPEN_ERR,
        ] {
            assert_eq!(verdict(code), None, "{code:?}");
        }
    }

    #[test]
    fn an_empty_password_is_refused_without_running_pam() {
        // A service that does not exist would be an error if PAM ran.
        assert!(!check_password("pi-test-no-such-service", "root", &Secret::new("")).unwrap());
    }
}
