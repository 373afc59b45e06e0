//! One client connection: identify the peer once, then serve frames until it goes quiet,
//! misbehaves or leaves.

use crate::caller::Caller;
use crate::dispatch::dispatch;
use crate::limits::{ConnectionRefused, UserConnection};
use crate::State;
use futures_util::{SinkExt, StreamExt};
use protocol::codec::FrameCodec;
use protocol::{ErrorCode, FrameError, Request, Response};
use std::sync::Arc;
use tokio::net::UnixStream;
use tokio_util::codec::Framed;

/// What a connection keeps between its requests: the conversation's sessions (see
/// `auth::session`).
pub use crate::auth::session::ConnState;

/// A peer let in: who it is, and its place among users' connections (none for root).
pub struct Admitted {
    uid: u32,
    gid: u32,
    pid: i32,
    account: u32,
    _counted: Option<UserConnection>,
}

/// Identify the peer and count a user's connection against its quota, on the accept loop: a
/// refusal costs a few system calls and no task, so a user who reconnects as fast as it can
/// does not slow the loop that root's logins queue at. `None`: refused (and told why) or gone.
pub fn admit(state: &State, stream: &UnixStream) -> Option<Admitted> {
    let cred = match stream.peer_cred() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read peer credentials; closing");
            return None;
        }
    };
    let (uid, gid, pid) = (cred.uid(), cred.gid(), cred.pid().unwrap_or(0));
    let account = crate::caller::account_of(uid, pid);
    let counted = if account == 0 {
        None
    } else {
        let limits = &state.live().config.limits;
        match state.user_connections.admit(
            account,
            limits.user_connections_per_uid,
            limits.user_connections,
        ) {
            Ok(counted) => Some(counted),
            Err(refused) => {
                refuse_connection(state, stream, account, refused);
                return None;
            }
        }
    };
    Some(Admitted {
        uid,
        gid,
        pid,
        account,
        _counted: counted,
    })
}

/// Tell a user over its quota why, without waiting for it to read, and let the caller close.
/// The refusal is counted for the audit trail (one summary per user and minute, not a record
/// per connection: see `audit`).
fn refuse_connection(state: &State, stream: &UnixStream, account: u32, refused: ConnectionRefused) {
    let message = match refused {
        ConnectionRefused::Uid { held } => format!(
            "uid {account} already holds {held} connections to pid \
             (limits.user_connections_per_uid); close some and try again"
        ),
        ConnectionRefused::AllUsers { held } => format!(
            "users hold {held} connections to pid already (limits.user_connections); try again \
             later"
        ),
    };
    crate::audit::refused_connection(state, account);
    let answer = Response::Error {
        code: ErrorCode::RateLimited,
        message,
    };
    if let Ok(bytes) = protocol::frame::encode(&answer) {
        // A fresh socket's buffer takes it whole; a short or failed write is not retried.
        let _ = stream.try_write(&bytes);
    }
}

/// Serve an admitted peer's requests until it goes quiet, misbehaves or leaves.
pub async fn serve(state: Arc<State>, stream: UnixStream, peer: Admitted) {
    let Admitted {
        uid,
        gid,
        pid,
        account,
        _counted,
    } = peer;
    let mut framed = Framed::new(stream, FrameCodec::<Request, Response>::default());
    let admin_group = state.live().config.admin_group.clone();
    // A group lookup goes through NSS, which may block on LDAP: on the blocking pool, and only
    // when needed (a thread hop per connection is a visible part of a PAM login).
    let caller = match Caller::identify_at_once(uid, gid, pid, account, &admin_group) {
        Some(c) => c,
        None => {
            match tokio::task::spawn_blocking(move || {
                Caller::identify(uid, gid, pid, account, &admin_group)
            })
            .await
            {
                Ok(c) => c,
                Err(_) => return,
            }
        }
    };
    tracing::debug!(uid, pid, account, admin = caller.is_admin, "connection");
    let mut conn = ConnState::default();
    let idle = state.idle_timeout(&caller);
    // Only a request that does something keeps the connection open: a peer that sends
    // `Status` now and then, or a frame a byte at a time, is closed when the time is up.
    let mut deadline = tokio::time::Instant::now() + idle;
    loop {
        let next = match tokio::time::timeout_at(deadline, framed.next()).await {
            Err(_) => {
                tracing::debug!(uid, "idle connection closed");
                break;
            }
            Ok(None) => break,
            Ok(Some(item)) => item,
        };
        let req = match next {
            Ok(req) => req,
            Err(e) => {
                // Answer once, then close: after a framing error the stream position is unknown.
                let code = match e {
                    FrameError::Version(_) => ErrorCode::VersionMismatch,
                    FrameError::Io(_) | FrameError::Closed => break,
                    _ => ErrorCode::Malformed,
                };
                tracing::debug!(uid, error = %e, "bad frame");
                let _ = framed
                    .send(Response::Error {
                        code,
                        message: e.to_string(),
                    })
                    .await;
                break;
            }
        };
        if !matches!(req, Request::Status) {
            deadline = tokio::time::Instant::now() + idle;
        }
        let resp = dispatch(&state, &caller, &mut conn, req).await;
        let sent = framed.send(resp).await;
        conn.answered();
        if let Err(e) = sent {
            tracing::debug!(uid, error = %e, "could not answer; closing");
            break;
        }
    }
}
