//! privacyIDEA's `mangle` action: regular-expression rewrites of the user name, the realm or
//! what the user typed, before anything else looks at them.

use super::error::PolicyError;

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
    pub(super) text: String,
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
    pub(super) fn parse(text: &str) -> Result<Mangle, PolicyError> {
        let shape = || PolicyError::MangleShape {
            text: text.to_owned(),
        };
        let body = text
            .strip_suffix('/')
            .ok_or_else(|| PolicyError::MangleFinalSlash {
                text: text.to_owned(),
            })?;
        let (key, rest) = body.split_once('/').ok_or_else(shape)?;
        let (pattern, replacement) = rest.rsplit_once('/').ok_or_else(shape)?;
        let key = match key {
            "user" => MangleKey::User,
            "realm" => MangleKey::Realm,
            "pass" => MangleKey::Pass,
            other => {
                return Err(PolicyError::MangleKey {
                    text: text.to_owned(),
                    key: other.to_owned(),
                })
            }
        };
        let regex = regex::Regex::new(pattern).map_err(|source| PolicyError::MangleRegex {
            text: text.to_owned(),
            source,
        })?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
