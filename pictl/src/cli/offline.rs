//! `pictl offline …`.

use clap::{Args, Subcommand};

const OFFLINE_AFTER_HELP: &str = "\
Offline values are what a privacyIDEA server upstream hands out for a token attached `offline`
on the server: after an online login, this host keeps the hashes of the token's next codes so the
user can log in while the server cannot be reached. They are spent as they are used and refilled
when the server answers again. The values and the refill token are never shown.

Examples:
  sudo pictl offline status
  sudo pictl offline status --user alice@corp
  pictl offline status --user alice        (a user may see their own)";

#[derive(Debug, Subcommand)]
pub enum OfflineCommand {
    /// Show, per token, how many offline values remain, their counters, the last refill and
    /// the wrong offline codes.
    #[command(after_help = OFFLINE_AFTER_HELP)]
    Status(OfflineStatusArgs),
}

#[derive(Debug, Args)]
pub struct OfflineStatusArgs {
    /// Only this user's tokens (`alice@realm` also names the realm) [default: every user's; a
    /// user who is not an administrator sees their own].
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// The user's realm [default: the default realm, or the one in `--user`].
    #[arg(long, value_name = "REALM", requires = "user")]
    pub realm: Option<String>,
}
