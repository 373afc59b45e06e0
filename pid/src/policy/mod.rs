//! Policies: declarative rules in pid.toml (`[[policy]]`) with privacyIDEA's matching and
//! priority semantics, plus conditions a local daemon knows — the PAM service and the remote host.
//!
//! A policy applies when every condition it states matches (an absent condition matches all).
//! For an action, the applying policies with the best (lowest) priority decide. Two policies that
//! could apply together at the same priority but set an action differently are refused when the
//! configuration is loaded, not discovered at login time.
//!
//! Fail closed: an action this version does not implement is a configuration error, never a
//! silently ignored rule.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

mod pin;
mod time;

pub use pin::{PinContents, PinRules};
use time::{in_time_ranges, parse_time_ranges, TimeRange};

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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub name: String,
    pub scope: Scope,
    #[serde(default = "default_true")]
    pub active: bool,
    /// Lower wins (privacyIDEA).
    #[serde(default = "default_priority")]
    pub priority: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub realm: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolver: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user: Vec<String>,
    /// PAM services (`sshd`, `sudo`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service: Vec<String>,
    /// Remote hosts: addresses or CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rhost: Vec<String>,
    /// Admin scope: the Unix groups whose members the policy is for (privacyIDEA's admin
    /// user / admin realm).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admin_group: Vec<String>,
    /// Times of the week in the host's local time zone, privacyIDEA's format:
    /// `"Mon-Fri: 08:00-18:00, Sat: 10:00-12:00"` (both ends included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    pub actions: BTreeMap<String, toml::Value>,
}

fn default_true() -> bool {
    true
}

fn default_priority() -> u32 {
    1
}

/// The value of an action, checked against its type when loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Flag(bool),
    OtpPin(OtpPin),
    /// A period, as written (`10d`) and in seconds.
    Period(String, i64),
    /// Token types, e.g. for `challenge_response`.
    Types(Vec<protocol::TokenType>),
    /// `mangle` rewrites, applied in order.
    Mangle(Vec<Mangle>),
    /// A text, e.g. `challenge_text` or `smstext`, its `{tags}` checked when loaded.
    Text(String),
    /// `auth_max_fail` / `auth_max_success`: at most `count` per period (`text`, `secs`).
    Limit {
        count: u32,
        text: String,
        secs: i64,
    },
    /// A number in the action's range (OTP length, PIN length, token count …).
    Number(u32),
    Hash(protocol::HashAlgorithm),
    /// `otp_pin_contents`.
    PinContents(PinContents),
}

/// What a `mangle` rewrite applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MangleKey {
    User,
    Realm,
    /// What the user typed: PIN+OTP, an OTP answering a challenge, or a password.
    Pass,
}

/// One `key/regex/replacement/` rewrite. Compared by its text: two policies with the same text
/// do the same thing.
#[derive(Clone, Debug)]
pub struct Mangle {
    pub key: MangleKey,
    regex: regex::Regex,
    replacement: String,
    text: String,
}

impl PartialEq for Mangle {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Mangle {}

impl Mangle {
    /// privacyIDEA's `key/regex/replacement/`; the regex may contain `/`, the replacement may not.
    /// Replacements use `$1` for groups (Python's `\1` is written `$1` here).
    fn parse(text: &str) -> Result<Mangle, String> {
        let body = text.strip_suffix('/').ok_or_else(|| {
            format!("mangle {text:?}: write key/regex/replacement/ (with the final slash)")
        })?;
        let (key, rest) = body
            .split_once('/')
            .ok_or_else(|| format!("mangle {text:?}: write key/regex/replacement/"))?;
        let (pattern, replacement) = rest
            .rsplit_once('/')
            .ok_or_else(|| format!("mangle {text:?}: write key/regex/replacement/"))?;
        let key = match key {
            "user" => MangleKey::User,
            "realm" => MangleKey::Realm,
            "pass" => MangleKey::Pass,
            other => {
                return Err(format!(
                    "mangle {text:?}: key {other:?} is not user, realm or pass"
                ))
            }
        };
        let regex = regex::Regex::new(pattern)
            .map_err(|e| format!("mangle {text:?}: invalid regular expression: {e}"))?;
        Ok(Mangle {
            key,
            regex,
            replacement: replacement.to_owned(),
            text: text.to_owned(),
        })
    }

    /// Apply to `value` when `key` matches this rewrite's key.
    pub fn apply(&self, key: MangleKey, value: &str) -> String {
        if key == self.key {
            self.regex
                .replace_all(value, self.replacement.as_str())
                .into_owned()
        } else {
            value.to_owned()
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtpPin {
    TokenPin,
    /// The PIN part is the user's password in the user store that found the user.
    UserStore,
    None,
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Flag(b) => write!(f, "{b}"),
            Value::OtpPin(OtpPin::TokenPin) => f.write_str("tokenpin"),
            Value::OtpPin(OtpPin::UserStore) => f.write_str("userstore"),
            Value::OtpPin(OtpPin::None) => f.write_str("none"),
            Value::Text(text) => f.write_str(text),
            Value::Limit { text, .. } => f.write_str(text),
            Value::Number(n) => write!(f, "{n}"),
            Value::Hash(h) => f.write_str(h.as_str()),
            Value::PinContents(p) => f.write_str(&p.text),
            Value::Period(text, _) => f.write_str(text),
            Value::Mangle(rules) => {
                let texts: Vec<&str> = rules.iter().map(|m| m.text.as_str()).collect();
                f.write_str(&texts.join(" "))
            }
            Value::Types(types) => {
                let names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
                f.write_str(&names.join(" "))
            }
        }
    }
}

/// Authentication actions this version enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    PassOnNoToken,
    PassOnNoUser,
    OtpPin,
    ResetAllUserTokens,
    HideSpecificErrorMessage,
    LastAuth,
    ChallengeResponse,
    Mangle,
    Passthru,
    ChallengeText,
    AuthMaxFail,
    AuthMaxSuccess,
    SmsText,
    SmsAutoSend,
    EmailText,
    EmailSubject,
    EmailAutoSend,
    U2fFacets,
    // Enrollment scope.
    HotpOtpLen,
    TotpOtpLen,
    HotpHashlib,
    TotpHashlib,
    TotpTimestep,
    PinMinLength,
    PinMaxLength,
    PinContents,
    PinRequired,
    MaxTokenPerUser,
    // User and admin scopes: token operations.
    Enroll,
    Delete,
    Enable,
    Disable,
    Reset,
    Resync,
    SetPin,
    // Admin scope only.
    Revoke,
    Set,
    Assign,
    Unassign,
    TokenList,
    AuditLog,
    PolicyCheck,
    /// Attach, detach and list MachineToken assignments (privacyIDEA's `manage_machine_tokens`).
    ManageMachineTokens,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::PassOnNoToken => "passOnNoToken",
            Action::PassOnNoUser => "passOnNoUser",
            Action::OtpPin => "otppin",
            Action::ResetAllUserTokens => "reset_all_user_tokens",
            Action::HideSpecificErrorMessage => "hide_specific_error_message",
            Action::LastAuth => "last_auth",
            Action::ChallengeResponse => "challenge_response",
            Action::Mangle => "mangle",
            Action::Passthru => "passthru",
            Action::ChallengeText => "challenge_text",
            Action::AuthMaxFail => "auth_max_fail",
            Action::AuthMaxSuccess => "auth_max_success",
            Action::SmsText => "smstext",
            Action::SmsAutoSend => "smsautosend",
            Action::EmailText => "emailtext",
            Action::EmailSubject => "emailsubject",
            Action::EmailAutoSend => "emailautosend",
            Action::U2fFacets => "u2f_facets",
            Action::HotpOtpLen => "hotp_otplen",
            Action::TotpOtpLen => "totp_otplen",
            Action::HotpHashlib => "hotp_hashlib",
            Action::TotpHashlib => "totp_hashlib",
            Action::TotpTimestep => "totp_timestep",
            Action::PinMinLength => "otp_pin_minlength",
            Action::PinMaxLength => "otp_pin_maxlength",
            Action::PinContents => "otp_pin_contents",
            Action::PinRequired => "otp_pin_required",
            Action::MaxTokenPerUser => "max_token_per_user",
            Action::Enroll => "enroll",
            Action::Delete => "delete",
            Action::Enable => "enable",
            Action::Disable => "disable",
            Action::Reset => "reset",
            Action::Resync => "resync",
            Action::SetPin => "setpin",
            Action::Revoke => "revoke",
            Action::Set => "set",
            Action::Assign => "assign",
            Action::Unassign => "unassign",
            Action::TokenList => "tokenlist",
            Action::AuditLog => "auditlog",
            Action::PolicyCheck => "policycheck",
            Action::ManageMachineTokens => "manage_machine_tokens",
        }
    }

    /// The scopes in which the action means something.
    pub fn scopes(self) -> &'static [Scope] {
        use Action::*;
        match self {
            HotpOtpLen | TotpOtpLen | HotpHashlib | TotpHashlib | TotpTimestep | PinMinLength
            | PinMaxLength | PinContents | PinRequired | MaxTokenPerUser => &[Scope::Enrollment],
            Enroll | Delete | Enable | Disable | Reset | Resync | SetPin => {
                &[Scope::User, Scope::Admin]
            }
            Revoke | Set | Assign | Unassign | TokenList | AuditLog | PolicyCheck
            | ManageMachineTokens => &[Scope::Admin],
            _ => &[Scope::Authentication],
        }
    }

    pub(crate) const ALL: [Action; 43] = [
        Action::PassOnNoToken,
        Action::PassOnNoUser,
        Action::OtpPin,
        Action::ResetAllUserTokens,
        Action::HideSpecificErrorMessage,
        Action::LastAuth,
        Action::ChallengeResponse,
        Action::Mangle,
        Action::Passthru,
        Action::ChallengeText,
        Action::AuthMaxFail,
        Action::AuthMaxSuccess,
        Action::SmsText,
        Action::SmsAutoSend,
        Action::EmailText,
        Action::EmailSubject,
        Action::EmailAutoSend,
        Action::U2fFacets,
        Action::HotpOtpLen,
        Action::TotpOtpLen,
        Action::HotpHashlib,
        Action::TotpHashlib,
        Action::TotpTimestep,
        Action::PinMinLength,
        Action::PinMaxLength,
        Action::PinContents,
        Action::PinRequired,
        Action::MaxTokenPerUser,
        Action::Enroll,
        Action::Delete,
        Action::Enable,
        Action::Disable,
        Action::Reset,
        Action::Resync,
        Action::SetPin,
        Action::Revoke,
        Action::Set,
        Action::Assign,
        Action::Unassign,
        Action::TokenList,
        Action::AuditLog,
        Action::PolicyCheck,
        Action::ManageMachineTokens,
    ];
}

/// privacyIDEA authentication actions that are recognised but not enforced yet: refused, so a
/// rule is never silently ignored.
const NOT_YET: &[&str] = &[
    "passthru_assign",
    "auth_cache",
    "force_challenge_response",
    "increase_failcounter_on_challenge",
];

/// The `{tags}` a text action may use: what the daemon can fill in.
fn allowed_tags(action: Action) -> &'static [&'static str] {
    match action {
        Action::ChallengeText => &["user", "realm", "serial"],
        Action::SmsText | Action::EmailText | Action::EmailSubject => {
            &["otp", "user", "realm", "serial"]
        }
        _ => &[],
    }
}

/// What a policy is matched against.
#[derive(Clone, Debug, Default)]
pub struct Context<'a> {
    pub realm: &'a str,
    /// None when the user was not found.
    pub resolver: Option<&'a str>,
    pub login: &'a str,
    pub service: &'a str,
    pub rhost: Option<&'a str>,
    /// Unix seconds of the request; a policy with a `time` condition needs it to apply.
    pub now: Option<i64>,
    /// Admin scope: the groups named by admin policies that the caller belongs to.
    pub admin_groups: &'a [String],
}

struct Policy {
    name: String,
    scope: Scope,
    priority: u32,
    realm: Vec<String>,
    resolver: Vec<String>,
    user: Vec<String>,
    service: Vec<String>,
    rhost: Vec<(IpAddr, u8)>,
    admin_group: Vec<String>,
    time: Vec<TimeRange>,
    actions: BTreeMap<Action, Value>,
}

/// The loaded, validated policy set.
#[derive(Default)]
pub struct Policies {
    active: Vec<Policy>,
    /// Accepted but meaningless here (e.g. `u2f_facets`): logged at load, shown by
    /// `pid --check-config`.
    warnings: Vec<String>,
}

/// The decision for one action: its value and the policy that set it (for audit and messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision<'a> {
    pub value: &'a Value,
    pub policy: &'a str,
}

impl Policies {
    /// Validate and load. `realms`/`resolvers` are the declared names, so a condition naming an
    /// unknown one is an error instead of a rule that never applies.
    pub fn load(
        configs: &[PolicyConfig],
        realms: &[&str],
        resolvers: &[&str],
    ) -> Result<Policies, String> {
        let mut names = std::collections::BTreeSet::new();
        let mut active = Vec::new();
        let mut warnings = Vec::new();
        for c in configs {
            let at = format!("policy {:?}", c.name);
            if c.name.is_empty() || !names.insert(c.name.as_str()) {
                return Err(format!("{at}: every policy needs a unique, non-empty name"));
            }
            for r in &c.realm {
                if !realms.contains(&r.as_str()) {
                    return Err(format!("{at}: unknown realm {r:?} in `realm`"));
                }
            }
            for r in &c.resolver {
                if !resolvers.contains(&r.as_str()) {
                    return Err(format!("{at}: unknown resolver {r:?} in `resolver`"));
                }
            }
            let rhost = c
                .rhost
                .iter()
                .map(|r| {
                    parse_net(r)
                        .ok_or_else(|| format!("{at}: {r:?} is not an address or CIDR range"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if c.scope != Scope::Authentication && !(c.service.is_empty() && c.rhost.is_empty()) {
                return Err(format!(
                    "{at}: `service` and `rhost` describe a login; they apply to scope \
                     \"authentication\" only"
                ));
            }
            if c.scope != Scope::Admin && !c.admin_group.is_empty() {
                return Err(format!(
                    "{at}: `admin_group` applies to scope \"admin\" only"
                ));
            }
            let time = match &c.time {
                Some(t) => parse_time_ranges(t).map_err(|e| format!("{at}: {e}"))?,
                None => Vec::new(),
            };
            if c.actions.is_empty() {
                return Err(format!("{at}: no actions"));
            }
            let mut actions = BTreeMap::new();
            for (key, value) in &c.actions {
                let action = parse_action(c.scope, key, value).map_err(|e| format!("{at}: {e}"))?;
                if action.0 == Action::U2fFacets {
                    warnings.push(format!(
                        "{at}: u2f_facets is ignored: it restricts web origins of U2F tokens, and \
                         logins through PAM have no web origin"
                    ));
                }
                actions.insert(action.0, action.1);
            }
            if c.active {
                active.push(Policy {
                    name: c.name.clone(),
                    scope: c.scope,
                    priority: c.priority,
                    realm: c.realm.clone(),
                    resolver: c.resolver.clone(),
                    user: c.user.clone(),
                    service: c.service.clone(),
                    rhost,
                    admin_group: c.admin_group.clone(),
                    time,
                    actions,
                });
            }
        }
        let set = Policies { active, warnings };
        set.check_conflicts()?;
        Ok(set)
    }

    /// Two policies that may apply together, at the same priority, setting one action to
    /// different values: the answer would depend on their order, so the file is refused.
    fn check_conflicts(&self) -> Result<(), String> {
        for (i, a) in self.active.iter().enumerate() {
            for b in &self.active[i + 1..] {
                if a.scope != b.scope || a.priority != b.priority || disjoint(a, b) {
                    continue;
                }
                for (action, va) in &a.actions {
                    if let Some(vb) = b.actions.get(action) {
                        if va != vb {
                            return Err(format!(
                                "policies {:?} and {:?} both set {} differently at priority {} \
                                 and can apply to the same login; give one a different priority \
                                 or make their conditions exclusive",
                                a.name,
                                b.name,
                                action.name(),
                                a.priority
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The value of an authentication action for this context, if any policy sets it.
    pub fn decide(&self, action: Action, ctx: &Context<'_>) -> Option<Decision<'_>> {
        self.decide_in(Scope::Authentication, action, ctx)
    }

    /// The value of an action of `scope` for this context, if any policy sets it.
    pub fn decide_in(
        &self,
        scope: Scope,
        action: Action,
        ctx: &Context<'_>,
    ) -> Option<Decision<'_>> {
        self.active
            .iter()
            .filter(|p| p.scope == scope && matches(p, ctx))
            .filter_map(|p| p.actions.get(&action).map(|v| (p, v)))
            .min_by_key(|(p, _)| p.priority)
            .map(|(p, value)| Decision {
                value,
                policy: &p.name,
            })
    }

    /// Every matching policy (best priority first) and, for each action any of them sets, the
    /// decision: for `pictl policy check`.
    pub fn report(&self, ctx: &Context<'_>) -> (Vec<String>, Vec<(Action, String, String)>) {
        let mut applying: Vec<&Policy> = self
            .active
            .iter()
            .filter(|p| p.scope == Scope::Authentication && matches(p, ctx))
            .collect();
        applying.sort_by_key(|p| p.priority);
        let names = applying.iter().map(|p| p.name.clone()).collect();
        let decisions = Action::ALL
            .into_iter()
            .filter_map(|a| {
                self.decide(a, ctx)
                    .map(|d| (a, d.value.to_string(), d.policy.to_owned()))
            })
            .collect();
        (names, decisions)
    }

    /// A flag action: set and true.
    pub fn flag(&self, action: Action, ctx: &Context<'_>) -> Option<&str> {
        match self.decide(action, ctx) {
            Some(Decision {
                value: Value::Flag(true),
                policy,
            }) => Some(policy),
            _ => None,
        }
    }

    /// `challenge_response`: token types whose PIN alone triggers a challenge.
    pub fn challenge_types(&self, ctx: &Context<'_>) -> Vec<protocol::TokenType> {
        match self.decide(Action::ChallengeResponse, ctx) {
            Some(Decision {
                value: Value::Types(t),
                ..
            }) => t.clone(),
            _ => Vec::new(),
        }
    }

    /// `mangle`: the rewrites to apply to the user name and realm of this login.
    pub fn mangles(&self, ctx: &Context<'_>) -> Vec<Mangle> {
        match self.decide(Action::Mangle, ctx) {
            Some(Decision {
                value: Value::Mangle(m),
                ..
            }) => m.clone(),
            _ => Vec::new(),
        }
    }

    /// `last_auth`: the longest a token may go unused, in seconds.
    pub fn last_auth(&self, ctx: &Context<'_>) -> Option<i64> {
        match self.decide(Action::LastAuth, ctx) {
            Some(Decision {
                value: Value::Period(_, secs),
                ..
            }) => Some(*secs),
            _ => None,
        }
    }

    /// Whether any admin policy exists: then administrators other than root are limited to what
    /// admin policies allow.
    pub fn restricts_admins(&self) -> bool {
        self.active.iter().any(|p| p.scope == Scope::Admin)
    }

    /// The groups admin policies name, so the caller's membership is resolved once.
    pub fn admin_group_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .active
            .iter()
            .flat_map(|p| p.admin_group.iter().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// A user- or admin-scope permission: an applying policy sets the flag to true (or, for
    /// `enroll`, lists `token_type`).
    pub fn allows(
        &self,
        scope: Scope,
        action: Action,
        ctx: &Context<'_>,
        token_type: Option<protocol::TokenType>,
    ) -> bool {
        match self.decide_in(scope, action, ctx) {
            Some(Decision {
                value: Value::Flag(b),
                ..
            }) => *b,
            Some(Decision {
                value: Value::Types(types),
                ..
            }) => token_type.is_some_and(|t| types.contains(&t)),
            _ => false,
        }
    }

    /// An enrollment-scope number (`hotp_otplen`, `otp_pin_minlength`, `max_token_per_user` …).
    pub fn number(&self, action: Action, ctx: &Context<'_>) -> Option<u32> {
        match self.decide_in(Scope::Enrollment, action, ctx) {
            Some(Decision {
                value: Value::Number(n),
                ..
            }) => Some(*n),
            _ => None,
        }
    }

    /// An enrollment-scope hash (`hotp_hashlib`, `totp_hashlib`).
    pub fn hash(&self, action: Action, ctx: &Context<'_>) -> Option<protocol::HashAlgorithm> {
        match self.decide_in(Scope::Enrollment, action, ctx) {
            Some(Decision {
                value: Value::Hash(h),
                ..
            }) => Some(*h),
            _ => None,
        }
    }

    /// The enrollment-scope PIN rules for a token owned by the context's user.
    pub fn pin_rules(&self, ctx: &Context<'_>) -> PinRules {
        PinRules {
            min_len: self.number(Action::PinMinLength, ctx),
            max_len: self.number(Action::PinMaxLength, ctx),
            contents: match self.decide_in(Scope::Enrollment, Action::PinContents, ctx) {
                Some(Decision {
                    value: Value::PinContents(p),
                    ..
                }) => Some(p.clone()),
                _ => None,
            },
            required: matches!(
                self.decide_in(Scope::Enrollment, Action::PinRequired, ctx),
                Some(Decision {
                    value: Value::Flag(true),
                    ..
                })
            ),
        }
    }

    /// What the configuration accepted but will not use, for the log.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// A text action (`challenge_text`, `smstext` …) with its `{tags}` filled from `tags`.
    pub fn text(&self, action: Action, ctx: &Context<'_>, tags: &[(&str, &str)]) -> Option<String> {
        match self.decide(action, ctx) {
            Some(Decision {
                value: Value::Text(t),
                ..
            }) => Some(fill_tags(t, tags)),
            _ => None,
        }
    }

    /// `auth_max_fail` / `auth_max_success`: (count, period in seconds, period as written,
    /// policy).
    pub fn limit(&self, action: Action, ctx: &Context<'_>) -> Option<AuthLimit> {
        match self.decide(action, ctx) {
            Some(Decision {
                value: Value::Limit { count, text, secs },
                policy,
            }) => Some(AuthLimit {
                count: *count,
                secs: *secs,
                period: text
                    .split_once('/')
                    .map_or(text.as_str(), |(_, p)| p.trim())
                    .to_owned(),
                policy: policy.to_owned(),
            }),
            _ => None,
        }
    }

    pub fn otppin(&self, ctx: &Context<'_>) -> OtpPin {
        match self.decide(Action::OtpPin, ctx) {
            Some(Decision {
                value: Value::OtpPin(p),
                ..
            }) => *p,
            _ => OtpPin::TokenPin,
        }
    }
}

/// `auth_max_fail` / `auth_max_success` as decided for one login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthLimit {
    pub count: u32,
    pub secs: i64,
    /// As written, e.g. `1h`, for messages.
    pub period: String,
    pub policy: String,
}

/// Replace each `{tag}` by its value; unknown tags were refused at load.
/// Replace each `{tag}` (and privacyIDEA's `<otp>`/`<serial>` spelling) by its value.
pub fn fill_tags(text: &str, tags: &[(&str, &str)]) -> String {
    tags.iter().fold(text.to_owned(), |t, (name, value)| {
        t.replace(&format!("{{{name}}}"), value)
            .replace(&format!("<{name}>"), value)
    })
}

/// A text action's value: a non-empty string of at most 1,000 characters whose `{tags}` are the
/// ones the daemon can fill.
fn parse_text(action: Action, value: &toml::Value) -> Result<Value, String> {
    let name = action.name();
    let toml::Value::String(text) = value else {
        return Err(format!("{name} must be a string, not {value}"));
    };
    if text.trim().is_empty() || text.chars().count() > 1000 {
        return Err(format!("{name} must have 1 to 1000 characters"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(format!("{name} may not contain control characters"));
    }
    let allowed = allowed_tags(action);
    let mut rest = text.as_str();
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("{name}: a '{{' is not closed by '}}'"))?;
        let tag = &after[..close];
        if !allowed.contains(&tag) {
            return Err(format!(
                "{name}: unknown tag {{{tag}}}; use {}",
                allowed
                    .iter()
                    .map(|t| format!("{{{t}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(Value::Text(text.clone()))
}

/// privacyIDEA's `N/period`, e.g. `3/5m`.
fn parse_limit(action: Action, value: &toml::Value) -> Result<Value, String> {
    let name = action.name();
    let bad = || format!("{name} = {value}: write \"COUNT/PERIOD\", e.g. \"5/10m\" or \"100/1d\"");
    let toml::Value::String(text) = value else {
        return Err(bad());
    };
    let (count, period) = text.split_once('/').ok_or_else(bad)?;
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    let secs = parse_period(period.trim()).ok_or_else(bad)?;
    if count == 0 {
        return Err(format!("{name} = {text:?}: the count must be at least 1"));
    }
    Ok(Value::Limit {
        count,
        text: text.clone(),
        secs,
    })
}

fn parse_action(scope: Scope, key: &str, value: &toml::Value) -> Result<(Action, Value), String> {
    let Some(action) = Action::ALL.into_iter().find(|a| a.name() == key) else {
        if let Some(t) = key.strip_prefix("enroll") {
            return Err(format!(
                "write enroll = \"{}\" (the token types, e.g. \"hotp totp\") instead of {key:?}",
                t.to_ascii_lowercase()
            ));
        }
        if NOT_YET.contains(&key) {
            return Err(format!(
                "action {key:?} is a privacyIDEA action this version of pi does not enforce yet; \
                 remove it (pi refuses rules it would silently ignore)"
            ));
        }
        return Err(format!("unknown action {key:?}"));
    };
    if !action.scopes().contains(&scope) {
        let names: Vec<String> = action
            .scopes()
            .iter()
            .map(|s| format!("{s:?}").to_ascii_lowercase())
            .collect();
        return Err(format!(
            "action {key:?} belongs to scope {}, not {}",
            names.join(" or "),
            format!("{scope:?}").to_ascii_lowercase()
        ));
    }
    let number = |min: u32, max: u32| -> Result<Value, String> {
        match value.as_integer() {
            Some(n) if (min as i64..=max as i64).contains(&n) => Ok(Value::Number(n as u32)),
            _ => Err(format!(
                "{key} must be a number from {min} to {max}, not {value}"
            )),
        }
    };
    let value = match (action, value) {
        (Action::OtpPin, toml::Value::String(s)) => Value::OtpPin(match s.as_str() {
            "tokenpin" => OtpPin::TokenPin,
            "userstore" => OtpPin::UserStore,
            "none" => OtpPin::None,
            other => {
                return Err(format!(
                    "otppin = {other:?}: use \"tokenpin\", \"userstore\" or \"none\""
                ))
            }
        }),
        (Action::OtpPin, other) => return Err(format!("otppin must be a string, not {other}")),
        (Action::LastAuth, toml::Value::String(text)) => match parse_period(text) {
            Some(secs) => Value::Period(text.clone(), secs),
            None => {
                return Err(format!(
                    "last_auth = {text:?}: write a period such as \"12h\", \"10d\" or \"1y\""
                ))
            }
        },
        (Action::LastAuth, other) => {
            return Err(format!("last_auth must be a string, not {other}"))
        }
        (Action::ChallengeResponse | Action::Enroll, value) => {
            Value::Types(parse_types(action, value)?)
        }
        (Action::HotpOtpLen | Action::TotpOtpLen, toml::Value::Integer(6 | 8)) => number(6, 8)?,
        (Action::HotpOtpLen | Action::TotpOtpLen, other) => {
            return Err(format!("{key} must be 6 or 8, not {other}"))
        }
        (Action::TotpTimestep, toml::Value::Integer(30 | 60)) => number(30, 60)?,
        (Action::TotpTimestep, other) => {
            return Err(format!("{key} must be 30 or 60, not {other}"))
        }
        (Action::PinMinLength | Action::PinMaxLength, _) => number(0, 256)?,
        (Action::MaxTokenPerUser, _) => number(1, 10_000)?,
        (Action::HotpHashlib | Action::TotpHashlib, toml::Value::String(h)) => {
            Value::Hash(match h.as_str() {
                "sha1" => protocol::HashAlgorithm::Sha1,
                "sha256" => protocol::HashAlgorithm::Sha256,
                "sha512" => protocol::HashAlgorithm::Sha512,
                other => {
                    return Err(format!(
                        "{key} = {other:?}: use \"sha1\", \"sha256\" or \"sha512\""
                    ))
                }
            })
        }
        (Action::HotpHashlib | Action::TotpHashlib, other) => {
            return Err(format!("{key} must be a string, not {other}"))
        }
        (Action::PinContents, toml::Value::String(t)) => Value::PinContents(PinContents::parse(t)?),
        (Action::PinContents, other) => return Err(format!("{key} must be a string, not {other}")),
        (Action::Mangle, toml::Value::String(text)) => Value::Mangle(vec![Mangle::parse(text)?]),
        (Action::Mangle, toml::Value::Array(items)) => Value::Mangle(
            items
                .iter()
                .map(|i| {
                    i.as_str()
                        .ok_or("mangle lists strings")
                        .map_err(str::to_owned)
                })
                .map(|t| t.and_then(Mangle::parse))
                .collect::<Result<_, _>>()?,
        ),
        (Action::Mangle, other) => return Err(format!("mangle must be a string, not {other}")),
        // privacyIDEA: `userstore` (or True) checks the user store; any other value names a
        // RADIUS server, which pi does not forward to.
        (Action::Passthru, toml::Value::String(s)) if s == "userstore" => Value::Flag(true),
        (Action::Passthru, toml::Value::String(s)) => {
            return Err(format!(
                "passthru = {s:?}: pi checks the user store (true or \"userstore\"); \
                 forwarding to a RADIUS server is not supported"
            ))
        }
        (
            Action::ChallengeText | Action::SmsText | Action::EmailText | Action::EmailSubject,
            value,
        ) => parse_text(action, value)?,
        (Action::AuthMaxFail | Action::AuthMaxSuccess, value) => parse_limit(action, value)?,
        (Action::U2fFacets, toml::Value::String(s)) => Value::Text(s.clone()),
        (Action::U2fFacets, other) => {
            return Err(format!("u2f_facets must be a string, not {other}"))
        }
        (_, toml::Value::Boolean(b)) => Value::Flag(*b),
        (a, other) => return Err(format!("{} must be true or false, not {other}", a.name())),
    };
    Ok((action, value))
}

/// `"hotp totp"` (privacyIDEA's spelling) or `["hotp", "totp"]`.
fn parse_types(action: Action, value: &toml::Value) -> Result<Vec<protocol::TokenType>, String> {
    let key = action.name();
    let names: Vec<String> = match value {
        toml::Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        toml::Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or(format!("{key} lists token types"))
            })
            .collect::<Result<_, _>>()?,
        other => return Err(format!("{key} lists token types, not {other}")),
    };
    if names.is_empty() {
        return Err(format!("{key} lists no token type"));
    }
    names
        .iter()
        .map(|n| match protocol::TokenType::from_name(n) {
            Some(protocol::TokenType::Spass) if action == Action::ChallengeResponse => {
                Err(format!(
                    "{key}: a spass token never triggers a challenge (it has no one-time part)"
                ))
            }
            Some(t) => Ok(t),
            None => Err(format!(
                "{key}: {n:?} is not a token type pi has ({})",
                protocol::TokenType::ALL
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        })
        .collect()
}

/// privacyIDEA's periods: a number and one of s, m, h, d, y.
fn parse_period(text: &str) -> Option<i64> {
    let unit = text.chars().last()?;
    let n: i64 = text[..text.len() - unit.len_utf8()].trim().parse().ok()?;
    let secs = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'y' => 365 * 86_400,
        _ => return None,
    };
    (n > 0).then(|| n.checked_mul(secs)).flatten()
}

/// Conditions that cannot both hold: some dimension where both policies list values and the
/// lists share none.
fn disjoint(a: &Policy, b: &Policy) -> bool {
    let apart = |x: &[String], y: &[String]| {
        !x.is_empty() && !y.is_empty() && !x.iter().any(|v| y.contains(v))
    };
    apart(&a.realm, &b.realm)
        || apart(&a.resolver, &b.resolver)
        || apart(&a.user, &b.user)
        || apart(&a.service, &b.service)
        || apart(&a.admin_group, &b.admin_group)
}

fn matches(p: &Policy, ctx: &Context<'_>) -> bool {
    let listed = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
    listed(&p.realm, ctx.realm)
        && (p.resolver.is_empty() || ctx.resolver.is_some_and(|r| listed(&p.resolver, r)))
        && listed(&p.user, ctx.login)
        && listed(&p.service, ctx.service)
        && (p.rhost.is_empty()
            || ctx
                .rhost
                .and_then(|r| r.parse::<IpAddr>().ok())
                .is_some_and(|ip| p.rhost.iter().any(|net| in_net(ip, *net))))
        && (p.time.is_empty() || ctx.now.is_some_and(|t| in_time_ranges(&p.time, t)))
        && (p.admin_group.is_empty() || p.admin_group.iter().any(|g| ctx.admin_groups.contains(g)))
}

fn parse_net(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, l.parse::<u8>().ok()?),
        None => {
            let a = s.parse::<IpAddr>().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

fn in_net(ip: IpAddr, (net, len): (IpAddr, u8)) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - len as u32)
            };
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len as u32)
            };
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(super) fn load(text: &str) -> Result<Policies, String> {
        #[derive(Deserialize)]
        struct F {
            policy: Vec<PolicyConfig>,
        }
        let f: F = toml::from_str(text).map_err(|e| e.to_string())?;
        Policies::load(&f.policy, &["default", "ext"], &["local", "people"])
    }

    pub(super) fn ctx<'a>(service: &'a str, rhost: Option<&'a str>) -> Context<'a> {
        Context {
            realm: "default",
            resolver: Some("local"),
            login: "alice",
            service,
            rhost,
            now: None,
            admin_groups: &[],
        }
    }

    #[test]
    fn a_policy_applies_only_where_its_conditions_hold() {
        let p = load(
            "[[policy]]\nname = \"sudo\"\nscope = \"authentication\"\nservice = [\"sudo\"]\n\
             rhost = [\"10.0.0.0/8\"]\nactions = { passOnNoToken = true }\n",
        )
        .unwrap();
        assert_eq!(
            p.flag(Action::PassOnNoToken, &ctx("sudo", Some("10.1.2.3"))),
            Some("sudo")
        );
        assert_eq!(
            p.flag(Action::PassOnNoToken, &ctx("sshd", Some("10.1.2.3"))),
            None
        );
        assert_eq!(
            p.flag(Action::PassOnNoToken, &ctx("sudo", Some("192.0.2.1"))),
            None
        );
        assert_eq!(p.flag(Action::PassOnNoToken, &ctx("sudo", None)), None);
    }

    #[test]
    fn the_lowest_priority_number_wins() {
        let p = load(
            "[[policy]]\nname = \"a\"\nscope = \"authentication\"\npriority = 2\n\
             actions = { otppin = \"none\" }\n\
             [[policy]]\nname = \"b\"\nscope = \"authentication\"\npriority = 1\n\
             actions = { otppin = \"tokenpin\" }\n",
        )
        .unwrap();
        assert_eq!(p.otppin(&ctx("sshd", None)), OtpPin::TokenPin);
    }

    #[test]
    fn inactive_policies_do_not_apply() {
        let p = load(
            "[[policy]]\nname = \"a\"\nscope = \"authentication\"\nactive = false\n\
             actions = { passOnNoUser = true }\n",
        )
        .unwrap();
        assert_eq!(p.flag(Action::PassOnNoUser, &ctx("sshd", None)), None);
    }

    #[test]
    fn equal_priority_conflicts_are_refused_unless_conditions_exclude_each_other() {
        let conflict = "[[policy]]\nname = \"a\"\nscope = \"authentication\"\n\
             actions = { otppin = \"none\" }\n\
             [[policy]]\nname = \"b\"\nscope = \"authentication\"\n\
             actions = { otppin = \"tokenpin\" }\n";
        let msg = load(conflict).err().unwrap();
        assert!(
            msg.contains("\"a\"") && msg.contains("\"b\"") && msg.contains("otppin"),
            "{msg}"
        );
        let apart = "[[policy]]\nname = \"a\"\nscope = \"authentication\"\nservice = [\"sudo\"]\n\
             actions = { otppin = \"none\" }\n\
             [[policy]]\nname = \"b\"\nscope = \"authentication\"\nservice = [\"sshd\"]\n\
             actions = { otppin = \"tokenpin\" }\n";
        load(apart).unwrap();
    }

    #[test]
    fn bad_policies_are_refused_with_a_reason() {
        for (text, needle) in [
            ("actions = { nosuch = true }", "unknown action"),
            ("actions = { auth_cache = \"4h\" }", "does not enforce yet"),
            ("actions = { passthru = \"radius1\" }", "RADIUS"),
            (
                "actions = { challenge_text = \"code for {phone}\" }",
                "unknown tag",
            ),
            (
                "actions = { challenge_text = \"code {user\" }",
                "not closed",
            ),
            ("actions = { smstext = 5 }", "string"),
            ("actions = { auth_max_fail = \"5\" }", "COUNT/PERIOD"),
            ("actions = { auth_max_success = \"0/1h\" }", "at least 1"),
            ("actions = { emailautosend = \"yes\" }", "true or false"),
            ("actions = { challenge_response = \"hotp tiqr\" }", "tiqr"),
            (
                "actions = { challenge_response = \"spass\" }",
                "never triggers",
            ),
            ("actions = { challenge_response = 1 }", "token types"),
            (
                "actions = { mangle = \"user/(unclosed//\" }",
                "invalid regular expression",
            ),
            ("actions = { last_auth = \"10 weeks\" }", "period"),
            ("actions = { otppin = \"pin\" }", "userstore"),
            ("actions = { otppin = 3 }", "string"),
            ("actions = { passOnNoToken = \"yes\" }", "true or false"),
            (
                "realm = [\"nowhere\"]\nactions = { passOnNoToken = true }",
                "unknown realm",
            ),
            (
                "rhost = [\"10.0.0.0/33\"]\nactions = { passOnNoToken = true }",
                "CIDR",
            ),
            ("actions = {}", "no actions"),
        ] {
            let full = format!("[[policy]]\nname = \"p\"\nscope = \"authentication\"\n{text}\n");
            let msg = load(&full).err().unwrap_or_default();
            assert!(msg.contains(needle), "{text}: {msg}");
        }
        let dup = "[[policy]]\nname = \"p\"\nscope = \"authentication\"\nactions = { passOnNoToken = true }\n\
                   [[policy]]\nname = \"p\"\nscope = \"authentication\"\nactions = { passOnNoUser = true }\n";
        assert!(load(dup).err().unwrap().contains("unique"));
    }

    #[test]
    fn actions_belong_to_their_scope_and_scope_conditions_are_checked() {
        for (text, needle) in [
            (
                "scope = \"user\"\nactions = { passOnNoToken = true }",
                "belongs to scope authentication",
            ),
            (
                "scope = \"authentication\"\nactions = { delete = true }",
                "belongs to scope user or admin",
            ),
            (
                "scope = \"user\"\nactions = { enrollHOTP = true }",
                "enroll = \"hotp\"",
            ),
            (
                "scope = \"user\"\nservice = [\"sshd\"]\nactions = { delete = true }",
                "apply to scope \"authentication\" only",
            ),
            (
                "scope = \"user\"\nadmin_group = [\"wheel\"]\nactions = { delete = true }",
                "admin_group",
            ),
            (
                "scope = \"enrollment\"\nactions = { otp_pin_contents = \"cx\" }",
                "classes",
            ),
            (
                "scope = \"enrollment\"\nactions = { hotp_otplen = 7 }",
                "6 or 8",
            ),
            (
                "scope = \"enrollment\"\nactions = { max_token_per_user = 0 }",
                "from 1",
            ),
        ] {
            let full = format!("[[policy]]\nname = \"p\"\n{text}\n");
            let msg = load(&full).err().unwrap_or_default();
            assert!(msg.contains(needle), "{text}: {msg}");
        }
    }

    #[test]
    fn mangle_rewrites_user_names_like_privacyidea() {
        let m = Mangle::parse(r"user/@example\.org$//").unwrap();
        assert_eq!(m.apply(MangleKey::User, "alice@example.org"), "alice");
        assert_eq!(
            m.apply(MangleKey::User, "alice@other.org"),
            "alice@other.org"
        );
        assert_eq!(
            m.apply(MangleKey::Realm, "x@example.org"),
            "x@example.org",
            "other key"
        );
        let g = Mangle::parse(r"user/^(\w+)\.(\w+)$/$2/").unwrap();
        assert_eq!(g.apply(MangleKey::User, "corp.alice"), "alice");
        let p = Mangle::parse("pass/^otp://").unwrap();
        assert_eq!(p.apply(MangleKey::Pass, "otp:123456"), "123456");
        for bad in ["user/x/y", "host/x/y/", "user/(/x/", "user"] {
            assert!(Mangle::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn periods_parse_like_privacyidea() {
        assert_eq!(parse_period("10d"), Some(864_000));
        assert_eq!(parse_period("12h"), Some(43_200));
        assert_eq!(parse_period("1y"), Some(31_536_000));
        for bad in ["", "d", "10", "10w", "-1d", "0d", "x1d"] {
            assert_eq!(parse_period(bad), None, "{bad}");
        }
    }

    #[test]
    fn ipv6_ranges_match() {
        let net = parse_net("2001:db8::/32").unwrap();
        assert!(in_net("2001:db8::1".parse().unwrap(), net));
        assert!(!in_net("2001:db9::1".parse().unwrap(), net));
        assert!(!in_net("10.0.0.1".parse().unwrap(), net));
    }
}
