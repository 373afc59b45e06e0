//! `pictl luks assign|unlock`: LUKS key slots opened by a Yubikey's HMAC-SHA1 response
//! (privacyIDEA's `privacyidea-luks-assign`, Debian's yubikey-luks).
//!
//! `assign` checks everything it can before the first change — the device, that it is LUKS,
//! the slots, the daemon's answer — so a refusal leaves the header as it was. Once it starts
//! writing and a step fails, the error says which slots were already changed.

use super::Ctx;
use crate::cli::luks::{LuksAssignArgs, LuksCommand, LuksUnlockArgs};
use crate::error::{Error, Exit};
use crate::luks::ccid::{OtpKey, YubikeySlot};
use crate::luks::cryptsetup::{Cryptsetup, KeyOptions};
use crate::luks::{self, responder, MAX_SLOT};
use crate::output::sanitize;
use protocol::{AdminRequest, AdminResponse, LuksResponse, MachineApp, MachineTokenInfo, Secret};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub fn run(ctx: &mut Ctx<'_, '_>, command: LuksCommand) -> Result<Exit, Error> {
    match command {
        LuksCommand::Assign(args) => assign(ctx, &args),
        LuksCommand::Unlock(args) => unlock(ctx, &args),
    }
}

/// One key slot to write.
#[derive(Debug)]
struct Planned<'r> {
    slot: u8,
    serial: &'r str,
    concatenate: bool,
    response: &'r Secret,
}

/// What was done to one slot, for the report.
#[derive(Debug, PartialEq, Eq)]
struct Done {
    slot: u8,
    serial: Option<String>,
    cleared: bool,
    added: bool,
    concatenate: bool,
}

fn assign(ctx: &mut Ctx<'_, '_>, args: &LuksAssignArgs) -> Result<Exit, Error> {
    if args.key_file.is_none() && !ctx.io.stdin_is_terminal {
        // Without a terminal cryptsetup reads the existing passphrase from stdin, which carries
        // the password (or, with --password-file, would be read once by each cryptsetup run).
        return Err(Error::Usage(
            "standard input is not a terminal, so cryptsetup cannot ask for an existing \
             passphrase of the volume: give it with --key-file PATH"
                .into(),
        ));
    }
    if let Some(key_file) = &args.key_file {
        std::fs::metadata(key_file).map_err(|e| {
            Error::Usage(format!(
                "--key-file {}: {e}; give a file holding an existing passphrase of the volume",
                shown(key_file)
            ))
        })?;
    }
    let (cryptsetup, device) = luks_device(&args.device)?;
    let used = cryptsetup.used_slots(&device)?;
    let password = luks::read_password(ctx.io, args.password_file.as_deref(), true)?;
    let responses = match ctx.admin(
        AdminRequest::LuksResponses {
            password: password.clone(),
            host: args.host.clone(),
        },
        "luks responses",
    )? {
        AdminResponse::LuksResponses(responses) => responses,
        other => {
            return Err(Error::unexpected(
                "luks responses",
                &protocol::Response::Admin(other),
            ))
        }
    };
    let shown_device = shown(&device);
    let chosen = chosen(&responses, &device, args.serial.as_deref(), || {
        OtpKey::connect(args.reader.as_deref())?.serial()
    })?;
    let plan = plan(chosen, &device, args.slot)?;
    if plan.is_empty() {
        return match (args.clear_slot, args.slot) {
            (true, Some(slot)) => clear_only(ctx, &cryptsetup, &device, slot, &used, args),
            _ => Err(Error::Failed(format!(
                "no luks assignment of this host is for {shown_device}: attach the Yubikey's \
                 token first (`pictl machine attach UBOM…_2 --app luks --device \
                 {shown_device} --slot N`; `pictl machine list --app luks` shows the \
                 assignments), or give --slot N --clear-slot to empty a slot"
            ))),
        };
    }
    if !args.clear_slot {
        if let Some(p) = plan.iter().find(|p| used.contains(&p.slot)) {
            return Err(Error::Failed(format!(
                "key slot {} of {shown_device} is in use: give --clear-slot to replace its key \
                 (for {}), or choose a free slot with --slot N (`cryptsetup luksDump \
                 {shown_device}` shows the slots)",
                p.slot,
                sanitize(p.serial)
            )));
        }
    }
    let options = KeyOptions {
        key_file: args.key_file.clone(),
        pbkdf: args.pbkdf.clone(),
        pbkdf_force_iterations: args.pbkdf_force_iterations,
    };
    let mut done: Vec<Done> = Vec::new();
    for p in &plan {
        let mut step = Done {
            slot: p.slot,
            serial: Some(p.serial.to_owned()),
            cleared: false,
            added: false,
            concatenate: p.concatenate,
        };
        let result = write_slot(
            &cryptsetup,
            &device,
            p,
            used.contains(&p.slot),
            &password,
            &options,
            &mut step,
        );
        if let Err(e) = result {
            if step.cleared {
                done.push(step);
            }
            return Err(partial(e, &done));
        }
        done.push(step);
    }
    report(ctx, &device, &done)
}

/// Empty the slot if it holds a key, then add the passphrase; `step` records what happened.
fn write_slot(
    cryptsetup: &Cryptsetup,
    device: &Path,
    p: &Planned<'_>,
    in_use: bool,
    password: &Secret,
    options: &KeyOptions,
    step: &mut Done,
) -> Result<(), Error> {
    if in_use {
        cryptsetup.kill_slot(device, p.slot, options.key_file.as_deref())?;
        step.cleared = true;
    }
    let passphrase = luks::passphrase(password.expose(), p.response.expose(), p.concatenate);
    cryptsetup.add_key(device, p.slot, &passphrase, options)?;
    step.added = true;
    Ok(())
}

/// No assignment for the device: `--slot N --clear-slot` only empties the slot (after
/// `pictl machine detach`).
fn clear_only(
    ctx: &mut Ctx<'_, '_>,
    cryptsetup: &Cryptsetup,
    device: &Path,
    slot: u8,
    used: &BTreeSet<u8>,
    args: &LuksAssignArgs,
) -> Result<Exit, Error> {
    let cleared = used.contains(&slot);
    if cleared {
        cryptsetup.kill_slot(device, slot, args.key_file.as_deref())?;
    }
    let done = [Done {
        slot,
        serial: None,
        cleared,
        added: false,
        concatenate: false,
    }];
    report(ctx, device, &done)
}

/// The assignments of `device` whose responses are written: those of the token or key
/// `serial` names; else all of them when they are for one Yubikey; else those of the plugged-in
/// key, whose serial `plugged_in` reads only then (a key answering for a volume it was not
/// meant for would be refused at boot, so the wrong one is never guessed).
fn chosen<'r>(
    responses: &'r [LuksResponse],
    device: &Path,
    serial: Option<&str>,
    plugged_in: impl FnOnce() -> Result<u32, Error>,
) -> Result<Vec<&'r LuksResponse>, Error> {
    let candidates: Vec<&LuksResponse> = responses.iter().filter(|r| is_for(r, device)).collect();
    let shown_device = shown(device);
    if let Some(wanted) = serial {
        let picked: Vec<&LuksResponse> = candidates
            .iter()
            .copied()
            .filter(|r| luks::names_token(wanted, &r.serial))
            .collect();
        if picked.is_empty() {
            let named: Vec<String> = candidates
                .iter()
                .map(|r| sanitize(&r.serial).into_owned())
                .collect();
            return Err(Error::Failed(format!(
                "no luks assignment of {shown_device} is for --serial {}; they name: {}. Give \
                 one of those, or attach the token first (`pictl machine attach SERIAL --app \
                 luks --device {shown_device} --slot N`)",
                sanitize(wanted),
                if named.is_empty() {
                    "none".to_owned()
                } else {
                    named.join(", ")
                }
            )));
        }
        return Ok(picked);
    }
    let keys: BTreeSet<Option<u32>> = candidates
        .iter()
        .map(|r| luks::parse_ubom(&r.serial).map(|(key, _)| key))
        .collect();
    if keys.len() <= 1 {
        return Ok(candidates);
    }
    let key = plugged_in().map_err(|e| {
        Error::Failed(format!(
            "the luks assignments of {shown_device} are for {} Yubikeys, so pictl asks the \
             plugged-in key for its serial, and that failed: {e}. Or name the token with \
             --serial UBOM…_N",
            keys.len()
        ))
    })?;
    luks::pick_for_key(&candidates, |r| r.serial.as_str(), key, &shown_device)
}

/// The slots to write, checked before anything changes: every assignment for `device` (or
/// for no device in particular) needs a slot from 1 to 31, and no two may share one.
fn plan<'r>(
    responses: impl IntoIterator<Item = &'r LuksResponse>,
    device: &Path,
    slot: Option<u8>,
) -> Result<Vec<Planned<'r>>, Error> {
    let mut plan: Vec<Planned<'r>> = Vec::new();
    for r in responses.into_iter().filter(|r| is_for(r, device)) {
        let serial = sanitize(&r.serial);
        let Some(slot) = slot.or(r.slot) else {
            return Err(Error::Usage(format!(
                "the luks assignment of {serial} names no key slot: give --slot N (1 to 31), \
                 or attach it again with --slot N"
            )));
        };
        if slot == 0 || slot > MAX_SLOT {
            return Err(Error::Failed(format!(
                "the luks assignment of {serial} names key slot {slot}, which pictl never \
                 writes (slot 0 holds the volume's own passphrase; LUKS has slots up to 31): \
                 give --slot N, or attach it again with a slot from 1 to 31"
            )));
        }
        if !luks::is_response(r.response.expose()) {
            return Err(Error::Failed(format!(
                "the daemon's response for {serial} is not 40 hex digits: pictl and pid \
                 probably come from different releases, install matching versions"
            )));
        }
        if let Some(other) = plan.iter().find(|p| p.slot == slot) {
            return Err(Error::Failed(format!(
                "the luks assignments of {} and {serial} would both go into key slot {slot}: \
                 attach them with different --slot values and leave --slot out here",
                sanitize(other.serial)
            )));
        }
        plan.push(Planned {
            slot,
            serial: &r.serial,
            concatenate: r.concatenate,
            response: &r.response,
        });
    }
    Ok(plan)
}

/// An assignment without a device is for any device; one with a device is for the same file
/// (after resolving links and relative paths on both sides).
fn is_for(response: &LuksResponse, device: &Path) -> bool {
    is_for_device(response.device.as_deref(), device)
}

fn is_for_device(assigned: Option<&str>, device: &Path) -> bool {
    match assigned {
        None => true,
        Some(d) => {
            let d = Path::new(d);
            d == device || std::fs::canonicalize(d).is_ok_and(|c| c == device)
        }
    }
}

/// An error after some slots were already changed names them, so the operator knows the state.
fn partial(e: Error, done: &[Done]) -> Error {
    if done.is_empty() {
        return e;
    }
    let steps: Vec<String> = done.iter().map(describe).collect();
    Error::Failed(format!("{e} (already done: {})", steps.join("; ")))
}

fn describe(d: &Done) -> String {
    let what = match (d.cleared, d.added) {
        (true, true) => "cleared, then added",
        (false, true) => "added",
        (true, false) => "cleared",
        (false, false) => "was already empty",
    };
    let key = match (&d.serial, d.added) {
        (Some(serial), true) => format!(
            " the response of {}{}",
            sanitize(serial),
            if d.concatenate {
                " (password followed by response)"
            } else {
                ""
            }
        ),
        _ => String::new(),
    };
    format!("slot {}: {what}{key}", d.slot)
}

fn report(ctx: &mut Ctx<'_, '_>, device: &Path, done: &[Done]) -> Result<Exit, Error> {
    if ctx.json {
        let slots: Vec<Value> = done
            .iter()
            .map(|d| {
                json!({
                    "slot": d.slot,
                    "serial": d.serial,
                    "cleared": d.cleared,
                    "added": d.added,
                    "concatenate": d.concatenate,
                })
            })
            .collect();
        ctx.print_json(&json!({ "device": device.display().to_string(), "slots": slots }))?;
    } else {
        let mut text = String::new();
        for d in done {
            text.push_str(&format!("{}: {}\n", shown(device), describe(d)));
        }
        ctx.print(&text)?;
    }
    Ok(Exit::Ok)
}

/// What answers the challenge for `unlock`.
enum Answerer<'a> {
    /// `--responder-cmd`.
    Command(&'a str),
    /// The plugged-in key, its OTP slot, and whether the password comes before the response.
    Key(OtpKey, YubikeySlot, bool),
}

fn unlock(ctx: &mut Ctx<'_, '_>, args: &LuksUnlockArgs) -> Result<Exit, Error> {
    if let Some(name) = &args.name {
        check_name(name)?;
    }
    let slot = match args.yubikey_slot {
        None => None,
        Some(n) => Some(YubikeySlot::from_number(n).ok_or_else(|| {
            Error::Usage("--yubikey-slot is 1 or 2: the Yubikey has two OTP slots".into())
        })?),
    };
    if let Some(cmd) = &args.responder_cmd {
        responder::split_command(cmd)?;
    }
    let (cryptsetup, device) = luks_device(&args.device)?;
    // The key and its slot are settled before the password is typed, so a missing key or
    // assignment costs no typing.
    let answerer = match &args.responder_cmd {
        Some(cmd) => Answerer::Command(cmd),
        None => {
            let key = OtpKey::connect(args.reader.as_deref())?;
            match slot {
                Some(slot) => Answerer::Key(key, slot, args.concatenate),
                None => {
                    let serial = key.serial()?;
                    let (slot, concatenate) = key_assignment(ctx, &device, serial)?;
                    Answerer::Key(key, slot, concatenate || args.concatenate)
                }
            }
        }
    };
    let password = luks::read_password(ctx.io, args.password_file.as_deref(), false)?;
    let challenge = password.expose().as_bytes();
    let (response, concatenate) = match answerer {
        Answerer::Command(cmd) => (responder::response(cmd, challenge)?, args.concatenate),
        Answerer::Key(key, slot, concatenate) => {
            ctx.note("pictl: asking the Yubikey (touch it if it blinks)")?;
            (key.hmac_response(slot, challenge)?, concatenate)
        }
    };
    let passphrase = luks::passphrase(password.expose(), &response, concatenate);
    let name = if args.test {
        None
    } else {
        args.name.as_deref()
    };
    let shown_device = shown(&device);
    if !cryptsetup.open(&device, name, &passphrase)? {
        return Err(Error::Failed(format!(
            "the Yubikey's response does not open {shown_device}: check the password, the \
             Yubikey slot (--yubikey-slot) and --concatenate, and that `pictl luks assign` \
             put the response into a key slot"
        )));
    }
    let result = if name.is_some() { "opened" } else { "tested" };
    if ctx.json {
        ctx.print_json(&json!({
            "device": device.display().to_string(),
            "name": name,
            "result": result,
        }))?;
    } else if let Some(name) = name {
        ctx.print(&format!(
            "{shown_device} is open as /dev/mapper/{}\n",
            sanitize(name)
        ))?;
    } else {
        ctx.print(&format!(
            "the Yubikey's response opens a key slot of {shown_device}\n"
        ))?;
    }
    Ok(Exit::Ok)
}

/// The OTP slot and `concatenate` of the luks assignment of the key with `serial` for `device`
/// on this host. pid names this host by its host name too, and it only listens on this host.
fn key_assignment(
    ctx: &mut Ctx<'_, '_>,
    device: &Path,
    serial: u32,
) -> Result<(YubikeySlot, bool), Error> {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .ok_or_else(|| {
            Error::Failed(
                "cannot read this host's name to look up its luks assignments: give \
                 --yubikey-slot N"
                    .into(),
            )
        })?;
    let request = AdminRequest::MachineList {
        serial: None,
        app: Some(MachineApp::Luks),
        host: Some(host),
    };
    let items = match ctx.admin(request, "machine list")? {
        AdminResponse::Machines(items) => items,
        other => {
            return Err(Error::unexpected(
                "machine list",
                &protocol::Response::Admin(other),
            ))
        }
    };
    assignment_of_key(&items, device, serial)
}

/// The one assignment of the key `serial` for `device`; two (both OTP slots) are ambiguous.
fn assignment_of_key(
    items: &[MachineTokenInfo],
    device: &Path,
    serial: u32,
) -> Result<(YubikeySlot, bool), Error> {
    let candidates: Vec<&MachineTokenInfo> = items
        .iter()
        .filter(|i| i.app == MachineApp::Luks && is_for_device(i.options.device.as_deref(), device))
        .collect();
    let shown_device = shown(device);
    let picked = luks::pick_for_key(&candidates, |i| i.serial.as_str(), serial, &shown_device)?;
    let slots: Vec<(YubikeySlot, bool)> = picked
        .iter()
        .filter_map(|i| luks::parse_ubom(&i.serial).map(|(_, slot)| (slot, i.options.concatenate)))
        .collect();
    match slots[..] {
        [one] => Ok(one),
        _ => Err(Error::Usage(format!(
            "the plugged-in Yubikey ({serial}) has {} luks assignments for {shown_device}: \
             choose its slot with --yubikey-slot 1 or 2",
            slots.len()
        ))),
    }
}

/// A device-mapper name: it becomes `/dev/mapper/NAME`.
fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.starts_with('-') || name.contains('/') || name.len() > 127 {
        return Err(Error::Usage(
            "--name is the name of the opened volume (/dev/mapper/NAME): up to 127 characters, \
             no '/', not starting with '-'"
                .into(),
        ));
    }
    Ok(())
}

/// cryptsetup and the canonical path of a device that exists and is LUKS. The canonical path
/// is absolute, so cryptsetup can never take it for an option.
fn luks_device(device: &Path) -> Result<(Cryptsetup, PathBuf), Error> {
    luks::check_device(device)?;
    let device = std::fs::canonicalize(device).map_err(|e| {
        Error::Usage(format!(
            "{}: {e}; give the path of the LUKS volume",
            shown(device)
        ))
    })?;
    let cryptsetup = Cryptsetup::find()?;
    if !cryptsetup.is_luks(&device)? {
        return Err(Error::Usage(format!(
            "{} is not a LUKS volume: check the device (`lsblk -f` shows FSTYPE crypto_LUKS \
             for LUKS partitions)",
            shown(&device)
        )));
    }
    Ok((cryptsetup, device))
}

fn shown(path: &Path) -> String {
    sanitize(&path.display().to_string()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    const R1: &str = "04b30deb5dcf72ad8aa0a9afa9b4d24d71617db5";
    const R2: &str = "be1fc32a350b5eced2a77c8f8a41d6d49095d5a7";

    fn response(serial: &str, slot: Option<u8>, device: Option<&str>, r: &str) -> LuksResponse {
        LuksResponse {
            serial: serial.into(),
            slot,
            device: device.map(Into::into),
            concatenate: false,
            response: Secret::new(r),
        }
    }

    #[test]
    fn assignments_for_other_devices_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("img");
        std::fs::write(&img, b"").unwrap();
        let img = std::fs::canonicalize(&img).unwrap();
        let via_dots = format!("{}/../{}/img", img.parent().unwrap().display(), {
            img.parent().unwrap().file_name().unwrap().to_str().unwrap()
        });
        let responses = [
            response("UBOM1_2", Some(1), Some(&via_dots), R1),
            response("UBOM2_2", Some(2), Some("/dev/other"), R2),
            response("UBOM3_2", Some(3), None, R2),
        ];
        let plan = plan(&responses, &img, None).unwrap();
        let got: Vec<(&str, u8)> = plan.iter().map(|p| (p.serial, p.slot)).collect();
        assert_eq!(got, [("UBOM1_2", 1), ("UBOM3_2", 3)]);
    }

    #[test]
    fn slot_flag_overrides_and_a_missing_slot_asks_for_it() {
        let dev = Path::new("/dev/x");
        let responses = [response("UBOM1_2", None, None, R1)];
        let err = plan(&responses, dev, None).unwrap_err();
        assert!(err.to_string().contains("--slot"), "{err}");
        assert_eq!(plan(&responses, dev, Some(4)).unwrap()[0].slot, 4);
    }

    #[test]
    fn slot_0_from_the_daemon_is_never_written() {
        let responses = [response("UBOM1_2", Some(0), None, R1)];
        let err = plan(&responses, Path::new("/dev/x"), None).unwrap_err();
        assert!(err.to_string().contains("never"), "{err}");
    }

    #[test]
    fn two_assignments_into_one_slot_are_refused() {
        let responses = [
            response("UBOM1_2", Some(1), None, R1),
            response("UBOM2_2", Some(2), None, R2),
        ];
        let dev = Path::new("/dev/x");
        assert_eq!(plan(&responses, dev, None).unwrap().len(), 2);
        let err = plan(&responses, dev, Some(5)).unwrap_err();
        assert!(err.to_string().contains("both go into key slot 5"), "{err}");
    }

    #[test]
    fn a_malformed_daemon_response_is_refused_without_showing_it() {
        let responses = [response("UBOM1_2", Some(1), None, "not-hex-secret")];
        let err = plan(&responses, Path::new("/dev/x"), None).unwrap_err();
        assert!(!err.to_string().contains("not-hex-secret"), "{err}");
    }

    #[test]
    fn partial_failures_name_the_slots_already_changed() {
        let done = [Done {
            slot: 1,
            serial: Some("UBOM1_2".into()),
            cleared: true,
            added: true,
            concatenate: true,
        }];
        let err = partial(Error::Failed("boom".into()), &done);
        let text = err.to_string();
        assert!(text.starts_with("boom (already done: slot 1: cleared, then added"));
        assert!(
            text.contains("UBOM1_2 (password followed by response)"),
            "{text}"
        );
        let untouched = partial(Error::Usage("u".into()), &[]);
        assert!(matches!(untouched, Error::Usage(_)));
    }

    #[test]
    fn several_keys_pick_the_plugged_in_one_and_a_single_key_needs_none() {
        let dev = Path::new("/dev/x");
        let one_key = [
            response("UBOM00001111_2", Some(1), None, R1),
            response("UBOM00001111_1", Some(2), None, R2),
        ];
        let no_key = || -> Result<u32, Error> { Err(Error::Failed("no key".into())) };
        assert_eq!(chosen(&one_key, dev, None, no_key).unwrap().len(), 2);
        let two_keys = [
            response("UBOM00001111_2", Some(1), None, R1),
            response("UBOM00002222_2", Some(2), None, R2),
            response("UBOM00003333_2", Some(3), Some("/dev/other"), R2),
        ];
        let got = chosen(&two_keys, dev, None, || Ok(2222)).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].serial, "UBOM00002222_2");
        let err = chosen(&two_keys, dev, None, no_key)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("2 Yubikeys") && err.contains("no key") && err.contains("--serial"),
            "{err}"
        );
        // A key assigned only to another device is not one of this device's keys.
        let err = chosen(&two_keys, dev, None, || Ok(3333))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("serial 3333") && err.contains("UBOM00001111_2, UBOM00002222_2"),
            "{err}"
        );
    }

    #[test]
    fn serial_option_picks_without_asking_the_key() {
        let dev = Path::new("/dev/x");
        let responses = [
            response("UBOM00001111_2", Some(1), None, R1),
            response("UBOM00002222_2", Some(2), None, R2),
        ];
        let asked = || -> Result<u32, Error> { panic!("the key was asked") };
        let got = chosen(&responses, dev, Some("UBOM00002222_2"), asked).unwrap();
        assert_eq!(got[0].serial, "UBOM00002222_2");
        let got = chosen(&responses, dev, Some("1111"), asked).unwrap();
        assert_eq!(got[0].serial, "UBOM00001111_2");
        let err = chosen(&responses, dev, Some("UBOM9_2"), asked)
            .unwrap_err()
            .to_string();
        assert!(err.contains("UBOM00001111_2, UBOM00002222_2"), "{err}");
    }

    fn assignment(serial: &str, device: Option<&str>, concatenate: bool) -> MachineTokenInfo {
        MachineTokenInfo {
            serial: serial.into(),
            token_type: protocol::TokenType::Totp,
            app: MachineApp::Luks,
            host: "h".into(),
            options: protocol::MachineOptions {
                device: device.map(Into::into),
                concatenate,
                ..Default::default()
            },
            created: 0,
        }
    }

    #[test]
    fn unlock_takes_the_otp_slot_and_concatenate_from_the_keys_assignment() {
        let dev = Path::new("/dev/x");
        let items = [
            assignment("UBOM00001111_2", None, false),
            assignment("UBOM00002222_1", Some("/dev/x"), true),
            assignment("UBOM00002222_2", Some("/dev/other"), false),
        ];
        assert_eq!(
            assignment_of_key(&items, dev, 2222).unwrap(),
            (YubikeySlot::One, true)
        );
        assert_eq!(
            assignment_of_key(&items, dev, 1111).unwrap(),
            (YubikeySlot::Two, false)
        );
        let err = assignment_of_key(&items, dev, 4444)
            .unwrap_err()
            .to_string();
        assert!(err.contains("UBOM00001111_2, UBOM00002222_1"), "{err}");
        let both = [
            assignment("UBOM00002222_1", None, false),
            assignment("UBOM00002222_2", None, false),
        ];
        let err = assignment_of_key(&both, dev, 2222).unwrap_err().to_string();
        assert!(err.contains("--yubikey-slot"), "{err}");
    }

    #[test]
    fn mapper_names_cannot_be_options_or_paths() {
        assert!(check_name("cryptdata").is_ok());
        for bad in ["", "-x", "a/b", &"n".repeat(128)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("pictl").chain(args.iter().copied()))
    }

    #[test]
    fn luks_command_lines_parse() {
        let cli = parse(&[
            "luks",
            "assign",
            "--device",
            "/dev/sda3",
            "--slot",
            "2",
            "--clear-slot",
            "--key-file",
            "/k",
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
        ])
        .unwrap();
        let Command::Luks(LuksCommand::Assign(a)) = cli.command else {
            panic!("not luks assign");
        };
        assert_eq!(a.slot, Some(2));
        assert!(a.clear_slot);
        assert_eq!(a.pbkdf_force_iterations, Some(1000));
        let cli = parse(&[
            "luks",
            "unlock",
            "--device",
            "img",
            "--test",
            "--responder-cmd",
            "ykchalresp -2 -x",
        ])
        .unwrap();
        let Command::Luks(LuksCommand::Unlock(u)) = cli.command else {
            panic!("not luks unlock");
        };
        assert!(u.test && u.name.is_none());
        assert_eq!(u.yubikey_slot, None);
    }

    #[test]
    fn bad_luks_arguments_are_usage_errors() {
        for line in [
            &["luks", "assign", "--device", "d", "--slot", "0"][..],
            &["luks", "assign", "--device", "d", "--slot", "32"],
            &["luks", "unlock", "--device", "d"],
            &[
                "luks",
                "unlock",
                "--device",
                "d",
                "--test",
                "--yubikey-slot",
                "3",
            ],
            &[
                "luks",
                "unlock",
                "--device",
                "d",
                "--test",
                "--reader",
                "Y",
                "--responder-cmd",
                "x",
            ],
        ] {
            let err = parse(line).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{line:?}");
        }
        let err = parse(&["luks", "assign", "--device", "d", "--slot", "0"]).unwrap_err();
        assert!(err.to_string().contains("never touches"), "{err}");
    }
}
