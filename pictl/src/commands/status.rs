//! `pictl status`: is the daemon up, what is it, and may I administer it?

use super::Ctx;
use crate::error::{Error, Exit};
use crate::output;
use protocol::{AdminRequest, AdminResponse, Request, Response, StatusInfo, UpstreamInfo};
use serde_json::json;

pub fn run(ctx: &mut Ctx<'_, '_>) -> Result<Exit, Error> {
    let info = match ctx.call(&Request::Status)? {
        Response::Status(info) => info,
        other => return Err(Error::unexpected("status", &other)),
    };
    // The upstream servers' state is an administrator's; admin policies may still refuse it.
    let upstreams = if info.caller_is_admin {
        match ctx.admin(AdminRequest::UpstreamStatus, "upstream status") {
            Ok(AdminResponse::Upstreams(list)) => list,
            _ => Vec::new(),
        }
    } else {
        Vec::new()
    };
    if ctx.json {
        ctx.print_json(&json!({
            "version": info.version,
            "protocol": info.protocol,
            "store_path": info.store_path,
            "tokens": info.tokens,
            "uptime_secs": info.uptime_secs,
            "caller_is_admin": info.caller_is_admin,
            "notices": info.notices,
            "upstreams": upstreams.iter().map(upstream_json).collect::<Vec<_>>(),
        }))?;
    } else {
        let mut text = status_text(&info);
        for u in &upstreams {
            text.push_str(&upstream_text(u));
        }
        ctx.print(&text)?;
    }
    Ok(Exit::Ok)
}

fn upstream_json(u: &UpstreamInfo) -> serde_json::Value {
    json!({
        "name": u.name,
        "urls": u.urls,
        "realms": u.realms,
        "tls_verified": u.tls,
        "reachable": u.reachable,
        "version": u.version,
        "service_account": u.service_account,
        "service_account_ok": u.service_account_ok,
        "last_error": u.last_error,
    })
}

/// One line about an upstream server, and one about its last error if it had one.
fn upstream_text(u: &UpstreamInfo) -> String {
    let reachable = match u.reachable {
        Some(true) => "reachable",
        Some(false) => "NOT REACHABLE",
        None => "not asked yet",
    };
    let tls = if u.tls {
        "TLS verified"
    } else {
        "plain http to this host"
    };
    let version = u.version.as_deref().unwrap_or("version unknown");
    let account = match (u.service_account, u.service_account_ok) {
        (false, _) => "no service account",
        (true, Some(true)) => "service account ok",
        (true, Some(false)) => "SERVICE ACCOUNT REFUSED",
        (true, None) => "service account not used yet",
    };
    let mut text = format!(
        "upstream      {}: {reachable}, {tls}, {}, {account} (realms {}; {})\n",
        output::sanitize(&u.name),
        output::sanitize(version),
        output::sanitize(&u.realms.join(", ")),
        output::sanitize(&u.urls.join(" ")),
    );
    if let Some(e) = &u.last_error {
        text.push_str(&format!(
            "upstream      {}: last error: {}\n",
            output::sanitize(&u.name),
            output::sanitize(e)
        ));
    }
    text
}

fn status_text(info: &StatusInfo) -> String {
    let store = if info.store_path.is_empty() {
        "(shown to administrators only)".to_owned()
    } else {
        output::sanitize(&info.store_path).into_owned()
    };
    let admin = if info.caller_is_admin {
        "yes"
    } else {
        "no (token administration needs root or the admin group, pid.toml `admin_group`)"
    };
    let mut text = format!(
        "pid version   {}\n\
         protocol      {}\n\
         store         {store}\n\
         tokens        {}\n\
         uptime        {}\n\
         you are admin {admin}\n",
        output::sanitize(&info.version),
        info.protocol,
        info.tokens,
        output::duration(info.uptime_secs),
    );
    for notice in &info.notices {
        text.push_str(&format!("notice        {}\n", output::sanitize(notice)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(admin: bool) -> StatusInfo {
        StatusInfo {
            version: "0.1.0".into(),
            protocol: 1,
            store_path: if admin {
                "/var/lib/pi/db".into()
            } else {
                String::new()
            },
            tokens: 12,
            uptime_secs: 3 * 3600 + 2 * 60,
            caller_is_admin: admin,
            notices: Vec::new(),
        }
    }

    #[test]
    fn status_for_an_admin_shows_store_and_uptime() {
        let text = status_text(&info(true));
        assert!(text.contains("store         /var/lib/pi/db"), "{text}");
        assert!(text.contains("uptime        3h 2m"), "{text}");
        assert!(text.contains("tokens        12"), "{text}");
        assert!(text.contains("you are admin yes"), "{text}");
    }

    #[test]
    fn notices_are_shown_one_a_line() {
        let mut i = info(true);
        i.notices = vec!["store: trouble".into(), "realm x: \u{1b}[31mgone".into()];
        let text = status_text(&i);
        assert!(text.contains("notice        store: trouble\n"), "{text}");
        assert!(
            text.contains("notice        realm x: \\u{1b}[31mgone\n"),
            "{text}"
        );
    }

    #[test]
    fn an_upstream_server_shows_whether_it_answers_and_its_last_error() {
        let u = UpstreamInfo {
            name: "corp".into(),
            urls: vec!["https://pi.example.org".into()],
            realms: vec!["corp".into()],
            tls: true,
            reachable: Some(false),
            version: Some("privacyIDEA 3.14".into()),
            service_account: true,
            service_account_ok: Some(true),
            last_error: Some("upstream corp: cannot reach https://pi.example.org".into()),
        };
        let text = upstream_text(&u);
        assert!(
            text.starts_with(
                "upstream      corp: NOT REACHABLE, TLS verified, privacyIDEA 3.14, service \
                 account ok (realms corp; https://pi.example.org)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("last error: upstream corp: cannot reach"),
            "{text}"
        );
    }

    #[test]
    fn status_for_others_explains_the_hidden_store_and_how_to_become_admin() {
        let text = status_text(&info(false));
        assert!(text.contains("administrators only"), "{text}");
        assert!(text.contains("admin_group"), "{text}");
    }
}
