//! Token algorithms: one file per type behind one trait, chosen by one exhaustive match.
//!
//! Invariant: token code never reads the clock or the store. It gets the record, the decrypted
//! key and `now`, and says what the counter state becomes if the OTP is accepted; the auth
//! pipeline decides, and the store applies the change by compare-and-swap.

pub mod applspec;
pub mod daplug;
pub mod daypassword;
pub mod email;
mod error;
pub mod foureyes;
pub mod hotp;
pub mod indexedsecret;
pub mod motp;
pub mod ocra;
pub mod paper;
pub mod pw;
pub mod question;
pub mod registration;
pub mod sent_code;
pub mod sms;
pub mod spass;
pub mod sshkey;
pub mod tan;
pub mod totp;
pub mod yubico;
pub mod yubikey;

pub use error::{ChallengeError, EnrollError};

use crate::store::TokenRecord;
use protocol::{EnrollRequest, TokenType};
use zeroize::Zeroizing;

/// A challenge one token asks: what to show, and what its answer is checked against. The data
/// lives only in the conversation's session (memory), never in the store.
pub struct ChallengeData {
    /// The question (e.g. "the positions 3, 7 of your secret"); `None`: the policy's
    /// `challenge_text` or privacyIDEA's "please enter otp: ".
    pub message: Option<String>,
    pub data: Zeroizing<Vec<u8>>,
    /// A code to send to the user (e-mail, SMS) before the question is asked.
    pub delivery: Option<Delivery>,
}

/// A code on its way to the user; the daemon composes the text from the policies
/// (`emailtext`, `emailsubject`, `smstext`) and sends it.
pub struct Delivery {
    pub channel: Channel,
    /// The token's serial (the `<serial>` tag).
    pub serial: String,
    /// The address or phone number.
    pub to: String,
    pub otp: Zeroizing<String>,
}

/// The code never appears in logs or `Debug` output.
impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("channel", &self.channel)
            .field("to", &self.to)
            .field("otp", &"***")
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
}

/// What enrollment starts from: the key (given or generated) and the OTP length and hash the
/// request, the enrollment policies and the defaults settled on.
pub struct EnrollBase {
    pub key: Zeroizing<Vec<u8>>,
    pub digits: u8,
    pub hash: protocol::HashAlgorithm,
}

/// What a new token of a type stores and shows.
pub struct Material {
    /// Sealed into the record's `otpkey`: the key, or the type's secret (a password, …).
    pub secret: Zeroizing<Vec<u8>>,
    /// The length of the one-time part that follows the PIN.
    pub digits: u8,
    /// A look-ahead other than the configured HOTP window.
    pub count_window: Option<u32>,
    /// Shown to the enrolling person this once (a paper list, a registration code).
    pub codes: Vec<Zeroizing<String>>,
}

impl Material {
    /// A secret with no one-time part after the PIN (answered through a challenge, or not typed
    /// at all): no digits, no window, nothing shown.
    pub fn without_otp(secret: Zeroizing<Vec<u8>>) -> Material {
        Material {
            secret,
            digits: 0,
            count_window: None,
            codes: Vec::new(),
        }
    }

    /// The key itself, as HOTP/TOTP store it.
    pub fn key(base: EnrollBase) -> Material {
        Material {
            secret: base.key,
            digits: base.digits,
            count_window: None,
            codes: Vec::new(),
        }
    }
}

/// The counter state after an accepted OTP (or a resync).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterState {
    pub count: u64,
    pub time_shift: i64,
}

impl CounterState {
    /// The state at `count`, without clock drift (every type but TOTP).
    pub fn at(count: u64) -> CounterState {
        CounterState {
            count,
            time_shift: 0,
        }
    }
}

pub trait OtpAlgorithm: Sync {
    /// Prefix of generated serials (privacyIDEA's: `OATH` for HOTP, `TOTP` for TOTP).
    fn serial_prefix(&self) -> &'static str;

    /// What to store for a new token; `Err` names the parameter that is wrong or missing.
    fn enroll(&self, _spec: &EnrollRequest, base: EnrollBase) -> Result<Material, EnrollError> {
        Ok(Material::key(base))
    }

    /// The OTP length is the usual 6 or 8 digits (checked against the enrollment policies);
    /// `false`: the type decides it in `enroll`.
    fn standard_digits(&self) -> bool {
        true
    }

    /// The shortest key an administrator may give (`--otpkey`).
    fn min_key_bytes(&self) -> usize {
        10
    }

    /// The type challenges on the PIN alone, without a `challenge_response` policy (privacyIDEA:
    /// email, sms, indexedsecret, question, ocra, 4eyes).
    fn challenges_on_pin(&self) -> bool {
        false
    }

    /// Make the challenge a PIN triggered. `Err` says why this token cannot challenge now.
    fn challenge(
        &self,
        _rec: &TokenRecord,
        _material: &[u8],
        _now: i64,
    ) -> Result<ChallengeData, ChallengeError> {
        Ok(ChallengeData {
            message: None,
            data: Zeroizing::new(Vec::new()),
            delivery: None,
        })
    }

    /// Check the answer to a challenge this token made (`data` from `challenge`). By default the
    /// answer is the token's OTP.
    fn check_answer(
        &self,
        rec: &TokenRecord,
        material: &[u8],
        _data: &[u8],
        answer: &str,
        now: i64,
    ) -> Option<CounterState> {
        self.check(rec, material, answer, now)
    }

    /// The material to store after `otp` was accepted, if using it changes the material (a TAN
    /// is crossed off its list). `None`: unchanged.
    fn after_use(&self, _material: &[u8], _otp: &str) -> Option<Zeroizing<Vec<u8>>> {
        None
    }

    /// Whether the token may be used for a login through this PAM service (an application
    /// specific password is bound to one). A token that may not is skipped, not charged.
    fn serves(&self, _material: &[u8], _service: &str) -> bool {
        true
    }

    /// A locally plausible answer must still be confirmed by the `[yubico]` validation servers
    /// (`State::verify_yubico`); only the yubico type says so.
    fn verified_remotely(&self) -> bool {
        false
    }

    /// Whether `serves` depends on the material (so the key must be opened to decide).
    fn bound_to_service(&self) -> bool {
        false
    }

    /// The token is spent by one successful login and deleted (a registration code).
    fn single_use(&self) -> bool {
        false
    }

    /// The counters of the next `count` codes this token will accept at `now`, in order
    /// (privacyIDEA's getmultiotp): HOTP's from its counter, TOTP's time steps from the current
    /// one. `None`: the type has no such sequence.
    fn upcoming(&self, _rec: &TokenRecord, _now: i64, _count: u64) -> Option<std::ops::Range<u64>> {
        None
    }

    /// `Some(new state)` if `otp`, typed after the PIN, is valid now and has not been used;
    /// `None` otherwise. By default nothing is: types that are answered only through their
    /// challenge (`check_answer`) keep it, so they fail closed on a single-shot answer.
    fn check(
        &self,
        _rec: &TokenRecord,
        _key: &[u8],
        _otp: &str,
        _now: i64,
    ) -> Option<CounterState> {
        None
    }

    /// The OTP is the one accepted last (privacyIDEA's "previous otp used again" hint). Types
    /// without a counter never say so.
    fn is_previous_otp(&self, _rec: &TokenRecord, _key: &[u8], _otp: &str, _now: i64) -> bool {
        false
    }

    /// Find two consecutive OTPs in the wide sync window. Only types with a counter or a clock
    /// can (see `can_resync`).
    fn resync(
        &self,
        _rec: &TokenRecord,
        _key: &[u8],
        _otp1: &str,
        _otp2: &str,
        _now: i64,
    ) -> Option<CounterState> {
        None
    }

    /// Whether the token has a counter or drift an explicit resync could move.
    fn can_resync(&self) -> bool {
        false
    }

    /// The token is only valid with a non-empty PIN part (a simple pass whose PIN may be empty
    /// would be no factor at all).
    fn needs_pin(&self) -> bool {
        false
    }

    /// Whether the token takes part in logins through PAM. An SSH key is checked by sshd, not
    /// typed: it never counts as a user's token there (no prompt, no fail counter).
    fn for_login(&self) -> bool {
        true
    }

    /// What `token show` lists besides the common fields, from the opened material (an SSH
    /// key's type and fingerprint). Only called for types where `has_details` is true, so other
    /// types' secrets are never opened for a listing.
    fn details(&self, _material: &[u8]) -> Vec<(String, String)> {
        Vec::new()
    }

    fn has_details(&self) -> bool {
        false
    }

    /// The `otpauth://TYPE/` an authenticator app knows this token as; `None` (the default): the
    /// token has nothing for an app (no enrollment URL or QR code).
    fn otpauth_type(&self) -> Option<&'static str> {
        None
    }

    /// Extra `otpauth://` query parameters for this type (after secret/issuer/algorithm/digits).
    fn otpauth_params(&self, _rec: &TokenRecord) -> String {
        String::new()
    }
}

/// The types whose codes a person reads off a device in sequence (an authenticator app, a key
/// fob): a new token of them can be verified by typing two consecutive codes, and one in a
/// realm's pool claimed by typing one.
pub fn shows_code_sequence(t: TokenType) -> bool {
    matches!(t, TokenType::Hotp | TokenType::Totp)
}

pub fn algorithm(t: TokenType) -> &'static dyn OtpAlgorithm {
    match t {
        TokenType::Hotp => &hotp::Hotp,
        TokenType::Totp => &totp::Totp,
        TokenType::Spass => &spass::Spass,
        TokenType::Daypassword => &daypassword::Daypassword,
        TokenType::Motp => &motp::Motp,
        TokenType::Pw => &pw::Pw,
        TokenType::Paper => &paper::Paper,
        TokenType::Registration => &registration::Registration,
        TokenType::Tan => &tan::Tan,
        TokenType::Applspec => &applspec::Applspec,
        TokenType::Yubikey => &yubikey::Yubikey,
        TokenType::Indexedsecret => &indexedsecret::Indexedsecret,
        TokenType::Question => &question::Question,
        TokenType::Ocra => &ocra::Ocra,
        TokenType::Email => &email::EMAIL,
        TokenType::Sms => &sms::SMS,
        TokenType::Yubico => &yubico::Yubico,
        TokenType::Daplug => &daplug::Daplug,
        TokenType::FourEyes => &foureyes::FourEyes,
        TokenType::Sshkey => &sshkey::Sshkey,
    }
}

/// `otp` is this token's code for `counter` (well formed, compared in constant time).
pub fn code_matches(rec: &TokenRecord, key: &[u8], counter: u64, otp: &str) -> bool {
    well_formed(otp, rec.digits)
        && crate::crypto::ct_eq(
            hotp::hotp(key, counter, rec.digits, rec.hash).as_bytes(),
            otp.as_bytes(),
        )
}

/// The first counter c in `range` where `otp1` is the code for c and `otp2` the code for c+1
/// (an explicit resync).
pub fn find_consecutive(
    rec: &TokenRecord,
    key: &[u8],
    range: std::ops::Range<u64>,
    otp1: &str,
    otp2: &str,
) -> Option<u64> {
    if !well_formed(otp1, rec.digits) || !well_formed(otp2, rec.digits) {
        return None;
    }
    range
        .into_iter()
        .find(|&c| code_matches(rec, key, c, otp1) && code_matches(rec, key, c + 1, otp2))
}

/// A random code of `len` letters and digits (privacyIDEA's genkey contents `cn`), for
/// generated passwords and registration codes.
pub fn random_code(len: usize) -> Zeroizing<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = Zeroizing::new(String::with_capacity(len));
    while out.len() < len {
        for b in crate::crypto::random_bytes(len).iter() {
            // Rejection sampling keeps every symbol equally likely.
            let limit = 256 - 256 % ALPHABET.len();
            if (*b as usize) < limit && out.len() < len {
                out.push(ALPHABET[*b as usize % ALPHABET.len()] as char);
            }
        }
    }
    out
}

/// The one-time part equals `secret` (a fixed password or code), compared in constant time.
pub fn secret_matches(secret: &[u8], otp: &str) -> bool {
    !secret.is_empty() && crate::crypto::ct_eq(secret, otp.as_bytes())
}

/// An OTP of the right shape for this token: exactly `digits` ASCII digits (privacyIDEA's
/// `check_token_otp_length`). Anything else never reaches the HMAC comparison.
pub fn well_formed(otp: &str, digits: u8) -> bool {
    otp.len() == digits as usize && otp.bytes().all(|b| b.is_ascii_digit())
}
