//! `pictl machine …`.

use clap::{Args, Subcommand, ValueEnum};

pub(super) const MACHINE_AFTER_HELP: &str = "\
Applications (privacyIDEA's machine applications):
  ssh      an sshkey token's key, printed by `pictl ssh keys LOGIN` for sshd
  luks     a Yubikey's challenge-response secret (a totp token UBOM<serial>_2) for a LUKS volume
  offline  HOTP values for logins while the token's server cannot be reached

Examples:
  sudo pictl machine attach SSHK1A2B3C4D --app ssh --user alice
  sudo pictl machine attach UBOM12345678_2 --app luks --slot 1 --device /dev/sda3
  sudo pictl machine list --app ssh
  sudo pictl machine detach SSHK1A2B3C4D --app ssh";

#[derive(Debug, Subcommand)]
pub enum MachineCommand {
    /// Attach a token to a host (this one by default) for an application.
    Attach(MachineAttachArgs),
    /// Remove a token's assignment to a host for an application.
    Detach(MachineDetachArgs),
    /// List assignments (all unless filtered).
    List(MachineListArgs),
}

/// The applications a token can be attached for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AppArg {
    /// An sshkey token's public key for sshd (options --user, --service-id).
    Ssh,
    /// A Yubikey's HMAC-SHA1 secret for a LUKS volume (options --slot, --device,
    /// --concatenate).
    Luks,
    /// HOTP values for offline logins (options --count, --rounds).
    Offline,
}

impl From<AppArg> for protocol::MachineApp {
    fn from(a: AppArg) -> Self {
        match a {
            AppArg::Ssh => protocol::MachineApp::Ssh,
            AppArg::Luks => protocol::MachineApp::Luks,
            AppArg::Offline => protocol::MachineApp::Offline,
        }
    }
}

#[derive(Debug, Args)]
pub struct MachineAttachArgs {
    /// Serial of the token.
    #[arg(value_name = "SERIAL")]
    pub serial: String,
    /// What the token is for on the host.
    #[arg(long, value_enum, value_name = "APP")]
    pub app: AppArg,
    /// The host [default: this host's name].
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// ssh: the login name on the host the key lets in [default: root].
    #[arg(long, value_name = "LOGIN")]
    pub user: Option<String>,
    /// ssh: a service id grouping SSH servers (`pictl ssh keys --service-id ID` on each).
    #[arg(long, value_name = "ID")]
    pub service_id: Option<String>,
    /// luks: the key slot the response goes to, 1 to 31 (slot 0 is never touched).
    #[arg(long, value_name = "N")]
    pub slot: Option<u8>,
    /// luks: the LUKS device or image.
    #[arg(long, value_name = "PATH")]
    pub device: Option<String>,
    /// luks: the passphrase is the password followed by the response (yubikey-luks
    /// CONCATENATE=1), not the response alone.
    #[arg(long)]
    pub concatenate: bool,
    /// offline: how many values to hand out [default: 100].
    #[arg(long, value_name = "N")]
    pub count: Option<u32>,
    /// offline: PBKDF2-SHA512 rounds per value [default: 6549].
    #[arg(long, value_name = "N")]
    pub rounds: Option<u32>,
}

#[derive(Debug, Args)]
pub struct MachineDetachArgs {
    /// Serial of the token.
    #[arg(value_name = "SERIAL")]
    pub serial: String,
    /// The application it is attached for.
    #[arg(long, value_enum, value_name = "APP")]
    pub app: AppArg,
    /// The host [default: this host's name].
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
}

#[derive(Debug, Args)]
pub struct MachineListArgs {
    /// Only this token's assignments.
    #[arg(long, value_name = "SERIAL")]
    pub serial: Option<String>,
    /// Only assignments for this application.
    #[arg(long, value_enum, value_name = "APP")]
    pub app: Option<AppArg>,
    /// Only assignments to this host [default: every host].
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
}
