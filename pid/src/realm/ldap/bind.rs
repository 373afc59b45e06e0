//! Binds: the service account's, which the search connection runs as, and a user's, which
//! checks the user's password on a connection of its own. Neither ever sends an empty password
//! (an unauthenticated bind, see the threats in `ldap`).

use super::connection::{Server, RC_INVALID_CREDENTIALS, RC_SUCCESS};
use super::error::LdapFailure;
use crate::config::{ConfigError, Key};
use protocol::Secret;
use std::fmt;

use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The service account that binds the search connection.
pub(super) struct ServiceBind {
    dn: String,
    password: Zeroizing<String>,
    file: PathBuf,
}

impl fmt::Debug for ServiceBind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceBind")
            .field("dn", &self.dn)
            .field("password", &"***")
            .field("file", &self.file)
            .finish()
    }
}

impl ServiceBind {
    /// The service account `dn` of resolver `name`, its password read from `file`.
    pub(super) fn read(name: &str, dn: &str, file: &Path) -> Result<ServiceBind, ConfigError> {
        Ok(ServiceBind {
            dn: dn.to_owned(),
            password: crate::secret_file::read_password(
                file,
                Key::resolver(name, Some("bind_password_file")),
            )?,
            file: file.to_path_buf(),
        })
    }

    /// Bind `conn` as the service account.
    pub(super) async fn bind(
        &self,
        conn: &mut ldap3::Ldap,
        server: &Server,
    ) -> Result<(), LdapFailure> {
        let result = conn
            .with_timeout(server.timeout)
            .simple_bind(&self.dn, &self.password)
            .await
            .map_err(|e| server.failure(e))?;
        let dn = self.dn.clone();
        match result.rc {
            RC_SUCCESS => Ok(()),
            RC_INVALID_CREDENTIALS => Err(LdapFailure::ServiceRefused {
                dn,
                file: self.file.clone(),
            }),
            _ => Err(LdapFailure::ServiceBind { dn, result }),
        }
    }
}

/// Bind as `dn` on a connection of its own, then drop that connection: whether `password` is
/// the entry's password. `Err` when the server cannot tell.
pub(super) async fn bind_as_user(
    server: &Server,
    dn: &str,
    password: &Secret,
) -> Result<bool, LdapFailure> {
    if password.is_empty() {
        return Ok(false);
    }
    let mut conn = server.connect().await?;
    let res = conn
        .with_timeout(server.timeout)
        .simple_bind(dn, password.expose())
        .await
        .map_err(|e| server.failure(e));
    let _ = conn.with_timeout(server.timeout).unbind().await;
    let result = res?;
    match result.rc {
        RC_SUCCESS => Ok(true),
        RC_INVALID_CREDENTIALS => Ok(false),
        _ => Err(LdapFailure::UserBind {
            dn: dn.to_owned(),
            result,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn password_file(mode: u32, content: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bind.pw");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(content.as_bytes()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        (dir, path)
    }

    fn read(path: &Path) -> Result<ServiceBind, ConfigError> {
        ServiceBind::read("dir", "cn=pi,dc=pi,dc=test", path)
    }

    #[test]
    fn a_group_or_world_readable_bind_password_file_is_refused_with_the_chmod_that_fixes_it() {
        let (_d, path) = password_file(0o644, "s3cret\n");
        let msg = read(&path).unwrap_err().to_string();
        assert!(
            msg.contains(&format!("chmod 0600 {}", path.display())),
            "{msg}"
        );
        assert!(!msg.contains("s3cret"), "{msg}");
    }

    #[test]
    fn an_empty_bind_password_file_is_refused() {
        let (_d, path) = password_file(0o600, "\n");
        let msg = read(&path).unwrap_err().to_string();
        assert!(msg.contains("is empty"), "{msg}");
    }

    #[test]
    fn the_password_is_the_line_without_its_newline_and_debug_never_shows_it() {
        let (_d, path) = password_file(0o600, "s3cret-bind-pw\n");
        let bind = read(&path).unwrap();
        assert_eq!(bind.password.as_str(), "s3cret-bind-pw");
        let shown = format!("{bind:?}");
        assert!(!shown.contains("s3cret-bind-pw"), "{shown}");
        assert!(shown.contains("cn=pi,dc=pi,dc=test"), "{shown}");
    }
}
