//! sshkey (privacyIDEA's `sshkey`): an SSH public key that sshd's AuthorizedKeysCommand gets
//! from `pictl ssh keys` while the token is attached to the host for the `ssh` application.
//! It is never a login factor through PAM (`for_login` is false): a key is something sshd
//! checks, not something a user types.
//!
//! Threats: a key line that smuggles a second line (or authorized_keys options such as
//! `command=`) into sshd's answer; weak keys (DSA, RSA under 2048 bits); a stored key swapped
//! for another. The line is parsed by the `ssh-key` crate and stored re-encoded (type, base64,
//! comment of printable characters only); it is sealed like every token secret, so the AEAD tag
//! bound to the serial is the integrity check privacyIDEA keeps as a separate checksum.

use super::{EnrollBase, EnrollError, Material, OtpAlgorithm};
use protocol::EnrollRequest;
use ssh_key::{Algorithm, HashAlg, PublicKey};
use zeroize::Zeroizing;

/// Longer than any real public key line (RSA-16384 is ~2,800 characters).
const MAX_LINE: usize = 8 * 1024;
const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 16_384;

pub struct Sshkey;

/// A validated public key, ready for `authorized_keys`.
pub struct ValidKey {
    key: PublicKey,
}

impl ValidKey {
    /// Parse and check one OpenSSH public key line; `Err` says what is wrong and what to give.
    pub fn parse(line: &str) -> Result<ValidKey, EnrollError> {
        let line = line.trim();
        if line.contains("PRIVATE KEY") {
            // Never echoed back: the refusal must not copy the secret into logs or terminals.
            return Err(
                "this is a private key: give the public key (the .pub file) and keep \
                        the private key where it is"
                    .into(),
            );
        }
        if line.is_empty() {
            return Err("the SSH key is empty: give the contents of a .pub file".into());
        }
        if line.len() > MAX_LINE {
            return Err(EnrollError::refused(format!(
                "the SSH key line is longer than {MAX_LINE} characters; give one public key"
            )));
        }
        if line.contains(['\n', '\r']) {
            return Err("give exactly one SSH public key (one line), not several".into());
        }
        let key = PublicKey::from_openssh(line).map_err(EnrollError::SshKey)?;
        match key.algorithm() {
            Algorithm::Ed25519 | Algorithm::SkEd25519 | Algorithm::SkEcdsaSha2NistP256 => {}
            Algorithm::Ecdsa { .. } => {}
            Algorithm::Rsa { .. } => {
                let bits = rsa_bits(&key).ok_or("the RSA key's modulus is damaged")?;
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    return Err(EnrollError::refused(format!(
                        "an RSA key of {bits} bits is refused: use at least {MIN_RSA_BITS} bits \
                         (or better an ed25519 key: ssh-keygen -t ed25519)"
                    )));
                }
            }
            Algorithm::Dsa => {
                return Err(
                    "DSA keys are refused (OpenSSH disabled them as too weak): use \
                            ssh-keygen -t ed25519"
                        .into(),
                )
            }
            other => {
                return Err(EnrollError::refused(format!(
                    "SSH keys of type {} are not supported; use ed25519, ecdsa, rsa (at least \
                     2048 bits), sk-ssh-ed25519 or sk-ecdsa",
                    other.as_str()
                )))
            }
        }
        if key.comment().chars().any(char::is_control) {
            return Err("the SSH key's comment contains control characters".into());
        }
        Ok(ValidKey { key })
    }

    /// `type base64 comment`, as sshd reads it.
    pub fn line(&self) -> Result<String, EnrollError> {
        self.key.to_openssh().map_err(EnrollError::SshKeyEncoding)
    }

    /// `SHA256:…`, exactly as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }
}

/// Bits of an RSA modulus (its mpint without leading zero bytes).
fn rsa_bits(key: &PublicKey) -> Option<usize> {
    let n = key.key_data().rsa()?.n.as_bytes();
    let first = n.iter().position(|&b| b != 0)?;
    Some((n.len() - first) * 8 - n[first].leading_zeros() as usize)
}

impl OtpAlgorithm for Sshkey {
    fn serial_prefix(&self) -> &'static str {
        "SSHK"
    }

    fn enroll(&self, spec: &EnrollRequest, _base: EnrollBase) -> Result<Material, EnrollError> {
        if spec.otpkey.is_some() || spec.pin.is_some() || spec.digits.is_some() {
            return Err(
                "an sshkey token holds a public key only: leave out --otpkey, --pin \
                        and --digits"
                    .into(),
            );
        }
        let line = spec
            .sshkey
            .as_deref()
            .ok_or("give the public key: --sshkey 'ssh-ed25519 AAAA… comment' or --sshkey-file")?;
        let key = ValidKey::parse(line)?;
        Ok(Material::without_otp(Zeroizing::new(
            key.line()?.into_bytes(),
        )))
    }

    fn standard_digits(&self) -> bool {
        false
    }

    fn for_login(&self) -> bool {
        false
    }

    fn has_details(&self) -> bool {
        true
    }

    fn details(&self, material: &[u8]) -> Vec<(String, String)> {
        let Some(key) = std::str::from_utf8(material)
            .ok()
            .and_then(|l| ValidKey::parse(l).ok())
        else {
            return vec![("ssh key".into(), "damaged".into())];
        };
        let mut out = vec![
            ("key type".into(), key.key.algorithm().as_str().to_owned()),
            ("fingerprint".into(), key.fingerprint()),
        ];
        if let Some(bits) = rsa_bits(&key.key) {
            out.push(("bits".into(), bits.to_string()));
        }
        if !key.key.comment().is_empty() {
            out.push(("comment".into(), key.key.comment().to_owned()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `ssh-keygen -t ed25519 -C test@pi` (OpenSSH 9.2); fingerprint from `ssh-keygen -lf`.
    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDdTLW29cPwskm6rab6rRQyxyOkpZgO/IVrgV5dICtJJ test@pi";

    #[test]
    fn an_ed25519_key_is_accepted_and_re_encoded() {
        let k = ValidKey::parse(&format!("  {ED25519}\n")).unwrap();
        assert_eq!(k.line().unwrap(), ED25519);
        assert_eq!(
            k.fingerprint(),
            "SHA256:r7poyH+Ql7iXdLLkAv18U5bbgDwsBeWKyjZCFGEKH+k"
        );
    }

    #[test]
    fn a_second_line_or_options_are_refused() {
        assert!(ValidKey::parse(&format!("{ED25519}\n{ED25519}")).is_err());
        assert!(ValidKey::parse(&format!("command=\"/bin/sh\" {ED25519}")).is_err());
        assert!(ValidKey::parse("").is_err());
        assert!(ValidKey::parse("ssh-ed25519 notbase64!").is_err());
        assert!(ValidKey::parse(&"A".repeat(MAX_LINE + 1)).is_err());
    }

    #[test]
    fn a_line_that_does_not_parse_keeps_the_parsers_reason() {
        let err = ValidKey::parse("ssh-ed25519 notbase64!").err().unwrap();
        assert!(matches!(err, EnrollError::SshKey(_)), "{err:?}");
        let shown = crate::error::chain(&err).to_string();
        assert!(
            shown.starts_with("not an OpenSSH public key; give a line like")
                && shown.len() > err.to_string().len(),
            "{shown}"
        );
    }

    #[test]
    fn a_private_key_is_refused_without_being_echoed() {
        let private = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----";
        let err = ValidKey::parse(private).err().unwrap().to_string();
        assert!(
            err.contains("private key") && !err.contains("b3BlbnNz"),
            "{err}"
        );
    }

    #[test]
    fn dsa_keys_are_refused_by_name() {
        // A syntactically valid ssh-dss key (p, q, g, y of 1024/160 bits).
        let dsa = "ssh-dss AAAAB3NzaC1kc3MAAACBAP1/U4EddRIpUt9KnC7s5Of2EbdSPO9EAMMeP4C2USZpRV1AIlH7WT2NWPq/xfW6MPbLm1Vs14E7gB00b/JmYLdrmVClpJ+f6AR7ECLCT7up1/63xhv4O1fnxqimFQ8E+4P208UewwI1VBNaFpEy9nXzrith1yrv8iIDGZ3RSAHHAAAAFQCXYFCPFSMLzLKSuYKi64QL8Fgc9QAAAIEA9+GghdabPd7LvKtcNrhXuXmUr7v6OuqC+VdMCz0HgmdRWVeOutRZT+ZxBxCBgLRJFnEj6EwoFhO3zwkyjMim4TwWeotUfI0o4KOuHiuzpnWRbqN/C/ohNWLx+2J6ASQ7zKTxvqhRkImog9/hWuWfBpKLZl6Ae1UlZAFMO/7PSSoAAACBAPJRJbKL/+pv5Ar5dB2pUvwU6kjZmUvKXMLhmv2tI7tFOjXUm+Eiq5s7mWV3Ld4lF+RJtL/7cFJbnKlDTlLKbwr9nEYeMiEwdl8rZ6oeSNy6dO1ux7pJk1ZA06pv+TdaXoTs7ynFvpT4Ie+0LFp1hYYjESmXchr4Z9EcpbsLckx8 old@box";
        let err = ValidKey::parse(dsa).err().unwrap().to_string();
        assert!(err.contains("DSA"), "{err}");
    }
}
