//! `pictl ssh …`.

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum SshCommand {
    /// Print the authorized keys of LOGIN on this host, one per line, for sshd.
    #[command(after_help = SSH_KEYS_AFTER_HELP)]
    Keys(SshKeysArgs),
}

const SSH_KEYS_AFTER_HELP: &str = "\
In /etc/ssh/sshd_config:
  AuthorizedKeysCommand /usr/local/sbin/pictl ssh keys %u
  AuthorizedKeysCommandUser nobody

Prints the keys of enabled, unrevoked, unexpired sshkey tokens attached to this host for LOGIN
(`pictl machine attach SERIAL --app ssh --user LOGIN`). When the daemon does not answer within
a few seconds, it prints nothing and exits 0, so sshd goes on with its other methods instead of
hanging. Only root and the accounts in pid.toml [ssh] keys_users (default nobody) may ask.";

#[derive(Debug, Args)]
pub struct SshKeysArgs {
    /// The login name sshd asks about (`%u`).
    #[arg(value_name = "LOGIN")]
    pub user: String,
    /// The keys attached for this service id on any host, instead of this host's keys.
    #[arg(long, value_name = "ID")]
    pub service_id: Option<String>,
}
