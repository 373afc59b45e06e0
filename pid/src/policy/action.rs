//! The actions a policy can set: one table, from which come the `Action` enum, each action's
//! name in pid.toml, the scopes it belongs to, the kind of value it takes (`Kind`), and
//! `Action::ALL`. An action this version does not implement is not in the table, so a policy
//! naming it is refused when loaded, never silently ignored.

use super::error::PolicyError;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// How a login is checked.
    Authentication,
    /// Rules for new tokens and PINs, whoever enrolls them.
    Enrollment,
    /// What users may do with their own tokens (self-service through `pictl` as themselves).
    User,
    /// What members of admin groups may do. Without any admin policy every administrator may do
    /// everything; once one exists, an administrator other than root may do only what an admin
    /// policy allows (privacyIDEA).
    Admin,
}

impl Scope {
    /// As written in pid.toml (serde's lower-case variant name).
    pub(super) fn name(self) -> String {
        format!("{self:?}").to_ascii_lowercase()
    }
}

const AUTHENTICATION: &[Scope] = &[Scope::Authentication];
const ENROLLMENT: &[Scope] = &[Scope::Enrollment];
const USER: &[Scope] = &[Scope::User];
const USER_AND_ADMIN: &[Scope] = &[Scope::User, Scope::Admin];
const ADMIN: &[Scope] = &[Scope::Admin];

/// What an action's value is, and so how it is written and checked when loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// `true` or `false`.
    Flag,
    /// `passthru`: a flag, or `"userstore"` (true). privacyIDEA's other values name a RADIUS
    /// server, which pi does not forward to.
    Passthru,
    /// `otppin`: `"tokenpin"`, `"userstore"` or `"none"`.
    OtpPin,
    /// `autoassignment`: `"userstore"` or `"any_pin"`.
    Autoassign,
    /// privacyIDEA's period: a number and one of s, m, h, d, y (`"10d"`).
    Period,
    /// Token types whose PIN alone triggers a challenge: never `spass`, which has no one-time
    /// part.
    ChallengeTypes,
    /// Token types (`"hotp totp"` or a list).
    TokenTypes,
    /// Token types whose enrollment waits for two consecutive codes: hotp and totp, the types
    /// whose codes a person reads off a device in sequence.
    VerifiableTypes,
    /// A number that must be one of the two.
    Either(u32, u32),
    /// A number in this range, both ends included.
    Range(u32, u32),
    /// An HMAC hash: `"sha1"`, `"sha256"` or `"sha512"`.
    Hash,
    /// `otp_pin_contents`'s character classes (`"cn"`, `"-s"`, `"+cn"`).
    PinContents,
    /// `key/regex/replacement/` rewrites, one or a list.
    Mangle,
    /// A text of at most 1,000 characters whose `{tags}` are these (what the daemon fills in).
    Text(&'static [&'static str]),
    /// privacyIDEA's `COUNT/PERIOD` (`"3/5m"`).
    Limit,
    /// Any text, accepted for compatibility and ignored, for the reason given (a warning at
    /// load).
    Ignored(&'static str),
}

/// `actions! { Variant: "name", SCOPES, Kind; … }`: the enum and its table in one place.
macro_rules! actions {
    ($(
        $(#[$doc:meta])*
        $variant:ident: $name:literal, $scopes:ident, $kind:expr;
    )+) => {
        /// The actions this version enforces.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
        pub enum Action {
            $($(#[$doc])* $variant,)+
        }

        impl Action {
            /// Every action, in the order of the table (`pictl policy check` lists them so).
            pub const ALL: [Action; [$($name),+].len()] = [$(Action::$variant),+];

            /// As written in pid.toml.
            pub fn name(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)+
                }
            }

            /// The scopes in which the action means something.
            pub fn scopes(self) -> &'static [Scope] {
                match self {
                    $(Action::$variant => $scopes,)+
                }
            }

            /// What its value is.
            pub(super) fn kind(self) -> Kind {
                match self {
                    $(Action::$variant => $kind,)+
                }
            }
        }
    };
}

actions! {
    PassOnNoToken: "passOnNoToken", AUTHENTICATION, Kind::Flag;
    PassOnNoUser: "passOnNoUser", AUTHENTICATION, Kind::Flag;
    OtpPin: "otppin", AUTHENTICATION, Kind::OtpPin;
    ResetAllUserTokens: "reset_all_user_tokens", AUTHENTICATION, Kind::Flag;
    HideSpecificErrorMessage: "hide_specific_error_message", AUTHENTICATION, Kind::Flag;
    LastAuth: "last_auth", AUTHENTICATION, Kind::Period;
    ChallengeResponse: "challenge_response", AUTHENTICATION, Kind::ChallengeTypes;
    Mangle: "mangle", AUTHENTICATION, Kind::Mangle;
    Passthru: "passthru", AUTHENTICATION, Kind::Passthru;
    ChallengeText: "challenge_text", AUTHENTICATION, Kind::Text(&["user", "realm", "serial"]);
    AuthMaxFail: "auth_max_fail", AUTHENTICATION, Kind::Limit;
    AuthMaxSuccess: "auth_max_success", AUTHENTICATION, Kind::Limit;
    SmsText: "smstext", AUTHENTICATION, Kind::Text(&["otp", "user", "realm", "serial"]);
    SmsAutoSend: "smsautosend", AUTHENTICATION, Kind::Flag;
    EmailText: "emailtext", AUTHENTICATION, Kind::Text(&["otp", "user", "realm", "serial"]);
    EmailSubject: "emailsubject", AUTHENTICATION, Kind::Text(&["otp", "user", "realm", "serial"]);
    EmailAutoSend: "emailautosend", AUTHENTICATION, Kind::Flag;
    U2fFacets: "u2f_facets", AUTHENTICATION, Kind::Ignored(
        "it restricts web origins of U2F tokens, and logins through PAM have no web origin"
    );
    HotpOtpLen: "hotp_otplen", ENROLLMENT, Kind::Either(6, 8);
    TotpOtpLen: "totp_otplen", ENROLLMENT, Kind::Either(6, 8);
    HotpHashlib: "hotp_hashlib", ENROLLMENT, Kind::Hash;
    TotpHashlib: "totp_hashlib", ENROLLMENT, Kind::Hash;
    TotpTimestep: "totp_timestep", ENROLLMENT, Kind::Either(30, 60);
    PinMinLength: "otp_pin_minlength", ENROLLMENT, Kind::Range(0, 256);
    PinMaxLength: "otp_pin_maxlength", ENROLLMENT, Kind::Range(0, 256);
    PinContents: "otp_pin_contents", ENROLLMENT, Kind::PinContents;
    PinRequired: "otp_pin_required", ENROLLMENT, Kind::Flag;
    MaxTokenPerUser: "max_token_per_user", ENROLLMENT, Kind::Range(1, 10_000);
    /// Tokens of these types, enrolled by anyone, take part in no login until their user typed
    /// two consecutive codes (`pictl token verify`). Users' own hotp and totp enrollments always
    /// wait for them.
    VerifyEnrollment: "verify_enrollment", ENROLLMENT, Kind::VerifiableTypes;
    /// A PIN an administrator sets must be changed by the owner at the next login.
    ChangePinOnFirstUse: "change_pin_on_first_use", ENROLLMENT, Kind::Flag;
    /// A PIN must be changed this long after it was set.
    ChangePinEvery: "change_pin_every", ENROLLMENT, Kind::Period;
    /// A user of the realm without a token claims an unassigned token of the realm's pool by
    /// logging in with its code (privacyIDEA's autoassignment): `"userstore"` with the user
    /// store's password before the code, `"any_pin"` with whatever PIN they type first.
    Autoassignment: "autoassignment", ENROLLMENT, Kind::Autoassign;
    // User and admin scopes: token operations.
    Enroll: "enroll", USER_AND_ADMIN, Kind::TokenTypes;
    Delete: "delete", USER_AND_ADMIN, Kind::Flag;
    Enable: "enable", USER_AND_ADMIN, Kind::Flag;
    Disable: "disable", USER_AND_ADMIN, Kind::Flag;
    Reset: "reset", USER_AND_ADMIN, Kind::Flag;
    Resync: "resync", USER_AND_ADMIN, Kind::Flag;
    SetPin: "setpin", USER_AND_ADMIN, Kind::Flag;
    /// A user may not delete their last token (a recovery code and a token that waits for
    /// verification do not count).
    KeepOneToken: "keep_one_token", USER, Kind::Flag;
    /// A user who has no token may not enroll one: an administrator issues the first, so a
    /// stolen password alone never becomes a second factor.
    FirstTokenByAdmin: "first_token_by_admin", USER, Kind::Flag;
    // Admin scope only.
    Revoke: "revoke", ADMIN, Kind::Flag;
    Set: "set", ADMIN, Kind::Flag;
    Assign: "assign", ADMIN, Kind::Flag;
    Unassign: "unassign", ADMIN, Kind::Flag;
    TokenList: "tokenlist", ADMIN, Kind::Flag;
    AuditLog: "auditlog", ADMIN, Kind::Flag;
    PolicyCheck: "policycheck", ADMIN, Kind::Flag;
    /// Attach, detach and list MachineToken assignments (privacyIDEA's `manage_machine_tokens`).
    ManageMachineTokens: "manage_machine_tokens", ADMIN, Kind::Flag;
    /// See a token's next codes (`pictl token otps`). Never allowed without a policy, not even
    /// to root (`Action::needs_explicit_policy`).
    GetMultiOtp: "getmultiotp", ADMIN, Kind::Flag;
    /// Put unassigned tokens into a realm's pool or take them out, and list a pool
    /// (privacyIDEA's token realms).
    TokenRealms: "tokenrealms", ADMIN, Kind::Flag;
}

/// privacyIDEA authentication actions that are recognised but not enforced yet: refused, so a
/// rule is never silently ignored.
const NOT_YET: &[&str] = &[
    "passthru_assign",
    "auth_cache",
    "force_challenge_response",
    "increase_failcounter_on_challenge",
];

impl Action {
    /// Whether an admin policy must allow this action even to root and even where no admin
    /// policy restricts administrators: the next codes of a token are the token itself (whoever
    /// reads them logs in as its owner), so showing them is opted into, not defaulted.
    pub fn needs_explicit_policy(self) -> bool {
        matches!(self, Action::GetMultiOtp)
    }

    /// The action a policy of `scope` names `key`; `Err` says what to write instead.
    pub fn parse(scope: Scope, key: &str) -> Result<Action, PolicyError> {
        let Some(action) = Action::ALL.into_iter().find(|a| a.name() == key) else {
            let key = key.to_owned();
            if let Some(t) = key.strip_prefix("enroll") {
                let types = t.to_ascii_lowercase();
                return Err(PolicyError::EnrollPerType { key, types });
            }
            if NOT_YET.contains(&key.as_str()) {
                return Err(PolicyError::NotEnforced { key });
            }
            return Err(PolicyError::UnknownAction { key });
        };
        if !action.scopes().contains(&scope) {
            return Err(PolicyError::WrongScope { action, scope });
        }
        Ok(action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_its_own_name_and_a_scope() {
        for (i, a) in Action::ALL.iter().enumerate() {
            assert!(!a.scopes().is_empty(), "{a:?}");
            assert_eq!(Action::ALL[..i].iter().find(|b| b.name() == a.name()), None);
            assert_eq!(Action::parse(a.scopes()[0], a.name()).ok(), Some(*a));
        }
    }
}
