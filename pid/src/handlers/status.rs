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
    })
}
