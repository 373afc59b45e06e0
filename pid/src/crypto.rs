//! Secrets at rest and PIN hashing.
//!
//! Threat: a stolen disk or backup. OTP keys are sealed with AES-256-GCM under a 32-byte key file
//! that only root can read; the AAD binds each ciphertext to its token serial and field, so a
//! ciphertext copied into another record does not decrypt. PINs are argon2id PHC strings.

use crate::argon2_memory::Argon2Memory;
use crate::config::{Argon2Config, ConfigError, Reason};
use crate::error::PidError;
use crate::trust::open_nofollow;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::password_hash::{self, Output, ParamsString, PasswordHash, Salt, SaltString};
use rand::RngCore;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// What the key's fingerprint is computed over (HMAC-SHA256 keyed with the key).
const FINGERPRINT_LABEL: &[u8] = b"pi enckey fingerprint v1";
/// Bytes of the HMAC kept as the fingerprint: enough to tell keys apart, shown as 32 hex digits.
const FINGERPRINT_LEN: usize = 16;

/// Names a key without revealing anything about it: the first 16 bytes of
/// HMAC-SHA256(key, "pi enckey fingerprint v1"). The store keeps the fingerprint of the key its
/// secrets are sealed with, so a lost or wrong key file is noticed at start, and an operator can
/// find the right backup (`pid --key-fingerprint FILE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyFingerprint([u8; FINGERPRINT_LEN]);

impl KeyFingerprint {
    fn of(key: &[u8; KEY_LEN]) -> KeyFingerprint {
        use hmac::{Hmac, Mac};
        let mut fingerprint = [0u8; FINGERPRINT_LEN];
        // HMAC takes a key of any length: this cannot fail.
        if let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key) {
            mac.update(FINGERPRINT_LABEL);
            fingerprint.copy_from_slice(&mac.finalize().into_bytes()[..FINGERPRINT_LEN]);
        }
        KeyFingerprint(fingerprint)
    }

    /// As the store keeps it; `None` for bytes that are no fingerprint.
    pub fn from_bytes(bytes: &[u8]) -> Option<KeyFingerprint> {
        bytes.try_into().ok().map(KeyFingerprint)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Display for KeyFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Seals and opens secrets with the daemon's key. The key lives only inside the cipher state.
pub struct Cipher {
    aead: Aes256Gcm,
    fingerprint: KeyFingerprint,
}

impl Cipher {
    pub fn from_key(key: &[u8; KEY_LEN]) -> Cipher {
        Cipher {
            aead: Aes256Gcm::new(key.into()),
            fingerprint: KeyFingerprint::of(key),
        }
    }

    pub fn fingerprint(&self) -> KeyFingerprint {
        self.fingerprint
    }

    /// Load the key file, creating it when absent (tests; the daemon decides in `open_key`
    /// whether a new key may be made).
    #[cfg(test)]
    pub fn load_or_create(path: &Path) -> Result<Cipher, PidError> {
        match Cipher::load(path)? {
            Some(cipher) => Ok(cipher),
            None => Cipher::create(path),
        }
    }

    /// Create a new key file (0400, 32 random bytes); refused if the path exists.
    pub fn create(path: &Path) -> Result<Cipher, PidError> {
        let shown = path.display();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| PidError::file("create", dir, e))?;
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(&mut key[..]);
        let mut f = open_nofollow(
            OpenOptions::new().write(true).create_new(true).mode(0o400),
            path,
        )
        .map_err(|e| PidError::file("create key file", path, e))?;
        f.write_all(&key[..])
            .and_then(|_| f.sync_all())
            .map_err(|e| PidError::file("write key file", path, e))?;
        let cipher = Cipher::from_key(&key);
        tracing::info!(
            path = %shown,
            fingerprint = %cipher.fingerprint(),
            "created a new encryption key file; back it up apart from the store"
        );
        Ok(cipher)
    }

    /// Read the key file; `None` if there is none. A key file readable by group or others,
    /// owned by someone else, a symbolic link, or of the wrong size is refused: the daemon
    /// would otherwise run with a key an unprivileged user may have read or planted.
    pub fn load(path: &Path) -> Result<Option<Cipher>, PidError> {
        let shown = path.display();
        let file = match open_nofollow(OpenOptions::new().read(true), path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(PidError::file("open key file", path, e)),
        };
        // The open file's own metadata: the path could name another file by now.
        let meta = file
            .metadata()
            .map_err(|e| PidError::file("stat key file", path, e))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(PidError::Startup(format!(
                "key file {shown} has mode {mode:o}: it must not be readable by group or others; \
                 run `chmod 0400 {shown}` (and consider the key compromised)"
            )));
        }
        let euid = nix::unistd::geteuid().as_raw();
        if meta.uid() != euid {
            return Err(PidError::Startup(format!(
                "key file {shown} is owned by uid {}, not by the daemon's uid {euid}; \
                 run `chown {euid} {shown}`",
                meta.uid()
            )));
        }
        read_key(file, path).map(|key| Some(Cipher::from_key(&key)))
    }

    /// `nonce || ciphertext+tag`, bound to (serial, field).
    pub fn seal(&self, serial: &str, field: &str, plaintext: &[u8]) -> Result<Vec<u8>, PidError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = aad(serial, field);
        let ct = self
            .aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| PidError::Crypto("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn open(
        &self,
        serial: &str,
        field: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, PidError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(PidError::Crypto(format!(
                "sealed {field} of {serial} is truncated"
            )));
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let aad = aad(serial, field);
        self.aead
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| {
                PidError::Crypto(format!(
                    "{field} of token {serial} does not decrypt: wrong key file or tampered record"
                ))
            })
    }
}

/// Exactly `KEY_LEN` bytes from an open key file.
fn read_key(file: std::fs::File, path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>, PidError> {
    let shown = path.display();
    let mut bytes = Zeroizing::new(Vec::with_capacity(KEY_LEN + 1));
    file.take(KEY_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| PidError::file("read key file", path, e))?;
    let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
        PidError::Startup(format!(
            "key file {shown} must hold exactly {KEY_LEN} bytes, it holds {}",
            bytes.len()
        ))
    })?;
    Ok(Zeroizing::new(key))
}

/// The fingerprint of any key file, e.g. a backup (`pid --key-fingerprint FILE`). Unlike
/// `Cipher::load` it accepts any owner and mode: it only reads, and prints nothing secret.
pub fn fingerprint_of_file(path: &Path) -> Result<KeyFingerprint, PidError> {
    let file = std::fs::File::open(path).map_err(|e| PidError::file("open key file", path, e))?;
    read_key(file, path).map(|key| KeyFingerprint::of(&key))
}

/// Length-prefixed so ("ab","c") and ("a","bc") differ.
fn aad(serial: &str, field: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + serial.len() + field.len());
    v.extend_from_slice(&(serial.len() as u32).to_be_bytes());
    v.extend_from_slice(serial.as_bytes());
    v.extend_from_slice(&(field.len() as u32).to_be_bytes());
    v.extend_from_slice(field.as_bytes());
    v
}

/// argon2id PIN hashing with the configured cost. CPU-heavy: call from `spawn_blocking`.
#[derive(Clone)]
pub struct PinHasher {
    params: argon2::Params,
    /// argon2 verifications so far (a cost metric: wrong OTPs must not add to it).
    verifications: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Working memory reused between hashes, wiped after each.
    memory: std::sync::Arc<Argon2Memory>,
}

impl PinHasher {
    pub fn new(cfg: &Argon2Config) -> Result<PinHasher, PidError> {
        let params = argon2::Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|e| ConfigError::new(None, Reason::Argon2(e)))?;
        Ok(PinHasher {
            params,
            verifications: Default::default(),
            memory: Default::default(),
        })
    }

    pub fn hash(&self, pin: &str) -> Result<String, PidError> {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let params = self.params.clone();
        let hashed = self
            .hash_in_pooled_memory(
                argon2::Algorithm::Argon2id,
                argon2::Version::V0x13,
                params,
                pin,
                salt.as_salt(),
            )
            .map(|h| h.to_string())
            .map_err(PidError::PinHash);
        scrub_stack();
        hashed
    }

    /// Verify against a stored PHC string; the parameters embedded in the string are used, so
    /// PINs hashed under an older cost still verify. The hashes compare in constant time.
    pub fn verify(&self, pin: &str, phc: &str) -> bool {
        self.verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let matched =
            PasswordHash::new(phc).is_ok_and(|stored| self.matches(pin, &stored).unwrap_or(false));
        scrub_stack();
        matched
    }

    /// What `PasswordVerifier::verify_password` does, with pooled memory.
    fn matches(&self, pin: &str, stored: &PasswordHash<'_>) -> password_hash::Result<bool> {
        let (Some(salt), Some(expected)) = (stored.salt, &stored.hash) else {
            return Ok(false);
        };
        let algorithm = argon2::Algorithm::try_from(stored.algorithm)?;
        let version = stored
            .version
            .map(argon2::Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let params = argon2::Params::try_from(stored)?;
        if !within_configurable_cost(&params) {
            tracing::warn!(
                m_cost = params.m_cost(),
                t_cost = params.t_cost(),
                p_cost = params.p_cost(),
                "a stored PIN hash asks for more argon2 work than any configuration allows; the \
                 record is damaged, the PIN is refused (set a new one with `pictl token set SERIAL --pin -`)"
            );
            return Ok(false);
        }
        let computed = self.hash_in_pooled_memory(algorithm, version, params, pin, salt)?;
        // `Output`'s equality is constant time.
        Ok(computed.hash.as_ref() == Some(expected))
    }

    /// What `PasswordHasher::hash_password` does, with the working memory leased from the pool
    /// (wiped when the lease drops) instead of allocated for this hash. The tag comes from the
    /// `argon2` crate, or from the interleaved fill with the `interleaved-argon2` feature.
    fn hash_in_pooled_memory<'a>(
        &self,
        algorithm: argon2::Algorithm,
        version: argon2::Version,
        params: argon2::Params,
        pin: &str,
        salt: Salt<'a>,
    ) -> password_hash::Result<PasswordHash<'a>> {
        let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
        let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
        let output_len = params
            .output_len()
            .unwrap_or(argon2::Params::DEFAULT_OUTPUT_LEN);
        let mut memory = self.memory.take(params.block_count());
        let hash = Output::init_with(output_len, |out| {
            #[cfg(feature = "interleaved-argon2")]
            let tagged = crate::argon2_hash::hash_into(
                algorithm,
                version,
                &params,
                pin.as_bytes(),
                salt_bytes,
                &mut memory,
                out,
            );
            #[cfg(not(feature = "interleaved-argon2"))]
            let tagged = argon2::Argon2::new(algorithm, version, params.clone())
                .hash_password_into_with_memory(pin.as_bytes(), salt_bytes, out, &mut *memory);
            Ok(tagged?)
        })?;
        Ok(PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt),
            hash: Some(hash),
        })
    }

    /// Free the spare working memory if no PIN was hashed since the last call (every minute).
    pub fn release_idle_memory(&self) -> usize {
        self.memory.release_idle()
    }
}

/// Stack below the caller that `scrub_stack` overwrites: more than hashing a PIN uses.
const STACK_SCRUB_BYTES: usize = 64 * 1024;

/// Overwrite the stack the PIN hashing just used. Blake2b, which argon2 feeds the PIN through,
/// keeps its input in a buffer it does not wipe, and the copies of that state left in stack
/// frames below the caller would otherwise stay in the (reused) thread's memory until
/// something else happened to overwrite them.
#[inline(never)]
fn scrub_stack() {
    let mut area = [0u8; STACK_SCRUB_BYTES];
    // Volatile writes: not optimised away, though nothing reads them.
    zeroize::Zeroize::zeroize(&mut area[..]);
    std::hint::black_box(&area);
}

impl PinHasher {
    pub fn verifications(&self) -> u64 {
        self.verifications
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Whether a stored hash's cost is one the configuration could have set. Stored hashes are made
/// by this daemon, so anything above is damage; verifying it would allocate what it asks for
/// (up to 4 TiB for m_cost) and abort the daemon.
fn within_configurable_cost(params: &argon2::Params) -> bool {
    use crate::config::{MAX_ARGON2_ITERATIONS, MAX_ARGON2_MEMORY_KIB, MAX_ARGON2_PARALLELISM};
    params.m_cost() <= MAX_ARGON2_MEMORY_KIB
        && params.t_cost() <= MAX_ARGON2_ITERATIONS
        && params.p_cost() <= MAX_ARGON2_PARALLELISM
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

pub fn random_bytes(n: usize) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(vec![0u8; n]);
    rand::rngs::OsRng.fill_bytes(&mut v);
    v
}

pub fn random_u64() -> u64 {
    rand::rngs::OsRng.next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> Cipher {
        Cipher::from_key(&[7u8; 32])
    }

    #[test]
    fn sealed_secret_opens_for_its_own_serial_and_field_only() {
        let c = cipher();
        let sealed = c.seal("TOTP1", "otpkey", b"secret").unwrap();
        assert_eq!(&c.open("TOTP1", "otpkey", &sealed).unwrap()[..], b"secret");
        assert!(c.open("TOTP2", "otpkey", &sealed).is_err());
        assert!(c.open("TOTP1", "pin", &sealed).is_err());
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn tampered_or_truncated_ciphertext_does_not_open() {
        let c = cipher();
        let mut sealed = c.seal("S", "otpkey", b"secret").unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(c.open("S", "otpkey", &sealed).is_err());
        assert!(c.open("S", "otpkey", &sealed[..10]).is_err());
    }

    #[test]
    fn key_file_is_created_0400_and_reloads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/enckey");
        let c1 = Cipher::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o400);
        let sealed = c1.seal("S", "f", b"x").unwrap();
        let c2 = Cipher::load_or_create(&path).unwrap();
        assert_eq!(&c2.open("S", "f", &sealed).unwrap()[..], b"x");
    }

    /// A key file of `len` bytes of 1 with `mode` at `dir/name`.
    fn key_file(dir: &Path, name: &str, len: usize, mode: u32) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, vec![1u8; len]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn group_readable_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_file(dir.path(), "enckey", 32, 0o440);
        let msg = crate::error::chain(&Cipher::load_or_create(&path).err().unwrap()).to_string();
        assert!(msg.contains("chmod 0400"), "{msg}");
    }

    /// The value comes from Python's hmac module (and `openssl dgst -sha256 -mac HMAC`), not
    /// from this code.
    #[test]
    fn the_fingerprint_is_the_keyed_hash_of_the_label() {
        assert_eq!(
            cipher().fingerprint().to_string(),
            "4916963e6ad3431a035dbe4dec24ce1d"
        );
        assert_ne!(
            Cipher::from_key(&[8u8; 32]).fingerprint(),
            cipher().fingerprint()
        );
        let fp = cipher().fingerprint();
        assert_eq!(KeyFingerprint::from_bytes(fp.as_bytes()), Some(fp));
        assert_eq!(KeyFingerprint::from_bytes(&[0u8; 15]), None);
    }

    #[test]
    fn a_key_file_behind_a_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = key_file(dir.path(), "real", 32, 0o400);
        let link = dir.path().join("enckey");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let msg = crate::error::chain(&Cipher::load(&link).err().unwrap()).to_string();
        assert!(msg.contains("symbolic link"), "{msg}");
        assert!(Cipher::load(&real).unwrap().is_some());
        // A backup may sit anywhere: its fingerprint is readable through the link.
        assert_eq!(
            fingerprint_of_file(&link).unwrap(),
            Cipher::from_key(&[1u8; 32]).fingerprint()
        );
    }

    #[test]
    fn key_file_of_wrong_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_file(dir.path(), "enckey", 31, 0o400);
        assert!(Cipher::load_or_create(&path).is_err());
    }

    #[test]
    fn pin_hash_verifies_only_the_right_pin() {
        let h = PinHasher::new(&Argon2Config {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            verified_pin_cache_secs: 0,
        })
        .unwrap();
        let phc = h.hash("1234").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify("1234", &phc));
        assert!(!h.verify("1235", &phc));
        assert!(!h.verify("1234", "not a phc string"));
    }

    /// PHC strings from libargon2 (argon2-cffi 25.1, `argon2.low_level.hash_secret`); the first
    /// is the reference implementation's own argon2id test vector. Their costs are above, equal
    /// to and below the hasher's, so the pooled memory grows and is reused across them.
    const LIBARGON2_PHCS: [(&str, &str); 3] = [
        (
            "password",
            "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        ),
        (
            "1234",
            "$argon2id$v=19$m=256,t=3,p=2$cGktdGVzdC1zYWx0LTE2Yg$KglUdcNuze4A6A9nxCkmjtNMAkpyfdJV95m0RcSS1Lk",
        ),
        (
            "äö pin",
            "$argon2id$v=19$m=32,t=1,p=4$cGktdGVzdC1zYWx0LTE2Yg$CDXrt4lZe2CysevFboCEIQ",
        ),
    ];

    fn small_hasher() -> PinHasher {
        PinHasher::new(&Argon2Config {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
            verified_pin_cache_secs: 0,
        })
        .unwrap()
    }

    #[test]
    fn pins_hashed_by_libargon2_verify_whatever_their_cost() {
        let h = small_hasher();
        for _ in 0..2 {
            for (pin, phc) in LIBARGON2_PHCS {
                assert!(h.verify(pin, phc), "{phc}");
                assert!(!h.verify(&format!("{pin}0"), phc), "{phc}");
                assert!(!h.verify("", phc), "{phc}");
            }
        }
        let tampered = LIBARGON2_PHCS[1].1.replace("t=3", "t=2");
        assert!(
            !h.verify("1234", &tampered),
            "the cost is part of what is checked"
        );
    }

    /// A damaged record must not make pid allocate what it asks for: m=4 TiB would abort it
    /// (without the check this test dies in the allocation).
    #[test]
    fn a_stored_hash_beyond_any_configurable_cost_is_refused_without_hashing() {
        let h = small_hasher();
        let good = h.hash("1234").unwrap();
        assert!(h.verify("1234", &good));
        let huge = good.replace("m=256,", "m=4294967295,");
        assert_ne!(huge, good, "the test edits the cost");
        assert!(!h.verify("1234", &huge));
        let cost = |m, t, p| within_configurable_cost(&argon2::Params::new(m, t, p, None).unwrap());
        assert!(
            cost(4 * 1024 * 1024, 64, 16),
            "the configuration's own maximum"
        );
        assert!(!cost(4 * 1024 * 1024 + 1, 1, 1));
        assert!(!cost(256, 65, 1));
        assert!(!cost(256, 1, 17));
    }

    #[test]
    fn pins_hashed_here_verify_with_the_argon2_crates_own_verifier() {
        use argon2::password_hash::PasswordVerifier;
        let h = small_hasher();
        let phc = h.hash("4321").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=256,t=1,p=1$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        let crate_verifier = argon2::Argon2::default();
        assert!(crate_verifier.verify_password(b"4321", &parsed).is_ok());
        assert!(crate_verifier.verify_password(b"4322", &parsed).is_err());
        assert_ne!(phc, h.hash("4321").unwrap(), "a new salt every time");
    }
}
