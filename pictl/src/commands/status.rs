//! `pictl status`: is the daemon up, what is it, and may I administer it?

use super::Ctx;
use crate::error::{Error, Exit};
use crate::output;
use protocol::{Request, Response, StatusInfo};
use serde_json::json;

pub fn run(ctx: &mut Ctx<'_, '_>) -> Result<Exit, Error> {
    let info = match ctx.call(&Request::Status)? {
        Response::Status(info) => info,
        other => return Err(Error::unexpected("status", &other)),
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
        }))?;
    } else {
        ctx.print(&status_text(&info))?;
    }
    Ok(Exit::Ok)
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
    fn status_for_others_explains_the_hidden_store_and_how_to_become_admin() {
        let text = status_text(&info(false));
        assert!(text.contains("administrators only"), "{text}");
        assert!(text.contains("admin_group"), "{text}");
    }
}
