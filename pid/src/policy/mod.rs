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
//!
//! `config` is a `[[policy]]` table as written; `action` the table of actions (name, scopes,
//! kind of value) and `value` their values; `conditions` when a policy applies (`time` the time
//! of the week); `mangle` and `pin` the rules of those actions. This file loads the set and
//! decides.

mod action;
mod conditions;
mod config;
mod error;
mod mangle;
mod pin;
mod time;
mod value;

use crate::config::{ConfigError, Key, Reason};
use action::Kind;
pub use action::{Action, Scope};
use conditions::Conditions;
pub use conditions::Context;
pub use config::PolicyConfig;
pub use error::{PinRefused, PolicyError};
pub use mangle::{Mangle, MangleKey};
pub use pin::{PinContents, PinRules};
use std::collections::BTreeMap;
pub use value::{fill_tags, Autoassign, OtpPin, Value};

struct Policy {
    name: String,
    scope: Scope,
    priority: u32,
    conditions: Conditions,
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
    ) -> Result<Policies, ConfigError> {
        let mut names = std::collections::BTreeSet::new();
        let mut active = Vec::new();
        let mut warnings = Vec::new();
        for c in configs {
            let refuse = |at: Option<&str>, why| {
                ConfigError::new(Some(Key::policy(&c.name, at)), Reason::Policy(why))
            };
            if c.name.is_empty() || !names.insert(c.name.as_str()) {
                return Err(refuse(None, PolicyError::Unnamed));
            }
            let conditions = Conditions::parse(c, realms, resolvers)?;
            if c.actions.is_empty() {
                return Err(refuse(None, PolicyError::NoActions));
            }
            let mut actions = BTreeMap::new();
            for (key, value) in &c.actions {
                let (action, value) = Action::parse(c.scope, key)
                    .and_then(|a| Ok((a, Value::parse(a, value)?)))
                    .map_err(|why| refuse(Some(key), why))?;
                if let Kind::Ignored(why) = action.kind() {
                    let policy = Key::policy(&c.name, None);
                    warnings.push(format!("{policy}: {key} is ignored: {why}"));
                }
                actions.insert(action, value);
            }
            if c.active {
                active.push(Policy {
                    name: c.name.clone(),
                    scope: c.scope,
                    priority: c.priority,
                    conditions,
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
    fn check_conflicts(&self) -> Result<(), ConfigError> {
        for (i, a) in self.active.iter().enumerate() {
            for b in &self.active[i + 1..] {
                if a.scope != b.scope
                    || a.priority != b.priority
                    || a.conditions.exclude(&b.conditions)
                {
                    continue;
                }
                for (action, va) in &a.actions {
                    if let Some(vb) = b.actions.get(action) {
                        if va != vb {
                            let key = Key::Conflict {
                                first: a.name.clone(),
                                second: b.name.clone(),
                                action: action.name(),
                            };
                            let why = PolicyError::Conflict {
                                action: *action,
                                priority: a.priority,
                            };
                            return Err(ConfigError::new(Some(key), Reason::Policy(why)));
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
            .filter(|p| p.scope == scope && p.conditions.hold(ctx))
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
            .filter(|p| p.scope == Scope::Authentication && p.conditions.hold(ctx))
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

    /// A flag action set to true for this context: the policy that sets it. Decided in the
    /// action's own scope (a flag belongs to one).
    pub fn flag(&self, action: Action, ctx: &Context<'_>) -> Option<&str> {
        let scope = *action.scopes().first()?;
        match self.decide_in(scope, action, ctx) {
            Some(Decision {
                value: Value::Flag(true),
                policy,
            }) => Some(policy),
            _ => None,
        }
    }

    /// `challenge_response`: token types whose PIN alone triggers a challenge.
    pub fn challenge_types(&self, ctx: &Context<'_>) -> Vec<protocol::TokenType> {
        self.types(Scope::Authentication, Action::ChallengeResponse, ctx)
    }

    /// `verify_enrollment`: token types whose new tokens wait for two consecutive codes.
    pub fn verify_types(&self, ctx: &Context<'_>) -> Vec<protocol::TokenType> {
        self.types(Scope::Enrollment, Action::VerifyEnrollment, ctx)
    }

    /// The token types an action of a types kind lists; none when no policy sets it.
    fn types(&self, scope: Scope, action: Action, ctx: &Context<'_>) -> Vec<protocol::TokenType> {
        match self.decide_in(scope, action, ctx) {
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
            .flat_map(|p| p.conditions.admin_group.iter().cloned())
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
            required: self.flag(Action::PinRequired, ctx).is_some(),
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

    /// `autoassignment` for this user, and the policy that set it.
    pub fn autoassign(&self, ctx: &Context<'_>) -> Option<(Autoassign, &str)> {
        match self.decide_in(Scope::Enrollment, Action::Autoassignment, ctx) {
            Some(Decision {
                value: Value::Autoassign(a),
                policy,
            }) => Some((*a, policy)),
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde::Deserialize;

    pub(super) fn load(text: &str) -> Result<Policies, String> {
        #[derive(Deserialize)]
        struct F {
            policy: Vec<PolicyConfig>,
        }
        let f: F = toml::from_str(text).map_err(|e| e.to_string())?;
        Policies::load(&f.policy, &["default", "ext"], &["local", "people"])
            .map_err(|e| crate::error::chain(&e).to_string())
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
    fn a_refused_action_says_where_and_what_to_write() {
        for (text, whole) in [
            (
                "actions = { passthru = \"radius1\" }",
                "policy \"p\": passthru = \"radius1\": pi checks the user store (true or \
                 \"userstore\"); forwarding to a RADIUS server is not supported",
            ),
            (
                "actions = { auth_max_fail = 5 }",
                "policy \"p\": auth_max_fail = 5: write \"COUNT/PERIOD\", e.g. \"5/10m\" or \
                 \"100/1d\"",
            ),
            (
                "actions = { challenge_text = \"code for {phone}\" }",
                "policy \"p\": challenge_text: unknown tag {phone}; use {user}, {realm}, {serial}",
            ),
            (
                "actions = { mangle = \"host/x/y/\" }",
                "policy \"p\": mangle \"host/x/y/\": key \"host\" is not user, realm or pass",
            ),
        ] {
            let full = format!("[[policy]]\nname = \"p\"\nscope = \"authentication\"\n{text}\n");
            assert_eq!(load(&full).err().unwrap_or_default(), whole, "{text}");
        }
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
}
