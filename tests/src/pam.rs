//! Logins through the real libpam: `pamtester` (or `pypamtest` for exact return codes) under
//! `libpam_wrapper`, which reads service files from a private directory, so no test ever edits
//! `/etc/pam.d`.

use crate::bins;
use crate::daemon::Daemon;
use crate::process::{self, Caller, CmdOutput};
use nix::fcntl::{Flock, FlockArg};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use tempfile::TempDir;

/// Prefix of the PAM service names the suite's stacks are written under.
pub const SERVICE_PREFIX: &str = "pi-test";

/// Held while a `libpam_wrapper` process starts and runs. pam_wrapper picks its working directory
/// from a few dozen fixed names (`/tmp/pam.X`) with a check-then-create race: two wrapped processes
/// starting together can share one directory and read each other's service files, i.e. log in
/// against another test's daemon. A file lock serialises the wrapped runs of every test: `flock`
/// on a file opened anew for each run, so it keeps out the other threads of the same test binary
/// as well as other processes. Each `Pam` also has its own service name, so a collision with a
/// wrapped process outside the suite fails loudly instead of reaching the wrong daemon.
pub(crate) fn pam_wrapper_lock() -> Flock<fs::File> {
    let path = std::env::temp_dir().join("pi-tests-pam-wrapper.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    Flock::lock(file, FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("lock {}: {e}", path.display()))
}

/// libpam return codes (`<security/_pam_types.h>`) the suite checks.
pub const PAM_SUCCESS: i32 = 0;
pub const PAM_PERM_DENIED: i32 = 6;
pub const PAM_AUTH_ERR: i32 = 7;
pub const PAM_AUTHINFO_UNAVAIL: i32 = 9;
pub const PAM_USER_UNKNOWN: i32 = 10;
pub const PAM_NEW_AUTHTOK_REQD: i32 = 12;
pub const PAM_AUTHTOK_ERR: i32 = 20;
pub const PAM_IGNORE: i32 = 25;

/// `pam_strerror(PAM_AUTHINFO_UNAVAIL)` in Linux-PAM (1.5.2, Debian 12), as pamtester prints it.
/// ("Authentication information cannot be recovered" is `PAM_AUTHTOK_RECOVERY_ERR`, another code.)
pub const AUTHINFO_UNAVAIL_TEXT: &str =
    "Authentication service cannot retrieve authentication info";

/// A helper module shipped with libpam_wrapper (`pam_set_items.so`, `pam_matrix.so` …), by
/// absolute path (the multiarch directory differs between architectures).
pub fn pam_wrapper_module(name: &str) -> PathBuf {
    let candidates = fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("pam_wrapper").join(name))
        .chain([Path::new("/usr/lib/pam_wrapper").join(name)]);
    for path in candidates {
        if path.is_file() {
            return path;
        }
    }
    panic!("{name} from libpam-wrapper not found under /usr/lib: apt-get install libpam-wrapper")
}

/// Distinct per `Pam` within this process; the process id separates test processes (the
/// binaries of this suite, another checkout's run).
fn next_service_number() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A private PAM service whose auth stack uses `libpam_pi.so`.
pub struct Pam {
    dir: TempDir,
    service: String,
    stack: String,
}

impl Pam {
    /// `auth required pam_pi.so socket=<daemon's socket> OPTIONS`.
    pub fn new(daemon: &Daemon, options: &str) -> Pam {
        Pam::for_socket(daemon.socket(), options)
    }

    pub fn for_socket(socket: &Path, options: &str) -> Pam {
        Pam::with_auth_stack(socket, &format!("auth required {{pam_pi}} {options}"))
    }

    /// A custom auth section; `{pam_pi}` expands to the module's absolute path followed by
    /// `socket=…`, so options can follow it. `account required pam_permit.so` is appended.
    pub fn with_auth_stack(socket: &Path, auth: &str) -> Pam {
        Pam::with_stack(
            socket,
            &format!("{}\naccount required pam_permit.so\n", auth.trim_end()),
        )
    }

    /// A private PAM service with exactly this stack; `{pam_pi}` expands as in
    /// `with_auth_stack`, and nothing is appended.
    pub fn with_stack(socket: &Path, stack: &str) -> Pam {
        let module = format!("{} socket={}", bins::pam_pi().display(), socket.display());
        let stack = format!("{}\n", stack.trim_end().replace("{pam_pi}", &module));
        // pamtester may run as uid 65534, which must read the service file.
        let dir = crate::reachable_tempdir("pi-test-pam-");
        let service = format!("{SERVICE_PREFIX}-{}", next_service_number());
        let file = dir.path().join(&service);
        fs::write(&file, &stack).expect("write the PAM service file");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644))
            .expect("chmod the PAM service file");
        Pam {
            dir,
            service,
            stack,
        }
    }

    /// Run `steps` (`authenticate`, `acct_mgmt`, `chauthtok`, each with the return code it must
    /// give) in one PAM transaction, as root, through libpamtest's Python binding; `answers`
    /// go to the echo-off prompts in order. `Ok`: every step gave its code, with the info and
    /// error lines the modules showed. `Err`: what went otherwise.
    pub fn transaction(
        &self,
        user: &str,
        steps: &[(&str, i32)],
        answers: &[&str],
    ) -> Result<Shown, String> {
        const SCRIPT: &str = r#"
import json, sys
try:
    import pypamtest
except ImportError:
    print("missing=pypamtest"); sys.exit(3)
ops = {"authenticate": pypamtest.PAMTEST_AUTHENTICATE, "acct_mgmt": pypamtest.PAMTEST_ACCOUNT,
       "chauthtok": pypamtest.PAMTEST_CHAUTHTOK}
steps = json.loads(sys.argv[3])
cases = [pypamtest.TestCase(ops[op], expected_rv=rv) for op, rv in steps]
answers = [line.rstrip("\n") for line in sys.stdin]
try:
    res = pypamtest.run_pamtest(sys.argv[1], sys.argv[2], cases, answers)
    print("result=" + json.dumps({"info": list(res.info), "errors": list(res.errors)}))
except pypamtest.PamTestError as e:
    print("failed=" + str(e))
"#;
        let steps_json = format!(
            "[{}]",
            steps
                .iter()
                .map(|(op, rv)| format!("[\"{op}\", {rv}]"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let out = self.pypamtest(SCRIPT, &[user, self.service.as_str(), &steps_json], answers);
        let found = |prefix: &str| {
            out.stdout
                .lines()
                .find_map(|l| l.strip_prefix(prefix))
                .map(str::to_owned)
        };
        if let Some(result) = found("result=") {
            let v: serde_json::Value = serde_json::from_str(&result).expect("pypamtest's result");
            let lines = |key: &str| -> Vec<String> {
                v[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            };
            return Ok(Shown {
                info: lines("info"),
                errors: lines("errors"),
            });
        }
        Err(format!(
            "{}\n{}\n--- PAM stack ---\n{}",
            found("failed=").unwrap_or_default(),
            out.describe(),
            self.stack
        ))
    }

    /// The PAM service name (`PAM_SERVICE`, as the daemon's audit records it).
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The service file as written, for assertion messages.
    pub fn stack(&self) -> &str {
        &self.stack
    }

    fn wrapped(&self, caller: Caller, env: &[(&str, &str)], program: &str) -> Command {
        // `env` after `setpriv`, so the wrapper is preloaded into the PAM application only.
        let mut cmd = caller.command(Path::new("/usr/bin/env"));
        cmd.arg("LD_PRELOAD=libpam_wrapper.so")
            .arg("PAM_WRAPPER=1")
            .arg(format!(
                "PAM_WRAPPER_SERVICE_DIR={}",
                self.dir.path().display()
            ));
        for (name, value) in env {
            cmd.arg(format!("{name}={value}"));
        }
        cmd.arg(program);
        cmd
    }

    /// `pamtester pi-test USER authenticate` as root, answering the first prompt with `answer`.
    pub fn login(&self, user: &str, answer: &str) -> PamRun {
        self.login_as(Caller::Root, user, &[answer])
    }

    /// `pamtester` as `caller`; each answer is one line on stdin, one per prompt.
    pub fn login_as(&self, caller: Caller, user: &str, answers: &[&str]) -> PamRun {
        self.login_with(caller, user, answers, &[], &[])
    }

    /// `pamtester` with PAM items (`-I rhost=…`) and environment variables for the PAM
    /// application (e.g. `PAM_AUTHTOK` for `pam_set_items.so`).
    pub fn login_with(
        &self,
        caller: Caller,
        user: &str,
        answers: &[&str],
        items: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> PamRun {
        let mut cmd = self.wrapped(caller, env, "pamtester");
        for (name, value) in items {
            cmd.arg("-I").arg(format!("{name}={value}"));
        }
        cmd.args([self.service.as_str(), user, "authenticate"]);
        let stdin: String = answers.iter().map(|a| format!("{a}\n")).collect();
        let _wrapper = pam_wrapper_lock();
        PamRun {
            out: process::run(cmd, stdin.as_bytes()),
            stack: self.stack.clone(),
        }
    }

    /// `pamtester` as root, answering each prompt as it appears: `respond` sees the prompt's
    /// text and returns the answer (`None` closes stdin). For challenges whose question is only
    /// known once asked (positions of a secret, a random question, a code sent by mail).
    /// A prompt is the text pamtester printed since the last answer, once it has been quiet for
    /// a moment without ending in a newline.
    pub fn login_interactive(
        &self,
        user: &str,
        mut respond: impl FnMut(&str) -> Option<String>,
    ) -> PamRun {
        use std::io::{Read, Write};
        use std::process::Stdio;
        use std::sync::mpsc;
        use std::time::{Duration, Instant};
        let mut cmd = self.wrapped(Caller::Root, &[], "pamtester");
        cmd.args([self.service.as_str(), user, "authenticate"]);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let _wrapper = pam_wrapper_lock();
        let mut child = cmd.spawn().expect("start pamtester");
        let mut stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let out_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf);
            buf
        });
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let err_reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut chunk) {
                if n == 0 || tx.send(chunk[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut all = Vec::new();
        let mut answered_up_to = 0;
        loop {
            match rx.recv_timeout(Duration::from_millis(150)) {
                Ok(bytes) => all.extend_from_slice(&bytes),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let pending = &all[answered_up_to..];
                    if !pending.is_empty() && !pending.ends_with(b"\n") && stdin.is_some() {
                        let text = String::from_utf8_lossy(pending).into_owned();
                        let prompt = text.rsplit('\n').next().unwrap_or_default().to_owned();
                        answered_up_to = all.len();
                        match respond(&prompt) {
                            Some(answer) => {
                                if let Some(w) = stdin.as_mut() {
                                    let _ = w.write_all(format!("{answer}\n").as_bytes());
                                }
                            }
                            None => stdin = None,
                        }
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "pamtester did not finish in 30 s"
            );
        }
        drop(stdin);
        let status = child.wait().expect("wait for pamtester");
        let _ = err_reader.join();
        let stdout = out_reader.join().unwrap_or_default();
        PamRun {
            out: CmdOutput {
                status,
                stdout: String::from_utf8_lossy(&stdout).into_owned(),
                stderr: String::from_utf8_lossy(&all).into_owned(),
            },
            stack: self.stack.clone(),
        }
    }

    /// The exact return code of `pam_authenticate`, through libpamtest's Python binding
    /// (`python3-pypamtest`); each answer goes to one echo-off prompt.
    pub fn return_code(&self, user: &str, answers: &[&str]) -> i32 {
        self.return_code_of(None, user, answers)
    }

    /// `return_code` from a set-uid root program started by `uid`, as `su` and `sudo` are: the
    /// application switches its real uid to `uid` (effective uid 0) before PAM starts. (A
    /// process started that way from the outside would not load libpam_wrapper: the dynamic
    /// linker ignores LD_PRELOAD when the real and effective uid differ.)
    pub fn return_code_as_su_by(&self, uid: u32, user: &str, answers: &[&str]) -> i32 {
        self.return_code_of(Some(uid), user, answers)
    }

    /// Run a libpamtest `script` with `args` under libpam_wrapper, as root; one answer a line
    /// on stdin.
    fn pypamtest(&self, script: &str, args: &[&str], answers: &[&str]) -> CmdOutput {
        // The system python: that is where Debian's python3-pypamtest lives.
        let mut cmd = self.wrapped(Caller::Root, &[], "/usr/bin/python3");
        cmd.arg("-c").arg(script).args(args);
        let stdin: String = answers.iter().map(|a| format!("{a}\n")).collect();
        let out = {
            let _wrapper = pam_wrapper_lock();
            process::run(cmd, stdin.as_bytes())
        };
        if out.stdout.contains("missing=pypamtest") {
            panic!("python3-pypamtest is not installed: apt-get install python3-pypamtest");
        }
        out
    }

    fn return_code_of(&self, real_uid: Option<u32>, user: &str, answers: &[&str]) -> i32 {
        const SCRIPT: &str = r#"
import os, re, sys
try:
    import pypamtest
except ImportError:
    print("missing=pypamtest"); sys.exit(3)
if sys.argv[3]:
    os.setresuid(int(sys.argv[3]), 0, 0)
answers = [line.rstrip("\n") for line in sys.stdin]
case = pypamtest.TestCase(pypamtest.PAMTEST_AUTHENTICATE, expected_rv=0)
try:
    pypamtest.run_pamtest(sys.argv[1], sys.argv[2], [case], answers)
    print("rv=0")
except pypamtest.PamTestError as e:
    m = re.search(r"returned \[(-?\d+)\]", str(e))
    if not m:
        print("error=" + str(e)); sys.exit(2)
    print("rv=" + m.group(1))
"#;
        let real_uid = real_uid.map(|u| u.to_string()).unwrap_or_default();
        let out = self.pypamtest(SCRIPT, &[user, self.service.as_str(), &real_uid], answers);
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix("rv="))
            .and_then(|rv| rv.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "pypamtest gave no return code\n{}\n{}",
                    out.describe(),
                    self.stack
                )
            })
    }
}

/// The info and error lines a PAM transaction showed.
#[derive(Debug, Default)]
pub struct Shown {
    pub info: Vec<String>,
    pub errors: Vec<String>,
}

/// One finished `pamtester` run.
#[derive(Debug)]
pub struct PamRun {
    pub out: CmdOutput,
    stack: String,
}

impl PamRun {
    fn describe(&self) -> String {
        format!("{}\n--- PAM stack ---\n{}", self.out.describe(), self.stack)
    }

    /// What the modules handed `pam_syslog`, one message each, as libpam_wrapper prints it on
    /// stderr (`PWRAP_…SYSLOG(LEVEL): MESSAGE`; run with `PAM_WRAPPER_DEBUGLEVEL` 2 for all
    /// levels down to `LOG_DEBUG`). On a real system syslog shows `MODULE(SERVICE:auth): `
    /// before each.
    pub fn syslog_messages(&self) -> Vec<&str> {
        self.out
            .stderr
            .lines()
            .filter_map(|l| l.split_once("SYSLOG(").map(|(_, rest)| rest))
            .filter_map(|rest| rest.split_once("): ").map(|(_, message)| message))
            .collect()
    }

    /// pamtester exited 0 and reported success.
    pub fn accepted(&self) -> bool {
        self.out.code() == 0 && self.out.stdout.contains("successfully authenticated")
    }

    /// pamtester exited 1 (normally, not by a signal) with `pam_strerror` text `message`.
    pub fn failed_with(&self, message: &str) -> bool {
        self.out.code() == 1 && self.out.text().contains(message)
    }

    pub fn assert_accepted(&self, why: &str) {
        assert!(
            self.accepted(),
            "expected the login to succeed: {why}\n{}",
            self.describe()
        );
    }

    /// Refused with `PAM_AUTH_ERR` ("Authentication failure").
    pub fn assert_rejected(&self, why: &str) {
        assert!(
            self.failed_with("Authentication failure"),
            "expected \"Authentication failure\": {why}\n{}",
            self.describe()
        );
    }

    /// Refused in any way: not a success, and not a crash.
    pub fn assert_refused(&self, why: &str) {
        assert!(
            self.out.code() != 0 && !self.out.stdout.contains("successfully authenticated"),
            "expected the login to be refused: {why}\n{}",
            self.describe()
        );
    }

    /// `PAM_AUTHINFO_UNAVAIL`: the module could not reach a daemon that answers.
    pub fn assert_unavailable(&self, why: &str) {
        assert!(
            self.failed_with(AUTHINFO_UNAVAIL_TEXT),
            "expected \"{AUTHINFO_UNAVAIL_TEXT}\": {why}\n{}",
            self.describe()
        );
    }
}

/// Several `pamtester` logins in flight at once, so that the daemon serves them concurrently.
/// Each process is started only once the one before it shows its prompt: pam_wrapper has set up
/// its private directory by then (see [`pam_wrapper_lock`], held for the whole batch), and the
/// daemon has begun its session. [`LoginBatch::answer`] then sends every answer at once.
pub struct LoginBatch {
    running: Vec<RunningLogin>,
    stack: String,
    _wrapper: Flock<fs::File>,
}

struct RunningLogin {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    answer: String,
    stdout: std::thread::JoinHandle<Vec<u8>>,
    stderr: std::thread::JoinHandle<Vec<u8>>,
    prompted: std::sync::mpsc::Receiver<()>,
}

impl Pam {
    /// Start one `pamtester` as root per `(user, answer)` and wait until each shows its prompt.
    pub fn start_logins(&self, logins: &[(&str, &str)]) -> LoginBatch {
        use std::process::Stdio;
        let wrapper = pam_wrapper_lock();
        let mut running = Vec::new();
        for (user, answer) in logins {
            let mut cmd = self.wrapped(Caller::Root, &[], "pamtester");
            cmd.args([self.service.as_str(), user, "authenticate"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().expect("start pamtester");
            let stdin = child.stdin.take();
            let mut out = child.stdout.take().expect("stdout is piped");
            let mut err = child.stderr.take().expect("stderr is piped");
            let (tx, prompted) = std::sync::mpsc::channel();
            let stdout = std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = std::io::Read::read_to_end(&mut out, &mut buf);
                buf
            });
            // pamtester writes its prompts to stderr, and nothing before the first one.
            let stderr = std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while let Ok(n) = std::io::Read::read(&mut err, &mut chunk) {
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let _ = tx.send(());
                }
                buf
            });
            let login = RunningLogin {
                child,
                stdin,
                answer: (*answer).to_owned(),
                stdout,
                stderr,
                prompted,
            };
            // A process that ends without a prompt (the daemon is down) is reported by `finish`.
            let _ = login.prompted.recv_timeout(process::COMMAND_DEADLINE);
            running.push(login);
        }
        LoginBatch {
            running,
            stack: self.stack.clone(),
            _wrapper: wrapper,
        }
    }
}

impl LoginBatch {
    /// Send every login its answer, one right after the other.
    pub fn answer(&mut self) {
        use std::io::Write;
        for login in &mut self.running {
            if let Some(mut stdin) = login.stdin.take() {
                // A process that already ended does not read it; `finish` reports how it ended.
                let _ = stdin.write_all(format!("{}\n", login.answer).as_bytes());
            }
        }
    }

    /// Wait for every process (answering first if [`LoginBatch::answer`] was not called).
    pub fn finish(mut self) -> Vec<PamRun> {
        self.answer();
        let started = std::time::Instant::now();
        let mut runs = Vec::new();
        for mut login in std::mem::take(&mut self.running) {
            let status = loop {
                if let Some(status) = login.child.try_wait().expect("wait for pamtester") {
                    break status;
                }
                if started.elapsed() > process::COMMAND_DEADLINE {
                    let _ = login.child.kill();
                    let _ = login.child.wait();
                    panic!(
                        "pamtester did not finish within {:?}\n{}",
                        process::COMMAND_DEADLINE,
                        self.stack
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            };
            let lossy = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
            runs.push(PamRun {
                out: CmdOutput {
                    status,
                    stdout: lossy(login.stdout.join().unwrap_or_default()),
                    stderr: lossy(login.stderr.join().unwrap_or_default()),
                },
                stack: self.stack.clone(),
            });
        }
        runs
    }
}

impl Drop for LoginBatch {
    fn drop(&mut self) {
        for login in &mut self.running {
            let _ = login.child.kill();
            let _ = login.child.wait();
        }
    }
}
