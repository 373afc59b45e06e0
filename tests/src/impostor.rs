//! `pi-impostor` run as uid 65534 on a socket in a directory it owns: what any local user could
//! do if pam_pi or pictl trusted whatever answers on a socket.

use crate::bins;
use crate::process::Caller;
use crate::NOBODY_UID;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub struct Impostor {
    _dir: TempDir,
    socket: PathBuf,
    log: PathBuf,
    child: Child,
}

impl Impostor {
    /// Start it and wait until it accepts connections.
    pub fn start() -> Impostor {
        let dir = crate::reachable_tempdir("pi-test-impostor-");
        // The directory the impostor owns, as an attacker owns their home or /tmp files.
        let run = dir.path().join("run");
        fs::create_dir(&run).expect("create the impostor's directory");
        std::os::unix::fs::chown(&run, Some(NOBODY_UID), Some(NOBODY_UID))
            .expect("give the directory to nobody");
        let socket = run.join("pid.sock");
        let log = run.join("requests.log");
        let child = Caller::Nobody
            .command(&bins::impostor())
            .arg(&socket)
            .arg(&log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start pi-impostor");
        let impostor = Impostor {
            _dir: dir,
            socket,
            log,
            child,
        };
        impostor.wait_listening();
        impostor
    }

    fn wait_listening(&self) {
        let started = Instant::now();
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "pi-impostor does not listen on {}",
                self.socket.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The kinds of request it received (`AuthBegin`, `Admin` …), in order. Connections the
    /// harness made to see whether it listens sent nothing.
    pub fn requests(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Impostor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
