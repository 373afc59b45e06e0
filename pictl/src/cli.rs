//! The command line grammar. The doc comments below ARE the help text: each says what a flag
//! does and what happens when it is left out.

use clap::{Args, Parser, Subcommand, ValueEnum};
use protocol::paths::{DAEMON_UID_ENV, DEFAULT_SOCKET, SOCKET_ENV};
use protocol::{HashAlgorithm, Secret, TokenType};
use std::path::PathBuf;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

const MAIN_AFTER_HELP: &str = "\
Examples:
  pictl status                               is the daemon up, am I an administrator?
  sudo pictl token enroll totp --user alice  give alice an authenticator-app token
  sudo pictl token list --user alice         her tokens, their state and fail counters
  pictl auth test --user alice               a real login the way PAM does it (spends the code)
  sudo pictl audit show --limit 20           the 20 newest audit entries
  sudo pictl import oath /etc/users.oath     bring pam_oath's tokens over (also google-authenticator)

The socket is --socket PATH, else $PI_SOCKET, else /run/pi/pid.sock. Whoever listens there must
run as root (or as --daemon-uid / $PI_DAEMON_UID), or pictl sends it nothing.
Token administration and the audit trail need root or membership of the admin group
(pid.toml `admin_group`, default \"pi-admin\").

Exit status:
  0  success
  1  refused or failed (the daemon said no, or an authentication was rejected)
  2  usage error (bad arguments or bad input on stdin)
  3  daemon unreachable, too slow, or speaking another protocol version";

const TOKEN_AFTER_HELP: &str = "\
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

const AUTH_TEST_AFTER_HELP: &str = "\
This is a real login, checked exactly as PAM's: a code it accepts is spent (the next login needs
a new one), and a wrong answer counts towards the token's fail counter and lockout.

pictl prints the daemon's prompts on stderr and reads one answer per prompt from stdin, with
echo off when stdin is a terminal. Answers can be piped in for scripts.

Examples:
  pictl auth test --user alice
  printf '%s\\n' \"$PIN$OTP\" | pictl auth test --user alice --service sshd

Exit status: 0 accepted; 1 rejected, no token, or unknown user; 3 daemon unavailable.";

const AUDIT_AFTER_HELP: &str = "\
Examples:
  sudo pictl audit show
  sudo pictl audit show --user alice --limit 10
  sudo pictl --json audit show --limit 500 > audit.json";

/// pictl: manage pi two-factor tokens and test logins against the pid daemon.
#[derive(Debug, Parser)]
#[command(
    name = "pictl",
    version,
    after_help = MAIN_AFTER_HELP,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Unix socket of the pid daemon.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = SOCKET_ENV,
        hide_env_values = true,
        default_value = DEFAULT_SOCKET,
        help_heading = "Global options"
    )]
    pub socket: PathBuf,

    /// The uid pid runs as. pictl refuses to talk to a process of any other uid on the socket
    /// (it could be an impostor collecting PINs and keys).
    #[arg(
        long,
        global = true,
        value_name = "UID",
        env = DAEMON_UID_ENV,
        default_value_t = 0,
        help_heading = "Global options"
    )]
    pub daemon_uid: u32,

    /// Print exactly one JSON document on stdout, errors included (`{"error": {"code", "message"}}`).
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enroll, list, change and remove tokens (root or the admin group).
    #[command(subcommand, after_help = TOKEN_AFTER_HELP)]
    Token(TokenCommand),
    /// Log in the way the PAM module does (a real login: an accepted code is spent).
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Show the daemon's version, store, token count, uptime and whether you are an administrator.
    Status,
    /// Read the audit trail (root or the admin group).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// See which policies apply to a login and what they decide (root or the admin group).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Attach tokens to hosts for SSH, LUKS or offline use (root or the admin group).
    #[command(subcommand, after_help = MACHINE_AFTER_HELP)]
    Machine(MachineCommand),
    /// SSH keys for sshd's AuthorizedKeysCommand.
    #[command(subcommand)]
    Ssh(SshCommand),
    /// Put a Yubikey's response into a LUKS key slot, or unlock a volume with it (root).
    #[command(subcommand, after_help = LUKS_AFTER_HELP)]
    Luks(LuksCommand),
    /// Bring tokens over from pam_oath or google-authenticator (root or the admin group).
    #[command(subcommand, after_help = IMPORT_AFTER_HELP)]
    Import(ImportCommand),
}

const IMPORT_AFTER_HELP: &str = "\
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

const MACHINE_AFTER_HELP: &str = "\
Applications (privacyIDEA's machine applications):
  ssh      an sshkey token's key, printed by `pictl ssh keys LOGIN` for sshd
  luks     a Yubikey's challenge-response secret (a totp token UBOM<serial>_2) for a LUKS volume
  offline  HOTP values for logins while the token's server cannot be reached

Examples:
  sudo pictl machine attach SSHK1A2B3C4D --app ssh --user alice
  sudo pictl machine attach UBOM12345678_2 --app luks --slot 1 --device /dev/sda3
  sudo pictl machine list --app ssh
  sudo pictl machine detach SSHK1A2B3C4D --app ssh";

#[derive(Debug, Subcommand)]
pub enum MachineCommand {
    /// Attach a token to a host (this one by default) for an application.
    Attach(MachineAttachArgs),
    /// Remove a token's assignment to a host for an application.
    Detach(MachineDetachArgs),
    /// List assignments (all unless filtered).
    List(MachineListArgs),
}

/// The applications a token can be attached for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AppArg {
    /// An sshkey token's public key for sshd (options --user, --service-id).
    Ssh,
    /// A Yubikey's HMAC-SHA1 secret for a LUKS volume (options --slot, --device,
    /// --concatenate).
    Luks,
    /// HOTP values for offline logins (options --count, --rounds).
    Offline,
}

impl From<AppArg> for protocol::MachineApp {
    fn from(a: AppArg) -> Self {
        match a {
            AppArg::Ssh => protocol::MachineApp::Ssh,
            AppArg::Luks => protocol::MachineApp::Luks,
            AppArg::Offline => protocol::MachineApp::Offline,
        }
    }
}

#[derive(Debug, Args)]
pub struct MachineAttachArgs {
    /// Serial of the token.
    #[arg(value_name = "SERIAL")]
    pub serial: String,
    /// What the token is for on the host.
    #[arg(long, value_enum, value_name = "APP")]
    pub app: AppArg,
    /// The host [default: this host's name].
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// ssh: the login name on the host the key lets in [default: root].
    #[arg(long, value_name = "LOGIN")]
    pub user: Option<String>,
    /// ssh: a service id grouping SSH servers (`pictl ssh keys --service-id ID` on each).
    #[arg(long, value_name = "ID")]
    pub service_id: Option<String>,
    /// luks: the key slot the response goes to, 1 to 31 (slot 0 is never touched).
    #[arg(long, value_name = "N")]
    pub slot: Option<u8>,
    /// luks: the LUKS device or image.
    #[arg(long, value_name = "PATH")]
    pub device: Option<String>,
    /// luks: the passphrase is the password followed by the response (yubikey-luks
    /// CONCATENATE=1), not the response alone.
    #[arg(long)]
    pub concatenate: bool,
    /// offline: how many values to hand out [default: 100].
    #[arg(long, value_name = "N")]
    pub count: Option<u32>,
    /// offline: PBKDF2-SHA512 rounds per value [default: 6549].
    #[arg(long, value_name = "N")]
    pub rounds: Option<u32>,
}

#[derive(Debug, Args)]
pub struct MachineDetachArgs {
    /// Serial of the token.
    #[arg(value_name = "SERIAL")]
    pub serial: String,
    /// The application it is attached for.
    #[arg(long, value_enum, value_name = "APP")]
    pub app: AppArg,
    /// The host [default: this host's name].
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
}

#[derive(Debug, Args)]
pub struct MachineListArgs {
    /// Only this token's assignments.
    #[arg(long, value_name = "SERIAL")]
    pub serial: Option<String>,
    /// Only assignments for this application.
    #[arg(long, value_enum, value_name = "APP")]
    pub app: Option<AppArg>,
    /// Only assignments to this host [default: every host].
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
}

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
    /// Give a token to a user (it must not belong to anyone).
    Assign(AssignArgs),
    /// Take a token away from its user; the token stays in the store, unassigned.
    Unassign(SerialArg),
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Log in as a user the way PAM does, on this terminal, and report the verdict: a real login
    /// that spends the code it is given.
    #[command(after_help = AUTH_TEST_AFTER_HELP)]
    Test(AuthTestArgs),
}

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

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print audit entries, newest first.
    #[command(after_help = AUDIT_AFTER_HELP)]
    Show(AuditShowArgs),
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

/// A PIN given on the command line, or `-` to read it from stdin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinArg {
    /// Read one line from stdin (prompted, without echo, on a terminal).
    Stdin,
    Value(Secret),
}

/// A validity bound: a point in time, or `None` to remove the bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeBound(pub Option<i64>);

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
    #[arg(long, value_name = "USER")]
    pub user: String,

    /// Realm of the user [default: pid.toml `default_realm`].
    #[arg(long, value_name = "REALM")]
    pub realm: Option<String>,

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

#[derive(Debug, Args)]
pub struct AuthTestArgs {
    /// The login name to authenticate. Non-administrators may only test their own account.
    #[arg(long, value_name = "USER")]
    pub user: String,
    /// PAM service name the daemon sees (policies may differ per service).
    #[arg(long, value_name = "SERVICE", default_value = "pictl")]
    pub service: String,
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

/// Secrets are not validated by clap: clap would repeat a rejected value in its error message,
/// printing (most of) a key to the terminal. The commands check them and say what is wrong
/// without echoing them.
fn parse_secret(s: &str) -> Result<Secret, String> {
    Ok(Secret::new(s))
}

fn parse_pin(s: &str) -> Result<PinArg, String> {
    Ok(if s == "-" {
        PinArg::Stdin
    } else {
        PinArg::Value(Secret::new(s))
    })
}

/// `--digits`: OATH tokens show 6 or 8 digits.
pub fn parse_digits(s: &str) -> Result<u8, String> {
    match s.trim().parse::<u8>() {
        Ok(n @ (6 | 8 | 32..=64)) => Ok(n),
        _ => Err(
            "OTPs have 6 or 8 digits (use --digits 6 or --digits 8); a Yubikey's OTP has 32 to 64 \
             characters"
                .into(),
        ),
    }
}

/// `--question QUESTION=ANSWER` (the answer is everything after the last `=`).
pub fn parse_question(s: &str) -> Result<(String, Secret), String> {
    match s.rsplit_once('=') {
        Some((q, a)) if !q.trim().is_empty() && !a.is_empty() => {
            Ok((q.trim().to_owned(), Secret::new(a)))
        }
        _ => Err("write --question 'QUESTION=ANSWER', e.g. --question 'First pet?=Rex'".into()),
    }
}

/// `--period`: the TOTP time steps authenticator apps support.
pub fn parse_period(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(p) if (30..=604_800).contains(&p) => Ok(p),
        _ => Err(
            "the time step is in seconds: 30 or 60 for totp, 60 to 604800 for daypassword".into(),
        ),
    }
}

/// A validity bound: RFC 3339, `YYYY-MM-DD` (midnight UTC) or `none`.
pub fn parse_time_bound(s: &str) -> Result<TimeBound, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("none") {
        return Ok(TimeBound(None));
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(TimeBound(Some(t.unix_timestamp())));
    }
    if let Ok(d) = Date::parse(s, format_description!("[year]-[month]-[day]")) {
        return Ok(TimeBound(Some(d.midnight().assume_utc().unix_timestamp())));
    }
    Err(
        "use RFC 3339 (2025-01-31T18:00:00Z), a date (2025-01-31, midnight UTC), \
         or `none` to remove the bound"
            .into(),
    )
}

/// An OATH key in hex: non-empty, hex digits only, whole bytes. The message never repeats the key.
pub fn check_hex_key(key: &str) -> Result<(), String> {
    const ADVICE: &str = "or leave --otpkey out and let pid generate a key";
    if key.is_empty() {
        return Err(format!("--otpkey is empty: give the key in hex, {ADVICE}"));
    }
    if let Some(pos) = key.chars().position(|c| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "--otpkey must be hex (0-9, a-f), but character {} is not: give the key in hex \
             (a base32 key must be converted first), {ADVICE}",
            pos + 1
        ));
    }
    if key.len() & 1 == 1 {
        return Err(format!(
            "--otpkey has an odd number of hex digits ({}), so it is not whole bytes: check that \
             no digit is missing, {ADVICE}",
            key.len()
        ));
    }
    Ok(())
}

/// An OTP as typed: digits only. The message never repeats it.
pub fn check_otp(name: &str, otp: &str) -> Result<(), String> {
    if otp.is_empty() || !otp.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "{name} must be the digits the token shows (e.g. 123456), without PIN or spaces"
        ));
    }
    Ok(())
}

// `pictl luks …`: LUKS key slots opened by a Yubikey's HMAC-SHA1 response.

const LUKS_AFTER_HELP: &str = "\
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

Examples:
  sudo pictl luks assign --device /dev/sda3
  sudo pictl luks assign --device /dev/sda3 --slot 2 --clear-slot --key-file /root/old.key
  sudo pictl --json luks assign --device /dev/sda3 --password-file /root/luks.pw";

const LUKS_UNLOCK_AFTER_HELP: &str = "\
The Yubikey is asked over PC/SC (pcscd) through its OTP application: the first reader named
\"Yubico\", or --reader. With --responder-cmd, any ykchalresp-compatible program answers
instead: pictl appends the challenge in hex and reads 40 hex digits from its output.

Exit status: 0 opened (or, with --test, the passphrase opens a slot); 1 the Yubikey's response
does not open the volume, or another failure; 2 usage error.

Examples:
  sudo pictl luks unlock --device /dev/sda3 --name cryptdata
  sudo pictl luks unlock --device /dev/sda3 --test --yubikey-slot 1
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
    /// The PC/SC reader: the first whose name contains TEXT [default: the first "Yubico" one].
    #[arg(long, value_name = "TEXT", conflicts_with = "responder_cmd")]
    pub reader: Option<String>,
    /// The Yubikey's slot programmed for HMAC-SHA1 challenge-response.
    #[arg(long, value_name = "1|2", default_value_t = 2,
          value_parser = clap::value_parser!(u8).range(1..=2), conflicts_with = "responder_cmd")]
    pub yubikey_slot: u8,
    /// Read the password from the first line of this file instead of the terminal or stdin.
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("pictl").chain(args.iter().copied()))
    }

    #[test]
    fn the_clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_parses() {
        let lines: &[&[&str]] = &[
            &["status"],
            &["--json", "status"],
            &["--socket", "/tmp/x.sock", "status"],
            &["token", "enroll", "totp", "--user", "alice"],
            &[
                "token",
                "enroll",
                "hotp",
                "--user",
                "bob",
                "--realm",
                "r",
                "--serial",
                "S1",
                "--otpkey",
                "3132",
                "--digits",
                "8",
                "--hash",
                "sha256",
                "--pin",
                "-",
                "--description",
                "d",
                "--no-qr",
            ],
            &[
                "token", "enroll", "totp", "--user", "a", "--genkey", "--period", "60", "--qr",
            ],
            &["token", "list"],
            &["token", "list", "--user", "alice", "--realm", "r"],
            &["token", "show", "S1"],
            &["token", "delete", "S1"],
            &["token", "enable", "S1"],
            &["token", "disable", "S1"],
            &["token", "revoke", "S1"],
            &[
                "token",
                "set",
                "S1",
                "--pin",
                "p",
                "--maxfail",
                "3",
                "--description",
                "d",
                "--count-auth-max",
                "9",
                "--count-auth-success-max",
                "4",
                "--validity-start",
                "2025-01-01",
                "--validity-end",
                "none",
                "--hotp-window",
                "20",
                "--totp-window",
                "90",
            ],
            &["token", "reset", "S1"],
            &["token", "resync", "S1", "123456", "654321"],
            &["token", "assign", "S1", "--user", "alice", "--realm", "r"],
            &["token", "unassign", "S1"],
            &["auth", "test", "--user", "alice"],
            &["auth", "test", "--user", "alice", "--service", "sshd"],
            &["audit", "show"],
            &[
                "audit", "show", "--user", "a", "--realm", "r", "--limit", "5",
            ],
            &["token", "list", "--json"],
        ];
        for line in lines {
            if let Err(e) = parse(line) {
                panic!("{line:?} did not parse: {e}");
            }
        }
    }

    #[test]
    fn enroll_fields_reach_the_parsed_arguments() {
        let cli = parse(&[
            "token", "enroll", "hotp", "--user", "bob", "--digits", "8", "--hash", "sha512",
            "--pin", "-",
        ])
        .unwrap();
        let Command::Token(TokenCommand::Enroll(args)) = cli.command else {
            panic!("not an enroll: {cli:?}");
        };
        assert_eq!(args.token_type, TokenTypeArg::Hotp);
        assert_eq!(TokenType::from(args.token_type), TokenType::Hotp);
        assert_eq!(args.digits, Some(8));
        assert_eq!(
            args.hash.map(HashAlgorithm::from),
            Some(HashAlgorithm::Sha512)
        );
        assert_eq!(args.pin, Some(PinArg::Stdin));
        assert!(!args.genkey && args.otpkey.is_none());
    }

    #[test]
    fn later_qr_flag_wins() {
        let cli = parse(&["token", "enroll", "totp", "--user", "a", "--qr", "--no-qr"]).unwrap();
        let Command::Token(TokenCommand::Enroll(args)) = cli.command else {
            panic!("not an enroll");
        };
        assert!(args.no_qr && !args.qr);
    }

    #[test]
    fn conflicting_key_options_are_a_usage_error() {
        let err = parse(&[
            "token", "enroll", "totp", "--user", "a", "--otpkey", "00", "--genkey",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn bad_digits_and_period_are_usage_errors() {
        for bad in ["7", "10", "six", ""] {
            let err =
                parse(&["token", "enroll", "totp", "--user", "a", "--digits", bad]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        for bad in ["10", "604801", "1d"] {
            let err =
                parse(&["token", "enroll", "totp", "--user", "a", "--period", bad]).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(err.to_string().contains("30 or 60 for totp"), "{err}");
        }
    }

    #[test]
    fn unknown_token_type_and_missing_user_are_usage_errors() {
        assert_eq!(
            parse(&["token", "enroll", "tiqr", "--user", "a"])
                .unwrap_err()
                .exit_code(),
            2
        );
        assert_eq!(
            parse(&["token", "enroll", "totp"]).unwrap_err().exit_code(),
            2
        );
        assert_eq!(
            parse(&["token", "resync", "S1", "123456"])
                .unwrap_err()
                .exit_code(),
            2
        );
        assert_eq!(
            parse(&["audit", "show", "--limit", "0"])
                .unwrap_err()
                .exit_code(),
            2
        );
    }

    #[test]
    fn hex_keys_are_checked_without_repeating_them() {
        assert!(check_hex_key("3132333435363738393031323334353637383930").is_ok());
        assert!(check_hex_key("DEADbeef").is_ok());
        let err = check_hex_key("31323g").unwrap_err();
        assert!(err.contains("character 6"), "{err}");
        assert!(!err.contains("31323g"), "{err}");
        let err = check_hex_key("313").unwrap_err();
        assert!(err.contains("odd"), "{err}");
        assert!(check_hex_key("").is_err());
        assert!(check_hex_key("JBSWY3DPEHPK3PXP").is_err());
    }

    #[test]
    fn otps_must_be_digits() {
        assert!(check_otp("OTP1", "123456").is_ok());
        assert!(check_otp("OTP1", "12 456").is_err());
        assert!(check_otp("OTP1", "").is_err());
        assert!(check_otp("OTP1", "pin123456").is_err());
    }

    #[test]
    fn dates_mean_utc_midnight() {
        assert_eq!(
            parse_time_bound("2025-01-31"),
            Ok(TimeBound(Some(1_738_281_600)))
        );
        assert_eq!(parse_time_bound("1970-01-01"), Ok(TimeBound(Some(0))));
    }

    #[test]
    fn rfc3339_times_honour_their_offset() {
        assert_eq!(
            parse_time_bound("2025-01-31T18:00:00Z"),
            Ok(TimeBound(Some(1_738_346_400)))
        );
        assert_eq!(
            parse_time_bound("2025-01-31T19:00:00+01:00"),
            Ok(TimeBound(Some(1_738_346_400)))
        );
    }

    #[test]
    fn none_clears_a_bound() {
        assert_eq!(parse_time_bound("none"), Ok(TimeBound(None)));
        assert_eq!(parse_time_bound("NONE"), Ok(TimeBound(None)));
    }

    #[test]
    fn malformed_times_are_refused_with_the_accepted_forms() {
        for bad in [
            "2025-13-01",
            "31.01.2025",
            "tomorrow",
            "",
            "2025-01-31 18:00",
        ] {
            let err = parse_time_bound(bad).unwrap_err();
            assert!(err.contains("RFC 3339"), "{bad}: {err}");
        }
        let err = parse(&["token", "set", "S", "--validity-end", "soon"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn set_without_settings_is_detected() {
        let cli = parse(&["token", "set", "S1"]).unwrap();
        let Command::Token(TokenCommand::Set(args)) = cli.command else {
            panic!("not a set");
        };
        assert!(args.is_empty());
        let cli = parse(&["token", "set", "S1", "--totp-window", "60"]).unwrap();
        let Command::Token(TokenCommand::Set(args)) = cli.command else {
            panic!("not a set");
        };
        assert!(!args.is_empty());
    }

    #[test]
    fn parsed_secrets_do_not_show_in_debug_output() {
        let cli = parse(&[
            "token", "enroll", "totp", "--user", "a", "--otpkey", "c0ffee", "--pin", "s3cret",
        ])
        .unwrap();
        let shown = format!("{cli:?}");
        assert!(
            !shown.contains("c0ffee") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
