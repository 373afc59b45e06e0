//! A real `pid` on a private socket, store and key file, in a temporary directory that is removed
//! when the test ends. One daemon per test: tests run in parallel and share nothing.

use crate::bins;
use crate::process::{self, Caller, CmdOutput};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use protocol::{Client, Request, Response, StatusInfo};
use serde_json::Value;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long a daemon may take to answer its first `Status`.
pub const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How long a daemon may take to exit after SIGTERM.
pub const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// Extra configuration for one daemon.
#[derive(Clone, Debug, Default)]
pub struct DaemonOptions {
    /// TOML inserted right after the harness's top-level keys: it may set further top-level keys
    /// and add sections such as `[tokens]` or `[limits]` (not `[argon2]`, which the harness writes).
    /// `{dir}` stands for the daemon's temporary directory.
    pub extra_toml: String,
    /// Files (name, content) written into the daemon's directory before it starts, e.g. a
    /// resolver's user file that `extra_toml` names as `{dir}/NAME`.
    pub files: Vec<(String, String)>,
    /// Extra environment (name, value) of the daemon process, `{dir}` expanded as above, e.g.
    /// `LD_PRELOAD=libpam_wrapper.so`, `PAM_WRAPPER=1` and `PAM_WRAPPER_SERVICE_DIR` so the
    /// PAM services the daemon runs for user store passwords come from a private directory.
    pub env: Vec<(String, String)>,
}

impl DaemonOptions {
    /// `extra_toml`, then two realms: `default_realm` holds the host's accounts, `ext` is a
    /// passwd-format file holding `alice` (uid 4242, not an account of this host).
    pub fn with_file_realm(extra_toml: &str) -> DaemonOptions {
        DaemonOptions {
            extra_toml: format!(
                "{extra_toml}\n\
                 [resolvers.local]\ntype = \"passwd\"\n\
                 [resolvers.people]\ntype = \"flatfile\"\nfile = \"{{dir}}/people\"\n\
                 [realms.default]\nresolvers = [\"local\"]\n\
                 [realms.ext]\nresolvers = [\"people\"]\n"
            ),
            files: vec![(
                "people".into(),
                "alice:x:4242:4242::/nonexistent:/bin/false\n".into(),
            )],
            ..Default::default()
        }
    }
}

pub struct Daemon {
    dir: TempDir,
    /// `state_dir` (the store and its journal) and `enckey_file`: in the temporary directory,
    /// or where the test chose (a LazyFS mount).
    state_dir: PathBuf,
    enckey: PathBuf,
    config: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
    /// Builds the command that starts pid (`bins::pid()` unless a test launches it the way
    /// systemd does, see `systemd::ServiceManager::launcher`); `--config FILE` is appended.
    launcher: Option<Launcher>,
    child: Option<Child>,
}

/// What starts pid instead of running `bins::pid()` directly.
pub type Launcher = Box<dyn Fn() -> Command + Send + Sync>;

impl Daemon {
    /// A daemon with the harness defaults.
    pub fn start() -> Daemon {
        Daemon::start_with(DaemonOptions::default())
    }

    pub fn start_with(opts: DaemonOptions) -> Daemon {
        let mut daemon = Daemon::prepare(opts);
        daemon.spawn();
        daemon
    }

    /// A daemon whose stderr is `stderr` (a pipe, /dev/full …) instead of its log file, for
    /// this first start; stdout still goes to the log.
    pub fn start_with_stderr(opts: DaemonOptions, stderr: Stdio) -> Daemon {
        let mut daemon = Daemon::prepare(opts);
        if let Err(status) = daemon.try_spawn_with(Some(stderr)) {
            panic!(
                "pid exited with {status} before it was ready\n--- pid log ---\n{}",
                daemon.log()
            );
        }
        daemon
    }

    /// Start a daemon that may refuse to start: `Err` holds its exit status and log.
    pub fn try_start_with(opts: DaemonOptions) -> Result<Daemon, (ExitStatus, String)> {
        let mut daemon = Daemon::prepare(opts);
        match daemon.try_spawn() {
            Ok(()) => Ok(daemon),
            Err(status) => Err((status, daemon.log())),
        }
    }

    /// A daemon whose store (`state_dir`) and key file are where the test says, e.g. on a file
    /// system that can simulate a power cut; config, socket and log stay in its temporary
    /// directory.
    pub fn start_with_storage(opts: DaemonOptions, state_dir: &Path, enckey_file: &Path) -> Daemon {
        let mut daemon = Daemon::prepare_in(opts, Some((state_dir, enckey_file)));
        daemon.spawn();
        daemon
    }

    /// Directory, config and files; nothing started.
    fn prepare(opts: DaemonOptions) -> Daemon {
        Daemon::prepare_in(opts, None)
    }

    fn prepare_in(opts: DaemonOptions, storage: Option<(&Path, &Path)>) -> Daemon {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the cross-binary suite runs as root: it administers the daemon as uid 0 and \
             switches to uid 65534 with setpriv (use a VM or container)"
        );
        // uid 65534 must reach the socket and the PAM service files below this directory.
        let dir = crate::reachable_tempdir("pi-test-");
        let socket = dir.path().join("pid.sock");
        let config = dir.path().join("pid.toml");
        let log = dir.path().join("pid.log");
        let (state_dir, enckey) = match storage {
            Some((state, key)) => (state.to_path_buf(), key.to_path_buf()),
            None => (dir.path().join("state"), dir.path().join("enckey")),
        };
        let text = format!(
            "version = 1\n\
             socket = {socket:?}\n\
             state_dir = {state:?}\n\
             enckey_file = {key:?}\n\
             log_level = \"debug\"\n\
             {extra}\n\
             # PIN hashing at the cheapest cost the daemon accepts: tests measure behaviour, not KDFs.\n\
             [argon2]\n\
             memory_kib = 1024\n\
             iterations = 1\n\
             parallelism = 1\n",
            socket = socket.display().to_string(),
            state = state_dir.display().to_string(),
            key = enckey.display().to_string(),
            extra = opts.extra_toml.replace("{dir}", &dir.path().display().to_string()),
        );
        for (name, content) in &opts.files {
            fs::write(dir.path().join(name), content).expect("write a file for the daemon");
        }
        fs::write(&config, text).expect("write pid.toml");
        let dir_text = dir.path().display().to_string();
        let env = opts
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.replace("{dir}", &dir_text)))
            .collect();
        Daemon {
            dir,
            state_dir,
            enckey,
            config,
            socket,
            log,
            env,
            launcher: None,
            child: None,
        }
    }

    /// Config, directory and files as `start_with` writes them, nothing started: the test sets
    /// up what it needs around the socket path first (`launch_with`), then calls
    /// `try_start_prepared`.
    pub fn prepared(opts: DaemonOptions) -> Daemon {
        Daemon::prepare(opts)
    }

    /// Start pid with `launcher`'s command from now on (this start and every restart).
    pub fn launch_with(&mut self, launcher: Launcher) {
        self.launcher = Some(launcher);
    }

    /// Start a prepared daemon that may refuse to start: `Err` holds its exit status and log.
    pub fn try_start_prepared(&mut self) -> Result<(), (ExitStatus, String)> {
        self.try_spawn().map_err(|status| (status, self.log()))
    }

    /// Set `name` in the daemon's environment for the next starts.
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.remove_env(name);
        self.env.push((name.to_string(), value.to_string()));
    }

    /// Remove `name` from the daemon's environment for the next starts.
    pub fn remove_env(&mut self, name: &str) {
        self.env.retain(|(k, _)| k != name);
    }

    fn spawn(&mut self) {
        if let Err(status) = self.try_spawn() {
            panic!(
                "pid exited with {status} before it was ready\n--- pid log ---\n{}",
                self.log()
            );
        }
    }

    /// Start the process and wait until it answers; `Err` if it exited first.
    fn try_spawn(&mut self) -> Result<(), ExitStatus> {
        self.try_spawn_with(None)
    }

    /// `try_spawn`, with stderr going to `stderr` instead of the log if given.
    fn try_spawn_with(&mut self, stderr: Option<Stdio>) -> Result<(), ExitStatus> {
        assert!(self.child.is_none(), "daemon already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the daemon log");
        let log2 = log.try_clone().expect("clone the log handle");
        // pam_wrapper picks its private directory when the process starts, racing other wrapped
        // processes of the suite (see `pam::pam_wrapper_lock`).
        let wrapped = self
            .env
            .iter()
            .any(|(k, v)| k == "LD_PRELOAD" && v.contains("pam_wrapper"));
        let _wrapper = wrapped.then(crate::pam::pam_wrapper_lock);
        let mut command = match &self.launcher {
            // The launcher's stdin carries the socket it passes.
            Some(launch) => launch(),
            None => {
                let mut pid = Command::new(bins::pid());
                pid.stdin(Stdio::null());
                pid
            }
        };
        let child = command
            .arg("--config")
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(log)
            .stderr(stderr.unwrap_or_else(|| log2.into()))
            .spawn()
            .expect("start pid");
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child_mut().try_wait().expect("poll pid") {
                self.child = None;
                return Err(status);
            }
            if self.status().is_some() {
                return Ok(());
            }
            if started.elapsed() > READY_DEADLINE {
                panic!(
                    "pid did not answer Status on {} within {READY_DEADLINE:?}\n--- pid log ---\n{}",
                    self.socket.display(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("daemon is not running")
    }

    fn signal(&self, signal: Signal) {
        let child = self.child.as_ref().expect("daemon is not running");
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
        kill(pid, signal).expect("signal the daemon");
    }

    /// The temporary directory holding config, socket, store, key file and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn enckey_path(&self) -> PathBuf {
        self.enckey.clone()
    }

    /// The store's directory (`state_dir`).
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir.clone()
    }

    /// Everything the daemon wrote to stdout and stderr, over all its starts.
    pub fn log(&self) -> String {
        fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// A blocking client, the one `pam_pi` and `pictl` use.
    pub fn client(&self) -> Client {
        Client::connect_with(
            &self.socket,
            Duration::from_secs(2),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("connect to {}: {e}", self.socket.display()))
    }

    /// `Request::Status` on a fresh connection, or `None` if the daemon does not answer it.
    pub fn status(&self) -> Option<StatusInfo> {
        let mut client = Client::connect_with(
            &self.socket,
            Duration::from_millis(200),
            Duration::from_secs(2),
        )
        .ok()?;
        match client.call(&Request::Status) {
            Ok(Response::Status(info)) => Some(info),
            _ => None,
        }
    }

    /// The process is alive and a new client gets an answer.
    pub fn assert_serving(&mut self) {
        if let Some(status) = self.child_mut().try_wait().expect("poll pid") {
            panic!("pid died with {status}\n--- pid log ---\n{}", self.log());
        }
        assert!(
            self.status().is_some(),
            "pid is running but does not answer Status\n--- pid log ---\n{}",
            self.log()
        );
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("poll pid").is_none(),
            None => false,
        }
    }

    /// SIGTERM and wait: the way systemd stops it.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        let started = Instant::now();
        loop {
            if let Some(status) = self.child_mut().try_wait().expect("poll pid") {
                self.child = None;
                return status;
            }
            if started.elapsed() > STOP_DEADLINE {
                let _ = self.child_mut().kill();
                let _ = self.child_mut().wait();
                self.child = None;
                panic!(
                    "pid ignored SIGTERM for {STOP_DEADLINE:?}\n--- pid log ---\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL: no shutdown code runs, only what is already on disk survives.
    pub fn kill9(&mut self) {
        let child = self.child_mut();
        let _ = child.kill();
        let _ = child.wait();
        self.child = None;
    }

    /// The running daemon's process id.
    pub fn process_id(&self) -> u32 {
        self.child
            .as_ref()
            .map(std::process::Child::id)
            .expect("the daemon is running")
    }

    /// Start again on the same config, store and key file (stops it first if it is running).
    pub fn restart(&mut self) {
        if self.is_running() {
            self.stop();
        }
        self.child = None;
        self.spawn();
    }

    /// `restart`, for a start that may be refused: `Err` holds the exit status and the log.
    pub fn try_restart(&mut self) -> Result<(), (ExitStatus, String)> {
        if self.is_running() {
            self.stop();
        }
        self.child = None;
        self.try_spawn().map_err(|status| (status, self.log()))
    }

    /// SIGSTOP: the socket still accepts connections but nobody answers — a hung daemon.
    pub fn freeze(&self) {
        self.signal(Signal::SIGSTOP);
    }

    pub fn thaw(&self) {
        self.signal(Signal::SIGCONT);
    }

    /// The config file as it is now.
    pub fn config_text(&self) -> String {
        fs::read_to_string(&self.config).expect("read the config")
    }

    /// Replace the config file with `text`, send SIGHUP, and wait until the daemon logged the
    /// outcome of that reload. Returns true if it took the new file, false if it refused it.
    pub fn reload_config(&self, text: &str) -> bool {
        fs::write(&self.config, text).expect("write the new config");
        let outcomes = |log: &str| {
            (
                log.matches("configuration reloaded").count(),
                log.matches("reload refused").count(),
            )
        };
        let before = outcomes(&self.log());
        self.signal(Signal::SIGHUP);
        let deadline = Instant::now() + STOP_DEADLINE;
        loop {
            let now = outcomes(&self.log());
            if now.0 > before.0 {
                return true;
            }
            if now.1 > before.1 {
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "no reload outcome logged:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `pictl ARGS` as root, with `PI_SOCKET` pointing at this daemon.
    pub fn pictl(&self, args: &[&str]) -> CmdOutput {
        self.pictl_as(Caller::Root, args, "")
    }

    pub fn pictl_as(&self, caller: Caller, args: &[&str], stdin: &str) -> CmdOutput {
        let mut cmd = caller.command(&bins::pictl());
        cmd.args(args)
            .env(protocol::paths::SOCKET_ENV, &self.socket);
        process::run(cmd, stdin.as_bytes())
    }

    /// `pictl --json ARGS` as root; the command must succeed and print one JSON document.
    pub fn pictl_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.pictl(&all);
        assert!(out.success(), "pictl {all:?} failed\n{}", out.describe());
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("pictl {all:?} printed no JSON ({e})\n{}", out.describe()))
    }

    /// `pictl --json token enroll ARGS`; returns the whole enrollment document.
    pub fn enroll(&self, args: &[&str]) -> Value {
        let mut all = vec!["token", "enroll"];
        all.extend_from_slice(args);
        self.pictl_json(&all)
    }

    /// Enroll an HOTP token with a known key; returns its serial.
    pub fn enroll_hotp(&self, user: &str, key_hex: &str, pin: Option<&str>) -> String {
        let mut args = vec!["hotp", "--user", user, "--otpkey", key_hex];
        if let Some(pin) = pin {
            args.extend_from_slice(&["--pin", pin]);
        }
        serial_of(&self.enroll(&args))
    }

    /// Enroll a TOTP token with a known key; returns its serial.
    pub fn enroll_totp(
        &self,
        user: &str,
        key_hex: &str,
        hash: &str,
        digits: u8,
        period: u32,
        pin: Option<&str>,
    ) -> String {
        let digits = digits.to_string();
        let period = period.to_string();
        let mut args = vec![
            "totp", "--user", user, "--otpkey", key_hex, "--hash", hash, "--digits", &digits,
            "--period", &period,
        ];
        if let Some(pin) = pin {
            args.extend_from_slice(&["--pin", pin]);
        }
        serial_of(&self.enroll(&args))
    }

    /// `pictl --json token list [--user U]` → the token objects.
    pub fn tokens(&self, user: Option<&str>) -> Vec<Value> {
        let mut args = vec!["token", "list"];
        if let Some(user) = user {
            args.extend_from_slice(&["--user", user]);
        }
        let doc = self.pictl_json(&args);
        doc["tokens"]
            .as_array()
            .unwrap_or_else(|| panic!("`token list` JSON has no \"tokens\" array: {doc}"))
            .clone()
    }

    /// One token by serial, from the listing.
    pub fn token(&self, serial: &str) -> Value {
        self.tokens(None)
            .into_iter()
            .find(|t| t["serial"] == serial)
            .unwrap_or_else(|| panic!("token {serial} is not in `token list`"))
    }

    /// The newest `limit` audit entries once one of them is `wanted`. An entry that no durable
    /// answer followed (a refusal, a lookup) reaches the trail within a second: this waits up to
    /// three; the entries as they are then if none was.
    pub fn audit_until(&self, limit: u32, wanted: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let entries = self.audit(limit);
            if entries.iter().any(&wanted) || Instant::now() > deadline {
                return entries;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `pictl --json audit show --limit N` → the entries, newest first.
    pub fn audit(&self, limit: u32) -> Vec<Value> {
        let limit = limit.to_string();
        let doc = self.pictl_json(&["audit", "show", "--limit", &limit]);
        doc["entries"]
            .as_array()
            .unwrap_or_else(|| panic!("`audit show` JSON has no \"entries\" array: {doc}"))
            .clone()
    }
}

/// The serial of an enrollment document.
pub fn serial_of(enrolled: &Value) -> String {
    enrolled["serial"]
        .as_str()
        .unwrap_or_else(|| panic!("enrollment JSON has no \"serial\": {enrolled}"))
        .to_owned()
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A stopped (frozen) process still dies of SIGKILL.
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- pid log ({}) ---\n{}", self.log.display(), self.log());
        }
    }
}
