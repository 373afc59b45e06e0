//! LUKS volumes unlocked by a Yubikey's HMAC-SHA1 challenge-response (privacyIDEA's `luks`
//! application; Debian's yubikey-luks does the same at boot).
//!
//! The passphrase of a key slot is `hex(HMAC-SHA1(slot secret, password))` — what `ykchalresp
//! -2 PASSWORD` prints — or the password followed by it (yubikey-luks' `CONCATENATE=1`).
//! `pictl luks assign` gets the response from the daemon, which holds the secret; `pictl luks
//! unlock` gets it from the Yubikey itself ([`ccid`]) or from a ykchalresp-like program
//! ([`responder`]).
//!
//! Threats: a passphrase in a file or in an argument outlives the command (disk blocks, `ps`,
//! shell history), and one in freed memory can end up in a core dump or swap. Passphrases
//! therefore travel only through pipes ([`cryptsetup`]), live in buffers that are zeroised when
//! dropped, and are never printed.

pub mod ccid;
pub mod cryptsetup;
pub mod responder;

use crate::error::Error;
use crate::{input, Io};
use ccid::YubikeySlot;
use protocol::Secret;
use std::io::Read;
use std::path::Path;
use zeroize::Zeroizing;

/// The longest password a Yubikey takes as a challenge: in HMAC-lt64 mode the 64-byte block
/// carries its own padding, so at most 63 bytes are the challenge.
pub const MAX_PASSWORD_BYTES: usize = 63;

/// HMAC-SHA1 is 20 bytes, 40 hex digits.
pub const RESPONSE_HEX_LEN: usize = 40;

/// Key slots LUKS2 has (LUKS1: 8); slot 0 holds the volume's own passphrase and pictl never
/// touches it.
pub const MAX_SLOT: u8 = 31;

/// Bytes that unlock a key slot. Zeroised when dropped.
pub type Passphrase = Zeroizing<Vec<u8>>;

/// A password the Yubikey can take as its challenge: not empty, at most 63 bytes.
pub fn check_password(password: &str) -> Result<(), Error> {
    if password.is_empty() {
        return Err(Error::Usage(
            "the password is empty: type the password that is sent to the Yubikey as its \
             challenge (the one typed at boot)"
                .into(),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::Usage(format!(
            "the password has {} bytes, but a Yubikey takes at most {MAX_PASSWORD_BYTES} as a \
             challenge: choose a shorter one",
            password.len()
        )));
    }
    Ok(())
}

/// The password: from `--password-file` (its first line), else typed on the terminal without
/// echo (twice with `confirm`, since a mistyped password that nobody saw makes a useless key
/// slot), else one line of stdin.
pub fn read_password(
    io: &mut Io<'_>,
    password_file: Option<&Path>,
    confirm: bool,
) -> Result<Secret, Error> {
    let password = match password_file {
        Some(path) => read_password_file(path)?,
        None if io.stdin_is_terminal => {
            let first = ask(io, "Password (the Yubikey's challenge): ")?;
            if confirm {
                let second = ask(io, "Password again: ")?;
                if first != second {
                    return Err(Error::Usage(
                        "the two passwords differ: run the command again and type the same \
                         password twice"
                            .into(),
                    ));
                }
            }
            first
        }
        None => input::read_line(io, true)?.ok_or_else(|| {
            Error::Usage(
                "standard input is empty: pipe the password in (one line), use \
                 --password-file PATH, or run on a terminal"
                    .into(),
            )
        })?,
    };
    check_password(password.expose())?;
    Ok(password)
}

fn ask(io: &mut Io<'_>, prompt: &str) -> Result<Secret, Error> {
    input::ask(io, prompt, true)?.ok_or_else(|| {
        Error::Usage("the terminal closed before the password was typed: run again".into())
    })
}

/// The first line of `path`, line ending removed.
fn read_password_file(path: &Path) -> Result<Secret, Error> {
    let shown = path.display();
    let mut bytes = Zeroizing::new(Vec::new());
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| {
            Error::Usage(format!(
                "cannot read --password-file {shown}: {e}; check the path and its permissions"
            ))
        })?;
    let line = first_line(&bytes);
    let text = std::str::from_utf8(line).map_err(|_| {
        Error::Usage(format!(
            "--password-file {shown} is not UTF-8 text: write the password as text"
        ))
    })?;
    Ok(Secret::new(text))
}

/// Everything before the first `\n` (and a `\r` before it).
fn first_line(bytes: &[u8]) -> &[u8] {
    let line = match bytes.iter().position(|&b| b == b'\n') {
        Some(end) => &bytes[..end],
        None => bytes,
    };
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// What unlocks the slot: the response, or the password followed by the response.
pub fn passphrase(password: &str, response: &str, concatenate: bool) -> Passphrase {
    let mut out = Zeroizing::new(Vec::with_capacity(password.len() + response.len()));
    if concatenate {
        out.extend_from_slice(password.as_bytes());
    }
    out.extend_from_slice(response.as_bytes());
    out
}

/// 40 lowercase hex digits: the shape of every response.
pub fn is_response(s: &str) -> bool {
    s.len() == RESPONSE_HEX_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Lowercase hex, in a buffer that is zeroised when dropped.
pub fn to_hex(bytes: &[u8]) -> Zeroizing<String> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Zeroizing::new(String::with_capacity(bytes.len() * 2));
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The Yubikey serial and OTP slot a luks token stands for: privacyIDEA names the token of
/// slot N of the key with serial S `UBOM<S>_<N>` (S zero-padded to 8 digits, so compared as a
/// number here). Any other name stands for no particular key.
pub fn parse_ubom(token: &str) -> Option<(u32, YubikeySlot)> {
    let (serial, slot) = token.strip_prefix("UBOM")?.split_once('_')?;
    if serial.is_empty() || !serial.bytes().all(|b| b.is_ascii_digit()) || slot.len() != 1 {
        return None;
    }
    let slot = YubikeySlot::from_number(slot.parse().ok()?)?;
    Some((serial.parse().ok()?, slot))
}

/// Whether `token` is what `--serial` names: the token itself (`UBOM12345678_2`) or, given as
/// digits, any token of that key.
pub fn names_token(wanted: &str, token: &str) -> bool {
    if token == wanted {
        return true;
    }
    let Ok(key) = wanted.parse::<u32>() else {
        return false;
    };
    wanted.bytes().all(|b| b.is_ascii_digit()) && parse_ubom(token).is_some_and(|(k, _)| k == key)
}

/// The items whose token (`token_of`) belongs to the key with serial `key`. None is an error
/// naming the tokens there are, so the operator sees which key (or which attach) is missing.
pub fn pick_for_key<'a, T>(
    items: &[&'a T],
    token_of: impl Fn(&T) -> &str,
    key: u32,
    device: &str,
) -> Result<Vec<&'a T>, Error> {
    let picked: Vec<&'a T> = items
        .iter()
        .copied()
        .filter(|item| parse_ubom(token_of(item)).is_some_and(|(k, _)| k == key))
        .collect();
    if !picked.is_empty() {
        return Ok(picked);
    }
    let named: Vec<String> = items
        .iter()
        .map(|item| crate::output::sanitize(token_of(item)).into_owned())
        .collect();
    let there = if named.is_empty() {
        format!("{device} has no luks assignment on this host")
    } else {
        format!("the luks assignments of {device} name {}", named.join(", "))
    };
    Err(Error::Failed(format!(
        "the plugged-in Yubikey has serial {key}, but no luks assignment is for it ({there}): \
         plug in the key they name, or attach this key's token first (`pictl machine attach \
         UBOM{key:08}_2 --app luks --device {device} --slot N`)"
    )))
}

/// `--slot`: 1 to 31. Slot 0 holds the volume's original passphrase.
pub fn parse_slot(s: &str) -> Result<u8, String> {
    match s.trim().parse::<u8>() {
        Ok(0) => Err(
            "slot 0 holds the volume's original passphrase and pictl never touches it: choose \
             a slot from 1 to 31 (`cryptsetup luksDump DEV` shows which are free)"
                .into(),
        ),
        Ok(n) if n <= MAX_SLOT => Ok(n),
        _ => Err("a LUKS key slot is a number from 1 to 31 (LUKS1 volumes: 1 to 7)".into()),
    }
}

/// The device must exist before cryptsetup is asked anything about it.
pub fn check_device(device: &Path) -> Result<(), Error> {
    match std::fs::metadata(device) {
        Ok(_) => Ok(()),
        Err(e) => Err(Error::Usage(format!(
            "{}: {e}; give the block device or image file of the LUKS volume (`lsblk -f` \
             lists block devices, LUKS ones have FSTYPE crypto_LUKS)",
            crate::output::sanitize(&device.display().to_string())
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_must_fit_one_yubikey_challenge() {
        assert!(check_password("lukspassword").is_ok());
        assert!(check_password(&"x".repeat(63)).is_ok());
        let err = check_password(&"x".repeat(64)).unwrap_err();
        assert!(err.to_string().contains("at most 63"), "{err}");
        let err = check_password("").unwrap_err();
        assert!(matches!(err, Error::Usage(_)), "{err:?}");
        // Bytes, not characters: 32 two-byte characters are 64 bytes.
        assert!(check_password(&"é".repeat(32)).is_err());
    }

    #[test]
    fn concatenate_puts_the_password_before_the_response() {
        let r = "04b30deb5dcf72ad8aa0a9afa9b4d24d71617db5";
        assert_eq!(passphrase("pw", r, false).as_slice(), r.as_bytes());
        assert_eq!(
            passphrase("pw", r, true).as_slice(),
            format!("pw{r}").as_bytes()
        );
    }

    #[test]
    fn responses_are_forty_lowercase_hex_digits() {
        assert!(is_response("04b30deb5dcf72ad8aa0a9afa9b4d24d71617db5"));
        assert!(!is_response("04B30DEB5DCF72AD8AA0A9AFA9B4D24D71617DB5"));
        assert!(!is_response("04b30deb5dcf72ad8aa0a9afa9b4d24d71617db"));
        assert!(!is_response("04b30deb5dcf72ad8aa0a9afa9b4d24d71617dbg"));
        assert!(!is_response(""));
    }

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa5, 0xff]).as_str(), "000fa5ff");
        assert_eq!(to_hex(b"lukspassword").as_str(), "6c756b7370617373776f7264");
    }

    #[test]
    fn ubom_names_carry_the_key_serial_and_otp_slot() {
        assert_eq!(
            parse_ubom("UBOM12345678_2"),
            Some((12_345_678, YubikeySlot::Two))
        );
        assert_eq!(parse_ubom("UBOM00001234_1"), Some((1234, YubikeySlot::One)));
        for other in [
            "UBOM12345678_3",
            "UBOM12345678",
            "UBOM_2",
            "UBOM12a45678_2",
            "UBOM12345678_22",
            "TOTP00012345",
            "ubom12345678_2",
            "UBOM99999999999_2",
        ] {
            assert_eq!(parse_ubom(other), None, "{other}");
        }
    }

    #[test]
    fn serial_option_names_a_token_or_all_tokens_of_a_key() {
        assert!(names_token("UBOM12345678_2", "UBOM12345678_2"));
        assert!(!names_token("UBOM12345678_2", "UBOM12345678_1"));
        assert!(names_token("12345678", "UBOM12345678_1"));
        assert!(names_token("1234", "UBOM00001234_2"));
        assert!(!names_token("1234", "UBOM12345678_2"));
        assert!(!names_token("+1234", "UBOM00001234_2"));
    }

    #[test]
    fn the_key_serial_picks_its_assignments_and_an_unknown_key_lists_the_others() {
        let tokens = [
            "UBOM00001111_2",
            "UBOM00002222_1",
            "UBOM00002222_2",
            "other",
        ];
        let items: Vec<&&str> = tokens.iter().collect();
        let picked = pick_for_key(&items, |t| t, 2222, "/dev/sda3").unwrap();
        assert_eq!(picked, [&"UBOM00002222_1", &"UBOM00002222_2"]);
        let err = pick_for_key(&items, |t| t, 3333, "/dev/sda3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("serial 3333"), "{err}");
        assert!(
            err.contains("name UBOM00001111_2, UBOM00002222_1, UBOM00002222_2, other"),
            "{err}"
        );
        assert!(err.contains("attach UBOM00003333_2"), "{err}");
        let none: Vec<&&str> = Vec::new();
        let err = pick_for_key(&none, |t| t, 3333, "/dev/sda3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/dev/sda3 has no luks assignment"), "{err}");
    }

    #[test]
    fn slot_zero_and_slots_past_31_are_refused() {
        assert_eq!(parse_slot("1"), Ok(1));
        assert_eq!(parse_slot("31"), Ok(31));
        assert!(parse_slot("0").unwrap_err().contains("never touches"));
        assert!(parse_slot("32").is_err());
        assert!(parse_slot("-1").is_err());
        assert!(parse_slot("one").is_err());
    }

    #[test]
    fn password_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "secret pw\r\nsecond line\n").unwrap();
        assert_eq!(read_password_file(&path).unwrap().expose(), "secret pw");
        std::fs::write(&path, "no newline").unwrap();
        assert_eq!(read_password_file(&path).unwrap().expose(), "no newline");
        let err = read_password_file(&dir.path().join("missing")).unwrap_err();
        assert!(err.to_string().contains("--password-file"), "{err}");
    }

    fn read_with(input: &str, terminal: bool) -> Result<Secret, Error> {
        crate::input::tests::with_io(input, terminal, |io| read_password(io, None, true)).0
    }

    #[test]
    fn piped_password_is_one_line_and_must_not_be_empty() {
        assert_eq!(read_with("pw\nrest\n", false).unwrap().expose(), "pw");
        assert!(matches!(read_with("", false), Err(Error::Usage(_))));
        assert!(matches!(read_with("\n", false), Err(Error::Usage(_))));
        let long = format!("{}\n", "y".repeat(64));
        assert!(read_with(&long, false).is_err());
    }

    #[test]
    fn missing_device_is_a_usage_error_naming_it() {
        let err = check_device(Path::new("/nonexistent/pictl-luks-test")).unwrap_err();
        assert!(matches!(err, Error::Usage(_)), "{err:?}");
        assert!(
            err.to_string().contains("/nonexistent/pictl-luks-test"),
            "{err}"
        );
    }
}
