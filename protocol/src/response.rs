//! What the daemon answers. bincode encodes the variant *index*: append new variants at the end only.

use crate::admin::AdminResponse;
use crate::error::ErrorCode;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The request failed. `message` is for the operator; it never carries a secret, a path or a
    /// store error text.
    Error {
        code: ErrorCode,
        message: String,
    },
    /// Show `prompt` and answer with `Request::AuthContinue { session, .. }`.
    AuthStep {
        session: u64,
        prompt: Prompt,
    },
    /// The conversation is over.
    AuthDone(Outcome),
    Status(StatusInfo),
    Admin(AdminResponse),
    /// `authorized_keys` lines, one key each.
    SshKeys {
        keys: Vec<String>,
    },
    /// The PIN of `Request::PinChange` is set and on disk.
    PinChanged {
        message: String,
    },
}

/// One thing for the PAM module to show. The module renders; it never decides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Prompt {
    /// Ask without echo (`PAM_PROMPT_ECHO_OFF`): PIN+OTP, passwords.
    Secret { text: String },
    /// Ask with echo (`PAM_PROMPT_ECHO_ON`).
    Echo { text: String },
    /// Tell (`PAM_TEXT_INFO`); answered with an empty secret.
    Info { text: String },
    /// Warn (`PAM_ERROR_MSG`); answered with an empty secret.
    Error { text: String },
}

/// The verdict. PAM maps it fail-closed (`pam_pi/src/error.rs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Accept {
        message: String,
    },
    Reject {
        message: String,
    },
    /// The user exists but has no token (`nullok` turns this into `PAM_IGNORE`).
    NoToken,
    /// The daemon does not know the user (`ignore_unknown_user` turns this into `PAM_IGNORE`).
    UnknownUser,
    /// The daemon cannot decide now (store or upstream failure): `PAM_AUTHINFO_UNAVAIL`.
    Unavailable,
    /// The authentication server upstream cannot be reached and nothing cached could decide:
    /// `PAM_AUTHINFO_UNAVAIL`, with a message for the user.
    ServerUnreachable {
        message: String,
    },
    /// Accepted (`PAM_SUCCESS`), but the token's PIN must change now: the module keeps
    /// `ticket` for this PAM transaction and asks for a new PIN in `pam_sm_chauthtok`
    /// (`Request::PinChange`).
    AcceptPinChangeDue {
        message: String,
        ticket: Secret,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    pub version: String,
    pub protocol: u16,
    /// Shown to administrators only; empty for other callers.
    pub store_path: String,
    pub tokens: u64,
    pub uptime_secs: u64,
    /// Whether the asking uid may administer (root or `admin_group`).
    pub caller_is_admin: bool,
    /// What an administrator should know and act on (a realm that did not load, failing store
    /// checkpoints, users holding many connections); empty for other callers.
    pub notices: Vec<String>,
}
