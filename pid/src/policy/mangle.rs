//! privacyIDEA's `mangle` action: regular-expression rewrites of the user name, the realm or
//! what the user typed, before anything else looks at them.

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
    pub(super) fn parse(text: &str) -> Result<Mangle, String> {
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
