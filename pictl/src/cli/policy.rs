//! `pictl policy …`.

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Show the policies that apply to USER logging in through SERVICE from RHOST, and the value
    /// each action takes: the answer to "why does this login behave as it does?".
    #[command(after_help = POLICY_AFTER_HELP)]
    Check(PolicyCheckArgs),
}

const POLICY_AFTER_HELP: &str = "Examples:
  pictl policy check --user alice --service sudo
  pictl policy check --user alice --service sshd --rhost 192.0.2.7
  pictl --json policy check --user bob@contractors --service sshd

Policies are declared in pid.toml ([[policy]]) and applied with `systemctl reload pid`.";

#[derive(Debug, Args)]
pub struct PolicyCheckArgs {
    /// The user (`alice@realm` also names the realm).
    #[arg(long, value_name = "USER")]
    pub user: String,
    /// The user's realm [default: the daemon's default realm].
    #[arg(long, value_name = "REALM")]
    pub realm: Option<String>,
    /// The PAM service of the login, as in /etc/pam.d (sshd, sudo, login …).
    #[arg(long, value_name = "SERVICE", default_value = "login")]
    pub service: String,
    /// The remote host the login comes from (an IP address), if any.
    #[arg(long, value_name = "IP")]
    pub rhost: Option<String>,
}
