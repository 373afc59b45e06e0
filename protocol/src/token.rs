//! What a token is, as every side names it: its type and its HMAC hash. Shared by the
//! administration requests (`admin`) and the machine assignments (`machine`). Append-only, like
//! every wire enum.

use crate::named::named_enum;
use serde::{Deserialize, Serialize};

named_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum TokenType {
        Hotp => "hotp",
        Totp => "totp",
        /// privacyIDEA's simple pass: the PIN (or the user-store password) alone.
        Spass => "spass",
        /// A TOTP whose code stays valid, and reusable, for a whole long period (a day by
        /// default).
        Daypassword => "daypassword",
        /// mOTP: md5 of the time, a secret and the device PIN (`motppin`), 10-second slots.
        Motp => "motp",
        /// A fixed password as the one-time part (privacyIDEA's `pw`), typed after the PIN.
        Pw => "pw",
        /// A printed list of HOTP codes (`count` of them), used in order.
        Paper => "paper",
        /// A one-time code, deleted once used: the recovery code a user prints and keeps.
        Registration => "registration",
        /// A printed list of TANs, each usable once, in any order.
        Tan => "tan",
        /// An application-specific password, valid only through one PAM service.
        Applspec => "applspec",
        /// A Yubikey in Yubico OTP (AES) mode: touch the key at the prompt.
        Yubikey => "yubikey",
        /// A shared secret text; the challenge asks for the characters at random positions.
        Indexedsecret => "indexedsecret",
        /// A questionnaire: the challenge asks one of the user's questions.
        Question => "question",
        /// OCRA (RFC 6287) challenge-response: the device computes the answer to a question.
        Ocra => "ocra",
        /// A code sent by e-mail when the PIN is typed.
        Email => "email",
        /// A code sent by SMS when the PIN is typed.
        Sms => "sms",
        /// A Yubikey verified by a Yubico validation server (YubiCloud or your own).
        Yubico => "yubico",
        /// A daplug dongle: HOTP typed as letter pairs.
        Daplug => "daplug",
        /// The two-man rule: codes of tokens from named realms, entered together.
        FourEyes => "4eyes",
        /// An SSH public key for sshd's `AuthorizedKeysCommand` (`pictl ssh keys`); never a
        /// login factor through PAM.
        Sshkey => "sshkey",
    }
}

named_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum HashAlgorithm {
        Sha1 => "sha1",
        Sha256 => "sha256",
        Sha512 => "sha512",
    }
}
