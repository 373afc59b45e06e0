//! MachineToken assignments (privacyIDEA's `machinetoken`): a token attached to a host for an
//! application — an SSH key for sshd, a Yubikey secret for a LUKS volume, HOTP values for
//! offline use. Append-only, like every wire type.

use crate::named::named_enum;
use crate::secret::Secret;
use crate::token::TokenType;
use serde::{Deserialize, Serialize};

named_enum! {
    /// What the attached token is for on the host.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum MachineApp {
        /// An `sshkey` token's public key, printed by `pictl ssh keys` for sshd.
        Ssh => "ssh",
        /// A Yubikey's HMAC-SHA1 challenge-response secret (a TOTP token `UBOM…`) unlocking a
        /// LUKS volume.
        Luks => "luks",
        /// HOTP values handed out for logins while the token's server cannot be reached.
        Offline => "offline",
    }
}

/// The options of an assignment (privacyIDEA's `machinetokenoptions`), typed. Which ones an
/// application takes: ssh `user`, `service_id`; luks `slot`, `device`, `concatenate`;
/// offline `count`, `rounds`. The daemon refuses the others.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineOptions {
    /// ssh: the login name on this host the key lets in (privacyIDEA's option `user`;
    /// default `root`, as privacyIDEA documents).
    pub user: Option<String>,
    /// ssh: the service id (privacyIDEA's `service_id`), a label for a group of SSH servers.
    pub service_id: Option<String>,
    /// luks: the key slot (1–7; slot 0 is never touched).
    pub slot: Option<u8>,
    /// luks: the block device or image the volume is on.
    pub device: Option<String>,
    /// luks: the passphrase is the password followed by the response (yubikey-luks'
    /// `CONCATENATE=1`) instead of the response alone.
    pub concatenate: bool,
    /// offline: how many values are handed out (privacyIDEA's default 100).
    pub count: Option<u32>,
    /// offline: PBKDF2-SHA512 rounds of each value's hash (privacyIDEA's default 6549).
    pub rounds: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineAttach {
    pub serial: String,
    pub app: MachineApp,
    /// `None`: the daemon's host.
    pub host: Option<String>,
    pub options: MachineOptions,
}

/// One assignment as administrators see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineTokenInfo {
    pub serial: String,
    #[serde(rename = "type")]
    pub token_type: TokenType,
    pub app: MachineApp,
    pub host: String,
    pub options: MachineOptions,
    /// Unix seconds.
    pub created: i64,
}

/// The passphrase material of one LUKS assignment: what the Yubikey answers to the password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LuksResponse {
    pub serial: String,
    pub slot: Option<u8>,
    pub device: Option<String>,
    pub concatenate: bool,
    /// Lowercase hex HMAC-SHA1(secret, password): what `ykchalresp -2` prints.
    pub response: Secret,
}
