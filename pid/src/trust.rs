//! What pid trusts on disk before it opens anything there: the directories of the socket, the
//! store and the key file, and the files themselves.
//!
//! Threat: a directory that another user owns or may write in lets that user swap what pid
//! opens as root. With the state directory theirs, a symbolic link named like a journal file
//! made pid overwrite a root file of their choice with journal records; with the socket's
//! directory theirs, they answer logins in pid's place.
//!
//! The rule, as OpenSSH (`StrictModes`) and sudo apply it to their files: each of these
//! directories, and every directory above it up to `/`, belongs to root or to the uid pid runs
//! as and is writable by nobody else. A directory above may be writable by group or others only
//! with the sticky bit (like `/tmp`): there nobody may rename or delete what another user
//! created, and the directory below it is checked itself, so it belongs to root or pid. The
//! directory itself must never be writable by others, sticky bit or not: others could create
//! files pid then opens. Symbolic links on the way are followed to where they point, and both
//! the path as written and the resolved one are checked.
//!
//! On top of that every store and key file is opened with `O_NOFOLLOW` ([`open_nofollow`]):
//! a link left in place of one of them is refused, never followed.

use crate::config::Config;
use crate::error::PidError;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A directory pid relies on, what it is for, and the mode pid creates it with.
struct Place {
    what: &'static str,
    dir: PathBuf,
    mode: u32,
}

fn places(config: &Config) -> Vec<Place> {
    let parent = |p: &Path| p.parent().unwrap_or(Path::new("/")).to_path_buf();
    [
        Place {
            what: "the socket's directory",
            dir: parent(&config.socket),
            // Every local user reaches the socket through it.
            mode: 0o755,
        },
        Place {
            what: "state_dir",
            dir: config.state_dir.clone(),
            mode: 0o700,
        },
    ]
    .into_iter()
    // With the key from a systemd credential the key file is not used: its directory need not
    // exist (see `check_directory` for the credentials directory).
    .chain(config.enckey_credential.is_none().then(|| Place {
        what: "the key file's directory",
        dir: parent(&config.enckey_file),
        mode: 0o700,
    }))
    .collect()
}

/// At start: create the directories that are missing (with the modes above), then check them
/// and everything above them. The error lists every problem with its fix.
pub fn prepare_directories(config: &Config) -> Result<(), PidError> {
    for place in places(config) {
        if !place.dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(place.mode)
                .create(&place.dir)
                .map_err(|e| PidError::file(format!("create {}", place.what), &place.dir, e))?;
        }
    }
    let problems = check_directories(config);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(PidError::Untrusted(problems))
    }
}

/// A directory pid relies on, and what makes it, or one above it, untrustworthy.
#[derive(Debug, thiserror::Error)]
#[error("{what} {}", dir.display())]
pub struct Untrusted {
    /// What the directory is for (`state_dir`).
    pub what: &'static str,
    pub dir: PathBuf,
    #[source]
    pub problem: DirProblem,
}

/// One line per problem, each with its causes.
pub fn lines(problems: &[Untrusted]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| crate::error::chain(p).to_string())
        .collect();
    lines.join("\n")
}

/// What is wrong with one directory on the way to a directory pid relies on, with the fix.
#[derive(Debug, thiserror::Error)]
pub enum DirProblem {
    #[error("no directory of {} exists", .0.display())]
    Missing(PathBuf),
    #[error("cannot resolve {}", path.display())]
    Unresolvable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot inspect {}", path.display())]
    Uninspectable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// Owned by `owner`, where only root or `trusted` (the uid pid runs as) may own it.
    #[error(
        "{} belongs to uid {owner}, but pid trusts a directory only if it and every directory \
         above it belong to {} (their owner could swap the files pid opens); fix: `chown \
         root:root {} && chmod go-w {}`",
        dir.display(),
        owners(*trusted),
        dir.display(),
        dir.display()
    )]
    Owner {
        dir: PathBuf,
        owner: u32,
        trusted: u32,
    },
    /// Writable by group or others: in the directory itself (`target`), or above it without
    /// the sticky bit.
    #[error(
        "{} is writable by group or others (mode {mode:04o}): {}; fix: `chmod go-w {}`",
        dir.display(),
        if *target {
            "others could create the files pid opens there"
        } else {
            "without the sticky bit (as /tmp has), others could rename what is inside"
        },
        dir.display()
    )]
    Writable {
        dir: PathBuf,
        mode: u32,
        target: bool,
    },
}

/// Who may own the directories pid relies on.
fn owners(trusted: u32) -> String {
    if trusted == 0 {
        "root".to_string()
    } else {
        format!("root or uid {trusted} (which pid runs as)")
    }
}

/// The problems with the configured directories as they are now, each with its fix
/// (`pid --check-config`). A directory that does not exist yet is created at start; the
/// directories above it are checked.
pub fn check_directories(config: &Config) -> Vec<Untrusted> {
    let trusted = nix::unistd::geteuid().as_raw();
    places(config)
        .into_iter()
        .flat_map(|place| {
            check_chain(&place.dir, trusted)
                .into_iter()
                .map(move |problem| Untrusted {
                    what: place.what,
                    dir: place.dir.clone(),
                    problem,
                })
        })
        .collect()
}

/// One directory pid reads from but does not create (the credentials directory systemd
/// makes), checked as the configured ones are; `what` names it in the error.
pub fn check_directory(what: &'static str, dir: &Path) -> Result<(), PidError> {
    let trusted = nix::unistd::geteuid().as_raw();
    let problems: Vec<Untrusted> = check_chain(dir, trusted)
        .into_iter()
        .map(|problem| Untrusted {
            what,
            dir: dir.to_path_buf(),
            problem,
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(PidError::Untrusted(problems))
    }
}

/// Check `target` (if it exists) and every directory above it, as written and as resolved.
/// At most one problem per directory.
fn check_chain(target: &Path, trusted: u32) -> Vec<DirProblem> {
    let mut existing = target;
    while !existing.exists() {
        match existing.parent() {
            Some(up) => existing = up,
            None => return vec![DirProblem::Missing(target.to_path_buf())],
        }
    }
    let target_exists = existing == target;
    let mut chain: Vec<(PathBuf, bool)> = Vec::new();
    let mut add = |start: &Path| {
        for (depth, dir) in start.ancestors().enumerate() {
            let is_target = depth == 0 && target_exists;
            if !chain.iter().any(|(d, _)| d == dir) {
                chain.push((dir.to_path_buf(), is_target));
            }
        }
    };
    add(existing);
    match std::fs::canonicalize(existing) {
        Ok(resolved) => add(&resolved),
        Err(source) => {
            return vec![DirProblem::Unresolvable {
                path: existing.to_path_buf(),
                source,
            }]
        }
    }
    chain
        .iter()
        .filter_map(|(dir, is_target)| check_one(dir, *is_target, trusted).err())
        .collect()
}

/// One directory: a directory, owned by root or `trusted`, writable by nobody else (above the
/// target: unless the sticky bit is set).
fn check_one(dir: &Path, is_target: bool, trusted: u32) -> Result<(), DirProblem> {
    let meta = std::fs::metadata(dir).map_err(|source| DirProblem::Uninspectable {
        path: dir.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(DirProblem::NotADirectory(dir.to_path_buf()));
    }
    if meta.uid() != 0 && meta.uid() != trusted {
        return Err(DirProblem::Owner {
            dir: dir.to_path_buf(),
            owner: meta.uid(),
            trusted,
        });
    }
    let mode = meta.mode() & 0o7777;
    let writable_by_others = mode & 0o022 != 0;
    let sticky = mode & 0o1000 != 0;
    if writable_by_others && (is_target || !sticky) {
        return Err(DirProblem::Writable {
            dir: dir.to_path_buf(),
            mode,
            target: is_target,
        });
    }
    Ok(())
}

/// Open a file of pid's own (the store, its journal, the key file) without following a
/// symbolic link in the last component: a link in its place is refused with a message saying
/// so, never written through.
pub fn open_nofollow(options: &mut OpenOptions, path: &Path) -> std::io::Result<File> {
    options
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "{} is a symbolic link; pid never opens its files through a link: put \
                         the file itself there (or restore it from a backup)",
                        path.display()
                    ),
                )
            } else {
                e
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A root-owned 0755 directory under /tmp, like the suite's daemon directories.
    fn base() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), 0o755);
        dir
    }

    fn shown(problems: Vec<DirProblem>) -> Vec<String> {
        problems.iter().map(ToString::to_string).collect()
    }

    fn me() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    /// A directory at `path` that uid 65534 owns.
    fn dir_of_nobody(path: &Path) {
        std::fs::create_dir(path).unwrap();
        std::os::unix::fs::chown(path, Some(65534), Some(65534)).unwrap();
    }

    #[test]
    fn a_private_directory_under_tmp_is_trusted() {
        let dir = base();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        chmod(&state, 0o700);
        assert!(check_chain(&state, me()).is_empty());
        // Not there yet: /tmp's sticky bit makes the directories above acceptable.
        let problems = check_chain(&dir.path().join("new/deeper"), me());
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_directory_of_another_user_is_refused_with_its_path_and_fix() {
        let dir = base();
        let state = dir.path().join("state");
        dir_of_nobody(&state);
        let problems = shown(check_chain(&state, 0));
        assert_eq!(problems.len(), 1, "{problems:?}");
        let shown = state.display().to_string();
        assert!(problems[0].contains("uid 65534"), "{problems:?}");
        assert!(
            problems[0].contains(&format!("chown root:root {shown}")),
            "{problems:?}"
        );
        // Below it, too: the owner could swap the whole subtree.
        assert_eq!(check_chain(&state.join("sub"), 0).len(), 1);
    }

    #[test]
    fn a_writable_directory_is_refused_even_with_the_sticky_bit() {
        let dir = base();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        for mode in [0o775, 0o757, 0o1777] {
            chmod(&state, mode);
            let problems = shown(check_chain(&state, me()));
            assert_eq!(problems.len(), 1, "{mode:o}: {problems:?}");
            assert!(problems[0].contains("chmod go-w"), "{problems:?}");
        }
    }

    #[test]
    fn a_writable_parent_is_refused_unless_sticky() {
        let dir = base();
        let parent = dir.path().join("shared");
        let state = parent.join("state");
        std::fs::create_dir_all(&state).unwrap();
        chmod(&parent, 0o777);
        let problems = shown(check_chain(&state, me()));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains(&parent.display().to_string()) && problems[0].contains("sticky"),
            "{problems:?}"
        );
        chmod(&parent, 0o1777);
        assert!(check_chain(&state, me()).is_empty());
    }

    #[test]
    fn a_link_is_checked_where_it_points() {
        let dir = base();
        let elsewhere = dir.path().join("elsewhere");
        dir_of_nobody(&elsewhere);
        let link = dir.path().join("state");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        let problems = shown(check_chain(&link, 0));
        assert!(
            problems
                .iter()
                .any(|p| p.contains(&elsewhere.display().to_string())),
            "{problems:?}"
        );
    }

    #[test]
    fn a_file_in_place_of_a_directory_is_refused() {
        let dir = base();
        let file = dir.path().join("state");
        std::fs::write(&file, "").unwrap();
        let problems = shown(check_chain(&file, me()));
        assert!(problems[0].contains("not a directory"), "{problems:?}");
    }

    #[test]
    fn open_nofollow_refuses_a_link_and_names_it() {
        let dir = base();
        let target = dir.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("db.redb");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = open_nofollow(OpenOptions::new().write(true), &link).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(err.to_string().contains("db.redb"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        open_nofollow(OpenOptions::new().read(true), &target).unwrap();
    }
}
