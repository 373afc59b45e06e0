//! LazyFS: a FUSE file system with its own page cache that, on command, drops every write not
//! yet made durable by `fsync`/`fdatasync` — what a power cut does to a disk — or tears a write
//! and dies. The power-cut tests put a daemon's state directory and key file on it.
//!
//! LazyFS is not a Debian package: `PI_LAZYFS_SRC` names an unpacked upstream source tree, which
//! `tests/lazyfs/build.sh` builds offline (once; later calls only print the binary's path).
//! Without `PI_LAZYFS_SRC` the power-cut tests are compiled as ignored, with a reason that says
//! so (see `tests/build.rs`), never as passed.
//!
//! What LazyFS does and does not simulate, as the tests rely on it:
//! - `lazyfs::clear-cache` drops data that was written but not synced; data an `fsync`,
//!   `fdatasync` or `O_DSYNC` write reached is on the backing directory and stays.
//! - Metadata (create, rename, unlink) goes straight to the backing directory: a rename whose
//!   directory was never synced is not lost, as it could be on a real disk.
//! - Fault commands name files by their path in the backing directory ([`LazyFs::fault_path`]),
//!   and LazyFS reads at most 100 bytes per command: the backing directory is a short
//!   `/tmp/lzXXXXX`, so that a journal file's path fits.
//! - After a torn write LazyFS kills itself; the mount must be unmounted and mounted again.

use crate::process::{self, COMMAND_DEADLINE};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The environment variable naming the LazyFS source tree.
pub const SOURCE_ENV: &str = "PI_LAZYFS_SRC";
/// LazyFS reads its fault fifo in chunks of this many bytes, the last one read standing for the
/// newline: a longer command is cut in two.
const MAX_COMMAND: usize = 100;
/// How long mounting, a fault command's acknowledgment or a crash may take.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// LazyFS's page cache. Writes that find it full go straight to the backing directory and can
/// no longer be lost, which would make the test weaker without saying so: it must hold every
/// page the daemon writes in a run (journal files are recycled in place, so this is a few
/// tens of MiB), and [`LazyFs::assert_cache_not_full`] checks that it did.
const CACHE_SIZE: &str = "256mb";

/// The LazyFS binary built from `PI_LAZYFS_SRC` (built now if needed, which takes about a
/// minute the first time).
pub fn binary() -> PathBuf {
    let source = std::env::var_os(SOURCE_ENV).unwrap_or_else(|| {
        panic!(
            "{SOURCE_ENV} is unset: point it at an unpacked LazyFS source tree \
             (docs/testing.md, \"Power cuts\")"
        )
    });
    let script = crate::bins::workspace_root().join("tests/lazyfs/build.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script).arg(&source);
    // Building takes longer than an ordinary command may.
    let out = process::run_with_deadline(cmd, b"", Duration::from_secs(900));
    assert!(
        out.success(),
        "building LazyFS from {SOURCE_ENV}={} failed\n{}",
        Path::new(&source).display(),
        out.describe()
    );
    let path = PathBuf::from(out.stdout.lines().last().unwrap_or_default().trim());
    assert!(
        path.is_file(),
        "tests/lazyfs/build.sh printed no binary path\n{}",
        out.describe()
    );
    path
}

/// A mounted LazyFS over a private backing directory, unmounted when dropped.
pub struct LazyFs {
    /// Config, fifos, log and mount point.
    dir: TempDir,
    /// Where the files really are.
    backing: TempDir,
    binary: PathBuf,
    child: Option<Child>,
    /// The "completed" fifo, open for reading and writing: LazyFS opens it for writing and
    /// blocks until a reader exists, and an `O_RDWR` descriptor never blocks its opener.
    completed: File,
}

impl LazyFs {
    /// Build (if needed) and mount.
    pub fn mount() -> LazyFs {
        let binary = binary();
        // LazyFS ignores a `--config-path` whose value contains "-o" in any case (it takes it
        // for a FUSE option) and looks for config/default.toml instead: no dash before the
        // random part, and a check.
        let dir = tempfile::Builder::new()
            .prefix("pi-test-lazyfs.")
            .tempdir()
            .expect("create LazyFS's temporary directory");
        assert!(
            !dir.path()
                .to_string_lossy()
                .to_ascii_lowercase()
                .contains("-o"),
            "LazyFS would ignore a config path with \"-o\" in it: {} (set TMPDIR elsewhere)",
            dir.path().display()
        );
        fs::create_dir(dir.path().join("mnt")).expect("create LazyFS's mount point");
        let backing = tempfile::Builder::new()
            .prefix("lz")
            .rand_bytes(5)
            .tempdir_in("/tmp")
            .expect("create LazyFS's backing directory");
        for fifo in ["faults.fifo", "completed.fifo"] {
            nix::unistd::mkfifo(
                &dir.path().join(fifo),
                nix::sys::stat::Mode::from_bits_truncate(0o600),
            )
            .expect("create LazyFS's fifos");
        }
        let config = format!(
            "[faults]\n\
             fifo_path = {faults:?}\n\
             fifo_path_completed = {completed:?}\n\
             [cache]\n\
             apply_eviction = false\n\
             [cache.simple]\n\
             custom_size = \"{CACHE_SIZE}\"\n\
             blocks_per_page = 1\n\
             [filesystem]\n\
             log_all_operations = false\n\
             logfile = \"\"\n",
            faults = dir.path().join("faults.fifo").display().to_string(),
            completed = dir.path().join("completed.fifo").display().to_string(),
        );
        fs::write(dir.path().join("config.toml"), config).expect("write LazyFS's config");
        let completed = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(o_nonblock())
            .open(dir.path().join("completed.fifo"))
            .expect("open LazyFS's completed fifo");
        let mut lazyfs = LazyFs {
            dir,
            backing,
            binary,
            child: None,
            completed,
        };
        lazyfs.spawn();
        lazyfs
    }

    /// The mount point: put the files under test here.
    pub fn mount_point(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// Where the files really are.
    pub fn backing(&self) -> PathBuf {
        self.backing.path().to_path_buf()
    }

    /// How fault commands name a file below the mount point: by its backing path.
    pub fn fault_path(&self, in_mount: &Path) -> String {
        let relative = in_mount
            .strip_prefix(self.mount_point())
            .unwrap_or_else(|_| panic!("{} is not below the mount", in_mount.display()));
        self.backing().join(relative).display().to_string()
    }

    /// Everything LazyFS printed, over all its mounts.
    pub fn log(&self) -> String {
        fs::read(self.dir.path().join("lazyfs.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "LazyFS is already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("lazyfs.log"))
            .expect("open LazyFS's log");
        let log2 = log.try_clone().expect("clone the log handle");
        let child = Command::new(&self.binary)
            .arg(self.mount_point())
            .arg("--config-path")
            .arg(self.dir.path().join("config.toml"))
            .arg("-o")
            .arg("modules=subdir")
            .arg("-o")
            .arg(format!("subdir={}", self.backing().display()))
            .arg("-f")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.binary.display()));
        self.child = Some(child);
        let started = Instant::now();
        while !self.is_mounted() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok())
                .flatten()
            {
                panic!(
                    "LazyFS exited with {status} before mounting\n{}",
                    self.log()
                );
            }
            assert!(
                started.elapsed() < DEADLINE,
                "LazyFS did not mount within {DEADLINE:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn is_mounted(&self) -> bool {
        let mnt = format!(" {} fuse", self.mount_point().display());
        fs::read_to_string("/proc/mounts")
            .map(|m| m.lines().any(|l| l.contains(&mnt)))
            .unwrap_or(false)
    }

    /// Send one command line to LazyFS's fault fifo.
    fn send(&self, command: &str) {
        assert!(
            command.len() < MAX_COMMAND,
            "LazyFS would cut this {}-byte command in two: {command}",
            command.len()
        );
        let path = self.dir.path().join("faults.fifo");
        let started = Instant::now();
        // LazyFS opens the fifo once its fault thread runs; until then a non-blocking writer
        // gets ENXIO.
        let mut fifo = loop {
            match OpenOptions::new()
                .write(true)
                .custom_flags(o_nonblock())
                .open(&path)
            {
                Ok(f) => break f,
                Err(_) if started.elapsed() < DEADLINE => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("open {}: {e}\n{}", path.display(), self.log()),
            }
        };
        fifo.write_all(format!("{command}\n").as_bytes())
            .unwrap_or_else(|e| panic!("send {command:?} to LazyFS: {e}"));
    }

    /// `lazyfs::clear-cache`: every write not yet synced is gone, as after a power cut. Returns
    /// once LazyFS confirms it.
    pub fn clear_cache(&mut self) {
        self.assert_running("clear the cache");
        self.send("lazyfs::clear-cache");
        let line = self.read_completed();
        assert_eq!(
            line,
            "finished::clear-cache",
            "LazyFS confirmed something else\n{}",
            self.log()
        );
    }

    fn read_completed(&mut self) -> String {
        let started = Instant::now();
        let mut line = Vec::new();
        loop {
            let left = DEADLINE.saturating_sub(started.elapsed());
            assert!(
                !left.is_zero(),
                "LazyFS did not confirm within {DEADLINE:?}\n{}",
                self.log()
            );
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.completed.as_fd(), PollFlags::POLLIN)];
            let ready = poll(&mut fds, PollTimeout::from(ms)).expect("poll LazyFS's fifo");
            if ready == 0 {
                continue;
            }
            let mut byte = [0u8; 1];
            match self.completed.read(&mut byte) {
                Ok(1) if byte[0] == b'\n' => {
                    return String::from_utf8_lossy(&line).trim().to_owned()
                }
                Ok(1) => line.push(byte[0]),
                Ok(_) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("read LazyFS's completed fifo: {e}"),
            }
        }
    }

    /// Arm a fault (`lazyfs::torn-op::…`, `lazyfs::torn-seq::…`) and wait until LazyFS says it
    /// took it; a command it calls invalid fails the test.
    pub fn arm(&mut self, command: &str) {
        self.assert_running("arm a fault");
        let before = self.log().len();
        self.send(command);
        let started = Instant::now();
        loop {
            let log = self.log();
            let new = log.get(before..).unwrap_or_default();
            if new.contains(&format!("configured successfully '{command}")) {
                return;
            }
            assert!(
                !new.contains("INVALID"),
                "LazyFS refused {command:?}\n{new}"
            );
            assert!(
                started.elapsed() < DEADLINE,
                "LazyFS did not acknowledge {command:?} within {DEADLINE:?}\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the LazyFS process is still alive (it kills itself after a torn write).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("poll LazyFS").is_none(),
            None => false,
        }
    }

    fn assert_running(&mut self, what: &str) {
        assert!(
            self.is_running(),
            "cannot {what}: LazyFS is not running\n{}",
            self.log()
        );
    }

    /// Wait until LazyFS has killed itself (an armed fault fired); false if it is still running
    /// after `deadline`.
    pub fn wait_for_crash(&mut self, deadline: Duration) -> bool {
        let started = Instant::now();
        while self.is_running() {
            if started.elapsed() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Unmount (also a mount whose LazyFS died) and mount again over the same backing directory.
    pub fn remount(&mut self) {
        self.unmount();
        self.spawn();
    }

    fn unmount(&mut self) {
        if self.is_mounted() {
            let mut cmd = Command::new("fusermount3");
            cmd.arg("-u").arg(self.mount_point());
            let out = process::run(cmd, b"");
            if !out.success() {
                // Busy or already dead: detach it lazily, nothing may keep the test waiting.
                let mut cmd = Command::new("fusermount3");
                cmd.arg("-uz").arg(self.mount_point());
                let lazy = process::run(cmd, b"");
                assert!(
                    lazy.success(),
                    "fusermount3 -u failed\n{}\n{}",
                    out.describe(),
                    lazy.describe()
                );
            }
        }
        if let Some(mut child) = self.child.take() {
            let started = Instant::now();
            // A clean unmount ends LazyFS (with an abort of its fault thread: harmless, the
            // data is on the backing directory by then).
            while matches!(child.try_wait(), Ok(None)) {
                if started.elapsed() > COMMAND_DEADLINE {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// `lazyfs::display-cache-usage` says the cache never filled up (once full, writes would go
    /// straight to the backing directory and could no longer be lost).
    pub fn assert_cache_not_full(&mut self) {
        self.assert_running("read the cache usage");
        let before = self.log().len();
        self.send("lazyfs::display-cache-usage");
        let started = Instant::now();
        loop {
            let log = self.log();
            let new = log.get(before..).unwrap_or_default().to_owned();
            let usage = new.lines().find_map(|l| {
                let (_, tail) = l.split_once("cache usage (%pages) is ")?;
                tail.trim().trim_end_matches('%').parse::<f64>().ok()
            });
            if let Some(percent) = usage {
                assert!(
                    percent < 100.0,
                    "LazyFS's cache filled up ({percent}%): raise CACHE_SIZE in tests/src/lazyfs.rs"
                );
                return;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "LazyFS did not report its cache usage\n{new}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `O_NONBLOCK` for `OpenOptionsExt::custom_flags`.
fn o_nonblock() -> i32 {
    nix::fcntl::OFlag::O_NONBLOCK.bits()
}

impl Drop for LazyFs {
    fn drop(&mut self) {
        self.unmount();
        if std::thread::panicking() {
            eprintln!("--- LazyFS log ---\n{}", self.log());
        }
    }
}
