//! New files that hold a secret, such as a QR code image of a token's key.
//!
//! Threats: pictl runs as root, so a path typed wrong, or a symbolic link another user planted
//! where the file is expected (in /tmp, in their home directory), must not make it replace a
//! file it was not meant to touch, nor write the key where that user can read it. So:
//! - an existing name is never replaced: not a file, not a symbolic link (the link is not
//!   followed), nothing. The operator removes it or picks another name; there is no option to
//!   overwrite, as a token's key image has no business replacing anything;
//! - the file is created with mode 0600 under a temporary name in the same directory
//!   (`O_CREAT|O_EXCL|O_NOFOLLOW`: a name that exists there, planted or left over, is skipped,
//!   never opened), written, flushed to disk, and only then renamed to its name with
//!   `RENAME_NOREPLACE`. The name holds the whole file or nothing, and a file that appeared
//!   there meanwhile is kept.

use nix::fcntl::{renameat2, RenameFlags};
use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of every file written here: the owner (root) reads it, nobody else.
pub const MODE: u32 = 0o600;

/// Whether `path` can become a new file: its directory exists and nothing has its name. For
/// checks before anything is changed; `write_new` checks again.
pub fn check_new(path: &Path) -> Result<(), String> {
    let (dir, _) = split(path)?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            let what = if meta.file_type().is_symlink() {
                "a symbolic link"
            } else if meta.is_dir() {
                "a directory"
            } else {
                "a file"
            };
            return Err(format!(
                "{} exists ({what}): give a path that does not exist yet, or remove it first; \
                 pictl never replaces anything with a file holding a token's key",
                path.display()
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot check {}: {e}", path.display())),
    }
    match std::fs::metadata(&dir) {
        // Whoever runs pictl must be able to create the file there: found out now, before
        // anything is enrolled, not once the code exists.
        Ok(meta) if meta.is_dir() => nix::unistd::access(&dir, nix::unistd::AccessFlags::W_OK)
            .map_err(|e| {
                format!(
                    "cannot create files in {}: {e}; give a path in a directory you may write",
                    dir.display()
                )
            }),
        Ok(_) => Err(format!("{} is not a directory", dir.display())),
        Err(e) => Err(format!(
            "cannot use the directory {}: {e}; create it first",
            dir.display()
        )),
    }
}

/// Write `bytes` as the new file `path` (mode 0600), all or nothing; see the module comment.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), String> {
    check_new(path)?;
    let (dir, name) = split(path)?;
    let (temporary, file) = create_temporary(&dir, &name)?;
    let result = fill(file, &temporary, bytes).and_then(|()| {
        renameat2(None, &temporary, None, path, RenameFlags::RENAME_NOREPLACE).map_err(
            |e| match e {
                nix::errno::Errno::EEXIST => format!(
                    "{} appeared while pictl was writing it; it was left alone: give another path",
                    path.display()
                ),
                e => format!("cannot create {}: {e}", path.display()),
            },
        )
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
        return result;
    }
    // The new name is durable once the directory is on disk too.
    File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| {
        format!(
            "wrote {}, but cannot sync {}: {e}",
            path.display(),
            dir.display()
        )
    })
}

/// A new, empty file with mode 0600 beside the target (`.NAME.PID.N.tmp`). The first free name
/// is taken; a name that exists (a leftover, or a link someone planted) is never opened.
fn create_temporary(dir: &Path, name: &str) -> Result<(PathBuf, File), String> {
    for n in 0..100 {
        let temporary = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(MODE)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&temporary)
        {
            Ok(file) => return Ok((temporary, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot write in {}: {e}", dir.display())),
        }
    }
    Err(format!(
        "cannot find a free temporary name in {}: remove the .{name}.*.tmp files there",
        dir.display()
    ))
}

fn fill(mut file: File, temporary: &Path, bytes: &[u8]) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("cannot write {}: {e}", temporary.display());
    // A umask may take bits away from MODE but never add any; set it exactly all the same.
    file.set_permissions(Permissions::from_mode(MODE))
        .map_err(failed)?;
    file.write_all(bytes).map_err(failed)?;
    file.sync_all().map_err(failed)
}

/// The directory (`.` for a bare name) and the file name of `path`.
fn split(path: &Path) -> Result<(PathBuf, String), String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{} does not name a file", path.display()))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_new_file_gets_mode_0600_and_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qr.png");
        write_new(&path, b"secret image").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"secret image");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn an_existing_file_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qr.png");
        std::fs::write(&path, b"keep me").unwrap();
        let err = write_new(&path, b"new").unwrap_err();
        assert!(err.contains("exists (a file)"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    }

    #[test]
    fn a_symbolic_link_is_not_followed_even_to_nowhere() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        let link = dir.path().join("qr.png");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = write_new(&link, b"new").unwrap_err();
        assert!(err.contains("exists (a symbolic link)"), "{err}");
        assert!(!target.exists(), "the link was followed");
    }

    #[test]
    fn a_missing_directory_is_named() {
        let err = check_new(Path::new("/nonexistent-pictl-dir/qr.png")).unwrap_err();
        assert!(
            err.contains("/nonexistent-pictl-dir") && err.contains("create it"),
            "{err}"
        );
        let err = check_new(Path::new("/")).unwrap_err();
        assert!(
            err.contains("exists") || err.contains("does not name a file"),
            "{err}"
        );
    }
}
