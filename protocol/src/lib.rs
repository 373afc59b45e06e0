//! The wire protocol between `pam_pi`, `pictl` and the `pid` daemon (docs/protocol.md).
//!
//! Frame: `u32` big-endian length, `u16` big-endian version, bincode-2 body. Every enum here is
//! append-only because bincode encodes variant indices; `tests/golden.rs` pins the bytes.

pub mod admin;
pub mod client;
#[cfg(feature = "tokio")]
pub mod codec;
pub mod error;
pub mod frame;
pub mod machine;
mod named;
pub mod paths;
pub mod request;
pub mod response;
pub mod secret;
pub mod text;
pub mod token;

pub use admin::{
    AdminRequest, AdminResponse, AuditEntry, EnrollRequest, Enrolled, ImportOutcome, ImportRequest,
    ImportResult, ImportedToken, OfflineInfo, PolicyDecision, PolicyReport, TokenInfo,
    TokenSettings, UpcomingOtp, UpstreamInfo, UserRef,
};
pub use client::Client;
pub use error::{ClientError, ErrorCode, FrameError};
pub use machine::{LuksResponse, MachineApp, MachineAttach, MachineOptions, MachineTokenInfo};
pub use request::{AuthBegin, Request};
pub use response::{Outcome, Prompt, Response, StatusInfo};
pub use secret::Secret;
pub use token::{HashAlgorithm, TokenType};
