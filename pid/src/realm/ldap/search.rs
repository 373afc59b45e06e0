//! Finding a login's entry: a subtree search under `base` for the configured filter ANDed with
//! the escaped login (`config::user_filter`), on a connection bound as the service account (or
//! anonymous) and kept for the next lookup; dropped on any error, so the next lookup starts
//! afresh. Exactly one entry with exactly this login is a user (see the threats in `ldap`).

use super::bind::ServiceBind;
use super::config::user_filter;
use super::connection::{is_broken, Server, RC_NO_SUCH_OBJECT, RC_SIZE_LIMIT_EXCEEDED, RC_SUCCESS};
use super::error::LdapFailure;
use ldap3::{LdapError, Scope, SearchEntry, SearchOptions};
use std::fmt;
use std::sync::Mutex;

/// How an LDAP step failed.
enum Failure {
    /// The cached connection is gone (EOF, reset, driver ended): one reconnect is worth it.
    Broken(LdapError),
    /// Anything else.
    Other(LdapFailure),
}

/// The one entry a login names.
pub(super) struct UserEntry {
    pub(super) dn: String,
    /// The `uid_attribute` value.
    pub(super) id: String,
}

/// What is searched, as whom, and the connection kept between lookups.
pub(super) struct Search {
    pub(super) base: String,
    pub(super) filter: String,
    pub(super) login_attribute: String,
    pub(super) uid_attribute: String,
    /// The service account; anonymous when absent.
    pub(super) service: Option<ServiceBind>,
    /// The service-bound search connection, reused across lookups.
    pub(super) conn: Mutex<Option<ldap3::Ldap>>,
}

impl fmt::Debug for Search {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Search")
            .field("base", &self.base)
            .field("filter", &self.filter)
            .field("login_attribute", &self.login_attribute)
            .field("uid_attribute", &self.uid_attribute)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl Search {
    /// The one entry with exactly this login, if the directory has one, for resolver `name` on
    /// `server`.
    pub(super) async fn user(
        &self,
        server: &Server,
        name: &str,
        login: &str,
    ) -> Result<Option<UserEntry>, LdapFailure> {
        let filter = user_filter(&self.filter, &self.login_attribute, login);
        let cached = self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let outcome = match cached {
            Some(mut conn) => match self
                .search_on(server, name, &mut conn, &filter, login)
                .await
            {
                Err(Failure::Broken(e)) => {
                    // The server restarted or a middlebox cut an idle connection: reconnect once.
                    tracing::debug!(
                        resolver = %name,
                        error = %e,
                        "LDAP search connection broke; reconnecting"
                    );
                    self.forget();
                    self.search_fresh(server, name, &filter, login).await
                }
                other => other,
            },
            None => self.search_fresh(server, name, &filter, login).await,
        };
        outcome.map_err(|f| {
            self.forget();
            match f {
                Failure::Broken(error) => LdapFailure::Broken { error },
                Failure::Other(failure) => failure,
            }
        })
    }

    /// Drop the kept connection.
    pub(super) fn forget(&self) {
        self.conn.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    async fn search_fresh(
        &self,
        server: &Server,
        name: &str,
        filter: &str,
        login: &str,
    ) -> Result<Option<UserEntry>, Failure> {
        let mut conn = server.connect().await.map_err(Failure::Other)?;
        if let Some(service) = &self.service {
            service
                .bind(&mut conn, server)
                .await
                .map_err(Failure::Other)?;
        }
        let found = self
            .search_on(server, name, &mut conn, filter, login)
            .await?;
        let mut slot = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(conn);
        }
        Ok(found)
    }

    async fn search_on(
        &self,
        server: &Server,
        name: &str,
        conn: &mut ldap3::Ldap,
        filter: &str,
        login: &str,
    ) -> Result<Option<UserEntry>, Failure> {
        let time_limit = i32::try_from(server.timeout.as_secs()).unwrap_or(i32::MAX);
        let result = conn
            .with_timeout(server.timeout)
            .with_search_options(SearchOptions::new().sizelimit(2).timelimit(time_limit))
            .search(
                &self.base,
                Scope::Subtree,
                filter,
                vec![self.login_attribute.as_str(), self.uid_attribute.as_str()],
            )
            .await
            .map_err(|e| {
                if is_broken(&e) {
                    Failure::Broken(e)
                } else {
                    Failure::Other(server.failure(e))
                }
            })?;
        let ldap3::SearchResult(entries, result) = result;
        match result.rc {
            RC_SUCCESS | RC_SIZE_LIMIT_EXCEEDED => {}
            RC_NO_SUCH_OBJECT => {
                return Err(Failure::Other(LdapFailure::NoBase {
                    base: self.base.clone(),
                }))
            }
            _ => {
                return Err(Failure::Other(LdapFailure::Search {
                    result,
                    anonymous: self.service.is_none(),
                }))
            }
        }
        if entries.len() > 1 {
            return Err(Failure::Other(LdapFailure::Ambiguous {
                login: login.to_owned(),
                base: self.base.clone(),
            }));
        }
        let Some(entry) = entries.into_iter().next() else {
            return Ok(None);
        };
        let entry = SearchEntry::construct(entry);
        let values = entry
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&self.login_attribute))
            .map(|(_, v)| v);
        let Some(values) = values else {
            return Err(Failure::Other(LdapFailure::NoLogin {
                dn: entry.dn,
                attribute: self.login_attribute.clone(),
            }));
        };
        if entry.dn.is_empty() {
            // An empty DN would make the user's bind anonymous.
            return Err(Failure::Other(LdapFailure::EmptyDn));
        }
        if !values.iter().any(|v| v == login) {
            tracing::debug!(
                resolver = %name,
                dn = %entry.dn,
                "the directory matched the login only loosely (case or spacing): not found"
            );
            return Ok(None);
        }
        // The stable id tokens are bound to: text, or hex for a binary attribute (objectGUID).
        let id = entry
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&self.uid_attribute))
            .and_then(|(_, v)| v.first().cloned())
            .or_else(|| {
                entry
                    .bin_attrs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&self.uid_attribute))
                    .and_then(|(_, v)| v.first())
                    .map(hex::encode)
            })
            .filter(|v| !v.is_empty());
        let Some(id) = id else {
            return Err(Failure::Other(LdapFailure::NoId {
                dn: entry.dn,
                attribute: self.uid_attribute.clone(),
            }));
        };
        Ok(Some(UserEntry { dn: entry.dn, id }))
    }
}
