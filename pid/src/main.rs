//! `pid --config FILE` runs the daemon in the foreground; `pid --check-config FILE` validates a
//! configuration and prints the effective one.

use clap::Parser;
use pid::error::{chain, PidError};
use std::path::PathBuf;
use std::process::ExitCode;

/// pi daemon: owns the token store and answers pam_pi and pictl on a Unix socket.
#[derive(Parser)]
#[command(
    version,
    after_help = "Examples:\n  pid --config /etc/pi/pid.toml\n  pid --check-config /etc/pi/pid.toml"
)]
struct Args {
    /// Run in the foreground with this configuration (an empty file means all defaults).
    #[arg(long, value_name = "FILE", default_value = protocol::paths::DEFAULT_CONFIG)]
    config: PathBuf,
    /// Validate FILE, print the effective configuration, and exit (0 = valid, 2 = invalid).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    check_config: Option<PathBuf>,
    /// Print the fingerprint of a key file (e.g. a backup of enckey_file) and exit. pid names
    /// the fingerprint of the key a store needs when that key is missing or wrong.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["config", "check_config"])]
    key_fingerprint: Option<PathBuf>,
}

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
                ExitCode::from(2)
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
                    return ExitCode::from(2);
                }
                // pid would start, but without these realms (and a reload would be refused).
                if let Err(e) = pid::realm::Realms::load(c.realms_config()) {
                    eprintln!("pid: {}", chain(&e));
                    return ExitCode::from(2);
                }
                print!("{}", c.to_toml());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("pid: {}", chain(&PidError::from(e)));
                ExitCode::from(2)
            }
        };
    }
    // Before anything starts a thread (see `pid::systemd`).
    let systemd = pid::systemd::Environment::take();
    let config = match pid::config::Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            say(&format!("pid: {}", chain(&PidError::from(e))));
            return ExitCode::from(2);
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
            return ExitCode::FAILURE;
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
            ExitCode::FAILURE
        }
    }
}

/// One line on stderr for whoever started pid. Unlike `eprintln!` it cannot panic: stderr
/// may be a terminal that is gone.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
