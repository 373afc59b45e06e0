//! `pictl offline status`: the offline values this host holds from upstream servers.

use super::Ctx;
use crate::cli::offline::OfflineStatusArgs;
use crate::error::{Error, Exit};
use crate::output;
use protocol::{AdminRequest, AdminResponse, OfflineInfo, Response, UserRef};
use serde_json::json;

pub fn status(ctx: &mut Ctx<'_, '_>, args: &OfflineStatusArgs) -> Result<Exit, Error> {
    let user = args.user.as_deref().map(|login| UserRef {
        login: login.to_owned(),
        realm: args.realm.clone(),
    });
    let records = match ctx.admin(AdminRequest::OfflineStatus { user }, "offline status")? {
        AdminResponse::Offline(records) => records,
        other => return Err(Error::unexpected("offline status", &Response::Admin(other))),
    };
    if ctx.json {
        let records: Vec<_> = records.iter().map(record_json).collect();
        ctx.print_json(&json!({ "offline": records }))?;
    } else if records.is_empty() {
        ctx.print("no offline values on this host\n")?;
    } else {
        ctx.print(&table(&records))?;
    }
    Ok(Exit::Ok)
}

fn record_json(r: &OfflineInfo) -> serde_json::Value {
    json!({
        "user": r.login,
        "realm": r.realm,
        "serial": r.serial,
        "upstream": r.upstream,
        "remaining": r.remaining,
        "first_counter": r.first_counter,
        "last_counter": r.last_counter,
        "fails": r.fails,
        "max_fails": r.max_fails,
        "received_at": r.received_at,
        "refilled_at": r.refilled_at,
        "refill_due": r.refill_due,
    })
}

fn table(records: &[OfflineInfo]) -> String {
    let mut t = output::Table::new(&[
        "USER", "SERIAL", "UPSTREAM", "LEFT", "COUNTERS", "FAILS", "REFILLED",
    ]);
    for r in records {
        let counters = match (r.first_counter, r.last_counter) {
            (Some(a), Some(b)) => format!("{a}-{b}"),
            _ => "-".into(),
        };
        let refill = match (r.refill_due, r.refilled_at) {
            (true, _) => "due".to_owned(),
            (false, Some(t)) => output::utc(t),
            (false, None) => "-".to_owned(),
        };
        t.row(vec![
            format!("{}@{}", r.login, r.realm),
            r.serial.clone(),
            r.upstream.clone(),
            r.remaining.to_string(),
            counters,
            format!("{}/{}", r.fails, r.max_fails),
            refill,
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_what_is_left_and_never_a_value() {
        let r = OfflineInfo {
            login: "alice".into(),
            realm: "corp".into(),
            serial: "HOTP1".into(),
            upstream: "pi".into(),
            remaining: 3,
            first_counter: Some(4),
            last_counter: Some(6),
            fails: 1,
            max_fails: 10,
            received_at: 1_800_000_000,
            refilled_at: None,
            refill_due: true,
        };
        let text = table(&[r]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("USER"), "{text}");
        for cell in ["alice@corp", "HOTP1", "pi", "3", "4-6", "1/10", "due"] {
            assert!(lines[1].contains(cell), "{cell}: {text}");
        }
    }
}
