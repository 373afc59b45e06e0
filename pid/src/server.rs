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
    use std::os::unix::fs::DirBuilderExt;
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(|e| {
                    PidError::Startup(format!(
                        "cannot create socket directory {}: {e}",
                        dir.display()
                    ))
                })?;
        }
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
        std::fs::remove_file(path).map_err(|e| {
            PidError::Startup(format!(
                "cannot remove stale socket {}: {e}",
                path.display()
            ))
        })?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| PidError::Startup(format!("cannot listen on {}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .map_err(|e| PidError::Startup(format!("cannot chmod {}: {e}", path.display())))?;
    Ok(listener)
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
