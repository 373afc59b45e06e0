//! OTPs from `oathtool` (oath-toolkit), never from our own code: a shared misunderstanding of
//! RFC 4226/6238 between the daemon and its tests would otherwise pass unnoticed.

use crate::process::run;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn oathtool(args: &[String]) -> String {
    let mut cmd = Command::new("oathtool");
    cmd.args(args);
    let out = run(cmd, b"");
    assert!(
        out.success(),
        "oathtool {args:?} failed (install oathtool)\n{}",
        out.describe()
    );
    out.stdout.trim().to_owned()
}

/// HOTP value `counter` of a hex key.
pub fn hotp(key_hex: &str, counter: u64, digits: u8) -> String {
    oathtool(&[
        "--hotp".into(),
        format!("--digits={digits}"),
        format!("--counter={counter}"),
        key_hex.into(),
    ])
}

/// HOTP values `counter ..= counter + window` of a hex key, in order (`oathtool --window`).
pub fn hotp_range(key_hex: &str, counter: u64, window: u64, digits: u8) -> Vec<String> {
    oathtool(&[
        "--hotp".into(),
        format!("--digits={digits}"),
        format!("--counter={counter}"),
        format!("--window={window}"),
        key_hex.into(),
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

/// HOTP value `counter` of a base32 key (as `pictl` prints it at enrollment).
pub fn hotp_b32(key_base32: &str, counter: u64, digits: u8) -> String {
    oathtool(&[
        "--hotp".into(),
        "--base32".into(),
        format!("--digits={digits}"),
        format!("--counter={counter}"),
        key_base32.into(),
    ])
}

/// TOTP of a hex key at `unix` seconds; `hash` is `sha1`, `sha256` or `sha512`.
pub fn totp(key_hex: &str, hash: &str, digits: u8, period: u32, unix: u64) -> String {
    oathtool(&[
        format!("--totp={hash}"),
        format!("--digits={digits}"),
        format!("--time-step-size={period}s"),
        format!("--now=@{unix}"),
        key_hex.into(),
    ])
}

/// TOTP of a base32 key at `unix` seconds.
pub fn totp_b32(key_base32: &str, hash: &str, digits: u8, period: u32, unix: u64) -> String {
    oathtool(&[
        format!("--totp={hash}"),
        "--base32".into(),
        format!("--digits={digits}"),
        format!("--time-step-size={period}s"),
        format!("--now=@{unix}"),
        key_base32.into(),
    ])
}

/// Seconds since the epoch, the daemon's clock too (same host).
#[allow(clippy::disallowed_methods)] // tests compare against the real clock the daemon reads
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `now`, after waiting for the next time step if fewer than 5 seconds of the current one are left,
/// so that a code computed now is still the current step when the daemon checks it.
pub fn wait_for_fresh_totp_step(period: u32) -> u64 {
    let period = u64::from(period.max(1));
    let now = unix_now();
    let into_step = now % period;
    if into_step + 5 > period {
        std::thread::sleep(Duration::from_secs(period - into_step));
        std::thread::sleep(Duration::from_millis(100));
        return unix_now();
    }
    now
}

/// A deterministic key of `len` bytes for a test, as hex: reproducible failures, and different
/// tests never share a key.
pub fn test_key(name: &str, len: usize) -> String {
    let bytes: Vec<u8> = name
        .bytes()
        .chain(b"-pi-test-key".iter().copied())
        .cycle()
        .take(len)
        .collect();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oathtool_reproduces_rfc4226_and_rfc6238_vectors() {
        let sha1 = hex::encode("12345678901234567890");
        assert_eq!(hotp(&sha1, 0, 6), "755224");
        assert_eq!(hotp(&sha1, 9, 6), "520489");
        assert_eq!(totp(&sha1, "sha1", 8, 30, 59), "94287082");
        let sha256 = hex::encode("12345678901234567890123456789012");
        assert_eq!(totp(&sha256, "sha256", 8, 30, 1111111109), "68084774");
        let sha512 =
            hex::encode("1234567890123456789012345678901234567890123456789012345678901234");
        assert_eq!(totp(&sha512, "sha512", 8, 30, 1234567890), "93441116");
    }

    #[test]
    fn a_range_of_hotp_values_is_the_values_one_by_one() {
        let key = hex::encode("12345678901234567890");
        let one_by_one: Vec<String> = (3..=7).map(|c| hotp(&key, c, 6)).collect();
        assert_eq!(hotp_range(&key, 3, 4, 6), one_by_one);
    }

    #[test]
    fn base32_and_hex_forms_of_a_key_give_the_same_codes() {
        // "12345678901234567890" in base32 (RFC 4648).
        let b32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(hotp_b32(b32, 1, 6), "287082");
        assert_eq!(totp_b32(b32, "sha1", 8, 30, 59), "94287082");
    }

    #[test]
    fn test_keys_differ_per_name_and_have_the_requested_length() {
        assert_eq!(test_key("a", 20).len(), 40);
        assert_eq!(test_key("a", 32).len(), 64);
        assert_ne!(test_key("a", 20), test_key("b", 20));
    }
}
