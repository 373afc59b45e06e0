//! Who is on the other end of the socket: taken from SO_PEERCRED, never from the request.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The peer's effective uid: what the request may do is decided by it.
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
    /// uid 0, or a member of `admin_group` (primary or supplementary).
    pub is_admin: bool,
    /// Who the request is charged to: connection and session quotas, rate limits, the audit
    /// budget, fail counters per source. See `account_of`.
    pub account: u32,
}

/// The account of a peer whose process could not be looked at (it exited between `connect` and
/// our look): never root's, and never any real user's.
pub const UNKNOWN_ACCOUNT: u32 = u32::MAX;

impl Caller {
    /// Resolve admin rights once per connection; `account` from `account_of`. Blocking (NSS):
    /// unless `identify_at_once` answers, call from `spawn_blocking`.
    pub fn identify(uid: u32, gid: u32, pid: i32, account: u32, admin_group: &str) -> Caller {
        let is_admin = uid == 0 || in_group(uid, gid, admin_group);
        Caller {
            uid,
            gid,
            pid,
            is_admin,
            account,
        }
    }

    /// Whether the request comes from root itself (sshd, login, a root shell) rather than from
    /// an account that merely runs a set-uid root program (su, sudo).
    pub fn is_root_account(&self) -> bool {
        self.account == 0
    }

    /// The caller, when that needs no group lookup: root (an administrator by definition; every
    /// PAM login comes from a root process: sshd, sudo, su) or no `admin_group` configured.
    pub fn identify_at_once(
        uid: u32,
        gid: u32,
        pid: i32,
        account: u32,
        admin_group: &str,
    ) -> Option<Caller> {
        (uid == 0 || admin_group.is_empty())
            .then(|| Caller::identify(uid, gid, pid, account, admin_group))
    }
}

/// Who a request is charged to. A non-root peer is its own uid. A root peer is the *real* uid of
/// its process: `su` and `sudo` run as root (effective uid 0) for whoever started them, and
/// without this any local account could take root's share of the daemon by starting a few
/// hundred `su` prompts. sshd, login and a root shell have real uid 0.
///
/// Read from `/proc/PID/status` right after `accept`. A process that is gone by then (it
/// connected and exited, leaving the socket to a child) is `UNKNOWN_ACCOUNT`: charged like a
/// non-root caller. (A pid recycled in that instant to another root process would be charged
/// to that process's real uid; the window is the time between `connect` and `accept`.)
pub fn account_of(euid: u32, pid: i32) -> u32 {
    if euid != 0 {
        return euid;
    }
    if pid <= 0 {
        return UNKNOWN_ACCOUNT;
    }
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| real_uid(&status))
        .unwrap_or(UNKNOWN_ACCOUNT)
}

/// The real uid from a `/proc/PID/status` text (`Uid:\treal\teffective\tsaved\tfs`).
fn real_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .and_then(|real| real.parse().ok())
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
        let root = Caller::identify_at_once(0, 0, 1, 0, "pi-admin").unwrap();
        assert!(root.is_admin);
        let nobody = Caller::identify_at_once(65534, 65534, 2, 65534, "").unwrap();
        assert!(
            !nobody.is_admin,
            "without an admin group only root administers"
        );
        assert_eq!(
            Caller::identify_at_once(65534, 65534, 3, 65534, "pi-admin"),
            None,
            "group membership comes from NSS, off the executor"
        );
    }

    #[test]
    fn a_root_peer_is_charged_to_the_real_uid_of_its_process() {
        // This test process: its real uid is whoever runs the tests.
        let me = nix::unistd::getuid().as_raw();
        let pid = std::process::id() as i32;
        assert_eq!(account_of(0, pid), me);
        assert_eq!(
            account_of(1234, pid),
            1234,
            "a non-root peer is its own uid"
        );
        assert_eq!(account_of(0, 0), UNKNOWN_ACCOUNT, "no process to look at");
        assert_eq!(
            real_uid("Name:\tsu\nUid:\t1004\t0\t0\t0\nGid:\t1004\t1004\t1004\t1004\n"),
            Some(1004),
            "su started by uid 1004 runs with effective uid 0"
        );
        assert_eq!(real_uid("Name:\tgone\n"), None);
    }
}
