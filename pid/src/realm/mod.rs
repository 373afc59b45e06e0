//! Realms and resolvers: who is a user. A realm is an ordered list of resolvers; the first
//! resolver that knows the login wins (privacyIDEA's resolver priority). Everything downstream
//! is keyed by (realm, login).
//!
//! Resolvers: `passwd` — the host's accounts through NSS (LDAP/SSSD users visible to the system
//! count too); `flatfile` — a passwd-format file of users who are not host accounts.

pub mod flatfile;

use crate::config::{Config, ResolverType};
use crate::error::PidError;
use crate::store::Owner;
use crate::users::ResolvedUser;
use flatfile::FlatFile;
use std::collections::BTreeMap;
use std::sync::Arc;

pub enum Resolver {
    Passwd,
    Flatfile(FlatFile),
}

impl Resolver {
    /// `Some(uid)` if this resolver knows the login. Blocking (NSS): call off the executor.
    fn find(&self, login: &str) -> Result<Option<u32>, PidError> {
        match self {
            Resolver::Passwd => match nix::unistd::User::from_name(login) {
                Ok(u) => Ok(u.map(|u| u.uid.as_raw())),
                Err(e) => Err(PidError::Internal(format!(
                    "NSS lookup of {login:?} failed: {e}"
                ))),
            },
            Resolver::Flatfile(f) => Ok(f.find(login)),
        }
    }

    /// NSS may talk to LDAP or SSSD and block; a flatfile is in memory.
    fn may_block(&self) -> bool {
        matches!(self, Resolver::Passwd)
    }

    /// Only host accounts have a uid the kernel vouches for (SO_PEERCRED): a flatfile uid is
    /// just a number in a file and never grants a local caller anything.
    fn uid_is_a_host_account(&self) -> bool {
        matches!(self, Resolver::Passwd)
    }
}

pub struct Realms {
    realms: BTreeMap<String, Vec<(String, Arc<Resolver>)>>,
    default_realm: String,
}

/// Name of the implicit resolver when the config declares none.
pub const IMPLICIT_PASSWD: &str = "passwd";

impl Realms {
    /// Build from the config, loading flatfiles. Without `[realms]`, the default realm holds the
    /// host's accounts.
    pub fn load(config: &Config) -> Result<Realms, PidError> {
        let mut resolvers: BTreeMap<String, Arc<Resolver>> = BTreeMap::new();
        for (name, r) in &config.resolvers {
            let resolver = match r.kind {
                ResolverType::Passwd => Resolver::Passwd,
                ResolverType::Flatfile => {
                    let path = r.file.as_ref().ok_or_else(|| {
                        PidError::Config(format!(
                            "resolvers.{name}: a flatfile resolver needs `file`"
                        ))
                    })?;
                    Resolver::Flatfile(FlatFile::load(path)?)
                }
            };
            resolvers.insert(name.clone(), Arc::new(resolver));
        }
        let mut realms = BTreeMap::new();
        if config.realms.is_empty() {
            let passwd = resolvers
                .get(IMPLICIT_PASSWD)
                .cloned()
                .unwrap_or_else(|| Arc::new(Resolver::Passwd));
            realms.insert(
                config.default_realm.clone(),
                vec![(IMPLICIT_PASSWD.to_owned(), passwd)],
            );
        }
        for (realm, rc) in &config.realms {
            let mut list = Vec::new();
            for name in &rc.resolvers {
                let r = resolvers.get(name).ok_or_else(|| {
                    PidError::Config(format!("realms.{realm}: unknown resolver {name:?}"))
                })?;
                list.push((name.clone(), r.clone()));
            }
            realms.insert(realm.clone(), list);
        }
        Ok(Realms {
            realms,
            default_realm: config.default_realm.clone(),
        })
    }

    pub fn exists(&self, realm: &str) -> bool {
        self.realms.contains_key(realm)
    }

    /// Split `login@realm` as privacyIDEA does: only when the part after the last `@` is a known
    /// realm; otherwise the whole string is the login (e-mail-like logins stay intact). An
    /// explicit realm wins.
    pub fn split<'a>(&'a self, user: &'a str, realm: Option<&'a str>) -> (&'a str, &'a str) {
        if let Some(r) = realm {
            return (user, r);
        }
        if let Some((login, r)) = user.rsplit_once('@') {
            if !login.is_empty() && self.exists(r) {
                return (login, r);
            }
        }
        (user, &self.default_realm)
    }

    /// Whether looking a user up in `realm` may block (then it belongs off the executor).
    pub fn lookup_may_block(&self, realm: &str) -> bool {
        self.realms
            .get(realm)
            .is_some_and(|rs| rs.iter().any(|(_, r)| r.may_block()))
    }

    /// Find the user in the realm's resolvers, in order. May block: see `lookup_may_block`.
    pub fn lookup(&self, login: &str, realm: &str) -> Result<Option<ResolvedUser>, PidError> {
        crate::users::validate_login(login)?;
        let Some(resolvers) = self.realms.get(realm) else {
            return Ok(None);
        };
        for (name, r) in resolvers {
            if let Some(uid) = r.find(login)? {
                return Ok(Some(ResolvedUser {
                    owner: Owner {
                        realm: realm.to_owned(),
                        login: login.to_owned(),
                    },
                    host_uid: r.uid_is_a_host_account().then_some(uid),
                    resolver: name.clone(),
                }));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn realms(extra: &str) -> (tempfile::TempDir, Realms) {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users");
        std::fs::write(&users, "alice:x:1000:1000::/:/\nroot:x:5:5::/:/\n").unwrap();
        let text = format!(
            "[resolvers.local]\ntype = \"passwd\"\n[resolvers.people]\ntype = \"flatfile\"\nfile = \"{}\"\n{extra}",
            users.display()
        );
        let cfg = Config::parse(&text, "t").unwrap();
        let r = Realms::load(&cfg).unwrap();
        (dir, r)
    }

    #[test]
    fn without_realms_the_default_realm_holds_host_accounts() {
        let r = Realms::load(&Config::default()).unwrap();
        let root = r.lookup("root", "default").unwrap().unwrap();
        assert_eq!(root.host_uid, Some(0));
        assert!(r.lookup("no-such-user-pi", "default").unwrap().is_none());
        assert!(r.lookup("root", "elsewhere").unwrap().is_none());
    }

    #[test]
    fn resolvers_are_tried_in_order_and_flatfile_uids_are_not_host_uids() {
        let (_d, r) = realms(
            "[realms.default]\nresolvers = [\"local\", \"people\"]\n[realms.ext]\nresolvers = [\"people\", \"local\"]\n",
        );
        let root = r.lookup("root", "default").unwrap().unwrap();
        assert_eq!((root.host_uid, root.resolver.as_str()), (Some(0), "local"));
        let root_ext = r.lookup("root", "ext").unwrap().unwrap();
        assert_eq!(
            (root_ext.host_uid, root_ext.resolver.as_str()),
            (None, "people")
        );
        let alice = r.lookup("alice", "default").unwrap().unwrap();
        assert_eq!(alice.host_uid, None);
    }

    #[test]
    fn user_at_realm_is_split_only_for_known_realms() {
        let (_d, r) = realms(
            "[realms.default]\nresolvers = [\"local\"]\n[realms.ext]\nresolvers = [\"people\"]\n",
        );
        assert_eq!(r.split("alice@ext", None), ("alice", "ext"));
        assert_eq!(
            r.split("alice@example.org", None),
            ("alice@example.org", "default")
        );
        assert_eq!(r.split("alice", Some("ext")), ("alice", "ext"));
        assert_eq!(r.split("@ext", None), ("@ext", "default"));
    }

    #[test]
    fn unknown_resolver_in_a_realm_is_a_config_error() {
        let msg = Config::parse("[realms.default]\nresolvers = [\"nope\"]\n", "t")
            .map(|c| Realms::load(&c).map(|_| ()))
            .unwrap_or_else(Err)
            .err()
            .unwrap()
            .to_string();
        assert!(msg.contains("nope"), "{msg}");
    }
}
