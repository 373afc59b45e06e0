//! Request handlers, one file per area. They are reached only through `dispatch`, after the
//! caller was authorised for the request.

pub mod admin;
pub mod auth;
pub mod status;

use crate::error::PidError;
use protocol::Response;

pub fn error_response(e: &PidError) -> Response {
    if e.code() == protocol::ErrorCode::Internal {
        tracing::error!(error = %e, "request failed");
    }
    Response::Error {
        code: e.code(),
        message: e.public_message(),
    }
}
