//! When a policy applies: the conditions it states (realm, resolver, user, PAM service, remote
//! host, admin group, time of the week), matched against the login or request at hand. An
//! absent condition matches everything.

use super::action::Scope;
use super::config::PolicyConfig;
use super::error::PolicyError;
use super::time::{in_time_ranges, parse_time_ranges, TimeRange};
use crate::config::{ConfigError, Key, Reason};
use crate::store::Owner;
use std::net::IpAddr;

/// What a policy is matched against.
#[derive(Clone, Debug, Default)]
pub struct Context<'a> {
    pub realm: &'a str,
    /// None when the user was not found.
    pub resolver: Option<&'a str>,
    pub login: &'a str,
    pub service: &'a str,
    pub rhost: Option<&'a str>,
    /// Unix seconds of the request; a policy with a `time` condition needs it to apply.
    pub now: Option<i64>,
    /// Admin scope: the groups named by admin policies that the caller belongs to.
    pub admin_groups: &'a [String],
}

impl<'a> Context<'a> {
    /// A token owner's context at `now` (`None`: an unassigned token): enrollment, user and
    /// admin policies match the owner's realm and login.
    pub fn of_owner(owner: Option<&'a Owner>, now: i64) -> Context<'a> {
        Context {
            realm: owner.map_or("", |o| o.realm.as_str()),
            login: owner.map_or("", |o| o.login.as_str()),
            now: Some(now),
            ..Context::default()
        }
    }
}

/// A policy's conditions, parsed.
pub(super) struct Conditions {
    pub(super) realm: Vec<String>,
    pub(super) resolver: Vec<String>,
    pub(super) user: Vec<String>,
    pub(super) service: Vec<String>,
    rhost: Vec<(IpAddr, u8)>,
    pub(super) admin_group: Vec<String>,
    time: Vec<TimeRange>,
}

impl Conditions {
    /// The conditions of `c`, checked: every realm and resolver it names is one of those
    /// declared (`realms`, `resolvers`), so a typo is an error instead of a rule that never
    /// applies; every condition belongs to the policy's scope. `Err` says what is wrong, and
    /// names the condition.
    pub(super) fn parse(
        c: &PolicyConfig,
        realms: &[&str],
        resolvers: &[&str],
    ) -> Result<Conditions, ConfigError> {
        let refuse = |at: &str, why| {
            let key = Key::policy(&c.name, Some(at));
            Err(ConfigError::new(Some(key), Reason::Policy(why)))
        };
        for r in &c.realm {
            if !realms.contains(&r.as_str()) {
                return refuse("realm", PolicyError::UnknownRealm(r.clone()));
            }
        }
        for r in &c.resolver {
            if !resolvers.contains(&r.as_str()) {
                return refuse("resolver", PolicyError::UnknownResolver(r.clone()));
            }
        }
        let mut rhost = Vec::with_capacity(c.rhost.len());
        for r in &c.rhost {
            match parse_net(r) {
                Some(net) => rhost.push(net),
                None => return refuse("rhost", PolicyError::NotANetwork(r.clone())),
            }
        }
        if c.scope != Scope::Authentication && !(c.service.is_empty() && c.rhost.is_empty()) {
            let at = if c.service.is_empty() {
                "rhost"
            } else {
                "service"
            };
            return refuse(at, PolicyError::LoginCondition);
        }
        if c.scope != Scope::Admin && !c.admin_group.is_empty() {
            return refuse("admin_group", PolicyError::AdminGroup);
        }
        let time = match &c.time {
            Some(t) => match parse_time_ranges(t) {
                Ok(ranges) => ranges,
                Err(why) => return refuse("time", why),
            },
            None => Vec::new(),
        };
        Ok(Conditions {
            realm: c.realm.clone(),
            resolver: c.resolver.clone(),
            user: c.user.clone(),
            service: c.service.clone(),
            rhost,
            admin_group: c.admin_group.clone(),
            time,
        })
    }

    /// Whether every condition holds for `ctx`.
    pub(super) fn hold(&self, ctx: &Context<'_>) -> bool {
        let listed = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
        listed(&self.realm, ctx.realm)
            && (self.resolver.is_empty() || ctx.resolver.is_some_and(|r| listed(&self.resolver, r)))
            && listed(&self.user, ctx.login)
            && listed(&self.service, ctx.service)
            && (self.rhost.is_empty()
                || ctx
                    .rhost
                    .and_then(|r| r.parse::<IpAddr>().ok())
                    .is_some_and(|ip| self.rhost.iter().any(|net| in_net(ip, *net))))
            && (self.time.is_empty() || ctx.now.is_some_and(|t| in_time_ranges(&self.time, t)))
            && (self.admin_group.is_empty()
                || self
                    .admin_group
                    .iter()
                    .any(|g| ctx.admin_groups.contains(g)))
    }

    /// Conditions that cannot both hold: some dimension where both list values and the lists
    /// share none.
    pub(super) fn exclude(&self, other: &Conditions) -> bool {
        let apart = |x: &[String], y: &[String]| {
            !x.is_empty() && !y.is_empty() && !x.iter().any(|v| y.contains(v))
        };
        apart(&self.realm, &other.realm)
            || apart(&self.resolver, &other.resolver)
            || apart(&self.user, &other.user)
            || apart(&self.service, &other.service)
            || apart(&self.admin_group, &other.admin_group)
    }
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

    #[test]
    fn ipv6_ranges_match() {
        let net = parse_net("2001:db8::/32").unwrap();
        assert!(in_net("2001:db8::1".parse().unwrap(), net));
        assert!(!in_net("2001:db9::1".parse().unwrap(), net));
        assert!(!in_net("10.0.0.1".parse().unwrap(), net));
    }
}
