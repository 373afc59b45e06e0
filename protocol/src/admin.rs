//! Administration requests and their answers. Append-only, like every wire enum.

use crate::machine::{LuksResponse, MachineApp, MachineAttach, MachineTokenInfo};
use crate::secret::Secret;
pub use crate::token::{HashAlgorithm, TokenType};
use serde::{Deserialize, Serialize};

/// Largest page the daemon returns for listings; every page fits comfortably in one frame.
pub const MAX_PAGE: u32 = 32;
/// Codes per `TokenOtps` request.
pub const MAX_UPCOMING_OTPS: u32 = 100;
/// Tokens per `TokenImport` request (the frame limit bounds it too).
pub const MAX_IMPORT_BATCH: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminRequest {
    TokenEnroll(Box<EnrollRequest>),
    /// Tokens ordered by serial; `after` continues a previous page.
    TokenList {
        user: Option<UserRef>,
        after: Option<String>,
        limit: u32,
    },
    TokenShow {
        serial: String,
    },
    TokenDelete {
        serial: String,
    },
    TokenEnable {
        serial: String,
    },
    TokenDisable {
        serial: String,
    },
    TokenRevoke {
        serial: String,
    },
    TokenSet {
        serial: String,
        settings: Box<TokenSettings>,
    },
    /// Clear the fail counter (and the lock it causes).
    TokenReset {
        serial: String,
    },
    /// Find two consecutive OTPs and set the counter (HOTP) or the clock drift (TOTP) from them.
    TokenResync {
        serial: String,
        otp1: Secret,
        otp2: Secret,
    },
    TokenAssign {
        serial: String,
        user: UserRef,
    },
    TokenUnassign {
        serial: String,
    },
    /// Newest first; `before` continues a previous page.
    AuditShow {
        user: Option<UserRef>,
        before: Option<u64>,
        limit: u32,
    },
    /// Which policies apply to a login of `user` through PAM service `service` from `rhost`,
    /// and what they decide.
    PolicyCheck {
        user: UserRef,
        service: String,
        rhost: Option<String>,
    },
    /// Attach a token to a host for an application.
    MachineAttach(Box<MachineAttach>),
    /// Remove the assignment of `serial` for `app` on `host` (`None`: the daemon's host).
    MachineDetach {
        serial: String,
        app: MachineApp,
        host: Option<String>,
    },
    /// Assignments, filtered by each field that is set (`host: None` lists every host).
    MachineList {
        serial: Option<String>,
        app: Option<MachineApp>,
        host: Option<String>,
    },
    /// The LUKS passphrase material of every luks assignment of `host` (`None`: the daemon's
    /// host) for the password typed at boot. Root only: it unlocks disks.
    LuksResponses {
        password: Secret,
        host: Option<String>,
    },
    /// Tokens brought over from another system's files (`pictl import`): at most
    /// `MAX_IMPORT_BATCH` per request, each enrolled, found already present, or refused on its own.
    TokenImport(Box<ImportRequest>),
    /// The offline values this host holds from upstream servers: `user`'s, or everyone's.
    OfflineStatus {
        user: Option<UserRef>,
    },
    /// Each upstream server: reachable, TLS, version, service account, last error.
    UpstreamStatus,
    /// The next `count` codes of an HOTP or TOTP token, without using them (privacyIDEA's
    /// getmultiotp): only where an admin policy allows `getmultiotp`, root included.
    TokenOtps {
        serial: String,
        count: u32,
    },
    /// Two consecutive codes of a token that waits for them after its enrollment
    /// (`verify_enrollment`): the token becomes active and both codes are spent.
    TokenVerify {
        serial: String,
        otp1: Secret,
        otp2: Secret,
    },
    /// Put an unassigned token into `realm`'s pool (privacyIDEA's token realms), or with
    /// `None` take it out of any pool. Users of the realm without a token may claim a pool
    /// token by logging in with it where the `autoassignment` policy allows.
    TokenPool {
        serial: String,
        realm: Option<String>,
    },
    /// The unassigned tokens of `realm`'s pool, ordered by serial; `after` continues a page.
    TokenListPool {
        realm: String,
        after: Option<String>,
        limit: u32,
    },
    /// Enroll a token for nobody, straight into `realm`'s pool (`spec.user` must be absent).
    TokenEnrollPool {
        realm: String,
        spec: Box<EnrollRequest>,
    },
    /// Import hotp and totp tokens for nobody, into `realm`'s pool, as `TokenImport` does for
    /// users (at most `MAX_IMPORT_BATCH`, each on its own). Each token's `user` is not used:
    /// pictl sends it empty.
    TokenImportPool {
        realm: String,
        batch: Box<ImportRequest>,
    },
}

impl AdminRequest {
    /// The command an operator typed for this request (`pictl token enroll` → "token enroll");
    /// used in the audit trail and in messages.
    pub fn name(&self) -> &'static str {
        match self {
            AdminRequest::TokenEnroll(_) => "token enroll",
            AdminRequest::TokenList { .. } => "token list",
            AdminRequest::TokenShow { .. } => "token show",
            AdminRequest::TokenDelete { .. } => "token delete",
            AdminRequest::TokenEnable { .. } => "token enable",
            AdminRequest::TokenDisable { .. } => "token disable",
            AdminRequest::TokenRevoke { .. } => "token revoke",
            AdminRequest::TokenSet { .. } => "token set",
            AdminRequest::TokenReset { .. } => "token reset",
            AdminRequest::TokenResync { .. } => "token resync",
            AdminRequest::TokenAssign { .. } => "token assign",
            AdminRequest::TokenUnassign { .. } => "token unassign",
            AdminRequest::AuditShow { .. } => "audit show",
            AdminRequest::PolicyCheck { .. } => "policy check",
            AdminRequest::MachineAttach(_) => "machine attach",
            AdminRequest::MachineDetach { .. } => "machine detach",
            AdminRequest::MachineList { .. } => "machine list",
            AdminRequest::LuksResponses { .. } => "luks responses",
            AdminRequest::TokenImport(_) => "token import",
            AdminRequest::OfflineStatus { .. } => "offline status",
            AdminRequest::UpstreamStatus => "upstream status",
            AdminRequest::TokenOtps { .. } => "token otps",
            AdminRequest::TokenVerify { .. } => "token verify",
            AdminRequest::TokenPool { .. } => "token pool",
            AdminRequest::TokenListPool { .. } => "token list",
            AdminRequest::TokenEnrollPool { .. } => "token enroll",
            AdminRequest::TokenImportPool { .. } => "token import",
        }
    }
}

/// A user as the operator names it. `realm: None` means the default realm, unless `login`
/// carries `@realm`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    pub login: String,
    pub realm: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    pub token_type: Option<TokenType>,
    pub user: Option<UserRef>,
    /// Chosen by the daemon (`OATH…`, `TOTP…`) when absent.
    pub serial: Option<String>,
    /// Hex key. Absent: the daemon generates one (the default, and the safer choice).
    pub otpkey: Option<Secret>,
    pub digits: Option<u8>,
    pub hash: Option<HashAlgorithm>,
    /// TOTP time step in seconds (30 or 60).
    pub period: Option<u32>,
    pub pin: Option<Secret>,
    pub description: Option<String>,
    /// mOTP: the PIN typed into the mOTP app (part of every code).
    pub motppin: Option<Secret>,
    /// pw: the fixed password.
    pub password: Option<Secret>,
    /// paper, tan: how many codes to print.
    pub count: Option<u32>,
    /// applspec: the PAM service the password is for.
    pub service: Option<String>,
    /// question: the questions and their answers.
    pub questions: Vec<(String, Secret)>,
    /// ocra: the OCRA suite, e.g. `OCRA-1:HOTP-SHA1-8:QH40`.
    pub ocrasuite: Option<String>,
    /// email: where the codes go.
    pub email: Option<String>,
    /// sms: the phone number the codes go to.
    pub phone: Option<String>,
    /// yubico: the key's public id (its first 12 modhex characters).
    pub tokenid: Option<String>,
    /// 4eyes: how many tokens of which realm, e.g. `admins:2,security:1`.
    pub foureyes: Option<String>,
    /// 4eyes: the character between the codes (default a space).
    pub separator: Option<String>,
    /// sshkey: the public key line (`ssh-ed25519 AAAA… comment`).
    pub sshkey: Option<String>,
}

/// Changes to a token; `None` leaves a field as it is. For the validity bounds,
/// `Some(None)` clears the bound.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSettings {
    pub pin: Option<Secret>,
    pub maxfail: Option<u32>,
    pub description: Option<String>,
    pub count_auth_max: Option<u64>,
    pub count_auth_success_max: Option<u64>,
    pub validity_start: Option<Option<i64>>,
    pub validity_end: Option<Option<i64>>,
    /// HOTP look-ahead window (counter values).
    pub count_window: Option<u32>,
    /// TOTP window in seconds either side of now.
    pub time_window: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminResponse {
    Done {
        message: String,
    },
    Enrolled(Box<Enrolled>),
    Token(Box<TokenInfo>),
    Tokens {
        tokens: Vec<TokenInfo>,
        next: Option<String>,
    },
    Audit {
        entries: Vec<AuditEntry>,
        next: Option<u64>,
    },
    PolicyCheck(Box<PolicyReport>),
    Machines(Vec<MachineTokenInfo>),
    LuksResponses(Vec<LuksResponse>),
    /// One result per imported token, in the order of the request.
    Imported(Vec<ImportResult>),
    Offline(Vec<OfflineInfo>),
    Upstreams(Vec<UpstreamInfo>),
    /// A token's next codes, in the order it will accept them.
    Otps {
        serial: String,
        otps: Vec<UpcomingOtp>,
    },
    /// As `Enrolled`, for a token that stays inactive until its user types two consecutive
    /// codes (`TokenVerify`).
    EnrolledUnverified(Box<Enrolled>),
    /// The token is verified and active. `recovery_code`: the user had no recovery code, so one
    /// was made (a registration token), shown this once.
    Verified {
        token: Box<TokenInfo>,
        recovery_code: Option<Secret>,
    },
}

/// One code a token will accept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpcomingOtp {
    /// The HOTP counter, or the TOTP time step.
    pub counter: u64,
    /// TOTP: when (Unix seconds) the code's time step begins on the daemon's clock.
    pub valid_from: Option<i64>,
    pub otp: Secret,
}

/// One token's offline values on this host. Never a value or a refill token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineInfo {
    pub login: String,
    pub realm: String,
    pub serial: String,
    /// The `[upstream.NAME]` server that handed them out.
    pub upstream: String,
    /// How many values remain, and their lowest and highest counter.
    pub remaining: u32,
    pub first_counter: Option<u64>,
    pub last_counter: Option<u64>,
    /// Wrong offline codes since the last online login, and how many lock offline logins.
    pub fails: u32,
    pub max_fails: u32,
    /// Unix seconds: when the newest values arrived, and the last refill.
    pub received_at: i64,
    pub refilled_at: Option<i64>,
    /// Values were used offline and wait for the server to refill them.
    pub refill_due: bool,
}

/// One upstream server as the daemon sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamInfo {
    pub name: String,
    pub urls: Vec<String>,
    /// The realms it serves.
    pub realms: Vec<String>,
    /// Every URL is https, certificates verified.
    pub tls: bool,
    /// The last exchange got an answer (`None`: none yet).
    pub reachable: Option<bool>,
    /// The server's version, as its last answer said.
    pub version: Option<String>,
    /// Whether a service account is configured, and whether its last login worked.
    pub service_account: bool,
    pub service_account_ok: Option<bool>,
    pub last_error: Option<String>,
}

/// A batch of tokens from another system (pam_oath's usersfile, google-authenticator's files).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRequest {
    pub tokens: Vec<ImportedToken>,
}

/// One token as another system kept it. The daemon chooses the serial.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedToken {
    /// Where it came from, for messages and the audit trail: `/etc/users.oath:12`.
    pub source: String,
    pub user: UserRef,
    /// hotp, totp or tan.
    pub token_type: TokenType,
    /// hotp, totp: the key in hex. Empty for tan.
    pub otpkey: Secret,
    pub digits: u8,
    pub hash: HashAlgorithm,
    /// totp: the time step in seconds.
    pub period: Option<u32>,
    /// hotp: the next counter value the old system expected. totp: the last time step it
    /// accepted (0: unknown; the daemon then takes the current step, so no code shown before the
    /// import is accepted after it).
    pub counter: u64,
    /// The token PIN (pam_oath's per-line password), typed before the code.
    pub pin: Option<Secret>,
    /// tan: the unused codes, each accepted once, in any order.
    pub tans: Vec<Secret>,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportResult {
    pub source: String,
    pub outcome: ImportOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImportOutcome {
    Enrolled {
        serial: String,
    },
    /// The user already has a token of this type with this key (or one of these TANs): an
    /// earlier run imported it. Nothing changed.
    Present {
        serial: String,
    },
    Refused {
        message: String,
    },
}

/// The answer to `PolicyCheck`: why a login behaves as it does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyReport {
    pub login: String,
    pub realm: String,
    /// The resolver that knows the user; None if no resolver does.
    pub resolver: Option<String>,
    /// Active policies whose conditions match, best priority first.
    pub matching: Vec<String>,
    /// Every action some matching policy sets, with the value that wins and the policy it
    /// comes from.
    pub effective: Vec<PolicyDecision>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyDecision {
    pub action: String,
    pub value: String,
    pub policy: String,
}

/// A token as administrators see it: never its key or PIN.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub serial: String,
    #[serde(rename = "type")]
    pub token_type: TokenType,
    pub user: Option<String>,
    pub realm: Option<String>,
    pub active: bool,
    pub revoked: bool,
    pub locked: bool,
    pub failcount: u32,
    pub maxfail: u32,
    /// HOTP: next expected counter. TOTP: last accepted time step.
    pub count: u64,
    pub description: String,
    pub digits: u8,
    pub hash: HashAlgorithm,
    pub period: Option<u32>,
    pub count_window: u32,
    pub time_window: Option<u32>,
    pub time_shift: Option<i64>,
    pub has_pin: bool,
    pub count_auth: u64,
    pub count_auth_max: u64,
    pub count_auth_success: u64,
    pub count_auth_success_max: u64,
    pub validity_start: Option<i64>,
    pub validity_end: Option<i64>,
    /// Unix seconds.
    pub created: i64,
    pub last_auth: Option<i64>,
    pub failcounter_exceeded_at: Option<i64>,
    /// What only some types have, as (label, value) pairs for display: an SSH key's type,
    /// fingerprint and comment.
    pub details: Vec<(String, String)>,
}

/// The one answer that carries a token's key: shown once, at enrollment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolled {
    pub token: TokenInfo,
    /// `otpauth://…` for authenticator apps; contains the key.
    pub otpauth_url: Secret,
    /// The key in base32 without padding, for manual entry.
    pub otpkey_base32: Secret,
    /// Codes shown this once (paper list, registration code); empty for other types.
    pub codes: Vec<Secret>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    /// Unix seconds.
    pub time: i64,
    pub caller_uid: u32,
    pub caller_pid: i32,
    /// `auth`, `token enroll`, `token delete` …
    pub action: String,
    pub user: Option<String>,
    pub realm: Option<String>,
    pub serial: Option<String>,
    pub token_type: Option<String>,
    pub service: Option<String>,
    pub rhost: Option<String>,
    pub success: bool,
    pub message: String,
}
