//! TLS client settings for the servers the daemon talks to (an LDAP directory, a privacyIDEA
//! server): the CA file the operator names, or the system's trust store. Certificates are
//! always verified; there is no setting that turns it off.

use crate::config::{ConfigError, Key, Reason};
use rustls::pki_types::{pem::PemObject, CertificateDer};
use std::path::Path;
use std::sync::Arc;

/// Client settings trusting the certificates in `ca_file` (PEM), or the system's trust store
/// when it is `None`. `key` is the setting problems are reported against.
pub fn client_config(
    ca_file: Option<&Path>,
    key: Key,
) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|source| {
                    let path = path.to_path_buf();
                    ConfigError::new(Some(key.clone()), Reason::Pem { path, source })
                })?;
            if certs.is_empty() {
                return Err(ConfigError::invalid(
                    key,
                    format!(
                        "{} holds no PEM certificate; it must hold the CA certificate(s) in PEM \
                         (-----BEGIN CERTIFICATE-----)",
                        path.display()
                    ),
                ));
            }
            for cert in certs {
                roots.add(cert).map_err(|source| {
                    let path = path.to_path_buf();
                    ConfigError::new(Some(key.clone()), Reason::Certificate { path, source })
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(ConfigError::invalid(
                    key,
                    "the system trust store has no CA certificates (apt-get install \
                     ca-certificates); or set ca_file to the CA that signed the server's \
                     certificate",
                ));
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|source| ConfigError::new(Some(key), Reason::Tls(source)))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused_with_the_setting_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let e = client_config(Some(&path), Key::upstream("corp", Some("ca_file"))).unwrap_err();
        let msg = crate::error::chain(&e).to_string();
        assert!(
            msg.contains("upstream.corp.ca_file") && msg.contains("PEM"),
            "{msg}"
        );
        let missing = dir.path().join("missing.pem");
        let e = client_config(Some(&missing), Key::upstream("corp", Some("ca_file"))).unwrap_err();
        assert!(crate::error::chain(&e).to_string().contains("missing.pem"));
    }
}
