//! The accept loop. Bounded: at most `max_connections` are served at once; the rest wait in the
//! kernel's backlog, so a flood of connections costs the daemon nothing but a queue. Users
//! (every account but root) have a smaller share of that, counted as each connection is
//! accepted (see `connection::admit`): the rest is root's, for sshd, login, su and sudo.

use crate::error::PidError;
use crate::State;
use std::future::Future;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Create the socket's directory, remove a stale socket (refusing if a daemon still answers on
/// it), bind, and open the socket to everyone (mode 0666): authorisation is per request.
pub fn bind(path: &Path) -> Result<UnixListener, PidError> {
    bind_with(path, || {})
}

/// `bind`, with `after_bind` run right after bind(2): the moment someone who can write in the
/// socket's directory would swap the new socket for a symbolic link (tests).
///
/// Threat: setting the mode by path after bind(2) follows whatever the path names by then; a
/// symbolic link swapped in made a root file 0600 → 0666. fchmod on the socket's descriptor
/// does not change the file's mode on Linux, and a umask around bind(2) is process-wide (it
/// would also apply to files other threads create meanwhile). So the socket is bound in a
/// fresh directory only this process can enter, given its mode there, and renamed into place:
/// rename(2) replaces whatever the path names and never follows it.
fn bind_with(path: &Path, after_bind: impl FnOnce()) -> Result<UnixListener, PidError> {
    use std::os::unix::fs::DirBuilderExt;
    let fail = |action: &'static str, e| PidError::file(action, path, e);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(PidError::Startup(format!(
            "socket {} names no file in a directory; choose a path such as /run/pi/pid.sock",
            path.display()
        )));
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| PidError::file("create socket directory", dir, e))?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(PidError::Startup(format!(
                "{} exists and is not a socket; remove it or choose another `socket`",
                path.display()
            )));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(PidError::Startup(format!(
                "another daemon is answering on {}; stop it first",
                path.display()
            )));
        }
        std::fs::remove_file(path).map_err(|e| fail("remove stale socket", e))?;
    }
    let staging = dir.join(format!(
        ".{}.bind-{:016x}",
        name.to_string_lossy(),
        rand::random::<u64>()
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(|e| fail("create a private directory next to", e))?;
    let staged = staging.join(name);
    let bound = std::os::unix::net::UnixListener::bind(&staged)
        .map_err(|e| fail("listen on", e))
        .and_then(|listener| {
            after_bind();
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o666))
                .map_err(|e| fail("set the mode of", e))?;
            std::fs::rename(&staged, path).map_err(|e| fail("move the socket to", e))?;
            Ok(listener)
        });
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&staging);
    let listener = bound?;
    listener
        .set_nonblocking(true)
        .map_err(|e| fail("listen on", e))?;
    UnixListener::from_std(listener).map_err(|e| fail("listen on", e))
}

/// Serve on a listening socket systemd passed (`systemd::Environment::listener` checked that it
/// is a Unix stream socket listening on `path`). Its file and mode are the `.socket` unit's.
pub fn adopt(passed: std::os::fd::OwnedFd, path: &Path) -> Result<UnixListener, PidError> {
    let listener = std::os::unix::net::UnixListener::from(passed);
    listener
        .set_nonblocking(true)
        .map_err(|e| PidError::file("listen on the passed socket", path, e))?;
    UnixListener::from_std(listener)
        .map_err(|e| PidError::file("listen on the passed socket", path, e))
}

/// Serve until `shutdown` resolves, then give open connections a moment to finish.
pub async fn run(listener: UnixListener, state: Arc<State>, shutdown: impl Future<Output = ()>) {
    // Fixed at start: a reload cannot resize the semaphore under open connections.
    let max = state.live().config.limits.max_connections as usize;
    let permits = Arc::new(Semaphore::new(max));
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(peer) = crate::connection::admit(&state, &stream) else {
            continue;
        };
        let state = state.clone();
        tasks.spawn(async move {
            crate::connection::serve(state, stream, peer).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        tracing::info!("closing connections still open at shutdown");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[tokio::test]
    async fn the_socket_is_open_to_everyone_and_nothing_is_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pid.sock");
        let _listener = bind(&path).unwrap();
        assert!(std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_socket());
        assert_eq!(mode(&path), 0o666);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["pid.sock"], "the private directory is gone");
        std::os::unix::net::UnixStream::connect(&path).unwrap();
    }

    /// The attack: right after bind(2), the socket path becomes a symbolic link to a private
    /// file. Setting the mode by path would make that file 0666.
    #[tokio::test]
    async fn a_symlink_swapped_in_after_bind_does_not_get_the_sockets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pid.sock");
        let victim = dir.path().join("shadow");
        std::fs::write(&victim, "root's secret").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
        let _listener = bind_with(&path, || {
            let _ = std::fs::remove_file(&path);
            std::os::unix::fs::symlink(&victim, &path).unwrap();
        })
        .unwrap();
        assert_eq!(mode(&victim), 0o600, "the linked file kept its mode");
        assert!(
            std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_socket(),
            "the link was replaced by the socket"
        );
        assert_eq!(mode(&path), 0o666);
        std::os::unix::net::UnixStream::connect(&path).unwrap();
    }
}
