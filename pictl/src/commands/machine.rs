//! `pictl machine attach|detach|list`: MachineToken assignments.

use super::Ctx;
use crate::cli::machine::{MachineAttachArgs, MachineCommand, MachineDetachArgs, MachineListArgs};
use crate::error::{Error, Exit};
use crate::output::{utc, Table};
use protocol::{
    AdminRequest, AdminResponse, MachineAttach, MachineOptions, MachineTokenInfo, Response,
};
use serde_json::{json, Value};

pub fn run(ctx: &mut Ctx<'_, '_>, command: MachineCommand) -> Result<Exit, Error> {
    match command {
        MachineCommand::Attach(args) => attach(ctx, args),
        MachineCommand::Detach(args) => detach(ctx, args),
        MachineCommand::List(args) => list(ctx, args),
    }
}

fn attach(ctx: &mut Ctx<'_, '_>, args: MachineAttachArgs) -> Result<Exit, Error> {
    if args.slot == Some(0) {
        return Err(Error::Usage(
            "slot 0 holds the volume's original passphrase and is never touched: use --slot 1 \
             to 31"
                .into(),
        ));
    }
    let request = AdminRequest::MachineAttach(Box::new(MachineAttach {
        serial: args.serial,
        app: args.app.into(),
        host: args.host,
        options: MachineOptions {
            user: args.user,
            service_id: args.service_id,
            slot: args.slot,
            device: args.device,
            concatenate: args.concatenate,
            count: args.count,
            rounds: args.rounds,
        },
    }));
    confirm(ctx, request, "machine attach")
}

fn detach(ctx: &mut Ctx<'_, '_>, args: MachineDetachArgs) -> Result<Exit, Error> {
    let request = AdminRequest::MachineDetach {
        serial: args.serial,
        app: args.app.into(),
        host: args.host,
    };
    confirm(ctx, request, "machine detach")
}

fn confirm(
    ctx: &mut Ctx<'_, '_>,
    request: AdminRequest,
    what: &'static str,
) -> Result<Exit, Error> {
    match ctx.admin(request, what)? {
        AdminResponse::Done { message } => {
            if ctx.json {
                ctx.print_json(&json!({ "message": message }))?;
            } else {
                ctx.print(&format!("{}\n", crate::output::sanitize_text(&message)))?;
            }
            Ok(Exit::Ok)
        }
        other => Err(Error::unexpected(what, &Response::Admin(other))),
    }
}

fn list(ctx: &mut Ctx<'_, '_>, args: MachineListArgs) -> Result<Exit, Error> {
    let request = AdminRequest::MachineList {
        serial: args.serial,
        app: args.app.map(Into::into),
        host: args.host,
    };
    let items = match ctx.admin(request, "machine list")? {
        AdminResponse::Machines(items) => items,
        other => return Err(Error::unexpected("machine list", &Response::Admin(other))),
    };
    if ctx.json {
        let doc: Vec<Value> = items.iter().map(item_json).collect();
        ctx.print_json(&Value::Array(doc))?;
        return Ok(Exit::Ok);
    }
    if items.is_empty() {
        ctx.note("no assignments; attach a token with `pictl machine attach SERIAL --app APP`")?;
        return Ok(Exit::Ok);
    }
    let mut table = Table::new(&["SERIAL", "TYPE", "APP", "HOST", "OPTIONS", "ATTACHED"]);
    for m in &items {
        table.row(vec![
            m.serial.clone(),
            m.token_type.as_str().to_owned(),
            m.app.as_str().to_owned(),
            m.host.clone(),
            options_text(&m.options),
            utc(m.created),
        ]);
    }
    ctx.print(&table.render())?;
    Ok(Exit::Ok)
}

fn item_json(m: &MachineTokenInfo) -> Value {
    let o = &m.options;
    json!({
        "serial": m.serial,
        "type": m.token_type.as_str(),
        "app": m.app.as_str(),
        "host": m.host,
        "options": {
            "user": o.user,
            "service_id": o.service_id,
            "slot": o.slot,
            "device": o.device,
            "concatenate": o.concatenate,
            "count": o.count,
            "rounds": o.rounds,
        },
        "created": m.created,
    })
}

/// `user=alice slot=1 …`: the options that are set.
fn options_text(o: &MachineOptions) -> String {
    let mut parts = Vec::new();
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            parts.push(format!("{k}={v}"));
        }
    };
    add("user", o.user.clone());
    add("service_id", o.service_id.clone());
    add("slot", o.slot.map(|s| s.to_string()));
    add("device", o.device.clone());
    add("concatenate", o.concatenate.then(|| "yes".to_owned()));
    add("count", o.count.map(|c| c.to_string()));
    add("rounds", o.rounds.map(|r| r.to_string()));
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_text_names_only_what_is_set() {
        let o = MachineOptions {
            user: Some("alice".into()),
            slot: Some(2),
            concatenate: true,
            ..Default::default()
        };
        assert_eq!(options_text(&o), "user=alice slot=2 concatenate=yes");
        assert_eq!(options_text(&MachineOptions::default()), "-");
    }
}
