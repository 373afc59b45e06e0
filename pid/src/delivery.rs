//! Sending codes to users: e-mail through the `[smtp]` server, SMS through the `[sms]` HTTP
//! gateway or program. Every send is bounded by its timeout; a failure is an error the
//! operator sees (the login fails, the audit and the log say why). The code itself is never
//! logged.

use crate::config::{Config, SmsConfig, SmtpConfig, SmtpTls};
use crate::error::PidError;
use crate::percent::percent_encode;
use crate::tokens::{Channel, Delivery};
use std::time::Duration;
use zeroize::Zeroizing;

/// Send `body` (and `subject`, for e-mail) to the delivery's destination.
pub async fn send(
    config: &Config,
    d: &Delivery,
    subject: &str,
    body: Zeroizing<String>,
) -> Result<(), PidError> {
    match d.channel {
        Channel::Email => send_email(&config.smtp, &d.to, subject, body).await,
        Channel::Sms => send_sms(&config.sms, &d.to, body).await,
    }
}

fn fail(what: impl std::fmt::Display) -> PidError {
    PidError::Delivery(what.to_string())
}

async fn send_email(
    smtp: &SmtpConfig,
    to: &str,
    subject: &str,
    body: Zeroizing<String>,
) -> Result<(), PidError> {
    use lettre::message::{header::ContentType, Mailbox};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    if smtp.host.is_empty() {
        return Err(fail(
            "no mail server is configured: set [smtp] host and sender in pid.toml",
        ));
    }
    let from: Mailbox = smtp
        .sender
        .parse()
        .map_err(|e| fail(format!("smtp.sender {:?}: {e}", smtp.sender)))?;
    let to: Mailbox = to
        .parse()
        .map_err(|e| fail(format!("the token's address {to:?}: {e}")))?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_string())
        .map_err(|e| fail(format!("cannot build the mail: {e}")))?;
    let tls = || -> Result<TlsParameters, PidError> {
        let mut b = TlsParameters::builder(smtp.host.clone());
        if let Some(ca) = &smtp.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| fail(format!("cannot read smtp.ca_file {}: {e}", ca.display())))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| fail(format!("smtp.ca_file {} is not PEM: {e}", ca.display())))?;
            b = b.add_root_certificate(cert);
        }
        b.build_rustls()
            .map_err(|e| fail(format!("TLS setup for {}: {e}", smtp.host)))
    };
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
        .port(smtp.port)
        .timeout(Some(Duration::from_secs(smtp.timeout_secs)))
        .tls(match smtp.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(tls()?),
            SmtpTls::Tls => Tls::Wrapper(tls()?),
        });
    if let (Some(user), Some(file)) = (&smtp.username, &smtp.password_file) {
        let password = Zeroizing::new(std::fs::read_to_string(file).map_err(|e| {
            fail(format!(
                "cannot read smtp.password_file {}: {e}",
                file.display()
            ))
        })?);
        transport = transport.credentials(Credentials::new(
            user.clone(),
            password.trim_end_matches('\n').to_owned(),
        ));
    }
    let sent = tokio::time::timeout(
        Duration::from_secs(smtp.timeout_secs),
        transport.build().send(message),
    )
    .await;
    match sent {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(fail(format!(
            "the mail server {}:{} refused or failed: {e}",
            smtp.host, smtp.port
        ))),
        Err(_) => Err(fail(format!(
            "the mail server {}:{} did not answer within {} s",
            smtp.host, smtp.port, smtp.timeout_secs
        ))),
    }
}

async fn send_sms(
    sms: &SmsConfig,
    phone: &str,
    message: Zeroizing<String>,
) -> Result<(), PidError> {
    let timeout = Duration::from_secs(sms.timeout_secs);
    if let Some((program, args)) = sms.command.split_first() {
        return send_by_program(program, args, phone, &message, timeout).await;
    }
    if sms.url.is_empty() {
        return Err(fail(
            "no SMS gateway is configured: set [sms] url (HTTP) or command (a program) in pid.toml",
        ));
    }
    let sms = sms.clone();
    let phone = phone.to_owned();
    tokio::task::spawn_blocking(move || send_by_http(&sms, &phone, &message, timeout))
        .await
        .map_err(|e| fail(format!("SMS task failed: {e}")))?
}

/// `{phone}` and `{message}` in a template, escaped for where they go.
fn fill(template: &str, phone: &str, message: &str, encode: fn(&str) -> String) -> String {
    template
        .replace("{phone}", &encode(phone))
        .replace("{message}", &encode(message))
}

/// `s` as the inside of a JSON string literal, for `{phone}` and `{message}` in a JSON body.
fn json_escape(s: &str) -> String {
    let literal = serde_json::Value::from(s).to_string();
    literal
        .strip_prefix('"')
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or(&literal)
        .to_owned()
}

fn send_by_http(
    sms: &SmsConfig,
    phone: &str,
    message: &str,
    timeout: Duration,
) -> Result<(), PidError> {
    let agent = ureq::AgentBuilder::new().timeout(timeout).build();
    let get = sms.method == "GET";
    let url = if get && !sms.body.is_empty() {
        let query = fill(&sms.body, phone, message, percent_encode);
        let sep = if sms.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}{query}", sms.url)
    } else {
        sms.url.clone()
    };
    let mut req = agent.request(if get { "GET" } else { "POST" }, &url);
    for (k, v) in &sms.headers {
        req = req.set(k, v);
    }
    let response = if get {
        req.call()
    } else {
        let json = sms.body.trim_start().starts_with('{');
        let body = if json {
            fill(&sms.body, phone, message, json_escape)
        } else {
            fill(&sms.body, phone, message, percent_encode)
        };
        if !sms
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("content-type"))
        {
            req = req.set(
                "Content-Type",
                if json {
                    "application/json"
                } else {
                    "application/x-www-form-urlencoded"
                },
            );
        }
        req.send_string(&body)
    };
    let where_ = sms.url.split('?').next().unwrap_or_default();
    match response {
        Ok(r) => {
            let status = r.status();
            let text = r.into_string().unwrap_or_default();
            if !sms.success_contains.is_empty() && !text.contains(&sms.success_contains) {
                return Err(fail(format!(
                    "the SMS gateway {where_} answered {status} without {:?}",
                    sms.success_contains
                )));
            }
            Ok(())
        }
        Err(ureq::Error::Status(code, _)) => Err(fail(format!(
            "the SMS gateway {where_} answered HTTP {code}"
        ))),
        Err(e) => Err(fail(format!(
            "the SMS gateway {where_} could not be reached: {e}"
        ))),
    }
}

async fn send_by_program(
    program: &str,
    args: &[String],
    phone: &str,
    message: &str,
    timeout: Duration,
) -> Result<(), PidError> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .arg(phone)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot start the SMS program {program}: {e}")))?;
    let run = async {
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(message.as_bytes()).await?;
        }
        child.wait_with_output().await
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => Err(fail(format!(
            "the SMS program {program} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
        Ok(Err(e)) => Err(fail(format!("the SMS program {program}: {e}"))),
        Err(_) => Err(fail(format!(
            "the SMS program {program} did not finish within {} s",
            timeout.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_escape_for_their_place() {
        assert_eq!(
            fill(
                "to={phone}&text={message}",
                "+49 170",
                "a&b",
                percent_encode
            ),
            "to=%2B49%20170&text=a%26b"
        );
        assert_eq!(
            fill(
                r#"{"to":"{phone}","text":"{message}"}"#,
                "1",
                "say \"hi\"",
                json_escape
            ),
            r#"{"to":"1","text":"say \"hi\""}"#
        );
    }
}
