//! The `[resolvers.NAME]` and `[realms.NAME]` tables of pid.toml. A resolver's table names its
//! `type`; that type's own keys are defined and checked by the resolver's module (`passwd`,
//! `flatfile`, `ldap`), so a key of another type is an unknown key.

use super::flatfile::FlatfileConfig;
use super::ldap::LdapConfig;
use super::passwd::PasswdConfig;
use crate::config::ConfigError;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A `[resolvers.NAME]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ResolverConfig {
    /// The host's accounts through NSS (getpwnam).
    Passwd(PasswdConfig),
    /// A passwd-format file: `login:password:uid:gid:gecos:home:shell`.
    Flatfile(FlatfileConfig),
    /// An LDAP directory.
    Ldap(LdapConfig),
}

impl ResolverConfig {
    /// Check the table of resolver `name` as written.
    pub fn validate(&self, name: &str) -> Result<(), ConfigError> {
        match self {
            ResolverConfig::Passwd(c) => c.validate(name),
            ResolverConfig::Flatfile(c) => c.path(name).map(drop),
            ResolverConfig::Ldap(c) => c.validate(name).map(drop),
        }
    }
}

/// A `[realms.NAME]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealmConfig {
    /// Tried in order; the first resolver that knows the login wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolvers: Vec<String>,
    /// The `[upstream.NAME]` server whose users and tokens the realm is (instead of resolvers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

/// What pid.toml says about users: its resolvers, its realms and the default realm.
#[derive(Clone, Copy)]
pub struct RealmsConfig<'a> {
    pub resolvers: &'a BTreeMap<String, ResolverConfig>,
    pub realms: &'a BTreeMap<String, RealmConfig>,
    pub default_realm: &'a str,
}

/// A resolver table's `type`.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum ResolverType {
    Passwd,
    Flatfile,
    Ldap,
}

impl ResolverType {
    /// The rest of the table, as this type's keys.
    fn read<'de, D: Deserializer<'de>>(self, keys: D) -> Result<ResolverConfig, D::Error> {
        Ok(match self {
            ResolverType::Passwd => ResolverConfig::Passwd(PasswdConfig::deserialize(keys)?),
            ResolverType::Flatfile => ResolverConfig::Flatfile(FlatfileConfig::deserialize(keys)?),
            ResolverType::Ldap => ResolverConfig::Ldap(LdapConfig::deserialize(keys)?),
        })
    }
}

/// serde's own reading of a tagged enum buffers the whole table before it knows the type, and
/// an error about one of its keys then names the table's line instead of the key's. When `type`
/// comes first, as pid.toml's examples write it, the rest of the table is read in place, so a
/// wrong key or value is reported at its own line; otherwise the table is buffered.
impl<'de> Deserialize<'de> for ResolverConfig {
    fn deserialize<D: Deserializer<'de>>(table: D) -> Result<Self, D::Error> {
        table.deserialize_map(TableVisitor)
    }
}

struct TableVisitor;

impl<'de> Visitor<'de> for TableVisitor {
    type Value = ResolverConfig;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a resolver's table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ResolverConfig, A::Error> {
        let mut before_type = toml::Table::new();
        while let Some(key) = map.next_key::<String>()? {
            if key != "type" {
                before_type.insert(key, map.next_value()?);
                continue;
            }
            let kind: ResolverType = map.next_value()?;
            if before_type.is_empty() {
                return kind.read(MapAccessDeserializer::new(map));
            }
            while let Some((key, value)) = map.next_entry::<String, toml::Value>()? {
                before_type.insert(key, value);
            }
            return kind
                .read(toml::Value::Table(before_type))
                .map_err(A::Error::custom);
        }
        Err(A::Error::missing_field("type"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(table: &str) -> Result<ResolverConfig, toml::de::Error> {
        toml::from_str(table)
    }

    #[test]
    fn a_table_is_read_as_its_types_keys_wherever_type_is_written() {
        let first = parse("type = \"ldap\"\nuri = \"ldap://h\"\ntimeout_secs = 5\n").unwrap();
        let later = parse("uri = \"ldap://h\"\ntype = \"ldap\"\ntimeout_secs = 5\n").unwrap();
        assert_eq!(first, later);
        let ResolverConfig::Ldap(ldap) = first else {
            panic!("not ldap: {first:?}");
        };
        assert_eq!(
            (ldap.uri.as_deref(), ldap.timeout_secs),
            (Some("ldap://h"), Some(5))
        );
        assert_eq!(
            parse("type = \"flatfile\"\nfile = \"/etc/pi/users\"\n").unwrap(),
            ResolverConfig::Flatfile(FlatfileConfig {
                file: Some("/etc/pi/users".into())
            })
        );
    }

    #[test]
    fn a_key_of_another_type_or_no_type_is_refused() {
        for (table, says) in [
            ("type = \"passwd\"\nfile = \"/x\"\n", "unknown field `file`"),
            ("file = \"/x\"\ntype = \"passwd\"\n", "unknown field `file`"),
            ("type = \"ldapish\"\n", "unknown variant `ldapish`"),
            ("file = \"/x\"\n", "missing field `type`"),
        ] {
            let err = parse(table).unwrap_err().to_string();
            assert!(err.contains(says), "{table}: {err}");
        }
    }

    #[test]
    fn the_table_is_written_back_with_its_type_first() {
        let table = "type = \"passwd\"\npam_service = \"login\"\n";
        assert_eq!(toml::to_string(&parse(table).unwrap()).unwrap(), table);
    }
}
