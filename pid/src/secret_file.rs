//! Passwords of service accounts (an LDAP bind, a privacyIDEA admin) are kept in files that only
//! the daemon's user can read, like the key file, and never in pid.toml, which administrators
//! copy around and show each other.

use crate::config::{ConfigError, Key, Reason};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use zeroize::Zeroizing;

/// The password in `path` (one line of text, the line break optional), refused if anyone but
/// the daemon's user may read the file. `key` is the setting that names the file.
pub fn read_password(path: &Path, key: Key) -> Result<Zeroizing<String>, ConfigError> {
    let shown = path.display();
    let refuse = |why: String| ConfigError::invalid(key.clone(), why);
    let unreadable = |e| {
        let reason = Reason::Unreadable {
            what: "",
            path: path.to_path_buf(),
            source: e,
        };
        ConfigError::new(Some(key.clone()), reason)
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(refuse(format!(
            "{shown} has mode {mode:o}: it must not be readable by group or others; run `chmod \
             0600 {shown}` (and consider changing the account's password)"
        )));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(refuse(format!(
            "{shown} is owned by uid {}, not by the daemon's uid {euid}; run `chown {euid} \
             {shown}`",
            meta.uid()
        )));
    }
    let bytes = Zeroizing::new(std::fs::read(path).map_err(unreadable)?);
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        refuse(format!(
            "{shown} is not UTF-8 text; write the password as text on one line"
        ))
    })?;
    let line = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text);
    if line.is_empty() {
        // An empty password can mean "no authentication" to a server (an anonymous LDAP bind).
        return Err(refuse(format!(
            "{shown} is empty; write the account's password in it"
        )));
    }
    if line.contains('\n') {
        return Err(refuse(format!(
            "{shown} has more than one line; write only the password"
        )));
    }
    Ok(Zeroizing::new(line.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_file_of_several_lines_or_not_text_is_refused_naming_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        let key = || Key::upstream("corp", Some("service_password_file"));
        for (content, says) in [
            (&b"one\ntwo\n"[..], "more than one line"),
            (&b"\xff\xfe"[..], "not UTF-8"),
        ] {
            std::fs::write(&path, content).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let msg = read_password(&path, key()).unwrap_err().to_string();
            assert!(
                msg.starts_with("upstream.corp.service_password_file: ") && msg.contains(says),
                "{msg}"
            );
        }
        std::fs::write(&path, "s3cret\r\n").unwrap();
        assert_eq!(read_password(&path, key()).unwrap().as_str(), "s3cret");
    }
}
