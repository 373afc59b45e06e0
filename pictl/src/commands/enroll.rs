//! `pictl enroll`: a user enrolls a token for themselves, confirms it with two consecutive codes
//! and keeps the recovery code; `verify` is also `pictl token verify`.

use super::auth::own_login;
use super::token::{enrolled_for_people, enrolled_from, enrolled_json, resolve_pin};
use super::Ctx;
use crate::cli::enroll::SelfEnrollArgs;
use crate::cli::values::check_otp;
use crate::error::{Error, Exit};
use crate::{input, output, secret_file};
use protocol::{AdminRequest, AdminResponse, EnrollRequest, ErrorCode, Secret, UserRef};
use serde_json::json;
use std::path::Path;
use zeroize::Zeroizing;

/// Pairs of codes pictl asks for before it gives up (each wrong pair counts towards the
/// token's lockout).
const VERIFY_ATTEMPTS: u32 = 3;

pub fn run(ctx: &mut Ctx<'_, '_>, args: SelfEnrollArgs) -> Result<Exit, Error> {
    if let Some(path) = &args.recovery_file {
        secret_file::check_new(path).map_err(Error::Usage)?;
    }
    let pin = resolve_pin(ctx, args.pin)?;
    let request = EnrollRequest {
        token_type: Some(args.token_type.into()),
        user: Some(UserRef {
            login: own_login()?,
            realm: None,
        }),
        pin,
        description: args.description,
        ..EnrollRequest::default()
    };
    let enroll = AdminRequest::TokenEnroll(Box::new(request));
    let (enrolled, verified) = enrolled_from(ctx.admin(enroll, "enroll")?, "enroll")?;
    let serial = enrolled.token.serial.clone();
    if ctx.json {
        let mut doc = enrolled_json(&enrolled, verified);
        if !verified {
            doc["verify"] = json!(format!("pictl token verify {serial} CODE NEXT-CODE"));
        }
        ctx.print_json(&doc)?;
        return Ok(Exit::Ok);
    }
    let (text, problem) = enrolled_for_people(ctx, &enrolled, args.qr, args.no_qr);
    ctx.print(&text)?;
    drop(text);
    if let Some(problem) = problem {
        ctx.note(&problem)?;
    }
    if verified {
        ctx.print(&format!("Token {} is active.\n", output::sanitize(&serial)))?;
        return Ok(Exit::Ok);
    }
    ctx.note(
        "Add the token to your app now. It logs in only once you typed two consecutive codes.",
    )?;
    verify(ctx, &serial, None, args.recovery_file.as_deref())
}

/// Activate a token that waits for two consecutive codes: `codes` as given, else asked for (up
/// to `VERIFY_ATTEMPTS` pairs). Shows the recovery code the daemon makes, and writes it to
/// `recovery_file` when one is given.
pub fn verify(
    ctx: &mut Ctx<'_, '_>,
    serial: &str,
    codes: Option<(Secret, Secret)>,
    recovery_file: Option<&Path>,
) -> Result<Exit, Error> {
    let interactive = codes.is_none();
    let mut given = codes;
    let mut attempt = 0;
    let (token, recovery_code) = loop {
        attempt += 1;
        let (otp1, otp2) = match given.take() {
            Some(pair) => pair,
            None => ask_codes(ctx)?,
        };
        let request = AdminRequest::TokenVerify {
            serial: serial.to_owned(),
            otp1,
            otp2,
        };
        match ctx.admin(request, "token verify") {
            Ok(AdminResponse::Verified {
                token,
                recovery_code,
            }) => break (token, recovery_code),
            Ok(other) => {
                return Err(Error::unexpected(
                    "token verify",
                    &protocol::Response::Admin(other),
                ))
            }
            Err(Error::Daemon {
                code: ErrorCode::InvalidArgument,
                message,
            }) if interactive && attempt < VERIFY_ATTEMPTS => {
                ctx.note(&format!("{}; try again.", output::sanitize_text(&message)))?;
            }
            Err(e) => return Err(e),
        }
    };
    let written = match (recovery_file, &recovery_code) {
        (Some(path), Some(code)) => Some(secret_file::write_new(
            path,
            Zeroizing::new(format!("{}\n", code.expose())).as_bytes(),
        )),
        _ => None,
    };
    let serial = output::sanitize(&token.serial).into_owned();
    if ctx.json {
        let mut doc = json!({
            "serial": serial,
            "verified": true,
            "recovery_code": recovery_code.as_ref().map(|c| c.expose()),
            "token": output::token_json(&token),
        });
        if let (Some(path), Some(result)) = (recovery_file, &written) {
            doc["recovery_file"] = match result {
                Ok(()) => json!({ "path": path }),
                Err(e) => json!({ "path": path, "error": e }),
            };
        }
        ctx.print_json(&doc)?;
    } else {
        let mut text = Zeroizing::new(format!("Token {serial} is verified and active.\n"));
        if let Some(code) = &recovery_code {
            text.push_str(&format!(
                "\nYour recovery code, shown only this once:\n\n    {}\n\nIt logs you in once if \
                 you lose this token. Keep it away from this host: on paper, or in a password \
                 manager.\n",
                output::sanitize(code.expose())
            ));
            if let (Some(path), Some(Ok(()))) = (recovery_file, &written) {
                text.push_str(&format!(
                    "It is also in {} (mode 0600): move it somewhere safe.\n",
                    output::sanitize(&path.display().to_string())
                ));
            }
        }
        ctx.print(&text)?;
    }
    match written {
        Some(Err(e)) => Err(Error::Failed(format!(
            "token {serial} is verified, but the recovery code (shown above) was not written: {e}"
        ))),
        _ => Ok(Exit::Ok),
    }
}

/// Ask for the code the token shows now and the one after it.
fn ask_codes(ctx: &mut Ctx<'_, '_>) -> Result<(Secret, Secret), Error> {
    let mut ask = |prompt: &str, name: &str| -> Result<Secret, Error> {
        let code = input::ask(ctx.io, prompt, false)?.ok_or_else(|| {
            Error::Usage(format!(
                "standard input ended before {name}: give the two codes as arguments \
                 (`pictl token verify SERIAL CODE NEXT-CODE`) or one per line"
            ))
        })?;
        let code = Secret::new(code.expose().trim());
        check_otp(name, code.expose()).map_err(Error::Usage)?;
        Ok(code)
    };
    let first = ask("Code the token shows now: ", "the code")?;
    let next = ask(
        "Next code (totp: wait until the app shows a new one; hotp: press again): ",
        "the next code",
    )?;
    Ok((first, next))
}
