//! `pictl token …`: enrollment and administration of tokens.

use super::Ctx;
use crate::cli::token::{
    AssignArgs, EnrollArgs, ListArgs, OtpsArgs, PoolArgs, ResyncArgs, SerialArg, SetArgs,
    TokenCommand, TokenTypeArg, VerifyArgs,
};
use crate::cli::values::{check_hex_key, check_otp, PinArg};
use crate::error::{Error, Exit};
use crate::qr::{self, Colors};
use crate::{input, output, secret_file};
use protocol::admin::MAX_PAGE;
use protocol::{
    AdminRequest, AdminResponse, EnrollRequest, Enrolled, Response, Secret, TokenInfo,
    TokenSettings, TokenType, UserRef,
};
use serde_json::json;
use zeroize::Zeroizing;

pub fn run(ctx: &mut Ctx<'_, '_>, command: TokenCommand) -> Result<Exit, Error> {
    use AdminRequest as R;
    match command {
        TokenCommand::Enroll(args) => enroll(ctx, *args),
        TokenCommand::List(args) => list(ctx, &args),
        TokenCommand::Show(SerialArg { serial }) => show(ctx, serial),
        TokenCommand::Delete(SerialArg { serial }) => simple(
            ctx,
            R::TokenDelete {
                serial: serial.clone(),
            },
            serial,
            "deleted",
        ),
        TokenCommand::Enable(SerialArg { serial }) => simple(
            ctx,
            R::TokenEnable {
                serial: serial.clone(),
            },
            serial,
            "enabled",
        ),
        TokenCommand::Disable(SerialArg { serial }) => simple(
            ctx,
            R::TokenDisable {
                serial: serial.clone(),
            },
            serial,
            "disabled",
        ),
        TokenCommand::Revoke(SerialArg { serial }) => simple(
            ctx,
            R::TokenRevoke {
                serial: serial.clone(),
            },
            serial,
            "revoked",
        ),
        TokenCommand::Reset(SerialArg { serial }) => simple(
            ctx,
            R::TokenReset {
                serial: serial.clone(),
            },
            serial,
            "has its fail counter cleared",
        ),
        TokenCommand::Unassign(SerialArg { serial }) => simple(
            ctx,
            R::TokenUnassign {
                serial: serial.clone(),
            },
            serial,
            "is unassigned",
        ),
        TokenCommand::Set(args) => set(ctx, args),
        TokenCommand::Resync(args) => resync(ctx, args),
        TokenCommand::Verify(args) => verify(ctx, args),
        TokenCommand::Assign(args) => assign(ctx, args),
        TokenCommand::Otps(args) => otps(ctx, args),
        TokenCommand::Pool(args) => pool(ctx, args),
    }
}

fn user_ref(login: &str, realm: Option<&str>) -> UserRef {
    UserRef {
        login: login.to_owned(),
        realm: realm.map(str::to_owned),
    }
}

/// The PIN as given, or read from stdin for `-`. Read before connecting: the daemon must not
/// wait on a human typing.
pub(super) fn resolve_pin(
    ctx: &mut Ctx<'_, '_>,
    pin: Option<PinArg>,
) -> Result<Option<Secret>, Error> {
    match pin {
        None => Ok(None),
        Some(PinArg::Value(pin)) => Ok(Some(pin)),
        Some(PinArg::Stdin) => input::read_pin(ctx.io).map(Some),
    }
}

fn unexpected(what: &'static str, answer: AdminResponse) -> Error {
    Error::unexpected(what, &Response::Admin(answer))
}

fn enroll(ctx: &mut Ctx<'_, '_>, args: EnrollArgs) -> Result<Exit, Error> {
    if let Some(key) = &args.otpkey {
        check_hex_key(key.expose()).map_err(Error::Usage)?;
    }
    if args.period.is_some()
        && !matches!(
            args.token_type,
            TokenTypeArg::Totp | TokenTypeArg::Daypassword
        )
    {
        return Err(Error::Usage(
            "--period applies to totp and daypassword tokens only: leave it out".into(),
        ));
    }
    if args.token_type != TokenTypeArg::Yubikey && args.digits.is_some_and(|d| d != 6 && d != 8) {
        return Err(Error::Usage(
            "OTPs have 6 or 8 digits: use --digits 6 or --digits 8".into(),
        ));
    }
    if args.token_type == TokenTypeArg::Totp && args.period.is_some_and(|p| p != 30 && p != 60) {
        return Err(Error::Usage(
            "the TOTP time step is 30 or 60 seconds: use --period 30 or --period 60".into(),
        ));
    }
    let images = qr_images(&args)?;
    let stdin_reads = [&args.pin, &args.motppin, &args.password]
        .iter()
        .filter(|a| matches!(a, Some(PinArg::Stdin)))
        .count();
    if stdin_reads > 1 {
        return Err(Error::Usage(
            "only one of --pin, --motppin and --password can read stdin (`-`)".into(),
        ));
    }
    let sshkey = match (args.sshkey, &args.sshkey_file) {
        // Refused here already, so a private key pasted by mistake never leaves this process.
        (Some(k), _) if k.contains("PRIVATE KEY") => {
            return Err(Error::Usage(
                "--sshkey got a private key: give the public key (the .pub file)".into(),
            ))
        }
        (Some(k), _) => Some(k),
        (None, Some(path)) => Some(read_sshkey_file(path)?),
        (None, None) => args
            .yubikey_piv
            .map(crate::piv::read_slot_key)
            .transpose()?,
    };
    let pin = resolve_pin(ctx, args.pin)?;
    let motppin = resolve_pin(ctx, args.motppin)?;
    let password = resolve_pin(ctx, args.password)?;
    let request = EnrollRequest {
        token_type: Some(args.token_type.into()),
        user: args
            .user
            .as_deref()
            .map(|u| user_ref(u, args.realm.as_deref())),
        serial: args.serial,
        otpkey: args.otpkey,
        digits: args.digits,
        hash: args.hash.map(Into::into),
        period: args.period,
        pin,
        description: args.description,
        motppin,
        password,
        count: args.count,
        service: args.service,
        questions: args.questions,
        ocrasuite: args.ocrasuite,
        email: args.email,
        phone: args.phone,
        tokenid: args.tokenid,
        foureyes: args.foureyes,
        separator: args.separator,
        sshkey,
    };
    let request = match args.pool {
        Some(realm) => AdminRequest::TokenEnrollPool {
            realm,
            spec: Box::new(request),
        },
        None => AdminRequest::TokenEnroll(Box::new(request)),
    };
    let (enrolled, verified) = enrolled_from(ctx.admin(request, "token enroll")?, "token enroll")?;
    let written: Vec<(&QrImage, Result<(), String>)> = images
        .iter()
        .map(|image| (image, image.write(enrolled.otpauth_url.expose())))
        .collect();
    let failed: Vec<String> = written
        .iter()
        .filter_map(|(_, result)| result.as_ref().err().cloned())
        .collect();
    if ctx.json {
        let files: Vec<_> = written
            .iter()
            .map(|(image, result)| match result {
                Ok(()) => json!({ "path": image.path, "format": image.format.name() }),
                Err(e) => json!({ "path": image.path, "format": image.format.name(), "error": e }),
            })
            .collect();
        let mut doc = enrolled_json(&enrolled, verified);
        doc["codes"] = json!(enrolled
            .codes
            .iter()
            .map(|c| c.expose())
            .collect::<Vec<_>>());
        doc["qr_files"] = json!(files);
        ctx.print_json(&doc)?;
        return Ok(if failed.is_empty() {
            Exit::Ok
        } else {
            Exit::Failed
        });
    }
    let mut text = enrolled_for_people(ctx, &enrolled, args.qr, args.no_qr);
    for (image, result) in &written {
        if result.is_ok() {
            text.0.push_str(&format!(
                "The QR code is in {} ({}, mode 0600): delete it once it is scanned.\n",
                output::sanitize(&image.path.display().to_string()),
                image.format.name()
            ));
        }
    }
    ctx.print(&text.0)?;
    if let Some(problem) = text.1 {
        ctx.note(&problem)?;
    }
    if !verified {
        ctx.note(&format!(
            "The token logs in only once its user typed two consecutive codes: `pictl token \
             verify {}` (the verify_enrollment policy).",
            output::sanitize(&enrolled.token.serial)
        ))?;
    }
    if !failed.is_empty() {
        return Err(Error::Failed(format!(
            "token {} is enrolled and its key is shown above, but {}",
            output::sanitize(&enrolled.token.serial),
            failed.join("; and ")
        )));
    }
    Ok(Exit::Ok)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QrFormat {
    Png,
    Svg,
}

impl QrFormat {
    fn name(self) -> &'static str {
        match self {
            QrFormat::Png => "PNG",
            QrFormat::Svg => "SVG",
        }
    }
}

/// A QR code image to write for the new token.
#[derive(Debug)]
struct QrImage {
    format: QrFormat,
    path: std::path::PathBuf,
}

impl QrImage {
    /// Draw `url` and write the image as a new file. The message names the path and the
    /// problem, never the URL (it holds the key).
    fn write(&self, url: &str) -> Result<(), String> {
        if url.is_empty() {
            return Err(format!(
                "the daemon gave no otpauth URL for it, so {} was not written",
                self.path.display()
            ));
        }
        let bytes = Zeroizing::new(match self.format {
            QrFormat::Png => qr::png(url)?,
            QrFormat::Svg => qr::svg(url)?.into_bytes(),
        });
        secret_file::write_new(&self.path, &bytes)
    }
}

/// The images --qr-png and --qr-svg ask for, checked before anything is enrolled: a token type
/// with a QR code, distinct paths, and new files in existing directories.
fn qr_images(args: &EnrollArgs) -> Result<Vec<QrImage>, Error> {
    let images: Vec<QrImage> = [(QrFormat::Png, &args.qr_png), (QrFormat::Svg, &args.qr_svg)]
        .into_iter()
        .filter_map(|(format, path)| path.clone().map(|path| QrImage { format, path }))
        .collect();
    if images.is_empty() {
        return Ok(images);
    }
    if !matches!(
        args.token_type,
        TokenTypeArg::Hotp | TokenTypeArg::Totp | TokenTypeArg::Daypassword
    ) {
        return Err(Error::Usage(format!(
            "--qr-png and --qr-svg draw the otpauth URL of hotp, totp and daypassword tokens; a \
             {} token has none: leave them out",
            TokenType::from(args.token_type).as_str()
        )));
    }
    if let [a, b] = images.as_slice() {
        if a.path == b.path {
            return Err(Error::Usage(
                "--qr-png and --qr-svg name the same file: give each its own path".into(),
            ));
        }
    }
    for image in &images {
        secret_file::check_new(&image.path).map_err(Error::Usage)?;
    }
    Ok(images)
}

/// A public key file: its one key line (comments and blank lines skipped), bounded in size.
fn read_sshkey_file(path: &std::path::Path) -> Result<String, Error> {
    const MAX: u64 = 64 * 1024;
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
    if meta.len() > MAX {
        return Err(Error::Usage(format!(
            "{} is larger than {MAX} bytes; give a .pub file with one public key",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
    if text.contains("PRIVATE KEY") {
        return Err(Error::Usage(format!(
            "{} is a private key: give the public key (the .pub file next to it)",
            path.display()
        )));
    }
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    match lines.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(Error::Usage(format!(
            "{} holds no public key",
            path.display()
        ))),
        _ => Err(Error::Usage(format!(
            "{} holds {} keys; one token holds one key (enroll one token per key)",
            path.display(),
            lines.len()
        ))),
    }
}

/// The enrollment in an answer to `TokenEnroll`, and whether the token is in use already
/// (`false`: it waits for two consecutive codes).
pub(super) fn enrolled_from(
    answer: AdminResponse,
    what: &'static str,
) -> Result<(Box<Enrolled>, bool), Error> {
    match answer {
        AdminResponse::Enrolled(enrolled) => Ok((enrolled, true)),
        AdminResponse::EnrolledUnverified(enrolled) => Ok((enrolled, false)),
        other => Err(unexpected(what, other)),
    }
}

/// The `--json` document of an enrollment: the key and URL (shown this once) and the token.
pub(super) fn enrolled_json(enrolled: &Enrolled, verified: bool) -> serde_json::Value {
    let t = &enrolled.token;
    json!({
        "serial": t.serial,
        "type": t.token_type.as_str(),
        "otpauth_url": enrolled.otpauth_url.expose(),
        "otpkey_base32": enrolled.otpkey_base32.expose(),
        "verified": verified,
        "token": output::token_json(t),
    })
}

/// The enrollment as people read it: `enrolled_text` with the QR code drawn when stdout is a
/// terminal (`--qr` forces it, `--no-qr` leaves it out; a token with nothing for an
/// authenticator app, such as spass, has no URL to draw) in colours only a terminal shows.
pub(super) fn enrolled_for_people(
    ctx: &Ctx<'_, '_>,
    enrolled: &Enrolled,
    qr: bool,
    no_qr: bool,
) -> (Zeroizing<String>, Option<String>) {
    let terminal = ctx.io.stdout_is_terminal;
    let draw_qr = !no_qr && (qr || terminal) && !enrolled.otpauth_url.is_empty();
    let colors = if terminal {
        Colors::Ansi
    } else {
        Colors::Plain
    };
    enrolled_text(enrolled, draw_qr, colors)
}

/// The human report of an enrollment, and a remark if the QR code could not be drawn. The text
/// holds the key, so it is wiped from memory once printed.
fn enrolled_text(
    e: &Enrolled,
    draw_qr: bool,
    colors: Colors,
) -> (Zeroizing<String>, Option<String>) {
    let t = &e.token;
    let user = output::user_at(t.user.as_deref(), t.realm.as_deref());
    let mut text = Zeroizing::new(String::new());
    let mut problem = None;
    let lines = [
        ("serial", t.serial.as_str()),
        ("type", t.token_type.as_str()),
        ("user", user.as_str()),
        ("otpauth URL", e.otpauth_url.expose()),
        ("key (base32)", e.otpkey_base32.expose()),
    ];
    for (label, value) in lines {
        if !value.is_empty() || label == "user" {
            text.push_str(&format!("{label:<12}  {}\n", output::sanitize(value)));
        }
    }
    for (label, value) in &t.details {
        text.push_str(&format!("{label:<12}  {}\n", output::sanitize(value)));
    }
    if !e.codes.is_empty() {
        text.push_str(&codes_text(t.token_type, &e.codes));
    }
    if e.otpauth_url.is_empty() {
        let sshd_line;
        let advice = match t.token_type {
            TokenType::Spass => {
                "The spass token has no key for an app: the PIN is what the user types."
            }
            TokenType::Paper => {
                "Print the list now: it is shown only this once. Codes are used in order."
            }
            TokenType::Registration => {
                "Give the user this code now: it is shown only this once and works for one login."
            }
            TokenType::Motp => {
                "Type the secret and the mOTP PIN into the mOTP app; the secret is shown only once."
            }
            TokenType::Pw => "The user types the PIN, then the password.",
            TokenType::Tan => {
                "Print the list now: it is shown only this once. Each TAN works once, in any order."
            }
            TokenType::Indexedsecret => {
                "The user types the PIN, then the characters of the secret the prompt asks for."
            }
            TokenType::FourEyes => {
                "The user types the codes (PIN and OTP) of the required tokens, separated by the \
                 separator."
            }
            TokenType::Yubico => {
                "Touch the Yubikey at the prompt; the Yubico validation server confirms it."
            }
            TokenType::Email | TokenType::Sms => {
                "The user types the PIN; the code is sent and asked for at the next prompt."
            }
            TokenType::Ocra => {
                "The user types the PIN, then the device's response to the challenge shown. A \
                 generated key must be loaded into the device (shown only once)."
            }
            TokenType::Question => {
                "The user types the PIN, then the answer to the question the prompt asks."
            }
            TokenType::Yubikey => {
                "Touch the Yubikey at the prompt (after the PIN, if one is set). A generated key \
                 must be written to the key first: ykpersonalize -1 -a KEY (shown only once)."
            }
            TokenType::Applspec => {
                "The password works only through its PAM service, after the PIN if one is set."
            }
            TokenType::Sshkey => {
                sshd_line = format!(
                    "Attach the key to a host for sshd: pictl machine attach SERIAL --app ssh \
                     --user LOGIN (sshd_config: AuthorizedKeysCommand {} ssh keys %u).",
                    output::sanitize(&own_path())
                );
                &sshd_line
            }
            _ => "This token has no key for an app.",
        };
        text.push_str(&format!("\n{advice}\n"));
        return (text, problem);
    }
    if draw_qr {
        match qr::render(e.otpauth_url.expose(), colors) {
            Ok(drawing) => {
                let drawing = Zeroizing::new(drawing);
                text.push('\n');
                text.push_str(&drawing);
            }
            Err(why) => {
                problem = Some(format!("{why}; type the base32 key into the app instead"));
            }
        }
    }
    let login = t.user.as_deref().unwrap_or("USER");
    text.push_str(&format!(
        "\nThe key is shown only this once. Scan the QR code or type the key into the \
         authenticator app,\nthen check the token with `pictl auth test --user {}`.\n",
        output::sanitize(login)
    ));
    (text, problem)
}

/// The absolute path this pictl runs from, for lines to copy into sshd_config (sshd runs the
/// command by its absolute path); where the README installs pictl if it cannot be told.
fn own_path() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.to_str().map(str::to_owned))
        .unwrap_or_else(|| "/usr/local/sbin/pictl".into())
}

/// The codes an enrollment shows once: a numbered list for paper, one line otherwise.
fn codes_text(kind: TokenType, codes: &[Secret]) -> String {
    let mut out = String::from("\n");
    if matches!(kind, TokenType::Paper | TokenType::Tan) {
        for (i, c) in codes.iter().enumerate() {
            out.push_str(&format!("{:>4}  {}\n", i + 1, output::sanitize(c.expose())));
        }
        return out;
    }
    let label = match kind {
        TokenType::Registration => "registration code",
        TokenType::Motp => "mOTP secret",
        TokenType::Pw | TokenType::Applspec => "password",
        TokenType::Yubikey => "AES key (hex)",
        TokenType::Indexedsecret => "secret",
        TokenType::Ocra => "key (hex)",
        _ => "code",
    };
    for c in codes {
        out.push_str(&format!("{label}  {}\n", output::sanitize(c.expose())));
    }
    out
}

fn list(ctx: &mut Ctx<'_, '_>, args: &ListArgs) -> Result<Exit, Error> {
    if let Some(realm) = &args.pool {
        let tokens = fetch_pages(ctx, |after| AdminRequest::TokenListPool {
            realm: realm.clone(),
            after,
            limit: MAX_PAGE,
        })?;
        if ctx.json {
            let tokens: Vec<_> = tokens.iter().map(output::token_json).collect();
            ctx.print_json(&json!({ "tokens": tokens }))?;
        } else if tokens.is_empty() {
            ctx.print(&format!(
                "the pool of realm {} is empty; add tokens with `pictl token pool SERIAL {}`\n",
                output::sanitize(realm),
                output::sanitize(realm)
            ))?;
        } else {
            ctx.print(&output::token_table(&tokens))?;
        }
        return Ok(Exit::Ok);
    }
    let user = args
        .user
        .as_deref()
        .map(|u| user_ref(u, args.realm.as_deref()));
    // The daemon filters by user; a realm alone is filtered here.
    let realm_only = if user.is_none() {
        args.realm.as_deref()
    } else {
        None
    };
    let mut tokens = fetch_all(ctx, user)?;
    if let Some(realm) = realm_only {
        tokens.retain(|t| t.realm.as_deref() == Some(realm));
    }
    if ctx.json {
        let tokens: Vec<_> = tokens.iter().map(output::token_json).collect();
        ctx.print_json(&json!({ "tokens": tokens }))?;
    } else if tokens.is_empty() {
        ctx.print("no tokens found; enroll one with `pictl token enroll totp --user USER`\n")?;
    } else {
        ctx.print(&output::token_table(&tokens))?;
    }
    Ok(Exit::Ok)
}

/// Every page of the listing. Serials come in order, so each page must start after the last:
/// a daemon that repeats a page would otherwise keep pictl looping forever.
pub fn fetch_all(ctx: &mut Ctx<'_, '_>, user: Option<UserRef>) -> Result<Vec<TokenInfo>, Error> {
    fetch_pages(ctx, |after| AdminRequest::TokenList {
        user: user.clone(),
        after,
        limit: MAX_PAGE,
    })
}

/// Every page of a listing whose request `page` makes for the serial to continue after.
fn fetch_pages(
    ctx: &mut Ctx<'_, '_>,
    page: impl Fn(Option<String>) -> AdminRequest,
) -> Result<Vec<TokenInfo>, Error> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        match ctx.admin(page(after.clone()), "token list")? {
            AdminResponse::Tokens { tokens, next } => {
                all.extend(tokens);
                match next {
                    None => return Ok(all),
                    Some(next) if after.as_ref().is_some_and(|a| next <= *a) => {
                        return Err(Error::Failed(format!(
                            "the daemon's token list went back to serial {} instead of moving \
                             on; this is a pid bug: report it with `pid --version`",
                            output::sanitize(&next)
                        )));
                    }
                    Some(next) => after = Some(next),
                }
            }
            other => return Err(unexpected("token list", other)),
        }
    }
}

fn show(ctx: &mut Ctx<'_, '_>, serial: String) -> Result<Exit, Error> {
    let token = match ctx.admin(AdminRequest::TokenShow { serial }, "token show")? {
        AdminResponse::Token(token) => token,
        other => return Err(unexpected("token show", other)),
    };
    if ctx.json {
        ctx.print_json(&output::token_json(&token))?;
    } else {
        ctx.print(&output::token_details(&token))?;
    }
    Ok(Exit::Ok)
}

/// A request whose answer is a confirmation (or the changed token).
fn simple(
    ctx: &mut Ctx<'_, '_>,
    request: AdminRequest,
    serial: String,
    done: &str,
) -> Result<Exit, Error> {
    let what = AdminRequest::name(&request);
    let default = format!("token {serial} {done}");
    let (message, token) = match super::auth::admin_with_proof(ctx, request, what)? {
        AdminResponse::Done { message } if message.trim().is_empty() => (default, None),
        AdminResponse::Done { message } => (message, None),
        AdminResponse::Token(token) => (default, Some(token)),
        other => return Err(unexpected(what, other)),
    };
    if ctx.json {
        let mut doc = json!({ "serial": serial, "message": message });
        if let Some(token) = token {
            doc["token"] = output::token_json(&token);
        }
        ctx.print_json(&doc)?;
    } else {
        ctx.print(&format!("{}\n", output::sanitize_text(&message)))?;
    }
    Ok(Exit::Ok)
}

fn set(ctx: &mut Ctx<'_, '_>, args: SetArgs) -> Result<Exit, Error> {
    if args.is_empty() {
        return Err(Error::Usage(
            "nothing to change: give at least one of --pin, --maxfail, --description, \
             --count-auth-max, --count-auth-success-max, --validity-start, --validity-end, \
             --hotp-window, --totp-window"
                .into(),
        ));
    }
    if let (Some(start), Some(end)) = (
        args.validity_start.and_then(|b| b.0),
        args.validity_end.and_then(|b| b.0),
    ) {
        if start >= end {
            return Err(Error::Usage(format!(
                "--validity-start ({} UTC) is not before --validity-end ({} UTC): swap them or \
                 correct one",
                output::utc(start),
                output::utc(end)
            )));
        }
    }
    let pin = resolve_pin(ctx, args.pin)?;
    let settings = TokenSettings {
        pin,
        maxfail: args.maxfail,
        description: args.description,
        count_auth_max: args.count_auth_max,
        count_auth_success_max: args.count_auth_success_max,
        validity_start: args.validity_start.map(|b| b.0),
        validity_end: args.validity_end.map(|b| b.0),
        count_window: args.hotp_window,
        time_window: args.totp_window,
    };
    let request = AdminRequest::TokenSet {
        serial: args.serial.clone(),
        settings: Box::new(settings),
    };
    simple(ctx, request, args.serial, "updated")
}

fn resync(ctx: &mut Ctx<'_, '_>, args: ResyncArgs) -> Result<Exit, Error> {
    check_otp("OTP1", args.otp1.expose()).map_err(Error::Usage)?;
    check_otp("OTP2", args.otp2.expose()).map_err(Error::Usage)?;
    let request = AdminRequest::TokenResync {
        serial: args.serial.clone(),
        otp1: args.otp1,
        otp2: args.otp2,
    };
    simple(ctx, request, args.serial, "is resynchronised")
}

fn verify(ctx: &mut Ctx<'_, '_>, args: VerifyArgs) -> Result<Exit, Error> {
    if let Some(path) = &args.recovery_file {
        secret_file::check_new(path).map_err(Error::Usage)?;
    }
    let codes = match (args.code, args.next) {
        (Some(code), Some(next)) => {
            check_otp("CODE", code.expose()).map_err(Error::Usage)?;
            check_otp("NEXT-CODE", next.expose()).map_err(Error::Usage)?;
            Some((code, next))
        }
        _ => None,
    };
    super::enroll::verify(ctx, &args.serial, codes, args.recovery_file.as_deref())
}

fn otps(ctx: &mut Ctx<'_, '_>, args: OtpsArgs) -> Result<Exit, Error> {
    let request = AdminRequest::TokenOtps {
        serial: args.serial,
        count: args.count,
    };
    let (serial, otps) = match ctx.admin(request, "token otps")? {
        AdminResponse::Otps { serial, otps } => (serial, otps),
        other => return Err(unexpected("token otps", other)),
    };
    if ctx.json {
        let list: Vec<_> = otps
            .iter()
            .map(|o| json!({ "counter": o.counter, "valid_from": o.valid_from, "otp": o.otp.expose() }))
            .collect();
        ctx.print_json(&json!({ "serial": serial, "otps": list }))?;
        return Ok(Exit::Ok);
    }
    let mut text = format!("next codes of token {}:\n", output::sanitize(&serial));
    for o in &otps {
        let when = o
            .valid_from
            .map(|t| format!("  from {}", output::utc(t)))
            .unwrap_or_default();
        text.push_str(&format!(
            "  {:>10}  {}{when}\n",
            o.counter,
            output::sanitize(o.otp.expose())
        ));
    }
    ctx.print(&text)?;
    Ok(Exit::Ok)
}

fn pool(ctx: &mut Ctx<'_, '_>, args: PoolArgs) -> Result<Exit, Error> {
    let done = match &args.realm {
        Some(realm) => format!("is in the pool of realm {}", output::sanitize(realm)),
        None => "is in no pool".to_owned(),
    };
    let request = AdminRequest::TokenPool {
        serial: args.serial.clone(),
        realm: args.realm,
    };
    simple(ctx, request, args.serial, &done)
}

fn assign(ctx: &mut Ctx<'_, '_>, args: AssignArgs) -> Result<Exit, Error> {
    let user = user_ref(&args.user, args.realm.as_deref());
    let done = format!(
        "is assigned to {}",
        output::user_at(Some(&args.user), args.realm.as_deref())
    );
    let request = AdminRequest::TokenAssign {
        serial: args.serial.clone(),
        user,
    };
    simple(ctx, request, args.serial, &done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::token;

    fn enrolled() -> Enrolled {
        Enrolled {
            token: token("TOTP0001"),
            otpauth_url: Secret::new("otpauth://totp/pi:alice?secret=JBSWY3DPEHPK3PXP&issuer=pi"),
            otpkey_base32: Secret::new("JBSWY3DPEHPK3PXP"),
            codes: Vec::new(),
        }
    }

    #[test]
    fn enrollment_report_shows_serial_url_key_and_qr() {
        let (text, problem) = enrolled_text(&enrolled(), true, Colors::Plain);
        assert!(problem.is_none());
        for needle in [
            "serial        TOTP0001",
            "type          totp",
            "user          alice@default",
            "otpauth URL   otpauth://totp/pi:alice?secret=JBSWY3DPEHPK3PXP",
            "key (base32)  JBSWY3DPEHPK3PXP",
            "pictl auth test --user alice",
            "████",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{}", *text);
        }
    }

    #[test]
    fn enrollment_report_without_qr_has_no_blocks() {
        let (text, _) = enrolled_text(&enrolled(), false, Colors::Plain);
        assert!(!text.contains('█'), "{}", *text);
        assert!(text.contains("JBSWY3DPEHPK3PXP"));
    }

    #[test]
    fn request_names_match_the_commands() {
        assert_eq!(
            AdminRequest::name(&AdminRequest::TokenRevoke { serial: "S".into() }),
            "token revoke"
        );
        assert_eq!(
            AdminRequest::name(&AdminRequest::AuditShow {
                user: None,
                before: None,
                limit: 1
            }),
            "audit show"
        );
    }
}
