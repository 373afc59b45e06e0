//! `pictl enroll …`: a user enrolls a token for themselves.

use super::values::{parse_pin, PinArg};
use clap::{Args, ValueEnum};
use protocol::TokenType;
use std::path::PathBuf;

pub(super) const ENROLL_AFTER_HELP: &str = "\
pictl shows the new token's QR code, otpauth URL and key once: scan the code with your
authenticator app (or type the key). The token logs in only after you typed two consecutive codes
it shows: pictl asks for them right away (for totp, type the code shown, wait until the app
shows the next one, type that). A token you never saw working is never a way in.

The first time, pictl then shows a recovery code once: it logs you in (once) when the phone is
lost. --recovery-file PATH also writes it to a new file only you can read (mode 0600). Keep it
away from this host: on paper, or in your password manager.

Which types you may enroll, and how many tokens you may have, is up to the `user` and
`enrollment` policies in pid.toml; `pictl token list` shows your tokens.

With --json pictl prints the enrollment and asks nothing: verify with
`pictl token verify SERIAL CODE NEXT-CODE` afterwards.

Examples:
  pictl enroll totp
  pictl enroll totp --description phone --recovery-file ~/pi-recovery.txt
  printf '%s\\n' \"$PIN\" | pictl enroll hotp --pin -
  pictl --json enroll totp";

/// The token types a user enrolls with an authenticator app or a code generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SelfEnrollType {
    /// Time-based codes (RFC 6238): what authenticator apps show by default.
    Totp,
    /// Counter-based codes (RFC 4226): a new code each time the button is pressed.
    Hotp,
}

impl From<SelfEnrollType> for TokenType {
    fn from(t: SelfEnrollType) -> Self {
        match t {
            SelfEnrollType::Totp => TokenType::Totp,
            SelfEnrollType::Hotp => TokenType::Hotp,
        }
    }
}

#[derive(Debug, Args)]
pub struct SelfEnrollArgs {
    /// Token type: totp for authenticator apps, hotp for counter-based code generators.
    #[arg(value_enum, value_name = "TYPE")]
    pub token_type: SelfEnrollType,

    /// A PIN typed before each code [default: none, unless the enrollment policy requires
    /// one]. `-` reads it from stdin (on a terminal pictl asks twice).
    #[arg(long, value_name = "PIN", value_parser = parse_pin)]
    pub pin: Option<PinArg>,

    /// A note that tells your tokens apart, e.g. `phone`.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,

    /// Also write the recovery code, if one is made, to this new file (mode 0600). A path that
    /// exists is refused before anything is enrolled.
    #[arg(long, value_name = "PATH")]
    pub recovery_file: Option<PathBuf>,

    /// Draw the QR code even when stdout is not a terminal.
    #[arg(long, overrides_with = "no_qr")]
    pub qr: bool,

    /// Do not draw the QR code.
    #[arg(long, overrides_with = "qr")]
    pub no_qr: bool,
}
