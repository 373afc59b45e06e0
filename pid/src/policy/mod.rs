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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Authentication,
    Enrollment,
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
}

/// What a `mangle` rewrite applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MangleKey {
    User,
    Realm,
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
            "pass" => {
                return Err(format!(
                    "mangle {text:?}: rewriting the password is not enforced by this version yet"
                ))
            }
            other => {
                return Err(format!(
                    "mangle {text:?}: key {other:?} is not user or realm"
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
    None,
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Flag(b) => write!(f, "{b}"),
            Value::OtpPin(OtpPin::TokenPin) => f.write_str("tokenpin"),
            Value::OtpPin(OtpPin::None) => f.write_str("none"),
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
        }
    }

    const ALL: [Action; 8] = [
        Action::PassOnNoToken,
        Action::PassOnNoUser,
        Action::OtpPin,
        Action::ResetAllUserTokens,
        Action::HideSpecificErrorMessage,
        Action::LastAuth,
        Action::ChallengeResponse,
        Action::Mangle,
    ];
}

/// privacyIDEA actions that are recognised but not enforced yet: refused with this reason.
const NOT_YET: &[&str] = &[
    "passthru",
    "challenge_text",
    "auth_max_fail",
    "auth_max_success",
    "smstext",
    "smsautosend",
    "emailtext",
    "emailsubject",
    "emailautosend",
    "u2f_facets",
];

/// What a policy is matched against.
#[derive(Clone, Debug, Default)]
pub struct Context<'a> {
    pub realm: &'a str,
    /// None when the user was not found.
    pub resolver: Option<&'a str>,
    pub login: &'a str,
    pub service: &'a str,
    pub rhost: Option<&'a str>,
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
    actions: BTreeMap<Action, Value>,
}

/// The loaded, validated policy set.
#[derive(Default)]
pub struct Policies {
    active: Vec<Policy>,
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
            if c.actions.is_empty() {
                return Err(format!("{at}: no actions"));
            }
            let mut actions = BTreeMap::new();
            for (key, value) in &c.actions {
                let action = parse_action(c.scope, key, value).map_err(|e| format!("{at}: {e}"))?;
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
                    actions,
                });
            }
        }
        let set = Policies { active };
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
        self.active
            .iter()
            .filter(|p| p.scope == Scope::Authentication && matches(p, ctx))
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

fn parse_action(scope: Scope, key: &str, value: &toml::Value) -> Result<(Action, Value), String> {
    if scope != Scope::Authentication {
        return Err(format!(
            "scope {scope:?} has no actions this version enforces (action {key:?}); remove the policy"
        ));
    }
    let Some(action) = Action::ALL.into_iter().find(|a| a.name() == key) else {
        if NOT_YET.contains(&key) {
            return Err(format!(
                "action {key:?} is a privacyIDEA action this version of pi does not enforce yet; \
                 remove it (pi refuses rules it would silently ignore)"
            ));
        }
        return Err(format!("unknown action {key:?}"));
    };
    let value = match (action, value) {
        (Action::OtpPin, toml::Value::String(s)) => Value::OtpPin(match s.as_str() {
            "tokenpin" => OtpPin::TokenPin,
            "none" => OtpPin::None,
            "userstore" => return Err(
                "otppin = \"userstore\" is not enforced by this version yet; use tokenpin or none"
                    .into(),
            ),
            other => return Err(format!("otppin = {other:?}: use \"tokenpin\" or \"none\"")),
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
        (Action::ChallengeResponse, value) => Value::Types(parse_types(value)?),
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
        (_, toml::Value::Boolean(b)) => Value::Flag(*b),
        (a, other) => return Err(format!("{} must be true or false, not {other}", a.name())),
    };
    Ok((action, value))
}

/// `"hotp totp"` (privacyIDEA's spelling) or `["hotp", "totp"]`.
fn parse_types(value: &toml::Value) -> Result<Vec<protocol::TokenType>, String> {
    let names: Vec<String> = match value {
        toml::Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        toml::Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or("challenge_response lists token types")
            })
            .collect::<Result<_, _>>()?,
        other => return Err(format!("challenge_response lists token types, not {other}")),
    };
    if names.is_empty() {
        return Err("challenge_response lists no token type".into());
    }
    names
        .iter()
        .map(|n| match n.as_str() {
            "hotp" => Ok(protocol::TokenType::Hotp),
            "totp" => Ok(protocol::TokenType::Totp),
            other => Err(format!(
                "challenge_response: {other:?} is not a token type pi has (hotp, totp)"
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
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Policies, String> {
        #[derive(Deserialize)]
        struct F {
            policy: Vec<PolicyConfig>,
        }
        let f: F = toml::from_str(text).map_err(|e| e.to_string())?;
        Policies::load(&f.policy, &["default", "ext"], &["local", "people"])
    }

    fn ctx<'a>(service: &'a str, rhost: Option<&'a str>) -> Context<'a> {
        Context {
            realm: "default",
            resolver: Some("local"),
            login: "alice",
            service,
            rhost,
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
            ("actions = { passthru = true }", "does not enforce yet"),
            (
                "actions = { challenge_response = \"hotp yubikey\" }",
                "yubikey",
            ),
            ("actions = { challenge_response = 1 }", "token types"),
            (
                "actions = { mangle = \"user/(unclosed//\" }",
                "invalid regular expression",
            ),
            ("actions = { last_auth = \"10 weeks\" }", "period"),
            ("actions = { otppin = \"userstore\" }", "userstore"),
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
        for bad in ["user/x/y", "pass/x/y/", "host/x/y/", "user/(/x/", "user"] {
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
