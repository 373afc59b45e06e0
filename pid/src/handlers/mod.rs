//! Request handlers, one file per area. They are reached only through `dispatch`, after the
//! caller was authorised for the request.

pub mod admin;
pub mod auth;
pub mod ssh_keys;
pub mod status;

use crate::error::{chain, PidError};
use protocol::paths::MAX_TEXT_LEN;
use protocol::Response;

/// Free text from a peer (service, remote host, description …): bounded, no control characters,
/// so it is safe to store, audit and print.
pub fn validate_text(name: &str, value: &str) -> Result<(), PidError> {
    if value.len() > MAX_TEXT_LEN || value.chars().any(|c| c.is_control()) {
        return Err(PidError::InvalidArgument(format!(
            "{name} must be at most {MAX_TEXT_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

pub fn error_response(e: &PidError) -> Response {
    if e.code() == protocol::ErrorCode::Internal {
        tracing::error!(error = %chain(e), "request failed");
    }
    Response::Error {
        code: e.code(),
        message: e.public_message(),
    }
}
