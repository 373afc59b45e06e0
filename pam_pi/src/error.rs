//! The fail-closed mapping from everything that can end a PAM call to a PAM return code.
//! It is one function so the whole policy can be read, and tested, in one place.
//!
//! The invariant: only `Outcome::Accept` (and `Outcome::AcceptPinChangeDue`, an accept that
//! also asks for a new PIN) gives `PAM_SUCCESS` in authenticate. `PAM_IGNORE` comes only from the
//! two options an administrator sets on purpose (`ignore_unknown_user`, `nullok`), and only for
//! the daemon's verdict, never for something a user can cause locally. `PAM_AUTHINFO_UNAVAIL`
//! is reserved for "the daemon is not there or not speaking our protocol", because stacks may
//! map it to `ignore` as a fallback; nothing a user can do produces it. In particular a
//! connection lost *after* the user was shown a prompt is `PAM_AUTH_ERR`: the user holds the
//! conversation open and could otherwise wait out the daemon's idle timeout to turn a login
//! into "daemon unavailable".

use crate::options::Options;
use protocol::{ClientError, ErrorCode, Outcome};

/// The PAM return codes this module gives. Numeric values are Linux-PAM's
/// (`<security/_pam_types.h>`); `conv.rs` converts them for pamsm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PamCode {
    Success,
    ServiceErr,
    AuthErr,
    AuthinfoUnavail,
    UserUnknown,
    ConvErr,
    Ignore,
    /// `PAM_NEW_AUTHTOK_REQD`: acct_mgmt after a login whose PIN change is due.
    NewAuthtokReqd,
    /// `PAM_AUTHTOK_ERR`: chauthtok could not set the new PIN.
    AuthtokErr,
}

/// The six PAM entry points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Authenticate,
    Setcred,
    AcctMgmt,
    OpenSession,
    CloseSession,
    Chauthtok,
}

/// Everything that can end `pam_sm_authenticate` (and a caught panic in any hook).
#[derive(Debug)]
pub enum Event<'a> {
    /// The daemon's verdict.
    Done(&'a Outcome),
    /// The daemon answered with an error.
    DaemonError(ErrorCode),
    /// Connecting, or the exchange that starts a session, failed: no daemon, timeout, garbage
    /// on the wire. The user has not been shown anything yet.
    Transport(&'a ClientError),
    /// The connection failed after the user was shown a prompt or message.
    LostMidSession(&'a ClientError),
    /// The daemon answered with a message that has no place in an authentication.
    UnexpectedResponse,
    /// The daemon kept asking beyond `hooks::MAX_STEPS` prompts in one session.
    EndlessSession,
    /// The application's conversation failed (user pressed Ctrl-D, no conversation function,
    /// unreadable reply) or PAM could not tell us the user name.
    ConversationFailed,
    /// `PAM_USER` is not UTF-8: the daemon cannot know such a user, so it is never sent.
    UnusableUserName,
    /// Something the user supplied (name, answer) exceeds the protocol's limits. It is refused
    /// here instead of being sent, so it cannot turn into a transport error.
    InputTooLong,
    /// `use_first_pass` was given but no earlier module set a password.
    NoFirstPass,
    /// The module runs inside the daemon itself: the PAM service pid uses to check user store
    /// passwords loads pam_pi. Talking to the daemon would recurse.
    InsideDaemon,
    /// A hook panicked; the panic was caught at the FFI boundary.
    Panic(Hook),
}

/// The mapping table. Every row is a unit test below.
pub fn pam_code(event: &Event<'_>, options: &Options) -> PamCode {
    match event {
        Event::Done(Outcome::Accept { .. } | Outcome::AcceptPinChangeDue { .. }) => {
            PamCode::Success
        }
        Event::Done(Outcome::Reject { .. }) => PamCode::AuthErr,
        Event::Done(Outcome::UnknownUser) | Event::UnusableUserName => {
            if options.ignore_unknown_user {
                PamCode::Ignore
            } else {
                PamCode::UserUnknown
            }
        }
        Event::Done(Outcome::NoToken) => {
            if options.nullok {
                PamCode::Ignore
            } else {
                PamCode::AuthErr
            }
        }
        Event::Done(Outcome::Unavailable | Outcome::ServerUnreachable { .. }) => {
            PamCode::AuthinfoUnavail
        }
        // An impostor on the socket means the daemon is not there: whoever can plant one can
        // as well remove the socket, so this gives nothing a missing daemon would not.
        Event::Transport(
            ClientError::Unreachable { .. }
            | ClientError::Timeout
            | ClientError::Protocol(_)
            | ClientError::UntrustedDaemon { .. },
        ) => PamCode::AuthinfoUnavail,
        Event::UnexpectedResponse => PamCode::AuthinfoUnavail,
        Event::LostMidSession(_) => PamCode::AuthErr,
        // The daemon is there and refused: PermissionDenied (a non-root caller asking for
        // another account), RateLimited, VersionMismatch and the rest are all "no".
        Event::DaemonError(_) => PamCode::AuthErr,
        Event::EndlessSession | Event::InputTooLong | Event::NoFirstPass => PamCode::AuthErr,
        // The daemon asked PAM whether a password is right and PAM asked us: "no" is the only
        // answer that cannot loop and cannot pass a password unchecked.
        Event::InsideDaemon => PamCode::AuthErr,
        // Conversation failures report PAM_CONV_ERR as Linux-PAM's own modules do. It is a
        // failure under every control value (no stack maps conv_err to success), and it tells
        // the application the truth: sudo and login stop asking when the user pressed Ctrl-D
        // instead of counting it as a wrong code and prompting again.
        Event::ConversationFailed => PamCode::ConvErr,
        // A panic in authenticate means we do not know whether the second factor was checked:
        // the only safe verdict is "authentication failed". PAM_SERVICE_ERR is not used here
        // because stacks and applications treat it as "module broken" and some fall back or
        // retry; PAM_AUTH_ERR is what every stack treats as a failed login. The other hooks
        // give no verdict, so "module broken" is the honest answer there.
        Event::Panic(Hook::Authenticate) => PamCode::AuthErr,
        Event::Panic(_) => PamCode::ServiceErr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::FrameError;

    fn plain() -> Options {
        Options::default()
    }

    fn lenient() -> Options {
        Options {
            ignore_unknown_user: true,
            nullok: true,
            ..Options::default()
        }
    }

    fn both(event: Event<'_>) -> (PamCode, PamCode) {
        (pam_code(&event, &plain()), pam_code(&event, &lenient()))
    }

    #[test]
    fn accept_is_the_only_success() {
        let accept = Outcome::Accept {
            message: String::new(),
        };
        assert_eq!(
            both(Event::Done(&accept)),
            (PamCode::Success, PamCode::Success)
        );
    }

    #[test]
    fn accept_with_a_pin_change_due_is_success() {
        let accept = Outcome::AcceptPinChangeDue {
            message: String::new(),
            ticket: protocol::Secret::new("t"),
        };
        assert_eq!(
            both(Event::Done(&accept)),
            (PamCode::Success, PamCode::Success)
        );
    }

    #[test]
    fn reject_is_auth_err_whatever_the_options() {
        let reject = Outcome::Reject {
            message: "wrong OTP".into(),
        };
        assert_eq!(
            both(Event::Done(&reject)),
            (PamCode::AuthErr, PamCode::AuthErr)
        );
    }

    #[test]
    fn unknown_user_is_user_unknown_or_ignore_with_ignore_unknown_user() {
        assert_eq!(
            both(Event::Done(&Outcome::UnknownUser)),
            (PamCode::UserUnknown, PamCode::Ignore)
        );
        let only_nullok = Options {
            nullok: true,
            ..Options::default()
        };
        assert_eq!(
            pam_code(&Event::Done(&Outcome::UnknownUser), &only_nullok),
            PamCode::UserUnknown
        );
    }

    #[test]
    fn unusable_user_name_is_treated_as_unknown_user() {
        assert_eq!(
            both(Event::UnusableUserName),
            (PamCode::UserUnknown, PamCode::Ignore)
        );
    }

    #[test]
    fn no_token_is_auth_err_or_ignore_with_nullok() {
        assert_eq!(
            both(Event::Done(&Outcome::NoToken)),
            (PamCode::AuthErr, PamCode::Ignore)
        );
        let only_ignore_unknown = Options {
            ignore_unknown_user: true,
            ..Options::default()
        };
        assert_eq!(
            pam_code(&Event::Done(&Outcome::NoToken), &only_ignore_unknown),
            PamCode::AuthErr
        );
    }

    #[test]
    fn daemon_unavailable_verdict_is_authinfo_unavail() {
        assert_eq!(
            both(Event::Done(&Outcome::Unavailable)),
            (PamCode::AuthinfoUnavail, PamCode::AuthinfoUnavail)
        );
    }

    #[test]
    fn an_unreachable_server_upstream_is_authinfo_unavail() {
        let outcome = Outcome::ServerUnreachable {
            message: "The authentication server cannot be reached.".into(),
        };
        assert_eq!(
            both(Event::Done(&outcome)),
            (PamCode::AuthinfoUnavail, PamCode::AuthinfoUnavail)
        );
    }

    #[test]
    fn unreachable_daemon_is_authinfo_unavail() {
        let e = ClientError::Unreachable {
            path: "/run/pi/pid.sock".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(
            both(Event::Transport(&e)),
            (PamCode::AuthinfoUnavail, PamCode::AuthinfoUnavail)
        );
    }

    #[test]
    fn a_peer_that_is_not_the_daemons_user_is_authinfo_unavail() {
        let e = ClientError::UntrustedDaemon {
            path: "/run/pi/pid.sock".into(),
            found: Some(65534),
            expected: 0,
        };
        assert_eq!(
            both(Event::Transport(&e)),
            (PamCode::AuthinfoUnavail, PamCode::AuthinfoUnavail)
        );
    }

    #[test]
    fn timeout_is_authinfo_unavail() {
        let e = ClientError::Timeout;
        assert_eq!(
            both(Event::Transport(&e)),
            (PamCode::AuthinfoUnavail, PamCode::AuthinfoUnavail)
        );
    }

    #[test]
    fn garbage_from_the_daemon_is_authinfo_unavail() {
        for e in [
            ClientError::Protocol(FrameError::Decode("bad".into())),
            ClientError::Protocol(FrameError::Closed),
            ClientError::Protocol(FrameError::Version(99)),
            ClientError::Protocol(FrameError::TooLarge(1 << 20)),
        ] {
            assert_eq!(
                both(Event::Transport(&e)),
                (PamCode::AuthinfoUnavail, PamCode::AuthinfoUnavail),
                "{e:?}"
            );
        }
        assert_eq!(
            both(Event::UnexpectedResponse),
            (PamCode::AuthinfoUnavail, PamCode::AuthinfoUnavail)
        );
    }

    #[test]
    fn connection_lost_after_the_user_was_prompted_is_auth_err() {
        for e in [
            ClientError::Timeout,
            ClientError::Protocol(FrameError::Closed),
            ClientError::Protocol(FrameError::Io(std::io::ErrorKind::BrokenPipe.into())),
        ] {
            assert_eq!(
                both(Event::LostMidSession(&e)),
                (PamCode::AuthErr, PamCode::AuthErr),
                "{e:?}"
            );
        }
    }

    #[test]
    fn permission_denied_is_auth_err() {
        assert_eq!(
            both(Event::DaemonError(ErrorCode::PermissionDenied)),
            (PamCode::AuthErr, PamCode::AuthErr)
        );
    }

    #[test]
    fn every_other_daemon_error_is_auth_err() {
        for code in ErrorCode::ALL
            .into_iter()
            .filter(|c| *c != ErrorCode::PermissionDenied)
        {
            assert_eq!(
                both(Event::DaemonError(code)),
                (PamCode::AuthErr, PamCode::AuthErr),
                "{code}"
            );
        }
    }

    #[test]
    fn endless_session_is_auth_err() {
        assert_eq!(
            both(Event::EndlessSession),
            (PamCode::AuthErr, PamCode::AuthErr)
        );
    }

    #[test]
    fn overlong_input_is_auth_err_not_authinfo_unavail() {
        assert_eq!(
            both(Event::InputTooLong),
            (PamCode::AuthErr, PamCode::AuthErr)
        );
    }

    #[test]
    fn use_first_pass_without_password_is_auth_err() {
        assert_eq!(
            both(Event::NoFirstPass),
            (PamCode::AuthErr, PamCode::AuthErr)
        );
    }

    #[test]
    fn running_inside_the_daemon_is_auth_err() {
        assert_eq!(
            both(Event::InsideDaemon),
            (PamCode::AuthErr, PamCode::AuthErr)
        );
    }

    #[test]
    fn conversation_failure_is_conv_err() {
        assert_eq!(
            both(Event::ConversationFailed),
            (PamCode::ConvErr, PamCode::ConvErr)
        );
    }

    #[test]
    fn panic_in_authenticate_is_auth_err_and_service_err_elsewhere() {
        assert_eq!(
            both(Event::Panic(Hook::Authenticate)),
            (PamCode::AuthErr, PamCode::AuthErr)
        );
        for hook in [
            Hook::Setcred,
            Hook::AcctMgmt,
            Hook::OpenSession,
            Hook::CloseSession,
            Hook::Chauthtok,
        ] {
            assert_eq!(
                both(Event::Panic(hook)),
                (PamCode::ServiceErr, PamCode::ServiceErr),
                "{hook:?}"
            );
        }
    }
}
