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
  sudo pictl import pskc tokens.pskc --password

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
    /// A PSKC file (RFC 6030), as token vendors ship HOTP and TOTP keys: plain, or encrypted
    /// with a pre-shared AES key (--key, --key-file) or a password (--password), each
    /// encrypted value's MAC checked.
    #[command(after_help = PSKC_AFTER_HELP)]
    Pskc(ImportPskcArgs),
}

const PSKC_AFTER_HELP: &str = "\
The whole file is read, decrypted and checked before anything is sent: a wrong key or password,
a changed file (a MAC that does not match) or a key package pictl cannot read imports nothing,
and each problem is named by key package and element, never by its value. Keys are owned by the
UserId the file gives each, or by --user; with --pool, keys without a UserId go into that
realm's pool instead of being refused (a key already in the pool is left alone). Counters come
along; a TOTP key accepts no code from before the import.

Examples:
  sudo pictl import pskc tokens.pskc --dry-run
  sudo pictl import pskc tokens.pskc --key-file /root/vendor-transport.key
  sudo pictl import pskc tokens.pskc --key 12345678901234567890123456789012
  sudo pictl import pskc tokens.pskc --password --user alice
  sudo pictl import pskc tokens.pskc --key-file /root/vendor-transport.key --pool staff

The file holds the keys (in clear text, or with the key or password beside it): delete it once
the import is done.";

#[derive(Debug, Args)]
pub struct ImportOathArgs {
    /// The usersfile, e.g. /etc/users.oath.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub common: ImportCommon,
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
    #[command(flatten)]
    pub common: ImportCommon,
}

#[derive(Debug, Args)]
pub struct ImportPskcArgs {
    /// The PSKC file (a KeyContainer, PSKC 1.0).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The pre-shared key the secrets are encrypted with, in hex (16, 24 or 32 bytes).
    #[arg(long, value_name = "HEX", conflicts_with_all = ["key_file", "password"])]
    pub key: Option<String>,
    /// A file holding the pre-shared key, in hex on its first line (keeps it out of the shell
    /// history and the process list).
    #[arg(long, value_name = "PATH", conflicts_with = "password")]
    pub key_file: Option<PathBuf>,
    /// The secrets are encrypted with a key derived from a password: ask it on the terminal
    /// (without echo), or read one line from standard input.
    #[arg(long)]
    pub password: bool,
    /// The owner of every key in the file, instead of each key's UserId.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Keys without a UserId go into this realm's pool, for its users to claim by logging in
    /// (`autoassignment`); keys with one still go to their users.
    #[arg(long, value_name = "REALM", conflicts_with = "user")]
    pub pool: Option<String>,
    #[command(flatten)]
    pub common: ImportCommon,
}

/// What every import takes: the realm of the tokens' owners, and a dry run.
#[derive(Debug, Args)]
pub struct ImportCommon {
    /// Realm of the tokens' owners [default: pid.toml `default_realm`].
    #[arg(long, value_name = "REALM")]
    pub realm: Option<String>,
    /// Read and check everything and say what would be imported; import nothing.
    #[arg(long)]
    pub dry_run: bool,
}
