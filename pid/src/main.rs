//! `pid --config FILE` runs the daemon in the foreground; `pid --check-config FILE` validates a
//! configuration and prints the effective one.

use clap::Parser;
use pid::cli::{Args, EXIT_FAILED, EXIT_INVALID};
use pid::error::{chain, PidError};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = args.key_fingerprint {
        return match pid::crypto::fingerprint_of_file(&path) {
            Ok(fingerprint) => {
                println!("{fingerprint}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("pid: {}", chain(&e));
                ExitCode::from(EXIT_INVALID)
            }
        };
    }
    if let Some(path) = args.check_config {
        return match pid::config::Config::load(&path) {
            Ok(c) => {
                for w in c.warnings().into_iter().chain(c.host_warnings()) {
                    eprintln!("pid: warning: {w}");
                }
                let problems = pid::trust::check_directories(&c);
                if !problems.is_empty() {
                    for p in problems {
                        eprintln!("pid: would refuse to start: {}", chain(&p));
                    }
                    return ExitCode::from(EXIT_INVALID);
                }
                // pid would start, but without these realms (and a reload would be refused).
                if let Err(e) = pid::realm::Realms::load(c.realms_config()) {
                    eprintln!("pid: {}", chain(&e));
                    return ExitCode::from(EXIT_INVALID);
                }
                print!("{}", c.to_toml());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("pid: {}", chain(&PidError::from(e)));
                ExitCode::from(EXIT_INVALID)
            }
        };
    }
    // Before anything starts a thread (see `pid::systemd`).
    let systemd = pid::systemd::Environment::take();
    let config = match pid::config::Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            say(&format!("pid: {}", chain(&PidError::from(e))));
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let logging = pid::init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            say(&format!("pid: cannot start the async runtime: {e}"));
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let result = runtime.block_on(pid::run_daemon(config, args.config, systemd));
    if let Err(e) = &result {
        if logging.to_journal() {
            tracing::error!("{}", chain(e));
        }
    }
    // Write out what is queued before the last line, and before the exit.
    drop(logging);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say(&format!("pid: {}", chain(&e)));
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// One line on stderr for whoever started pid. Unlike `eprintln!` it cannot panic: stderr
/// may be a terminal that is gone.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
