//! The values flags take: parsed (or, for secrets, only wrapped) by clap, checked by the
//! commands without ever repeating a secret in a message.

use protocol::Secret;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

/// A PIN given on the command line, or `-` to read it from stdin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinArg {
    /// Read one line from stdin (prompted, without echo, on a terminal).
    Stdin,
    Value(Secret),
}

/// A validity bound: a point in time, or `None` to remove the bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeBound(pub Option<i64>);

/// Secrets are not validated by clap: clap would repeat a rejected value in its error message,
/// printing (most of) a key to the terminal. The commands check them and say what is wrong
/// without echoing them.
pub fn parse_secret(s: &str) -> Result<Secret, String> {
    Ok(Secret::new(s))
}

pub fn parse_pin(s: &str) -> Result<PinArg, String> {
    Ok(if s == "-" {
        PinArg::Stdin
    } else {
        PinArg::Value(Secret::new(s))
    })
}

/// `--digits`: OATH tokens show 6 or 8 digits.
pub fn parse_digits(s: &str) -> Result<u8, String> {
    match s.trim().parse::<u8>() {
        Ok(n @ (6 | 8 | 32..=64)) => Ok(n),
        _ => Err(
            "OTPs have 6 or 8 digits (use --digits 6 or --digits 8); a Yubikey's OTP has 32 to 64 \
             characters"
                .into(),
        ),
    }
}

/// `--question QUESTION=ANSWER` (the answer is everything after the last `=`).
pub fn parse_question(s: &str) -> Result<(String, Secret), String> {
    match s.rsplit_once('=') {
        Some((q, a)) if !q.trim().is_empty() && !a.is_empty() => {
            Ok((q.trim().to_owned(), Secret::new(a)))
        }
        _ => Err("write --question 'QUESTION=ANSWER', e.g. --question 'First pet?=Rex'".into()),
    }
}

/// `--period`: the TOTP time steps authenticator apps support.
pub fn parse_period(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(p) if (30..=604_800).contains(&p) => Ok(p),
        _ => Err(
            "the time step is in seconds: 30 or 60 for totp, 60 to 604800 for daypassword".into(),
        ),
    }
}

/// A validity bound: RFC 3339, `YYYY-MM-DD` (midnight UTC) or `none`.
pub fn parse_time_bound(s: &str) -> Result<TimeBound, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("none") {
        return Ok(TimeBound(None));
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(TimeBound(Some(t.unix_timestamp())));
    }
    if let Ok(d) = Date::parse(s, format_description!("[year]-[month]-[day]")) {
        return Ok(TimeBound(Some(d.midnight().assume_utc().unix_timestamp())));
    }
    Err(
        "use RFC 3339 (2025-01-31T18:00:00Z), a date (2025-01-31, midnight UTC), \
         or `none` to remove the bound"
            .into(),
    )
}

/// An OATH key in hex: non-empty, hex digits only, whole bytes. The message never repeats the key.
pub fn check_hex_key(key: &str) -> Result<(), String> {
    const ADVICE: &str = "or leave --otpkey out and let pid generate a key";
    if key.is_empty() {
        return Err(format!("--otpkey is empty: give the key in hex, {ADVICE}"));
    }
    if let Some(pos) = key.chars().position(|c| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "--otpkey must be hex (0-9, a-f), but character {} is not: give the key in hex \
             (a base32 key must be converted first), {ADVICE}",
            pos + 1
        ));
    }
    if key.len() & 1 == 1 {
        return Err(format!(
            "--otpkey has an odd number of hex digits ({}), so it is not whole bytes: check that \
             no digit is missing, {ADVICE}",
            key.len()
        ));
    }
    Ok(())
}

/// An OTP as typed: digits only. The message never repeats it.
pub fn check_otp(name: &str, otp: &str) -> Result<(), String> {
    if otp.is_empty() || !otp.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "{name} must be the digits the token shows (e.g. 123456), without PIN or spaces"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys_are_checked_without_repeating_them() {
        assert!(check_hex_key("3132333435363738393031323334353637383930").is_ok());
        assert!(check_hex_key("DEADbeef").is_ok());
        let err = check_hex_key("31323g").unwrap_err();
        assert!(err.contains("character 6"), "{err}");
        assert!(!err.contains("31323g"), "{err}");
        let err = check_hex_key("313").unwrap_err();
        assert!(err.contains("odd"), "{err}");
        assert!(check_hex_key("").is_err());
        assert!(check_hex_key("JBSWY3DPEHPK3PXP").is_err());
    }

    #[test]
    fn otps_must_be_digits() {
        assert!(check_otp("OTP1", "123456").is_ok());
        assert!(check_otp("OTP1", "12 456").is_err());
        assert!(check_otp("OTP1", "").is_err());
        assert!(check_otp("OTP1", "pin123456").is_err());
    }

    #[test]
    fn dates_mean_utc_midnight() {
        assert_eq!(
            parse_time_bound("2025-01-31"),
            Ok(TimeBound(Some(1_738_281_600)))
        );
        assert_eq!(parse_time_bound("1970-01-01"), Ok(TimeBound(Some(0))));
    }

    #[test]
    fn rfc3339_times_honour_their_offset() {
        assert_eq!(
            parse_time_bound("2025-01-31T18:00:00Z"),
            Ok(TimeBound(Some(1_738_346_400)))
        );
        assert_eq!(
            parse_time_bound("2025-01-31T19:00:00+01:00"),
            Ok(TimeBound(Some(1_738_346_400)))
        );
    }

    #[test]
    fn none_clears_a_bound() {
        assert_eq!(parse_time_bound("none"), Ok(TimeBound(None)));
        assert_eq!(parse_time_bound("NONE"), Ok(TimeBound(None)));
    }

    #[test]
    fn malformed_times_are_refused_with_the_accepted_forms() {
        for bad in [
            "2025-13-01",
            "31.01.2025",
            "tomorrow",
            "",
            "2025-01-31 18:00",
        ] {
            let err = parse_time_bound(bad).unwrap_err();
            assert!(err.contains("RFC 3339"), "{bad}: {err}");
        }
    }
}
