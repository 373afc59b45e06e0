//! `--responder-cmd`: any ykchalresp-compatible program computes the response.
//!
//! The command line is split on whitespace (no shell), the challenge is appended in lowercase
//! hex — what `ykchalresp -2 -x` expects — and the first line of its output must be the 40
//! hex digits of the HMAC. The challenge is visible in `ps` while the program runs, as it is
//! for yubikey-luks' own `ykchalresp` call; the PC/SC path does not have that exposure.

use super::{is_response, to_hex};
use crate::error::Error;
use crate::output::sanitize;
use std::process::{Command, Stdio};
use zeroize::Zeroizing;

/// The program and its fixed arguments.
pub fn split_command(cmd: &str) -> Result<Vec<&str>, Error> {
    let parts: Vec<&str> = cmd.split_whitespace().collect();
    if parts.is_empty() {
        return Err(Error::Usage(
            "--responder-cmd is empty: give the program and its arguments, e.g. \
             --responder-cmd 'ykchalresp -2 -x'"
                .into(),
        ));
    }
    Ok(parts)
}

/// The response in the program's output: its first line, 40 hex digits (lowercased).
pub fn parse_output(cmd: &str, stdout: &[u8]) -> Result<Zeroizing<String>, Error> {
    let line = stdout.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = std::str::from_utf8(line).unwrap_or_default().trim();
    let response = Zeroizing::new(line.to_ascii_lowercase());
    if is_response(&response) {
        return Ok(response);
    }
    // The output is not shown: were it a near-miss, it would be most of a passphrase.
    Err(Error::Failed(format!(
        "the responder command `{}` did not print a 40-hex-digit HMAC-SHA1 on its first line: \
         it must behave like `ykchalresp -2 -x HEXCHALLENGE` (check the command and that the \
         Yubikey's slot is programmed for HMAC-SHA1 challenge-response)",
        sanitize(cmd)
    )))
}

/// Run `cmd HEX(challenge)` and return the response it prints.
pub fn response(cmd: &str, challenge: &[u8]) -> Result<Zeroizing<String>, Error> {
    let parts = split_command(cmd)?;
    let shown = sanitize(cmd);
    let hex = to_hex(challenge);
    let child = Command::new(parts[0])
        .args(&parts[1..])
        .arg(hex.as_str())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::Failed(format!(
                "cannot run the responder command `{shown}`: {e}; check its path (ykchalresp \
                 comes with `apt-get install yubikey-personalization`)"
            ))
        })?;
    let output = child.wait_with_output().map_err(|e| {
        Error::Failed(format!(
            "cannot read the output of the responder command `{shown}`: {e}; run it by hand \
             to see what it does"
        ))
    })?;
    let (status, stdout, stderr) = (output.status, Zeroizing::new(output.stdout), output.stderr);
    if !status.success() {
        let said = String::from_utf8_lossy(&stderr);
        let said = said.trim();
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(": {}", sanitize(said))
        };
        return Err(Error::Failed(format!(
            "the responder command `{shown}` failed ({status}){said}; is the Yubikey plugged \
             in, and is its slot programmed for HMAC-SHA1 challenge-response?"
        )));
    }
    parse_output(cmd, &stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "04b30deb5dcf72ad8aa0a9afa9b4d24d71617db5";

    #[test]
    fn the_first_line_is_the_response_lowercased() {
        let got = parse_output("x", format!("{R}\n").as_bytes()).unwrap();
        assert_eq!(got.as_str(), R);
        let got = parse_output("x", format!("  {}\r\nmore\n", R.to_uppercase()).as_bytes());
        assert_eq!(got.unwrap().as_str(), R);
        assert_eq!(parse_output("x", R.as_bytes()).unwrap().as_str(), R);
    }

    #[test]
    fn anything_else_is_an_error_naming_the_command_without_echoing_the_output() {
        for bad in [
            "",
            "\n",
            "04b30deb5dcf72ad8aa0a9afa9b4d24d71617db",
            "04b30deb5dcf72ad8aa0a9afa9b4d24d71617db5ff",
            "HMAC-SHA1(stdin)= 04b30deb5dcf72ad8aa0a9afa9b4d24d71617db5",
            "Yubikey core error: timeout\n",
        ] {
            let err = parse_output("my-responder -2", bad.as_bytes()).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("`my-responder -2`"), "{text}");
            assert!(!text.contains("04b30deb5dcf"), "{text}");
        }
    }

    #[test]
    fn commands_are_split_on_whitespace() {
        assert_eq!(
            split_command("  ykchalresp   -2\t-x ").unwrap(),
            ["ykchalresp", "-2", "-x"]
        );
        assert!(matches!(split_command(" "), Err(Error::Usage(_))));
    }

    #[test]
    fn the_challenge_is_appended_in_lowercase_hex() {
        // `echo` stands in for ykchalresp: it prints the arguments it was given.
        let err = response("echo -n", b"\xAB\x01").unwrap_err();
        // "ab01" is not a response; the error proves the command ran and names it.
        assert!(err.to_string().contains("`echo -n`"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("resp.sh");
        std::fs::write(
            &script,
            format!("#!/bin/sh\n[ \"$1\" = ab01 ] && echo {R}\n"),
        )
        .unwrap();
        let cmd = format!("sh {}", script.display());
        assert_eq!(response(&cmd, b"\xab\x01").unwrap().as_str(), R);
        assert!(response(&cmd, b"\xab\x02").is_err());
    }

    #[test]
    fn a_failing_or_missing_program_is_an_error_naming_it() {
        let err = response("false", b"pw").unwrap_err();
        assert!(err.to_string().contains("`false` failed"), "{err}");
        let err = response("/nonexistent/ykchalresp -2 -x", b"pw").unwrap_err();
        assert!(err.to_string().contains("cannot run"), "{err}");
    }
}
