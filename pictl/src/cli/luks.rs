//! `pictl luks …`: LUKS key slots opened by a Yubikey's HMAC-SHA1 response.

use clap::{Args, Subcommand};
use std::path::PathBuf;

pub(super) const LUKS_AFTER_HELP: &str = "\
A key slot's passphrase is the Yubikey's HMAC-SHA1 response to a password, as 40 hex digits
(what `ykchalresp -2 PASSWORD` prints and Debian's yubikey-luks uses at boot), or the password
followed by it (`machine attach --concatenate`, yubikey-luks' CONCATENATE=1).

Examples:
  sudo pictl token enroll totp --user root --serial UBOM12345678_2 --otpkey HEX40
  sudo pictl machine attach UBOM12345678_2 --app luks --device /dev/sda3 --slot 1
  sudo pictl luks assign --device /dev/sda3
  sudo pictl luks unlock --device /dev/sda3 --name cryptroot
  sudo pictl luks unlock --device /dev/sda3 --test --responder-cmd 'ykchalresp -2 -x'";

const LUKS_ASSIGN_AFTER_HELP: &str = "\
For every luks assignment of this host (`pictl machine list --app luks`) whose --device is
DEVICE or unset, pid computes the Yubikey's response to the password, and pictl adds it to the
assignment's key slot with `cryptsetup luksAddKey`. The password is typed without echo (twice),
or read from stdin (one line) or --password-file. cryptsetup asks for an existing passphrase
unless --key-file gives it. Slot 0 is never touched; a slot in use is refused unless
--clear-slot, which empties it first (`cryptsetup luksKillSlot`). After `pictl machine detach`,
`--slot N --clear-slot` alone empties the slot.

When the assignments of DEVICE are for more than one Yubikey, pictl writes only those of the
plugged-in key: it reads the key's serial over PC/SC (its OTP application) and picks its
UBOM<serial>_<slot> tokens. --serial names the token or key instead and needs no key.
Reading the serial from a real Yubikey is not covered by pi's tests (there is no device in
them): the commands and answers are tested as bytes.

Examples:
  sudo pictl luks assign --device /dev/sda3
  sudo pictl luks assign --device /dev/sda3 --slot 2 --clear-slot --key-file /root/old.key
  sudo pictl luks assign --device /dev/sda3 --serial UBOM12345678_2
  sudo pictl --json luks assign --device /dev/sda3 --password-file /root/luks.pw";

const LUKS_UNLOCK_AFTER_HELP: &str = "\
The Yubikey is asked over PC/SC (pcscd) through its OTP application: the first reader named
\"Yubico\", or --reader. With --responder-cmd, any ykchalresp-compatible program answers
instead: pictl appends the challenge in hex and reads 40 hex digits from its output.

Without --yubikey-slot, pictl reads the plugged-in key's serial and asks pid for this host's
luks assignment UBOM<serial>_<slot> of DEVICE: its slot and its --concatenate are used. Two
keys plugged in are refused (name one with --reader). pi's tests have no Yubikey: the PC/SC
commands and answers (serial and challenge) are tested as bytes, not run on a device.

Exit status: 0 opened (or, with --test, the passphrase opens a slot); 1 the Yubikey's response
does not open the volume, or another failure; 2 usage error.

Examples:
  sudo pictl luks unlock --device /dev/sda3 --name cryptdata
  sudo pictl luks unlock --device /dev/sda3 --test --yubikey-slot 1 --reader '01 00'
  printf '%s\\n' \"$PW\" | sudo pictl luks unlock --device disk.img --test \\
      --responder-cmd 'ykchalresp -2 -x'";

#[derive(Debug, Subcommand)]
pub enum LuksCommand {
    /// Add the Yubikey's response to a password, computed by pid, to the key slot of each luks
    /// assignment of this host.
    #[command(after_help = LUKS_ASSIGN_AFTER_HELP)]
    Assign(LuksAssignArgs),
    /// Ask the plugged-in Yubikey for its response to a password and open the volume with it.
    #[command(after_help = LUKS_UNLOCK_AFTER_HELP)]
    Unlock(LuksUnlockArgs),
}

#[derive(Debug, Args)]
pub struct LuksAssignArgs {
    /// The LUKS volume: block device or image file.
    #[arg(long, value_name = "DEVICE")]
    pub device: PathBuf,
    /// The key slot, 1 to 31 [default: each assignment's --slot].
    #[arg(long, value_name = "N", value_parser = crate::luks::parse_slot)]
    pub slot: Option<u8>,
    /// Empty the slot first if it holds a key (without it, a slot in use is refused).
    #[arg(long)]
    pub clear_slot: bool,
    /// A file with an existing passphrase of the volume, passed to cryptsetup [default:
    /// cryptsetup asks on the terminal].
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// Read the password from the first line of this file instead of the terminal or stdin.
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<PathBuf>,
    /// The host whose assignments are used [default: the daemon's host name].
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// Only the assignment of this token (UBOM12345678_2), or of every token of this key
    /// serial (12345678) [default: all of DEVICE's, or the plugged-in key's when they are for
    /// several keys].
    #[arg(long, value_name = "SERIAL")]
    pub serial: Option<String>,
    /// The PC/SC reader of the key whose serial picks the assignments: the one whose name
    /// contains TEXT [default: the one "Yubico" reader].
    #[arg(long, value_name = "TEXT", conflicts_with = "serial")]
    pub reader: Option<String>,
    /// PBKDF of the new key slot, passed to cryptsetup (pbkdf2, argon2i, argon2id)
    /// [default: cryptsetup's].
    #[arg(long, value_name = "NAME")]
    pub pbkdf: Option<String>,
    /// Fixed PBKDF iterations for the new key slot, passed to cryptsetup [default: cryptsetup
    /// benchmarks].
    #[arg(long, value_name = "N")]
    pub pbkdf_force_iterations: Option<u32>,
}

#[derive(Debug, Args)]
pub struct LuksUnlockArgs {
    /// The LUKS volume: block device or image file.
    #[arg(long, value_name = "DEVICE")]
    pub device: PathBuf,
    /// The name of the opened volume, /dev/mapper/NAME.
    #[arg(long, value_name = "NAME", required_unless_present = "test")]
    pub name: Option<String>,
    /// Only check that the response opens a key slot (`cryptsetup open --test-passphrase`).
    #[arg(long)]
    pub test: bool,
    /// The passphrase is the password followed by the response (yubikey-luks' CONCATENATE=1).
    #[arg(long)]
    pub concatenate: bool,
    /// A ykchalresp-compatible program that prints the response to the hex challenge appended
    /// to it, e.g. 'ykchalresp -2 -x' [default: talk to the Yubikey over PC/SC].
    #[arg(long, value_name = "CMD")]
    pub responder_cmd: Option<String>,
    /// The PC/SC reader: the one whose name contains TEXT [default: the one "Yubico" reader;
    /// two are refused].
    #[arg(long, value_name = "TEXT", conflicts_with = "responder_cmd")]
    pub reader: Option<String>,
    /// The Yubikey's slot programmed for HMAC-SHA1 challenge-response [default: the slot of
    /// the plugged-in key's luks assignment, UBOM<serial>_<slot>].
    #[arg(long, value_name = "1|2",
          value_parser = clap::value_parser!(u8).range(1..=2), conflicts_with = "responder_cmd")]
    pub yubikey_slot: Option<u8>,
    /// Read the password from the first line of this file instead of the terminal or stdin.
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<PathBuf>,
}
