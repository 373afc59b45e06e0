//! `pictl import oath|google-authenticator|pskc`: read the files, check every line, then send the
//! tokens to the daemon in batches, with progress on stderr for long imports.

use super::Ctx;
use crate::cli::import::{ImportCommand, ImportGoogleArgs, ImportOathArgs, ImportPskcArgs};
use crate::error::{Error, Exit};
use crate::import::{self, Parsed};
use crate::output::sanitize;
use protocol::admin::MAX_IMPORT_BATCH;
use protocol::frame::encode_value;
use protocol::{
    AdminRequest, AdminResponse, ImportOutcome, ImportRequest, ImportedToken, Response, UserRef,
};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Request bodies stay well under the 64 KiB frame limit.
const MAX_BATCH_BYTES: usize = 48 * 1024;
/// Tokens with a PIN cost an argon2 hash each in the daemon: fewer per request, so one request
/// stays far from the answer timeout below.
const MAX_PINS_PER_BATCH: usize = 8;
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// Token files are small; a usersfile of a million lines is ~80 MiB.
const MAX_FILE_BYTES: u64 = 1 << 30;
const MAX_GOOGLE_FILE_BYTES: u64 = 64 * 1024;

pub fn run(ctx: &mut Ctx<'_, '_>, command: ImportCommand) -> Result<Exit, Error> {
    let (parsed, dry_run, pool) = match command {
        ImportCommand::Oath(args) => (read_oath(&args)?, args.common.dry_run, None),
        ImportCommand::GoogleAuthenticator(args) => {
            (read_google(&args)?, args.common.dry_run, None)
        }
        ImportCommand::Pskc(args) => {
            let parsed = read_pskc(ctx, &args)?;
            (parsed, args.common.dry_run, args.pool)
        }
    };
    for note in &parsed.notes {
        ctx.note(&format!("note: {note}"))?;
    }
    if dry_run {
        return dry_run_report(ctx, &parsed.tokens, pool.as_deref());
    }
    send(ctx, parsed.tokens, pool.as_deref())
}

fn read_oath(args: &ImportOathArgs) -> Result<Parsed, Error> {
    let text = read_text(&args.file, MAX_FILE_BYTES)?;
    let name = args.file.display().to_string();
    import::oath_usersfile(&name, &text, args.common.realm.as_deref()).map_err(refused)
}

fn read_pskc(ctx: &mut Ctx<'_, '_>, args: &ImportPskcArgs) -> Result<Parsed, Error> {
    use crate::import::pskc::{self, Decryption, Owner};
    let text = read_text(&args.file, pskc::MAX_FILE_BYTES)?;
    let hex_key = |text: &str, from: &str| {
        hex::decode(text.trim())
            .map(Zeroizing::new)
            .map_err(|_| Error::Usage(format!("{from}: the key must be hex digits")))
    };
    let decryption = if let Some(key) = &args.key {
        Decryption::Key(hex_key(key, "--key")?)
    } else if let Some(path) = &args.key_file {
        let text = Zeroizing::new(read_text(path, 4096)?);
        let first = text.lines().next().unwrap_or("");
        Decryption::Key(hex_key(first, &path.display().to_string())?)
    } else if args.password {
        let asked = crate::input::ask(ctx.io, "Password of the PSKC file: ", true)?;
        Decryption::Password(
            asked
                .ok_or_else(|| Error::Usage("--password: no password on standard input".into()))?,
        )
    } else {
        Decryption::None
    };
    let owner = Owner {
        user: args.user.as_deref(),
        realm: args.common.realm.as_deref(),
        pool: args.pool.is_some(),
    };
    pskc::read(&args.file.display().to_string(), &text, &decryption, &owner).map_err(refused)
}

fn read_google(args: &ImportGoogleArgs) -> Result<Parsed, Error> {
    if args.user.is_some() && args.files.len() > 1 {
        return Err(Error::Usage(
            "--user names the owner of one file; give one file, or leave --user out to take \
             each file's owner"
                .into(),
        ));
    }
    let mut all = Parsed::default();
    let mut errors = Vec::new();
    for path in &args.files {
        let name = path.display().to_string();
        let (text, owner) = match read_owned_text(path, MAX_GOOGLE_FILE_BYTES) {
            Ok(read) => read,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let login = match &args.user {
            Some(user) => user.clone(),
            None => match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(owner)) {
                Ok(Some(user)) => user.name,
                _ => {
                    errors.push(format!(
                        "{name}: its owner (uid {owner}) has no account name; give --user"
                    ));
                    continue;
                }
            },
        };
        let user = UserRef {
            login,
            realm: args.common.realm.clone(),
        };
        match import::google_authenticator(&name, &text, user) {
            Ok(parsed) => {
                all.tokens.extend(parsed.tokens);
                for note in parsed.notes {
                    if !all.notes.contains(&note) {
                        all.notes.push(note);
                    }
                }
            }
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(all)
    } else {
        Err(refused(errors))
    }
}

fn refused(errors: Vec<String>) -> Error {
    Error::Usage(format!(
        "{}\nnothing was imported: fix what is named above and run the import again",
        errors
            .iter()
            .map(|e| sanitize(e).into_owned())
            .collect::<Vec<_>>()
            .join("\n")
    ))
}

fn read_text(path: &Path, limit: u64) -> Result<String, Error> {
    read_owned_text(path, limit)
        .map(|(text, _)| text)
        .map_err(Error::Usage)
}

/// The file's text and owner. Symbolic links are refused (a user's link to someone else's
/// secret file must not give them that file's token), and so is anything but a regular file.
fn read_owned_text(path: &Path, limit: u64) -> Result<(String, u32), String> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let name = path.display();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(nix::libc::ELOOP) => format!("{name}: is a symbolic link; give the file itself"),
            _ => format!("{name}: cannot open: {e}"),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| format!("{name}: cannot read: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{name}: not a regular file"));
    }
    if meta.len() > limit {
        return Err(format!(
            "{name}: {} bytes is more than a token file of this kind holds ({limit} at most)",
            meta.len()
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{name}: cannot read: {e}"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("{name}: not text (it is not valid UTF-8)"))?;
    Ok((text, meta.uid()))
}

/// Whether `token` goes into the pool: with `--pool`, a token for nobody (empty login).
fn pooled(token: &ImportedToken, pool: Option<&str>) -> bool {
    pool.is_some() && token.user.login.is_empty()
}

fn dry_run_report(
    ctx: &mut Ctx<'_, '_>,
    tokens: &[ImportedToken],
    pool: Option<&str>,
) -> Result<Exit, Error> {
    let users: BTreeSet<(&str, Option<&str>)> = tokens
        .iter()
        .filter(|t| !pooled(t, pool))
        .map(|t| (t.user.login.as_str(), t.user.realm.as_deref()))
        .collect();
    let into_pool = tokens.iter().filter(|t| pooled(t, pool)).count();
    if ctx.json {
        let list: Vec<_> = tokens
            .iter()
            .map(|t| {
                let mut row = json!({
                    "source": t.source,
                    "user": t.user.login,
                    "realm": t.user.realm,
                    "type": t.token_type.as_str(),
                });
                if pooled(t, pool) {
                    row["pool"] = json!(pool);
                }
                row
            })
            .collect();
        ctx.print_json(&json!({
            "dry_run": true,
            "users": users.len(),
            "pool": into_pool,
            "tokens": list,
        }))?;
    } else {
        let pool_part = match pool {
            Some(realm) if into_pool > 0 => {
                format!(
                    " and {into_pool} into the pool of realm {}",
                    sanitize(realm)
                )
            }
            _ => String::new(),
        };
        ctx.print(&format!(
            "{} token(s) for {} user(s){pool_part} would be imported; nothing was changed\n",
            tokens.len() - into_pool,
            users.len()
        ))?;
    }
    Ok(Exit::Ok)
}

/// Batches of at most `MAX_IMPORT_BATCH` tokens, `MAX_BATCH_BYTES` encoded and
/// `MAX_PINS_PER_BATCH` PINs.
fn batches_of(tokens: Vec<ImportedToken>) -> Result<Vec<Vec<ImportedToken>>, Error> {
    let mut out: Vec<Vec<ImportedToken>> = Vec::new();
    let (mut current, mut bytes, mut pins) = (Vec::new(), 0usize, 0usize);
    for token in tokens {
        let size = encode_value(&token)
            .map_err(|e| Error::Failed(format!("cannot encode a token: {e}")))?
            .len();
        let pin = usize::from(token.pin.is_some());
        if !current.is_empty()
            && (current.len() == MAX_IMPORT_BATCH
                || bytes + size > MAX_BATCH_BYTES
                || pins + pin > MAX_PINS_PER_BATCH)
        {
            out.push(std::mem::take(&mut current));
            (bytes, pins) = (0, 0);
        }
        if size > MAX_BATCH_BYTES {
            return Err(Error::Usage(format!(
                "{}: this token is too large to send ({size} bytes)",
                token.source
            )));
        }
        bytes += size;
        pins += pin;
        current.push(token);
    }
    if !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

struct Tally {
    imported: usize,
    present: usize,
    refused: usize,
}

/// Send the tokens in batches: those for users first, then (`pool`) those for the pool.
fn send(
    ctx: &mut Ctx<'_, '_>,
    tokens: Vec<ImportedToken>,
    pool: Option<&str>,
) -> Result<Exit, Error> {
    let total = tokens.len();
    let (for_pool, for_users): (Vec<_>, Vec<_>) = tokens.into_iter().partition(|t| pooled(t, pool));
    // Only the JSON document lists every token; a million rows are not kept for a summary.
    let users: Vec<String> = match ctx.json {
        true => for_users
            .iter()
            .chain(&for_pool)
            .map(|t| t.user.login.clone())
            .collect(),
        false => Vec::new(),
    };
    let mut batches: Vec<(Option<&str>, Vec<ImportedToken>)> = Vec::new();
    batches.extend(batches_of(for_users)?.into_iter().map(|b| (None, b)));
    batches.extend(batches_of(for_pool)?.into_iter().map(|b| (pool, b)));
    ctx.connect_with(protocol::paths::DEFAULT_CONNECT_TIMEOUT, ANSWER_TIMEOUT)?;
    let started = Instant::now();
    let mut last_progress = started;
    let mut tally = Tally {
        imported: 0,
        present: 0,
        refused: 0,
    };
    let mut rows = Vec::with_capacity(users.len());
    let mut done = 0usize;
    let mut refusals = String::new();
    for (into, batch) in batches {
        let sent = batch.len();
        let batch = Box::new(ImportRequest { tokens: batch });
        let request = match into {
            Some(realm) => AdminRequest::TokenImportPool {
                realm: realm.to_owned(),
                batch,
            },
            None => AdminRequest::TokenImport(batch),
        };
        let results = match ctx.admin(request, "token import")? {
            AdminResponse::Imported(results) if results.len() == sent => results,
            other => return Err(Error::unexpected("token import", &Response::Admin(other))),
        };
        for result in results {
            let (status, detail) = match &result.outcome {
                ImportOutcome::Enrolled { serial } => {
                    tally.imported += 1;
                    ("imported", ("serial", serial))
                }
                ImportOutcome::Present { serial } => {
                    tally.present += 1;
                    ("present", ("serial", serial))
                }
                ImportOutcome::Refused { message } => {
                    tally.refused += 1;
                    refusals.push_str(&format!(
                        "{}: {}\n",
                        sanitize(&result.source),
                        sanitize(message)
                    ));
                    ("refused", ("message", message))
                }
            };
            if ctx.json {
                let user = users.get(done).map_or("", String::as_str);
                let mut row = json!({"source": result.source, "user": user, "status": status});
                row[detail.0] = json!(detail.1);
                if let Some(realm) = into {
                    row["pool"] = json!(realm);
                }
                rows.push(row);
            }
            done += 1;
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001);
            ctx.note(&format!("import: {done} of {total} tokens ({rate:.0}/s)"))?;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let summary = format!(
        "{} imported, {} already present, {} refused ({total} in {seconds:.1} s)",
        tally.imported, tally.present, tally.refused
    );
    if ctx.json {
        ctx.print_json(&json!({
            "imported": tally.imported,
            "present": tally.present,
            "refused": tally.refused,
            "tokens": rows,
        }))?;
    } else {
        if !refusals.is_empty() {
            ctx.print(&refusals)?;
        }
        ctx.print(&format!("{summary}\n"))?;
    }
    Ok(if tally.refused == 0 {
        Exit::Ok
    } else {
        Exit::Failed
    })
}
