//! Reading answers, PINs and OTPs from stdin.
//!
//! Threat: a PIN typed at a terminal with echo on ends up on the screen and in scrollback, and a
//! PIN on the command line is visible to every local user in `ps`. Secrets are therefore read
//! from stdin, with echo off on a terminal; the terminal settings are restored by a drop guard,
//! so an error while reading cannot leave the terminal without echo. (A signal that kills pictl
//! mid-prompt bypasses the guard; `stty sane` repairs the terminal then.)

use crate::error::Error;
use crate::Io;
use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg, Termios};
use protocol::Secret;
use std::io::Stdin;
use zeroize::Zeroizing;

/// Echo is off while this lives; dropping it restores the saved terminal settings.
struct EchoOff {
    stdin: Stdin,
    saved: Termios,
}

impl EchoOff {
    fn new() -> Result<EchoOff, Error> {
        let stdin = std::io::stdin();
        let failed = |e: nix::Error| Error::Input(std::io::Error::from(e));
        let saved = tcgetattr(&stdin).map_err(failed)?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        // Still echo the newline, so the next output starts on a fresh line.
        quiet.local_flags.insert(LocalFlags::ECHONL);
        tcsetattr(&stdin, SetArg::TCSAFLUSH, &quiet).map_err(failed)?;
        Ok(EchoOff { stdin, saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // Nothing sensible is left to do if restoring fails; the error was the terminal's.
        let _ = tcsetattr(&self.stdin, SetArg::TCSAFLUSH, &self.saved);
    }
}

/// Read one line from stdin; `None` at end of input. The line ending is removed, nothing else.
/// With `hidden` and a terminal on stdin, the typed text is not echoed.
pub fn read_line(io: &mut Io<'_>, hidden: bool) -> Result<Option<Secret>, Error> {
    let _echo = if hidden && io.stdin_is_terminal {
        Some(EchoOff::new()?)
    } else {
        None
    };
    let mut line = Zeroizing::new(String::new());
    let n = io.stdin.read_line(&mut line).map_err(Error::Input)?;
    if n == 0 {
        return Ok(None);
    }
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    Ok(Some(Secret::new(trimmed)))
}

/// Show `prompt` on stderr and read one answer.
pub fn ask(io: &mut Io<'_>, prompt: &str, hidden: bool) -> Result<Option<Secret>, Error> {
    write!(io.stderr, "{prompt}").map_err(Error::Output)?;
    io.stderr.flush().map_err(Error::Output)?;
    read_line(io, hidden)
}

/// The PIN for `--pin -`: one line from stdin. On a terminal pictl prompts and asks twice, since
/// a mistyped PIN that nobody saw would lock the user out.
pub fn read_pin(io: &mut Io<'_>) -> Result<Secret, Error> {
    let missing = || {
        Error::Usage(
            "`--pin -` reads the PIN from standard input, but it was empty: pipe the PIN in \
             (e.g. `printf '%s\\n' \"$PIN\" | pictl ...`) or give --pin PIN"
                .into(),
        )
    };
    if !io.stdin_is_terminal {
        return read_line(io, true)?.ok_or_else(missing);
    }
    let first = ask(io, "New PIN: ", true)?.ok_or_else(missing)?;
    let second = ask(io, "New PIN again: ", true)?.ok_or_else(missing)?;
    if first != second {
        return Err(Error::Usage(
            "the two PINs differ: run the command again and type the same PIN twice".into(),
        ));
    }
    Ok(first)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Run `f` with `input` as stdin; returns its result and what it wrote to stderr.
    pub(crate) fn with_io<T>(
        input: &str,
        terminal: bool,
        f: impl FnOnce(&mut Io<'_>) -> T,
    ) -> (T, String) {
        let mut stdin = input.as_bytes();
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let mut io = Io {
            stdin: &mut stdin,
            stdout: &mut stdout,
            stderr: &mut stderr,
            stdin_is_terminal: terminal,
            stdout_is_terminal: false,
        };
        let result = f(&mut io);
        (result, String::from_utf8(stderr).unwrap())
    }

    #[test]
    fn line_endings_are_removed_but_spaces_kept() {
        let (got, _) = with_io(" 1234 \r\nnext\n", false, |io| {
            read_line(io, false).unwrap()
        });
        assert_eq!(got.unwrap().expose(), " 1234 ");
    }

    #[test]
    fn end_of_input_is_none() {
        let (got, _) = with_io("", false, |io| read_line(io, true).unwrap());
        assert!(got.is_none());
    }

    #[test]
    fn piped_pin_is_read_without_prompt() {
        let (pin, stderr) = with_io("9876\n", false, |io| read_pin(io).unwrap());
        assert_eq!(pin.expose(), "9876");
        assert!(stderr.is_empty(), "{stderr}");
    }

    #[test]
    fn missing_piped_pin_is_a_usage_error() {
        let (err, _) = with_io("", false, |io| read_pin(io).unwrap_err());
        assert!(matches!(err, Error::Usage(_)), "{err:?}");
        assert!(err.to_string().contains("--pin"), "{err}");
    }
}
