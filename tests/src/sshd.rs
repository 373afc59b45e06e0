//! A real OpenSSH `sshd` on 127.0.0.1 for the SSH key tests: private config, host key, PAM service
//! and log in a temporary directory, started as a child on a free port and killed when the test
//! ends. Public keys come from `pictl ssh keys` through `AuthorizedKeysCommand`; the PAM stack
//! (`keyboard-interactive`) is `libpam_pi.so` through libpam_wrapper. Nothing under `/etc` is
//! read or changed.
//!
//! Two constraints of sshd shape this harness:
//! - sshd refuses an `AuthorizedKeysCommand` unless the program and every parent directory are
//!   root-owned and not group/world-writable, so `/tmp` is out: the command lives in a private
//!   directory under [`AKC_PARENT`].
//! - OpenSSH 9.2 has no `PAMServiceName`: the PAM service is the basename of sshd's argv[0], so
//!   sshd runs through a symlink named after the service.

use crate::bins;
use crate::daemon::{serial_of, Daemon};
use crate::pam::pam_wrapper_lock;
use crate::process::{self, Caller, CmdOutput};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub const SSHD: &str = "/usr/sbin/sshd";
/// Root-owned 0755 parent of the per-test `AuthorizedKeysCommand` directories (outside `/tmp`,
/// whose sticky world-writable mode sshd rejects).
pub const AKC_PARENT: &str = "/var/lib/pi-tests";
/// sshd's privilege separation directory (Debian's build); it refuses to start without it.
pub const PRIVSEP_DIR: &str = "/run/sshd";
/// How long sshd may take to listen.
pub const READY_DEADLINE: Duration = Duration::from_secs(15);
/// How long one `ssh` login may take before it is killed and the test fails: a hang is a bug
/// (sshd waiting on a hung key command or PAM module), not a reason to block CI.
pub const LOGIN_DEADLINE: Duration = Duration::from_secs(20);
/// What the remote command prints: seeing it proves a session was opened.
pub const REMOTE_OK: &str = "REMOTE-OK";

/// Distinct per `Sshd` within this process; the process id separates test processes, so two
/// servers never share a PAM service name (see `pam::pam_wrapper_lock`).
fn next_service_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "pi-sshd-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A path inside single quotes for a `/bin/sh` script.
fn sh_quote(path: &Path) -> String {
    let text = path.display().to_string();
    assert!(
        !text.contains('\''),
        "path {text} contains a single quote; run the suite from another directory"
    );
    format!("'{text}'")
}

/// `AKC_PARENT`, created root-owned 0755 if missing; a directory there that sshd would reject
/// fails the test with what to fix.
fn akc_parent() -> PathBuf {
    let parent = PathBuf::from(AKC_PARENT);
    fs::create_dir_all(&parent).unwrap_or_else(|e| panic!("create {AKC_PARENT}: {e}"));
    let meta = fs::metadata(&parent).unwrap_or_else(|e| panic!("stat {AKC_PARENT}: {e}"));
    assert!(
        meta.uid() == 0,
        "{AKC_PARENT} is not owned by root, so sshd will not run a command below it: \
         chown root:root {AKC_PARENT} (or remove it)"
    );
    if meta.mode() & 0o022 != 0 {
        fs::set_permissions(&parent, fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod 0755 {AKC_PARENT}: {e}"));
    }
    parent
}

/// sshd's `AuthorizedKeysCommand` for one daemon: a root-owned 0755 script in a root-owned 0755
/// directory under [`AKC_PARENT`] that runs `pictl --socket SOCKET ssh keys "$1"`, exactly as
/// `AuthorizedKeysCommand /usr/bin/pictl ssh keys %u` would. Removed on drop.
pub struct KeysCommand {
    dir: TempDir,
    script: PathBuf,
}

impl KeysCommand {
    pub fn new(daemon: &Daemon) -> KeysCommand {
        KeysCommand::for_socket(daemon.socket())
    }

    pub fn for_socket(socket: &Path) -> KeysCommand {
        let dir = tempfile::Builder::new()
            .prefix("akc-")
            .tempdir_in(akc_parent())
            .unwrap_or_else(|e| panic!("create a directory under {AKC_PARENT}: {e}"));
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .expect("chmod the AuthorizedKeysCommand directory");
        let script = dir.path().join("keys");
        let text = format!(
            "#!/bin/sh\n\
             # sshd's AuthorizedKeysCommand for one test daemon: the keys of login $1.\n\
             exec {pictl} --socket {socket} ssh keys \"$1\"\n",
            pictl = sh_quote(&bins::pictl()),
            socket = sh_quote(socket),
        );
        fs::write(&script, text).expect("write the AuthorizedKeysCommand script");
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755))
            .expect("chmod the AuthorizedKeysCommand script");
        KeysCommand { dir, script }
    }

    /// The script's absolute path.
    pub fn path(&self) -> &Path {
        &self.script
    }

    /// The directory holding the script.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Run the script for `login` the way sshd does with `AuthorizedKeysCommandUser nobody`:
    /// as uid 65534, with a minimal environment.
    pub fn run(&self, login: &str) -> CmdOutput {
        let mut cmd = Caller::Nobody.command(&self.script);
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .arg(login);
        process::run(cmd, b"")
    }
}

/// An SSH key pair made by `ssh-keygen` (no passphrase).
#[derive(Clone, Debug)]
pub struct SshKey {
    pub private: PathBuf,
    pub public: PathBuf,
}

impl SshKey {
    /// `ssh-keygen -q -N '' -C pi-test-NAME -f DIR/NAME KEYGEN_ARGS` (e.g. `-t ed25519`).
    pub fn generate(dir: &Path, name: &str, keygen_args: &[&str]) -> SshKey {
        let private = dir.join(name);
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-N", ""])
            .arg("-C")
            .arg(format!("pi-test-{name}"))
            .arg("-f")
            .arg(&private)
            .args(keygen_args);
        let out = process::run(cmd, b"");
        assert!(
            out.success(),
            "ssh-keygen {keygen_args:?} failed (apt-get install openssh-client)\n{}",
            out.describe()
        );
        SshKey {
            public: dir.join(format!("{name}.pub")),
            private,
        }
    }

    /// The `authorized_keys` line: `TYPE BASE64 COMMENT`.
    pub fn line(&self) -> String {
        fs::read_to_string(&self.public)
            .unwrap_or_else(|e| panic!("read {}: {e}", self.public.display()))
            .trim()
            .to_owned()
    }

    /// `TYPE BASE64` without the comment: what identifies the key.
    pub fn type_and_blob(&self) -> String {
        type_and_blob(&self.line())
            .unwrap_or_else(|| panic!("{} is not a public key line", self.public.display()))
    }

    /// `SHA256:…` as `ssh-keygen -lf` prints it: the oracle for the daemon's fingerprint.
    pub fn fingerprint(&self) -> String {
        fingerprint_of(&self.public)
    }
}

/// `TYPE BASE64` of an `authorized_keys` line (without options), `None` if it has fewer fields.
pub fn type_and_blob(line: &str) -> Option<String> {
    let mut fields = line.split_whitespace();
    let key_type = fields.next()?;
    let blob = fields.next()?;
    Some(format!("{key_type} {blob}"))
}

/// The SHA256 fingerprint of a public key file, by `ssh-keygen -l -E sha256 -f`.
pub fn fingerprint_of(public: &Path) -> String {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-l", "-E", "sha256", "-f"]).arg(public);
    let out = process::run(cmd, b"");
    assert!(
        out.success(),
        "ssh-keygen -lf {} failed\n{}",
        public.display(),
        out.describe()
    );
    out.stdout
        .split_whitespace()
        .nth(1)
        .filter(|f| f.starts_with("SHA256:"))
        .unwrap_or_else(|| panic!("no SHA256 fingerprint in\n{}", out.describe()))
        .to_owned()
}

/// `pictl --json token enroll sshkey --user USER --sshkey LINE`; returns the serial.
pub fn enroll_sshkey(daemon: &Daemon, user: &str, key: &SshKey) -> String {
    serial_of(&daemon.enroll(&["sshkey", "--user", user, "--sshkey", &key.line()]))
}

/// `pictl machine attach SERIAL --app ssh --user LOGIN` (this host); must succeed.
pub fn attach_ssh(daemon: &Daemon, serial: &str, login: &str) {
    let args = ["machine", "attach", serial, "--app", "ssh", "--user", login];
    let out = daemon.pictl(&args);
    assert!(out.success(), "pictl {args:?} failed\n{}", out.describe());
}

/// `pictl ssh keys LOGIN` as `caller`.
pub fn ssh_keys(daemon: &Daemon, caller: Caller, login: &str) -> CmdOutput {
    daemon.pictl_as(caller, &["ssh", "keys", login], "")
}

/// The directives of Debian 12's shipped `/etc/ssh/sshd_config` (openssh-server 9.2), without
/// its `Include /etc/ssh/sshd_config.d/*.conf`, which would read the host's files: what an
/// admin starts from. Everything else is OpenSSH's default (`PasswordAuthentication yes`,
/// `PermitRootLogin prohibit-password`, `AuthorizedKeysFile .ssh/authorized_keys …`).
pub const DEBIAN_DEFAULT_CONFIG: &str = "KbdInteractiveAuthentication no\n\
                                         UsePAM yes\n\
                                         X11Forwarding yes\n\
                                         PrintMotd no\n\
                                         AcceptEnv LANG LC_*\n\
                                         Subsystem sftp /usr/lib/openssh/sftp-server\n";

/// What a server's `sshd_config` says beyond where it listens and logs.
#[derive(Clone, Debug)]
enum Settings {
    /// The harness's own configuration (keys only from `pictl ssh keys`).
    Harness(SshdOptions),
    /// Directives as an admin would write them; `{keys_command}` stands for this server's
    /// `AuthorizedKeysCommand` script, `{keys_dir}` for the root-owned directory it is in.
    Directives(String),
}

/// Settings of one server.
#[derive(Clone, Debug)]
pub struct SshdOptions {
    /// sshd's `AuthenticationMethods`, e.g. `publickey,keyboard-interactive`.
    pub authentication_methods: String,
}

impl Default for SshdOptions {
    fn default() -> Self {
        SshdOptions {
            authentication_methods: "publickey".into(),
        }
    }
}

pub struct Sshd {
    dir: TempDir,
    keys: KeysCommand,
    config: PathBuf,
    log: PathBuf,
    service: String,
    port: u16,
    child: Option<Child>,
}

impl Sshd {
    /// `AuthenticationMethods publickey`.
    pub fn start(daemon: &Daemon) -> Sshd {
        Sshd::start_with(daemon, SshdOptions::default())
    }

    pub fn start_with(daemon: &Daemon, opts: SshdOptions) -> Sshd {
        Sshd::for_socket(daemon.socket(), opts)
    }

    /// A server configured by `directives` (e.g. [`DEBIAN_DEFAULT_CONFIG`] and a recipe's
    /// lines) after the harness's `ListenAddress`, `Port`, `HostKey`, `PidFile` and
    /// `LogLevel VERBOSE` (which makes sshd log "Partial publickey"); `{keys_command}` stands for
    /// this server's `AuthorizedKeysCommand` script, `{keys_dir}` for the root-owned directory
    /// it is in. Its PAM service is
    /// `auth required pam_pi.so`: the recipe's `/etc/pam.d/sshd` with `common-auth` commented
    /// out.
    pub fn start_with_config(daemon: &Daemon, directives: &str) -> Sshd {
        Sshd::configured(daemon.socket(), Settings::Directives(directives.to_owned()))
    }

    /// A server whose key command and PAM module talk to the daemon at `socket`.
    pub fn for_socket(socket: &Path, opts: SshdOptions) -> Sshd {
        Sshd::configured(socket, Settings::Harness(opts))
    }

    fn configured(socket: &Path, settings: Settings) -> Sshd {
        assert!(
            Path::new(SSHD).is_file(),
            "{SSHD} not found: apt-get install openssh-server (tests/install-deps.sh does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("pi-test-sshd-")
            .tempdir()
            .expect("create sshd's temporary directory");
        let root = dir.path().to_path_buf();
        let keys = KeysCommand::for_socket(socket);
        SshKey::generate(&root, "hostkey", &["-t", "ed25519"]);

        // The PAM service, named after the symlink sshd runs as.
        let service = next_service_name();
        let svcdir = root.join("pam");
        fs::create_dir(&svcdir).expect("create the PAM service directory");
        fs::write(
            svcdir.join(&service),
            format!(
                "auth required {} socket={}\n\
                 account required pam_permit.so\n\
                 session required pam_permit.so\n\
                 password required pam_deny.so\n",
                bins::pam_pi().display(),
                socket.display()
            ),
        )
        .expect("write the PAM service file");
        std::os::unix::fs::symlink(SSHD, root.join(&service))
            .expect("symlink sshd under the PAM service's name");

        fs::create_dir_all(PRIVSEP_DIR).unwrap_or_else(|e| panic!("create {PRIVSEP_DIR}: {e}"));
        fs::set_permissions(PRIVSEP_DIR, fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {PRIVSEP_DIR}: {e}"));

        let mut sshd = Sshd {
            config: root.join("sshd_config"),
            log: root.join("sshd.log"),
            dir,
            keys,
            service,
            port: 0,
            child: None,
        };
        // A free port can be taken by another test between our probe and sshd's bind: retry.
        for attempt in 0..5 {
            sshd.port = crate::free_port();
            fs::write(&sshd.config, sshd.config_text(&settings)).expect("write sshd_config");
            sshd.check_config();
            if sshd.spawn() {
                return sshd;
            }
            eprintln!("sshd could not listen (attempt {attempt}); trying another port");
        }
        panic!("sshd did not start\n--- sshd log ---\n{}", sshd.log());
    }

    fn config_text(&self, settings: &Settings) -> String {
        let root = self.dir.path();
        let head = format!(
            "ListenAddress 127.0.0.1\n\
             Port {port}\n\
             HostKey {root}/hostkey\n\
             PidFile {root}/sshd.pid\n\
             LogLevel VERBOSE\n",
            port = self.port,
            root = root.display(),
        );
        let opts = match settings {
            Settings::Harness(opts) => opts,
            Settings::Directives(directives) => {
                return head
                    + &directives
                        .replace("{keys_command}", &self.keys.path().display().to_string())
                        .replace("{keys_dir}", &self.keys.dir().display().to_string());
            }
        };
        format!(
            "{head}\
             UsePAM yes\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication yes\n\
             AuthenticationMethods {methods}\n\
             AuthorizedKeysFile none\n\
             AuthorizedKeysCommand {akc} %u\n\
             AuthorizedKeysCommandUser nobody\n\
             PermitRootLogin yes\n\
             StrictModes no\n\
             PrintMotd no\n\
             X11Forwarding no\n",
            methods = opts.authentication_methods,
            akc = self.keys.path().display(),
        )
    }

    /// `sshd -t`: a config sshd refuses fails here with sshd's own words.
    fn check_config(&self) {
        let mut cmd = Command::new(SSHD);
        cmd.arg("-t").arg("-f").arg(&self.config);
        let out = process::run(cmd, b"");
        assert!(
            out.success(),
            "sshd -t rejects the generated config\n{}\n--- sshd_config ---\n{}",
            out.describe(),
            fs::read_to_string(&self.config).unwrap_or_default()
        );
    }

    /// Start sshd on the chosen port; false if it exited before listening (port taken).
    fn spawn(&mut self) -> bool {
        assert!(self.child.is_none(), "sshd already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open sshd's log");
        let log2 = log.try_clone().expect("clone the log handle");
        let from = self.log_len();
        // pam_wrapper picks its private directory when a wrapped process starts (see
        // `pam_wrapper_lock`); sshd re-executes itself per connection, so `login` holds the
        // lock too.
        let _wrapper = pam_wrapper_lock();
        // -D: stay our child; -e: log to stderr (our log file), not syslog.
        let child = Command::new(self.dir.path().join(&self.service))
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&self.config)
            .env("LD_PRELOAD", "libpam_wrapper.so")
            .env("PAM_WRAPPER", "1")
            .env("PAM_WRAPPER_SERVICE_DIR", self.dir.path().join("pam"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .expect("start sshd");
        self.child = Some(child);
        // Readiness from sshd's own "Server listening" line (logged after listen()), not from a
        // probe connection: every connection makes sshd re-execute itself under pam_wrapper.
        let listening = format!("Server listening on 127.0.0.1 port {}", self.port);
        let started = Instant::now();
        loop {
            if self.log_since(from).contains(&listening) {
                return true;
            }
            if let Some(_status) = self.child_mut().try_wait().expect("poll sshd") {
                self.child = None;
                return false;
            }
            if started.elapsed() > READY_DEADLINE {
                panic!(
                    "sshd did not listen on 127.0.0.1:{} within {READY_DEADLINE:?}\n\
                     --- sshd log ---\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("sshd is not running")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PAM service sshd runs (its argv[0] basename).
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The `AuthorizedKeysCommand` this server runs.
    pub fn keys_command(&self) -> &KeysCommand {
        &self.keys
    }

    /// The temporary directory (config, host key, log, PAM service), e.g. for user keys.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A fresh ed25519 user key in this server's directory.
    pub fn user_key(&self, name: &str) -> SshKey {
        SshKey::generate(self.dir.path(), name, &["-t", "ed25519"])
    }

    /// Everything sshd wrote, over all its starts.
    pub fn log(&self) -> String {
        self.log_since(0)
    }

    fn log_len(&self) -> u64 {
        fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    fn log_since(&self, from: u64) -> String {
        let bytes = fs::read(&self.log).unwrap_or_default();
        let from = usize::try_from(from).unwrap_or(usize::MAX).min(bytes.len());
        String::from_utf8_lossy(&bytes[from..]).into_owned()
    }

    /// `ssh USER@127.0.0.1 'echo REMOTE-OK'` with `key` only. With `answer`, keyboard-interactive
    /// prompts are answered with it (through `SSH_ASKPASS`, one prompt at most); without, the
    /// client runs in batch mode and never prompts.
    pub fn login(&self, key: &SshKey, user: &str, answer: Option<&str>) -> Outcome {
        self.login_with(Some(key), user, answer, &[])
    }

    /// `ssh USER@127.0.0.1 'echo REMOTE-OK'` with `key` if given, and without any public key
    /// (`PubkeyAuthentication=no`) if not; `answer` as for [`Sshd::login`]; `options` are
    /// further `-o` options (e.g. `PreferredAuthentications=password`).
    pub fn login_with(
        &self,
        key: Option<&SshKey>,
        user: &str,
        answer: Option<&str>,
        options: &[&str],
    ) -> Outcome {
        let root = self.dir.path();
        let prompts = root.join("askpass-prompts");
        let _ = fs::remove_file(&prompts);
        // `setsid -w`: no controlling terminal, so ssh cannot ask on a tty; it uses the askpass
        // program (`SSH_ASKPASS_REQUIRE=force`) or, in batch mode, gives up.
        let mut cmd = Command::new("setsid");
        cmd.arg("-w")
            .arg("ssh")
            .args(["-F", "/dev/null", "-n", "-p", &self.port.to_string()]);
        match key {
            Some(key) => {
                cmd.arg("-i").arg(&key.private);
            }
            None => {
                cmd.args(["-o", "PubkeyAuthentication=no"]);
            }
        }
        for option in options {
            cmd.arg("-o").arg(option);
        }
        cmd.args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "NumberOfPasswordPrompts=1",
        ]);
        match answer {
            Some(answer) => {
                let answer_file = root.join("askpass-answer");
                let askpass = root.join("askpass");
                fs::write(&answer_file, answer).expect("write the askpass answer");
                fs::set_permissions(&answer_file, fs::Permissions::from_mode(0o600))
                    .expect("chmod the askpass answer");
                fs::write(
                    &askpass,
                    format!(
                        "#!/bin/sh\n\
                         # ssh's askpass for one test: records the prompt, answers it.\n\
                         printf '%s\\n' \"$1\" >> {prompts}\n\
                         cat {answer}\n",
                        prompts = sh_quote(&prompts),
                        answer = sh_quote(&answer_file),
                    ),
                )
                .expect("write the askpass script");
                fs::set_permissions(&askpass, fs::Permissions::from_mode(0o700))
                    .expect("chmod the askpass script");
                cmd.args(["-o", "BatchMode=no"])
                    .env("SSH_ASKPASS", &askpass)
                    .env("SSH_ASKPASS_REQUIRE", "force")
                    .env_remove("DISPLAY");
            }
            None => {
                cmd.args(["-o", "BatchMode=yes"]);
            }
        }
        cmd.arg(format!("{user}@127.0.0.1"))
            .arg(format!("echo {REMOTE_OK}"));
        let from = self.log_len();
        let out = {
            let _wrapper = pam_wrapper_lock();
            process::run_with_deadline(cmd, b"", LOGIN_DEADLINE)
        };
        Outcome {
            out,
            prompts: fs::read_to_string(&prompts).unwrap_or_default(),
            sshd_log: self.log_since(from),
            answered: answer.is_some(),
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            let started = Instant::now();
            while matches!(child.try_wait(), Ok(None)) {
                if started.elapsed() > Duration::from_secs(5) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if std::thread::panicking() {
            eprintln!("--- sshd log ({}) ---\n{}", self.log.display(), self.log());
        }
    }
}

/// One finished `ssh` login.
#[derive(Debug)]
pub struct Outcome {
    pub out: CmdOutput,
    /// What the askpass program was asked, one prompt per line (empty without `answer`).
    pub prompts: String,
    /// What sshd logged during this login.
    pub sshd_log: String,
    answered: bool,
}

impl Outcome {
    /// For assertion messages.
    pub fn describe(&self) -> String {
        let prompts = if self.answered {
            format!("\n--- askpass prompts ---\n{}", self.prompts)
        } else {
            String::new()
        };
        format!(
            "{}{prompts}\n--- sshd log of this login ---\n{}",
            self.out.describe(),
            self.sshd_log
        )
    }

    /// ssh exited 0 and the remote command ran.
    pub fn logged_in(&self) -> bool {
        self.out.code() == 0 && self.out.stdout.contains(REMOTE_OK)
    }

    pub fn assert_logged_in(&self, why: &str) {
        assert!(
            self.logged_in(),
            "expected the ssh login to succeed: {why}\n{}",
            self.describe()
        );
    }

    /// sshd let `user` in, `method` completing the authentication ("Accepted password",
    /// "Accepted keyboard-interactive/pam" in its log), and a session was opened: for a login
    /// whose shell is `nologin`, like nobody's, the remote command cannot run, but nologin's
    /// message comes back over the session.
    pub fn assert_authenticated(&self, user: &str, method: &str, why: &str) {
        let accepted = format!("Accepted {method} for {user} ");
        assert!(
            self.sshd_log.contains(&accepted)
                && self.out.code() != 255
                && !self.out.stderr.contains("Permission denied")
                && (self.out.stdout.contains(REMOTE_OK)
                    || self
                        .out
                        .text()
                        .contains("This account is currently not available")),
            "expected sshd to let {user} in by {method}: {why}\n{}",
            self.describe()
        );
    }

    /// sshd was reached and refused authentication ("Permission denied", ssh's exit 255), as
    /// opposed to a connection failure or a crash, which would prove nothing.
    pub fn assert_denied(&self, why: &str) {
        assert!(
            self.out.code() == 255
                && !self.out.stdout.contains(REMOTE_OK)
                && self.out.stderr.contains("Permission denied"),
            "expected sshd to deny the login (\"Permission denied\", exit 255): {why}\n{}",
            self.describe()
        );
    }
}
