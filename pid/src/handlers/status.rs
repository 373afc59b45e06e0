use crate::caller::Caller;
use crate::State;
use protocol::paths::PROTOCOL_VERSION;
use protocol::{Response, StatusInfo};

pub fn status(state: &State, caller: &Caller) -> Response {
    Response::Status(StatusInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol: PROTOCOL_VERSION,
        // Paths are for administrators only.
        store_path: if caller.is_admin {
            state.store.path().display().to_string()
        } else {
            String::new()
        },
        tokens: state.store.count_tokens(),
        uptime_secs: state.started.elapsed().as_secs(),
        caller_is_admin: caller.is_admin,
        notices: if caller.is_admin {
            notices(state)
        } else {
            Vec::new()
        },
    })
}

/// What an administrator should know about the daemon's health.
fn notices(state: &State) -> Vec<String> {
    let mut notices: Vec<String> = state.store.health().into_iter().collect();
    notices.extend(state.live().unavailable.iter().cloned());
    let (held, top) = state.user_connections.held();
    let limits = &state.live().config.limits;
    if let Some((uid, n)) = top.filter(|_| held * 2 >= limits.user_connections) {
        notices.push(format!(
            "connections: users hold {held} of their {} (limits.user_connections); uid {uid} \
             holds {n}",
            limits.user_connections
        ));
    }
    notices
}
