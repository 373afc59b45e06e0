//! Token administration, by administrators and (self-service) by users for their own tokens.
//! Dispatch decides the caller's `Authority` first; `handle` audits the request and hands it,
//! with a `Gate` (that authority and the configuration of this request), to the file of its
//! area: `token`, `enroll`, `import`, `pool` (token pools), `machine`, `policy`, `audit`,
//! `upstream` (offline values and upstream servers). Every request checks the gate
//! against its target before anything is read out or written; every bad parameter is refused
//! before anything is written. The areas use `gate` and, one way, each other (`import` uses
//! `pool` and `enroll`, `pool` uses `enroll`, which uses `token`); none uses this file.

mod audit;
mod enroll;
mod gate;
mod import;
mod machine;
mod policy;
mod pool;
mod token;
mod upstream;

use crate::authority::Authority;
use crate::caller::Caller;
use crate::error::PidError;
use crate::handlers::error_response;
use crate::State;
use gate::Gate;
use protocol::{AdminRequest, AdminResponse, Response};
pub(crate) use token::validate_pin;

pub async fn handle(
    state: &State,
    caller: &Caller,
    authority: &Authority,
    req: AdminRequest,
    proof: Option<crate::auth::session::Proof>,
) -> Response {
    let action = req.name();
    let now = state.clock.now();
    let mut entry = crate::audit::entry(caller, action, now);
    let live = state.live();
    let gate = Gate {
        authority,
        live: &live,
        now,
        caller_account: caller.account,
        proof: std::sync::Mutex::new(proof),
    };
    let result = run(state, &gate, req, &mut entry).await;
    entry.success = result.is_ok();
    if let Err(e) = &result {
        entry.message = e.public_message();
    }
    // Reading the audit trail or a status is not itself audited, but a refusal to read it is.
    let read_only = matches!(action, "audit show" | "offline status" | "upstream status");
    if !read_only || result.is_err() {
        crate::audit::record(state, entry);
        if let Err(e) = state.store.durable().await {
            return error_response(&e);
        }
    }
    match result {
        Ok(r) => Response::Admin(r),
        Err(e) => error_response(&e),
    }
}

/// The one match over administration requests: each goes to its area's handler.
async fn run(
    state: &State,
    gate: &Gate<'_>,
    req: AdminRequest,
    entry: &mut crate::audit::Draft,
) -> Result<AdminResponse, PidError> {
    match req {
        AdminRequest::TokenEnroll(spec) => enroll::enroll(state, gate, *spec, entry).await,
        AdminRequest::TokenList { user, after, limit } => {
            token::list(state, gate, user, after, limit, entry).await
        }
        AdminRequest::TokenShow { serial } => token::show(state, gate, &serial, entry),
        AdminRequest::TokenDelete { serial } => token::delete(state, gate, &serial, entry),
        AdminRequest::TokenEnable { serial } => {
            token::set_active(state, gate, &serial, true, entry)
        }
        AdminRequest::TokenDisable { serial } => {
            token::set_active(state, gate, &serial, false, entry)
        }
        AdminRequest::TokenRevoke { serial } => token::revoke(state, gate, &serial, entry),
        AdminRequest::TokenReset { serial } => token::reset(state, gate, &serial, entry),
        AdminRequest::TokenSet { serial, settings } => {
            token::set(state, gate, &serial, *settings, entry).await
        }
        AdminRequest::TokenResync { serial, otp1, otp2 } => {
            token::resync(state, gate, &serial, &otp1, &otp2, entry)
        }
        AdminRequest::TokenAssign { serial, user } => {
            token::assign(state, gate, &serial, &user, entry).await
        }
        AdminRequest::TokenUnassign { serial } => token::unassign(state, gate, &serial, entry),
        AdminRequest::PolicyCheck {
            user,
            service,
            rhost,
        } => policy::check(state, gate, user, service, rhost, entry).await,
        AdminRequest::MachineAttach(spec) => machine::attach(state, gate, *spec, entry),
        AdminRequest::MachineDetach { serial, app, host } => {
            machine::detach(state, gate, &serial, app, host, entry)
        }
        AdminRequest::MachineList { serial, app, host } => {
            machine::list(state, gate, serial, app, host)
        }
        AdminRequest::LuksResponses { password, host } => {
            machine::luks_responses(state, gate, &password, host, entry).await
        }
        AdminRequest::TokenImport(batch) => import::import(state, gate, *batch, None, entry).await,
        AdminRequest::AuditShow {
            user,
            before,
            limit,
        } => audit::show(state, gate, user, before, limit),
        AdminRequest::OfflineStatus { user } => {
            upstream::offline_status(state, gate, user, entry).await
        }
        AdminRequest::UpstreamStatus => upstream::status(gate),
        AdminRequest::TokenOtps { serial, count } => {
            token::otps(state, gate, &serial, count, entry)
        }
        AdminRequest::TokenVerify { serial, otp1, otp2 } => {
            enroll::verify(state, gate, &serial, &otp1, &otp2, entry).await
        }
        AdminRequest::TokenPool { serial, realm } => pool::set(state, gate, &serial, realm, entry),
        AdminRequest::TokenListPool {
            realm,
            after,
            limit,
        } => pool::list(state, gate, &realm, after, limit, entry),
        AdminRequest::TokenEnrollPool { realm, spec } => {
            pool::enroll(state, gate, realm, *spec, entry).await
        }
        AdminRequest::TokenImportPool { realm, batch } => {
            import::import(state, gate, *batch, Some(realm), entry).await
        }
    }
}
