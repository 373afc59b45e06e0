//! Host accounts answered from /etc/passwd on the worker, when NSS would answer from that file.
//!
//! A `passwd` resolver asks NSS (`getpwnam`), which may talk to LDAP or SSSD and block, so the
//! lookup runs on tokio's blocking pool. On an idle host that costs every login two wake-ups
//! across CPUs (the pool thread, then the worker again): 0.1 ms of a PAM login's 0.15 ms first
//! round trip on a 2-vCPU VM (docs/performance.md). Yet when
//! `/etc/nsswitch.conf` lists plain `files` first for `passwd` (Debian's default is
//! `files systemd`), NSS answers a login found in /etc/passwd from that file and asks no other
//! source. This keeps the file parsed so that such a login is answered without NSS.
//!
//! Invariant: it answers only what NSS would answer, and otherwise says "ask NSS". A login not
//! in the file, an nsswitch.conf whose `passwd` line does not start with plain `files`, a line
//! this parser is less sure about than glibc, a file changed since it was parsed or changed too
//! recently to trust its timestamps: all go to NSS as before. It never says a login is unknown.
//!
//! Parsing happens only in `refresh`, called from the NSS path (already off the executor); the
//! worker does two `stat` calls and a hash lookup.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A bigger /etc/passwd is left to NSS: parsing it is not worth holding in memory twice.
const MAX_PASSWD_BYTES: u64 = 32 << 20;

/// A file modified less than this long ago is not parsed into a snapshot: file timestamps tick
/// with the kernel's coarse clock (milliseconds), so an in-place edit of the same size right
/// after the parse could leave the same stamp. (Git's "racily clean" rule, for the same reason.)
const SETTLE_SECS: i64 = 2;

pub struct EtcPasswd {
    nsswitch: PathBuf,
    passwd: PathBuf,
    snapshot: Mutex<Option<Arc<Snapshot>>>,
}

struct Snapshot {
    stamp: Stamp,
    /// `None`: NSS does not read /etc/passwd first, nothing can be answered here.
    accounts: Option<HashMap<String, Account>>,
}

/// What the first line naming a login says, as far as this parser is sure.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Account {
    Uid(u32),
    /// A line glibc might read differently (missing fields, a uid that is not plain digits):
    /// NSS decides.
    Unsure,
}

/// Enough of a file's metadata to notice a change (a rewrite and rename changes the inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    nsswitch: Option<FileStamp>,
    passwd: Option<FileStamp>,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        let m = std::fs::metadata(path).ok()?;
        let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        Some(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        })
    }

    /// Last changed at least `SETTLE_SECS` before `now` (Unix seconds).
    fn settled(&self, now: i64) -> bool {
        i128::from(now - SETTLE_SECS) * 1_000_000_000 >= self.mtime_ns.max(self.ctime_ns)
    }
}

impl EtcPasswd {
    /// The files glibc reads.
    pub fn system() -> EtcPasswd {
        EtcPasswd::at("/etc/nsswitch.conf", "/etc/passwd")
    }

    pub fn at(nsswitch: impl Into<PathBuf>, passwd: impl Into<PathBuf>) -> EtcPasswd {
        EtcPasswd {
            nsswitch: nsswitch.into(),
            passwd: passwd.into(),
            snapshot: Mutex::new(None),
        }
    }

    fn stamp(&self) -> Stamp {
        Stamp {
            nsswitch: FileStamp::of(&self.nsswitch),
            passwd: FileStamp::of(&self.passwd),
        }
    }

    /// The uid NSS would return for `login`, when that is certain without asking NSS; `None`:
    /// ask NSS. Does not parse anything (see `refresh`).
    pub fn known_uid(&self, login: &str) -> Option<u32> {
        let stamp = self.stamp();
        let snapshot = self.lock().clone()?;
        if snapshot.stamp != stamp {
            return None;
        }
        match snapshot.accounts.as_ref()?.get(login)? {
            Account::Uid(uid) => Some(*uid),
            Account::Unsure => None,
        }
    }

    /// Parse the files again if they changed since the last parse; `now` in Unix seconds. Reads
    /// files: call it off the executor (the NSS lookup does). Cheap when nothing changed.
    pub fn refresh(&self, now: i64) {
        let before = self.stamp();
        if self.lock().as_ref().is_some_and(|s| s.stamp == before) {
            return;
        }
        let settled = [before.nsswitch, before.passwd]
            .iter()
            .all(|s| s.is_none_or(|s| s.settled(now)));
        let accounts = if settled { self.parse() } else { None };
        // Changed while being read (or too fresh to trust): keep nothing, try again next time.
        let keep = settled && self.stamp() == before;
        *self.lock() = keep.then(|| {
            Arc::new(Snapshot {
                stamp: before,
                accounts,
            })
        });
    }

    fn parse(&self) -> Option<HashMap<String, Account>> {
        let nsswitch = std::fs::read(&self.nsswitch).ok()?;
        if !files_first_for_passwd(&nsswitch) {
            return None;
        }
        let file = std::fs::File::open(&self.passwd).ok()?;
        if file.metadata().ok()?.len() > MAX_PASSWD_BYTES {
            return None;
        }
        let mut content = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, MAX_PASSWD_BYTES + 1),
            &mut content,
        )
        .ok()?;
        if content.len() as u64 > MAX_PASSWD_BYTES {
            return None;
        }
        Some(parse_passwd(&content))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Snapshot>>> {
        // The guarded value is replaced whole, never left half-written: a poisoned lock still
        // holds a consistent snapshot.
        self.snapshot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether the (only) `passwd:` line of nsswitch.conf starts with `files` and no action item
/// follows it (`files [SUCCESS=continue] …` would let a later source override the file).
fn files_first_for_passwd(nsswitch: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(nsswitch) else {
        return false;
    };
    let mut lines = text.lines().filter_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let (database, sources) = line.split_once(':')?;
        (database.trim() == "passwd").then_some(sources)
    });
    let (Some(sources), None) = (lines.next(), lines.next()) else {
        return false;
    };
    let mut sources = sources.split_whitespace();
    sources.next() == Some("files") && !sources.next().is_some_and(|s| s.starts_with('['))
}

/// Each login's first line, as glibc's `files` module reads it: leading blanks skipped, blank
/// and `#` lines ignored, seven `:`-separated fields (the shell takes the rest). A first line
/// with fewer fields or a uid or gid that is not plain decimal makes the login `Unsure`.
fn parse_passwd(content: &[u8]) -> HashMap<String, Account> {
    let mut accounts = HashMap::new();
    for line in content.split(|b| *b == b'\n') {
        let line = line.trim_ascii_start();
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        let fields: Vec<&[u8]> = line.splitn(7, |b| *b == b':').collect();
        // A name that is not UTF-8 can never equal a login, which is.
        let Ok(name) = std::str::from_utf8(fields[0]) else {
            continue;
        };
        if accounts.contains_key(name) {
            continue;
        }
        let account = match fields[..] {
            [_, _, uid, gid, _, _, _] => match (decimal(uid), decimal(gid)) {
                (Some(uid), Some(_)) => Account::Uid(uid),
                _ => Account::Unsure,
            },
            _ => Account::Unsure,
        };
        accounts.insert(name.to_owned(), account);
    }
    accounts
}

fn decimal(field: &[u8]) -> Option<u32> {
    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILES_FIRST: &str = "# comment\npasswd:         files systemd\ngroup: files\n";

    fn settled_files(nsswitch: &str, passwd: &str) -> (tempfile::TempDir, EtcPasswd) {
        let dir = tempfile::tempdir().unwrap();
        let etc = EtcPasswd::at(dir.path().join("nsswitch.conf"), dir.path().join("passwd"));
        std::fs::write(&etc.nsswitch, nsswitch).unwrap();
        std::fs::write(&etc.passwd, passwd).unwrap();
        (dir, etc)
    }

    /// Unix seconds.
    fn now() -> i64 {
        crate::clock::Clock::now(&crate::clock::SystemClock)
    }

    /// A time at which files written now count as settled (`refresh` is told the time).
    fn later() -> i64 {
        now() + SETTLE_SECS + 1
    }

    #[test]
    fn a_login_in_etc_passwd_is_answered_when_nss_reads_files_first() {
        let (_dir, etc) = settled_files(
            FILES_FIRST,
            "root:x:0:0:root:/root:/bin/bash\n  alice:x:1000:1000::/home/alice:/bin/sh\n",
        );
        assert_eq!(
            etc.known_uid("root"),
            None,
            "nothing is known before a refresh"
        );
        etc.refresh(later());
        assert_eq!(etc.known_uid("root"), Some(0));
        assert_eq!(
            etc.known_uid("alice"),
            Some(1000),
            "leading blanks are skipped"
        );
        assert_eq!(
            etc.known_uid("bob"),
            None,
            "not in the file: NSS decides (systemd, LDAP)"
        );
    }

    #[test]
    fn nothing_is_answered_unless_plain_files_comes_first_for_passwd() {
        for nsswitch in [
            "passwd: sss files\n",
            "passwd: files [SUCCESS=continue] ldap\n",
            "passwd: compat\n",
            "group: files\n",
            "passwd: files\npasswd: ldap\n",
            "# passwd: files\npasswd: ldap\n",
        ] {
            let (_dir, etc) = settled_files(nsswitch, "root:x:0:0:root:/root:/bin/bash\n");
            etc.refresh(later());
            assert_eq!(etc.known_uid("root"), None, "nsswitch.conf {nsswitch:?}");
        }
        for nsswitch in ["passwd: files\n", "passwd:files ldap # comment\n"] {
            let (_dir, etc) = settled_files(nsswitch, "root:x:0:0:root:/root:/bin/bash\n");
            etc.refresh(later());
            assert_eq!(etc.known_uid("root"), Some(0), "nsswitch.conf {nsswitch:?}");
        }
    }

    #[test]
    fn the_first_line_of_a_login_decides_and_a_doubtful_one_defers_to_nss() {
        let (_dir, etc) = settled_files(
            FILES_FIRST,
            "# root:x:5:5::/:/bin/sh\n\
             dup:x:10:10::/:/bin/sh\n\
             dup:x:11:11::/:/bin/sh\n\
             short:x:12:12\n\
             short:x:13:13::/:/bin/sh\n\
             word:x:zero:0::/:/bin/sh\n\
             signed:x:+14:14::/:/bin/sh\n\
             huge:x:4294967296:0::/:/bin/sh\n\
             shell:x:15:15::/:/bin/sh:with:colons\n",
        );
        etc.refresh(later());
        assert_eq!(etc.known_uid("root"), None, "a comment is not an account");
        assert_eq!(etc.known_uid("dup"), Some(10));
        for login in ["short", "word", "signed", "huge"] {
            assert_eq!(etc.known_uid(login), None, "{login}: NSS decides");
        }
        assert_eq!(etc.known_uid("shell"), Some(15));
    }

    #[test]
    fn a_changed_file_is_not_answered_from_until_parsed_again() {
        let (_dir, etc) = settled_files(FILES_FIRST, "alice:x:1000:1000::/:/bin/sh\n");
        etc.refresh(later());
        assert_eq!(etc.known_uid("alice"), Some(1000));

        // usermod writes a new file and renames it over the old one.
        let new = etc.passwd.with_extension("new");
        std::fs::write(&new, "alice:x:2000:2000::/:/bin/sh\n").unwrap();
        std::fs::rename(&new, &etc.passwd).unwrap();
        assert_eq!(etc.known_uid("alice"), None, "stale: NSS answers");
        etc.refresh(later());
        assert_eq!(etc.known_uid("alice"), Some(2000));

        std::fs::write(&etc.nsswitch, "passwd: ldap files\n").unwrap();
        assert_eq!(etc.known_uid("alice"), None);
        etc.refresh(later());
        assert_eq!(
            etc.known_uid("alice"),
            None,
            "NSS no longer reads the file first"
        );
    }

    #[test]
    fn a_file_changed_moments_ago_is_not_trusted_yet() {
        let dir = tempfile::tempdir().unwrap();
        let etc = EtcPasswd::at(dir.path().join("nsswitch.conf"), dir.path().join("passwd"));
        std::fs::write(&etc.nsswitch, FILES_FIRST).unwrap();
        std::fs::write(&etc.passwd, "alice:x:1000:1000::/:/bin/sh\n").unwrap();
        etc.refresh(now());
        assert_eq!(etc.known_uid("alice"), None);
        etc.refresh(later());
        assert_eq!(etc.known_uid("alice"), Some(1000));
    }

    #[test]
    fn missing_binary_or_oversized_files_answer_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = EtcPasswd::at(dir.path().join("none"), dir.path().join("passwd"));
        missing.refresh(later());
        assert_eq!(missing.known_uid("root"), None);

        let (_dir, etc) = settled_files(FILES_FIRST, "");
        std::fs::write(
            &etc.passwd,
            b"r\xffot:x:0:0::/:/bin/sh\nroot:x:0:0::/:/bin/sh\n",
        )
        .unwrap();
        etc.refresh(later());
        assert_eq!(
            etc.known_uid("root"),
            Some(0),
            "a non-UTF-8 name is skipped"
        );

        let big = std::fs::File::options()
            .write(true)
            .open(&etc.passwd)
            .unwrap();
        big.set_len(MAX_PASSWD_BYTES + 1).unwrap();
        etc.refresh(later());
        assert_eq!(
            etc.known_uid("root"),
            None,
            "over {MAX_PASSWD_BYTES} bytes: NSS reads it"
        );
    }

    /// The oracle is glibc itself: every account of this machine's /etc/passwd that the parser
    /// is sure about must be what `getpwnam` returns.
    #[test]
    fn every_answer_for_this_hosts_accounts_matches_getpwnam() {
        let etc = EtcPasswd::system();
        etc.refresh(later());
        let content = std::fs::read("/etc/passwd").unwrap();
        let names: Vec<String> = parse_passwd(&content).into_keys().collect();
        assert!(!names.is_empty(), "/etc/passwd lists no account");
        let mut answered = 0;
        for name in &names {
            if let Some(uid) = etc.known_uid(name) {
                let nss = nix::unistd::User::from_name(name).unwrap().unwrap();
                assert_eq!(uid, nss.uid.as_raw(), "{name}");
                answered += 1;
            }
        }
        let files_first = std::fs::read("/etc/nsswitch.conf")
            .is_ok_and(|nsswitch| files_first_for_passwd(&nsswitch));
        if files_first {
            assert!(
                answered > 0,
                "files come first in NSS here, yet nothing was answered"
            );
        }
    }
}
