#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code
//! `libpam_pi.so` through real libpam: `pamtester` under `libpam_wrapper` (no /etc/pam.d edits,
//! no root needed), against a scripted fake daemon on a temp socket. The real daemon is covered
//! by the cross-binary suite in `tests/`; this proves the module's FFI, conversation and exit
//! codes as an application sees them.
//!
//! Needs `pamtester` and `libpam-wrapper` (CI installs them). Missing tools fail the test with
//! the command to install them; they are never skipped silently.

use protocol::frame::{read_frame, write_frame};
use protocol::{AuthBegin, Outcome, Prompt, Request, Response};
use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const OTP: &str = "123456";
const INFO: &str = "pi: enter the code from your token";
const PROMPT: &str = "pi OTP: ";
const REJECTED: &str = "pi: wrong OTP";
const INSTALL: &str = "install them with `apt-get install -y pamtester libpam-wrapper`";

/// What the fake daemon received.
#[derive(Debug)]
enum Seen {
    Begin(AuthBegin),
    Answer(String),
}

/// A daemon that asks for an OTP after an info line and accepts only `OTP`.
fn fake_daemon(socket: &Path) -> Receiver<Seen> {
    let listener = UnixListener::bind(socket).unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            // A broken connection ends only that conversation.
            let _ = serve(stream, &tx);
        }
    });
    rx
}

fn serve(mut stream: UnixStream, seen: &Sender<Seen>) -> Result<(), protocol::FrameError> {
    let session = 42;
    let mut asked_secret = false;
    loop {
        let request: Request = read_frame(&mut stream)?;
        let response = match request {
            Request::AuthBegin(begin) => {
                // With a password from an earlier module the daemon decides without prompting.
                let verdict = begin.authtok.as_ref().map(|t| t.expose() == OTP);
                let _ = seen.send(Seen::Begin(begin));
                asked_secret = false;
                match verdict {
                    Some(ok) => Response::AuthDone(verdict_for(ok)),
                    None => Response::AuthStep {
                        session,
                        prompt: Prompt::Info { text: INFO.into() },
                    },
                }
            }
            Request::AuthContinue { answer, .. } if !asked_secret => {
                assert!(
                    answer.is_empty(),
                    "an info line is answered with an empty secret"
                );
                asked_secret = true;
                Response::AuthStep {
                    session,
                    prompt: Prompt::Secret {
                        text: PROMPT.into(),
                    },
                }
            }
            Request::AuthContinue { answer, .. } => {
                let _ = seen.send(Seen::Answer(answer.expose().to_owned()));
                Response::AuthDone(verdict_for(answer.expose() == OTP))
            }
            other => panic!("fake daemon got an unexpected request: {other:?}"),
        };
        write_frame(&mut stream, &response)?;
    }
}

fn verdict_for(correct: bool) -> Outcome {
    if correct {
        Outcome::Accept {
            message: String::new(),
        }
    } else {
        Outcome::Reject {
            message: REJECTED.into(),
        }
    }
}

/// The module cargo built next to this test binary (`target/<profile>/deps/..`).
fn module_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    for dir in [deps, deps.parent().unwrap()] {
        let candidate = dir.join("libpam_pi.so");
        if candidate.exists() {
            return candidate;
        }
    }
    panic!(
        "libpam_pi.so not found next to {}: build it with `cargo build -p pam_pi`",
        exe.display()
    );
}

fn pam_wrapper() -> PathBuf {
    let mut dirs = vec![PathBuf::from("/usr/lib64"), PathBuf::from("/usr/lib")];
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        dirs.extend(entries.flatten().map(|e| e.path()));
    }
    dirs.into_iter()
        .map(|d| d.join("libpam_wrapper.so"))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("libpam_wrapper.so not found: {INSTALL}"))
}

/// pam_wrapper's helper modules; `pam_set_items.so` sets PAM items (here `PAM_AUTHTOK`) from
/// environment variables, standing in for an earlier password module.
fn pam_set_items() -> PathBuf {
    let path = pam_wrapper()
        .parent()
        .unwrap()
        .join("pam_wrapper/pam_set_items.so");
    assert!(path.exists(), "{} not found: {INSTALL}", path.display());
    path
}

/// pam_wrapper 1.1.4 copies the service directory to `/tmp/pam.<one letter>` and two processes
/// starting at the same moment can pick the same copy (observed: one test's pamtester talked to
/// another test's daemon). So pamtester runs one at a time in this binary, and every service
/// has a name of its own, so that a collision with another process fails instead of
/// cross-talking.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
static SERVICES: AtomicUsize = AtomicUsize::new(0);

const USER: &str = "alice";

/// A service directory for pam_wrapper with one service, and a separate directory for the
/// daemon's socket (pam_wrapper copies every file of the service directory and fails on a
/// socket).
struct Service {
    name: String,
    dir: tempfile::TempDir,
    _run: tempfile::TempDir,
    socket: PathBuf,
}

impl Service {
    fn new(extra_auth_args: &str) -> Service {
        Service::build("", extra_auth_args)
    }

    /// `pam_set_items.so` runs first and sets `PAM_AUTHTOK` from the environment.
    fn after_password_module(extra_auth_args: &str) -> Service {
        let earlier = format!("auth     required  {}\n", pam_set_items().display());
        Service::build(&earlier, extra_auth_args)
    }

    fn build(earlier: &str, extra_auth_args: &str) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let run = tempfile::tempdir().unwrap();
        let socket = run.path().join("pid.sock");
        let module = module_path();
        let config = format!(
            "{earlier}\
             auth     required  {module} socket={socket} timeout=5 {extra_auth_args}\n\
             account  required  {module}\n\
             account  required  pam_permit.so\n\
             session  required  {module}\n\
             session  required  pam_permit.so\n",
            module = module.display(),
            socket = socket.display(),
        );
        let name = format!(
            "pitest{}x{}",
            std::process::id(),
            SERVICES.fetch_add(1, Ordering::SeqCst)
        );
        std::fs::write(dir.path().join(&name), config).unwrap();
        Service {
            name,
            dir,
            _run: run,
            socket,
        }
    }

    /// `pamtester [items] SERVICE alice OPS...` with `stdin` as the user's typing; killed after
    /// 30 s.
    fn pamtester(&self, items: &[&str], ops: &[&str], stdin: &str) -> Output {
        self.pamtester_env(items, ops, stdin, &[])
    }

    fn pamtester_env(
        &self,
        items: &[&str],
        ops: &[&str],
        stdin: &str,
        env: &[(&str, &str)],
    ) -> Output {
        let _one = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut child = Command::new("pamtester")
            .args(items)
            .args([self.name.as_str(), USER])
            .args(ops)
            .envs(env.iter().copied())
            .env("LD_PRELOAD", pam_wrapper())
            .env("PAM_WRAPPER", "1")
            .env("PAM_WRAPPER_SERVICE_DIR", self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run pamtester ({e}): {INSTALL}"));
        let mut input = child.stdin.take().unwrap();
        // pamtester may exit before reading everything; that is not an error here.
        let _ = input.write_all(stdin.as_bytes());
        drop(input);
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("cannot be preloaded"),
            "libpam_wrapper did not load ({INSTALL}): {stderr}"
        );
        output
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn next(seen: &Receiver<Seen>) -> Seen {
    seen.recv_timeout(Duration::from_secs(10))
        .expect("the fake daemon heard nothing from the module")
}

#[test]
fn missing_daemon_gives_authinfo_unavail_without_crashing_the_application() {
    let service = Service::new("");
    let output = service.pamtester(&[], &["authenticate"], "x\n");
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    // pam_strerror(PAM_AUTHINFO_UNAVAIL)
    assert!(
        all.contains("Authentication service cannot retrieve authentication info"),
        "{all}"
    );
    assert!(
        all.contains("is pid running"),
        "the log says what to do next: {all}"
    );
}

#[test]
fn correct_otp_is_accepted_through_libpam() {
    let service = Service::new("");
    let seen = fake_daemon(&service.socket);
    let output = service.pamtester(
        &["-I", "rhost=192.0.2.7", "-I", "ruser=bob"],
        &["authenticate"],
        &format!("{OTP}\n"),
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(all.contains("successfully authenticated"), "{all}");
    assert!(all.contains(INFO), "info line shown: {all}");
    assert!(all.contains(PROMPT), "prompt shown: {all}");

    let Seen::Begin(begin) = next(&seen) else {
        panic!("expected AuthBegin first")
    };
    assert_eq!(begin.user, USER);
    assert_eq!(begin.service, service.name);
    assert_eq!(begin.rhost.as_deref(), Some("192.0.2.7"));
    assert_eq!(begin.ruser.as_deref(), Some("bob"));
    assert!(
        begin.authtok.is_none(),
        "no password is forwarded without use/try_first_pass"
    );
    let Seen::Answer(answer) = next(&seen) else {
        panic!("expected the answer")
    };
    assert_eq!(answer, OTP, "the reply reaches the daemon exactly as typed");
}

#[test]
fn wrong_otp_is_rejected_and_the_daemons_message_shown() {
    let service = Service::new("");
    let _seen = fake_daemon(&service.socket);
    let output = service.pamtester(&[], &["authenticate"], "000000\n");
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("Authentication failure"), "{all}");
    assert!(all.contains(REJECTED), "{all}");
}

#[test]
fn pam_silent_hides_info_text_but_still_prompts() {
    let service = Service::new("");
    let _seen = fake_daemon(&service.socket);
    let output = service.pamtester(&[], &["authenticate(PAM_SILENT)"], "000000\n");
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains(PROMPT), "{all}");
    assert!(!all.contains(INFO), "{all}");
    assert!(!all.contains(REJECTED), "{all}");
}

#[test]
fn end_of_input_at_the_prompt_is_a_conversation_error() {
    let service = Service::new("");
    let seen = fake_daemon(&service.socket);
    let output = service.pamtester(&[], &["authenticate"], "");
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("Conversation error"), "{all}");
    assert!(matches!(next(&seen), Seen::Begin(_)));
    assert!(
        seen.recv_timeout(Duration::from_millis(300)).is_err(),
        "no answer may be sent when the user gave none"
    );
}

#[test]
fn try_first_pass_without_a_password_prompts() {
    let service = Service::new("try_first_pass");
    let seen = fake_daemon(&service.socket);
    let output = service.pamtester(&[], &["authenticate"], &format!("{OTP}\n"));
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    let Seen::Begin(begin) = next(&seen) else {
        panic!("expected AuthBegin first")
    };
    assert!(begin.authtok.is_none());
}

#[test]
fn use_first_pass_without_a_password_fails_without_prompting() {
    let service = Service::new("use_first_pass");
    let seen = fake_daemon(&service.socket);
    let output = service.pamtester(&[], &["authenticate"], &format!("{OTP}\n"));
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("Authentication failure"), "{all}");
    assert!(!all.contains(PROMPT), "{all}");
    assert!(
        seen.recv_timeout(Duration::from_millis(300)).is_err(),
        "daemon never asked"
    );
}

#[test]
fn setcred_account_and_session_hooks_do_not_fail_the_stack() {
    let service = Service::new("");
    let output = service.pamtester(
        &[],
        &["setcred", "acct_mgmt", "open_session", "close_session"],
        "",
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(
        all.contains("credential info has successfully been set"),
        "{all}"
    );
    assert!(all.contains("account management done"), "{all}");
    assert!(all.contains("successfully opened a session"), "{all}");
    assert!(
        all.contains("session has successfully been closed"),
        "{all}"
    );
}

#[test]
fn try_first_pass_prompts_after_the_earlier_password_is_rejected() {
    let service = Service::after_password_module("try_first_pass");
    let seen = fake_daemon(&service.socket);
    let output = service.pamtester_env(
        &[],
        &["authenticate"],
        &format!("{OTP}\n"),
        &[("PAM_AUTHTOK", "hunter2")],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(all.contains(PROMPT), "{all}");
    assert!(
        !all.contains(REJECTED),
        "the first rejection is not shown: {all}"
    );
    let Seen::Begin(first) = next(&seen) else {
        panic!("expected AuthBegin first")
    };
    assert_eq!(first.authtok.as_ref().map(|t| t.expose()), Some("hunter2"));
    let Seen::Begin(second) = next(&seen) else {
        panic!("expected a second AuthBegin")
    };
    assert!(second.authtok.is_none());
    let Seen::Answer(answer) = next(&seen) else {
        panic!("expected the answer")
    };
    assert_eq!(answer, OTP);
}

#[test]
fn use_first_pass_sends_the_earlier_password_and_never_prompts() {
    let service = Service::after_password_module("use_first_pass");
    let seen = fake_daemon(&service.socket);
    let output = service.pamtester_env(&[], &["authenticate"], "", &[("PAM_AUTHTOK", OTP)]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(!all.contains(PROMPT), "{all}");
    let Seen::Begin(begin) = next(&seen) else {
        panic!("expected AuthBegin")
    };
    assert_eq!(begin.authtok.as_ref().map(|t| t.expose()), Some(OTP));

    let output = service.pamtester_env(
        &[],
        &["authenticate"],
        &format!("{OTP}\n"),
        &[("PAM_AUTHTOK", "hunter2")],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(!all.contains(PROMPT), "{all}");
    assert!(all.contains(REJECTED), "{all}");
}

/// The module links the unwinder statically (see `build.rs`): loading libgcc_s.so.1 into every
/// sudo/sshd process cost 0.1–0.16 ms per login on a VM. Nothing else may leak out of it: the
/// only dynamic symbols it defines are the six PAM hooks, so its copy of the unwinder can never
/// interpose on the host's.
#[test]
fn the_module_needs_only_libpam_and_libc_and_exports_only_the_pam_hooks() {
    let so = module_path();
    let out = Command::new("readelf")
        .args(["--dynamic", "--dyn-syms", "-W"])
        .arg(&so)
        .output()
        .expect("readelf (binutils) runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let needed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    assert!(!needed.is_empty(), "no NEEDED entries parsed from {text}");
    for lib in &needed {
        assert!(
            ["libpam.so.0", "libc.so.6"].contains(lib) || lib.starts_with("ld-linux"),
            "{} needs {lib}: {needed:?}",
            so.display()
        );
    }
    // readelf --dyn-syms: Num Value Size Type Bind Vis Ndx Name; defined symbols have a section
    // number in Ndx.
    let defined: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 8 && f[0].ends_with(':') && f[6].parse::<u32>().is_ok()).then(|| f[7])
        })
        .collect();
    let mut hooks = defined.clone();
    hooks.sort_unstable();
    assert_eq!(
        hooks,
        [
            "pam_sm_acct_mgmt",
            "pam_sm_authenticate",
            "pam_sm_chauthtok",
            "pam_sm_close_session",
            "pam_sm_open_session",
            "pam_sm_setcred"
        ],
        "{}",
        so.display()
    );
}
