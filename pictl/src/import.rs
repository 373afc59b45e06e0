//! Readers for other systems' token files, for `pictl import`. They only parse: every line is
//! checked before anything is sent, and a file with a line that cannot be read imports nothing.
//! Messages name the file and line, never a secret, a password or a scratch code.

pub mod pskc;

use protocol::{HashAlgorithm, ImportedToken, Secret, TokenType, UserRef};
use zeroize::Zeroizing;

/// Tokens read from a file, and remarks for the operator about what does not come along.
#[derive(Debug, Default)]
pub struct Parsed {
    pub tokens: Vec<ImportedToken>,
    pub notes: Vec<String>,
}

impl Parsed {
    fn note(&mut self, text: String) {
        if !self.notes.contains(&text) {
            self.notes.push(text);
        }
    }
}

/// pam_oath's usersfile (liboath `usersfile.c`): `TYPE USER PASSWORD HEXSECRET [COUNTER
/// [LASTOTP [TIMESTAMP]]]` per line, `#` comments, several lines per user for several tokens.
pub fn oath_usersfile(name: &str, text: &str, realm: Option<&str>) -> Result<Parsed, Vec<String>> {
    let mut parsed = Parsed::default();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let source = format!("{name}:{}", i + 1);
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() || fields[0].starts_with('#') {
            continue;
        }
        match oath_line(&source, &fields, realm, &mut parsed) {
            Ok(token) => parsed.tokens.push(token),
            Err(e) => errors.push(format!("{source}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

fn oath_line(
    source: &str,
    fields: &[&str],
    realm: Option<&str>,
    parsed: &mut Parsed,
) -> Result<ImportedToken, String> {
    let [kind, login, password, secret, rest @ ..] = fields else {
        return Err("expected TYPE USER PASSWORD SECRET [COUNTER ...]".into());
    };
    let (token_type, period, digits) = oath_type(kind)?;
    let pin = match *password {
        "-" => None,
        "+" => {
            parsed.note(
                "lines with the password \"+\" had the password checked by another PAM module: \
                 keep that module (e.g. pam_unix) before pam_pi in the stack"
                    .into(),
            );
            None
        }
        literal => Some(Secret::new(literal)),
    };
    let key = hex_key(secret)?;
    let counter = match rest.first() {
        Some(c) => c
            .parse::<u64>()
            .map_err(|_| "the counter (5th field) is not a whole number".to_string())?,
        None => 0,
    };
    let (last_otp, last_time) = (rest.get(1).copied(), rest.get(2).copied());
    let counter = match period {
        None => hotp_next_counter(counter, last_otp)?,
        Some(period) => totp_last_step(&key, digits, period, last_otp, last_time)?,
    };
    Ok(ImportedToken {
        source: source.to_owned(),
        user: user_ref(login, realm)?,
        token_type,
        otpkey: key,
        digits,
        hash: HashAlgorithm::Sha1,
        period,
        counter,
        pin,
        tans: Vec::new(),
        description: format!("imported from pam_oath ({source})"),
    })
}

/// The counter pi expects next, from an HOTP line's COUNTER and LASTOTP fields. liboath
/// (`usersfile.c`) starts its search at COUNTER, inclusive, and after a login writes the counter
/// of the accepted code there, with that code as LASTOTP; the only replay it refuses is a code
/// equal to LASTOTP. So a line with LASTOTP has spent COUNTER and pi starts after it; a line
/// without (never used, or written by hand) has spent nothing and pi starts at COUNTER.
fn hotp_next_counter(counter: u64, last_otp: Option<&str>) -> Result<u64, String> {
    match last_otp {
        None => Ok(counter),
        Some(_) => counter
            .checked_add(1)
            .ok_or_else(|| "the counter (5th field) is at its largest value".to_string()),
    }
}

/// How many time steps either side of a TOTP line's timestamp its last code is looked for:
/// liboath searches `window` steps either side of the time of the login (pam_oath's default
/// window is 5).
const LAST_TOTP_SEARCH_STEPS: i64 = 20;

/// The last time step a TOTP line has spent (0: none, then the daemon takes the step of the
/// import, so no code shown before the import is accepted after it). liboath writes no time step
/// for TOTP lines: their COUNTER adds up window positions. What it keeps is the last accepted
/// code (LASTOTP) and when it accepted it (TIMESTAMP, local time, `2024-01-31T18:00:00L`). That
/// code belongs to a step near that time, possibly ahead of it, and that step and every earlier
/// one are spent. Of several steps with the same code the latest is taken: one step too late only
/// makes the user wait for the next code, one too early would accept a spent code again.
fn totp_last_step(
    key: &Secret,
    digits: u8,
    period: u32,
    last_otp: Option<&str>,
    last_time: Option<&str>,
) -> Result<u64, String> {
    let Some(last_otp) = last_otp else {
        return Ok(0);
    };
    let Some(last_time) = last_time else {
        return Err(
            "the last code (6th field) comes without its time (7th field), so pi \
                    cannot tell which codes are spent: if that login is more than an hour in \
                    the past, delete the 6th field, else wait an hour and then delete it"
                .into(),
        );
    };
    let times = local_times(last_time)?;
    let key = Zeroizing::new(hex::decode(key.expose()).map_err(|_| {
        "the secret (4th field) is not hexadecimal with an even number of digits".to_string()
    })?);
    let steps = times.iter().map(|t| t.div_euclid(i64::from(period)));
    let (first, last) = (steps.clone().min(), steps.max());
    let (Some(first), Some(last)) = (first, last) else {
        return Err("the time (7th field) names no moment".into());
    };
    let first = (first - LAST_TOTP_SEARCH_STEPS).max(0);
    let last = last + LAST_TOTP_SEARCH_STEPS;
    (first..=last)
        .rev()
        .map(|step| step as u64)
        .find(|&step| oath_code(&key, step, digits).as_bytes() == last_otp.as_bytes())
        .ok_or_else(|| {
            format!(
                "the last code (6th field) is not the code of any time step within \
                 {LAST_TOTP_SEARCH_STEPS} steps of its time (7th field), read in this host's \
                 time zone: run pictl in the time zone pam_oath ran in (TZ), or, if that login \
                 is more than an hour in the past, delete the 6th and 7th fields"
            )
        })
}

/// pam_oath's TIMESTAMP (`%Y-%m-%dT%H:%M:%SL`, this host's local time) as the Unix times it can
/// stand for: two in the hour a change from summer time repeats.
fn local_times(text: &str) -> Result<Vec<i64>, String> {
    use chrono::{Local, NaiveDateTime};
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%SL").map_err(|_| {
        "the time (7th field) is not pam_oath's YYYY-MM-DDTHH:MM:SSL (local time)".to_string()
    })?;
    let local = naive.and_local_timezone(Local);
    let times: Vec<i64> = [local.earliest(), local.latest()]
        .into_iter()
        .flatten()
        .map(|t| t.timestamp())
        .collect();
    if times.is_empty() {
        return Err(
            "the time (7th field) does not exist in this host's time zone (it falls into the \
             hour skipped by the change to summer time): check TZ"
                .into(),
        );
    }
    Ok(times)
}

/// The RFC 4226 value of `counter` (a TOTP's time step) with HMAC-SHA1, pam_oath's only hash.
fn oath_code(key: &[u8], counter: u64, digits: u8) -> String {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = <Hmac<sha1::Sha1> as Mac>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let word = u32::from_be_bytes([
        digest[offset],
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]) & 0x7fff_ffff;
    let value = u64::from(word) % 10u64.pow(u32::from(digits));
    format!("{value:0width$}", width = usize::from(digits))
}

/// `HOTP`, `HOTP/E`, `HOTP/E/8`, `HOTP/T30`, `HOTP/T60/8`: the type, TOTP period and digits.
fn oath_type(kind: &str) -> Result<(TokenType, Option<u32>, u8), String> {
    let mut parts = kind.split('/');
    if !parts.next().is_some_and(|h| h.eq_ignore_ascii_case("HOTP")) {
        return Err(format!(
            "unknown token type {:?}: pam_oath knows HOTP, HOTP/E[/N] and HOTP/T30|T60[/N]",
            short(kind)
        ));
    }
    let (mut period, mut digits) = (None, 6u8);
    for (i, part) in parts.enumerate() {
        match (i, part) {
            (0, "E" | "e") => {}
            (0, step) if step.starts_with(['T', 't']) => {
                period = Some(match &step[1..] {
                    "30" => 30,
                    "60" => 60,
                    other => {
                        return Err(format!(
                            "a TOTP time step of {other:?} s: pi supports 30 and 60"
                        ))
                    }
                });
            }
            (0 | 1, "6") => digits = 6,
            (0 | 1, "8") => digits = 8,
            (0 | 1, "7") => {
                return Err(
                    "7-digit codes: pi supports 6 and 8 digits; enroll a new token for \
                            this user instead"
                        .into(),
                )
            }
            _ => return Err(format!("cannot read the token type {:?}", short(kind))),
        }
    }
    let token_type = if period.is_some() {
        TokenType::Totp
    } else {
        TokenType::Hotp
    };
    Ok((token_type, period, digits))
}

/// google-authenticator-libpam's secret file (`FILEFORMAT`): the base32 secret, `" OPTION`
/// lines, and 8-digit scratch codes.
pub fn google_authenticator(name: &str, text: &str, user: UserRef) -> Result<Parsed, Vec<String>> {
    let mut parsed = Parsed::default();
    let mut errors = Vec::new();
    let mut lines = text.lines().enumerate();
    let key = match lines.next() {
        Some((_, first)) => match base32_key(first) {
            Ok(key) => Some(key),
            Err(e) => {
                errors.push(format!("{name}:1: {e}"));
                None
            }
        },
        None => {
            errors.push(format!("{name}: the file is empty"));
            None
        }
    };
    let (mut hotp_counter, mut period, mut last_step) = (None, 30u32, 0u64);
    let mut tans = Vec::new();
    for (i, line) in lines {
        let at = format!("{name}:{}", i + 1);
        let line = line.trim();
        if let Some(option) = line.strip_prefix('"') {
            let words: Vec<&str> = option.split_whitespace().collect();
            let number = |w: Option<&&str>| w.and_then(|w| w.parse::<u64>().ok());
            match words.first().copied() {
                Some("TOTP_AUTH") => {}
                Some("HOTP_COUNTER") => match number(words.get(1)) {
                    Some(n) => hotp_counter = Some(n),
                    None => errors.push(format!("{at}: HOTP_COUNTER without a number")),
                },
                Some("STEP_SIZE") => match number(words.get(1)) {
                    Some(30) => period = 30,
                    Some(60) => period = 60,
                    _ => errors.push(format!("{at}: STEP_SIZE: pi supports 30 and 60 seconds")),
                },
                Some("DISALLOW_REUSE") => {
                    last_step = words[1..]
                        .iter()
                        .filter_map(|w| w.parse::<u64>().ok())
                        .fold(last_step, u64::max);
                }
                Some(
                    opt @ ("RATE_LIMIT" | "WINDOW_SIZE" | "TIME_SKEW" | "RESETTING_TIME_SKEW"),
                ) => {
                    parsed.note(format!(
                        "{opt} is not carried over: pid's fail counter, lockout and windows \
                         (pid.toml [tokens], policies) apply instead"
                    ));
                }
                _ => {}
            }
        } else if line.len() == 8 && line.bytes().all(|b| b.is_ascii_digit()) {
            tans.push(Secret::new(line));
        } else if !line.is_empty() {
            errors.push(format!(
                "{at}: neither an option (\" NAME ...) nor an 8-digit scratch code"
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let Some(key) = key else {
        return Err(vec![format!("{name}: no secret")]);
    };
    let (token_type, counter, period) = match hotp_counter {
        Some(n) => (TokenType::Hotp, n, None),
        None => (TokenType::Totp, last_step, Some(period)),
    };
    let source = format!("{name}:1");
    parsed.tokens.push(ImportedToken {
        source: source.clone(),
        user: user.clone(),
        token_type,
        otpkey: key,
        digits: 6,
        hash: HashAlgorithm::Sha1,
        period,
        counter,
        pin: None,
        tans: Vec::new(),
        description: format!("imported from google-authenticator ({name})"),
    });
    if !tans.is_empty() {
        parsed.tokens.push(ImportedToken {
            source: format!("{name} (scratch codes)"),
            user,
            token_type: TokenType::Tan,
            otpkey: Secret::new(""),
            digits: 8,
            hash: HashAlgorithm::Sha1,
            period: None,
            counter: 0,
            pin: None,
            tans,
            description: format!("scratch codes imported from google-authenticator ({name})"),
        });
    }
    Ok(parsed)
}

/// `alice`, or `alice@realm` (the realm given on the command line applies otherwise).
fn user_ref(login: &str, realm: Option<&str>) -> Result<UserRef, String> {
    if login.chars().any(char::is_control) || login.len() > 256 {
        return Err("the user name is not a login name".into());
    }
    Ok(UserRef {
        login: login.to_owned(),
        realm: realm.map(str::to_owned),
    })
}

/// The secret as the daemon takes it (hex), checked here so a bad line is named before any
/// token is sent.
fn hex_key(hex_text: &str) -> Result<Secret, String> {
    let digits = hex_text.len();
    if digits == 0 || !digits.is_multiple_of(2) || !hex_text.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(format!(
            "the secret (4th field) is not hexadecimal with an even number of digits ({digits} \
             characters)"
        ));
    }
    Ok(Secret::new(hex_text.to_ascii_lowercase()))
}

fn base32_key(line: &str) -> Result<Secret, String> {
    let cleaned: Zeroizing<String> = Zeroizing::new(
        line.chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    );
    let key = Zeroizing::new(
        data_encoding::BASE32_NOPAD
            .decode(cleaned.trim_end_matches('=').as_bytes())
            .map_err(|_| {
                "the first line is not a base32 secret (letters A-Z and digits 2-7)".to_string()
            })?,
    );
    if key.is_empty() {
        return Err("the first line, the secret, is empty".into());
    }
    Ok(Secret::new(hex::encode(&key[..])))
}

/// At most 40 characters of something the file said, for an error message (never a secret:
/// only the type field is quoted).
fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERSFILE: &str = "\
# pam_oath usersfile
HOTP     alice   -     3132333435363738393031323334353637383930 7
HOTP/E/8 bob     1234  3132333435363738393031323334353637383930
HOTP/T30 carol   +     3132333435363738393031323334353637383930

HOTP/T60/8 dave@corp - 3132333435363738393031323334353637383930
";

    #[test]
    fn a_usersfile_gives_one_token_per_line_with_counter_pin_period_and_digits() {
        let p = oath_usersfile("users.oath", USERSFILE, Some("hosts")).unwrap();
        let t = &p.tokens;
        assert_eq!(t.len(), 4);
        assert_eq!(t[0].source, "users.oath:2");
        assert_eq!(
            (t[0].token_type, t[0].counter, t[0].digits),
            (TokenType::Hotp, 7, 6)
        );
        assert_eq!(t[0].user.login, "alice");
        assert_eq!(t[0].user.realm.as_deref(), Some("hosts"));
        assert!(t[0].pin.is_none());
        assert_eq!(t[1].digits, 8);
        assert_eq!(t[1].pin.as_ref().map(Secret::expose), Some("1234"));
        assert_eq!(
            (t[2].token_type, t[2].period, t[2].counter),
            (TokenType::Totp, Some(30), 0),
            "a TOTP line never used has spent no step"
        );
        assert!(t[2].pin.is_none(), "+ means another module checks it");
        assert_eq!((t[3].period, t[3].digits), (Some(60), 8));
        assert_eq!(t[3].user.login, "dave@corp");
        assert!(
            p.notes.iter().any(|n| n.contains("pam_unix")),
            "{:?}",
            p.notes
        );
    }

    const RFC_KEY: &str = "3132333435363738393031323334353637383930";

    /// `unix` as pam_oath writes it: local time with a literal `L`.
    fn pam_oath_time(unix: i64) -> String {
        use chrono::TimeZone;
        chrono::Local
            .timestamp_opt(unix, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SL")
            .to_string()
    }

    fn one_line(line: &str) -> Result<ImportedToken, Vec<String>> {
        oath_usersfile("u", line, None).map(|mut p| p.tokens.remove(0))
    }

    #[test]
    fn codes_are_rfc_4226_values() {
        let key = hex::decode(RFC_KEY).unwrap();
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(
                oath_code(&key, counter as u64, 6),
                *code,
                "counter {counter}"
            );
        }
        // RFC 6238's SHA-1 vector for T = 1234567890: step 41152263.
        assert_eq!(oath_code(&key, 41_152_263, 8), "89005924");
    }

    #[test]
    fn an_hotp_line_that_pam_oath_used_continues_after_its_counter() {
        let fresh = one_line(&format!("HOTP alice - {RFC_KEY} 7\n")).unwrap();
        assert_eq!(fresh.counter, 7, "COUNTER is where pam_oath would start");
        let used = one_line(&format!(
            "HOTP\talice\t-\t{RFC_KEY}\t7\t162583\t{}\n",
            pam_oath_time(1_700_000_000)
        ))
        .unwrap();
        assert_eq!(used.counter, 8, "pam_oath accepted counter 7 (LASTOTP)");
        let errors = one_line(&format!(
            "HOTP alice - {RFC_KEY} 18446744073709551615 123456\n"
        ))
        .unwrap_err();
        assert!(errors[0].contains("largest"), "{errors:?}");
    }

    #[test]
    fn a_totp_line_that_pam_oath_used_has_spent_the_step_of_its_last_code() {
        // pam_oath accepted RFC 6238's code of step 41152263 two minutes before that step began
        // (a window of 4 or more): the step is found although it lies ahead of the timestamp.
        for ahead in [0, 120, 600] {
            let line = format!(
                "HOTP/T30/8\tcarol\t-\t{RFC_KEY}\t4\t89005924\t{}\n",
                pam_oath_time(1_234_567_890 - ahead)
            );
            assert_eq!(one_line(&line).unwrap().counter, 41_152_263, "{line}");
        }
        let far = format!(
            "HOTP/T30/8 carol - {RFC_KEY} 4 89005924 {}\n",
            pam_oath_time(1_234_567_890 - 3600)
        );
        let errors = one_line(&far).unwrap_err();
        assert!(
            errors[0].contains("not the code of any time step") && errors[0].contains("TZ"),
            "{errors:?}"
        );
        assert!(!errors[0].contains("89005924"), "the code is not echoed");
        for (fields, says) in [
            ("4 89005924", "without its time"),
            ("4 89005924 2009-02-13 23:31:30", "YYYY-MM-DDTHH:MM:SSL"),
            ("4 89005924 yesterday", "YYYY-MM-DDTHH:MM:SSL"),
        ] {
            let errors = one_line(&format!("HOTP/T30/8 carol - {RFC_KEY} {fields}\n")).unwrap_err();
            assert!(errors[0].contains(says), "{fields}: {errors:?}");
        }
    }

    #[test]
    fn a_usersfile_with_bad_lines_names_each_and_never_its_secret() {
        let text = "\
HOTP alice - 31323334353637383930313233343536373839
HOTP/T45 bob - 3132333435363738393031323334353637383930
HOTP/7 carol - 3132333435363738393031323334353637383930
TOTP dave - 3132333435363738393031323334353637383930
HOTP erin - nothex-secret-zz
HOTP frank - 3132333435363738393031323334353637383930 many
HOTP gina
";
        let errors = oath_usersfile("u", text, None).unwrap_err();
        assert_eq!(errors.len(), 6, "{errors:#?}");
        assert!(
            errors[0].starts_with("u:2: a TOTP time step"),
            "{errors:#?}"
        );
        assert!(errors[1].starts_with("u:3: 7-digit"), "{errors:#?}");
        assert!(
            errors[2].starts_with("u:4: unknown token type"),
            "{errors:#?}"
        );
        assert!(errors[3].starts_with("u:5: the secret"), "{errors:#?}");
        assert!(errors[4].starts_with("u:6: the counter"), "{errors:#?}");
        assert!(errors[5].starts_with("u:7: expected"), "{errors:#?}");
        assert!(!errors
            .iter()
            .any(|e| e.contains("nothex") || e.contains("3132")));
    }

    #[test]
    fn a_short_hex_key_is_left_to_the_daemon_to_refuse() {
        let p = oath_usersfile("u", "HOTP a - 3132333\n", None);
        assert!(p.is_err(), "odd number of hex digits");
        let p = oath_usersfile("u", "HOTP a - 3132\n", None).unwrap();
        assert_eq!(p.tokens[0].otpkey.expose(), "3132");
    }

    // RFC 4226's key "12345678901234567890" in base32, as google-authenticator writes it.
    const GA_TOTP: &str = "\
GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
\" RATE_LIMIT 3 30 1700000000
\" WINDOW_SIZE 17
\" DISALLOW_REUSE 56666666 56666667
\" TOTP_AUTH
12345678
87654321
";

    fn alice() -> UserRef {
        UserRef {
            login: "alice".into(),
            realm: None,
        }
    }

    #[test]
    fn a_google_authenticator_file_gives_a_totp_and_a_tan_list_of_its_scratch_codes() {
        let p = google_authenticator("ga", GA_TOTP, alice()).unwrap();
        assert_eq!(p.tokens.len(), 2);
        let totp = &p.tokens[0];
        assert_eq!(totp.token_type, TokenType::Totp);
        assert_eq!(
            totp.otpkey.expose(),
            "3132333435363738393031323334353637383930"
        );
        assert_eq!((totp.period, totp.counter), (Some(30), 56666667));
        let tan = &p.tokens[1];
        assert_eq!((tan.token_type, tan.digits), (TokenType::Tan, 8));
        let codes: Vec<&str> = tan.tans.iter().map(Secret::expose).collect();
        assert_eq!(codes, ["12345678", "87654321"]);
        assert!(p.notes.iter().any(|n| n.starts_with("RATE_LIMIT")));
        assert!(p.notes.iter().any(|n| n.starts_with("WINDOW_SIZE")));
    }

    #[test]
    fn a_google_authenticator_hotp_file_keeps_its_counter_and_step() {
        let text = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n\" HOTP_COUNTER 42\n";
        let p = google_authenticator("ga", text, alice()).unwrap();
        assert_eq!(p.tokens.len(), 1, "no scratch codes, no TAN list");
        assert_eq!(
            (
                p.tokens[0].token_type,
                p.tokens[0].counter,
                p.tokens[0].period
            ),
            (TokenType::Hotp, 42, None)
        );
        let text = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n\" STEP_SIZE 60\n\" TOTP_AUTH\n";
        let p = google_authenticator("ga", text, alice()).unwrap();
        assert_eq!(p.tokens[0].period, Some(60));
    }

    #[test]
    fn a_broken_google_authenticator_file_is_refused_whole() {
        for (text, want) in [
            ("", "ga: the file is empty"),
            (
                "not base32!\n",
                "ga:1: the first line is not a base32 secret",
            ),
            ("GEZDGNBV\n\" STEP_SIZE 45\n", "ga:2: STEP_SIZE"),
            ("GEZDGNBV\n\" HOTP_COUNTER x\n", "ga:2: HOTP_COUNTER"),
            ("GEZDGNBV\n1234\n", "ga:2: neither an option"),
        ] {
            let errors = google_authenticator("ga", text, alice()).unwrap_err();
            assert!(errors[0].starts_with(want), "{text:?}: {errors:?}");
        }
    }
}
