//! luks: a Yubikey's HMAC-SHA1 challenge-response secret (slot 2, as `yubikey-luks` uses it)
//! unlocks a LUKS volume. privacyIDEA keeps the secret as a TOTP token with hash sha1 whose
//! serial starts with `UBOM` (`UBOM<yubikey serial>_<slot>`); we follow it, so tokens move
//! between the two unchanged.
//!
//! The passphrase in the key slot is what the Yubikey answers to the password typed at boot:
//! lowercase hex of HMAC-SHA1(secret, password) — what `ykchalresp -2 PASSWORD` prints. The
//! daemon hands out that answer (to root only), never the secret.

use super::MachineError;
use crate::store::TokenRecord;
use hmac::{Hmac, Mac};
use protocol::{HashAlgorithm, TokenType};
use sha1::Sha1;
use zeroize::Zeroizing;

/// A Yubikey in HMAC-lt64 mode takes challenges shorter than 64 bytes.
pub const MAX_PASSWORD: usize = 63;

pub fn is_challenge_response_token(token: &TokenRecord) -> bool {
    token.token_type == TokenType::Totp
        && token.hash == HashAlgorithm::Sha1
        && token.serial.starts_with("UBOM")
}

/// hex(HMAC-SHA1(secret, password)).
pub fn response(secret: &[u8], password: &[u8]) -> Result<Zeroizing<String>, MachineError> {
    if password.is_empty() || password.len() > MAX_PASSWORD {
        return Err(MachineError::Password);
    }
    let mut mac =
        <Hmac<Sha1> as Mac>::new_from_slice(secret).map_err(MachineError::UnusableSecret)?;
    mac.update(password);
    let tag = Zeroizing::new(mac.finalize().into_bytes().to_vec());
    Ok(Zeroizing::new(hex::encode(&tag[..])))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `testdata/luks_hmac.tsv`: secret hex, challenge text, response hex.
    #[test]
    fn responses_match_the_published_ykchalresp_vectors() {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/luks_hmac.tsv"
        ));
        let mut n = 0;
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let f: Vec<&str> = line.split('\t').collect();
            let got = response(&hex::decode(f[0]).unwrap(), f[1].as_bytes()).unwrap();
            assert_eq!(got.as_str(), f[2], "{line}");
            n += 1;
        }
        assert!(n >= 2, "the vector file has no vectors");
    }

    #[test]
    fn an_empty_or_too_long_password_is_refused() {
        assert!(matches!(response(b"k", b""), Err(MachineError::Password)));
        assert!(matches!(
            response(b"k", &[b'a'; 64]),
            Err(MachineError::Password)
        ));
        assert!(response(b"k", &[b'a'; 63]).is_ok());
    }
}
