//! What is wrong with pid.toml, or with a file it names, and where (`ConfigError`). A check
//! names the key it refuses; `Config::parse` adds the file and finds the key's line (`locate`).

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem with the configuration, shown as `FILE, line N: KEY: REASON` (each part that is
/// known). The reason's own causes (an unreadable file's I/O error) are its sources.
#[derive(Debug)]
pub struct ConfigError {
    /// pid.toml as pid was told it, or a file it names (a flatfile resolver's user file).
    /// `None` for a problem found while the configuration is put to use (a resolver set up at
    /// start or reload) rather than while the file is read.
    pub file: Option<PathBuf>,
    /// The line of `file` the problem is on.
    pub line: Option<usize>,
    /// The key or table the problem is about.
    pub key: Option<Key>,
    /// Boxed, so that checks can return a `ConfigError` cheaply.
    pub reason: Box<Reason>,
}

/// Where in pid.toml a problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    /// A top-level key, or a key of a section, dotted: `socket`, `tokens.digits`. Its line is
    /// the key's own, or its section's header.
    Top(String),
    /// A `[resolvers.NAME]`, `[realms.NAME]` or `[upstream.NAME]` table, or one of its keys.
    Table {
        table: Table,
        name: String,
        key: Option<&'static str>,
    },
    /// A `[[policy]]` by name; `at` is the action or condition whose line the problem is on
    /// (the reason names it, so it is not shown twice).
    Policy { name: String, at: Option<String> },
    /// Two policies that set one action differently; the line is the action's in the first.
    Conflict {
        first: String,
        second: String,
        action: &'static str,
    },
}

/// The tables that hold named entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Resolvers,
    Realms,
    Upstream,
}

/// Why the configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum Reason {
    /// What is wrong and what to write instead, in words.
    #[error("{0}")]
    Invalid(String),
    /// The text is not TOML, or not of pid.toml's shape (an unknown key, a wrong type).
    #[error("{}", .0.message())]
    Syntax(Box<toml::de::Error>),
    /// A file the configuration is, or names, cannot be read.
    #[error("cannot read {what}{}", path.display())]
    Unreadable {
        /// What the file is, with a trailing space (`"user file "`), or empty.
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A name the configuration gives (a realm, a resolver, a PAM service) is not one.
    #[error(transparent)]
    Name(#[from] crate::users::NameError),
    /// argon2 refuses the `[argon2]` cost.
    #[error("argon2 parameters")]
    Argon2(#[source] argon2::Error),
    /// A CA file that holds no readable PEM.
    #[error(
        "cannot read PEM certificates from {}; it must hold the CA certificate(s) in PEM \
         (-----BEGIN CERTIFICATE-----)",
        path.display()
    )]
    Pem {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// A CA file whose certificate does not parse.
    #[error(
        "a certificate in {} does not parse; replace it with the CA certificate in PEM",
        path.display()
    )]
    Certificate {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    /// TLS client settings could not be built.
    #[error("TLS settings cannot be built")]
    Tls(#[source] rustls::Error),
    /// A policy's action, or the value it sets, is refused.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// An `ldap` resolver's uri, DN or search filter that is not one.
    #[error(transparent)]
    LdapSyntax(crate::realm::ldap::Written),
    /// The PAM service a resolver checks passwords with cannot be used.
    #[error(transparent)]
    PamService(#[from] crate::realm::pam_service::ServiceProblem),
}

impl ConfigError {
    /// `key` is refused: `why`, in words that say what to write instead.
    pub fn invalid(key: impl Into<Key>, why: impl Into<String>) -> ConfigError {
        ConfigError::new(Some(key.into()), Reason::Invalid(why.into()))
    }

    pub fn new(key: Option<Key>, reason: Reason) -> ConfigError {
        ConfigError {
            file: None,
            line: None,
            key,
            reason: Box::new(reason),
        }
    }

    /// A problem at `line` of `file`, a file pid.toml names.
    pub fn at_line(file: &Path, line: usize, why: impl Into<String>) -> ConfigError {
        ConfigError {
            file: Some(file.to_path_buf()),
            line: Some(line),
            ..ConfigError::new(None, Reason::Invalid(why.into()))
        }
    }

    /// A problem with `file` as a whole, a file pid.toml names.
    pub fn in_file(file: &Path, why: impl Into<String>) -> ConfigError {
        ConfigError {
            file: Some(file.to_path_buf()),
            ..ConfigError::new(None, Reason::Invalid(why.into()))
        }
    }

    /// `path` cannot be read; `what` names the file, with a trailing space, or is empty.
    pub fn unreadable(what: &'static str, path: &Path, source: std::io::Error) -> ConfigError {
        ConfigError::new(
            None,
            Reason::Unreadable {
                what,
                path: path.to_path_buf(),
                source,
            },
        )
    }

    /// The same problem, found in `file`, whose text is `text`: the line is the key's.
    pub(super) fn found_in(mut self, file: &str, text: &str) -> ConfigError {
        self.file = Some(PathBuf::from(file));
        if self.line.is_none() {
            self.line = self
                .key
                .as_ref()
                .and_then(|k| super::locate::locate(text, k));
        }
        self
    }

    /// The same problem, about `key`.
    pub fn about(mut self, key: Key) -> ConfigError {
        self.key = Some(key);
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some(line) = self.line {
                write!(f, ", line {line}")?;
            }
            f.write_str(": ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        write!(f, "{}", self.reason)
    }
}

/// The reason is shown with the error itself: its causes are the error's.
impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.reason)
    }
}

impl Key {
    /// A key of resolver `name`'s table (`None`: the table).
    pub fn resolver(name: &str, key: Option<&'static str>) -> Key {
        Key::Table {
            table: Table::Resolvers,
            name: name.to_owned(),
            key,
        }
    }

    /// A key of realm `name`'s table (`None`: the table).
    pub fn realm(name: &str, key: Option<&'static str>) -> Key {
        Key::Table {
            table: Table::Realms,
            name: name.to_owned(),
            key,
        }
    }

    /// A key of upstream `name`'s table (`None`: the table).
    pub fn upstream(name: &str, key: Option<&'static str>) -> Key {
        Key::Table {
            table: Table::Upstream,
            name: name.to_owned(),
            key,
        }
    }

    /// Policy `name`, about the action or condition `at`.
    pub fn policy(name: &str, at: Option<&str>) -> Key {
        Key::Policy {
            name: name.to_owned(),
            at: at.map(str::to_owned),
        }
    }
}

impl From<&str> for Key {
    fn from(path: &str) -> Key {
        Key::Top(path.to_owned())
    }
}

impl From<String> for Key {
    fn from(path: String) -> Key {
        Key::Top(path)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Top(path) => f.write_str(path),
            Key::Table { table, name, key } => {
                write!(f, "{}.{name}", table.name())?;
                match key {
                    Some(key) => write!(f, ".{key}"),
                    None => Ok(()),
                }
            }
            Key::Policy { name, .. } => write!(f, "policy {name:?}"),
            Key::Conflict { first, second, .. } => write!(f, "policies {first:?} and {second:?}"),
        }
    }
}

impl Table {
    /// As written in pid.toml.
    pub fn name(self) -> &'static str {
        match self {
            Table::Resolvers => "resolvers",
            Table::Realms => "realms",
            Table::Upstream => "upstream",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_shows_file_line_key_and_reason() {
        let e = ConfigError::invalid("tokens.digits", "7 — use 6 or 8");
        assert_eq!(e.to_string(), "tokens.digits: 7 — use 6 or 8");
        let e = e.found_in("pid.toml", "[tokens]\ndigits = 7\n");
        assert_eq!(
            e.to_string(),
            "pid.toml, line 1: tokens.digits: 7 — use 6 or 8"
        );
        let e = ConfigError::invalid(Key::resolver("dir", Some("uri")), "\"x\": write ldap://");
        assert_eq!(e.to_string(), "resolvers.dir.uri: \"x\": write ldap://");
        let e = ConfigError::at_line(Path::new("/etc/pi/people"), 2, "not UTF-8 text");
        assert_eq!(e.to_string(), "/etc/pi/people, line 2: not UTF-8 text");
    }
}
