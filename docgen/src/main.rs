//! `pi-docgen --out DIR`: write pi's manual pages to `DIR/man/` and its shell completions to
//! `DIR/completions/` (see `pi_docgen::generate`).

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Generate pi's manual pages and shell completions from the code they document.
#[derive(Parser)]
#[command(name = "pi-docgen", version)]
struct Args {
    /// Write DIR/man/*.{1,5,8} and DIR/completions/* (DIR is created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match pi_docgen::generate(&args.out) {
        Ok(files) => {
            println!(
                "pi-docgen: wrote {} files under {}",
                files.len(),
                args.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pi-docgen: {e}");
            ExitCode::FAILURE
        }
    }
}
