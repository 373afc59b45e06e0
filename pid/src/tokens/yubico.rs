//! yubico (privacyIDEA): a Yubikey in its factory Yubico OTP configuration, verified by a Yubico
//! validation server (YubiCloud or one of your own, `[yubico]` in pid.toml). The token stores
//! only the key's public id (the OTP's first 12 characters); the OTP must start with it, and the
//! server decides the rest (decryption, counters, replay) — see `yubico_client`.

use super::{CounterState, EnrollBase, EnrollError, Material, OtpAlgorithm};
use crate::store::TokenRecord;
use protocol::EnrollRequest;
use zeroize::Zeroizing;

pub struct Yubico;

const ID_LEN: usize = 12;
const OTP_LEN: u8 = 44;
const MODHEX: &str = "cbdefghijklnrtuv";

impl OtpAlgorithm for Yubico {
    fn serial_prefix(&self) -> &'static str {
        "YUBC"
    }

    fn standard_digits(&self) -> bool {
        false
    }

    fn enroll(&self, spec: &EnrollRequest, _base: EnrollBase) -> Result<Material, EnrollError> {
        let id = spec
            .tokenid
            .as_deref()
            .ok_or("a yubico token needs --tokenid, the key's public id (its first 12 characters)")?
            .to_ascii_lowercase();
        if id.len() != ID_LEN || !id.chars().all(|c| MODHEX.contains(c)) {
            return Err(EnrollError::refused(format!(
                "--tokenid must be the {ID_LEN} modhex characters (c b d e f g h i j k l n r t u \
                 v) a touch of the key starts with"
            )));
        }
        if spec.otpkey.is_some() || spec.digits.is_some() || spec.hash.is_some() {
            return Err(
                "a yubico token is verified by the validation server: leave out \
                        --otpkey, --digits and --hash"
                    .into(),
            );
        }
        Ok(Material {
            secret: Zeroizing::new(id.into_bytes()),
            digits: OTP_LEN,
            count_window: None,
            codes: Vec::new(),
        })
    }

    fn verified_remotely(&self) -> bool {
        true
    }

    /// Local plausibility only: the OTP has the key's public id and modhex form. The
    /// validation server's answer decides.
    fn check(&self, rec: &TokenRecord, key: &[u8], otp: &str, _now: i64) -> Option<CounterState> {
        let otp = otp.to_ascii_lowercase();
        (otp.len() == OTP_LEN as usize
            && otp.as_bytes().starts_with(key)
            && otp.chars().all(|c| MODHEX.contains(c)))
        .then_some(CounterState::at(rec.count + 1))
    }
}
