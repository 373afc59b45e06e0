//! ssh: which keys sshd's AuthorizedKeysCommand gets for a login (privacyIDEA's ssh
//! application, `pictl ssh keys`). Only keys of usable sshkey tokens attached for exactly that
//! login: a disabled, revoked, locked or expired token, or a key attached for another login,
//! lets nobody in.

use super::DEFAULT_SSH_USER;
use crate::store::machines::Attachment;
use crate::store::TokenRecord;
use protocol::TokenType;

/// Whether the attachment lets `login` in with `token`'s key at `now`.
pub fn grants(att: &Attachment, token: &TokenRecord, login: &str, now: i64) -> bool {
    let for_login = att.rec.options.user.as_deref().unwrap_or(DEFAULT_SSH_USER);
    token.token_type == TokenType::Sshkey
        && token.serial == att.serial
        && for_login == login
        && token.active
        && !token.revoked
        && !token.locked
        && token.validity_start.is_none_or(|s| now >= s)
        && token.validity_end.is_none_or(|e| now <= e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::machines::{MachineRecord, MACHINE_SCHEMA};
    use crate::tokens::hotp::tests::record;
    use protocol::{HashAlgorithm, MachineApp, MachineOptions};

    fn att(user: Option<&str>) -> Attachment {
        Attachment {
            app: MachineApp::Ssh,
            host: "h".into(),
            serial: "SSHK1".into(),
            rec: MachineRecord {
                schema: MACHINE_SCHEMA,
                options: MachineOptions {
                    user: user.map(Into::into),
                    ..Default::default()
                },
                created: 0,
            },
        }
    }

    fn key() -> TokenRecord {
        let mut r = record(TokenType::Sshkey, 0, HashAlgorithm::Sha1);
        r.serial = "SSHK1".into();
        r
    }

    #[test]
    fn only_the_attached_login_gets_the_key() {
        assert!(grants(&att(Some("alice")), &key(), "alice", 10));
        assert!(!grants(&att(Some("alice")), &key(), "root", 10));
        assert!(grants(&att(None), &key(), "root", 10));
    }

    #[test]
    fn unusable_tokens_grant_nothing() {
        let a = att(None);
        let mut t = key();
        t.active = false;
        assert!(!grants(&a, &t, "root", 10));
        let mut t = key();
        t.revoked = true;
        assert!(!grants(&a, &t, "root", 10));
        let mut t = key();
        t.validity_end = Some(5);
        assert!(!grants(&a, &t, "root", 10));
        let mut t = key();
        t.validity_start = Some(20);
        assert!(!grants(&a, &t, "root", 10));
        let mut t = key();
        t.token_type = TokenType::Totp;
        assert!(!grants(&a, &t, "root", 10));
    }
}
