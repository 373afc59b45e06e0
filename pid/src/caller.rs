//! Who is on the other end of the socket: taken from SO_PEERCRED, never from the request.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
    /// uid 0, or a member of `admin_group` (primary or supplementary).
    pub is_admin: bool,
}

impl Caller {
    /// Resolve admin rights once per connection. Blocking (NSS): unless `identify_at_once`
    /// answers, call from `spawn_blocking`.
    pub fn identify(uid: u32, gid: u32, pid: i32, admin_group: &str) -> Caller {
        let is_admin = uid == 0 || in_group(uid, gid, admin_group);
        Caller {
            uid,
            gid,
            pid,
            is_admin,
        }
    }

    /// The caller, when that needs no group lookup: root (an administrator by definition; every
    /// PAM login comes from a root process: sshd, sudo, su) or no `admin_group` configured.
    pub fn identify_at_once(uid: u32, gid: u32, pid: i32, admin_group: &str) -> Option<Caller> {
        (uid == 0 || admin_group.is_empty()).then(|| Caller::identify(uid, gid, pid, admin_group))
    }
}

/// Whether the account `uid` (primary group `gid`) is a member of `group`. Blocking (NSS).
pub fn in_group(uid: u32, gid: u32, group: &str) -> bool {
    use nix::unistd::{Gid, Group, Uid, User};
    if group.is_empty() {
        return false;
    }
    let Ok(Some(group)) = Group::from_name(group) else {
        return false;
    };
    if group.gid.as_raw() == gid {
        return true;
    }
    let Ok(Some(user)) = User::from_uid(Uid::from_raw(uid)) else {
        return false;
    };
    if group.mem.contains(&user.name) {
        return true;
    }
    let Ok(name) = std::ffi::CString::new(user.name) else {
        return false;
    };
    nix::unistd::getgrouplist(&name, Gid::from_raw(gid))
        .map(|groups| groups.contains(&group.gid))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_callers_whose_rights_need_no_group_lookup_are_identified_at_once() {
        let root = Caller::identify_at_once(0, 0, 1, "pi-admin").unwrap();
        assert!(root.is_admin);
        let nobody = Caller::identify_at_once(65534, 65534, 2, "").unwrap();
        assert!(
            !nobody.is_admin,
            "without an admin group only root administers"
        );
        assert_eq!(
            Caller::identify_at_once(65534, 65534, 3, "pi-admin"),
            None,
            "group membership comes from NSS, off the executor"
        );
    }
}
