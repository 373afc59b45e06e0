//! The one exhaustive match over requests. Authorisation happens here, before any handler runs:
//! a new request variant does not compile until someone decides who may send it.

use crate::auth::session::ConnState;
use crate::caller::Caller;
use crate::handlers::{self, error_response};
use crate::State;
use protocol::{Request, Response};

/// Who may send a request.
enum Permission {
    Anyone,
    /// Any caller, but a non-administrator only for its own account; the handler enforces it
    /// once the user is resolved (the uid of a login name is not known before that).
    OwnAccountUnlessAdmin,
    /// The caller must be continuing a session it opened on this connection.
    SessionOwner,
    /// Administrators, and users for their own tokens as `user` policies allow: decided by
    /// `authority::authorize` here, then per target by `Authority::check`.
    AdminOrOwnTokens,
    /// Root and the `ssh.keys_users` accounts (sshd's AuthorizedKeysCommandUser).
    SshKeyReader,
    /// Any caller holding a PIN change ticket: the handler accepts a ticket only from the uid
    /// whose login it was issued to.
    TicketHolder,
}

fn permission(req: &Request) -> Permission {
    match req {
        Request::Status => Permission::Anyone,
        Request::AuthBegin(_) => Permission::OwnAccountUnlessAdmin,
        Request::AuthContinue { .. } => Permission::SessionOwner,
        Request::Admin(_) => Permission::AdminOrOwnTokens,
        Request::SshKeys { .. } => Permission::SshKeyReader,
        Request::PinChange { .. } => Permission::TicketHolder,
    }
}

pub async fn dispatch(
    state: &State,
    caller: &Caller,
    conn: &mut ConnState,
    req: Request,
) -> Response {
    // A login proves something for the very next request on the connection only.
    let proof = conn.proof.take();
    let authority = match permission(&req) {
        Permission::AdminOrOwnTokens => match crate::authority::authorize(state, caller).await {
            Ok(a) => Some(a),
            Err(e) => {
                let mut entry = crate::audit::entry(caller, "admin", state.clock.now());
                entry.message = format!("refused: {}", crate::error::chain(&e));
                crate::audit::record(state, entry);
                return error_response(&e);
            }
        },
        Permission::SshKeyReader => {
            if caller.uid != 0 && !state.live().ssh_key_readers.contains(&caller.uid) {
                let mut entry = crate::audit::entry(caller, "ssh keys", state.clock.now());
                entry.message = "refused: not root nor in ssh.keys_users".into();
                crate::audit::record(state, entry);
                return error_response(&crate::error::PidError::PermissionDenied(format!(
                    "uid {} may not ask for SSH keys: only root and the accounts in pid.toml \
                     [ssh] keys_users (sshd's AuthorizedKeysCommandUser) may",
                    caller.uid
                )));
            }
            None
        }
        Permission::Anyone
        | Permission::OwnAccountUnlessAdmin
        | Permission::SessionOwner
        | Permission::TicketHolder => None,
    };
    match req {
        Request::Status => handlers::status::status(state, caller),
        Request::AuthBegin(begin) => handlers::auth::begin(state, caller, conn, begin).await,
        Request::AuthContinue { session, answer } => {
            handlers::auth::proceed(state, caller, conn, session, answer).await
        }
        Request::SshKeys { user, service_id } => {
            handlers::ssh_keys::ssh_keys(state, caller, user, service_id).await
        }
        Request::PinChange { ticket, pin } => {
            handlers::auth::change_pin(state, caller, ticket, pin).await
        }
        Request::Admin(admin) => match authority {
            Some(authority) => {
                handlers::admin::handle(state, caller, &authority, admin, proof).await
            }
            None => error_response(&crate::error::PidError::Internal(
                "an admin request reached dispatch without an authority".into(),
            )),
        },
    }
}
