//! PSKC (RFC 6030), the XML format token vendors ship keys in: HOTP and TOTP keys, their secrets
//! in plain text or encrypted (xmlenc AES-CBC) under a pre-shared key or a key derived from a
//! password (PBKDF2), each encrypted value authenticated by a MAC.
//!
//! Threats: a file crafted to exhaust memory or CPU (it is bounded in size before parsing; DTDs
//! are refused, so no entity is ever expanded; PBKDF2's iteration count is bounded), a file
//! changed on its way (every encrypted value's MAC is checked, in constant time, before the
//! value is used; an encrypted value without a MAC is refused), and a wrong key or password
//! (it fails the same MAC check, so nothing wrong is ever imported). Decrypted secrets live in
//! zeroized buffers; messages name the key package and element, never a value.

use super::Parsed;
use aes::cipher::{BlockDecryptMut, KeyIvInit};
use data_encoding::BASE64;
use hmac::{Hmac, Mac};
use protocol::{HashAlgorithm, ImportedToken, Secret, TokenType, UserRef};
use roxmltree::{Document, Node, ParsingOptions};
use zeroize::Zeroizing;

const PSKC_NS: &str = "urn:ietf:params:xml:ns:keyprov:pskc";
const HOTP: &str = "urn:ietf:params:xml:ns:keyprov:pskc:hotp";
const TOTP: &str = "urn:ietf:params:xml:ns:keyprov:pskc:totp";
const PBKDF2: &str = "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2";
const AES_CBC: [(&str, usize); 3] = [
    ("http://www.w3.org/2001/04/xmlenc#aes128-cbc", 16),
    ("http://www.w3.org/2001/04/xmlenc#aes192-cbc", 24),
    ("http://www.w3.org/2001/04/xmlenc#aes256-cbc", 32),
];
const HMAC_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#hmac-sha1";
const HMAC_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256";
/// PBKDF2 costs a guesser and pictl alike; a file cannot make pictl spend minutes.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// The largest file read: a vendor's file of ten thousand keys is a few MiB.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Why a MAC does not match or a value does not decrypt, as far as anyone can tell.
const WRONG_KEY: &str = "a wrong key or password, or the file was changed";
/// Longest secret accepted (bytes): 64 is what HMAC-SHA512 keys need, with room to spare.
const MAX_SECRET_BYTES: usize = 128;

/// What decrypts the file's encrypted values.
pub enum Decryption {
    /// No key given: only plain values can be read.
    None,
    /// The pre-shared key (`EncryptionKey/KeyName`), raw bytes.
    Key(Zeroizing<Vec<u8>>),
    /// The password a `DerivedKey` (PBKDF2) comes from.
    Password(Secret),
}

/// Who the keys belong to when the file does not say (`--user`), and their realm.
pub struct Owner<'a> {
    pub user: Option<&'a str>,
    pub realm: Option<&'a str>,
    /// Keys without a UserId go into a pool (`--pool`): their tokens get an empty login.
    pub pool: bool,
}

/// The keys of a PSKC file, all or nothing: every problem is listed (by key package and
/// element) and nothing is returned if there is one.
pub fn read(
    name: &str,
    text: &str,
    decryption: &Decryption,
    owner: &Owner<'_>,
) -> Result<Parsed, Vec<String>> {
    let options = ParsingOptions {
        allow_dtd: false,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, options)
        .map_err(|e| vec![format!("{name}: not a PSKC file: {e}")])?;
    let root = doc.root_element();
    if root.tag_name().name() != "KeyContainer" || root.tag_name().namespace() != Some(PSKC_NS) {
        return Err(vec![format!(
            "{name}: not a PSKC file: the document is <{}>, not a KeyContainer of {PSKC_NS}",
            root.tag_name().name()
        )]);
    }
    if root.attribute("Version") != Some("1.0") {
        return Err(vec![format!(
            "{name}: KeyContainer Version {:?}: only PSKC 1.0 (RFC 6030) is read",
            root.attribute("Version").unwrap_or("")
        )]);
    }
    let keys = container_keys(root, decryption).map_err(|e| vec![format!("{name}: {e}")])?;
    let mut parsed = Parsed::default();
    let mut errors = Vec::new();
    for (i, package) in children(root, "KeyPackage").enumerate() {
        let mut found = false;
        for key in children(package, "Key") {
            found = true;
            let id = key.attribute("Id").unwrap_or("");
            let source = format!("{name}: KeyPackage {} (Key Id {id:?})", i + 1);
            match token(package, key, &keys, owner, &source, &mut parsed) {
                Ok(t) => parsed.tokens.push(t),
                Err(e) => errors.push(format!("{source}: {e}")),
            }
        }
        if !found {
            errors.push(format!("{name}: KeyPackage {}: no Key in it", i + 1));
        }
    }
    if parsed.tokens.is_empty() && errors.is_empty() {
        errors.push(format!("{name}: no KeyPackage with a Key in it"));
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

/// The container's encryption key (if the file encrypts) and MAC key (if it has a MAC method).
struct ContainerKeys {
    encryption: Option<Zeroizing<Vec<u8>>>,
    mac: Option<(MacAlgorithm, Zeroizing<Vec<u8>>)>,
}

#[derive(Clone, Copy)]
enum MacAlgorithm {
    Sha1,
    Sha256,
}

fn container_keys(root: Node<'_, '_>, decryption: &Decryption) -> Result<ContainerKeys, String> {
    let encryption = match child(root, "EncryptionKey") {
        None => None,
        Some(element) => Some(encryption_key(element, decryption)?),
    };
    let mac = match child(root, "MACMethod") {
        None => None,
        Some(method) => {
            let algorithm = match method.attribute("Algorithm") {
                Some(HMAC_SHA1) => MacAlgorithm::Sha1,
                Some(HMAC_SHA256) => MacAlgorithm::Sha256,
                other => {
                    return Err(format!(
                        "MACMethod: algorithm {:?} is not HMAC-SHA1 or HMAC-SHA256",
                        other.unwrap_or("")
                    ))
                }
            };
            let mac_key = child(method, "MACKey")
                .ok_or("MACMethod: no MACKey (a MAC key encrypted with the file's key)")?;
            let key = encryption
                .as_ref()
                .ok_or("MACMethod: a MACKey, but no EncryptionKey to decrypt it with")?;
            Some((
                algorithm,
                cipher_value(mac_key)
                    .and_then(|data| decrypt(mac_key, &data, key))
                    .map_err(|e| format!("MACKey: {e}"))?,
            ))
        }
    };
    Ok(ContainerKeys { encryption, mac })
}

/// The key that decrypts the file: the pre-shared one given, or one derived from the password.
fn encryption_key(
    element: Node<'_, '_>,
    decryption: &Decryption,
) -> Result<Zeroizing<Vec<u8>>, String> {
    if let Some(derived) = child(element, "DerivedKey") {
        let Decryption::Password(password) = decryption else {
            return Err(
                "the secrets are encrypted with a key derived from a password (DerivedKey): \
                 give --password"
                    .into(),
            );
        };
        return derive_key(derived, password.expose());
    }
    let named = child(element, "KeyName")
        .and_then(|n| n.text())
        .unwrap_or("")
        .trim()
        .to_owned();
    match decryption {
        Decryption::Key(key) => Ok(key.clone()),
        _ => Err(format!(
            "the secrets are encrypted with a pre-shared key (KeyName {named:?}): give --key \
             HEX or --key-file PATH"
        )),
    }
}

fn derive_key(derived: Node<'_, '_>, password: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let method =
        child(derived, "KeyDerivationMethod").ok_or("DerivedKey: no KeyDerivationMethod")?;
    if method.attribute("Algorithm") != Some(PBKDF2) {
        return Err(format!(
            "DerivedKey: method {:?} is not PBKDF2",
            method.attribute("Algorithm").unwrap_or("")
        ));
    }
    let params = child(method, "PBKDF2-params").ok_or("DerivedKey: no PBKDF2-params")?;
    let salt_text = child(params, "Salt")
        .and_then(|s| child(s, "Specified"))
        .and_then(|s| s.text())
        .ok_or("PBKDF2-params: no Salt/Specified")?;
    let salt = base64(salt_text).map_err(|e| format!("PBKDF2-params/Salt: {e}"))?;
    let iterations: u32 = number(
        child(params, "IterationCount"),
        "PBKDF2-params/IterationCount",
    )?;
    if iterations == 0 || iterations > MAX_PBKDF2_ITERATIONS {
        return Err(format!(
            "PBKDF2-params/IterationCount {iterations}: must be 1 to {MAX_PBKDF2_ITERATIONS}"
        ));
    }
    let length: usize = number(child(params, "KeyLength"), "PBKDF2-params/KeyLength")?;
    if !AES_CBC.iter().any(|&(_, l)| l == length) {
        return Err(format!(
            "PBKDF2-params/KeyLength {length}: an AES key is 16, 24 or 32 bytes"
        ));
    }
    let prf = child(params, "PRF").and_then(|p| p.attribute("Algorithm"));
    let mut key = Zeroizing::new(vec![0u8; length]);
    match prf {
        None | Some(HMAC_SHA1) => {
            pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password.as_bytes(), &salt, iterations, &mut key)
        }
        Some(HMAC_SHA256) => {
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), &salt, iterations, &mut key)
        }
        Some(other) => {
            return Err(format!(
                "PBKDF2-params/PRF {other:?} is not HMAC-SHA1 or HMAC-SHA256"
            ))
        }
    }
    Ok(key)
}

fn token(
    package: Node<'_, '_>,
    key: Node<'_, '_>,
    keys: &ContainerKeys,
    owner: &Owner<'_>,
    source: &str,
    parsed: &mut Parsed,
) -> Result<ImportedToken, String> {
    let token_type = match key.attribute("Algorithm") {
        Some(HOTP) => TokenType::Hotp,
        Some(TOTP) => TokenType::Totp,
        other => {
            return Err(format!(
                "Key Algorithm {:?}: only HOTP ({HOTP}) and TOTP ({TOTP}) keys are imported",
                other.unwrap_or("")
            ))
        }
    };
    let device = child(package, "DeviceInfo");
    let file_user = child(key, "UserId")
        .or_else(|| device.and_then(|d| child(d, "UserId")))
        .and_then(|u| u.text())
        .map(str::trim);
    let login = match (owner.user, file_user) {
        (Some(user), _) => user.to_owned(),
        (None, Some(user)) if !user.is_empty() => user.to_owned(),
        _ if owner.pool => String::new(),
        _ => {
            return Err(
                "no UserId: give each key a UserId, --user LOGIN for all keys of the file, or \
                 --pool REALM to put the keys without one into a realm's pool"
                    .into(),
            )
        }
    };
    let digits: u8 = match child(key, "AlgorithmParameters")
        .and_then(|p| child(p, "ResponseFormat"))
    {
        Some(format) => {
            if format.attribute("Encoding").is_some_and(|e| e != "DECIMAL") {
                return Err(format!(
                    "ResponseFormat Encoding {:?}: only DECIMAL codes are imported",
                    format.attribute("Encoding").unwrap_or("")
                ));
            }
            format
                .attribute("Length")
                .ok_or("ResponseFormat: no Length")?
                .trim()
                .parse()
                .map_err(|_| "ResponseFormat Length: not a number".to_owned())?
        }
        None => {
            parsed.note("keys without AlgorithmParameters/ResponseFormat get 6-digit codes".into());
            6
        }
    };
    let data = child(key, "Data").ok_or("Data: missing")?;
    let secret_element = child(data, "Secret").ok_or("Data/Secret: missing")?;
    let secret = secret(secret_element, keys).map_err(|e| format!("Data/Secret: {e}"))?;
    let counter: u64 = match child(data, "Counter") {
        Some(c) => plain_number(c, "Data/Counter")?,
        None => 0,
    };
    let period = match token_type {
        TokenType::Totp => Some(match child(data, "TimeInterval") {
            Some(t) => plain_number(t, "Data/TimeInterval")?,
            None => 30,
        }),
        _ => None,
    };
    if token_type == TokenType::Totp {
        let t0: u64 = match child(data, "Time") {
            Some(t) => plain_number(t, "Data/Time")?,
            None => 0,
        };
        if t0 != 0 {
            return Err(format!(
                "Data/Time {t0}: TOTP codes counted from another time than 1970 are not supported"
            ));
        }
        if child(data, "TimeDrift").is_some() {
            parsed.note(
                "Data/TimeDrift is not carried over: the first login or `pictl token resync` \
                 finds a drifting token"
                    .into(),
            );
        }
    }
    if child(key, "Policy").is_some() {
        parsed.note(
            "Key/Policy (validity dates, PIN policy, usage limits) is not carried over: pid's \
             policies apply"
                .into(),
        );
    }
    let text_of = |parent: Option<Node<'_, '_>>, name: &str| {
        parent
            .and_then(|p| child(p, name))
            .and_then(|n| n.text())
            .map(|t| t.trim().to_owned())
            .unwrap_or_default()
    };
    let description = ["Manufacturer", "SerialNo"]
        .iter()
        .map(|n| text_of(device, n))
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(ImportedToken {
        source: source.to_owned(),
        user: UserRef {
            realm: owner.realm.filter(|_| !login.is_empty()).map(str::to_owned),
            login,
        },
        token_type,
        otpkey: Secret::new(hex::encode(&secret[..])),
        digits,
        hash: HashAlgorithm::Sha1,
        period,
        counter,
        pin: None,
        tans: Vec::new(),
        description: if description.is_empty() {
            "PSKC".to_owned()
        } else {
            format!("PSKC {description}")
        },
    })
}

/// A secret: `PlainValue` (base64), or `EncryptedValue` whose `ValueMAC` is checked first.
fn secret(element: Node<'_, '_>, keys: &ContainerKeys) -> Result<Zeroizing<Vec<u8>>, String> {
    let value = if let Some(plain) = child(element, "PlainValue") {
        Zeroizing::new(base64(plain.text().unwrap_or(""))?)
    } else if let Some(encrypted) = child(element, "EncryptedValue") {
        let key = keys
            .encryption
            .as_ref()
            .ok_or("an EncryptedValue, but the file has no EncryptionKey")?;
        let (algorithm, mac_key) = keys
            .mac
            .as_ref()
            .ok_or("an EncryptedValue without a MACMethod: its integrity cannot be checked")?;
        let mac = child(element, "ValueMAC")
            .and_then(|m| m.text())
            .ok_or("an EncryptedValue without a ValueMAC: its integrity cannot be checked")?;
        let data = cipher_value(encrypted)?;
        check_mac(*algorithm, mac_key, &data, &base64(mac)?)?;
        decrypt(encrypted, &data, key)?
    } else {
        return Err("neither PlainValue nor EncryptedValue".into());
    };
    if value.is_empty() || value.len() > MAX_SECRET_BYTES {
        return Err(format!(
            "{} bytes: a secret has 1 to {MAX_SECRET_BYTES}",
            value.len()
        ));
    }
    Ok(value)
}

/// RFC 6030 §6.1.1: the MAC is computed over the CipherValue (IV and ciphertext), so it is
/// checked before anything is decrypted.
fn check_mac(algorithm: MacAlgorithm, key: &[u8], data: &[u8], mac: &[u8]) -> Result<(), String> {
    let matches = match algorithm {
        MacAlgorithm::Sha1 => verify::<Hmac<sha1::Sha1>>(key, data, mac),
        MacAlgorithm::Sha256 => verify::<Hmac<sha2::Sha256>>(key, data, mac),
    };
    if matches {
        Ok(())
    } else {
        Err(format!("the ValueMAC does not match: {WRONG_KEY}"))
    }
}

/// `mac` is the MAC of `data` under `key` (compared in constant time).
fn verify<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8], mac: &[u8]) -> bool {
    <M as Mac>::new_from_slice(key).is_ok_and(|mut m| {
        m.update(data);
        m.verify_slice(mac).is_ok()
    })
}

/// The bytes of an xmlenc `CipherData/CipherValue` (base64).
fn cipher_value(encrypted: Node<'_, '_>) -> Result<Vec<u8>, String> {
    let text = child(encrypted, "CipherData")
        .and_then(|c| child(c, "CipherValue"))
        .and_then(|v| v.text())
        .ok_or("EncryptedValue: no CipherData/CipherValue")?;
    base64(text)
}

/// Decrypt `data`, the CipherValue of the xmlenc value `encrypted`: AES-CBC as its
/// EncryptionMethod says, the IV in the first block, xmlenc padding (the last byte says how many
/// bytes to drop).
fn decrypt(encrypted: Node<'_, '_>, data: &[u8], key: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    let algorithm = child(encrypted, "EncryptionMethod")
        .and_then(|m| m.attribute("Algorithm"))
        .ok_or("no EncryptionMethod Algorithm")?;
    let Some(&(_, key_len)) = AES_CBC.iter().find(|(uri, _)| *uri == algorithm) else {
        return Err(format!(
            "EncryptionMethod {algorithm:?} is not AES-128/192/256-CBC"
        ));
    };
    if key.len() != key_len {
        return Err(format!(
            "the key is {} bytes, but {algorithm} needs {key_len}",
            key.len()
        ));
    }
    if data.len() < 32 || !data.len().is_multiple_of(16) {
        return Err("CipherValue: not an IV and whole AES blocks".into());
    }
    let (iv, ciphertext) = data.split_at(16);
    let mut plain = Zeroizing::new(ciphertext.to_vec());
    let decrypted = match key_len {
        16 => cbc_decrypt::<aes::Aes128>(key, iv, &mut plain),
        24 => cbc_decrypt::<aes::Aes192>(key, iv, &mut plain),
        _ => cbc_decrypt::<aes::Aes256>(key, iv, &mut plain),
    };
    if !decrypted {
        return Err("cannot decrypt".into());
    }
    let pad = usize::from(*plain.last().unwrap_or(&0));
    if pad == 0 || pad > 16 {
        return Err(format!("cannot decrypt: {WRONG_KEY}"));
    }
    let len = plain.len() - pad;
    plain.truncate(len);
    Ok(plain)
}

/// AES-CBC decryption of whole blocks in place (the padding is xmlenc's, removed by the caller).
fn cbc_decrypt<C>(key: &[u8], iv: &[u8], blocks: &mut [u8]) -> bool
where
    C: aes::cipher::BlockCipher + aes::cipher::BlockDecryptMut + aes::cipher::KeyInit,
{
    cbc::Decryptor::<C>::new_from_slices(key, iv).is_ok_and(|d| {
        d.decrypt_padded_mut::<aes::cipher::block_padding::NoPadding>(blocks)
            .is_ok()
    })
}

fn plain_number<T: std::str::FromStr>(element: Node<'_, '_>, what: &str) -> Result<T, String> {
    if child(element, "EncryptedValue").is_some() {
        return Err(format!(
            "{what}: encrypted; only plain values are read here"
        ));
    }
    number(child(element, "PlainValue"), what)
}

fn number<T: std::str::FromStr>(element: Option<Node<'_, '_>>, what: &str) -> Result<T, String> {
    element
        .and_then(|e| e.text())
        .ok_or(format!("{what}: missing"))?
        .trim()
        .parse()
        .map_err(|_| format!("{what}: not a number"))
}

fn base64(text: &str) -> Result<Vec<u8>, String> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    BASE64
        .decode(compact.as_bytes())
        .map_err(|_| "not base64".to_owned())
}

/// The first child element named `name` (any namespace: vendors mix prefixes).
fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn children<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

#[cfg(test)]
mod tests;
