//! `pictl`: parse the command line, run it, exit with its status (see `pictl --help`).

use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let stdin_is_terminal = stdin.is_terminal();
    let stdout_is_terminal = stdout.is_terminal();
    let (mut input, mut output, mut errors) = (stdin.lock(), stdout.lock(), stderr.lock());
    let mut io = pictl::Io {
        stdin: &mut input,
        stdout: &mut output,
        stderr: &mut errors,
        stdin_is_terminal,
        stdout_is_terminal,
    };
    pictl::run_args(std::env::args_os(), &mut io).into()
}
