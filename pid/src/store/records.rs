//! Records as they are stored. Each carries a schema number so a later version can migrate it.

use protocol::{HashAlgorithm, TokenInfo, TokenType};
use serde::{Deserialize, Serialize};

pub const TOKEN_SCHEMA: u16 = 1;

/// Who a token belongs to. Everything is keyed by (realm, login) from the start.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Owner {
    pub realm: String,
    pub login: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub schema: u16,
    pub serial: String,
    pub token_type: TokenType,
    pub owner: Option<Owner>,
    /// AES-256-GCM sealed key bytes, AAD = (serial, "otpkey").
    pub otpkey: Vec<u8>,
    /// argon2id PHC string; None = no PIN (only an empty PIN part matches).
    pub pin_hash: Option<String>,
    pub digits: u8,
    pub hash: HashAlgorithm,
    /// HOTP: next expected counter. TOTP: last accepted time step (0 = none yet).
    pub count: u64,
    pub count_window: u32,
    /// TOTP step, seconds.
    pub period: u32,
    /// TOTP window either side, seconds.
    pub time_window: u32,
    /// TOTP learned clock drift, seconds.
    pub time_shift: i64,
    pub active: bool,
    pub revoked: bool,
    pub locked: bool,
    pub failcount: u32,
    pub maxfail: u32,
    pub failcounter_exceeded_at: Option<i64>,
    pub count_auth: u64,
    pub count_auth_max: u64,
    pub count_auth_success: u64,
    pub count_auth_success_max: u64,
    pub validity_start: Option<i64>,
    pub validity_end: Option<i64>,
    pub description: String,
    pub created: i64,
    pub last_auth: Option<i64>,
}

impl TokenRecord {
    /// The fail counter has reached `maxfail`: the token refuses even a right OTP.
    pub fn fail_locked(&self) -> bool {
        self.failcount >= self.maxfail
    }

    pub fn info(&self) -> TokenInfo {
        let totp = matches!(self.token_type, TokenType::Totp | TokenType::Daypassword);
        TokenInfo {
            serial: self.serial.clone(),
            token_type: self.token_type,
            user: self.owner.as_ref().map(|o| o.login.clone()),
            realm: self.owner.as_ref().map(|o| o.realm.clone()),
            active: self.active,
            revoked: self.revoked,
            locked: self.locked || self.fail_locked(),
            failcount: self.failcount,
            maxfail: self.maxfail,
            count: self.count,
            description: self.description.clone(),
            digits: self.digits,
            hash: self.hash,
            period: totp.then_some(self.period),
            count_window: self.count_window,
            time_window: totp.then_some(self.time_window),
            time_shift: totp.then_some(self.time_shift),
            has_pin: self.pin_hash.is_some(),
            count_auth: self.count_auth,
            count_auth_max: self.count_auth_max,
            count_auth_success: self.count_auth_success,
            count_auth_success_max: self.count_auth_success_max,
            validity_start: self.validity_start,
            validity_end: self.validity_end,
            created: self.created,
            last_auth: self.last_auth,
            failcounter_exceeded_at: self.failcounter_exceeded_at,
            details: Vec::new(),
        }
    }
}
