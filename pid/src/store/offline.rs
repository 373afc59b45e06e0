//! The `offline` tree: offline OTP values upstream servers handed out for this host, one record
//! per (user, token).
//!
//! Key: `realm \0 login \0 serial` (none contains NUL: logins and realm names are validated,
//! serials come checked from the server), so one user's records are one prefix scan.
//!
//! The values and the refill token are sealed by the caller with the host's key before they get
//! here (`sealed`); what `pictl offline status` shows (how many values, their counters, the
//! failures) is kept beside them in the clear, and is no secret.
//!
//! Beside it, the `upstream_ssh_keys` tree: the SSH keys an upstream server last gave for a
//! login (`server \0 login \0 service id`), so that sshd keeps getting them through an outage,
//! also after a restart. Only non-empty answers are kept: logins sshd is asked about are chosen
//! by whoever connects, and an answer without keys leaves nothing behind.

use super::{Owner, Store};
use crate::error::PidError;
use protocol::frame::{decode_value, encode_value};
use serde::{Deserialize, Serialize};

pub const OFFLINE_SCHEMA: u16 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineRecord {
    pub schema: u16,
    /// The `[upstream.NAME]` server that handed the values out.
    pub upstream: String,
    /// How many values are held, and the lowest and highest counter.
    pub count: u32,
    pub first_counter: Option<u64>,
    pub last_counter: Option<u64>,
    /// The values and the refill token, sealed with the host's key (bound to the serial).
    pub sealed: Vec<u8>,
    /// Wrong offline codes since the last online login.
    pub fails: u32,
    /// Wrong offline codes allowed.
    pub max_fails: u32,
    /// When the newest values arrived (a hand-out or a refill), unix seconds.
    pub received_at: i64,
    /// When values were last refilled, unix seconds.
    pub refilled_at: Option<i64>,
    /// Values were used offline and the server has not refilled them yet.
    pub refill_due: bool,
}

/// One stored record with its key's parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfflineEntry {
    pub owner: Owner,
    pub serial: String,
    pub rec: OfflineRecord,
}

fn prefix(owner: Option<&Owner>) -> Vec<u8> {
    let mut k = Vec::with_capacity(96);
    if let Some(o) = owner {
        k.extend_from_slice(o.realm.as_bytes());
        k.push(0);
        k.extend_from_slice(o.login.as_bytes());
        k.push(0);
    }
    k
}

fn key(owner: &Owner, serial: &str) -> Vec<u8> {
    let mut k = prefix(Some(owner));
    k.extend_from_slice(serial.as_bytes());
    k
}

fn split_key(k: &[u8]) -> Result<(Owner, String), PidError> {
    let corrupt = || PidError::Corrupt("an offline key is damaged".into());
    let mut parts = k
        .splitn(3, |b| *b == 0)
        .map(|p| String::from_utf8(p.to_vec()).map_err(|_| corrupt()));
    let mut next = || parts.next().ok_or_else(corrupt)?;
    let realm = next()?;
    let login = next()?;
    let serial = next()?;
    Ok((Owner { realm, login }, serial))
}

impl Store {
    /// The offline records of `owner` (every user's when `None`), ordered by user and serial.
    pub fn offline_records(&self, owner: Option<&Owner>) -> Result<Vec<OfflineEntry>, PidError> {
        let scan = match owner {
            Some(_) => self.offline.scan_prefix(&prefix(owner))?,
            None => self.offline.iter()?,
        };
        let mut out = Vec::new();
        for item in scan {
            let (k, v) = item?;
            let (owner, serial) = split_key(&k)?;
            out.push(OfflineEntry {
                owner,
                serial,
                rec: decode_value(&v)?,
            });
        }
        Ok(out)
    }

    /// Read, change and write one record in one step: `change` gets the stored record (`None`
    /// if there is none) and returns what to store (`None` deletes it). No other write comes
    /// between the read and the write. Returns what `change` returned.
    pub fn update_offline(
        &self,
        owner: &Owner,
        serial: &str,
        change: impl FnOnce(Option<OfflineRecord>) -> Result<Option<OfflineRecord>, PidError>,
    ) -> Result<Option<OfflineRecord>, PidError> {
        if serial.is_empty() || serial.contains('\0') {
            return Err(PidError::InvalidArgument(
                "an offline serial must not be empty or hold NUL".into(),
            ));
        }
        let key = key(owner, serial);
        self.journal.write(|r| {
            let stored = match self.offline.get(&key)? {
                Some(v) => Some(decode_value::<OfflineRecord>(&v)?),
                None => None,
            };
            let new = change(stored)?;
            match &new {
                Some(rec) => {
                    let bytes = encode_value(rec)?;
                    self.offline.set(r, &key, Some(&bytes));
                }
                None => self.offline.set(r, &key, None),
            }
            Ok(new)
        })
    }
}

/// The SSH keys a server last gave for one login, and when (unix seconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamSshKeys {
    pub keys: Vec<String>,
    pub fetched: i64,
}

fn ssh_key(server: &str, login: &str, service_id: Option<&str>) -> Vec<u8> {
    let mut k = Vec::with_capacity(64);
    for part in [server, login, service_id.unwrap_or("")] {
        k.extend_from_slice(part.as_bytes());
        k.push(0);
    }
    k
}

impl Store {
    /// What `server` last gave for `login` (and `service_id`).
    pub fn upstream_ssh_keys(
        &self,
        server: &str,
        login: &str,
        service_id: Option<&str>,
    ) -> Result<Option<UpstreamSshKeys>, PidError> {
        match self
            .upstream_ssh_keys
            .get(&ssh_key(server, login, service_id))?
        {
            Some(v) => Ok(Some(decode_value(&v)?)),
            None => Ok(None),
        }
    }

    /// Keep `keys` as what `server` gives for `login` now; an empty answer removes the entry.
    pub fn set_upstream_ssh_keys(
        &self,
        server: &str,
        login: &str,
        service_id: Option<&str>,
        keys: &UpstreamSshKeys,
    ) -> Result<(), PidError> {
        let key = ssh_key(server, login, service_id);
        let bytes = (!keys.keys.is_empty())
            .then(|| encode_value(keys))
            .transpose()?;
        self.journal.write(|r| {
            self.upstream_ssh_keys.set(r, &key, bytes.as_deref());
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(count: u32) -> OfflineRecord {
        OfflineRecord {
            schema: OFFLINE_SCHEMA,
            upstream: "corp".into(),
            count,
            first_counter: Some(1),
            last_counter: Some(u64::from(count)),
            sealed: vec![1, 2, 3],
            fails: 0,
            max_fails: 10,
            received_at: 1_800_000_000,
            refilled_at: None,
            refill_due: false,
        }
    }

    fn owner(login: &str) -> Owner {
        Owner {
            realm: "corp".into(),
            login: login.into(),
        }
    }

    #[test]
    fn a_servers_ssh_keys_are_kept_per_login_and_an_empty_answer_removes_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), 8).unwrap();
        let kept = UpstreamSshKeys {
            keys: vec!["ssh-ed25519 AAAA k".into()],
            fetched: 1_800_000_000,
        };
        store
            .set_upstream_ssh_keys("pi", "root", Some("web"), &kept)
            .unwrap();
        assert_eq!(
            store.upstream_ssh_keys("pi", "root", Some("web")).unwrap(),
            Some(kept)
        );
        assert_eq!(store.upstream_ssh_keys("pi", "root", None).unwrap(), None);
        assert_eq!(
            store
                .upstream_ssh_keys("other", "root", Some("web"))
                .unwrap(),
            None
        );
        let none = UpstreamSshKeys {
            keys: Vec::new(),
            fetched: 1_800_000_100,
        };
        store
            .set_upstream_ssh_keys("pi", "root", Some("web"), &none)
            .unwrap();
        assert_eq!(
            store.upstream_ssh_keys("pi", "root", Some("web")).unwrap(),
            None
        );
    }

    #[test]
    fn records_are_read_changed_and_deleted_per_user_and_token() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), 8).unwrap();
        let (alice, al) = (owner("alice"), owner("al"));
        store
            .update_offline(&alice, "H1", |old| {
                assert_eq!(old, None);
                Ok(Some(rec(5)))
            })
            .unwrap();
        store
            .update_offline(&alice, "H2", |_| Ok(Some(rec(3))))
            .unwrap();
        store
            .update_offline(&al, "H1", |_| Ok(Some(rec(1))))
            .unwrap();
        let mine = store.offline_records(Some(&alice)).unwrap();
        assert_eq!(
            mine.iter()
                .map(|e| (e.serial.as_str(), e.rec.count))
                .collect::<Vec<_>>(),
            vec![("H1", 5), ("H2", 3)],
            "a login that is a prefix of another's does not see its records"
        );
        assert_eq!(store.offline_records(None).unwrap().len(), 3);
        store
            .update_offline(&alice, "H1", |old| {
                let mut r = old.unwrap();
                r.count -= 1;
                Ok(Some(r))
            })
            .unwrap();
        assert_eq!(store.offline_records(Some(&alice)).unwrap()[0].rec.count, 4);
        store.update_offline(&alice, "H1", |_| Ok(None)).unwrap();
        assert_eq!(store.offline_records(Some(&alice)).unwrap().len(), 1);
        let refused = store.update_offline(&alice, "H1", |_| {
            Err(PidError::InvalidArgument("no".into()))
        });
        assert!(refused.is_err());
        assert_eq!(
            store.offline_records(Some(&alice)).unwrap().len(),
            1,
            "nothing written"
        );
    }
}
