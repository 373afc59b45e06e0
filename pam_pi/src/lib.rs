//! `pam_pi`: the PAM module that forwards the conversation to the pi daemon.
//!
//! It renders what the daemon asks and maps the verdict fail-closed; it never decides policy.
//! Layout: `options` (module arguments), `hooks` (logic, generic over PAM and the transport),
//! `conv` (the pamsm binding), `error` (the PAM code table). This file is the FFI boundary.

// The panic guard below is the only thing between a bug and an aborted sshd/sudo/login; it
// does nothing when panics abort.
#[cfg(panic = "abort")]
compile_error!("pam_pi must be built with panic = \"unwind\" (see [profile.*] in Cargo.toml)");

pub mod conv;
pub mod error;
pub mod hooks;
pub mod options;

use error::{Event, Hook, PamCode};
use options::Options;
use pamsm::{Pam, PamError, PamFlags, PamServiceModule};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The module type handed to `pam_module!`.
pub struct PamPi;

// Every hook is deliberate (pamsm's defaults all return PAM_SERVICE_ERR) and runs inside the
// panic guard: pamsm's entry points do not catch unwinding, and a panic crossing `extern "C"`
// aborts sshd, sudo or login.
impl PamServiceModule for PamPi {
    fn authenticate(pamh: Pam, flags: PamFlags, args: Vec<String>) -> PamError {
        guard(&pamh, Hook::Authenticate, || {
            conv::authenticate(&pamh, flags, &args)
        })
    }

    fn setcred(pamh: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        guard(&pamh, Hook::Setcred, hooks::setcred)
    }

    fn acct_mgmt(pamh: Pam, flags: PamFlags, _: Vec<String>) -> PamError {
        guard(&pamh, Hook::AcctMgmt, || conv::acct_mgmt(&pamh, flags))
    }

    fn open_session(pamh: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        guard(&pamh, Hook::OpenSession, hooks::open_session)
    }

    fn close_session(pamh: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        guard(&pamh, Hook::CloseSession, hooks::close_session)
    }

    fn chauthtok(pamh: Pam, flags: PamFlags, args: Vec<String>) -> PamError {
        guard(&pamh, Hook::Chauthtok, || {
            conv::chauthtok(&pamh, flags, &args)
        })
    }
}

fn guard(pamh: &Pam, hook: Hook, body: impl FnOnce() -> PamCode) -> PamError {
    conv::pam_error(contain_panic(hook, body, || conv::log_panic(pamh, hook)))
}

/// Run a hook body; a panic becomes the fail-closed code of `error::pam_code` (`PAM_AUTH_ERR`
/// for authenticate, `PAM_SERVICE_ERR` elsewhere — the reasons are in `error.rs`).
///
/// `AssertUnwindSafe`: after a panic nothing the body touched is used again except the PAM
/// handle, and only to write one log line; the verdict never depends on half-updated state.
fn contain_panic(hook: Hook, body: impl FnOnce() -> PamCode, report: impl FnOnce()) -> PamCode {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(code) => code,
        Err(_) => {
            report();
            error::pam_code(&Event::Panic(hook), &Options::default())
        }
    }
}

// The exported `pam_sm_*` symbols: pamsm expands this into six `#[no_mangle] pub unsafe extern
// "C" fn`s that check `argc`, refuse non-UTF-8 arguments and call the hooks above. That unsafe
// code is pamsm's (the `unsafe_code` lint does not apply to an external macro's expansion); this
// crate itself contains none.
pamsm::pam_module!(PamPi);

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn panic_in_authenticate_fails_closed_with_auth_err() {
        let reported = Cell::new(false);
        let code = contain_panic(
            Hook::Authenticate,
            || -> PamCode { panic!("simulated bug") },
            || reported.set(true),
        );
        assert_eq!(code, PamCode::AuthErr);
        assert!(reported.get(), "a caught panic is logged");
    }

    #[test]
    fn panic_in_other_hooks_is_service_err() {
        for hook in [
            Hook::Setcred,
            Hook::AcctMgmt,
            Hook::OpenSession,
            Hook::CloseSession,
            Hook::Chauthtok,
        ] {
            let code = contain_panic(hook, || -> PamCode { panic!("simulated bug") }, || {});
            assert_eq!(code, PamCode::ServiceErr, "{hook:?}");
        }
    }

    #[test]
    fn hook_result_passes_through_the_guard_unchanged() {
        let reported = Cell::new(false);
        let code = contain_panic(
            Hook::Authenticate,
            || PamCode::Success,
            || reported.set(true),
        );
        assert_eq!(code, PamCode::Success);
        assert!(!reported.get());
    }
}
