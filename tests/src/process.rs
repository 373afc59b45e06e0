//! Running a command with stdin, captured output and a deadline. A login that hangs is a bug the
//! suite must report, not a CI job that never ends.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long any single command may take before the test fails.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(30);

/// Who runs a command. The unprivileged caller is `nobody` (uid/gid 65534, no supplementary
/// groups), which exists on every Debian system: the suite never creates accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    Root,
    Nobody,
    /// A set-uid root program started by this uid, as `su` and `sudo` are: real uid `N`,
    /// effective uid 0. Not for a PAM application under libpam_wrapper (the dynamic linker
    /// ignores LD_PRELOAD when real and effective uid differ): see `Pam::return_code_as_su_by`.
    SetuidRootFor(u32),
}

impl Caller {
    /// A command that runs `program` as this caller.
    pub fn command(self, program: &Path) -> Command {
        match self {
            Caller::Root => Command::new(program),
            Caller::Nobody => {
                let mut cmd = Command::new("setpriv");
                cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
                cmd.arg(program);
                cmd
            }
            Caller::SetuidRootFor(uid) => {
                let mut cmd = Command::new("setpriv");
                cmd.arg(format!("--ruid={uid}")).arg("--").arg(program);
                cmd
            }
        }
    }
}

/// What a finished command left behind.
#[derive(Debug)]
pub struct CmdOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    /// The exit code; a death by signal is a crash and fails the test on the spot.
    pub fn code(&self) -> i32 {
        match self.status.code() {
            Some(code) => code,
            None => panic!(
                "command was killed by signal {:?} (a crash, not an answer)\n{}",
                self.status.signal(),
                self.describe()
            ),
        }
    }

    pub fn success(&self) -> bool {
        self.code() == 0
    }

    /// stdout and stderr together, for message checks that should not care which stream.
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// For assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Run `cmd` feeding `stdin`, capture both streams, and fail the test if it takes longer than
/// [`COMMAND_DEADLINE`].
pub fn run(cmd: Command, stdin: &[u8]) -> CmdOutput {
    run_with_deadline(cmd, stdin, COMMAND_DEADLINE)
}

pub fn run_with_deadline(mut cmd: Command, stdin: &[u8], deadline: Duration) -> CmdOutput {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e} (is the package installed?)"));
    let mut input = child.stdin.take().expect("stdin is piped");
    let stdin = stdin.to_vec();
    // The child may exit without reading its input; a broken pipe here is not an error.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let mut out = child.stdout.take().expect("stdout is piped");
    let mut err = child.stderr.take().expect("stderr is piped");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break (status, false);
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            break (child.wait().expect("wait for killed child"), true);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = writer.join();
    let output = CmdOutput {
        status,
        stdout: String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned(),
    };
    if timed_out {
        panic!(
            "{shown} did not finish within {deadline:?} and was killed\n{}",
            output.describe()
        );
    }
    output
}
