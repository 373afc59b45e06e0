//! Realms and resolvers: who is a user. A realm is an ordered list of resolvers; the first
//! resolver that knows the login wins (privacyIDEA's resolver priority). Everything downstream
//! is keyed by (realm, login).
//!
//! Resolvers: `passwd` — the host's accounts through NSS (LDAP/SSSD users visible to the system
//! count too); `flatfile` — a passwd-format file of users who are not host accounts; `ldap` — a
//! directory. Each can also check a user's password (`otppin = "userstore"`, `passthru`):
//! `passwd` through a PAM service of the administrator's choosing, `flatfile` against the crypt
//! hash in the file, `ldap` by binding as the user.
//!
//! A realm can instead be served by an upstream privacyIDEA server (`[realms.NAME] upstream`):
//! the server knows its users and their tokens, so every login is "found" here and the server
//! decides (an unknown user is the server's answer). The host account of the same name, if
//! there is one, still gives the login its uid, which a local caller's own-account check needs.

mod config;
mod error;
pub mod etc_passwd;
pub mod flatfile;
pub mod ldap;
pub mod pam_service;
pub mod passwd;

use crate::config::{ConfigError, Key};
use crate::error::PidError;
use crate::store::Owner;
use crate::users::ResolvedUser;
pub use config::{RealmConfig, RealmsConfig, ResolverConfig};
pub use error::{NotLoaded, RealmError};
use etc_passwd::EtcPasswd;
use flatfile::{FlatFile, FlatfileConfig};
use ldap::LdapResolver;
use passwd::DEFAULT_PAM_SERVICE;
use protocol::Secret;
use std::collections::BTreeMap;
use std::sync::Arc;

pub enum Resolver {
    /// The host's accounts; passwords are checked by running this PAM service.
    Passwd {
        pam_service: String,
        /// /etc/passwd as NSS's `files` source reads it, for lookups that need no NSS.
        etc_passwd: EtcPasswd,
    },
    Flatfile(FlatFile),
    Ldap(Box<LdapResolver>),
    /// A resolver that could not be set up when the daemon started (a flatfile with a bad
    /// line, an unreadable file): every lookup in it fails, so its realms fail closed while the
    /// others serve.
    Unavailable(Arc<NotLoaded>),
    /// The `[upstream.NAME]` server that serves a realm.
    Upstream {
        server: String,
        etc_passwd: EtcPasswd,
    },
}

/// A login a resolver knows.
pub struct Found {
    /// Only host accounts have a uid the kernel vouches for (SO_PEERCRED): a flatfile or LDAP
    /// uid is just a number in a file or directory and never grants a local caller anything.
    pub host_uid: Option<u32>,
    /// What identifies the person behind the login in this store (see `ResolvedUser::user_id`).
    pub user_id: String,
}

impl Found {
    fn host_account(uid: u32) -> Found {
        Found {
            host_uid: Some(uid),
            user_id: format!("uid {uid}"),
        }
    }

    /// A user of an upstream realm: the host account's uid, if the host has the login.
    fn upstream_user(server: &str, host_uid: Option<u32>) -> Found {
        Found {
            host_uid,
            user_id: format!("upstream {server}"),
        }
    }

    fn flatfile_user(uid: u32) -> Found {
        Found {
            host_uid: None,
            user_id: format!("uid {uid}"),
        }
    }
}

impl Resolver {
    fn passwd(pam_service: String) -> Resolver {
        Resolver::Passwd {
            pam_service,
            etc_passwd: EtcPasswd::system(),
        }
    }

    fn build(name: &str, r: &ResolverConfig) -> Result<Resolver, PidError> {
        Ok(match r {
            ResolverConfig::Passwd(c) => Resolver::passwd(c.pam_service(name)?),
            ResolverConfig::Flatfile(c) => Resolver::Flatfile(FlatFile::load(c.path(name)?)?),
            ResolverConfig::Ldap(c) => Resolver::Ldap(Box::new(LdapResolver::new(name, c)?)),
        })
    }

    /// The login's entry, if this resolver knows it; `now` in Unix seconds. May block (NSS,
    /// LDAP): see `find_without_blocking`.
    fn find(&self, login: &str, now: i64) -> Result<Option<Found>, PidError> {
        match self {
            Resolver::Passwd { etc_passwd, .. } => {
                // Off the executor already: the place to re-read /etc/passwd if it changed.
                etc_passwd.refresh(now);
                match nix::unistd::User::from_name(login) {
                    Ok(u) => Ok(u.map(|u| Found::host_account(u.uid.as_raw()))),
                    Err(source) => Err(RealmError::Nss {
                        login: login.to_owned(),
                        source,
                    }
                    .into()),
                }
            }
            Resolver::Flatfile(f) => Ok(f.find(login).map(Found::flatfile_user)),
            Resolver::Ldap(l) => Ok(l.find(login)?.map(|id| Found {
                host_uid: None,
                user_id: id,
            })),
            Resolver::Unavailable(why) => Err(RealmError::NotLoaded(why.clone()).into()),
            Resolver::Upstream { server, etc_passwd } => {
                etc_passwd.refresh(now);
                match nix::unistd::User::from_name(login) {
                    Ok(u) => Ok(Some(Found::upstream_user(
                        server,
                        u.map(|u| u.uid.as_raw()),
                    ))),
                    Err(source) => Err(RealmError::Nss {
                        login: login.to_owned(),
                        source,
                    }
                    .into()),
                }
            }
        }
    }

    /// Whether `password` is the login's password in this user store. `Ok(false)` for a wrong
    /// password or an unknown login; `Err` when the store cannot answer (the login then fails
    /// closed). Blocking: call off the executor.
    fn check_password(
        &self,
        realm: &str,
        login: &str,
        password: &Secret,
    ) -> Result<bool, PidError> {
        match self {
            Resolver::Passwd { pam_service, .. } => {
                pam_service::check_password(pam_service, login, password)
            }
            Resolver::Flatfile(f) => f.check_password(login, password),
            Resolver::Ldap(l) => l.check_password(login, password),
            Resolver::Unavailable(why) => Err(RealmError::NotLoaded(why.clone()).into()),
            Resolver::Upstream { server, .. } => Err(RealmError::Upstream {
                realm: realm.to_owned(),
                server: server.clone(),
            }
            .into()),
        }
    }

    /// What `find` would return, when that is known without blocking: NSS may talk to LDAP or
    /// SSSD and block (unless /etc/passwd answers, see `etc_passwd`), LDAP does, a flatfile is
    /// in memory. `None`: only `find` can tell.
    fn find_without_blocking(&self, login: &str) -> Option<Option<Found>> {
        match self {
            Resolver::Passwd { etc_passwd, .. } => etc_passwd
                .known_uid(login)
                .map(|uid| Some(Found::host_account(uid))),
            Resolver::Flatfile(f) => Some(f.find(login).map(Found::flatfile_user)),
            Resolver::Upstream { server, etc_passwd } => etc_passwd
                .known_uid(login)
                .map(|uid| Some(Found::upstream_user(server, Some(uid)))),
            Resolver::Ldap(_) | Resolver::Unavailable(_) => None,
        }
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
    /// host's accounts. Any resolver that cannot be set up is an error (a reload keeps the
    /// running configuration then).
    pub fn load(config: RealmsConfig<'_>) -> Result<Realms, PidError> {
        let mut resolvers: BTreeMap<String, Arc<Resolver>> = BTreeMap::new();
        for (name, r) in config.resolvers {
            resolvers.insert(name.clone(), Arc::new(Resolver::build(name, r)?));
        }
        Realms::with(config, resolvers)
    }

    /// `load` for a daemon that is starting: a user file that cannot be loaded makes its realms
    /// fail closed instead of keeping every realm (root's logins included) from being served.
    /// Returns what could not be loaded, one line per resolver and its realms.
    pub fn load_serving(config: RealmsConfig<'_>) -> Result<(Realms, Vec<String>), PidError> {
        let mut resolvers: BTreeMap<String, Arc<Resolver>> = BTreeMap::new();
        let mut problems = Vec::new();
        for (name, r) in config.resolvers {
            let resolver = match Resolver::build(name, r) {
                Ok(resolver) => resolver,
                // A user file that cannot be read or has a bad line. Anything else is a
                // configuration error (a PAM service that would recurse into pi, …): refused.
                Err(source)
                    if matches!(
                        r,
                        ResolverConfig::Flatfile(FlatfileConfig { file: Some(_) })
                    ) =>
                {
                    let realms = config
                        .realms
                        .iter()
                        .filter(|(_, rc)| rc.resolvers.contains(name))
                        .map(|(realm, _)| realm.clone())
                        .collect();
                    let problem = NotLoaded {
                        resolver: name.clone(),
                        realms,
                        source,
                    };
                    problems.push(crate::error::chain(&problem).to_string());
                    Resolver::Unavailable(Arc::new(problem))
                }
                Err(e) => return Err(e),
            };
            resolvers.insert(name.clone(), Arc::new(resolver));
        }
        Ok((Realms::with(config, resolvers)?, problems))
    }

    fn with(
        config: RealmsConfig<'_>,
        resolvers: BTreeMap<String, Arc<Resolver>>,
    ) -> Result<Realms, PidError> {
        let mut realms = BTreeMap::new();
        if config.realms.is_empty() {
            let passwd = resolvers
                .get(IMPLICIT_PASSWD)
                .cloned()
                .unwrap_or_else(|| Arc::new(Resolver::passwd(DEFAULT_PAM_SERVICE.to_owned())));
            realms.insert(
                config.default_realm.to_owned(),
                vec![(IMPLICIT_PASSWD.to_owned(), passwd)],
            );
        }
        for (realm, rc) in config.realms {
            if let Some(server) = &rc.upstream {
                let resolver = Resolver::Upstream {
                    server: server.clone(),
                    etc_passwd: EtcPasswd::system(),
                };
                realms.insert(realm.clone(), vec![(server.clone(), Arc::new(resolver))]);
                continue;
            }
            let mut list = Vec::new();
            for name in &rc.resolvers {
                let r = resolvers.get(name).ok_or_else(|| {
                    ConfigError::invalid(
                        Key::realm(realm, Some("resolvers")),
                        format!("unknown resolver {name:?}"),
                    )
                })?;
                list.push((name.clone(), r.clone()));
            }
            realms.insert(realm.clone(), list);
        }
        Ok(Realms {
            realms,
            default_realm: config.default_realm.to_owned(),
        })
    }

    /// The upstream server that serves `realm`, if one does.
    pub fn upstream_of(&self, realm: &str) -> Option<&str> {
        self.realms
            .get(realm)?
            .iter()
            .find_map(|(_, r)| match &**r {
                Resolver::Upstream { server, .. } => Some(server.as_str()),
                _ => None,
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

    /// What `lookup` would return, when the realm's resolvers can tell without blocking (a
    /// flatfile; a host account NSS would read from /etc/passwd). `Ok(None)`: only `lookup` can
    /// tell, off the executor.
    pub fn lookup_without_blocking(
        &self,
        login: &str,
        realm: &str,
    ) -> Result<Option<Option<ResolvedUser>>, PidError> {
        crate::users::validate_login(login)?;
        let Some(resolvers) = self.realms.get(realm) else {
            return Ok(Some(None));
        };
        for (name, r) in resolvers {
            match r.find_without_blocking(login) {
                Some(Some(found)) => return Ok(Some(Some(resolved(realm, login, name, found)))),
                Some(None) => continue,
                None => return Ok(None),
            }
        }
        Ok(Some(None))
    }

    /// Find the user in the realm's resolvers, in order; `now` in Unix seconds. May block (NSS,
    /// LDAP): call off the executor, after `lookup_without_blocking`.
    pub fn lookup(
        &self,
        login: &str,
        realm: &str,
        now: i64,
    ) -> Result<Option<ResolvedUser>, PidError> {
        crate::users::validate_login(login)?;
        let Some(resolvers) = self.realms.get(realm) else {
            return Ok(None);
        };
        for (name, r) in resolvers {
            if let Some(found) = r.find(login, now)? {
                return Ok(Some(resolved(realm, login, name, found)));
            }
        }
        Ok(None)
    }

    /// Whether `password` is the user's password in the resolver that found the user.
    /// Blocking: call off the executor.
    pub fn check_password(&self, user: &ResolvedUser, password: &Secret) -> Result<bool, PidError> {
        let resolver = self
            .realms
            .get(&user.owner.realm)
            .and_then(|rs| rs.iter().find(|(name, _)| *name == user.resolver))
            .ok_or_else(|| RealmError::Gone {
                resolver: user.resolver.clone(),
                realm: user.owner.realm.clone(),
            })?;
        resolver
            .1
            .check_password(&user.owner.realm, &user.owner.login, password)
    }
}

fn resolved(realm: &str, login: &str, resolver: &str, found: Found) -> ResolvedUser {
    ResolvedUser {
        owner: Owner {
            realm: realm.to_owned(),
            login: login.to_owned(),
        },
        host_uid: found.host_uid,
        user_id: found.user_id,
        resolver: resolver.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    /// The `[resolvers.*]` and `[realms.*]` tables of a pid.toml.
    #[derive(serde::Deserialize)]
    struct Tables {
        #[serde(default)]
        resolvers: BTreeMap<String, ResolverConfig>,
        #[serde(default)]
        realms: BTreeMap<String, RealmConfig>,
    }

    fn load(text: &str) -> Result<Realms, PidError> {
        let tables: Tables = toml::from_str(text)
            .map_err(|e| ConfigError::new(None, crate::config::Reason::Syntax(Box::new(e))))?;
        Realms::load(RealmsConfig {
            resolvers: &tables.resolvers,
            realms: &tables.realms,
            default_realm: "default",
        })
    }

    fn realms(extra: &str) -> (tempfile::TempDir, Realms) {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users");
        std::fs::write(&users, "alice:x:1000:1000::/:/\nroot:x:5:5::/:/\n").unwrap();
        let text = format!(
            "[resolvers.local]\ntype = \"passwd\"\n[resolvers.people]\ntype = \"flatfile\"\nfile = \"{}\"\n{extra}",
            users.display()
        );
        (dir, load(&text).unwrap())
    }

    #[test]
    fn without_realms_the_default_realm_holds_host_accounts() {
        let r = load("").unwrap();
        let root = r.lookup("root", "default", NOW).unwrap().unwrap();
        assert_eq!(root.host_uid, Some(0));
        assert!(r
            .lookup("no-such-user-pi", "default", NOW)
            .unwrap()
            .is_none());
        assert!(r.lookup("root", "elsewhere", NOW).unwrap().is_none());
    }

    #[test]
    fn an_upstream_realm_leaves_who_exists_to_the_server_and_checks_no_password_here() {
        let r = load(
            "[resolvers.local]\ntype = \"passwd\"\n[realms.default]\nresolvers = [\"local\"]\n\
             [realms.corp]\nupstream = \"pi\"\n",
        )
        .unwrap();
        assert_eq!(r.upstream_of("corp"), Some("pi"));
        assert_eq!(r.upstream_of("default"), None);
        assert_eq!(r.split("root@corp", None), ("root", "corp"));
        let root = r.lookup("root", "corp", NOW).unwrap().unwrap();
        assert_eq!((root.host_uid, root.resolver.as_str()), (Some(0), "pi"));
        let stranger = r.lookup("no-such-user-pi", "corp", NOW).unwrap().unwrap();
        assert_eq!(stranger.host_uid, None, "not a host account: no uid");
        let e = r.check_password(&root, &Secret::new("x")).unwrap_err();
        assert!(
            crate::error::chain(&e)
                .to_string()
                .contains("served by upstream pi"),
            "{e}"
        );
    }

    #[test]
    fn resolvers_are_tried_in_order_and_flatfile_uids_are_not_host_uids() {
        let (_d, r) = realms(
            "[realms.default]\nresolvers = [\"local\", \"people\"]\n[realms.ext]\nresolvers = [\"people\", \"local\"]\n",
        );
        let root = r.lookup("root", "default", NOW).unwrap().unwrap();
        assert_eq!((root.host_uid, root.resolver.as_str()), (Some(0), "local"));
        let root_ext = r.lookup("root", "ext", NOW).unwrap().unwrap();
        assert_eq!(
            (root_ext.host_uid, root_ext.resolver.as_str()),
            (None, "people")
        );
        let alice = r.lookup("alice", "default", NOW).unwrap().unwrap();
        assert_eq!(alice.host_uid, None);
    }

    #[test]
    fn lookups_that_cannot_block_are_answered_on_the_worker_and_the_rest_are_left_to_nss() {
        let (dir, mut r) = realms(
            "[realms.default]\nresolvers = [\"local\"]\n[realms.flat]\nresolvers = [\"people\"]\n",
        );
        std::fs::write(dir.path().join("nsswitch.conf"), "passwd: files ldap\n").unwrap();
        std::fs::write(dir.path().join("passwd"), "carol:x:1001:1001::/:/\n").unwrap();
        let etc_passwd = EtcPasswd::at(dir.path().join("nsswitch.conf"), dir.path().join("passwd"));
        let local = Arc::new(Resolver::Passwd {
            pam_service: DEFAULT_PAM_SERVICE.to_owned(),
            etc_passwd,
        });
        let people = r.realms["flat"][0].1.clone();
        r.realms.insert(
            "hosts".into(),
            vec![
                ("local".into(), local.clone()),
                ("people".into(), people.clone()),
            ],
        );
        r.realms.insert(
            "mixed".into(),
            vec![("people".into(), people), ("local".into(), local.clone())],
        );
        let quick = |login: &str, realm: &str| r.lookup_without_blocking(login, realm).unwrap();

        assert!(
            quick("carol", "hosts").is_none(),
            "nothing parsed yet: NSS decides"
        );
        let Resolver::Passwd { etc_passwd, .. } = &*local else {
            unreachable!()
        };
        etc_passwd.refresh(crate::clock::Clock::now(&crate::clock::SystemClock) + 10);
        let carol = quick("carol", "hosts").unwrap().unwrap();
        assert_eq!(
            (
                carol.host_uid,
                carol.user_id.as_str(),
                carol.resolver.as_str()
            ),
            (Some(1001), "uid 1001", "local")
        );
        let alice = quick("alice", "mixed").unwrap().unwrap();
        assert_eq!((alice.host_uid, alice.resolver.as_str()), (None, "people"));
        assert!(
            quick("nobody-here", "mixed").is_none(),
            "not in the flatfile nor /etc/passwd: LDAP behind NSS may know it"
        );
        assert!(
            matches!(quick("nobody-here", "flat"), Some(None)),
            "a flatfile knows"
        );
        assert!(matches!(quick("carol", "no-such-realm"), Some(None)));
        assert!(r.lookup_without_blocking("a/b", "hosts").is_err());
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
        let err = load("[realms.default]\nresolvers = [\"nope\"]\n")
            .err()
            .unwrap();
        let msg = crate::error::chain(&err).to_string();
        assert!(msg.contains("nope"), "{msg}");
    }
}
