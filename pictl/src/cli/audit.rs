//! `pictl audit …`.

use clap::{Args, Subcommand};

const AUDIT_AFTER_HELP: &str = "\
Examples:
  sudo pictl audit show
  sudo pictl audit show --user alice --limit 10
  sudo pictl --json audit show --limit 500 > audit.json";

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print audit entries, newest first.
    #[command(after_help = AUDIT_AFTER_HELP)]
    Show(AuditShowArgs),
}

#[derive(Debug, Args)]
pub struct AuditShowArgs {
    /// Only entries about this user (`alice@realm` also names the realm).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Only entries in this realm [default: all realms].
    #[arg(long, value_name = "REALM")]
    pub realm: Option<String>,
    /// How many entries to print at most, newest first.
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub limit: u32,
}
