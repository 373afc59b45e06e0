//! privacyIDEA's `mangle`: policies that rewrite the user name, the realm and what the user
//! typed before anything else sees them (e.g. strip a domain suffix, or a prefix a client adds).

use super::Login;
use crate::policy::{self, MangleKey};
use crate::Live;
use protocol::{AuthBegin, Secret};

/// The login and realm after `mangle`: the rewrites chosen for the name as typed apply to the
/// name (then split again into login and realm) and to the realm.
pub(super) fn user(live: &Live, req: &AuthBegin, now: i64) -> (String, String) {
    let (login, realm) = live.realms.split(&req.user, None);
    let ctx = policy::Context {
        realm,
        resolver: None,
        login,
        service: &req.service,
        rhost: req.rhost.as_deref(),
        now: Some(now),
        admin_groups: &[],
    };
    let mangles = live.policies.mangles(&ctx);
    if mangles.is_empty() {
        return (login.to_owned(), realm.to_owned());
    }
    let user = mangles
        .iter()
        .fold(req.user.clone(), |u, m| m.apply(MangleKey::User, &u));
    let (login, realm) = live.realms.split(&user, None);
    let realm = mangles
        .iter()
        .fold(realm.to_owned(), |r, m| m.apply(MangleKey::Realm, &r));
    (login.to_owned(), realm)
}

/// What the user typed after the rewrites of `pass` chosen for this login. The intermediate
/// texts are wiped like the answer itself.
pub(super) fn pass(live: &Live, login: &Login, pass: Secret) -> Secret {
    let mangles = live.policies.mangles(&login.context());
    if !mangles.iter().any(|m| m.key == MangleKey::Pass) {
        return pass;
    }
    let rewritten = mangles
        .iter()
        .fold(zeroize::Zeroizing::new(pass.expose().to_owned()), |p, m| {
            zeroize::Zeroizing::new(m.apply(MangleKey::Pass, &p))
        });
    Secret::new(rewritten.as_str())
}
