//! The `passwd` resolver's table: the host's accounts through NSS, their passwords checked by
//! running a PAM service of the administrator's choosing (see `pam_service`).

use super::pam_service::{inspect_service_file, ServiceProblem};
use crate::config::{ConfigError, Key};
use serde::{Deserialize, Serialize};

/// The PAM service a `passwd` resolver runs when none is configured.
pub const DEFAULT_PAM_SERVICE: &str = "pi-userstore";

/// A `[resolvers.NAME]` table of `type = "passwd"`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswdConfig {
    /// The PAM service the daemon runs to check a user's password (`otppin = "userstore"`,
    /// `passthru`); default `pi-userstore`. It must not use pam_pi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pam_service: Option<String>,
}

impl PasswdConfig {
    /// Check the table of resolver `name` as written.
    pub fn validate(&self, name: &str) -> Result<(), ConfigError> {
        match &self.pam_service {
            Some(s) => crate::users::validate_name("PAM service", s).map_err(|e| {
                ConfigError::new(Some(Key::resolver(name, Some("pam_service"))), e.into())
            }),
            None => Ok(()),
        }
    }

    /// The PAM service to run, once its file is looked at. A service that loads pam_pi would
    /// recurse into pi on every password check: refused. Anything else only matters once a
    /// policy checks passwords, which most hosts never do: a warning.
    pub fn pam_service(&self, name: &str) -> Result<String, ConfigError> {
        let pam_service = self
            .pam_service
            .clone()
            .unwrap_or_else(|| DEFAULT_PAM_SERVICE.to_owned());
        match inspect_service_file(&pam_service) {
            Ok(()) => {}
            Err(problem @ ServiceProblem::LoadsPamPi(_)) => {
                return Err(ConfigError::new(
                    Some(Key::resolver(name, None)),
                    problem.into(),
                ))
            }
            Err(problem) => tracing::warn!("resolvers.{name}: {problem}"),
        }
        Ok(pam_service)
    }
}
