//! `pictl token enroll sshkey --yubikey-piv SLOT`: the public key of a Yubikey PIV slot as an
//! OpenSSH public key, so the key that never leaves the Yubikey logs in through sshd.
//!
//! The key is read from the slot's certificate with the `yubikey` crate. That crate reads a
//! slot's bare public key (the device's metadata command) only behind its `untested` feature,
//! which pi does not enable, so a slot without a certificate is refused with what to do.
//! [`openssh_from_spki`] is the pure conversion, tested against `ssh-keygen` below;
//! [`read_slot_key`] is the thin device side, which pi's tests cannot run (there is no device).

use crate::error::Error;
use pkcs1::der::Decode;
use spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};
use ssh_key::public::{EcdsaPublicKey, Ed25519PublicKey, KeyData, RsaPublicKey};
use ssh_key::{EcdsaCurve, Mpint, PublicKey};
use yubikey::certificate::Certificate;
use yubikey::piv::SlotId;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The smallest RSA key pi takes for SSH, as for `--sshkey`.
pub const MIN_RSA_BITS: usize = 2048;

/// The PIV slots that hold a user's keys: 9a authentication (what SSH uses), 9c signature,
/// 9d key management, 9e card authentication.
pub fn parse_slot(s: &str) -> Result<SlotId, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "9a" => Ok(SlotId::Authentication),
        "9c" => Ok(SlotId::Signature),
        "9d" => Ok(SlotId::KeyManagement),
        "9e" => Ok(SlotId::CardAuthentication),
        _ => Err("a PIV slot is 9a (authentication, what SSH uses), 9c, 9d or 9e".into()),
    }
}

/// The slot as ykman and yubico-piv-tool name it.
pub fn slot_name(slot: SlotId) -> String {
    format!("{:02x}", u8::from(slot))
}

/// Why a certificate's key is no SSH key pi takes.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("the certificate cannot be parsed as X.509 DER")]
    Certificate,
    #[error("its public key is malformed ({0})")]
    Malformed(&'static str),
    #[error("its RSA key has {0} bits; SSH keys need at least {MIN_RSA_BITS}")]
    RsaTooSmall(usize),
    #[error("its elliptic curve {0} is not P-256 or P-384")]
    Curve(String),
    #[error("its key algorithm {0} is not RSA, ECDSA or Ed25519")]
    Algorithm(String),
}

/// The OpenSSH public key line (`ssh-ed25519 AAAA… comment`) of a SubjectPublicKeyInfo.
pub fn openssh_from_spki(
    spki: SubjectPublicKeyInfoRef<'_>,
    comment: &str,
) -> Result<String, ConvertError> {
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or(ConvertError::Malformed("the key is not whole bytes"))?;
    let oid = spki.algorithm.oid;
    let data = if oid == ED25519 {
        let key: [u8; 32] = bits
            .try_into()
            .map_err(|_| ConvertError::Malformed("an Ed25519 key is 32 bytes"))?;
        KeyData::Ed25519(Ed25519PublicKey(key))
    } else if oid == EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters_oid()
            .map_err(|_| ConvertError::Malformed("no named curve"))?;
        let want = match curve {
            c if c == SECP256R1 => EcdsaCurve::NistP256,
            c if c == SECP384R1 => EcdsaCurve::NistP384,
            c => return Err(ConvertError::Curve(c.to_string())),
        };
        let key = EcdsaPublicKey::from_sec1_bytes(bits)
            .map_err(|_| ConvertError::Malformed("not a SEC1 point"))?;
        if key.curve() != want {
            return Err(ConvertError::Malformed(
                "the point does not lie on the named curve",
            ));
        }
        KeyData::Ecdsa(key)
    } else if oid == RSA_ENCRYPTION {
        let key = pkcs1::RsaPublicKey::from_der(bits)
            .map_err(|_| ConvertError::Malformed("not a PKCS#1 RSA key"))?;
        let n = key.modulus.as_bytes();
        let size = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
        if size < MIN_RSA_BITS {
            return Err(ConvertError::RsaTooSmall(size));
        }
        let malformed = |_| ConvertError::Malformed("an RSA number is not positive");
        KeyData::Rsa(RsaPublicKey {
            e: Mpint::from_positive_bytes(key.public_exponent.as_bytes()).map_err(malformed)?,
            n: Mpint::from_positive_bytes(n).map_err(malformed)?,
        })
    } else {
        return Err(ConvertError::Algorithm(oid.to_string()));
    };
    PublicKey::new(data, comment)
        .to_openssh()
        .map_err(|_| ConvertError::Malformed("it cannot be written as OpenSSH"))
}

/// The OpenSSH public key of a DER certificate's subject.
pub fn openssh_from_certificate(der: &[u8], comment: &str) -> Result<String, ConvertError> {
    let cert = Certificate::from_bytes(der.to_vec()).map_err(|_| ConvertError::Certificate)?;
    openssh_from_spki(cert.subject_pki(), comment)
}

/// The one Yubikey among the readers: several are refused, since the key enrolled must be the
/// one the user carries, and guessing could enroll someone else's.
pub fn only_yubikey(names: &[String]) -> Result<usize, String> {
    let found: Vec<usize> = (0..names.len())
        .filter(|&i| names[i].contains("Yubico"))
        .collect();
    match found[..] {
        [one] => Ok(one),
        [] => Err(format!(
            "no Yubikey found ({}): plug it in (its CCID interface must be enabled: `ykman \
             config usb --enable PIV`)",
            if names.is_empty() {
                "PC/SC sees no reader at all".to_owned()
            } else {
                format!("the readers are: {}", names.join(", "))
            }
        )),
        _ => {
            let listed: Vec<&str> = found.iter().map(|&i| names[i].as_str()).collect();
            Err(format!(
                "{} Yubikeys are plugged in ({}): unplug all but the one whose PIV key is \
                 enrolled",
                found.len(),
                listed.join(", ")
            ))
        }
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Failed(format!(
        "{what}: {e}; is pcscd running (`apt-get install pcscd`, `systemctl start \
         pcscd.socket`)? Or export the key (`ykman piv keys export 9a key.pem`, then \
         `ssh-keygen -i -m PKCS8 -f key.pem > key.pub`) and give --sshkey-file key.pub"
    ))
}

/// Read the certificate in `slot` of the one plugged-in Yubikey and convert its key.
pub fn read_slot_key(slot: SlotId) -> Result<String, Error> {
    let shown = slot_name(slot);
    let mut context =
        yubikey::reader::Context::open().map_err(|e| failed("cannot reach PC/SC", e))?;
    let readers: Vec<yubikey::reader::Reader<'_>> = match context.iter() {
        Ok(readers) => readers.collect(),
        Err(e) => return Err(failed("cannot list the smart card readers", e)),
    };
    let names: Vec<String> = readers.iter().map(|r| r.name().into_owned()).collect();
    let index = only_yubikey(&names).map_err(Error::Failed)?;
    let mut key = readers[index].open().map_err(|e| match e {
        yubikey::Error::AppletNotFound { .. } => Error::Failed(format!(
            "the key in {:?} has no PIV application: enable it with `ykman config usb \
             --enable PIV`",
            names[index]
        )),
        e => failed(
            &format!("cannot open the PIV application of {:?}", names[index]),
            e,
        ),
    })?;
    let serial = key.serial();
    let cert = Certificate::read(&mut key, slot).map_err(|e| match e {
        yubikey::Error::InvalidObject | yubikey::Error::NotFound => Error::Failed(format!(
            "PIV slot {shown} of the Yubikey {serial} holds no certificate, and pictl reads a \
             slot's key from its certificate: add one (`ykman piv certificates generate \
             --subject CN=ssh {shown} pubkey.pem`, with the key exported by `ykman piv keys \
             export {shown} pubkey.pem`), or give the exported key converted with `ssh-keygen \
             -i -m PKCS8 -f pubkey.pem` as --sshkey-file"
        )),
        e => failed(&format!("cannot read PIV slot {shown}"), e),
    })?;
    openssh_from_spki(cert.subject_pki(), &format!("yubikey-{serial}-piv-{shown}")).map_err(|e| {
        Error::Failed(format!(
            "the certificate in PIV slot {shown} of the Yubikey {serial}: {e}; put an \
                 RSA (2048 bits or more), P-256, P-384 or Ed25519 key there"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    fn run(cmd: &str, args: &[&str]) -> Vec<u8> {
        let out = Command::new(cmd).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// A self-signed DER certificate for a fresh key made by `genpkey ARGS`, and the path of
    /// its public key as PEM.
    fn certificate(dir: &Path, name: &str, genpkey: &[&str]) -> (Vec<u8>, String) {
        let key = dir.join(format!("{name}.key"));
        let cert = dir.join(format!("{name}.der"));
        let public = dir.join(format!("{name}.pub.pem"));
        let path = |p: &Path| p.to_str().unwrap().to_owned();
        let mut args = vec!["genpkey"];
        args.extend_from_slice(genpkey);
        let key_path = path(&key);
        args.extend_from_slice(&["-out", &key_path]);
        run("openssl", &args);
        run(
            "openssl",
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                &key_path,
                "-subj",
                "/CN=ssh",
                "-days",
                "1",
                "-outform",
                "DER",
                "-out",
                &path(&cert),
            ],
        );
        run(
            "openssl",
            &["pkey", "-in", &key_path, "-pubout", "-out", &path(&public)],
        );
        (std::fs::read(&cert).unwrap(), path(&public))
    }

    /// What `ssh-keygen -i -m PKCS8` makes of a PEM public key: the type and base64.
    fn ssh_keygen_import(public: &str) -> String {
        let ssh = run("ssh-keygen", &["-i", "-m", "PKCS8", "-f", public]);
        String::from_utf8(ssh).unwrap().trim().to_owned()
    }

    /// `ssh-keygen -l` of an OpenSSH public key line: its bits, fingerprint and type.
    fn ssh_keygen_fingerprint(dir: &Path, line: &str) -> String {
        let file = dir.join("fingerprint.pub");
        std::fs::write(&file, format!("{line}\n")).unwrap();
        let out = run("ssh-keygen", &["-l", "-f", file.to_str().unwrap()]);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn certificate_keys_convert_as_ssh_keygen_converts_them() {
        let dir = tempfile::tempdir().unwrap();
        for (name, genpkey, prefix) in [
            (
                "p256",
                &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"][..],
                "ecdsa-sha2-nistp256 ",
            ),
            (
                "p384",
                &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
                "ecdsa-sha2-nistp384 ",
            ),
            (
                "rsa2048",
                &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
                "ssh-rsa ",
            ),
            (
                "rsa3072e3",
                &[
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:3072",
                    "-pkeyopt",
                    "rsa_keygen_pubexp:3",
                ],
                "ssh-rsa ",
            ),
        ] {
            let (der, public) = certificate(dir.path(), name, genpkey);
            let got = openssh_from_certificate(&der, "yubikey-1-piv-9a").unwrap();
            let expected = ssh_keygen_import(&public);
            assert_eq!(got, format!("{expected} yubikey-1-piv-9a"), "{name}");
            assert!(got.starts_with(prefix), "{name}: {got}");
        }
    }

    #[test]
    fn ed25519_certificate_keys_are_the_raw_key_in_the_openssh_blob() {
        // Debian 12's ssh-keygen imports no Ed25519 PKCS#8 key, so the expected line is built
        // from the raw key openssl prints (RFC 8709's blob), and ssh-keygen reads ours back.
        let dir = tempfile::tempdir().unwrap();
        let (der, public) = certificate(dir.path(), "ed25519", &["-algorithm", "ed25519"]);
        let spki = run(
            "openssl",
            &["pkey", "-pubin", "-in", &public, "-outform", "DER"],
        );
        let raw = &spki[spki.len() - 32..];
        let mut blob = Vec::new();
        for field in [&b"ssh-ed25519"[..], raw] {
            blob.extend_from_slice(&(field.len() as u32).to_be_bytes());
            blob.extend_from_slice(field);
        }
        let expected = format!(
            "ssh-ed25519 {} yubikey-1-piv-9a",
            data_encoding::BASE64.encode(&blob)
        );
        let got = openssh_from_certificate(&der, "yubikey-1-piv-9a").unwrap();
        assert_eq!(got, expected);
        let listed = ssh_keygen_fingerprint(dir.path(), &got);
        assert!(
            listed.starts_with("256 SHA256:") && listed.trim_end().ends_with("(ED25519)"),
            "{listed}"
        );
    }

    #[test]
    fn small_rsa_keys_and_other_curves_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (der, _) = certificate(
            dir.path(),
            "rsa1024",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
        );
        assert_eq!(
            openssh_from_certificate(&der, "c"),
            Err(ConvertError::RsaTooSmall(1024))
        );
        let (der, _) = certificate(
            dir.path(),
            "p521",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
        );
        assert_eq!(
            openssh_from_certificate(&der, "c"),
            Err(ConvertError::Curve("1.3.132.0.35".into()))
        );
    }

    #[test]
    fn garbage_is_no_certificate() {
        assert_eq!(
            openssh_from_certificate(b"\x30\x03\x02\x01\x01", "c"),
            Err(ConvertError::Certificate)
        );
        assert_eq!(
            openssh_from_certificate(b"", "c"),
            Err(ConvertError::Certificate)
        );
    }

    #[test]
    fn piv_slots_are_9a_9c_9d_9e() {
        assert_eq!(parse_slot("9a"), Ok(SlotId::Authentication));
        assert_eq!(parse_slot("9C"), Ok(SlotId::Signature));
        assert_eq!(parse_slot("9d"), Ok(SlotId::KeyManagement));
        assert_eq!(parse_slot("9e"), Ok(SlotId::CardAuthentication));
        assert!(parse_slot("82").is_err());
        assert!(parse_slot("f9").is_err());
        assert_eq!(slot_name(SlotId::Authentication), "9a");
    }

    #[test]
    fn exactly_one_yubikey_is_read() {
        let names = [
            "Alcor Micro AU9540 00 00".to_owned(),
            "Yubico YubiKey OTP+FIDO+CCID 01 00".to_owned(),
        ];
        assert_eq!(only_yubikey(&names), Ok(1));
        let err = only_yubikey(&names[..1]).unwrap_err();
        assert!(err.contains("Alcor") && err.contains("PIV"), "{err}");
        let two = [names[1].clone(), names[1].replace("01 00", "02 00")];
        let err = only_yubikey(&two).unwrap_err();
        assert!(
            err.starts_with("2 Yubikeys") && err.contains("unplug"),
            "{err}"
        );
    }
}
