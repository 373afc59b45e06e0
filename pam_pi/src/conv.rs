//! The only file that talks to libpam (through pamsm; `lib.rs` only names pamsm's types for the
//! entry points). Everything here is a thin translation; decisions live in `hooks.rs`.
//!
//! pamsm facts this file works around:
//! - `conv()` sends one message per call, so every prompt and info line is its own round trip;
//! - `get_authtok()` stores whatever it prompts for as `PAM_AUTHTOK`, where every later module
//!   would see our OTP as the password: it is never called here. Prompts go through `conv()`,
//!   and `PAM_AUTHTOK` is only *read* (`get_cached_authtok`) for `use_first_pass`/`try_first_pass`;
//! - pamsm never frees or zeroes the application's reply buffer (`pam_response` and its string),
//!   so the typed OTP stays in the host's heap until reused. We cannot reach that buffer without
//!   `unsafe`; what we control is our own copies: the reply is copied exactly once, straight into
//!   a `protocol::Secret` (zeroised on drop), with no intermediate `String`.
//! - there is no getter for `PAM_TTY`; reading it would need our own `unsafe` `pam_get_item`, so
//!   the tty is reported as absent;
//! - its safe data API (`send_bytes`) stores a plain `Vec<u8>` in the handle, which libpam's
//!   cleanup frees without zeroing, and hands the cleanup callback only a shared reference.
//!   So the PIN change ticket never goes into the handle: the handle holds a number that names
//!   it in this process's `TICKETS` (a `Secret`, zeroised on drop), and the cleanup callback
//!   libpam runs at `pam_end` (or when the data is replaced) removes it from there.

use crate::error::{Hook, PamCode};
use crate::hooks::{self, ConvFailed, Conversation, LogLevel, MessageStyle, PamUser, PromptStyle};
use crate::options::Options;
use pamsm::{LogLvl, Pam, PamError, PamFlags, PamLibExt, PamMsgStyle, PamResult};
use protocol::Secret;
use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Linux-PAM's chauthtok passes (`<security/pam_modules.h>`), which libpam sets for modules
/// only and pamsm does not name. pamsm hands the flags over unchecked, so the bits are there.
const PAM_PRELIM_CHECK: std::os::raw::c_int = 0x4000;
const PAM_UPDATE_AUTHTOK: std::os::raw::c_int = 0x2000;

/// The name of the module's data in the PAM handle (`pam_set_data`).
const TICKET_DATA: &str = "pam_pi_pin_change_ticket";

/// PIN change tickets of this process's PAM handles, by the number the handle holds. An entry
/// lives from the accepted authenticate to libpam's cleanup of the handle's data.
static TICKETS: Mutex<Option<HashMap<u64, Secret>>> = Mutex::new(None);

fn tickets() -> MutexGuard<'static, Option<HashMap<u64, Secret>>> {
    // Each change under the lock is one insert or remove: a panic cannot leave it torn.
    TICKETS.lock().unwrap_or_else(|p| p.into_inner())
}

/// libpam's cleanup of the handle's data: the ticket it names is removed (and zeroised).
/// The signature is pamsm's `PamCleanupCb`.
#[allow(clippy::ptr_arg)]
fn forget_ticket(data: &Vec<u8>, _: Pam, _: PamFlags, _: PamError) {
    forget(data);
}

fn forget(data: &[u8]) {
    if let Ok(bytes) = <[u8; 8]>::try_from(data) {
        if let Some(map) = tickets().as_mut() {
            map.remove(&u64::from_ne_bytes(bytes));
        }
    }
}

fn conversation_with_options<'a>(pamh: &'a Pam, args: &[String]) -> (PamConversation<'a>, Options) {
    let conv = PamConversation { pamh };
    let (options, warnings) = Options::parse(args);
    for warning in &warnings {
        conv.log(LogLevel::Warning, warning);
    }
    (conv, options)
}

/// `pam_sm_acct_mgmt` over a real PAM handle.
pub fn acct_mgmt(pamh: &Pam, flags: PamFlags) -> PamCode {
    let mut conv = PamConversation { pamh };
    hooks::acct_mgmt(&mut conv, flags.contains(PamFlags::SILENT))
}

/// `pam_sm_chauthtok` over a real PAM handle.
pub fn chauthtok(pamh: &Pam, flags: PamFlags, args: &[String]) -> PamCode {
    let phase = if flags.bits() & PAM_PRELIM_CHECK != 0 {
        hooks::Phase::Prelim
    } else if flags.bits() & PAM_UPDATE_AUTHTOK != 0 {
        hooks::Phase::Update
    } else {
        hooks::Phase::Neither
    };
    let silent = flags.contains(PamFlags::SILENT);
    let (mut conv, options) = conversation_with_options(pamh, args);
    hooks::chauthtok(&mut conv, &options, phase, silent, hooks::connect)
}

/// `pam_sm_authenticate` over a real PAM handle.
pub fn authenticate(pamh: &Pam, flags: PamFlags, args: &[String]) -> PamCode {
    let (mut conv, options) = conversation_with_options(pamh, args);
    let silent = flags.contains(PamFlags::SILENT);
    hooks::authenticate(&mut conv, &options, silent, hooks::connect)
}

/// Record a caught panic. The payload is not logged: it is not ours to vouch for.
pub fn log_panic(pamh: &Pam, hook: Hook) {
    PamConversation { pamh }.log(
        LogLevel::Error,
        &format!(
            "internal error in {hook:?}: a panic was caught and the call failed closed; \
             please report this bug with the messages logged before it"
        ),
    );
}

/// Our code as pamsm's (same numeric values as Linux-PAM).
pub fn pam_error(code: PamCode) -> PamError {
    match code {
        PamCode::Success => PamError::SUCCESS,
        PamCode::ServiceErr => PamError::SERVICE_ERR,
        PamCode::AuthErr => PamError::AUTH_ERR,
        PamCode::AuthinfoUnavail => PamError::AUTHINFO_UNAVAIL,
        PamCode::UserUnknown => PamError::USER_UNKNOWN,
        PamCode::ConvErr => PamError::CONV_ERR,
        PamCode::Ignore => PamError::IGNORE,
        PamCode::NewAuthtokReqd => PamError::NEW_AUTHTOK_REQD,
        PamCode::AuthtokErr => PamError::AUTHTOK_ERR,
    }
}

/// `hooks::Conversation` over a pamsm handle.
pub struct PamConversation<'a> {
    pamh: &'a Pam,
}

impl Conversation for PamConversation<'_> {
    fn user(&mut self) -> Result<PamUser, ConvFailed> {
        match self.pamh.get_user(None) {
            // A C string cannot hold NUL, so UTF-8 is the only check left.
            Ok(Some(name)) => Ok(match name.to_str() {
                Ok(name) => PamUser::Name(name.to_owned()),
                Err(_) => PamUser::Unusable,
            }),
            Ok(None) => Err(ConvFailed("PAM returned no user name".into())),
            Err(e) => Err(ConvFailed(format!("pam_get_user failed ({e})"))),
        }
    }

    fn service(&self) -> Option<String> {
        item_text(self.pamh.get_service())
    }

    fn rhost(&self) -> Option<String> {
        item_text(self.pamh.get_rhost())
    }

    fn tty(&self) -> Option<String> {
        None
    }

    fn ruser(&self) -> Option<String> {
        item_text(self.pamh.get_ruser())
    }

    fn cached_authtok(&self) -> Option<Secret> {
        // A password that is not UTF-8 cannot be a PIN+OTP: treated as absent.
        match self.pamh.get_cached_authtok() {
            Ok(Some(authtok)) => authtok.to_str().ok().map(Secret::new),
            _ => None,
        }
    }

    fn prompt(&mut self, style: PromptStyle, text: &str) -> Result<Secret, ConvFailed> {
        let style = match style {
            PromptStyle::EchoOff => PamMsgStyle::PROMPT_ECHO_OFF,
            PromptStyle::EchoOn => PamMsgStyle::PROMPT_ECHO_ON,
        };
        match self.pamh.conv(Some(&without_nul(text)), style) {
            Ok(Some(reply)) => reply
                .to_str()
                .map(Secret::new)
                .map_err(|_| ConvFailed("the reply is not valid UTF-8".into())),
            Ok(None) => Err(ConvFailed(
                "the application gave no reply (does it have a conversation function?)".into(),
            )),
            Err(e) => Err(ConvFailed(format!(
                "the application's conversation failed ({e})"
            ))),
        }
    }

    fn message(&mut self, style: MessageStyle, text: &str) -> Result<(), ConvFailed> {
        let style = match style {
            MessageStyle::Info => PamMsgStyle::TEXT_INFO,
            MessageStyle::Error => PamMsgStyle::ERROR_MSG,
        };
        self.pamh
            .conv(Some(&without_nul(text)), style)
            .map(|_| ())
            .map_err(|e| ConvFailed(format!("the application could not show a message ({e})")))
    }

    fn keep_ticket(&mut self, ticket: Secret) -> Result<(), ConvFailed> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        tickets()
            .get_or_insert_with(HashMap::new)
            .insert(id, ticket);
        // Replacing earlier data runs its cleanup, which forgets the ticket it named.
        self.pamh
            .send_bytes(TICKET_DATA, id.to_ne_bytes().to_vec(), Some(forget_ticket))
            .map_err(|e| {
                if let Some(map) = tickets().as_mut() {
                    map.remove(&id);
                }
                ConvFailed(format!("pam_set_data failed ({e})"))
            })
    }

    fn ticket(&self) -> Option<Secret> {
        let data = self.pamh.retrieve_bytes(TICKET_DATA).ok()?;
        let id = u64::from_ne_bytes(<[u8; 8]>::try_from(data.as_slice()).ok()?);
        tickets().as_ref()?.get(&id).cloned()
    }

    fn drop_ticket(&mut self) {
        if let Ok(data) = self.pamh.retrieve_bytes(TICKET_DATA) {
            forget(&data);
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Error => LogLvl::ERR,
            LogLevel::Warning => LogLvl::WARNING,
            LogLevel::Notice => LogLvl::NOTICE,
            LogLevel::Info => LogLvl::INFO,
            LogLevel::Debug => LogLvl::DEBUG,
        };
        // Nothing sensible can be done if syslog itself fails.
        let _ = self.pamh.syslog(level, &without_nul(message));
    }
}

/// A PAM item as text. Items are informational; lossy conversion keeps a present item present.
fn item_text(item: PamResult<Option<&CStr>>) -> Option<String> {
    match item {
        Ok(Some(text)) => Some(text.to_string_lossy().into_owned()),
        _ => None,
    }
}

/// Text from the daemon may contain NUL, which C strings cannot carry (pamsm would fail the
/// whole call). Drop it instead.
fn without_nul(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', ""))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pam_codes_keep_linux_pam_numbers() {
        let table = [
            (PamCode::Success, 0),
            (PamCode::ServiceErr, 3),
            (PamCode::AuthErr, 7),
            (PamCode::AuthinfoUnavail, 9),
            (PamCode::UserUnknown, 10),
            (PamCode::ConvErr, 19),
            (PamCode::Ignore, 25),
            (PamCode::NewAuthtokReqd, 12),
            (PamCode::AuthtokErr, 20),
        ];
        for (code, number) in table {
            assert_eq!(pam_error(code) as i32, number, "{code:?}");
        }
    }

    #[test]
    fn nul_in_daemon_text_is_dropped_not_fatal() {
        assert_eq!(without_nul("OTP\0: "), "OTP: ");
        assert!(matches!(without_nul("OTP: "), Cow::Borrowed("OTP: ")));
    }

    #[test]
    fn non_utf8_item_stays_present() {
        let raw = c"host\xff";
        assert_eq!(item_text(Ok(Some(raw))).as_deref(), Some("host\u{fffd}"));
        assert_eq!(item_text(Ok(None)), None);
        assert_eq!(item_text(Err(PamError::BAD_ITEM)), None);
    }
}
