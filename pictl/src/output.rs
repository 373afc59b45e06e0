//! Human tables and `--json` documents.
//!
//! Threat: user names, remote hosts, services and descriptions reach the audit trail and the
//! token store from outside (a remote ssh client chooses its login name). Printed raw, a control
//! sequence in them would drive the administrator's terminal. Every string shown to a human goes
//! through `sanitize`; JSON output is escaped by serde.

use protocol::{AuditEntry, TokenInfo};
use serde_json::{json, Value};
use std::io::{self, Write};
use time::macros::format_description;
use time::OffsetDateTime;

pub use protocol::text::{sanitize, sanitize_text};

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn utc(t: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(t) {
        Ok(dt) => dt
            .format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .unwrap_or_else(|_| t.to_string()),
        Err(_) => format!("{t} (out of range)"),
    }
}

fn utc_opt(t: Option<i64>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| format!("{} UTC", utc(t)))
}

/// `3h 2m`: the two most significant units.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// `alice@realm`, `alice`, or `-` for nobody.
pub fn user_at(user: Option<&str>, realm: Option<&str>) -> String {
    match (user, realm) {
        (Some(u), Some(r)) if !u.is_empty() && !r.is_empty() => format!("{u}@{r}"),
        (Some(u), _) if !u.is_empty() => u.to_owned(),
        _ => "-".to_owned(),
    }
}

fn or_dash(s: Option<&str>) -> &str {
    match s {
        Some(s) if !s.is_empty() => s,
        _ => "-",
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// `yes`, `no`, plus `,revoked` and `,locked` when they apply: a token that cannot log in must
/// not look like one that can.
pub fn token_state(t: &TokenInfo) -> String {
    let mut state = yes_no(t.active).to_owned();
    if t.revoked {
        state.push_str(",revoked");
    }
    if t.locked {
        state.push_str(",locked");
    }
    state
}

fn limit(n: u64) -> String {
    if n == 0 {
        "unlimited".to_owned()
    } else {
        n.to_string()
    }
}

/// A plain text table: a header line, columns two spaces apart, no trailing blanks.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.iter().map(|c| sanitize(c).into_owned()).collect());
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                // `{:<w$}` pads by characters, the unit the widths were measured in.
                line.push_str(&format!("{cell:<w$}"));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

pub fn token_table(tokens: &[TokenInfo]) -> String {
    let mut table = Table::new(&[
        "SERIAL",
        "TYPE",
        "USER",
        "REALM",
        "ACTIVE",
        "FAIL/MAX",
        "COUNT",
        "DESCRIPTION",
    ]);
    for t in tokens {
        table.row(vec![
            t.serial.clone(),
            t.token_type.as_str().to_owned(),
            or_dash(t.user.as_deref()).to_owned(),
            or_dash(t.realm.as_deref()).to_owned(),
            token_state(t),
            format!("{}/{}", t.failcount, t.maxfail),
            t.count.to_string(),
            t.description.clone(),
        ]);
    }
    table.render()
}

/// Every field of a token, one `label  value` line each.
pub fn token_details(t: &TokenInfo) -> String {
    let seconds = |s: Option<u32>| s.map_or_else(|| "-".to_owned(), |s| format!("{s} s"));
    let fields: Vec<(&str, String)> = vec![
        ("serial", t.serial.clone()),
        ("type", t.token_type.as_str().to_owned()),
        ("user", or_dash(t.user.as_deref()).to_owned()),
        ("realm", or_dash(t.realm.as_deref()).to_owned()),
        ("active", yes_no(t.active).to_owned()),
        ("revoked", yes_no(t.revoked).to_owned()),
        ("locked", yes_no(t.locked).to_owned()),
        ("fail counter", format!("{} of {}", t.failcount, t.maxfail)),
        ("count", t.count.to_string()),
        ("description", or_dash(Some(&t.description)).to_owned()),
        ("digits", t.digits.to_string()),
        ("hash", t.hash.as_str().to_owned()),
        ("period", seconds(t.period)),
        ("hotp window", t.count_window.to_string()),
        ("totp window", seconds(t.time_window)),
        (
            "time shift",
            t.time_shift
                .map_or_else(|| "-".to_owned(), |s| format!("{s:+} s")),
        ),
        ("PIN set", yes_no(t.has_pin).to_owned()),
        (
            "authentications",
            format!("{} (max {})", t.count_auth, limit(t.count_auth_max)),
        ),
        (
            "successes",
            format!(
                "{} (max {})",
                t.count_auth_success,
                limit(t.count_auth_success_max)
            ),
        ),
        ("valid from", utc_opt(t.validity_start)),
        ("valid until", utc_opt(t.validity_end)),
        ("created", utc_opt(Some(t.created))),
        ("last auth", utc_opt(t.last_auth)),
        ("locked since", utc_opt(t.failcounter_exceeded_at)),
    ];
    let fields: Vec<(&str, String)> = fields
        .into_iter()
        .chain(t.details.iter().map(|(l, v)| (l.as_str(), v.clone())))
        .collect();
    let width = fields.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (label, value) in fields {
        out.push_str(&format!("{label:<width$}  {}\n", sanitize(&value)));
    }
    out
}

pub fn audit_table(entries: &[AuditEntry]) -> String {
    let mut table = Table::new(&[
        "TIME(UTC)",
        "UID",
        "ACTION",
        "USER",
        "SERIAL",
        "SERVICE",
        "RHOST",
        "RESULT",
        "MESSAGE",
    ]);
    for e in entries {
        table.row(vec![
            utc(e.time),
            e.caller_uid.to_string(),
            e.action.clone(),
            user_at(e.user.as_deref(), e.realm.as_deref()),
            or_dash(e.serial.as_deref()).to_owned(),
            or_dash(e.service.as_deref()).to_owned(),
            or_dash(e.rhost.as_deref()).to_owned(),
            if e.success { "ok" } else { "failed" }.to_owned(),
            e.message.clone(),
        ]);
    }
    table.render()
}

/// A token as a JSON object: `protocol::TokenInfo` serialized as is.
pub fn token_json(t: &TokenInfo) -> Value {
    let mut v = serde_json::to_value(t)
        .unwrap_or_else(|e| json!({ "serial": t.serial, "error": e.to_string() }));
    // Type-specific details as an object (`"fingerprint": "SHA256:…"`), not a list of pairs.
    if let Some(obj) = v.as_object_mut() {
        let details: serde_json::Map<String, Value> = t
            .details
            .iter()
            .map(|(k, val)| (k.clone(), Value::String(val.clone())))
            .collect();
        obj.insert("details".into(), Value::Object(details));
    }
    v
}

/// Write one JSON document and a newline.
pub fn write_json(out: &mut dyn Write, value: &Value) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    out.flush()
}

/// The JSON form of a failure: `{"error": {"code", "message"}}`.
pub fn error_json(code: &str, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message } })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use protocol::{HashAlgorithm, TokenType};

    pub(crate) fn token(serial: &str) -> TokenInfo {
        TokenInfo {
            serial: serial.to_owned(),
            token_type: TokenType::Totp,
            user: Some("alice".into()),
            realm: Some("default".into()),
            active: true,
            revoked: false,
            locked: false,
            failcount: 2,
            maxfail: 10,
            count: 57_000_000,
            description: "alice's phone".into(),
            digits: 6,
            hash: HashAlgorithm::Sha1,
            period: Some(30),
            count_window: 10,
            time_window: Some(180),
            time_shift: Some(-30),
            has_pin: true,
            count_auth: 7,
            count_auth_max: 0,
            count_auth_success: 5,
            count_auth_success_max: 100,
            validity_start: None,
            validity_end: Some(1_738_346_400),
            created: 1_700_000_000,
            last_auth: Some(1_700_000_060),
            failcounter_exceeded_at: None,
            details: Vec::new(),
        }
    }

    #[test]
    fn token_json_carries_the_contract_fields() {
        let v = token_json(&token("TOTP0001"));
        for field in [
            "serial",
            "type",
            "user",
            "realm",
            "active",
            "revoked",
            "locked",
            "failcount",
            "maxfail",
            "count",
            "description",
        ] {
            assert!(v.get(field).is_some(), "missing {field} in {v}");
        }
        assert_eq!(v["type"], "totp");
        assert_eq!(v["hash"], "sha1");
        assert_eq!(v["failcount"], 2);
        assert_eq!(v["validity_end"], 1_738_346_400);
    }

    #[test]
    fn token_table_shows_one_row_per_token_with_state_flags() {
        let mut locked = token("OATH0002");
        locked.token_type = TokenType::Hotp;
        locked.locked = true;
        locked.active = false;
        locked.revoked = true;
        locked.user = None;
        let text = token_table(&[token("TOTP0001"), locked]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("SERIAL  "), "{text}");
        assert!(lines[0].ends_with("DESCRIPTION"), "{text}");
        assert!(
            lines[1].contains("TOTP0001") && lines[1].contains("alice"),
            "{text}"
        );
        assert!(
            lines[1].contains("2/10") && lines[1].contains("yes"),
            "{text}"
        );
        assert!(lines[2].contains("no,revoked,locked"), "{text}");
        // Columns line up: every row's COUNT starts where the header's does.
        let col = lines[0].find("COUNT").unwrap();
        assert_eq!(&lines[1][col..col + 8], "57000000");
        assert!(text.lines().all(|l| !l.ends_with(' ')), "{text:?}");
    }

    #[test]
    fn token_details_show_every_field_with_utc_times() {
        let text = token_details(&token("TOTP0001"));
        for needle in [
            "serial        ",
            "TOTP0001",
            "fail counter     2 of 10",
            "time shift       -30 s",
            "valid until      2025-01-31 18:00:00 UTC",
            "created          2023-11-14 22:13:20 UTC",
            "authentications  7 (max unlimited)",
            "successes        5 (max 100)",
            "valid from       -",
            "PIN set          yes",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[test]
    fn control_characters_are_escaped_for_humans() {
        let mut t = token("TOTP0001");
        t.description = "evil\u{1b}]0;pwned\u{7}".into();
        let shown = token_table(&[t.clone()]) + &token_details(&t);
        assert!(
            !shown.chars().any(|c| c.is_control() && c != '\n'),
            "{shown:?}"
        );
        assert!(shown.contains("\\u{1b}"), "{shown}");
        assert_eq!(sanitize_text("line1\nline\u{1b}2"), "line1\nline\\u{1b}2");
    }

    #[test]
    fn invisible_format_characters_are_escaped_for_humans() {
        let mut t = token("TOTP0001");
        t.description = "invoice\u{202e}fdp.exe".into();
        t.user = Some("al\u{200b}ice".into());
        let shown = token_table(&[t.clone()]) + &token_details(&t);
        assert!(
            !shown.contains('\u{202e}') && !shown.contains('\u{200b}'),
            "{shown:?}"
        );
        assert!(shown.contains("invoice\\u{202e}fdp.exe"), "{shown}");
        assert!(shown.contains("al\\u{200b}ice"), "{shown}");
    }

    #[test]
    fn durations_show_two_units() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(61), "1m 1s");
        assert_eq!(duration(3 * 3600 + 2 * 60 + 9), "3h 2m");
        assert_eq!(duration(2 * 86_400 + 5 * 3600 + 7), "2d 5h");
    }

    #[test]
    fn audit_rows_show_user_at_realm_and_result() {
        let entry = AuditEntry {
            seq: 9,
            time: 1_738_346_400,
            caller_uid: 0,
            caller_pid: 42,
            action: "auth".into(),
            user: Some("alice".into()),
            realm: Some("default".into()),
            serial: None,
            token_type: None,
            service: Some("sshd".into()),
            rhost: Some("192.0.2.1".into()),
            success: false,
            message: "wrong otp".into(),
        };
        let text = audit_table(&[entry]);
        let row = text.lines().nth(1).unwrap();
        for needle in [
            "2025-01-31 18:00:00",
            "alice@default",
            "sshd",
            "192.0.2.1",
            "failed",
        ] {
            assert!(row.contains(needle), "missing {needle} in {row}");
        }
        assert!(row.ends_with("wrong otp"), "{row}");
    }

    #[test]
    fn error_json_has_code_and_message() {
        let v = error_json("not_found", "no such token");
        assert_eq!(v["error"]["code"], "not_found");
        assert_eq!(v["error"]["message"], "no such token");
    }
}
