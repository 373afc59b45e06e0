//! `pictl audit show`: the audit trail, newest first.

use super::Ctx;
use crate::cli::audit::AuditShowArgs;
use crate::error::{Error, Exit};
use crate::output;
use protocol::admin::MAX_PAGE;
use protocol::{AdminRequest, AdminResponse, AuditEntry, Response, UserRef};
use serde_json::json;

pub fn show(ctx: &mut Ctx<'_, '_>, args: &AuditShowArgs) -> Result<Exit, Error> {
    let user = args.user.as_deref().map(|login| UserRef {
        login: login.to_owned(),
        realm: args.realm.clone(),
    });
    // The daemon filters by user; a realm alone is filtered here.
    let realm_only = if user.is_none() {
        args.realm.as_deref()
    } else {
        None
    };
    let wanted = args.limit as usize;
    let mut entries: Vec<AuditEntry> = Vec::new();
    let mut before: Option<u64> = None;
    while entries.len() < wanted {
        let remaining = u32::try_from(wanted - entries.len()).unwrap_or(u32::MAX);
        let request = AdminRequest::AuditShow {
            user: user.clone(),
            before,
            limit: remaining.min(MAX_PAGE),
        };
        let (page, next) = match ctx.admin(request, "audit show")? {
            AdminResponse::Audit { entries, next } => (entries, next),
            other => return Err(Error::unexpected("audit show", &Response::Admin(other))),
        };
        entries.extend(
            page.into_iter()
                .filter(|e| realm_only.is_none() || e.realm.as_deref() == realm_only),
        );
        match next {
            None => break,
            // Newest first: each page must continue further back, or paging would never end.
            Some(next) if before.is_some_and(|b| next >= b) => {
                return Err(Error::Failed(format!(
                    "the daemon's audit trail went back to entry {next} instead of moving on; \
                     this is a pid bug: report it with `pid --version`"
                )));
            }
            Some(next) => before = Some(next),
        }
    }
    entries.truncate(wanted);
    if ctx.json {
        ctx.print_json(&json!({ "entries": entries }))?;
    } else if entries.is_empty() {
        ctx.print("no audit entries match\n")?;
    } else {
        ctx.print(&output::audit_table(&entries))?;
    }
    Ok(Exit::Ok)
}
