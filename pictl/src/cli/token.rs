//! `pictl token …`.

use super::values::{
    parse_digits, parse_period, parse_pin, parse_question, parse_secret, parse_time_bound, PinArg,
    TimeBound,
};
use clap::{Args, Subcommand, ValueEnum};
use protocol::{HashAlgorithm, Secret, TokenType};

pub(super) const TOKEN_AFTER_HELP: &str = "\
Examples:
  sudo pictl token enroll totp --user alice --pin -
  sudo pictl token list
  sudo pictl token show TOTP0001A2B3
  sudo pictl token set TOTP0001A2B3 --maxfail 5 --validity-end 2025-12-31
  sudo pictl token reset TOTP0001A2B3        clear the fail counter after a lockout
  sudo pictl token resync OATH0001 123456 654321";

const ENROLL_AFTER_HELP: &str = "\
The answer shows the serial, the otpauth:// URL, the key in base32 and a QR code. This is the
only time pid reveals the key: scan the QR code with the user's authenticator app (or type the
base32 key), then check it with `pictl auth test --user USER`.

The QR code is drawn when stdout is a terminal; --qr forces it, --no-qr suppresses it. On a
terminal it sets its own colours, so it scans on light and dark themes alike. Redirected to a
file (--qr) it is plain text, which has no colours of its own: the code comes twice, one to scan
where the text is dark on a light background (printed, a light theme), one where it is light on
a dark background. --qr-png and --qr-svg write images that scan everywhere: each is a new
file with mode 0600 (the image holds the key), written whole or not at all; a path that exists,
even as a symbolic link, is refused before anything is enrolled, never replaced. Delete the image
once the code is scanned.

Examples:
  sudo pictl token enroll totp --user alice
  printf '%s\\n' \"$PIN\" | sudo pictl token enroll totp --user alice --pin - --description phone
  sudo pictl token enroll hotp --user bob --otpkey 3132333435363738393031323334353637383930 --no-qr
  sudo pictl --json token enroll totp --user carol --digits 8 --hash sha256
  sudo pictl token enroll sshkey --user alice --sshkey-file ~alice/.ssh/id_ed25519.pub
  sudo pictl token enroll sshkey --user alice --yubikey-piv 9a   (the plugged-in Yubikey's key)
  sudo pictl token enroll totp --user root --serial UBOM12345678_2 --otpkey HEX   (Yubikey slot 2, LUKS)
  sudo pictl token enroll totp --user alice --qr-png /root/alice-qr.png";

const SET_AFTER_HELP: &str = "\
Only the given settings change. Times (T) are RFC 3339 (2025-01-31T18:00:00Z), a date
(2025-01-31, meaning midnight UTC), or `none` to remove the bound.

Examples:
  sudo pictl token set TOTP0001A2B3 --pin -
  sudo pictl token set TOTP0001A2B3 --maxfail 5 --description \"spare phone\"
  sudo pictl token set OATH0001 --validity-start 2025-01-01 --validity-end none
  sudo pictl token set OATH0001 --count-auth-max 100     at most 100 authentication attempts";

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token for a user and print its key, otpauth URL and QR code (shown only once).
    #[command(after_help = ENROLL_AFTER_HELP)]
    Enroll(Box<EnrollArgs>),
    /// List tokens with their owner, state and counters (all tokens unless filtered).
    List(ListArgs),
    /// Show every detail of one token (times in UTC).
    Show(SerialArg),
    /// Delete a token for good; its key is gone and cannot be recovered.
    Delete(SerialArg),
    /// Enable a disabled token, so it can be used to log in again.
    Enable(SerialArg),
    /// Disable a token: it cannot be used to log in until it is enabled again.
    Disable(SerialArg),
    /// Revoke a token: it is disabled for good and cannot be enabled again.
    Revoke(SerialArg),
    /// Change a token's PIN, limits, validity period or windows.
    #[command(after_help = SET_AFTER_HELP)]
    Set(SetArgs),
    /// Clear the fail counter and lift the lock that too many failures caused.
    Reset(SerialArg),
    /// Resynchronise a token from two consecutive OTPs (HOTP counter or TOTP clock drift).
    Resync(ResyncArgs),
    /// Activate a new token that waits for two consecutive codes (asked for when left out).
    #[command(after_help = VERIFY_AFTER_HELP)]
    Verify(VerifyArgs),
    /// Give a token to a user (it must not belong to anyone).
    Assign(AssignArgs),
    /// Take a token away from its user; the token stays in the store, unassigned.
    Unassign(SerialArg),
    /// Show the next codes of an HOTP or TOTP token without using them (only where an admin
    /// policy allows getmultiotp, root included).
    #[command(after_help = OTPS_AFTER_HELP)]
    Otps(OtpsArgs),
    /// Put an unassigned token into a realm's pool, or take it out (--none): users of the
    /// realm without a token claim pool tokens by logging in with them.
    #[command(after_help = POOL_AFTER_HELP)]
    Pool(PoolArgs),
}

const POOL_AFTER_HELP: &str = "\
A pool holds unassigned tokens set aside for the users of one realm (privacyIDEA's token
realms). Where an enrollment policy sets autoassignment, a user of the realm who has no token
logs in with their user store password followed by the code of a pool token, and that token
becomes theirs:

  [[policy]]
  name = \"hand-out-keys\"
  scope = \"enrollment\"
  realm = [\"staff\"]
  actions = { autoassignment = \"userstore\" }

Only unassigned hotp and totp tokens go into a pool; assigning a token takes it out.

Examples:
  sudo pictl token pool OATH0001A2B3 staff      # into the pool of realm staff
  sudo pictl token pool OATH0001A2B3 --none     # out of its pool, still unassigned
  sudo pictl token list --pool staff            # the tokens left in the pool
  sudo pictl token enroll hotp --otpkey HEX --pool staff";

#[derive(Debug, Args)]
pub struct PoolArgs {
    /// Serial of the token, as `pictl token list` shows it.
    #[arg(value_name = "SERIAL")]
    pub serial: String,
    /// The realm whose pool the token joins.
    #[arg(
        value_name = "REALM",
        required_unless_present = "none",
        conflicts_with = "none"
    )]
    pub realm: Option<String>,
    /// Take the token out of its pool (it stays unassigned).
    #[arg(long)]
    pub none: bool,
}

const OTPS_AFTER_HELP: &str = "\
Whoever reads a token's next codes can log in as its owner with them, so nobody may see them
unless an admin policy allows it, root included (privacyIDEA's getmultiotp):

  [[policy]]
  name = \"helpdesk-codes\"
  scope = \"admin\"
  actions = { getmultiotp = true }
  # admin_group = [\"helpdesk\"]     # only these administrators (root needs a policy without it)

The codes are not used up: each still logs in once, in order for HOTP, at its time for TOTP.
Every request is audited (who, which token, how many codes; never a code).

Examples:
  sudo pictl token otps OATH0001A2B3              # the next 10 codes
  sudo pictl token otps TOTP0001C4D5 --count 3    # the codes of the next three time steps
  sudo pictl --json token otps OATH0001A2B3 --count 20";

#[derive(Debug, Args)]
pub struct OtpsArgs {
    /// Serial of the token, as `pictl token list` shows it.
    #[arg(value_name = "SERIAL")]
    pub serial: String,
    /// How many codes, 1 to 100.
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(protocol::admin::MAX_UPCOMING_OTPS)))]
    pub count: u32,
}

/// The token types `pictl token enroll` can create.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TokenTypeArg {
    /// Counter-based OTP (RFC 4226): a new code each time the button is pressed.
    Hotp,
    /// Time-based OTP (RFC 6238): what authenticator apps show by default.
    Totp,
    /// Simple pass: the PIN alone (or, with otppin = userstore, the user's password); give --pin.
    Spass,
    /// A TOTP whose code is valid, and reusable, for a whole day (--period to change it).
    Daypassword,
    /// mOTP app token: md5 of the time, the secret and the app's PIN; give --motppin.
    Motp,
    /// A fixed password typed after the PIN (--password, or pi generates one).
    Pw,
    /// A printed list of one-time codes (--count, default 100), used in order.
    Paper,
    /// A one-time recovery code, printed once and deleted when used.
    Registration,
    /// A printed list of TANs (--count, default 100), each usable once, in any order.
    Tan,
    /// An application-specific password valid only through one PAM service (--service).
    Applspec,
    /// A Yubikey in Yubico OTP mode: --otpkey is its 32-hex-digit AES key (or pi makes one to
    /// write with ykpersonalize); --digits is the OTP length, 44 by default.
    Yubikey,
    /// A secret text (--password); the PIN alone brings a question for two of its characters.
    Indexedsecret,
    /// A questionnaire (--question, at least 5); the PIN alone brings one of the questions.
    Question,
    /// OCRA challenge-response (RFC 6287, --ocrasuite): the PIN alone brings a challenge the
    /// user's device answers.
    Ocra,
    /// A code e-mailed when the PIN is typed (--email; pid.toml [smtp]).
    Email,
    /// A code sent by SMS when the PIN is typed (--phone; pid.toml [sms]).
    Sms,
    /// A factory-configured Yubikey checked by a Yubico validation server (--tokenid; pid.toml
    /// [yubico]).
    Yubico,
    /// A daplug dongle: an HOTP key (--otpkey) whose codes the dongle types as letter pairs.
    Daplug,
    /// The two-man rule (--4eyes admins:2): the login is codes of tokens of those realms.
    #[value(name = "4eyes")]
    FourEyes,
    /// An SSH public key (--sshkey or --sshkey-file) for sshd, once attached to the host with
    /// `pictl machine attach SERIAL --app ssh`; never a PAM login factor.
    Sshkey,
}

impl From<TokenTypeArg> for TokenType {
    fn from(t: TokenTypeArg) -> Self {
        match t {
            TokenTypeArg::Hotp => TokenType::Hotp,
            TokenTypeArg::Totp => TokenType::Totp,
            TokenTypeArg::Spass => TokenType::Spass,
            TokenTypeArg::Daypassword => TokenType::Daypassword,
            TokenTypeArg::Motp => TokenType::Motp,
            TokenTypeArg::Pw => TokenType::Pw,
            TokenTypeArg::Paper => TokenType::Paper,
            TokenTypeArg::Registration => TokenType::Registration,
            TokenTypeArg::Tan => TokenType::Tan,
            TokenTypeArg::Applspec => TokenType::Applspec,
            TokenTypeArg::Yubikey => TokenType::Yubikey,
            TokenTypeArg::Indexedsecret => TokenType::Indexedsecret,
            TokenTypeArg::Question => TokenType::Question,
            TokenTypeArg::Ocra => TokenType::Ocra,
            TokenTypeArg::Email => TokenType::Email,
            TokenTypeArg::Sms => TokenType::Sms,
            TokenTypeArg::Yubico => TokenType::Yubico,
            TokenTypeArg::Daplug => TokenType::Daplug,
            TokenTypeArg::FourEyes => TokenType::FourEyes,
            TokenTypeArg::Sshkey => TokenType::Sshkey,
        }
    }
}

/// HMAC hash algorithms for OATH tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HashArg {
    /// HMAC-SHA1: understood by every authenticator app.
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl From<HashArg> for HashAlgorithm {
    fn from(h: HashArg) -> Self {
        match h {
            HashArg::Sha1 => HashAlgorithm::Sha1,
            HashArg::Sha256 => HashAlgorithm::Sha256,
            HashArg::Sha512 => HashAlgorithm::Sha512,
        }
    }
}

#[derive(Debug, Args)]
pub struct SerialArg {
    /// Serial of the token, as `pictl token list` shows it.
    #[arg(value_name = "SERIAL")]
    pub serial: String,
}

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// Token type: totp for authenticator apps, hotp for counter-based tokens.
    #[arg(value_enum, value_name = "TYPE")]
    pub token_type: TokenTypeArg,

    /// Login name of the owner on this host (`alice@realm` also names the realm).
    #[arg(long, value_name = "USER", required_unless_present = "pool")]
    pub user: Option<String>,

    /// Realm of the user [default: pid.toml `default_realm`].
    #[arg(long, value_name = "REALM")]
    pub realm: Option<String>,

    /// Enroll the token for nobody, into this realm's pool (hotp, totp): a user of the realm
    /// without a token claims it by logging in with it where the `autoassignment` policy
    /// allows.
    #[arg(long, value_name = "REALM", conflicts_with_all = ["user", "realm"])]
    pub pool: Option<String>,

    /// Serial for the new token [default: chosen by pid, e.g. TOTP0001A2B3].
    #[arg(long, value_name = "SERIAL")]
    pub serial: Option<String>,

    /// Use this key, in hex, instead of a generated one (e.g. a hardware token's seed).
    /// The key is visible in `ps` while pictl runs; prefer --genkey where you can.
    #[arg(long, value_name = "HEX", conflicts_with = "genkey", value_parser = parse_secret)]
    pub otpkey: Option<Secret>,

    /// Let pid generate a random key. This is the default.
    #[arg(long)]
    pub genkey: bool,

    /// Digits per OTP, 6 or 8 [default: pid.toml [tokens] digits, 6].
    #[arg(long, value_name = "N", value_parser = parse_digits)]
    pub digits: Option<u8>,

    /// HMAC hash [default: pid.toml [tokens] hash, sha1]. Some apps only understand sha1.
    #[arg(long, value_enum, value_name = "ALG")]
    pub hash: Option<HashArg>,

    /// Time step in seconds: 30 or 60 for totp [default: pid.toml [tokens] totp_period, 30];
    /// 60 to 604800 for daypassword [default: 86400, a day].
    #[arg(long, value_name = "SECONDS", value_parser = parse_period)]
    pub period: Option<u32>,

    /// mOTP: the PIN typed into the mOTP app. `-` reads it from stdin.
    #[arg(long, value_name = "PIN", value_parser = parse_pin)]
    pub motppin: Option<PinArg>,

    /// pw, applspec: the fixed password; indexedsecret: the secret text [default: random
    /// letters and digits, shown once]. `-` reads it from stdin.
    #[arg(long, value_name = "PASSWORD", value_parser = parse_pin)]
    pub password: Option<PinArg>,

    /// paper, tan: how many codes to print, 1 to 1000 [default: 100].
    #[arg(long, value_name = "N")]
    pub count: Option<u32>,

    /// applspec: the PAM service the password is for (e.g. dovecot).
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,

    /// question: one question and its answer, `QUESTION=ANSWER`; repeat it (at least 5). The
    /// answers are visible in `ps` while pictl runs.
    #[arg(long = "question", value_name = "QUESTION=ANSWER", value_parser = parse_question)]
    pub questions: Vec<(String, Secret)>,

    /// ocra: the OCRA suite [default: OCRA-1:HOTP-SHA1-8:QH40].
    #[arg(long, value_name = "SUITE")]
    pub ocrasuite: Option<String>,

    /// email: the address the codes are sent to.
    #[arg(long, value_name = "ADDRESS")]
    pub email: Option<String>,

    /// sms: the phone number the codes are sent to.
    #[arg(long, value_name = "NUMBER")]
    pub phone: Option<String>,

    /// yubico: the key's public id, the first 12 characters of any touch.
    #[arg(long, value_name = "ID")]
    pub tokenid: Option<String>,

    /// 4eyes: how many distinct tokens of which realms, e.g. `admins:2,security:1`.
    #[arg(long = "4eyes", value_name = "REALM:COUNT,...")]
    pub foureyes: Option<String>,

    /// 4eyes: the character typed between the codes [default: a space].
    #[arg(long, value_name = "CHAR")]
    pub separator: Option<String>,

    /// sshkey: the public key, `ssh-ed25519 AAAA… comment` (ed25519, ecdsa, rsa of at least
    /// 2048 bits, sk-ssh-ed25519, sk-ecdsa).
    #[arg(
        long,
        value_name = "KEY",
        conflicts_with = "sshkey_file",
        allow_hyphen_values = true
    )]
    pub sshkey: Option<String>,

    /// sshkey: read the public key from this file (e.g. ~alice/.ssh/id_ed25519.pub).
    #[arg(long, value_name = "PATH")]
    pub sshkey_file: Option<std::path::PathBuf>,

    /// sshkey: the public key of the plugged-in Yubikey's PIV slot (9a, 9c, 9d, 9e; without a
    /// value 9a), read from the slot's certificate over PC/SC. Not run on a device in pi's
    /// tests: the conversion is tested on certificates against ssh-keygen.
    #[arg(
        long,
        value_name = "SLOT",
        num_args = 0..=1,
        default_missing_value = "9a",
        value_parser = crate::piv::parse_slot,
        conflicts_with_all = ["sshkey", "sshkey_file"]
    )]
    pub yubikey_piv: Option<yubikey::piv::SlotId>,

    /// PIN the user types before the OTP [default: no PIN]. `-` reads it from stdin, which keeps
    /// it out of `ps` and the shell history (on a terminal pictl asks twice, without echo).
    #[arg(long, value_name = "PIN", value_parser = parse_pin)]
    pub pin: Option<PinArg>,

    /// Free text shown in `pictl token list`, e.g. the device the token lives on.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,

    /// Draw the QR code even when stdout is not a terminal.
    #[arg(long, overrides_with = "no_qr")]
    pub qr: bool,

    /// Do not draw the QR code (the otpauth URL and the base32 key are still printed).
    #[arg(long, overrides_with = "qr")]
    pub no_qr: bool,

    /// Also write the QR code as a PNG image to PATH: a new file, mode 0600 (it holds the key).
    /// An existing PATH, even a symbolic link, is refused, never replaced.
    #[arg(long, value_name = "PATH")]
    pub qr_png: Option<std::path::PathBuf>,

    /// Also write the QR code as an SVG image to PATH, like --qr-png.
    #[arg(long, value_name = "PATH")]
    pub qr_svg: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only the tokens of this user (`alice@realm` also names the realm).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// Only tokens in this realm (with --user: the user's realm) [default: all realms].
    #[arg(long, value_name = "REALM")]
    pub realm: Option<String>,

    /// Only the unassigned tokens in this realm's pool.
    #[arg(long, value_name = "REALM", conflicts_with_all = ["user", "realm"])]
    pub pool: Option<String>,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// Serial of the token, as `pictl token list` shows it.
    #[arg(value_name = "SERIAL")]
    pub serial: String,

    /// New PIN; `-` reads it from stdin (on a terminal pictl asks twice, without echo).
    #[arg(long, value_name = "PIN", value_parser = parse_pin)]
    pub pin: Option<PinArg>,

    /// Failed attempts after which the token locks until `pictl token reset`.
    #[arg(long, value_name = "N")]
    pub maxfail: Option<u32>,

    /// New free-text description.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,

    /// Most authentication attempts the token may ever make (0 = unlimited).
    #[arg(long, value_name = "N")]
    pub count_auth_max: Option<u64>,

    /// Most successful authentications the token may ever make (0 = unlimited).
    #[arg(long, value_name = "N")]
    pub count_auth_success_max: Option<u64>,

    /// The token is not valid before T (RFC 3339, YYYY-MM-DD = midnight UTC, or `none`).
    #[arg(long, value_name = "T", value_parser = parse_time_bound)]
    pub validity_start: Option<TimeBound>,

    /// The token is not valid after T (RFC 3339, YYYY-MM-DD = midnight UTC, or `none`).
    #[arg(long, value_name = "T", value_parser = parse_time_bound)]
    pub validity_end: Option<TimeBound>,

    /// HOTP look-ahead: how many counter values past the expected one are accepted.
    #[arg(long, value_name = "N")]
    pub hotp_window: Option<u32>,

    /// TOTP window: how many seconds either side of now are accepted.
    #[arg(long, value_name = "SECONDS")]
    pub totp_window: Option<u32>,
}

impl SetArgs {
    /// Whether any setting was given at all.
    pub fn is_empty(&self) -> bool {
        self.pin.is_none()
            && self.maxfail.is_none()
            && self.description.is_none()
            && self.count_auth_max.is_none()
            && self.count_auth_success_max.is_none()
            && self.validity_start.is_none()
            && self.validity_end.is_none()
            && self.hotp_window.is_none()
            && self.totp_window.is_none()
    }
}

#[derive(Debug, Args)]
pub struct ResyncArgs {
    /// Serial of the token, as `pictl token list` shows it.
    #[arg(value_name = "SERIAL")]
    pub serial: String,
    /// An OTP the token shows now.
    #[arg(value_name = "OTP1", value_parser = parse_secret)]
    pub otp1: Secret,
    /// The OTP that follows it (press the button again, or wait for the next time step).
    #[arg(value_name = "OTP2", value_parser = parse_secret)]
    pub otp2: Secret,
}

const VERIFY_AFTER_HELP: &str = "\
A token users enroll for themselves (`pictl enroll`), and a token of a type the
`verify_enrollment` policy lists, logs in only after two consecutive codes were typed: the code
the app shows now and, once it changes, the next one (for hotp: press the button twice). Both are
spent. A user who has no recovery code gets one now, shown once (--recovery-file also writes it
to a new file only they can read). Wrong codes count towards the token's lockout.

Examples:
  pictl token verify TOTP0001A2B3                  asks for the two codes
  pictl token verify TOTP0001A2B3 123456 654321
  pictl --json token verify TOTP0001A2B3 123456 654321 --recovery-file ~/pi-recovery.txt";

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Serial of the token, as `pictl token list` shows it.
    #[arg(value_name = "SERIAL")]
    pub serial: String,
    /// The code the token shows now [default: asked for].
    #[arg(value_name = "CODE", value_parser = parse_secret, requires = "next")]
    pub code: Option<Secret>,
    /// The code that follows it [default: asked for].
    #[arg(value_name = "NEXT-CODE", value_parser = parse_secret)]
    pub next: Option<Secret>,
    /// Also write the recovery code, if one is made, to this new file (mode 0600).
    #[arg(long, value_name = "PATH")]
    pub recovery_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct AssignArgs {
    /// Serial of the token, as `pictl token list` shows it.
    #[arg(value_name = "SERIAL")]
    pub serial: String,
    /// Login name of the new owner (`alice@realm` also names the realm).
    #[arg(long, value_name = "USER")]
    pub user: String,
    /// Realm of the user [default: pid.toml `default_realm`].
    #[arg(long, value_name = "REALM")]
    pub realm: Option<String>,
}
