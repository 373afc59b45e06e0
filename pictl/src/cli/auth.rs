//! `pictl auth …`.

use clap::{Args, Subcommand};

const AUTH_TEST_AFTER_HELP: &str = "\
This is a real login, checked exactly as PAM's: a code it accepts is spent (the next login needs
a new one), and a wrong answer counts towards the token's fail counter and lockout.

pictl prints the daemon's prompts on stderr and reads one answer per prompt from stdin, with
echo off when stdin is a terminal. Answers can be piped in for scripts.

Examples:
  pictl auth test --user alice
  printf '%s\\n' \"$PIN$OTP\" | pictl auth test --user alice --service sshd

Exit status: 0 accepted; 1 rejected, no token, or unknown user; 3 daemon unavailable.";

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Log in as a user the way PAM does, on this terminal, and report the verdict: a real login
    /// that spends the code it is given.
    #[command(after_help = AUTH_TEST_AFTER_HELP)]
    Test(AuthTestArgs),
}

#[derive(Debug, Args)]
pub struct AuthTestArgs {
    /// The login name to authenticate. Non-administrators may only test their own account.
    #[arg(long, value_name = "USER")]
    pub user: String,
    /// PAM service name the daemon sees (policies may differ per service).
    #[arg(long, value_name = "SERVICE", default_value = "pictl")]
    pub service: String,
}
