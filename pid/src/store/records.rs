//! Records as they are stored. Each carries a schema number so a later version can migrate it.

use crate::auth::lockout::{Source, SourceFails};
use protocol::frame::decode_value;
use protocol::{HashAlgorithm, TokenInfo, TokenType};
use serde::{Deserialize, Serialize};

/// 2: fail counters per source (`fails`) instead of one `failcount`.
/// 3: `rollout`, `next_pin_change` and `pool_realm` at the end.
pub const TOKEN_SCHEMA: u16 = 3;

/// Where a token is in its enrollment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rollout {
    /// In use (as far as `active` and the rest allow).
    #[default]
    Enrolled,
    /// Waits for its user to type two consecutive codes (privacyIDEA's `verify_enrollment`):
    /// until then it takes part in no login and cannot be enabled, so a token nobody saw
    /// working is never a way in.
    Verify,
}

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
    pub maxfail: u32,
    /// Wrong answers and locks, per source of the attempts (see `auth::lockout`).
    pub fails: Vec<SourceFails>,
    pub count_auth: u64,
    pub count_auth_max: u64,
    pub count_auth_success: u64,
    pub count_auth_success_max: u64,
    pub validity_start: Option<i64>,
    pub validity_end: Option<i64>,
    pub description: String,
    pub created: i64,
    pub last_auth: Option<i64>,
    pub rollout: Rollout,
    /// When (Unix seconds) the PIN must next change: a login with the token from then on asks
    /// for a new PIN (`change_pin_on_first_use`, `change_pin_every`). None: no change due.
    pub next_pin_change: Option<i64>,
    /// The realm whose pool an unassigned token belongs to (privacyIDEA's token realms): a
    /// user of that realm without a token may claim it by logging in with it
    /// (`autoassignment`). None for assigned tokens and for tokens in no pool.
    pub pool_realm: Option<String>,
}

/// The fields schema 3 added, in the order they end a record. A schema 2 record is a schema 3
/// record without them: bincode writes a struct as its fields one after the other, so the
/// schema 2 bytes followed by these defaults decode as the current layout.
#[derive(Serialize)]
struct AddedInSchema3 {
    rollout: Rollout,
    next_pin_change: Option<i64>,
    pool_realm: Option<String>,
}

impl TokenRecord {
    /// Decode a stored record of either schema (a schema 1 record becomes a schema 2 one: its
    /// fail counter holds for every source until a success or a reset, so an upgrade unlocks
    /// nothing).
    pub fn decode(raw: &[u8]) -> Result<TokenRecord, protocol::FrameError> {
        // The schema number comes first, so a record of the other layout that happens to
        // decode still says what it is.
        let current = decode_value::<TokenRecord>(raw);
        match current {
            Ok(rec) if rec.schema == TOKEN_SCHEMA => Ok(rec),
            _ => {
                if let Some(rec) = Self::decode_schema_2(raw) {
                    return Ok(rec);
                }
                match decode_value::<TokenRecordV1>(raw) {
                    Ok(old) if old.schema == 1 => Ok(old.upgrade()),
                    _ => current,
                }
            }
        }
    }

    /// A schema 2 record, read with the fields schema 3 added at their defaults.
    fn decode_schema_2(raw: &[u8]) -> Option<TokenRecord> {
        let added = protocol::frame::encode_value(&AddedInSchema3 {
            rollout: Rollout::Enrolled,
            next_pin_change: None,
            pool_realm: None,
        })
        .ok()?;
        let mut bytes = Vec::with_capacity(raw.len() + added.len());
        bytes.extend_from_slice(raw);
        bytes.extend_from_slice(&added);
        let mut rec = decode_value::<TokenRecord>(&bytes).ok()?;
        if rec.schema != 2 {
            return None;
        }
        rec.schema = TOKEN_SCHEMA;
        Some(rec)
    }

    pub fn info(&self, now: i64) -> TokenInfo {
        let totp = matches!(self.token_type, TokenType::Totp | TokenType::Daypassword);
        let locked_since = self.locked_since(now);
        TokenInfo {
            serial: self.serial.clone(),
            token_type: self.token_type,
            user: self.owner.as_ref().map(|o| o.login.clone()),
            realm: self.owner.as_ref().map(|o| o.realm.clone()),
            active: self.active,
            revoked: self.revoked,
            locked: self.locked || locked_since.is_some(),
            failcount: self.failcount(),
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
            failcounter_exceeded_at: locked_since,
            details: (self.rollout == Rollout::Verify)
                .then(|| {
                    (
                        "enrollment".to_owned(),
                        format!(
                            "waits for two consecutive codes (pictl token verify {} CODE \
                             NEXT-CODE)",
                            self.serial
                        ),
                    )
                })
                .into_iter()
                .chain(
                    // A pool token names its pool (it has no owner whose realm would say it).
                    self.pool_realm
                        .iter()
                        .map(|realm| ("pool".to_owned(), realm.clone())),
                )
                .chain(self.fails.iter().map(|f| {
                    let state = match f.locked {
                        Some((_, None)) if f.locks > 0 => "locked until reset".to_owned(),
                        Some((_, Some(until))) if now < until => {
                            format!("locked for {} s more", until - now)
                        }
                        _ => "not locked".to_owned(),
                    };
                    (
                        format!("failures from {}", f.source.describe()),
                        format!(
                            "{}/{}, {state}, locked {} times",
                            f.count, self.maxfail, f.locks
                        ),
                    )
                }))
                .collect(),
        }
    }
}

/// A token as schema 1 stored it: one fail counter for all sources.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct TokenRecordV1 {
    schema: u16,
    serial: String,
    token_type: TokenType,
    owner: Option<Owner>,
    otpkey: Vec<u8>,
    pin_hash: Option<String>,
    digits: u8,
    hash: HashAlgorithm,
    count: u64,
    count_window: u32,
    period: u32,
    time_window: u32,
    time_shift: i64,
    active: bool,
    revoked: bool,
    locked: bool,
    failcount: u32,
    maxfail: u32,
    failcounter_exceeded_at: Option<i64>,
    count_auth: u64,
    count_auth_max: u64,
    count_auth_success: u64,
    count_auth_success_max: u64,
    validity_start: Option<i64>,
    validity_end: Option<i64>,
    description: String,
    created: i64,
    last_auth: Option<i64>,
}

impl TokenRecordV1 {
    fn upgrade(self) -> TokenRecord {
        // A locked counter stays locked until a success or a reset, as schema 1 had it with
        // `failcounter_clear_timeout_mins = 0`, the default then.
        let fails = (self.failcount > 0)
            .then(|| SourceFails {
                source: Source::Any,
                count: self.failcount,
                locks: u32::from(self.failcount >= self.maxfail),
                locked: (self.failcount >= self.maxfail)
                    .then(|| (self.failcounter_exceeded_at.unwrap_or(0), None)),
            })
            .into_iter()
            .collect();
        TokenRecord {
            schema: TOKEN_SCHEMA,
            serial: self.serial,
            token_type: self.token_type,
            owner: self.owner,
            otpkey: self.otpkey,
            pin_hash: self.pin_hash,
            digits: self.digits,
            hash: self.hash,
            count: self.count,
            count_window: self.count_window,
            period: self.period,
            time_window: self.time_window,
            time_shift: self.time_shift,
            active: self.active,
            revoked: self.revoked,
            locked: self.locked,
            maxfail: self.maxfail,
            fails,
            count_auth: self.count_auth,
            count_auth_max: self.count_auth_max,
            count_auth_success: self.count_auth_success,
            count_auth_success_max: self.count_auth_success_max,
            validity_start: self.validity_start,
            validity_end: self.validity_end,
            description: self.description,
            created: self.created,
            last_auth: self.last_auth,
            rollout: Rollout::Enrolled,
            next_pin_change: None,
            pool_realm: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::frame::encode_value;

    fn v1(failcount: u32, maxfail: u32) -> TokenRecordV1 {
        TokenRecordV1 {
            schema: 1,
            serial: "OLD1".into(),
            token_type: TokenType::Hotp,
            owner: Some(Owner {
                realm: "default".into(),
                login: "root".into(),
            }),
            otpkey: vec![1, 2, 3],
            pin_hash: None,
            digits: 6,
            hash: HashAlgorithm::Sha1,
            count: 42,
            count_window: 10,
            period: 30,
            time_window: 180,
            time_shift: 0,
            active: true,
            revoked: false,
            locked: false,
            failcount,
            maxfail,
            failcounter_exceeded_at: (failcount >= maxfail).then_some(1_000),
            count_auth: 7,
            count_auth_max: 0,
            count_auth_success: 5,
            count_auth_success_max: 0,
            validity_start: None,
            validity_end: None,
            description: "from before".into(),
            created: 1,
            last_auth: Some(2),
        }
    }

    #[test]
    fn a_schema_1_record_is_read_with_its_counters_and_its_lock_for_every_source() {
        let locked = TokenRecord::decode(&encode_value(&v1(10, 10)).unwrap()).unwrap();
        assert_eq!(locked.schema, TOKEN_SCHEMA);
        assert_eq!((locked.count, locked.count_auth), (42, 7));
        assert_eq!(locked.description, "from before");
        assert_eq!(locked.failcount(), 10);
        assert!(locked.locked_for(&Source::Local(0), i64::MAX - 1));
        assert!(locked.locked_for(&Source::Remote("h".into()), 5_000));
        assert_eq!(locked.locked_since(5_000), Some(1_000));

        let counting = TokenRecord::decode(&encode_value(&v1(3, 10)).unwrap()).unwrap();
        assert_eq!(counting.failcount(), 3);
        assert!(!counting.locked_for(&Source::Local(0), 0));

        let clean = TokenRecord::decode(&encode_value(&v1(0, 10)).unwrap()).unwrap();
        assert!(clean.fails.is_empty());
        // Written back, it is a schema 2 record that reads as itself.
        let again = TokenRecord::decode(&encode_value(&locked).unwrap()).unwrap();
        assert_eq!(again, locked);
    }

    #[test]
    fn a_schema_2_record_is_read_enrolled_without_a_pin_change_or_a_pool() {
        let mut current = v1(3, 10).upgrade();
        current.rollout = Rollout::Verify;
        current.next_pin_change = Some(5);
        current.pool_realm = Some("pool".into());
        // The schema 2 bytes: the current record without the fields schema 3 added.
        let full = encode_value(&current).unwrap();
        let added = encode_value(&AddedInSchema3 {
            rollout: current.rollout,
            next_pin_change: current.next_pin_change,
            pool_realm: current.pool_realm.clone(),
        })
        .unwrap();
        let mut v2 = full[..full.len() - added.len()].to_vec();
        // The schema number is the record's first field (a u16, one byte in bincode's varint).
        assert_eq!(v2[0], TOKEN_SCHEMA as u8);
        v2[0] = 2;
        let read = TokenRecord::decode(&v2).unwrap();
        assert_eq!(read.schema, TOKEN_SCHEMA);
        assert_eq!(read.rollout, Rollout::Enrolled);
        assert_eq!(
            (read.next_pin_change, read.pool_realm.as_deref()),
            (None, None)
        );
        assert_eq!((read.count, read.failcount()), (42, 3));
        assert_eq!(read.description, "from before");
        assert_eq!(TokenRecord::decode(&full).unwrap(), current);
    }

    #[test]
    fn bytes_of_neither_schema_are_an_error() {
        assert!(TokenRecord::decode(b"\x05garbage").is_err());
        let mut bytes = encode_value(&v1(0, 10)).unwrap();
        bytes.push(0);
        assert!(TokenRecord::decode(&bytes).is_err(), "trailing bytes");
    }
}
