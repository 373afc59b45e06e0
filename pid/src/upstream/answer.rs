//! What a privacyIDEA server answers, parsed and bounded before anything acts on it.
//!
//! Threat: the server, or whoever sits between it and this host, is hostile or broken. Every
//! answer is JSON of a known shape or it is refused whole (a login then fails closed, and
//! nothing from it is cached); every string that reaches a user's screen or the store is
//! bounded and escaped; every number is range-checked. The HTTP layer (`client.rs`) has
//! already bounded the size and checked the status and content type.

use super::offline::{BadValue, Values};
use protocol::text::sanitize;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

/// The most characters of a server's message shown to a user or logged.
pub const MAX_MESSAGE_CHARS: usize = 400;
/// The most challenges (and so prompts' messages) taken from one answer.
pub const MAX_CHALLENGES: usize = 16;
/// The most offline items (tokens) taken from one answer.
pub const MAX_OFFLINE_ITEMS: usize = 16;
/// The most SSH keys or LUKS responses taken from one answer.
pub const MAX_AUTHITEMS: usize = 256;
const MAX_SERIAL_LEN: usize = 64;
const MAX_TRANSACTION_ID_LEN: usize = 64;
const MIN_REFILL_TOKEN_LEN: usize = 16;
const MAX_REFILL_TOKEN_LEN: usize = 256;
const MAX_LOGIN_LEN: usize = 256;
const MAX_SSH_KEY_LEN: usize = 16 * 1024;
const MAX_JWT_LEN: usize = 16 * 1024;

/// Why an answer is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadAnswer {
    #[error("the answer is not JSON: {0}")]
    NotJson(String),
    #[error("the answer has no {0} of the expected kind")]
    Missing(&'static str),
    #[error("the answer's {0} is not valid")]
    Invalid(&'static str),
    #[error("the answer holds more than {1} {0}")]
    TooMany(&'static str, usize),
    #[error(transparent)]
    Offline(#[from] BadValue),
}

/// The server processed the request and refused it (`result.status` false): its error code
/// (`ERR904` is an unknown user) and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: Option<i64>,
    pub message: String,
}

/// `/validate/check`, as this host acts on it.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// The user is in; `offline` holds the values handed out for tokens attached `offline`.
    Accept {
        serial: Option<String>,
        offline: Vec<OfflineItem>,
    },
    /// Wrong PIN or OTP, or any other "no" of a processed request.
    Reject { message: String },
    /// The server asks for more: one prompt showing every challenge's message.
    Challenge(Challenge),
    /// The server refused the request itself (`result.status` false).
    Refused(Refusal),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Sent back with the answer; digits and letters only.
    pub transaction_id: String,
    /// Each challenge's message once, escaped and bounded ("please enter otp: ", "Enter the
    /// code sent to a***@example.org").
    pub messages: Vec<String>,
}

/// One token's offline values, as a hand-out or a refill carries them.
#[derive(PartialEq, Eq)]
pub struct OfflineItem {
    pub serial: String,
    /// The token owner's login on the server (absent in a refill).
    pub username: Option<String>,
    /// The server's `maxfail` for the token, where it sends one.
    pub max_fail: Option<u32>,
    /// Presented at the next refill; replaced by every hand-out.
    pub refill_token: Zeroizing<String>,
    pub values: Values,
}

impl std::fmt::Debug for OfflineItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfflineItem")
            .field("serial", &self.serial)
            .field("username", &self.username)
            .field("values", &self.values.len())
            .finish_non_exhaustive()
    }
}

/// One SSH key the server attaches to this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshKeyItem {
    /// The OpenSSH public key line, to be parsed like a local sshkey token's.
    pub key: String,
    /// The login it is for on this host (the attachment's `user` option).
    pub user: Option<String>,
}

/// One LUKS response for this host.
#[derive(Debug, PartialEq, Eq)]
pub struct LuksItem {
    /// Hex of HMAC-SHA1(slot secret, password): the passphrase to add.
    pub response: Zeroizing<String>,
    pub slot: Option<u8>,
    pub partition: Option<String>,
}

fn parse(body: &[u8]) -> Result<Map<String, Value>, BadAnswer> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(BadAnswer::Missing("top-level object")),
        Err(e) => Err(BadAnswer::NotJson(e.to_string())),
    }
}

/// `result`, or the server's refusal.
fn result(top: &Map<String, Value>) -> Result<Result<&Map<String, Value>, Refusal>, BadAnswer> {
    let result = top
        .get("result")
        .and_then(Value::as_object)
        .ok_or(BadAnswer::Missing("result"))?;
    match result.get("status") {
        Some(Value::Bool(true)) => Ok(Ok(result)),
        Some(Value::Bool(false)) => {
            let error = result.get("error").and_then(Value::as_object);
            Ok(Err(Refusal {
                code: error.and_then(|e| e.get("code")).and_then(Value::as_i64),
                message: message(error.and_then(|e| e.get("message"))),
            }))
        }
        _ => Err(BadAnswer::Missing("result.status")),
    }
}

/// A server's text for humans: escaped, bounded, never empty.
fn message(v: Option<&Value>) -> String {
    let text = v.and_then(Value::as_str).unwrap_or("").trim();
    let shown: String = sanitize(text).chars().take(MAX_MESSAGE_CHARS).collect();
    if shown.is_empty() {
        "(no message)".into()
    } else {
        shown
    }
}

fn bounded_str<'a>(
    v: Option<&'a Value>,
    what: &'static str,
    max: usize,
    ok: impl Fn(char) -> bool,
) -> Result<&'a str, BadAnswer> {
    let s = v.and_then(Value::as_str).ok_or(BadAnswer::Missing(what))?;
    if s.is_empty() || s.len() > max || !s.chars().all(ok) {
        return Err(BadAnswer::Invalid(what));
    }
    Ok(s)
}

fn serial(v: Option<&Value>) -> Result<String, BadAnswer> {
    bounded_str(v, "serial", MAX_SERIAL_LEN, |c| c.is_ascii_graphic()).map(str::to_owned)
}

fn login(v: Option<&Value>, what: &'static str) -> Result<Option<String>, BadAnswer> {
    match v {
        None | Some(Value::Null) => Ok(None),
        v => bounded_str(v, what, MAX_LOGIN_LEN, |c| !c.is_control() && c != '\0')
            .map(|s| Some(s.to_owned())),
    }
}

/// A number the server may send as JSON number or as decimal text ("5").
fn small_number(v: Option<&Value>, what: &'static str) -> Result<Option<u32>, BadAnswer> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or(BadAnswer::Invalid(what)),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 10 => s
            .parse::<u32>()
            .map(Some)
            .map_err(|_| BadAnswer::Invalid(what)),
        Some(_) => Err(BadAnswer::Invalid(what)),
    }
}

/// `/validate/check` (and its answer to a challenge).
pub fn check(body: &[u8]) -> Result<Check, BadAnswer> {
    let top = parse(body)?;
    let result = match result(&top)? {
        Ok(r) => r,
        Err(refusal) => return Ok(Check::Refused(refusal)),
    };
    let detail = top.get("detail").and_then(Value::as_object);
    let value = result.get("value").and_then(Value::as_bool);
    let authentication = result.get("authentication").and_then(Value::as_str);
    if value == Some(true) {
        if authentication.is_some_and(|a| a != "ACCEPT") {
            return Err(BadAnswer::Invalid("result.authentication"));
        }
        let serial = match detail.and_then(|d| d.get("serial")) {
            None | Some(Value::Null) => None,
            s => Some(serial(s)?),
        };
        return Ok(Check::Accept {
            serial,
            offline: offline_items(&top)?,
        });
    }
    if value != Some(false) {
        return Err(BadAnswer::Missing("result.value"));
    }
    let challenges = detail
        .and_then(|d| d.get("multi_challenge"))
        .and_then(Value::as_array);
    match challenges {
        Some(list) if !list.is_empty() => Ok(Check::Challenge(challenge(list)?)),
        _ if authentication == Some("CHALLENGE") => Err(BadAnswer::Missing("multi_challenge")),
        _ => Ok(Check::Reject {
            message: message(detail.and_then(|d| d.get("message"))),
        }),
    }
}

fn challenge(list: &[Value]) -> Result<Challenge, BadAnswer> {
    if list.len() > MAX_CHALLENGES {
        return Err(BadAnswer::TooMany("challenges", MAX_CHALLENGES));
    }
    let mut transaction_id: Option<&str> = None;
    let mut messages: Vec<String> = Vec::new();
    for c in list {
        let c = c.as_object().ok_or(BadAnswer::Invalid("multi_challenge"))?;
        let id = bounded_str(
            c.get("transaction_id"),
            "transaction_id",
            MAX_TRANSACTION_ID_LEN,
            |c| c.is_ascii_alphanumeric(),
        )?;
        // privacyIDEA gives every challenge of one request the same transaction.
        if transaction_id.is_some_and(|t| t != id) {
            return Err(BadAnswer::Invalid("transaction_id"));
        }
        transaction_id = Some(id);
        let m = message(c.get("message"));
        if !messages.contains(&m) {
            messages.push(m);
        }
    }
    Ok(Challenge {
        transaction_id: transaction_id
            .ok_or(BadAnswer::Missing("transaction_id"))?
            .to_owned(),
        messages,
    })
}

/// `auth_items.offline` of an answer: absent is none.
fn offline_items(top: &Map<String, Value>) -> Result<Vec<OfflineItem>, BadAnswer> {
    let Some(items) = top.get("auth_items").and_then(|a| a.get("offline")) else {
        return Ok(Vec::new());
    };
    let items = items
        .as_array()
        .ok_or(BadAnswer::Invalid("auth_items.offline"))?;
    if items.len() > MAX_OFFLINE_ITEMS {
        return Err(BadAnswer::TooMany("offline items", MAX_OFFLINE_ITEMS));
    }
    items.iter().map(offline_item).collect()
}

fn offline_item(v: &Value) -> Result<OfflineItem, BadAnswer> {
    let item = v
        .as_object()
        .ok_or(BadAnswer::Invalid("auth_items.offline"))?;
    let refill = bounded_str(
        item.get("refilltoken"),
        "refilltoken",
        MAX_REFILL_TOKEN_LEN,
        |c| c.is_ascii_alphanumeric(),
    )?;
    if refill.len() < MIN_REFILL_TOKEN_LEN {
        return Err(BadAnswer::Invalid("refilltoken"));
    }
    let response = item
        .get("response")
        .and_then(Value::as_object)
        .ok_or(BadAnswer::Missing("offline response"))?;
    let mut entries = Vec::with_capacity(response.len());
    for (counter, hash) in response {
        let hash = hash
            .as_str()
            .ok_or(BadAnswer::Invalid("offline response"))?;
        entries.push((counter.as_str(), hash));
    }
    Ok(OfflineItem {
        serial: serial(item.get("serial"))?,
        username: login(item.get("username"), "username")?,
        max_fail: small_number(item.get("maxfail"), "maxfail")?,
        refill_token: Zeroizing::new(refill.to_owned()),
        values: Values::parse(entries)?,
    })
}

/// `/validate/offlinerefill`: the new values and refill token of the one token refilled.
pub fn refill(body: &[u8]) -> Result<Result<OfflineItem, Refusal>, BadAnswer> {
    let top = parse(body)?;
    if let Err(refusal) = result(&top)? {
        return Ok(Err(refusal));
    }
    let mut items = offline_items(&top)?;
    if items.len() != 1 {
        return Err(BadAnswer::Missing("one offline item"));
    }
    Ok(Ok(items.remove(0)))
}

/// `/auth`: the JWT for the admin endpoints.
pub fn jwt(body: &[u8]) -> Result<Result<Zeroizing<String>, Refusal>, BadAnswer> {
    let top = parse(body)?;
    let result = match result(&top)? {
        Ok(r) => r,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let token = bounded_str(
        result.get("value").and_then(|v| v.get("token")),
        "token",
        MAX_JWT_LEN,
        |c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '='),
    )?;
    Ok(Ok(Zeroizing::new(token.to_owned())))
}

/// The items of `/machine/authitem/APP` (`result.value.APP`; absent is none), at most
/// `MAX_AUTHITEMS`, each an object read by `item`.
fn authitems<T>(
    body: &[u8],
    app: &'static str,
    item: impl Fn(&Map<String, Value>) -> Result<T, BadAnswer>,
) -> Result<Result<Vec<T>, Refusal>, BadAnswer> {
    let top = parse(body)?;
    let result = match result(&top)? {
        Ok(r) => r,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let items: &[Value] = match result.get("value").and_then(|v| v.get(app)) {
        None | Some(Value::Null) => &[],
        Some(Value::Array(items)) => items,
        Some(_) => return Err(BadAnswer::Invalid("authentication items")),
    };
    if items.len() > MAX_AUTHITEMS {
        return Err(BadAnswer::TooMany("authentication items", MAX_AUTHITEMS));
    }
    items
        .iter()
        .map(|i| {
            item(
                i.as_object()
                    .ok_or(BadAnswer::Invalid("authentication item"))?,
            )
        })
        .collect::<Result<_, _>>()
        .map(Ok)
}

/// `/machine/authitem/ssh`.
pub fn ssh_keys(body: &[u8]) -> Result<Result<Vec<SshKeyItem>, Refusal>, BadAnswer> {
    authitems(body, "ssh", |item| {
        Ok(SshKeyItem {
            key: bounded_str(item.get("sshkey"), "sshkey", MAX_SSH_KEY_LEN, |c| {
                !c.is_control()
            })?
            .to_owned(),
            user: login(item.get("user"), "user")?,
        })
    })
}

/// `/machine/authitem/luks`.
pub fn luks(body: &[u8]) -> Result<Result<Vec<LuksItem>, Refusal>, BadAnswer> {
    authitems(body, "luks", |item| {
        let response = bounded_str(item.get("response"), "luks response", 128, |c| {
            c.is_ascii_hexdigit()
        })?;
        let slot = small_number(item.get("slot"), "slot")?
            .map(|s| u8::try_from(s).map_err(|_| BadAnswer::Invalid("slot")))
            .transpose()?;
        let partition = match item.get("partition") {
            None | Some(Value::Null) => None,
            p => Some(bounded_str(p, "partition", 4096, |c| !c.is_control())?.to_owned()),
        };
        Ok(LuksItem {
            response: Zeroizing::new(response.to_ascii_lowercase()),
            slot,
            partition,
        })
    })
}

#[cfg(test)]
mod tests;
