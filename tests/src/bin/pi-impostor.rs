//! pi-impostor: a process that takes the daemon's place on a socket and answers like a daemon
//! that lets everybody in. It is what an unprivileged user could run if the socket's directory
//! were theirs; the suite starts it as uid 65534 to show that pam_pi and pictl refuse it.
//!
//! `pi-impostor SOCKET LOG`: listens on SOCKET (mode 0666), answers `Status` with a status,
//! prompts once for an OTP and accepts whatever comes back, answers anything else with
//! "done", and appends the kind of every request it receives to LOG, one line each.

use protocol::admin::AdminResponse;
use protocol::frame::{read_frame, write_frame};
use protocol::{Outcome, Prompt, Request, Response, StatusInfo};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [socket, log] = args.as_slice() else {
        eprintln!("usage: pi-impostor SOCKET LOG");
        return ExitCode::from(2);
    };
    let listener = match bind(socket) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("pi-impostor: cannot listen on {}: {e}", socket.display());
            return ExitCode::FAILURE;
        }
    };
    let log = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        Ok(f) => Arc::new(Mutex::new(f)),
        Err(e) => {
            eprintln!("pi-impostor: cannot open {}: {e}", log.display());
            return ExitCode::FAILURE;
        }
    };
    for stream in listener.incoming().flatten() {
        let log = log.clone();
        std::thread::spawn(move || serve(stream, &log));
    }
    ExitCode::SUCCESS
}

fn bind(socket: &Path) -> std::io::Result<UnixListener> {
    let listener = UnixListener::bind(socket)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

fn serve(mut stream: UnixStream, log: &Mutex<std::fs::File>) {
    while let Ok(request) = read_frame::<_, Request>(&mut stream) {
        if let Ok(mut file) = log.lock() {
            let _ = writeln!(file, "{}", kind(&request));
        }
        if write_frame(&mut stream, &answer(&request)).is_err() {
            return;
        }
    }
}

fn kind(request: &Request) -> &'static str {
    match request {
        Request::AuthBegin(_) => "AuthBegin",
        Request::AuthContinue { .. } => "AuthContinue",
        Request::Status => "Status",
        Request::Admin(_) => "Admin",
        Request::SshKeys { .. } => "SshKeys",
        Request::PinChange { .. } => "PinChange",
    }
}

fn answer(request: &Request) -> Response {
    match request {
        Request::Status => Response::Status(StatusInfo {
            version: "impostor".into(),
            protocol: protocol::paths::PROTOCOL_VERSION,
            store_path: String::new(),
            tokens: 0,
            uptime_secs: 0,
            caller_is_admin: true,
            notices: Vec::new(),
        }),
        Request::AuthBegin(_) => Response::AuthStep {
            session: 1,
            prompt: Prompt::Secret {
                text: "OTP: ".into(),
            },
        },
        Request::AuthContinue { .. } => Response::AuthDone(Outcome::Accept {
            message: String::new(),
        }),
        _ => Response::Admin(AdminResponse::Done {
            message: "done".into(),
        }),
    }
}
