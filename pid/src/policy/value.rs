//! The value an action is set to, checked against the action's kind when the policy is
//! loaded: a value that does not fit is refused with what to write instead.

use super::action::{Action, Kind};
use super::error::{Expected, Fix, PolicyError};
use super::mangle::Mangle;
use super::pin::PinContents;
use protocol::{HashAlgorithm, TokenType};

/// The value of an action, checked against its type when loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Flag(bool),
    OtpPin(OtpPin),
    /// A period, as written (`10d`) and in seconds.
    Period(String, i64),
    /// Token types, e.g. for `challenge_response`.
    Types(Vec<TokenType>),
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
    Hash(HashAlgorithm),
    /// `otp_pin_contents`.
    PinContents(PinContents),
    Autoassign(Autoassign),
}

/// How a user without a token proves themself when claiming a pool token (`autoassignment`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Autoassign {
    /// The part before the code is the user's password in the user store that found them;
    /// the token is assigned without a PIN.
    UserStore,
    /// The part before the code becomes the token's PIN (within the PIN rules).
    AnyPin,
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
            Value::Autoassign(Autoassign::UserStore) => f.write_str("userstore"),
            Value::Autoassign(Autoassign::AnyPin) => f.write_str("any_pin"),
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

impl Value {
    /// `value` as the value of `action`, checked against the action's kind. `Err` names the
    /// action and says what to write.
    pub(super) fn parse(action: Action, value: &toml::Value) -> Result<Value, PolicyError> {
        let expected = |expected| PolicyError::Expected {
            action,
            expected,
            value: value.clone(),
        };
        let refused = |written: &str, fix| PolicyError::Refused {
            action,
            written: written.to_owned(),
            fix,
        };
        Ok(match (action.kind(), value) {
            (Kind::Flag | Kind::Passthru, toml::Value::Boolean(b)) => Value::Flag(*b),
            // privacyIDEA: `userstore` (or True) checks the user store; any other value names a
            // RADIUS server, which pi does not forward to.
            (Kind::Passthru, toml::Value::String(s)) if s == "userstore" => Value::Flag(true),
            (Kind::Passthru, toml::Value::String(s)) => return Err(refused(s, Fix::Passthru)),
            (Kind::Flag | Kind::Passthru, _) => return Err(expected(Expected::Flag)),
            (Kind::OtpPin, toml::Value::String(s)) => Value::OtpPin(match s.as_str() {
                "tokenpin" => OtpPin::TokenPin,
                "userstore" => OtpPin::UserStore,
                "none" => OtpPin::None,
                other => return Err(refused(other, Fix::OtpPin)),
            }),
            (Kind::Autoassign, toml::Value::String(s)) => Value::Autoassign(match s.as_str() {
                "userstore" => Autoassign::UserStore,
                "any_pin" => Autoassign::AnyPin,
                other => return Err(refused(other, Fix::Autoassign)),
            }),
            (Kind::Period, toml::Value::String(text)) => match parse_period(text) {
                Some(secs) => Value::Period(text.clone(), secs),
                None => return Err(refused(text, Fix::Period)),
            },
            (Kind::ChallengeTypes, value) => Value::Types(parse_types(action, value, true)?),
            (Kind::TokenTypes, value) => Value::Types(parse_types(action, value, false)?),
            (Kind::VerifiableTypes, value) => {
                let types = parse_types(action, value, false)?;
                if let Some(&token_type) = types
                    .iter()
                    .find(|t| !crate::tokens::shows_code_sequence(**t))
                {
                    return Err(PolicyError::NotVerifiable { action, token_type });
                }
                Value::Types(types)
            }
            (Kind::Either(a, b), toml::Value::Integer(n)) if [a, b].map(i64::from).contains(n) => {
                Value::Number(*n as u32)
            }
            (Kind::Either(a, b), _) => return Err(expected(Expected::Either(a, b))),
            (Kind::Range(min, max), value) => match value.as_integer() {
                Some(n) if (i64::from(min)..=i64::from(max)).contains(&n) => {
                    Value::Number(n as u32)
                }
                _ => return Err(expected(Expected::Range(min, max))),
            },
            (Kind::Hash, toml::Value::String(h)) => {
                Value::Hash(HashAlgorithm::from_name(h).ok_or_else(|| refused(h, Fix::Hash))?)
            }
            (Kind::PinContents, toml::Value::String(t)) => {
                Value::PinContents(PinContents::parse(t)?)
            }
            (Kind::Mangle, toml::Value::String(text)) => Value::Mangle(vec![Mangle::parse(text)?]),
            (Kind::Mangle, toml::Value::Array(items)) => Value::Mangle(
                items
                    .iter()
                    .map(|i| i.as_str().ok_or(PolicyError::MangleNotAString))
                    .map(|t| t.and_then(Mangle::parse))
                    .collect::<Result<_, _>>()?,
            ),
            (Kind::Text(tags), value) => parse_text(action, tags, value)?,
            (Kind::Limit, value) => parse_limit(action, value)?,
            (Kind::Ignored(_), toml::Value::String(s)) => Value::Text(s.clone()),
            (
                Kind::OtpPin
                | Kind::Autoassign
                | Kind::Period
                | Kind::Hash
                | Kind::PinContents
                | Kind::Mangle
                | Kind::Ignored(_),
                _,
            ) => return Err(expected(Expected::String)),
        })
    }
}

/// `"hotp totp"` (privacyIDEA's spelling) or `["hotp", "totp"]`. For a challenge (`challenge`),
/// a spass token is refused: it has no one-time part to ask for.
fn parse_types(
    action: Action,
    value: &toml::Value,
    challenge: bool,
) -> Result<Vec<TokenType>, PolicyError> {
    let names: Vec<String> = match value {
        toml::Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        toml::Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or(PolicyError::TypeNotAString { action })
            })
            .collect::<Result<_, _>>()?,
        other => {
            let value = other.clone();
            return Err(PolicyError::TypesNotAList { action, value });
        }
    };
    if names.is_empty() {
        return Err(PolicyError::NoTokenType { action });
    }
    names
        .into_iter()
        .map(|name| match TokenType::from_name(&name) {
            Some(TokenType::Spass) if challenge => Err(PolicyError::SpassChallenge { action }),
            Some(t) => Ok(t),
            None => Err(PolicyError::UnknownTokenType { action, name }),
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

/// Replace each `{tag}` (and privacyIDEA's `<otp>`/`<serial>` spelling) by its value; unknown
/// tags were refused at load.
pub fn fill_tags(text: &str, tags: &[(&str, &str)]) -> String {
    tags.iter().fold(text.to_owned(), |t, (name, value)| {
        t.replace(&format!("{{{name}}}"), value)
            .replace(&format!("<{name}>"), value)
    })
}

/// A text action's value: a non-empty string of at most 1,000 characters whose `{tags}` are the
/// ones the daemon can fill (`allowed`).
fn parse_text(
    action: Action,
    allowed: &'static [&'static str],
    value: &toml::Value,
) -> Result<Value, PolicyError> {
    let toml::Value::String(text) = value else {
        return Err(PolicyError::Expected {
            action,
            expected: Expected::String,
            value: value.clone(),
        });
    };
    if text.trim().is_empty() || text.chars().count() > 1000 {
        return Err(PolicyError::TextLength { action });
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(PolicyError::ControlCharacter { action });
    }
    let mut rest = text.as_str();
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or(PolicyError::TagNotClosed { action })?;
        let tag = &after[..close];
        if !allowed.contains(&tag) {
            return Err(PolicyError::UnknownTag {
                action,
                tag: tag.to_owned(),
                allowed,
            });
        }
        rest = &after[close + 1..];
    }
    Ok(Value::Text(text.clone()))
}

/// privacyIDEA's `N/period`, e.g. `3/5m`.
fn parse_limit(action: Action, value: &toml::Value) -> Result<Value, PolicyError> {
    let bad = || PolicyError::Limit {
        action,
        value: value.clone(),
    };
    let toml::Value::String(text) = value else {
        return Err(bad());
    };
    let (count, period) = text.split_once('/').ok_or_else(bad)?;
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    let secs = parse_period(period.trim()).ok_or_else(bad)?;
    if count == 0 {
        return Err(PolicyError::Refused {
            action,
            written: text.clone(),
            fix: Fix::Count,
        });
    }
    Ok(Value::Limit {
        count,
        text: text.clone(),
        secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_wrong_hash_names_the_ones_there_are() {
        let msg =
            Value::parse(Action::HotpHashlib, &toml::Value::String("md5".into())).unwrap_err();
        assert_eq!(
            msg.to_string(),
            "hotp_hashlib = \"md5\": use \"sha1\", \"sha256\" or \"sha512\""
        );
    }
}
