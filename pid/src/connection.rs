//! One client connection: identify the peer once, then serve frames until it goes quiet,
//! misbehaves or leaves.

use crate::auth::session::Sessions;
use crate::caller::Caller;
use crate::dispatch::dispatch;
use crate::State;
use futures_util::{SinkExt, StreamExt};
use protocol::codec::FrameCodec;
use protocol::{ErrorCode, FrameError, Request, Response};
use std::sync::Arc;
use tokio::net::UnixStream;
use tokio_util::codec::Framed;

/// State that lives as long as the connection (sessions cannot be addressed from elsewhere).
#[derive(Default)]
pub struct ConnState {
    pub sessions: Sessions,
    /// A log line about the request being answered, written once the answer is sent: a write
    /// to the log (journald's socket, a file) is nothing a login should wait for.
    after_answer: Option<Box<dyn FnOnce() + Send>>,
}

impl ConnState {
    /// Log `line` after the answer to the current request has been sent (or failed to send).
    pub fn log_after_answer(&mut self, line: impl FnOnce() + Send + 'static) {
        self.after_answer = Some(Box::new(line));
    }

    fn answered(&mut self) {
        if let Some(line) = self.after_answer.take() {
            line();
        }
    }
}

pub async fn serve(state: Arc<State>, stream: UnixStream) {
    let cred = match stream.peer_cred() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read peer credentials; closing");
            return;
        }
    };
    let (uid, gid, pid) = (cred.uid(), cred.gid(), cred.pid().unwrap_or(0));
    let admin_group = state.live().config.admin_group.clone();
    // A group lookup goes through NSS, which may block on LDAP: on the blocking pool, and only
    // when needed (a thread hop per connection is a visible part of a PAM login).
    let caller = match Caller::identify_at_once(uid, gid, pid, &admin_group) {
        Some(c) => c,
        None => {
            match tokio::task::spawn_blocking(move || Caller::identify(uid, gid, pid, &admin_group))
                .await
            {
                Ok(c) => c,
                Err(_) => return,
            }
        }
    };
    tracing::debug!(uid, pid, admin = caller.is_admin, "connection");
    let mut framed = Framed::new(stream, FrameCodec::<Request, Response>::default());
    let mut conn = ConnState::default();
    let idle = state.idle_timeout();
    loop {
        let next = match tokio::time::timeout(idle, framed.next()).await {
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
        let resp = dispatch(&state, &caller, &mut conn, req).await;
        let sent = framed.send(resp).await;
        conn.answered();
        if let Err(e) = sent {
            tracing::debug!(uid, error = %e, "could not answer; closing");
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_line_kept_for_after_the_answer_is_logged_once_and_not_before() {
        let logged = Arc::new(AtomicUsize::new(0));
        let mut conn = ConnState::default();
        conn.answered();
        let counter = logged.clone();
        conn.log_after_answer(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(logged.load(Ordering::SeqCst), 0, "not before the answer");
        conn.answered();
        conn.answered();
        assert_eq!(logged.load(Ordering::SeqCst), 1, "once, for its own answer");
    }
}
