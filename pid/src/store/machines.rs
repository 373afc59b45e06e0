//! The `machine_tokens` tree: which token is attached to which host for which application.
//!
//! Key: `app \0 host \0 serial` (none of the three may contain NUL: serials and host names are
//! validated before they get here), so the keys of one application on one host are one prefix
//! scan — what `pictl ssh keys` and `pictl luks assign` ask for.

use super::Store;
use crate::error::PidError;
use protocol::frame::{decode_value, encode_value};
use protocol::{MachineApp, MachineOptions};
use serde::{Deserialize, Serialize};

pub const MACHINE_SCHEMA: u16 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineRecord {
    pub schema: u16,
    pub options: MachineOptions,
    /// Unix seconds.
    pub created: i64,
}

/// One stored assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub app: MachineApp,
    pub host: String,
    pub serial: String,
    pub rec: MachineRecord,
}

fn key(app: MachineApp, host: &str, serial: &str) -> Vec<u8> {
    let mut k = prefix(app, Some(host));
    k.extend_from_slice(serial.as_bytes());
    k
}

fn prefix(app: MachineApp, host: Option<&str>) -> Vec<u8> {
    let mut k = Vec::with_capacity(64);
    k.extend_from_slice(app.as_str().as_bytes());
    k.push(0);
    if let Some(h) = host {
        k.extend_from_slice(h.as_bytes());
        k.push(0);
    }
    k
}

fn split_key(k: &[u8]) -> Result<(MachineApp, String, String), PidError> {
    let corrupt = || PidError::Corrupt("a machine_tokens key is damaged".into());
    let mut parts = k.splitn(3, |b| *b == 0);
    let app = parts
        .next()
        .and_then(|a| std::str::from_utf8(a).ok())
        .and_then(MachineApp::from_name)
        .ok_or_else(corrupt)?;
    let mut text = || {
        parts
            .next()
            .and_then(|p| String::from_utf8(p.to_vec()).ok())
            .ok_or_else(corrupt)
    };
    let host = text()?;
    let serial = text()?;
    Ok((app, host, serial))
}

impl Store {
    /// Store a new assignment; `AlreadyExists` if the token is already attached to this host
    /// for this application (change it by detaching first, so nothing is silently replaced).
    pub fn attach(
        &self,
        app: MachineApp,
        host: &str,
        serial: &str,
        rec: &MachineRecord,
    ) -> Result<(), PidError> {
        let bytes = encode_value(rec)?;
        let key = key(app, host, serial);
        self.journal.write(|r| {
            if !self.machine_tokens.contains_key(&key)? {
                self.machine_tokens.set(r, &key, Some(&bytes));
                return Ok(());
            }
            Err(PidError::AlreadyExists(format!(
                "token {serial} is already attached to {host} for {}; detach it first to \
                 change its options",
                app.as_str()
            )))
        })
    }

    /// Remove one assignment; false if there was none.
    pub fn detach(&self, app: MachineApp, host: &str, serial: &str) -> Result<bool, PidError> {
        let key = key(app, host, serial);
        self.journal.write(|r| {
            let removed = self.machine_tokens.contains_key(&key)?;
            if removed {
                self.machine_tokens.set(r, &key, None);
            }
            Ok(removed)
        })
    }

    /// Remove every assignment of a token (it is being deleted). Returns how many there were.
    pub fn detach_all(&self, serial: &str) -> Result<usize, PidError> {
        let mine: Vec<Attachment> = self
            .attachments(None, None)?
            .into_iter()
            .filter(|a| a.serial == serial)
            .collect();
        for a in &mine {
            self.detach(a.app, &a.host, &a.serial)?;
        }
        Ok(mine.len())
    }

    /// Assignments of `app` (all applications if `None`) on `host` (every host if `None`),
    /// ordered by application, host and serial.
    pub fn attachments(
        &self,
        app: Option<MachineApp>,
        host: Option<&str>,
    ) -> Result<Vec<Attachment>, PidError> {
        let scan = match app {
            Some(app) => self.machine_tokens.scan_prefix(&prefix(app, host))?,
            None => self.machine_tokens.iter()?,
        };
        let mut out = Vec::new();
        for item in scan {
            let (k, v) = item?;
            let (app, h, serial) = split_key(&k)?;
            if host.is_some_and(|want| want != h) {
                continue;
            }
            out.push(Attachment {
                app,
                host: h,
                serial,
                rec: decode_value(&v)?,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("db"), 4).unwrap();
        (dir, s)
    }

    fn rec(slot: u8) -> MachineRecord {
        MachineRecord {
            schema: MACHINE_SCHEMA,
            options: MachineOptions {
                slot: Some(slot),
                ..Default::default()
            },
            created: 1,
        }
    }

    #[test]
    fn attachments_are_found_by_application_and_host_only() {
        let (_d, s) = store();
        s.attach(MachineApp::Luks, "h1", "UBOM1_2", &rec(1))
            .unwrap();
        s.attach(MachineApp::Luks, "h10", "UBOM2_2", &rec(2))
            .unwrap();
        s.attach(MachineApp::Ssh, "h1", "SSHK1", &rec(3)).unwrap();
        let h1: Vec<_> = s
            .attachments(Some(MachineApp::Luks), Some("h1"))
            .unwrap()
            .into_iter()
            .map(|a| a.serial)
            .collect();
        // "h1" must not match "h10": the host ends at its NUL separator.
        assert_eq!(h1, ["UBOM1_2"]);
        assert_eq!(s.attachments(None, Some("h1")).unwrap().len(), 2);
        assert_eq!(s.attachments(None, None).unwrap().len(), 3);
    }

    #[test]
    fn attaching_twice_is_refused_and_keeps_the_first_options() {
        let (_d, s) = store();
        s.attach(MachineApp::Luks, "h", "UBOM1_2", &rec(1)).unwrap();
        let again = s.attach(MachineApp::Luks, "h", "UBOM1_2", &rec(5));
        assert!(matches!(again, Err(PidError::AlreadyExists(_))));
        let got = s.attachments(Some(MachineApp::Luks), Some("h")).unwrap();
        assert_eq!(got[0].rec.options.slot, Some(1));
    }

    #[test]
    fn deleting_a_token_removes_all_its_attachments() {
        let (_d, s) = store();
        s.attach(MachineApp::Ssh, "a", "SSHK1", &rec(1)).unwrap();
        s.attach(MachineApp::Ssh, "b", "SSHK1", &rec(1)).unwrap();
        s.attach(MachineApp::Ssh, "a", "SSHK2", &rec(1)).unwrap();
        assert_eq!(s.detach_all("SSHK1").unwrap(), 2);
        let left: Vec<_> = s
            .attachments(None, None)
            .unwrap()
            .into_iter()
            .map(|a| a.serial)
            .collect();
        assert_eq!(left, ["SSHK2"]);
        assert!(!s.detach(MachineApp::Ssh, "a", "SSHK1").unwrap());
    }
}
