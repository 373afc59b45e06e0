//! `pictl import …`.

use clap::{Args, Subcommand};
use std::path::PathBuf;

pub(super) const IMPORT_AFTER_HELP: &str = "\
Every line or file is checked first: if one cannot be read, nothing is imported and each
problem is named (by file and line, never by its secret). Then each token is imported on its
own: one the daemon refuses (an unknown user, a key too short, a policy) is listed, the others
are imported. A token the user already has (same type and key) is left alone, so running the
import again after fixing refused lines is safe. Keys travel to pid over its socket only.

Replay protection comes along: no code pam_oath accepted is accepted after the import. An HOTP
token continues after the last counter pam_oath accepted; a TOTP token accepts neither a code
from before the import nor any up to pam_oath's last code (found near the line's timestamp, read
in this host's time zone).

Examples:
  sudo pictl import oath /etc/users.oath --dry-run
  sudo pictl import oath /etc/users.oath
  sudo pictl import google-authenticator /home/*/.google_authenticator
  sudo pictl import google-authenticator --user alice /srv/ga/alice

Then replace pam_oath or pam_google_authenticator with pam_pi in /etc/pam.d (see README).
The old files still hold the secrets in clear text: delete them once logins work.";

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// pam_oath's usersfile: one token per line (`HOTP/T30 alice - 3132…`), per-line passwords
    /// (as token PINs) and the last code each line accepted carried over.
    Oath(ImportOathArgs),
    /// google-authenticator-libpam's secret files: the TOTP or HOTP secret as a token, and the
    /// unused scratch codes as a TAN list (each accepted once).
    #[command(name = "google-authenticator")]
    GoogleAuthenticator(ImportGoogleArgs),
}

#[derive(Debug, Args)]
pub struct ImportOathArgs {
    /// The usersfile, e.g. /etc/users.oath.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Realm of the users named in the file [default: pid.toml `default_realm`].
    #[arg(long, value_name = "REALM")]
    pub realm: Option<String>,
    /// Check the file and say what would be imported; import nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ImportGoogleArgs {
    /// Secret files, e.g. /home/*/.google_authenticator. A file belongs to its owner, unless
    /// --user names someone else; symbolic links are refused.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// The user a single file belongs to, instead of the file's owner.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Realm of the users [default: pid.toml `default_realm`].
    #[arg(long, value_name = "REALM")]
    pub realm: Option<String>,
    /// Check the files and say what would be imported; import nothing.
    #[arg(long)]
    pub dry_run: bool,
}
