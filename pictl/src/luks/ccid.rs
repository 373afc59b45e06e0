//! A Yubikey's HMAC-SHA1 challenge-response over PC/SC (CCID): the OTP application's `CONFIG`
//! instruction with the slot's challenge command, as yubikey-manager sends it.
//!
//! The key's serial comes from the same application (`CONFIG` with the device-serial command,
//! yubikey-manager's `get_serial`), so pictl can tell which `UBOM<serial>_<slot>` assignment
//! belongs to the key that is plugged in.
//!
//! APDUs are built and answers checked by pure functions, tested below; [`OtpKey`] is the thin
//! PC/SC transport around them. This side stays hand-written although pictl links the
//! `yubikey` crate for PIV: that crate speaks only to the PIV application (it opens no key
//! whose PIV application is disabled) and has no OTP challenge-response, while the challenge,
//! and so the serial that picks it, must go to the OTP application on one connection. The challenge (the password) and the response only
//! live in buffers that are zeroised when dropped.

use super::{to_hex, MAX_PASSWORD_BYTES};
use crate::error::Error;
use std::ffi::CString;
use zeroize::{Zeroize, Zeroizing};

/// The Yubikey OTP application (yubikey-manager's `AID.OTP`).
pub const OTP_AID: [u8; 7] = [0xa0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01];
const INS_SELECT: u8 = 0xa4;
/// The OTP application's one instruction; P1 names the operation.
const INS_CONFIG: u8 = 0x01;
const INS_GET_RESPONSE: u8 = 0xc0;
/// P1 of `INS_CONFIG`: HMAC-SHA1 challenge-response with slot 1 / slot 2.
const CHAL_HMAC_1: u8 = 0x30;
const CHAL_HMAC_2: u8 = 0x38;
/// P1 of `INS_CONFIG`: the key's serial, 4 bytes big-endian.
const CMD_DEVICE_SERIAL: u8 = 0x10;
const SERIAL_SIZE: usize = 4;
/// The key always hashes a 64-byte block; shorter challenges are padded (HMAC-lt64 mode).
pub const HMAC_CHALLENGE_SIZE: usize = 64;
pub const HMAC_RESPONSE_SIZE: usize = 20;
pub const SW_OK: u16 = 0x9000;

/// Which of the Yubikey's two OTP slots answers (`ykchalresp -1` / `-2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YubikeySlot {
    One,
    Two,
}

impl YubikeySlot {
    pub fn from_number(n: u8) -> Option<YubikeySlot> {
        match n {
            1 => Some(YubikeySlot::One),
            2 => Some(YubikeySlot::Two),
            _ => None,
        }
    }

    pub fn number(self) -> u8 {
        match self {
            YubikeySlot::One => 1,
            YubikeySlot::Two => 2,
        }
    }

    fn hmac_command(self) -> u8 {
        match self {
            YubikeySlot::One => CHAL_HMAC_1,
            YubikeySlot::Two => CHAL_HMAC_2,
        }
    }
}

/// What can go wrong between pictl and the key; each message says what to do.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApduError {
    #[error(
        "the challenge has {0} bytes; a Yubikey takes 1 to {MAX_PASSWORD_BYTES}: use a \
         shorter password"
    )]
    ChallengeLength(usize),
    #[error(
        "the Yubikey's answer is shorter than a status word: unplug it, plug it in again and \
         retry"
    )]
    Truncated,
    #[error(
        "the key in the reader has no Yubikey OTP application (status {0:04X}): is it a \
         Yubikey? Enable its OTP application with `ykman config usb --enable OTP`, or name \
         another reader with --reader"
    )]
    NoOtpApplication(u16),
    #[error(
        "the Yubikey refused the challenge for slot {slot} (status {sw:04X}): the slot is not \
         programmed for HMAC-SHA1 challenge-response, or it waited for a touch that did not \
         come; program it with `ykman otp chalresp --generate {slot}` (or `ykpersonalize \
         -{slot} -ochal-resp -ochal-hmac -ohmac-lt64`), or touch the key when it blinks"
    )]
    Refused { slot: u8, sw: u16 },
    #[error(
        "the Yubikey does not tell its serial (status {0:04X}): its OTP setting \
         serial-api-visible is off. Name the token instead (--serial UBOM…_N), or with \
         `pictl luks unlock` the slot (--yubikey-slot N)"
    )]
    SerialHidden(u16),
    #[error(
        "the Yubikey answered {0} bytes instead of its 4-byte serial: unplug it, plug it in \
         again and retry"
    )]
    SerialLength(usize),
    #[error(
        "the Yubikey answered {0} bytes instead of a 20-byte HMAC-SHA1: is the slot \
         programmed for HMAC-SHA1 challenge-response (not Yubico OTP)?"
    )]
    WrongLength(usize),
}

/// `SELECT` the OTP application by its AID.
pub fn select_apdu() -> Vec<u8> {
    let mut apdu = vec![0x00, INS_SELECT, 0x04, 0x00, OTP_AID.len() as u8];
    apdu.extend_from_slice(&OTP_AID);
    apdu
}

/// `00 01 P1 00 40 <challenge padded to 64 bytes>`. The padding byte differs from the
/// challenge's last byte, so the key (HMAC-lt64) can strip it: yubikey-manager and ykchalresp
/// pad the same way, which is why their responses equal `HMAC-SHA1(secret, password)`.
pub fn hmac_apdu(slot: YubikeySlot, challenge: &[u8]) -> Result<Zeroizing<Vec<u8>>, ApduError> {
    let last = match challenge.last() {
        Some(&last) if challenge.len() <= MAX_PASSWORD_BYTES => last,
        _ => return Err(ApduError::ChallengeLength(challenge.len())),
    };
    let pad = if last == 0 { 1 } else { 0 };
    let mut apdu = Zeroizing::new(Vec::with_capacity(5 + HMAC_CHALLENGE_SIZE));
    apdu.extend_from_slice(&[
        0x00,
        INS_CONFIG,
        slot.hmac_command(),
        0x00,
        HMAC_CHALLENGE_SIZE as u8,
    ]);
    apdu.extend_from_slice(challenge);
    apdu.resize(5 + HMAC_CHALLENGE_SIZE, pad);
    Ok(apdu)
}

/// `00 01 10 00`: the OTP application's serial command (no data).
pub fn serial_apdu() -> [u8; 4] {
    [0x00, INS_CONFIG, CMD_DEVICE_SERIAL, 0x00]
}

/// The serial from its answer: 4 bytes big-endian and `90 00`. A key whose serial is hidden
/// answers with an error status.
pub fn serial_from_answer(answer: &[u8]) -> Result<u32, ApduError> {
    let (data, sw) = split_status(answer)?;
    if sw != SW_OK {
        return Err(ApduError::SerialHidden(sw));
    }
    let bytes: [u8; SERIAL_SIZE] = data
        .try_into()
        .map_err(|_| ApduError::SerialLength(data.len()))?;
    Ok(u32::from_be_bytes(bytes))
}

/// `GET RESPONSE` for the `len` bytes a `61 xx` status announced.
pub fn get_response_apdu(len: u8) -> [u8; 5] {
    [0x00, INS_GET_RESPONSE, 0x00, 0x00, len]
}

/// Split an answer into its data and status word.
pub fn split_status(answer: &[u8]) -> Result<(&[u8], u16), ApduError> {
    match answer {
        [data @ .., sw1, sw2] => Ok((data, u16::from_be_bytes([*sw1, *sw2]))),
        _ => Err(ApduError::Truncated),
    }
}

/// `Some(n)`: the card has `n` more bytes to fetch with `GET RESPONSE` (`61 xx`; `00` = 256).
pub fn more_data(sw: u16) -> Option<u8> {
    let [sw1, sw2] = sw.to_be_bytes();
    (sw1 == 0x61).then_some(sw2)
}

/// The `SELECT` answer is the OTP application's status (version, sequence, touch level) and
/// `90 00`; anything else means there is no OTP application.
pub fn check_select(answer: &[u8]) -> Result<(), ApduError> {
    match split_status(answer)? {
        (_, SW_OK) => Ok(()),
        (_, sw) => Err(ApduError::NoOtpApplication(sw)),
    }
}

/// The 20-byte HMAC from the challenge's answer.
pub fn hmac_from_answer(
    slot: YubikeySlot,
    answer: &[u8],
) -> Result<Zeroizing<[u8; HMAC_RESPONSE_SIZE]>, ApduError> {
    let (data, sw) = split_status(answer)?;
    if sw != SW_OK {
        return Err(ApduError::Refused {
            slot: slot.number(),
            sw,
        });
    }
    if data.len() != HMAC_RESPONSE_SIZE {
        return Err(ApduError::WrongLength(data.len()));
    }
    let mut mac = Zeroizing::new([0u8; HMAC_RESPONSE_SIZE]);
    mac.copy_from_slice(data);
    Ok(mac)
}

/// Which reader to use: the one whose name contains `wanted`, else the Yubico one. Several
/// matches are refused rather than one picked: a Yubikey's reader exists only while it is
/// plugged in, so two matches are two keys, and the wrong one would answer for a volume or be
/// enrolled for a user.
pub fn choose_reader(names: &[String], wanted: Option<&str>) -> Result<usize, String> {
    let needle = wanted.unwrap_or("Yubico");
    let found: Vec<usize> = (0..names.len())
        .filter(|&i| names[i].contains(needle))
        .collect();
    match found[..] {
        [one] => return Ok(one),
        [_, _, ..] => {
            let listed: Vec<&str> = found.iter().map(|&i| names[i].as_str()).collect();
            return Err(format!(
                "{} keys are plugged in ({}): name the one to use with --reader TEXT, a part \
                 of its reader's name that the others lack, or unplug the others",
                found.len(),
                listed.join(", ")
            ));
        }
        [] => {}
    }
    let seen = if names.is_empty() {
        "PC/SC sees no reader at all".to_owned()
    } else {
        format!("the readers are: {}", names.join(", "))
    };
    Err(match wanted {
        Some(w) => format!(
            "no smart card reader's name contains {w:?} ({seen}): check --reader, or leave it \
             out to use the Yubikey"
        ),
        None => format!(
            "no Yubikey found ({seen}): plug the Yubikey in (its CCID interface must be enabled: \
             `ykman config usb --enable OTP`), name its reader with --reader, or use \
             --responder-cmd 'ykchalresp -2 -x'"
        ),
    })
}

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Failed(format!(
        "{what}: {e}; is pcscd running (`apt-get install pcscd`, `systemctl start \
         pcscd.socket`)? Or talk to the Yubikey with --responder-cmd 'ykchalresp -2 -x'"
    ))
}

/// The Yubikey in the chosen reader, its OTP application selected.
pub struct OtpKey {
    card: pcsc::Card,
    name: String,
}

impl OtpKey {
    /// Connect to the one Yubikey (or the one in `reader`) and select its OTP application.
    pub fn connect(reader: Option<&str>) -> Result<OtpKey, Error> {
        let context = pcsc::Context::establish(pcsc::Scope::User)
            .map_err(|e| failed("cannot reach the PC/SC service", e))?;
        let readers: Vec<CString> = match context.list_readers_owned() {
            Ok(readers) => readers,
            Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
            Err(e) => return Err(failed("cannot list the smart card readers", e)),
        };
        let names: Vec<String> = readers
            .iter()
            .map(|r| r.to_string_lossy().into_owned())
            .collect();
        let index = choose_reader(&names, reader).map_err(Error::Failed)?;
        let name = names[index].clone();
        let card = context
            .connect(
                &readers[index],
                pcsc::ShareMode::Shared,
                pcsc::Protocols::ANY,
            )
            .map_err(|e| match e {
                pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard => Error::Failed(format!(
                    "the reader {name:?} has no key in it: plug the Yubikey in, or name another \
                     reader with --reader"
                )),
                e => failed(&format!("cannot connect to the key in {name:?}"), e),
            })?;
        let key = OtpKey { card, name };
        let select = key.exchange(&select_apdu(), "cannot talk to")?;
        check_select(&select).map_err(|e| Error::Failed(e.to_string()))?;
        Ok(key)
    }

    /// The key's serial (what `ykman list --serials` prints).
    pub fn serial(&self) -> Result<u32, Error> {
        let answer = self.exchange(&serial_apdu(), "cannot read the serial of")?;
        serial_from_answer(&answer).map_err(|e| Error::Failed(e.to_string()))
    }

    /// `hex(HMAC-SHA1(slot secret, challenge))`.
    pub fn hmac_response(
        &self,
        slot: YubikeySlot,
        challenge: &[u8],
    ) -> Result<Zeroizing<String>, Error> {
        let apdu = hmac_apdu(slot, challenge).map_err(|e| Error::Usage(e.to_string()))?;
        let answer = self.exchange(&apdu, "no answer to the challenge from")?;
        let mac = hmac_from_answer(slot, &answer).map_err(|e| Error::Failed(e.to_string()))?;
        Ok(to_hex(mac.as_slice()))
    }

    fn exchange(&self, apdu: &[u8], what: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        exchange(&self.card, apdu)
            .map_err(|e| failed(&format!("{what} the key in {:?}", self.name), e))
    }
}

/// Send one APDU and collect the whole answer (following `61 xx` with `GET RESPONSE`).
fn exchange(card: &pcsc::Card, apdu: &[u8]) -> Result<Zeroizing<Vec<u8>>, pcsc::Error> {
    let mut buf = Zeroizing::new([0u8; pcsc::MAX_BUFFER_SIZE]);
    let mut answer = Zeroizing::new(Vec::new());
    let mut command = Zeroizing::new(apdu.to_vec());
    // A Yubikey answers in one go; the bound only stops a card that keeps saying "more".
    for _ in 0..16 {
        let got = card.transmit(&command, &mut buf[..])?;
        let Ok((data, sw)) = split_status(got) else {
            answer.extend_from_slice(got);
            break;
        };
        answer.extend_from_slice(data);
        match more_data(sw) {
            Some(len) => {
                command.zeroize();
                command.extend_from_slice(&get_response_apdu(len));
            }
            None => {
                answer.extend_from_slice(&sw.to_be_bytes());
                break;
            }
        }
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_names_the_otp_application() {
        assert_eq!(
            select_apdu(),
            [0x00, 0xa4, 0x04, 0x00, 0x07, 0xa0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01]
        );
    }

    #[test]
    fn hmac_apdu_for_slot_2_pads_the_challenge_to_64_bytes_with_zeros() {
        let apdu = hmac_apdu(YubikeySlot::Two, b"lukspassword").unwrap();
        assert_eq!(&apdu[..5], &[0x00, 0x01, 0x38, 0x00, 0x40]);
        assert_eq!(apdu.len(), 5 + 64);
        assert_eq!(&apdu[5..17], b"lukspassword");
        assert!(apdu[17..].iter().all(|&b| b == 0), "{apdu:?}");
    }

    #[test]
    fn slot_1_uses_its_own_command() {
        let apdu = hmac_apdu(YubikeySlot::One, b"x").unwrap();
        assert_eq!(&apdu[..4], &[0x00, 0x01, 0x30, 0x00]);
    }

    #[test]
    fn a_challenge_ending_in_zero_is_padded_with_ones() {
        // Padding with the challenge's own last byte would make the key strip that byte too.
        let apdu = hmac_apdu(YubikeySlot::Two, b"ab\0").unwrap();
        assert_eq!(&apdu[5..8], b"ab\0");
        assert!(apdu[8..].iter().all(|&b| b == 1), "{apdu:?}");
    }

    #[test]
    fn challenges_of_0_or_64_bytes_are_refused() {
        assert_eq!(
            hmac_apdu(YubikeySlot::Two, b"").unwrap_err(),
            ApduError::ChallengeLength(0)
        );
        assert_eq!(
            hmac_apdu(YubikeySlot::Two, &[7u8; 64]).unwrap_err(),
            ApduError::ChallengeLength(64)
        );
        let apdu = hmac_apdu(YubikeySlot::Two, &[7u8; 63]).unwrap();
        assert_eq!(apdu[5 + 63], 0);
    }

    #[test]
    fn a_20_byte_answer_with_9000_is_the_hmac() {
        let mut answer: Vec<u8> = (1..=20).collect();
        answer.extend_from_slice(&[0x90, 0x00]);
        let mac = hmac_from_answer(YubikeySlot::Two, &answer).unwrap();
        assert_eq!(mac.as_slice(), &answer[..20]);
        assert_eq!(
            to_hex(mac.as_slice()).as_str(),
            "0102030405060708090a0b0c0d0e0f1011121314"
        );
    }

    #[test]
    fn error_status_words_are_refusals_naming_the_slot() {
        let err = hmac_from_answer(YubikeySlot::Two, &[0x69, 0x85]).unwrap_err();
        assert_eq!(
            err,
            ApduError::Refused {
                slot: 2,
                sw: 0x6985
            }
        );
        let text = err.to_string();
        assert!(text.contains("6985") && text.contains("chalresp"), "{text}");
    }

    #[test]
    fn answers_of_the_wrong_length_are_refused() {
        // An unprogrammed slot makes some keys answer with their 6-byte status instead.
        let answer = [5, 4, 3, 9, 1, 0, 0x90, 0x00];
        assert_eq!(
            hmac_from_answer(YubikeySlot::Two, &answer).unwrap_err(),
            ApduError::WrongLength(6)
        );
        assert_eq!(
            hmac_from_answer(YubikeySlot::Two, &[0x90]).unwrap_err(),
            ApduError::Truncated
        );
    }

    #[test]
    fn select_must_succeed() {
        assert_eq!(check_select(&[5, 4, 3, 1, 3, 0, 0x90, 0x00]), Ok(()));
        assert_eq!(
            check_select(&[0x6a, 0x82]),
            Err(ApduError::NoOtpApplication(0x6a82))
        );
        assert_eq!(check_select(&[]), Err(ApduError::Truncated));
    }

    #[test]
    fn status_61_asks_for_get_response() {
        assert_eq!(more_data(0x6114), Some(0x14));
        assert_eq!(more_data(0x9000), None);
        assert_eq!(get_response_apdu(0x14), [0x00, 0xc0, 0x00, 0x00, 0x14]);
    }

    #[test]
    fn serial_is_the_otp_config_command_0x10() {
        assert_eq!(serial_apdu(), [0x00, 0x01, 0x10, 0x00]);
    }

    #[test]
    fn serial_answer_is_four_bytes_big_endian() {
        // 0x00bc614e = 12345678, the serial of a token named UBOM12345678_2.
        assert_eq!(
            serial_from_answer(&[0x00, 0xbc, 0x61, 0x4e, 0x90, 0x00]),
            Ok(12_345_678)
        );
        assert_eq!(
            serial_from_answer(&[0xbc, 0x61, 0x4e, 0x90, 0x00]),
            Err(ApduError::SerialLength(3))
        );
        assert_eq!(serial_from_answer(&[0x00]), Err(ApduError::Truncated));
    }

    #[test]
    fn a_hidden_serial_says_what_to_give_instead() {
        let err = serial_from_answer(&[0x6d, 0x00]).unwrap_err();
        assert_eq!(err, ApduError::SerialHidden(0x6d00));
        let text = err.to_string();
        assert!(
            text.contains("--serial") && text.contains("--yubikey-slot"),
            "{text}"
        );
    }

    #[test]
    fn two_yubikeys_are_refused_unless_one_is_named() {
        let names = vec![
            "Yubico YubiKey OTP+FIDO+CCID 00 00".to_owned(),
            "Yubico YubiKey OTP+FIDO+CCID 01 00".to_owned(),
        ];
        let err = choose_reader(&names, None).unwrap_err();
        assert!(
            err.starts_with("2 keys are plugged in") && err.contains("--reader"),
            "{err}"
        );
        assert_eq!(choose_reader(&names, Some("01 00")), Ok(1));
        assert!(choose_reader(&names, Some("CCID")).is_err());
    }

    #[test]
    fn the_first_yubico_reader_is_chosen_unless_one_is_named() {
        let names = vec![
            "Alcor Micro AU9540 00 00".to_owned(),
            "Yubico YubiKey OTP+FIDO+CCID 01 00".to_owned(),
        ];
        assert_eq!(choose_reader(&names, None), Ok(1));
        assert_eq!(choose_reader(&names, Some("Alcor")), Ok(0));
        let err = choose_reader(&names, Some("Nitro")).unwrap_err();
        assert!(
            err.contains("Alcor Micro") && err.contains("--reader"),
            "{err}"
        );
        let err = choose_reader(&[], None).unwrap_err();
        assert!(err.contains("--responder-cmd"), "{err}");
    }

    #[test]
    fn yubikey_slots_are_1_and_2() {
        assert_eq!(YubikeySlot::from_number(1), Some(YubikeySlot::One));
        assert_eq!(YubikeySlot::from_number(2), Some(YubikeySlot::Two));
        assert_eq!(YubikeySlot::from_number(3), None);
    }
}
