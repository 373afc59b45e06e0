//! What a client asks. bincode encodes the variant *index*: append new variants at the end only.

use crate::admin::AdminRequest;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Daemon version, store, token count, uptime. Any caller.
    Status,
    /// Start an authentication conversation for `user` (the PAM user).
    AuthBegin(AuthBegin),
    /// Answer the prompt of an `AuthStep`. Info/Error prompts are answered with an empty secret.
    AuthContinue { session: u64, answer: Secret },
    /// Token administration: root and members of `admin_group` only.
    Admin(AdminRequest),
    /// The authorized SSH keys of login `user`, for sshd's AuthorizedKeysCommand: the keys
    /// attached to this host, or with `service_id` the keys attached for that service on any
    /// host (privacyIDEA's ssh application). Root and the configured `[ssh] keys_users`
    /// (default `nobody`) may ask.
    SshKeys {
        user: String,
        service_id: Option<String>,
    },
    /// Set a new PIN with the ticket of a login that was accepted with a PIN change due
    /// (`Outcome::AcceptPinChangeDue`). Only the uid that logged in may use the ticket; it is
    /// spent once the PIN is set, and expires within minutes. Answered with
    /// `Response::PinChanged`, or an error saying why the PIN was refused.
    PinChange { ticket: Secret, pin: Secret },
}

/// The PAM items the module passes on. The daemon decides everything else.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthBegin {
    /// The login name as PAM has it (`PAM_USER`); `user@realm` is split by the daemon.
    pub user: String,
    /// `PAM_SERVICE`, e.g. `sshd`, `sudo`, `login`.
    pub service: String,
    pub rhost: Option<String>,
    pub tty: Option<String>,
    pub ruser: Option<String>,
    /// A password already collected by an earlier module (`use_first_pass`/`try_first_pass`).
    /// When present the daemon checks it without prompting.
    pub authtok: Option<Secret>,
}
