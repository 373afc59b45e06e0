//! Refills of offline values, in the background: after an offline login, and whenever the server
//! answers again. A refill never delays or fails a login: it runs after the answer, and what
//! goes wrong is logged and tried again later.

use super::answer::Refusal;
use super::cache::{Cache, Refill};
use super::client::Client;
use crate::clock::Clock;
use crate::crypto::Cipher;
use crate::error::{chain, PidError};
use crate::store::{Owner, Store};
use protocol::AuditEntry;
use std::sync::Arc;

/// What a refill needs, owned, so that it can outlive the request that started it.
#[derive(Clone)]
pub struct Refiller {
    pub client: Arc<Client>,
    pub store: Arc<Store>,
    pub cipher: Arc<Cipher>,
    pub clock: Arc<dyn Clock>,
}

impl Refiller {
    fn cache(&self) -> Cache<'_> {
        Cache {
            store: &self.store,
            cipher: &self.cipher,
            upstream: self.client.name(),
        }
    }

    /// Ask the server for every refill due (of `owner`, or of every user), one after the other,
    /// off the executor. Returns how many succeeded.
    pub async fn run(self, owner: Option<Owner>) -> usize {
        let this = self.clone();
        let done = tokio::task::spawn_blocking(move || this.run_blocking(owner.as_ref())).await;
        match done {
            Ok(Ok(0)) => 0,
            Ok(Ok(n)) => {
                // The new refill token replaces the old one, which the server no longer takes:
                // it must not be lost.
                if let Err(e) = self.store.durable().await {
                    tracing::error!(error = %chain(&e), "offline refill not made durable");
                }
                n
            }
            Ok(Err(e)) => {
                tracing::error!(error = %chain(&e), upstream = self.client.name(), "offline refill failed");
                0
            }
            Err(e) => {
                let e = PidError::task("offline refill", e);
                tracing::error!(error = %chain(&e), "offline refill failed");
                0
            }
        }
    }

    fn run_blocking(&self, owner: Option<&Owner>) -> Result<usize, PidError> {
        let mut refilled = 0;
        for due in self.cache().due(owner)? {
            if self.one(due)? {
                refilled += 1;
            } else {
                // The server could not be asked: the others would fail the same way.
                break;
            }
        }
        Ok(refilled)
    }

    /// One refill; `false` if the server could not be asked.
    fn one(&self, due: Refill) -> Result<bool, PidError> {
        let Refill {
            owner,
            serial,
            pass,
            refill_token,
        } = due;
        let now = self.clock.now();
        let mut entry = self.audit_entry(&owner, &serial, now);
        let answer = self.client.offline_refill(&serial, &pass, &refill_token);
        drop((pass, refill_token));
        match answer {
            Ok(Ok(item)) if item.serial == serial => {
                let n = item.values.len();
                self.cache().refilled(&owner, item, now)?;
                entry.success = true;
                entry.message = format!(
                    "upstream {}: {n} offline values refilled",
                    self.client.name()
                );
                self.store.append_audit(entry);
                Ok(true)
            }
            Ok(Ok(item)) => {
                entry.message = format!(
                    "upstream {}: the refill answered for token {:?}; nothing kept",
                    self.client.name(),
                    item.serial
                );
                tracing::warn!("{}", entry.message);
                self.store.append_audit(entry);
                Ok(true)
            }
            Ok(Err(Refusal { message, .. })) => {
                // The server will not refill with this refill token (another host or login took
                // the values since, or the token changed): the values left stay usable, and the
                // next online login hands out new ones.
                self.cache().refill_refused(&owner, &serial)?;
                entry.message = format!(
                    "upstream {}: the server refused the refill ({message}); the next online \
                     login hands out new values",
                    self.client.name()
                );
                tracing::warn!(user = %owner.login, serial, "{}", entry.message);
                self.store.append_audit(entry);
                Ok(true)
            }
            Err(e) if e.unreachable() => {
                tracing::info!(error = %chain(&e), serial, "offline refill postponed");
                Ok(false)
            }
            Err(e) => {
                entry.message = chain(&e).to_string();
                tracing::error!(error = %chain(&e), serial, "offline refill failed");
                self.store.append_audit(entry);
                Ok(true)
            }
        }
    }

    fn audit_entry(&self, owner: &Owner, serial: &str, now: i64) -> AuditEntry {
        AuditEntry {
            seq: 0,
            time: now,
            caller_uid: 0,
            caller_pid: std::process::id() as i32,
            action: "offline refill".into(),
            user: Some(owner.login.clone()),
            realm: Some(owner.realm.clone()),
            serial: Some(serial.to_owned()),
            token_type: None,
            service: None,
            rhost: None,
            success: false,
            message: String::new(),
        }
    }
}
