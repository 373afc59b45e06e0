//! Running `cryptsetup`: the only thing in pictl that changes a LUKS header.
//!
//! Invariants: a passphrase never reaches a file or an argument. The new key of `luksAddKey`
//! goes through a pipe that cryptsetup opens as `/dev/fd/N`; the key of `open` goes through
//! its stdin. The existing passphrase is cryptsetup's business: `--key-file` is passed through
//! or cryptsetup asks on the terminal itself. cryptsetup is found by absolute path, never
//! through a relative `PATH` entry, since pictl runs as root.

use super::Passphrase;
use crate::error::Error;
use crate::output::sanitize;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// cryptsetup's exit status for "No key available with this passphrase".
const EXIT_WRONG_PASSPHRASE: i32 = 2;

const READ_ADVICE: &str = "check that the device is readable (run as root)";
const KEY_ADVICE: &str = "the existing passphrase (--key-file, or typed when asked) must open \
     another key slot; `cryptsetup luksDump DEVICE` shows the slots";
const OPEN_ADVICE: &str = "run as root, and check that the name is not in use (`dmsetup ls`)";

/// Where a key slot's PBKDF settings come from: cryptsetup's defaults unless given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyOptions {
    /// The existing passphrase, in a file; `None`: cryptsetup asks on the terminal.
    pub key_file: Option<PathBuf>,
    pub pbkdf: Option<String>,
    pub pbkdf_force_iterations: Option<u32>,
}

/// The `cryptsetup` binary.
#[derive(Clone, Debug)]
pub struct Cryptsetup {
    path: PathBuf,
}

impl Cryptsetup {
    /// Look `cryptsetup` up in `PATH`, then in `/usr/sbin` and `/sbin` (a root shell without
    /// the sbin directories in `PATH` is common).
    pub fn find() -> Result<Cryptsetup, Error> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        find_in(&path)
            .map(|path| Cryptsetup { path })
            .ok_or_else(|| {
                Error::Failed("cryptsetup not found: apt-get install cryptsetup-bin".into())
            })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `cryptsetup isLuks DEV`.
    pub fn is_luks(&self, device: &Path) -> Result<bool, Error> {
        let out = self.run(self.plain().arg("isLuks").arg(device), "isLuks")?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(refused("isLuks", device, &out, READ_ADVICE)),
        }
    }

    /// The key slots that hold a key, from `cryptsetup luksDump DEV` (LUKS1 and LUKS2).
    pub fn used_slots(&self, device: &Path) -> Result<BTreeSet<u8>, Error> {
        let out = self.run(self.plain().arg("luksDump").arg(device), "luksDump")?;
        if !out.status.success() {
            return Err(refused("luksDump", device, &out, READ_ADVICE));
        }
        parse_used_slots(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| {
            Error::Failed(format!(
                "cannot find the key slots in the output of `cryptsetup luksDump {}`: this \
                 cryptsetup ({}) prints a format pictl does not know; report it, and add the \
                 key with cryptsetup by hand meanwhile",
                shown(device),
                self.path.display()
            ))
        })
    }

    /// `cryptsetup luksKillSlot [--key-file K] DEV SLOT`: cryptsetup itself checks that the
    /// existing passphrase opens another slot.
    pub fn kill_slot(&self, device: &Path, slot: u8, key_file: Option<&Path>) -> Result<(), Error> {
        let mut cmd = self.interactive(key_file);
        cmd.arg("luksKillSlot").arg(device).arg(slot.to_string());
        let out = self.run(&mut cmd, "luksKillSlot")?;
        if out.status.success() {
            Ok(())
        } else {
            Err(refused("luksKillSlot", device, &out, KEY_ADVICE))
        }
    }

    /// `cryptsetup luksAddKey --key-slot=N [options] DEV /dev/fd/K`, the new passphrase in
    /// the pipe behind K.
    pub fn add_key(
        &self,
        device: &Path,
        slot: u8,
        passphrase: &Passphrase,
        options: &KeyOptions,
    ) -> Result<(), Error> {
        let pipe_failed = |e: nix::Error| {
            Error::Failed(format!(
                "cannot create a pipe for the new passphrase: {e}; check the process's open \
                 file limit (`ulimit -n`)"
            ))
        };
        // Close-on-exec from the start: no other child may inherit either end.
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(pipe_failed)?;
        // The passphrase (at most 103 bytes) fits the pipe buffer: write it all, then close
        // the write end so cryptsetup sees the end of the key.
        std::fs::File::from(write)
            .write_all(passphrase)
            .map_err(|e| {
                Error::Failed(format!("cannot write the new passphrase to a pipe: {e}"))
            })?;
        // Only the read end is handed to cryptsetup; pictl is single-threaded, and the end is
        // closed right after the spawn.
        fcntl(read.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty())).map_err(pipe_failed)?;
        let key = format!("/dev/fd/{}", read.as_raw_fd());
        let mut cmd = self.interactive(options.key_file.as_deref());
        cmd.arg("luksAddKey").arg(format!("--key-slot={slot}"));
        if let Some(pbkdf) = &options.pbkdf {
            cmd.arg(format!("--pbkdf={pbkdf}"));
        }
        if let Some(n) = options.pbkdf_force_iterations {
            cmd.arg(format!("--pbkdf-force-iterations={n}"));
        }
        cmd.arg(device).arg(&key);
        let out = self.run(&mut cmd, "luksAddKey");
        drop(read);
        let out = out?;
        if out.status.success() {
            Ok(())
        } else {
            Err(refused("luksAddKey", device, &out, KEY_ADVICE))
        }
    }

    /// `cryptsetup open --key-file - DEV NAME`, or with `name: None` only
    /// `open --test-passphrase`. `Ok(false)`: the passphrase opens no key slot.
    pub fn open(
        &self,
        device: &Path,
        name: Option<&str>,
        passphrase: &Passphrase,
    ) -> Result<bool, Error> {
        let mut cmd = Command::new(&self.path);
        cmd.arg("open");
        if name.is_none() {
            cmd.arg("--test-passphrase");
        }
        cmd.args(["--key-file", "-"]).arg(device);
        if let Some(name) = name {
            cmd.arg(name);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| self.not_run("open", e))?;
        if let Some(mut stdin) = child.stdin.take() {
            // cryptsetup may exit without reading (e.g. a busy name); its status tells why.
            let _ = stdin.write_all(passphrase);
        }
        let out = child
            .wait_with_output()
            .map_err(|e| self.not_run("open", e))?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(EXIT_WRONG_PASSPHRASE) => Ok(false),
            _ => Err(refused("open", device, &out, OPEN_ADVICE)),
        }
    }

    /// A command whose output pictl reads: untranslated, no terminal.
    fn plain(&self) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.env("LC_ALL", "C").stdin(Stdio::null());
        cmd
    }

    /// A command that may ask for the existing passphrase on the terminal.
    fn interactive(&self, key_file: Option<&Path>) -> Command {
        let mut cmd = Command::new(&self.path);
        match key_file {
            Some(path) => {
                cmd.arg("--key-file").arg(path).stdin(Stdio::null());
            }
            None => {
                cmd.stdin(Stdio::inherit());
            }
        }
        cmd
    }

    fn run(&self, cmd: &mut Command, what: &str) -> Result<Output, Error> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.output().map_err(|e| self.not_run(what, e))
    }

    fn not_run(&self, what: &str, e: std::io::Error) -> Error {
        Error::Failed(format!(
            "cannot run `{} {what}`: {e}; reinstall it with apt-get install cryptsetup-bin",
            self.path.display()
        ))
    }
}

fn refused(what: &str, device: &Path, out: &Output, advice: &str) -> Error {
    Error::Failed(format!(
        "`cryptsetup {what} {}` failed ({}){}; {advice}",
        shown(device),
        out.status,
        said(out),
    ))
}

/// `: what cryptsetup printed`, one line, or nothing.
fn said(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| sanitize(l).into_owned())
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!(": {}", lines.join(" "))
    }
}

fn shown(device: &Path) -> String {
    sanitize(&device.display().to_string()).into_owned()
}

/// The first executable `cryptsetup` in the absolute directories of `path`, then in the sbin
/// directories. Relative entries are skipped: as root, `.` in `PATH` would run whatever
/// `cryptsetup` the current directory holds.
pub fn find_in(path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join("cryptsetup"))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// The slots holding a key in a `cryptsetup luksDump` text. LUKS1 lists `Key Slot N:
/// ENABLED`; LUKS2 lists the used slots as `  N: luks2` under `Keyslots:`. `None` when the
/// text is not a dump at all.
pub fn parse_used_slots(dump: &str) -> Option<BTreeSet<u8>> {
    let mut slots = BTreeSet::new();
    let mut is_dump = false;
    let mut in_keyslots = false;
    for line in dump.lines() {
        if let Some(version) = line.strip_prefix("Version:") {
            is_dump |= matches!(version.trim(), "1" | "2");
            continue;
        }
        if let Some(rest) = line.strip_prefix("Key Slot ") {
            let (n, state) = rest.split_once(':')?;
            if state.trim() == "ENABLED" {
                slots.insert(n.trim().parse().ok()?);
            }
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            in_keyslots = line.trim_end() == "Keyslots:";
            continue;
        }
        if !in_keyslots {
            continue;
        }
        // A slot's own line is indented by two spaces; its properties by a tab.
        if let Some(rest) = line.strip_prefix("  ") {
            if let Some((n, _)) = rest.split_once(':') {
                if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                    slots.insert(n.parse().ok()?);
                }
            }
        }
    }
    is_dump.then_some(slots)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cryptsetup luksDump` (2.6.1) of a LUKS2 image with keys in slots 0 and 3.
    const LUKS2_DUMP: &str = "LUKS header information
Version:       \t2
Epoch:         \t4
Metadata area: \t16384 [bytes]
Keyslots area: \t16744448 [bytes]
UUID:          \t939df899-2b33-4bae-8c43-fbf6eea6459a
Label:         \t(no label)
Subsystem:     \t(no subsystem)
Flags:       \t(no flags)

Data segments:
  0: crypt
\toffset: 16777216 [bytes]
\tlength: (whole device)
\tcipher: aes-xts-plain64
\tsector: 4096 [bytes]

Keyslots:
  0: luks2
\tKey:        512 bits
\tPriority:   normal
\tPBKDF:      pbkdf2
\tSalt:       8a a8 9c 60 1e 28 2b 24 19 e3 19 cf 7c 7b dc c5 
\t            0c 12 4a 9f 87 1e 66 b7 f3 94 1c ed 66 d4 fc 15 
\tDigest ID:  0
  3: luks2
\tKey:        512 bits
\tArea offset:290816 [bytes]
\tDigest ID:  0
Tokens:
  7: privacyidea-test
\tKeyslot:    1
Digests:
  0: pbkdf2
\tHash:       sha256
";

    /// `cryptsetup luksDump` (2.6.1) of a LUKS1 image with keys in slots 0 and 2.
    const LUKS1_DUMP: &str = "LUKS header information for img1

Version:       \t1
Cipher name:   \taes
MK iterations: \t1000
UUID:          \t6ae53ed5-3d97-4e26-b1cc-0a9842f082e7

Key Slot 0: ENABLED
\tIterations:         \t1000
\tKey material offset:\t8
Key Slot 1: DISABLED
Key Slot 2: ENABLED
\tIterations:         \t1000
Key Slot 3: DISABLED
Key Slot 4: DISABLED
Key Slot 5: DISABLED
Key Slot 6: DISABLED
Key Slot 7: DISABLED
";

    #[test]
    fn luks2_slots_are_read_from_the_keyslots_section_only() {
        let slots = parse_used_slots(LUKS2_DUMP).unwrap();
        assert_eq!(slots.into_iter().collect::<Vec<_>>(), [0, 3]);
    }

    #[test]
    fn luks1_slots_are_the_enabled_ones() {
        let slots = parse_used_slots(LUKS1_DUMP).unwrap();
        assert_eq!(slots.into_iter().collect::<Vec<_>>(), [0, 2]);
    }

    #[test]
    fn text_that_is_not_a_dump_is_none() {
        assert_eq!(parse_used_slots(""), None);
        assert_eq!(
            parse_used_slots("Device img is not a valid LUKS device.\n"),
            None
        );
        assert_eq!(
            parse_used_slots("Version: 3\nKeyslots:\n  0: luks3\n"),
            None
        );
    }

    #[test]
    fn an_unbound_luks2_keyslot_counts_as_used() {
        let dump = "Version: 2\nKeyslots:\n  5: luks2 (unbound)\n\tKey: 512 bits\nTokens:\n";
        assert_eq!(
            parse_used_slots(dump)
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            [5]
        );
    }

    #[test]
    fn cryptsetup_is_found_only_in_absolute_directories() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("cryptsetup");
        std::fs::write(&fake, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths([dir.path()]).unwrap();
        assert_eq!(find_in(&path), Some(fake.clone()));
        // Not executable: skipped.
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_ne!(find_in(&path), Some(fake.clone()));
        // A relative entry is never searched.
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let relative = OsStr::new("relative-dir-that-does-not-exist");
        if let Some(found) = find_in(relative) {
            assert!(found.is_absolute(), "{found:?}");
        }
    }
}
