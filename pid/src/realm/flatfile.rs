//! `flatfile` resolver: users in a passwd-format file (privacyIDEA's passwdresolver), for people
//! who are not accounts of this host. The second field is the user's crypt(3) hash, checked for
//! `otppin = "userstore"` and `passthru`.
//!
//! Memory: one entry per user in an arena (uid, byte offset of the user's line in the file,
//! login) plus a `u32` per user to find the entries in login order: about 22 bytes per user, so a
//! million users cost ~22 MiB instead of a hash map's ~60 MiB. Loading builds exactly that and
//! sorts the `u32`s in place, so a reload (which builds the new index while the old one serves)
//! needs little more than a second index. Hashes are NOT kept in memory (a `$6$` hash alone is
//! 106 bytes, ~100 MiB for a million users): a password check reads the user's line from the
//! file at its recorded offset. That is also the file's current content, so a changed password
//! takes effect without a reload; when the file was edited so that the offset no longer points
//! at the user's line, the check reads the whole file to find it.
//!
//! Threats: an empty password never matches, whatever the hash (a file line `alice::...` or a
//! hash of the empty string must not turn the user store into "no password"); `x`, `*`, `!...`
//! and an empty field mean "no password" (locked, or kept elsewhere) and never match; the
//! comparison of computed and stored hash is constant-time inside the RustCrypto crates and
//! `bcrypt` (subtle). A hash scheme pi cannot verify is an error the operator sees, never a
//! silent "wrong password" that would look like users mistyping.

use crate::config::{ConfigError, Key};
use crate::error::PidError;
use protocol::Secret;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A `[resolvers.NAME]` table of `type = "flatfile"`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlatfileConfig {
    /// The user file: `login:password:uid:gid:gecos:home:shell`, an absolute path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

impl FlatfileConfig {
    /// The user file of resolver `name`; `Err` says what the table lacks.
    pub fn path(&self, name: &str) -> Result<&Path, ConfigError> {
        match &self.file {
            None => Err(ConfigError::invalid(
                Key::resolver(name, None),
                "a flatfile resolver needs `file`",
            )),
            Some(f) if !f.is_absolute() => Err(ConfigError::invalid(
                Key::resolver(name, Some("file")),
                "must be an absolute path",
            )),
            Some(f) => Ok(f),
        }
    }
}

/// Longest line a load accepts and a password check reads at a recorded offset; passwd lines
/// are far shorter.
const MAX_LINE: usize = 64 * 1024;

pub struct FlatFile {
    path: PathBuf,
    /// Per user, in file order: the uid (u32, little-endian), the byte offset of the user's
    /// line in the file as loaded (u32, little-endian), the login, `\n` (a login never holds one:
    /// it is part of a line).
    entries: Vec<u8>,
    /// Where each user's entry starts in `entries`, in login order.
    by_login: Vec<u32>,
}

/// The uid and line offset before each login in `FlatFile::entries`.
const ENTRY_HEAD: usize = 8;

/// The login of the entry at `at` (bytes: UTF-8 order is byte order).
fn login_at(entries: &[u8], at: u32) -> &[u8] {
    let name = entries.get(at as usize + ENTRY_HEAD..).unwrap_or_default();
    let end = name.iter().position(|&b| b == b'\n').unwrap_or(name.len());
    &name[..end]
}

fn u32_at(entries: &[u8], at: usize) -> u32 {
    let mut le = [0u8; 4];
    if let Some(bytes) = entries.get(at..at + 4) {
        le.copy_from_slice(bytes);
    }
    u32::from_le_bytes(le)
}

/// One parsed line: `login:hash:uid:...`.
struct Line<'a> {
    login: &'a str,
    hash: &'a str,
    uid: &'a str,
}

fn parse_line(line: &str) -> Option<Line<'_>> {
    let line = line.trim_end();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split(':');
    let login = fields.next()?;
    let hash = fields.next()?;
    let uid = fields.next()?;
    Some(Line { login, hash, uid })
}

/// What the second field of a line holds.
#[derive(Debug, PartialEq, Eq)]
enum Scheme {
    /// `x`, `*`, `!...`, `*...` or empty: the user has no password here.
    NoPassword,
    /// `$5$` and `$6$` (SHA-crypt).
    ShaCrypt,
    /// `$2a$`, `$2b$`, `$2y$`.
    Bcrypt,
    /// `$y$`, Debian 12's default for `passwd` and `mkpasswd`.
    Yescrypt,
    /// Anything else, named for the operator.
    Unsupported(String),
}

impl Scheme {
    fn of(hash: &str) -> Scheme {
        if hash.is_empty() || hash == "x" || hash.starts_with('*') || hash.starts_with('!') {
            return Scheme::NoPassword;
        }
        if hash.starts_with("$5$") || hash.starts_with("$6$") {
            return Scheme::ShaCrypt;
        }
        if ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
            return Scheme::Bcrypt;
        }
        if hash.starts_with("$y$") {
            return Scheme::Yescrypt;
        }
        let name = match hash.strip_prefix('$').and_then(|h| h.split_once('$')) {
            Some(("1", _)) => "$1$ (MD5-crypt)".to_owned(),
            Some(("2x", _)) => "$2x$ (bcrypt with the pre-2011 bug)".to_owned(),
            Some(("7", _)) => "$7$ (scrypt)".to_owned(),
            Some(("gy", _)) => "$gy$ (GOST yescrypt)".to_owned(),
            Some((id, _)) if id.len() <= 8 => format!("${id}$"),
            _ if hash.len() == 13 => "DES crypt".to_owned(),
            _ if hash.starts_with('_') => "BSDi DES crypt".to_owned(),
            _ => "unrecognised (not a crypt(3) hash)".to_owned(),
        };
        Scheme::Unsupported(name)
    }
}

/// Why the user file cannot check a password. The I/O error is part of the sentence, before
/// what to check, so it is not a source as well.
#[derive(Debug, thiserror::Error)]
pub enum FlatfileFailure {
    #[error(
        "cannot read user file {}: {error}; check that it exists and that pid may read it",
        path.display()
    )]
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "{}, line {line}: user {login:?} has a password hash of scheme {scheme}, which pi cannot \
         verify; re-hash it with `mkpasswd -m sha-512` (or yescrypt)",
        path.display()
    )]
    UnsupportedHash {
        path: PathBuf,
        /// 1-based, or `?` when it cannot be counted.
        line: String,
        login: String,
        scheme: String,
    },
    #[error(
        "{}, line {line}: the password hash of user {login:?} is malformed ({why}); re-hash it \
         with `mkpasswd -m sha-512`",
        path.display()
    )]
    MalformedHash {
        path: PathBuf,
        line: String,
        login: String,
        why: Malformed,
    },
}

/// What the hash library finds wrong with a hash.
#[derive(Debug, thiserror::Error)]
pub enum Malformed {
    /// sha-crypt and yescrypt.
    #[error(transparent)]
    Crypt(sha_crypt::password_hash::Error),
    #[error(transparent)]
    Bcrypt(bcrypt::BcryptError),
}

/// The verdict on one password against one hash.
#[derive(Debug)]
enum Verdict {
    Match,
    NoMatch,
    Unsupported(String),
    Malformed(Malformed),
}

fn verify(hash: &str, password: &[u8]) -> Verdict {
    // sha-crypt and yescrypt share the `password-hash` traits and error type.
    use sha_crypt::password_hash::{Error, PasswordVerifier};
    let verdict = |r: Result<(), Error>| match r {
        Ok(()) => Verdict::Match,
        Err(Error::PasswordInvalid) => Verdict::NoMatch,
        Err(e) => Verdict::Malformed(Malformed::Crypt(e)),
    };
    match Scheme::of(hash) {
        Scheme::NoPassword => Verdict::NoMatch,
        Scheme::ShaCrypt => verdict(sha_crypt::ShaCrypt::default().verify_password(password, hash)),
        Scheme::Yescrypt => verdict(yescrypt::Yescrypt::default().verify_password(password, hash)),
        Scheme::Bcrypt => match bcrypt::verify(password, hash) {
            Ok(true) => Verdict::Match,
            Ok(false) => Verdict::NoMatch,
            Err(e) => Verdict::Malformed(Malformed::Bcrypt(e)),
        },
        Scheme::Unsupported(name) => Verdict::Unsupported(name),
    }
}

impl FlatFile {
    /// Read and index the file. A malformed line is an error naming file and line.
    ///
    /// The file is read a line at a time into the index's own entries, whose offsets are then
    /// sorted in place: nothing but the index is held while loading. A million-user file (39 MB)
    /// used to be held whole, later as rows that were copied into the index: the daemon's peak
    /// memory at start-up, and above 100 MiB during a reload, when the old index still serves.
    pub fn load(path: &Path) -> Result<FlatFile, ConfigError> {
        let cannot_read = |e: std::io::Error| ConfigError::unreadable("user file ", path, e);
        let too_big = || {
            ConfigError::in_file(
                path,
                "larger than 4 GiB; split it into several flatfile resolvers",
            )
        };
        let file = File::open(path).map_err(cannot_read)?;
        let file_len = file.metadata().map_err(cannot_read)?.len();
        let file_len = usize::try_from(file_len)
            .ok()
            .filter(|&len| len <= u32::MAX as usize)
            .ok_or_else(too_big)?;
        let mut reader = BufReader::new(file);
        // Reserved up front (address space; only what is written is memory): an entry replaces
        // a line's ":hash:uid:gid:gecos:home:shell" with 8 bytes, so the file's size holds the
        // entries of any real passwd file, and its lines are longer than 8 bytes. Growing by
        // doubling instead left the copies' holes in the heap after a reload (RSS 52 instead of
        // 40 MiB after three reloads of a million users). A reservation that is too small, or
        // that the system refuses, only makes the vectors grow as they fill.
        let (mut entries, mut by_login) = (Vec::new(), Vec::new());
        let _ = entries.try_reserve_exact(file_len);
        let _ = by_login.try_reserve_exact(file_len / 8);
        let mut hashes = false;
        let mut raw = Vec::new();
        let mut offset = 0u64;
        for number in 1.. {
            raw.clear();
            // At most one byte past the longest line allowed, so a file without line ends
            // cannot make pid hold all of it.
            let read = std::io::Read::take(&mut reader, MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut raw)
                .map_err(cannot_read)?;
            if read == 0 {
                break;
            }
            let start = u32::try_from(offset).map_err(|_| too_big())?;
            offset += read as u64;
            let bad = |what: &str| ConfigError::at_line(path, number, what);
            if raw.len() > MAX_LINE {
                return Err(bad("longer than 64 KiB; is this a passwd-format file?"));
            }
            let line = std::str::from_utf8(&raw)
                .map_err(|_| bad("not UTF-8 text"))?
                .trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let login = line.split(':').next().unwrap_or_default();
            crate::users::validate_login(login).map_err(|e| bad(&e.to_string()))?;
            let parsed = parse_line(line).ok_or_else(|| bad("expected login:password:uid:..."))?;
            let uid = parsed
                .uid
                .parse::<u32>()
                .map_err(|_| bad("the uid (third field) must be a number"))?;
            match Scheme::of(parsed.hash) {
                Scheme::NoPassword => {}
                Scheme::Unsupported(scheme) => {
                    hashes = true;
                    tracing::warn!(
                        "{}, line {number}: user {login:?} has a password hash of scheme \
                         {scheme}, which pi cannot verify: their user store password checks \
                         will fail until it is re-hashed with `mkpasswd -m sha-512` (or \
                         yescrypt)",
                        path.display(),
                    );
                }
                _ => hashes = true,
            }
            by_login.push(u32::try_from(entries.len()).map_err(|_| too_big())?);
            entries.extend_from_slice(&uid.to_le_bytes());
            entries.extend_from_slice(&start.to_le_bytes());
            entries.extend_from_slice(login.as_bytes());
            entries.push(b'\n');
        }
        by_login.sort_unstable_by(|&a, &b| login_at(&entries, a).cmp(login_at(&entries, b)));
        if let Some(w) = by_login
            .windows(2)
            .find(|w| login_at(&entries, w[0]) == login_at(&entries, w[1]))
        {
            return Err(ConfigError::in_file(
                path,
                format!(
                    "user {:?} appears twice",
                    String::from_utf8_lossy(login_at(&entries, w[0]))
                ),
            ));
        }
        if hashes {
            warn_if_world_readable(path);
        }
        entries.shrink_to_fit();
        by_login.shrink_to_fit();
        Ok(FlatFile {
            path: path.to_path_buf(),
            entries,
            by_login,
        })
    }

    /// Where `login`'s entry starts in `entries`.
    fn index(&self, login: &str) -> Option<usize> {
        self.by_login
            .binary_search_by(|&at| login_at(&self.entries, at).cmp(login.as_bytes()))
            .ok()
            .map(|i| self.by_login[i] as usize)
    }

    /// Whether `password` matches the crypt hash the file holds for `login` now. `Ok(false)`
    /// for a wrong or empty password, an unknown user and a user without a password; `Err` when
    /// the file cannot be read or holds a hash pi cannot verify. Blocking (reads the file).
    pub fn check_password(&self, login: &str, password: &Secret) -> Result<bool, PidError> {
        if password.is_empty() {
            return Ok(false);
        }
        let Some(at) = self.index(login) else {
            return Ok(false);
        };
        let unreadable = |error| FlatfileFailure::Unreadable {
            path: self.path.clone(),
            error,
        };
        let file = File::open(&self.path).map_err(unreadable)?;
        let offset = u64::from(u32_at(&self.entries, at + 4));
        let at_offset = read_line_at(&file, offset).map_err(unreadable)?;
        let still_there = at_offset
            .as_deref()
            .and_then(parse_line)
            .is_some_and(|l| l.login == login);
        let (line_text, known_line) = match at_offset {
            Some(text) if still_there => (text, None),
            _ => {
                tracing::warn!(
                    "{} changed since pid loaded it; reading all of it to find user {login:?} \
                     (reload pid so it indexes the file again)",
                    self.path.display()
                );
                match find_line(&file, login).map_err(unreadable)? {
                    Some((text, number)) => (text, Some(number)),
                    // Removed from the file since it was loaded: no password any more.
                    None => return Ok(false),
                }
            }
        };
        let Some(line) = parse_line(&line_text) else {
            return Ok(false);
        };
        match verify(line.hash, password.expose().as_bytes()) {
            Verdict::Match => Ok(true),
            Verdict::NoMatch => Ok(false),
            Verdict::Unsupported(scheme) => Err(FlatfileFailure::UnsupportedHash {
                path: self.path.clone(),
                line: line_number(&file, offset, known_line),
                login: login.to_owned(),
                scheme,
            }
            .into()),
            Verdict::Malformed(why) => Err(FlatfileFailure::MalformedHash {
                path: self.path.clone(),
                line: line_number(&file, offset, known_line),
                login: login.to_owned(),
                why,
            }
            .into()),
        }
    }

    /// The uid recorded for `login`, if the file has that user.
    pub fn find(&self, login: &str) -> Option<u32> {
        self.index(login).map(|at| u32_at(&self.entries, at))
    }

    pub fn len(&self) -> usize {
        self.by_login.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_login.is_empty()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The line starting at `offset`, or `None` when it is not valid UTF-8, past the end of the
/// file or longer than `MAX_LINE` (the caller then scans the file).
fn read_line_at(file: &File, offset: u64) -> std::io::Result<Option<String>> {
    let mut buf = vec![0u8; 512];
    let mut len = 0usize;
    loop {
        let n = file.read_at(&mut buf[len..], offset + len as u64)?;
        let end_of_file = n == 0;
        len += n;
        if let Some(nl) = buf[..len].iter().position(|b| *b == b'\n') {
            buf.truncate(nl);
            break;
        }
        if end_of_file {
            buf.truncate(len);
            break;
        }
        if len == buf.len() {
            if buf.len() >= MAX_LINE {
                return Ok(None);
            }
            buf.resize(buf.len() * 2, 0);
        }
    }
    if buf.is_empty() {
        return Ok(None);
    }
    Ok(String::from_utf8(buf).ok())
}

/// The 1-based line number for an error message: known from a scan, or counted up to the
/// recorded offset (only on this error path, so it is not worth 4 bytes per user).
fn line_number(file: &File, offset: u64, known: Option<usize>) -> String {
    if let Some(n) = known {
        return n.to_string();
    }
    let mut counted = 1usize;
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut read = 0u64;
    while read < offset {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return "?".into(),
            Ok(n) => read += n as u64,
        }
        counted += 1;
    }
    counted.to_string()
}

/// The whole-file fallback: `login`'s line and its 1-based number.
fn find_line(file: &File, login: &str) -> std::io::Result<Option<(String, usize)>> {
    let reader = BufReader::new(file);
    for (i, line) in reader.split(b'\n').enumerate() {
        let line = line?;
        let Ok(text) = String::from_utf8(line) else {
            continue;
        };
        if parse_line(&text).is_some_and(|l| l.login == login) {
            return Ok(Some((text, i + 1)));
        }
    }
    Ok(None)
}

/// Password hashes readable by every local user invite offline guessing.
fn warn_if_world_readable(path: &Path) {
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o004 != 0 {
            tracing::warn!(
                "{} holds password hashes and every local user may read it; \
                 `chmod o-r {}` (pid runs as root and still reads it)",
                path.display(),
                path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::chain;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("users");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn users_in_the_file_are_found_and_others_are_not() {
        let (_d, p) = write("# comment\nzoe:x:1002:1002::/h:/bin/sh\n\nalice:x:1000:1000:A:/h:/bin/sh\nbob:$6$salt$h:1001:1001::/:/x\n");
        let f = FlatFile::load(&p).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f.find("alice"), Some(1000));
        assert_eq!(f.find("bob"), Some(1001));
        assert_eq!(f.find("zoe"), Some(1002));
        assert_eq!(f.find("carol"), None);
        assert_eq!(f.find(""), None);
    }

    #[test]
    fn a_user_listed_twice_is_refused_by_name() {
        let (_d, p) =
            write("bob:x:1:1::/:/\nalice:x:2:2::/:/\ncarol:x:3:3::/:/\nalice:x:4:4::/:/\n");
        let msg = FlatFile::load(&p).err().unwrap().to_string();
        assert!(msg.contains("\"alice\" appears twice"), "{msg}");
        // A name that is a prefix of another is a different user.
        let (_d, p) = write("al:x:1:1::/:/\nalice:x:2:2::/:/\n");
        let f = FlatFile::load(&p).unwrap();
        assert_eq!((f.find("al"), f.find("alice")), (Some(1), Some(2)));
    }

    #[test]
    fn a_line_that_is_not_utf8_or_too_long_is_named_and_nothing_loads() {
        let (_d, p) = write("");
        std::fs::write(&p, b"ok:x:1:1::/:/\r\nb\xffd:x:2:2::/:/\nlast:x:3:3::/:/").unwrap();
        let msg = FlatFile::load(&p).err().unwrap().to_string();
        assert!(msg.contains("line 2: not UTF-8"), "{msg}");
        std::fs::write(
            &p,
            [b"ok:x:1:1::/:/\n".as_slice(), &[b'a'; MAX_LINE + 1]].concat(),
        )
        .unwrap();
        let msg = FlatFile::load(&p).err().unwrap().to_string();
        assert!(msg.contains("line 2: longer than 64 KiB"), "{msg}");
        // CRLF line ends and a last line without one are fine.
        std::fs::write(&p, b"ok:x:1:1::/:/\r\nlast:x:3:3::/:/").unwrap();
        let f = FlatFile::load(&p).unwrap();
        assert_eq!((f.find("ok"), f.find("last")), (Some(1), Some(3)));
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        for bad in [
            "alice\n",
            "ok:x:1:1::/:/\nalice:x:notanumber:1::/:/\n",
            "a b:x:1:1::/:/\n",
        ] {
            let (_d, p) = write(bad);
            let msg = FlatFile::load(&p).err().unwrap().to_string();
            assert!(msg.contains("line"), "{msg}");
        }
        let (_d, p) = write("a:x:1:1::/:/\na:x:2:2::/:/\n");
        assert!(FlatFile::load(&p)
            .err()
            .unwrap()
            .to_string()
            .contains("twice"));
    }

    // Hashes of "correct horse" made by libxcrypt's `mkpasswd` (Debian 12, package `whois`), an
    // implementation independent of the crates under test. `$2y$` is the `$2b$` hash with the
    // other prefix; libxcrypt's crypt() gives the same string for both.
    const PASSWORD: &str = "correct horse";
    const SHA512: &str = "$6$7dgbfJA9hRpxrK3E$64uu0wgxiqTvHFeiecOjI6rHHOt0GGBekCCSKw.VV676sFo8AuVISYWbcegfVF2BlSMIy3q.gtwivWHh/J7e71";
    const SHA512_ROUNDS: &str = "$6$rounds=1000$saltsaltsalt$Dt0JGUnDdc4DdUjlyySCHRPx7U2pABqWbPrinz5ntgKXqDPocxu0xlsHum4.yrEVleQdkaDZxTsKnM8ZF88Lz1";
    const SHA256: &str = "$5$tPPp14Y2douO/KF8$W/vsYoDwdR44kQfSymxLc2e.di072RWNbUe2Lewkkx7";
    const YESCRYPT: &str =
        "$y$j9T$F3A595/rmLw6KUsalpWt70$Ui00nVaObJ.0coefUUXiXn3BnX7jM1NGbtc11dxCPA/";
    const BCRYPT_2B: &str = "$2b$05$zdy4U5ouhNmjVE0cK/rmSuURC7fr1.95s7ItCfXRwD/A3bpHQ/ai.";
    const BCRYPT_2Y: &str = "$2y$05$zdy4U5ouhNmjVE0cK/rmSuURC7fr1.95s7ItCfXRwD/A3bpHQ/ai.";
    /// `mkpasswd -m yescrypt 'pässwörd €'`: non-ASCII passwords are hashed as UTF-8 bytes.
    const YESCRYPT_UTF8: &str =
        "$y$j9T$hwlBeb6KyTJj3C.BlFmAB0$yDkTDQVrhlgp9SJtJutJjTnSYGRxcX1OZPjO95.HR4C";
    /// `mkpasswd -m sha-512 ''`: a hash of the empty password.
    const SHA512_OF_EMPTY: &str = "$6$ipCSo6QyG3eMrYbC$bki0obSzxvJ2pKsdFaDnsimuP4UpGcLaQ/E3ehzS9nHmTXpWsWkTJ4REmzjOu7WdEPfXHDg.G9IYkbKK5BSk/0";
    /// `openssl passwd -1 -salt abcdefgh 'correct horse'` and `mkpasswd -m descrypt`.
    const MD5: &str = "$1$abcdefgh$y6iHhJNbuC0xpbk0w9pm80";
    const DES: &str = "giU7GgY0Rl4DY";

    fn file_with(hashes: &[(&str, &str)]) -> (tempfile::TempDir, FlatFile) {
        let text: String = hashes
            .iter()
            .enumerate()
            .map(|(i, (login, hash))| {
                format!("{login}:{hash}:{}:100::/home/{login}:/bin/sh\n", 2000 + i)
            })
            .collect();
        let (d, p) = write(&format!("# users\n{text}"));
        let f = FlatFile::load(&p).unwrap();
        (d, f)
    }

    fn check(f: &FlatFile, login: &str, password: &str) -> Result<bool, PidError> {
        f.check_password(login, &Secret::new(password))
    }

    #[test]
    fn each_supported_scheme_accepts_the_right_password_and_rejects_a_wrong_one() {
        let (_d, f) = file_with(&[
            ("sha512", SHA512),
            ("rounds", SHA512_ROUNDS),
            ("sha256", SHA256),
            ("yes", YESCRYPT),
            ("b2b", BCRYPT_2B),
            ("b2y", BCRYPT_2Y),
        ]);
        for login in ["sha512", "rounds", "sha256", "yes", "b2b", "b2y"] {
            assert!(check(&f, login, PASSWORD).unwrap(), "{login}");
            assert!(!check(&f, login, "correct horsE").unwrap(), "{login}");
            assert!(!check(&f, login, "correct horse ").unwrap(), "{login}");
        }
    }

    #[test]
    fn non_ascii_password_is_checked_as_utf8() {
        let (_d, f) = file_with(&[("u", YESCRYPT_UTF8)]);
        assert!(check(&f, "u", "pässwörd €").unwrap());
        assert!(!check(&f, "u", "passwort €").unwrap());
    }

    #[test]
    fn no_password_markers_never_match() {
        let (_d, f) = file_with(&[
            ("shadow", "x"),
            ("star", "*"),
            ("locked", "!"),
            ("locked_hash", &format!("!{SHA512}")),
            ("np", "*NP*"),
            ("empty", ""),
        ]);
        for login in ["shadow", "star", "locked", "locked_hash", "np", "empty"] {
            for password in [PASSWORD, "x", "*", "!", ""] {
                assert!(!check(&f, login, password).unwrap(), "{login} {password:?}");
            }
        }
    }

    #[test]
    fn empty_password_is_refused_even_when_the_hash_is_of_the_empty_string() {
        let (_d, f) = file_with(&[("e", SHA512_OF_EMPTY)]);
        assert!(
            matches!(verify(SHA512_OF_EMPTY, b""), Verdict::Match),
            "the hash is right"
        );
        assert!(!check(&f, "e", "").unwrap());
    }

    #[test]
    fn unknown_user_is_a_wrong_password_not_an_error() {
        let (_d, f) = file_with(&[("alice", SHA512)]);
        assert!(!check(&f, "bob", PASSWORD).unwrap());
    }

    #[test]
    fn unsupported_scheme_is_an_error_naming_file_line_scheme_and_fix() {
        let (_d, f) = file_with(&[("ok", SHA512), ("md5", MD5), ("des", DES)]);
        let msg = chain(&check(&f, "md5", PASSWORD).unwrap_err()).to_string();
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("$1$ (MD5-crypt)"), "{msg}");
        assert!(msg.contains("mkpasswd -m sha-512"), "{msg}");
        assert!(msg.contains(&f.path().display().to_string()), "{msg}");
        assert!(!msg.contains(MD5), "the hash itself is not logged: {msg}");
        let msg = chain(&check(&f, "des", PASSWORD).unwrap_err()).to_string();
        assert!(msg.contains("line 4") && msg.contains("DES crypt"), "{msg}");
        assert!(matches!(
            check(&f, "md5", PASSWORD),
            Err(PidError::UserStore(_))
        ));
        // The other users are unaffected.
        assert!(check(&f, "ok", PASSWORD).unwrap());
    }

    #[test]
    fn malformed_hash_is_an_error_not_a_wrong_password() {
        let truncated = &SHA512[..SHA512.len() - 20];
        let (_d, f) = file_with(&[("t", truncated), ("b", "$2b$05$short")]);
        for login in ["t", "b"] {
            let msg = chain(&check(&f, login, PASSWORD).unwrap_err()).to_string();
            assert!(msg.contains("malformed") && msg.contains("line"), "{msg}");
        }
    }

    #[test]
    fn a_changed_file_is_read_again_and_its_current_hash_counts() {
        let (d, p) = write(&format!("alice:{SHA512}:1:1::/:/\nbob:{SHA256}:2:2::/:/\n"));
        let f = FlatFile::load(&p).unwrap();
        assert!(check(&f, "bob", PASSWORD).unwrap());
        // A longer first line moves bob's line; bob's password is now the yescrypt one of
        // another password, alice is removed.
        std::fs::write(
            &p,
            format!("# a new comment line\ncarol:x:3:3::/:/\nbob:{YESCRYPT_UTF8}:2:2::/:/\n"),
        )
        .unwrap();
        assert!(!check(&f, "bob", PASSWORD).unwrap());
        assert!(check(&f, "bob", "pässwörd €").unwrap());
        assert!(
            !check(&f, "alice", PASSWORD).unwrap(),
            "removed from the file"
        );
        std::fs::remove_file(&p).unwrap();
        let msg = chain(&check(&f, "bob", PASSWORD).unwrap_err()).to_string();
        assert!(msg.contains("cannot read user file"), "{msg}");
        drop(d);
    }

    #[test]
    fn crlf_line_endings_do_not_become_part_of_the_hash() {
        let (_d, p) = write(&format!("alice:{SHA512}\r\n"));
        // Three fields are required; a hash-only line is malformed at load.
        assert!(FlatFile::load(&p).is_err());
        let (_d, p) = write(&format!(
            "alice:{SHA512}:1:1::/:/bin/sh\r\nbob:{SHA256}:2\r\n"
        ));
        let f = FlatFile::load(&p).unwrap();
        assert!(check(&f, "alice", PASSWORD).unwrap());
        assert!(check(&f, "bob", PASSWORD).unwrap());
    }

    #[test]
    fn schemes_are_recognised_by_prefix() {
        assert_eq!(Scheme::of("$6$a$b"), Scheme::ShaCrypt);
        assert_eq!(Scheme::of("$y$j9T$a$b"), Scheme::Yescrypt);
        assert_eq!(Scheme::of("$2a$05$x"), Scheme::Bcrypt);
        assert_eq!(
            Scheme::of("$2x$05$x"),
            Scheme::Unsupported("$2x$ (bcrypt with the pre-2011 bug)".into())
        );
        assert_eq!(
            Scheme::of("$7$x$y"),
            Scheme::Unsupported("$7$ (scrypt)".into())
        );
        assert_eq!(Scheme::of("!!"), Scheme::NoPassword);
        assert_eq!(
            Scheme::of("plaintext"),
            Scheme::Unsupported("unrecognised (not a crypt(3) hash)".into())
        );
    }

    #[test]
    fn index_stays_near_twenty_two_bytes_per_user() {
        let text: String = (0..10_000)
            .map(|i| format!("user{i:05}:{SHA512}:{i}:{i}::/home/user{i:05}:/bin/sh\n"))
            .collect();
        let (_d, p) = write(&text);
        let f = FlatFile::load(&p).unwrap();
        // 8 + "userNNNNN" + 1, and 4 to find it.
        let bytes = f.entries.capacity() + 4 * f.by_login.capacity();
        assert!(bytes / f.len() <= 22, "{} bytes per user", bytes / f.len());
        assert_eq!(f.find("user09999"), Some(9999));
        assert!(check(&f, "user04711", PASSWORD).unwrap());
    }
}
