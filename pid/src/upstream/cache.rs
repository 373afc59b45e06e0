//! This host's offline values, sealed in the store: kept from a server's hand-out, tried when a
//! user of an upstream realm logs in, spent, counted when wrong, refilled.
//!
//! Invariants:
//! - A value that logged a user in, and every value below it, is gone from the record before
//!   the login is accepted (the caller waits until the store has it on disk).
//! - A hand-out replaces the token's record: the online login that earned it used a code above
//!   every value handed out before, which the server therefore counts as spent.
//! - Wrong offline codes are counted only when the server could not be asked (otherwise the
//!   server decided); at the limit offline logins wait for the next online login, which
//!   forgives them.
//! - The values, the refill token and the pass of an offline login not yet refilled are sealed
//!   with the host's key, bound to the token's serial. privacyIDEA's refill needs the pass the
//!   user typed offline (its PIN goes into the new values), so it is kept, sealed, until the
//!   refill, and then wiped.
//!
//! Blocking (PBKDF2, the store): call off the executor.

use super::answer::OfflineItem;
use super::offline::{try_offline, Limits, Offline, Values};
use crate::crypto::Cipher;
use crate::error::PidError;
use crate::store::offline::{OfflineRecord, OFFLINE_SCHEMA};
use crate::store::{Owner, Store};
use protocol::frame::{decode_value, encode_value};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// The field the sealed part is bound to.
const FIELD: &str = "offline";

/// What the sealed part of a record holds.
#[derive(Serialize, Deserialize)]
struct Secrets {
    values: Values,
    refill_token: String,
    /// The pass of the last offline login, until the server refills the values.
    pending_pass: Option<String>,
}

impl Drop for Secrets {
    fn drop(&mut self) {
        self.refill_token.zeroize();
        if let Some(p) = self.pending_pass.as_mut() {
            p.zeroize();
        }
    }
}

/// What one offline try decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The user has no values from this server.
    NoValues,
    /// The value at `counter` of `serial`: it and everything below it are spent in the store.
    Accepted { serial: String, counter: u64 },
    /// No value matched.
    NoMatch,
    /// No record could be tried: each is locked by wrong codes or too old.
    Unusable { locked: bool },
}

/// A refill to ask the server for.
pub struct Refill {
    pub owner: Owner,
    pub serial: String,
    pub pass: Zeroizing<String>,
    pub refill_token: Zeroizing<String>,
}

/// The cache of one upstream server.
pub struct Cache<'a> {
    pub store: &'a Store,
    pub cipher: &'a Cipher,
    /// The `[upstream.NAME]` whose records these are.
    pub upstream: &'a str,
}

impl Cache<'_> {
    fn seal(&self, serial: &str, secrets: &Secrets) -> Result<Vec<u8>, PidError> {
        let plain = Zeroizing::new(encode_value(secrets)?);
        self.cipher.seal(serial, FIELD, &plain)
    }

    fn open(&self, serial: &str, rec: &OfflineRecord) -> Result<Secrets, PidError> {
        let plain = self.cipher.open(serial, FIELD, &rec.sealed)?;
        Ok(decode_value(&plain)?)
    }

    /// The record's counters and sealed part for `secrets`.
    fn fill(
        &self,
        serial: &str,
        rec: &mut OfflineRecord,
        secrets: &Secrets,
    ) -> Result<(), PidError> {
        let range = secrets.values.range();
        rec.count = u32::try_from(secrets.values.len()).unwrap_or(u32::MAX);
        rec.first_counter = range.map(|r| r.0);
        rec.last_counter = range.map(|r| r.1);
        rec.sealed = self.seal(serial, secrets)?;
        Ok(())
    }

    /// Keep a hand-out for `owner`; `max_fails` unless the server sent the token's `maxfail`.
    pub fn keep(
        &self,
        owner: &Owner,
        item: &OfflineItem,
        max_fails: u32,
        now: i64,
    ) -> Result<(), PidError> {
        let secrets = Secrets {
            values: item.values.clone(),
            refill_token: item.refill_token.to_string(),
            pending_pass: None,
        };
        let mut rec = OfflineRecord {
            schema: OFFLINE_SCHEMA,
            upstream: self.upstream.to_owned(),
            count: 0,
            first_counter: None,
            last_counter: None,
            sealed: Vec::new(),
            fails: 0,
            max_fails: item.max_fail.filter(|&m| m > 0).unwrap_or(max_fails),
            received_at: now,
            refilled_at: None,
            refill_due: false,
        };
        self.fill(&item.serial, &mut rec, &secrets)?;
        self.store
            .update_offline(owner, &item.serial, |_| Ok(Some(rec)))
            .map(drop)
    }

    /// Whether `owner` holds values from this server (a prefix scan, no decryption).
    pub fn holds_values(&self, owner: &Owner) -> Result<bool, PidError> {
        Ok(!self.records(owner)?.is_empty())
    }

    /// The records of `owner` from this server.
    fn records(&self, owner: &Owner) -> Result<Vec<(String, OfflineRecord)>, PidError> {
        Ok(self
            .store
            .offline_records(Some(owner))?
            .into_iter()
            .filter(|e| e.rec.upstream == self.upstream)
            .map(|e| (e.serial, e.rec))
            .collect())
    }

    /// Try `typed` against `owner`'s values at `now`. Every usable record's window is
    /// computed in full (see `offline::Values::find`). A match is spent in the store before
    /// this returns.
    pub fn try_typed(
        &self,
        owner: &Owner,
        typed: &str,
        now: i64,
        max_age_secs: Option<i64>,
    ) -> Result<Attempt, PidError> {
        let records = self.records(owner)?;
        if records.is_empty() {
            return Ok(Attempt::NoValues);
        }
        let (mut tried, mut locked) = (0, false);
        let mut matched: Option<(String, u64)> = None;
        for (serial, rec) in &records {
            let secrets = self.open(serial, rec)?;
            let limits = Limits {
                max_fails: rec.max_fails,
                max_age_secs,
            };
            match try_offline(
                &secrets.values,
                typed.as_bytes(),
                rec.fails,
                rec.received_at,
                now,
                limits,
            ) {
                Offline::Locked => locked = true,
                Offline::Expired => {}
                Offline::NoMatch => tried += 1,
                Offline::Match(counter) => {
                    tried += 1;
                    if matched.is_none() {
                        matched = Some((serial.clone(), counter));
                    }
                }
            }
        }
        let Some((serial, counter)) = matched else {
            return Ok(if tried == 0 {
                Attempt::Unusable { locked }
            } else {
                Attempt::NoMatch
            });
        };
        self.store.update_offline(owner, &serial, |stored| {
            // The record as it is now (a refill may have added values since it was read).
            let mut rec = stored.ok_or_else(|| {
                PidError::Internal("an offline record vanished during a login".into())
            })?;
            let mut secrets = self.open(&serial, &rec)?;
            secrets.values.spend_through(counter);
            secrets.pending_pass = Some(typed.to_owned());
            rec.fails = 0;
            rec.refill_due = true;
            self.fill(&serial, &mut rec, &secrets)?;
            Ok(Some(rec))
        })?;
        Ok(Attempt::Accepted { serial, counter })
    }

    /// A wrong code while the server could not be asked: one more failure on each of the
    /// user's records.
    pub fn charge_failure(&self, owner: &Owner) -> Result<(), PidError> {
        for (serial, _) in self.records(owner)? {
            self.store.update_offline(owner, &serial, |rec| {
                Ok(rec.map(|mut r| {
                    r.fails = r.fails.saturating_add(1);
                    r
                }))
            })?;
        }
        Ok(())
    }

    /// A successful online login: the user's offline failures are forgiven.
    pub fn forgive(&self, owner: &Owner) -> Result<(), PidError> {
        for (serial, rec) in self.records(owner)? {
            if rec.fails > 0 {
                self.store.update_offline(owner, &serial, |rec| {
                    Ok(rec.map(|mut r| {
                        r.fails = 0;
                        r
                    }))
                })?;
            }
        }
        Ok(())
    }

    /// The refills to ask for: records used offline since the last hand-out or refill (all
    /// users' when `owner` is `None`).
    pub fn due(&self, owner: Option<&Owner>) -> Result<Vec<Refill>, PidError> {
        let mut out = Vec::new();
        for e in self.store.offline_records(owner)? {
            if e.rec.upstream != self.upstream || !e.rec.refill_due {
                continue;
            }
            let secrets = self.open(&e.serial, &e.rec)?;
            if let Some(pass) = &secrets.pending_pass {
                out.push(Refill {
                    owner: e.owner,
                    serial: e.serial,
                    pass: Zeroizing::new(pass.clone()),
                    refill_token: Zeroizing::new(secrets.refill_token.clone()),
                });
            }
        }
        Ok(out)
    }

    /// The server's refill answer for `serial`: its values join the record, its refill token
    /// replaces the old one, the kept pass is wiped.
    pub fn refilled(&self, owner: &Owner, item: OfflineItem, now: i64) -> Result<(), PidError> {
        let serial = item.serial.clone();
        self.store.update_offline(owner, &serial, |stored| {
            let Some(mut rec) = stored else {
                return Ok(None);
            };
            let mut secrets = self.open(&serial, &rec)?;
            secrets.values.extend(item.values);
            secrets.refill_token = item.refill_token.to_string();
            if let Some(p) = secrets.pending_pass.as_mut() {
                p.zeroize();
            }
            secrets.pending_pass = None;
            rec.refill_due = false;
            rec.refilled_at = Some(now);
            rec.received_at = now;
            self.fill(&serial, &mut rec, &secrets)?;
            Ok(Some(rec))
        })?;
        Ok(())
    }

    /// The server refused a refill for good (its refill token is no longer valid): the kept
    /// pass is wiped and no refill is asked for again until the next hand-out.
    pub fn refill_refused(&self, owner: &Owner, serial: &str) -> Result<(), PidError> {
        self.store.update_offline(owner, serial, |stored| {
            let Some(mut rec) = stored else {
                return Ok(None);
            };
            let mut secrets = self.open(serial, &rec)?;
            secrets.pending_pass = None;
            rec.refill_due = false;
            self.fill(serial, &mut rec, &secrets)?;
            Ok(Some(rec))
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
