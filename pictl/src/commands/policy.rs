//! `pictl policy check`: which policies apply to a login, and what they decide.

use super::Ctx;
use crate::cli::policy::PolicyCheckArgs;
use crate::error::{Error, Exit};
use crate::output::sanitize_text;
use protocol::{AdminRequest, AdminResponse, Response, UserRef};

pub fn check(ctx: &mut Ctx<'_, '_>, args: PolicyCheckArgs) -> Result<Exit, Error> {
    let request = AdminRequest::PolicyCheck {
        user: UserRef {
            login: args.user,
            realm: args.realm,
        },
        service: args.service.clone(),
        rhost: args.rhost.clone(),
    };
    let report = match ctx.admin(request, "policy check")? {
        AdminResponse::PolicyCheck(r) => r,
        other => return Err(Error::unexpected("policy check", &Response::Admin(other))),
    };
    if ctx.json {
        let doc = serde_json::to_value(&report)
            .map_err(|e| Error::Failed(format!("cannot render the policy report as JSON: {e}")))?;
        return ctx.print_json(&doc).map(|_| Exit::Ok);
    }
    let mut out = format!(
        "user      {}@{}\nresolver  {}\nservice   {}\nrhost     {}\n",
        sanitize_text(&report.login),
        sanitize_text(&report.realm),
        report
            .resolver
            .as_deref()
            .map(sanitize_text)
            .unwrap_or_else(|| "none (unknown user)".into()),
        sanitize_text(&args.service),
        args.rhost
            .as_deref()
            .map(sanitize_text)
            .unwrap_or_else(|| "-".into()),
    );
    if report.matching.is_empty() {
        out.push_str(
            "policies  none apply: privacyIDEA's defaults hold (token PIN, a token required)\n",
        );
    } else {
        let names: Vec<String> = report.matching.iter().map(|n| sanitize_text(n)).collect();
        out.push_str(&format!("policies  {}\n", names.join(", ")));
        out.push_str("\nACTION                        VALUE      FROM POLICY\n");
        for d in &report.effective {
            out.push_str(&format!(
                "{:<29} {:<10} {}\n",
                sanitize_text(&d.action),
                sanitize_text(&d.value),
                sanitize_text(&d.policy)
            ));
        }
    }
    ctx.print(&out)?;
    Ok(Exit::Ok)
}
