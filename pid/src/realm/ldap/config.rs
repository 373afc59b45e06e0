//! The `ldap` resolver's table (`[resolvers.NAME]` of `type = "ldap"`), checked when pid.toml
//! is loaded, and the search filter a login becomes.

use crate::config::{ConfigError, Key, Reason};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Search filter ANDed with the login when the config sets none.
pub const DEFAULT_FILTER: &str = "(objectClass=posixAccount)";
pub const DEFAULT_LOGIN_ATTRIBUTE: &str = "uid";
pub const DEFAULT_UID_ATTRIBUTE: &str = "entryUUID";
pub const DEFAULT_TIMEOUT_SECS: u64 = 5;
pub const MAX_TIMEOUT_SECS: u64 = 60;

/// A `[resolvers.NAME]` table of `type = "ldap"`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Where users are searched (subtree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The service account that searches; anonymous when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_dn: Option<String>,
    /// A root-only file holding the service account's password (never the password itself in
    /// pid.toml).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password_file: Option<PathBuf>,
    /// Extra search filter ANDed with `(login_attribute=LOGIN)`; default
    /// `(objectClass=posixAccount)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The attribute holding the login name; default `uid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_attribute: Option<String>,
    /// The attribute holding a stable user id (privacyIDEA's UID type); default `entryUUID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid_attribute: Option<String>,
    /// Upgrade `ldap://` with STARTTLS (refused together with `ldaps://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starttls: Option<bool>,
    /// CA certificate(s) in PEM that sign the server's certificate; the system's trust store
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Connect and operation timeout in seconds; default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
}

impl LdapConfig {
    /// Check the table of resolver `name` as written. `Ok(true)`: the uri is `ldaps://`, TLS
    /// from the start.
    pub fn validate(&self, name: &str) -> Result<bool, ConfigError> {
        let refuse = |key: Option<&'static str>, why: String| {
            Err(ConfigError::invalid(Key::resolver(name, key), why))
        };
        let written = |key: Option<&'static str>, why: Written| {
            let reason = Reason::LdapSyntax(why);
            Err(ConfigError::new(Some(Key::resolver(name, key)), reason))
        };
        let Some(uri) = self.uri.as_deref() else {
            return refuse(
                None,
                "an ldap resolver needs `uri`, e.g. uri = \"ldaps://ldap.example.org\"".into(),
            );
        };
        let tls_scheme = match validate_uri(uri) {
            Ok(tls) => tls,
            Err(problem) => return written(Some("uri"), Written::Uri(uri.to_owned(), problem)),
        };
        match self.base.as_deref() {
            None => {
                return refuse(
                    None,
                    "an ldap resolver needs `base`, the DN users are searched under, e.g. \
                     base = \"ou=people,dc=example,dc=org\""
                        .into(),
                )
            }
            Some(base) => {
                if let Err(problem) = validate_dn(base) {
                    return written(Some("base"), Written::Dn(base.to_owned(), problem));
                }
            }
        }
        if self.starttls == Some(true) && tls_scheme {
            return refuse(
                Some("starttls"),
                "true does not go with an ldaps:// uri, which is TLS already: remove starttls \
                 or write the uri as ldap://"
                    .into(),
            );
        }
        match (&self.bind_dn, &self.bind_password_file) {
            (Some(dn), Some(file)) => {
                if let Err(problem) = validate_dn(dn) {
                    return written(Some("bind_dn"), Written::Dn(dn.clone(), problem));
                }
                if !file.is_absolute() {
                    return refuse(
                        Some("bind_password_file"),
                        "must be an absolute path, e.g. \"/etc/pi/ldap-bind.password\"".into(),
                    );
                }
            }
            (None, None) => {}
            (dn, _) => {
                let set = if dn.is_some() {
                    "bind_dn"
                } else {
                    "bind_password_file"
                };
                return refuse(
                    Some(set),
                    "bind_dn and bind_password_file come together: set both (a service account \
                     searches) or neither (anonymous search)"
                        .into(),
                );
            }
        }
        if let Some(ca) = &self.ca_file {
            if !ca.is_absolute() {
                return refuse(
                    Some("ca_file"),
                    "must be an absolute path, e.g. \"/etc/pi/ldap-ca.pem\"".into(),
                );
            }
            if !tls_scheme && self.starttls != Some(true) {
                return refuse(
                    Some("ca_file"),
                    "has no effect without TLS: use an ldaps:// uri or set starttls = true".into(),
                );
            }
        }
        if let Some(t) = self.timeout_secs {
            if !(1..=MAX_TIMEOUT_SECS).contains(&t) {
                return refuse(
                    Some("timeout_secs"),
                    format!("{t}: write a number of seconds from 1 to {MAX_TIMEOUT_SECS}"),
                );
            }
        }
        for (k, value, example) in [
            (
                "login_attribute",
                &self.login_attribute,
                DEFAULT_LOGIN_ATTRIBUTE,
            ),
            ("uid_attribute", &self.uid_attribute, DEFAULT_UID_ATTRIBUTE),
        ] {
            if let Some(v) = value {
                if !is_attribute_name(v) {
                    return refuse(
                        Some(k),
                        format!(
                            "{v:?} is not an LDAP attribute name: write letters, digits and '-', \
                             starting with a letter, e.g. {example:?}"
                        ),
                    );
                }
            }
        }
        if let Some(f) = &self.filter {
            if let Err(problem) = validate_filter(f) {
                return written(Some("filter"), Written::Filter(f.clone(), problem));
            }
        }
        Ok(tls_scheme)
    }
}

/// A uri, DN or search filter of an `ldap` resolver's table that pi refuses, as written.
#[derive(Debug, thiserror::Error)]
pub enum Written {
    #[error("{0:?}: {1}")]
    Uri(String, UriProblem),
    #[error("{0:?}: {1}")]
    Dn(String, DnProblem),
    #[error(
        "{0:?}: {1}; write one parenthesised LDAP filter, e.g. \"(objectClass=posixAccount)\" \
         or \"(&(objectClass=person)(!(pwdAccountLockedTime=*)))\""
    )]
    Filter(String, FilterProblem),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UriProblem {
    #[error("write ldap://HOST[:PORT] or ldaps://HOST[:PORT]")]
    Scheme,
    #[error(
        "write only ldap[s]://HOST[:PORT]; the search base goes in `base` and the filter in \
         `filter`"
    )]
    MoreThanHost,
    #[error("an IPv6 address needs its closing ']'")]
    Ipv6NotClosed,
    #[error("name the server's host, e.g. ldaps://ldap.example.org")]
    NoHost,
    #[error("the host name contains a character no host name has")]
    HostCharacter,
    #[error("port {0:?} is not a port number from 1 to 65535")]
    Port(String),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnProblem {
    #[error("write a DN such as \"ou=people,dc=example,dc=org\"")]
    Empty,
    #[error("this is not a DN: write attr=value components, e.g. \"dc=example,dc=org\"")]
    NotADn,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterProblem {
    #[error("it is not parenthesised")]
    NotParenthesised,
    #[error("a ')' closes nothing")]
    ClosesNothing,
    #[error("it contains a control character")]
    ControlCharacter,
    #[error("a '(' is never closed")]
    NeverClosed,
    #[error("it is several filters side by side, not one")]
    Several,
    #[error("it does not parse as an LDAP filter (RFC 4515)")]
    Unparsable,
}

/// `ldap://host[:port][/]` or `ldaps://…`; true for ldaps.
fn validate_uri(uri: &str) -> Result<bool, UriProblem> {
    let (tls, rest) = if let Some(rest) = uri.strip_prefix("ldaps://") {
        (true, rest)
    } else if let Some(rest) = uri.strip_prefix("ldap://") {
        (false, rest)
    } else {
        return Err(UriProblem::Scheme);
    };
    let hostport = rest.strip_suffix('/').unwrap_or(rest);
    if hostport.contains('/') || hostport.contains('?') {
        return Err(UriProblem::MoreThanHost);
    }
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':')),
            None => return Err(UriProblem::Ipv6NotClosed),
        },
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    if host.is_empty() {
        return Err(UriProblem::NoHost);
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '@')
    {
        return Err(UriProblem::HostCharacter);
    }
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(UriProblem::Port(p.to_owned()));
        }
    }
    Ok(tls)
}

/// A DN as an operator writes it: not empty, `attr=value` components, no control characters.
fn validate_dn(dn: &str) -> Result<(), DnProblem> {
    if dn.trim().is_empty() {
        return Err(DnProblem::Empty);
    }
    if !dn.contains('=') || dn.chars().any(char::is_control) {
        return Err(DnProblem::NotADn);
    }
    Ok(())
}

/// RFC 4512 `descr`: a letter, then letters, digits and '-'.
fn is_attribute_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-')
        && s.len() <= 64
}

/// One parenthesised filter that parses once a login is ANDed to it.
fn validate_filter(f: &str) -> Result<(), FilterProblem> {
    if !f.starts_with('(') || !f.ends_with(')') {
        return Err(FilterProblem::NotParenthesised);
    }
    // The parenthesis opened first must close last: "(a=1)(b=2)" is two filters. A literal
    // parenthesis in a value is escaped (\28, \29), so every parenthesis here is structure.
    let mut depth = 0usize;
    let mut first_closed_at = None;
    for (i, c) in f.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1).ok_or(FilterProblem::ClosesNothing)?;
                if depth == 0 && first_closed_at.is_none() {
                    first_closed_at = Some(i);
                }
            }
            c if c.is_control() => return Err(FilterProblem::ControlCharacter),
            _ => {}
        }
    }
    if depth != 0 {
        return Err(FilterProblem::NeverClosed);
    }
    if first_closed_at != Some(f.len() - 1) {
        return Err(FilterProblem::Several);
    }
    ldap3::parse_filter(user_filter(f, DEFAULT_LOGIN_ATTRIBUTE, "x"))
        .map(|_| ())
        .map_err(|()| FilterProblem::Unparsable)
}

/// The search filter for `login`: the configured filter ANDed with an equality match on the login
/// attribute. The login is escaped (RFC 4515 §3), so it is always one literal value.
pub(super) fn user_filter(filter: &str, login_attribute: &str, login: &str) -> String {
    format!(
        "(&{filter}({login_attribute}={}))",
        ldap3::ldap_escape(login)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ldap_config(extra: &[(&str, &str)]) -> LdapConfig {
        let mut text = String::new();
        let has = |k: &str| extra.iter().any(|(key, _)| *key == k);
        if !has("uri") {
            text.push_str("uri = \"ldap://127.0.0.1:3389\"\n");
        }
        if !has("base") {
            text.push_str("base = \"ou=people,dc=pi,dc=test\"\n");
        }
        for (k, v) in extra {
            if !v.is_empty() {
                text.push_str(&format!("{k} = {v}\n"));
            }
        }
        toml::from_str(&text).unwrap()
    }

    fn refused(extra: &[(&str, &str)]) -> String {
        ldap_config(extra).validate("dir").unwrap_err().to_string()
    }

    #[test]
    fn a_minimal_ldap_resolver_validates() {
        ldap_config(&[]).validate("dir").unwrap();
        ldap_config(&[
            ("uri", "\"ldaps://ldap.example.org:636/\""),
            ("bind_dn", "\"cn=pi,dc=pi,dc=test\""),
            ("bind_password_file", "\"/etc/pi/ldap.pw\""),
            ("ca_file", "\"/etc/pi/ca.pem\""),
            ("filter", "\"(&(objectClass=person)(!(x=1)))\""),
            ("login_attribute", "\"sAMAccountName\""),
            ("uid_attribute", "\"object-guid2\""),
            ("timeout_secs", "60"),
        ])
        .validate("dir")
        .unwrap();
        ldap_config(&[("uri", "\"ldap://[::1]:389\""), ("starttls", "true")])
            .validate("dir")
            .unwrap();
    }

    #[test]
    fn uri_must_be_ldap_or_ldaps_with_a_host() {
        let cfg: LdapConfig = toml::from_str("base = \"dc=pi,dc=test\"\n").unwrap();
        let msg = cfg.validate("dir").unwrap_err().to_string();
        assert!(
            msg.contains("resolvers.dir") && msg.contains("uri"),
            "{msg}"
        );
        for bad in [
            "\"http://ldap.example.org\"",
            "\"ldapi:///run/slapd.sock\"",
            "\"ldap://\"",
            "\"ldap://host:0\"",
            "\"ldap://host:99999\"",
            "\"ldap://host/dc=x??sub\"",
            "\"LDAP://host\"",
        ] {
            let msg = refused(&[("uri", bad)]);
            assert!(msg.contains("resolvers.dir.uri"), "{bad}: {msg}");
        }
    }

    #[test]
    fn a_refused_uri_or_filter_is_quoted_before_what_to_write() {
        assert_eq!(
            refused(&[("uri", "\"ldap://host:0\"")]),
            "resolvers.dir.uri: \"ldap://host:0\": port \"0\" is not a port number from 1 to \
             65535"
        );
        assert_eq!(
            refused(&[("filter", "\"(a=1)(b=2)\"")]),
            "resolvers.dir.filter: \"(a=1)(b=2)\": it is several filters side by side, not one; \
             write one parenthesised LDAP filter, e.g. \"(objectClass=posixAccount)\" or \
             \"(&(objectClass=person)(!(pwdAccountLockedTime=*)))\""
        );
    }

    #[test]
    fn base_is_required_and_must_be_a_dn() {
        let cfg: LdapConfig = toml::from_str("uri = \"ldap://h\"\n").unwrap();
        let msg = cfg.validate("dir").unwrap_err().to_string();
        assert!(msg.contains("base"), "{msg}");
        let msg = refused(&[("base", "\"people\"")]);
        assert!(msg.contains("resolvers.dir.base"), "{msg}");
    }

    #[test]
    fn starttls_over_ldaps_is_refused() {
        let msg = refused(&[("uri", "\"ldaps://h\""), ("starttls", "true")]);
        assert!(msg.contains("resolvers.dir.starttls"), "{msg}");
        ldap_config(&[("uri", "\"ldaps://h\""), ("starttls", "false")])
            .validate("dir")
            .unwrap();
    }

    #[test]
    fn bind_dn_and_password_file_come_together_and_paths_are_absolute() {
        let msg = refused(&[("bind_dn", "\"cn=pi,dc=pi,dc=test\"")]);
        assert!(msg.contains("bind_dn and bind_password_file"), "{msg}");
        let msg = refused(&[("bind_password_file", "\"/etc/pi/pw\"")]);
        assert!(msg.contains("bind_dn and bind_password_file"), "{msg}");
        let msg = refused(&[
            ("bind_dn", "\"cn=pi,dc=pi,dc=test\""),
            ("bind_password_file", "\"pw\""),
        ]);
        assert!(msg.contains("resolvers.dir.bind_password_file"), "{msg}");
        let msg = refused(&[("uri", "\"ldaps://h\""), ("ca_file", "\"ca.pem\"")]);
        assert!(msg.contains("resolvers.dir.ca_file"), "{msg}");
    }

    #[test]
    fn ca_file_without_tls_is_refused() {
        let msg = refused(&[("ca_file", "\"/etc/pi/ca.pem\"")]);
        assert!(
            msg.contains("resolvers.dir.ca_file") && msg.contains("starttls"),
            "{msg}"
        );
    }

    #[test]
    fn timeout_is_one_to_sixty_seconds() {
        for bad in ["0", "61"] {
            let msg = refused(&[("timeout_secs", bad)]);
            assert!(msg.contains("resolvers.dir.timeout_secs"), "{msg}");
        }
        ldap_config(&[("timeout_secs", "1")])
            .validate("dir")
            .unwrap();
    }

    #[test]
    fn attribute_names_are_ldap_descriptors() {
        for bad in ["\"\"", "\"uid)(x\"", "\"1uid\"", "\"u_id\"", "\"uid=*\""] {
            let msg = refused(&[("login_attribute", bad)]);
            assert!(
                msg.contains("resolvers.dir.login_attribute"),
                "{bad}: {msg}"
            );
            let msg = refused(&[("uid_attribute", bad)]);
            assert!(msg.contains("resolvers.dir.uid_attribute"), "{bad}: {msg}");
        }
    }

    #[test]
    fn filter_must_be_one_parenthesised_filter() {
        for bad in [
            "\"objectClass=person\"",
            "\"(objectClass=person)(uid=*)\"",
            "\"(objectClass=person))\"",
            "\"((objectClass=person)\"",
            "\"(&(objectClass=person)\"",
            "\"()\"",
        ] {
            let msg = refused(&[("filter", bad)]);
            assert!(
                msg.contains("resolvers.dir.filter") && msg.contains("parenthesised"),
                "{bad}: {msg}"
            );
        }
    }

    #[test]
    fn the_login_is_escaped_into_one_literal_value() {
        assert_eq!(
            user_filter(DEFAULT_FILTER, "uid", "alice"),
            "(&(objectClass=posixAccount)(uid=alice))"
        );
        assert_eq!(user_filter("(o=x)", "uid", "*"), "(&(o=x)(uid=\\2a))");
        assert_eq!(
            user_filter("(o=x)", "uid", "a*)(uid=*"),
            "(&(o=x)(uid=a\\2a\\29\\28uid=\\2a))"
        );
        assert_eq!(user_filter("(o=x)", "cn", "a\\b"), "(&(o=x)(cn=a\\5cb))");
        assert_eq!(user_filter("(o=x)", "uid", "a\0b"), "(&(o=x)(uid=a\\00b))");
        // Whatever the login, the filter parses as the configured filter AND one equality match.
        for login in [
            "*",
            "a*)(uid=*",
            ")(|(uid=*",
            "\\",
            "\0",
            "x)(objectClass=*",
        ] {
            let f = user_filter(DEFAULT_FILTER, "uid", login);
            assert!(ldap3::parse_filter(&f).is_ok(), "{f}");
            assert_eq!(f.matches('(').count(), 3, "{f}");
            assert_eq!(f.matches(')').count(), 3, "{f}");
        }
    }
}
