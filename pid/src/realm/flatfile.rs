//! `flatfile` resolver: users in a passwd-format file (privacyIDEA's passwdresolver), for people
//! who are not accounts of this host.
//!
//! Stored as one sorted string arena plus offsets: about 20 bytes per user, so a million users
//! cost ~20 MiB instead of a hash map's ~60 MiB.

use crate::error::PidError;
use std::path::{Path, PathBuf};

pub struct FlatFile {
    path: PathBuf,
    names: String,
    /// `ends[i]` is where name i ends in `names`; it starts where name i-1 ended.
    ends: Vec<u32>,
    uids: Vec<u32>,
}

impl FlatFile {
    /// Read and index the file. A malformed line is an error naming file and line.
    pub fn load(path: &Path) -> Result<FlatFile, PidError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            PidError::Config(format!("cannot read user file {}: {e}", path.display()))
        })?;
        let mut rows: Vec<(&str, u32)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |what: &str| {
                PidError::Config(format!("{}, line {}: {what}", path.display(), i + 1))
            };
            let mut fields = line.split(':');
            let login = fields.next().unwrap_or_default();
            crate::users::validate_login(login).map_err(|e| bad(&e.to_string()))?;
            let _password = fields
                .next()
                .ok_or_else(|| bad("expected login:password:uid:..."))?;
            let uid = fields
                .next()
                .ok_or_else(|| bad("expected login:password:uid:..."))?
                .parse::<u32>()
                .map_err(|_| bad("the uid (third field) must be a number"))?;
            rows.push((login, uid));
        }
        rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if let Some(w) = rows.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(PidError::Config(format!(
                "{}: user {:?} appears twice",
                path.display(),
                w[0].0
            )));
        }
        let total: usize = rows.iter().map(|r| r.0.len()).sum();
        if total > u32::MAX as usize {
            return Err(PidError::Config(format!("{} is too large", path.display())));
        }
        let mut names = String::with_capacity(total);
        let mut ends = Vec::with_capacity(rows.len());
        let mut uids = Vec::with_capacity(rows.len());
        for (login, uid) in rows {
            names.push_str(login);
            ends.push(names.len() as u32);
            uids.push(uid);
        }
        Ok(FlatFile {
            path: path.to_path_buf(),
            names,
            ends,
            uids,
        })
    }

    fn name(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.names[start..self.ends[i] as usize]
    }

    /// The uid recorded for `login`, if the file has that user.
    pub fn find(&self, login: &str) -> Option<u32> {
        let (mut lo, mut hi) = (0usize, self.ends.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.name(mid).cmp(login) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(self.uids[mid]),
            }
        }
        None
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
