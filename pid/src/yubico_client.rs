//! A Yubico validation protocol 2.0 client (the `yubico` token): GET `?id=…&otp=…&nonce=…[&h=…]`
//! against the configured servers in order; the answer counts only if it says `status=OK`,
//! repeats our OTP and nonce, and — when an API key is configured — carries a valid HMAC-SHA1
//! signature. Anything else is a rejected OTP (the server's status) or, when no server gives
//! an answer, an error: the login then fails closed.

use crate::config::YubicoConfig;
use crate::error::PidError;
use crate::percent::percent_encode;
use hmac::{Hmac, Mac};
use std::collections::BTreeMap;
use std::time::Duration;
use zeroize::Zeroizing;

/// What the servers said about one OTP.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// The server's status (`BAD_OTP`, `REPLAYED_OTP`, …).
    Refused(String),
}

fn sign(key: &[u8], params: &BTreeMap<String, String>) -> Option<String> {
    let text: Vec<String> = params
        .iter()
        .filter(|(k, _)| k.as_str() != "h")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut mac = <Hmac<sha1::Sha1> as hmac::digest::KeyInit>::new_from_slice(key).ok()?;
    mac.update(text.join("&").as_bytes());
    Some(data_encoding::BASE64.encode(&mac.finalize().into_bytes()))
}

/// Verify `otp` with the configured servers. Blocking: call off the executor.
pub fn verify(cfg: &YubicoConfig, otp: &str) -> Result<Verdict, PidError> {
    let fail = |m: String| PidError::Remote(m);
    if cfg.client_id.is_empty() {
        return Err(fail(
            "no Yubico API client id: set [yubico] client_id (and api_key_file) in pid.toml".into(),
        ));
    }
    let key: Option<Zeroizing<Vec<u8>>> = match &cfg.api_key_file {
        Some(path) => {
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                fail(format!(
                    "cannot read yubico.api_key_file {}: {e}",
                    path.display()
                ))
            })?);
            Some(Zeroizing::new(
                data_encoding::BASE64
                    .decode(text.trim().as_bytes())
                    .map_err(|_| fail(format!("{} is not base64", path.display())))?,
            ))
        }
        None => None,
    };
    let nonce = hex::encode(&crate::crypto::random_bytes(16)[..]);
    let mut params = BTreeMap::new();
    params.insert("id".to_owned(), cfg.client_id.clone());
    params.insert("nonce".to_owned(), nonce.clone());
    params.insert("otp".to_owned(), otp.to_owned());
    if let Some(k) = &key {
        let h = sign(k, &params).ok_or_else(|| fail("cannot sign the request".into()))?;
        params.insert("h".to_owned(), h);
    }
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(cfg.timeout_secs))
        .build();
    let mut last_error = String::from("no validation server configured ([yubico] urls)");
    for url in &cfg.urls {
        let text = match agent.get(&format!("{url}?{}", query.join("&"))).call() {
            Ok(r) => match r.into_string() {
                Ok(t) => t,
                Err(e) => {
                    last_error = format!("{url}: {e}");
                    continue;
                }
            },
            Err(e) => {
                last_error = format!("{url}: {e}");
                continue;
            }
        };
        let answer: BTreeMap<String, String> = text
            .lines()
            .filter_map(|l| l.trim().split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        if let Some(k) = &key {
            let ok = answer
                .get("h")
                .zip(sign(k, &answer))
                .is_some_and(|(got, want)| crate::crypto::ct_eq(got.as_bytes(), want.as_bytes()));
            if !ok {
                last_error = format!("{url}: the answer's signature is wrong");
                continue;
            }
        }
        if answer.get("nonce") != Some(&nonce) || answer.get("otp").map(String::as_str) != Some(otp)
        {
            last_error = format!("{url}: the answer is for another request");
            continue;
        }
        let status = answer.get("status").cloned().unwrap_or_default();
        return Ok(match status.as_str() {
            "OK" => Verdict::Ok,
            "BAD_OTP"
            | "REPLAYED_OTP"
            | "REPLAYED_REQUEST"
            | "NO_SUCH_CLIENT"
            | "BAD_SIGNATURE"
            | "MISSING_PARAMETER"
            | "OPERATION_NOT_ALLOWED" => Verdict::Refused(status),
            other => {
                last_error = format!("{url}: status {other:?}");
                continue;
            }
        });
    }
    Err(fail(last_error))
}
