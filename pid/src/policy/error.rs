//! Why a policy's action or value is refused when the policies are loaded (`PolicyError`), and
//! why a PIN is refused by the enrollment PIN rules (`PinRefused`). Each says what to write or
//! type instead.

use super::action::{Action, Scope};
use protocol::{HashAlgorithm, TokenType};

/// An action a policy names, or the value it sets, that pi refuses.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("every policy needs a unique, non-empty name")]
    Unnamed,
    #[error("no actions")]
    NoActions,
    /// Two policies (named by the key) that may apply together at one priority set an action
    /// differently: the answer would depend on their order.
    #[error(
        "both set {} differently at priority {priority} and can apply to the same login; give \
         one a different priority or make their conditions exclusive",
        action.name()
    )]
    Conflict { action: Action, priority: u32 },
    #[error("unknown realm {0:?} in `realm`")]
    UnknownRealm(String),
    #[error("unknown resolver {0:?} in `resolver`")]
    UnknownResolver(String),
    #[error("{0:?} is not an address or CIDR range")]
    NotANetwork(String),
    /// `service` or `rhost` in a policy of a scope other than authentication.
    #[error("`service` and `rhost` describe a login; they apply to scope \"authentication\" only")]
    LoginCondition,
    #[error("`admin_group` applies to scope \"admin\" only")]
    AdminGroup,
    /// One entry (`part`) of a `time` condition.
    #[error("time {part:?}: {problem}; write e.g. \"Mon-Fri: 08:00-18:00, Sat: 10:00-12:00\"")]
    Time { part: String, problem: TimeProblem },
    #[error("unknown action {key:?}")]
    UnknownAction { key: String },
    /// privacyIDEA's per-type `enrollHOTP`: pi's `enroll` lists the types.
    #[error("write enroll = \"{types}\" (the token types, e.g. \"hotp totp\") instead of {key:?}")]
    EnrollPerType { key: String, types: String },
    /// A privacyIDEA action pi recognises but does not enforce: refused rather than ignored.
    #[error(
        "action {key:?} is a privacyIDEA action this version of pi does not enforce yet; remove \
         it (pi refuses rules it would silently ignore)"
    )]
    NotEnforced { key: String },
    #[error(
        "action {:?} belongs to scope {}, not {}",
        action.name(),
        scope_names(action.scopes()),
        scope.name()
    )]
    WrongScope { action: Action, scope: Scope },
    /// A value of the wrong type or out of range.
    #[error("{} must be {expected}, not {value}", action.name())]
    Expected {
        action: Action,
        expected: Expected,
        value: toml::Value,
    },
    /// A string the action does not take: what to write instead.
    #[error("{} = {written:?}: {fix}", action.name())]
    Refused {
        action: Action,
        written: String,
        fix: Fix,
    },
    #[error(
        "{} = {value}: write \"COUNT/PERIOD\", e.g. \"5/10m\" or \"100/1d\"",
        action.name()
    )]
    Limit { action: Action, value: toml::Value },
    #[error("{} lists token types", action.name())]
    TypeNotAString { action: Action },
    #[error("{} lists token types, not {value}", action.name())]
    TypesNotAList { action: Action, value: toml::Value },
    #[error("{} lists no token type", action.name())]
    NoTokenType { action: Action },
    #[error(
        "{}: a spass token never triggers a challenge (it has no one-time part)",
        action.name()
    )]
    SpassChallenge { action: Action },
    #[error(
        "{}: a {} token shows no sequence of codes to type; list hotp and totp only",
        action.name(),
        token_type.as_str()
    )]
    NotVerifiable {
        action: Action,
        token_type: protocol::TokenType,
    },
    #[error("{}: {name:?} is not a token type pi has ({})", action.name(), token_types())]
    UnknownTokenType { action: Action, name: String },
    #[error("{} must have 1 to 1000 characters", action.name())]
    TextLength { action: Action },
    #[error("{} may not contain control characters", action.name())]
    ControlCharacter { action: Action },
    #[error("{}: a '{{' is not closed by '}}'", action.name())]
    TagNotClosed { action: Action },
    #[error("{}: unknown tag {{{tag}}}; use {}", action.name(), tags(allowed))]
    UnknownTag {
        action: Action,
        tag: String,
        allowed: &'static [&'static str],
    },
    #[error("mangle lists strings")]
    MangleNotAString,
    #[error("mangle {text:?}: write key/regex/replacement/ (with the final slash)")]
    MangleFinalSlash { text: String },
    #[error("mangle {text:?}: write key/regex/replacement/")]
    MangleShape { text: String },
    #[error("mangle {text:?}: key {key:?} is not user, realm or pass")]
    MangleKey { text: String, key: String },
    #[error("mangle {text:?}: invalid regular expression")]
    MangleRegex {
        text: String,
        #[source]
        source: regex::Error,
    },
}

/// What is wrong with an entry of a `time` condition.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeProblem {
    #[error("{0:?} is not a day (Mon … Sun)")]
    NotADay(String),
    #[error("a time is HH:MM")]
    NoColon,
    #[error("{0:?} is not a time of day")]
    NotATime(String),
    #[error("expected \"DAYS: FROM-TO\"")]
    NoDays,
    #[error("expected FROM-TO")]
    NoRange,
    #[error("the range ends before it starts; split a range over midnight into two days")]
    Backwards,
}

/// What a value must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    String,
    Flag,
    Either(u32, u32),
    Range(u32, u32),
}

/// What to write instead of a string an action does not take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fix {
    /// `passthru` naming a RADIUS server.
    Passthru,
    OtpPin,
    Autoassign,
    Period,
    Hash,
    /// `auth_max_*` with a count of 0.
    Count,
    PinContents,
}

/// Why a PIN about to be set is refused by the enrollment scope's PIN rules.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PinRefused {
    #[error("a PIN is required for new tokens here (enrollment policy); give one with --pin")]
    Required,
    #[error("the PIN must have at least {0} characters")]
    TooShort(u32),
    #[error("the PIN may have at most {0} characters")]
    TooLong(u32),
    /// The PIN lacks, or has, a character class `otp_pin_contents` (as written) rules on.
    #[error(
        "the PIN does not meet the PIN rule {0:?} (c = letters, n = digits, s = other \
         characters; -: none of these, +: only these)"
    )]
    Contents(String),
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expected::String => f.write_str("a string"),
            Expected::Flag => f.write_str("true or false"),
            Expected::Either(a, b) => write!(f, "{a} or {b}"),
            Expected::Range(min, max) => write!(f, "a number from {min} to {max}"),
        }
    }
}

impl std::fmt::Display for Fix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fix::Passthru => f.write_str(
                "pi checks the user store (true or \"userstore\"); forwarding to a RADIUS server \
                 is not supported",
            ),
            Fix::OtpPin => f.write_str("use \"tokenpin\", \"userstore\" or \"none\""),
            Fix::Autoassign => f.write_str("use \"userstore\" or \"any_pin\""),
            Fix::Period => f.write_str("write a period such as \"12h\", \"10d\" or \"1y\""),
            Fix::Hash => {
                let names: Vec<String> = HashAlgorithm::ALL
                    .iter()
                    .map(|h| format!("{:?}", h.as_str()))
                    .collect();
                write!(f, "use {}", one_of(&names))
            }
            Fix::Count => f.write_str("the count must be at least 1"),
            Fix::PinContents => f.write_str(
                "use the classes c (letters), n (digits), s (other), e.g. \"cn\" (both \
                 required), \"-s\" (no other characters), \"+cn\" (only these)",
            ),
        }
    }
}

/// `"a", "b" or "c"`.
fn one_of(names: &[String]) -> String {
    match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// `authentication`, `user or admin`.
fn scope_names(scopes: &[Scope]) -> String {
    let names: Vec<String> = scopes.iter().map(|s| s.name()).collect();
    names.join(" or ")
}

/// The token types pi has, as written.
fn token_types() -> String {
    let names: Vec<&str> = TokenType::ALL.iter().map(|t| t.as_str()).collect();
    names.join(", ")
}

/// `{user}, {realm}`.
fn tags(allowed: &[&str]) -> String {
    let tags: Vec<String> = allowed.iter().map(|t| format!("{{{t}}}")).collect();
    tags.join(", ")
}
