//! `pi-docgen --out DIR` run as the Debian package build runs it, and what it writes checked
//! with the real tools: groff (what man(1) renders with), bash, zsh and fish.

#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failed setup should stop the test loudly

use pid::config::reference::SECTIONS;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory with everything `pi-docgen --out` wrote, removed when dropped.
struct Generated {
    dir: tempfile::TempDir,
}

impl Generated {
    fn new() -> Generated {
        let dir = tempfile::tempdir().unwrap();
        // A directory that does not exist yet: pi-docgen creates it.
        let out = dir.path().join("docgen");
        let run = Command::new(env!("CARGO_BIN_EXE_pi-docgen"))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "pi-docgen failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        Generated { dir }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join("docgen").join(relative)
    }

    fn pages(&self) -> Vec<PathBuf> {
        let mut pages: Vec<PathBuf> = std::fs::read_dir(self.path("man"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        pages.sort();
        pages
    }

    /// The page as man(1) shows it, in plain ASCII on lines long enough not to break a name.
    fn rendered(&self, page: &str) -> String {
        let out = Command::new("groff")
            .args(["-man", "-Tascii", "-P-cbou", "-rLL=250n", "-rHY=0"])
            .arg(self.path(&format!("man/{page}")))
            .output()
            .unwrap();
        assert!(out.status.success(), "{page}");
        String::from_utf8(out.stdout).unwrap()
    }
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn the_packages_files_are_written_with_the_names_they_are_installed_under() {
    let generated = Generated::new();
    let man = file_names(&generated.path("man"));
    for page in [
        "pictl.1",
        "pictl-token.1",
        "pictl-token-enroll.1",
        "pictl-auth-test.1",
        "pictl-status.1",
        "pid.8",
        "pam_pi.8",
        "pid.toml.5",
    ] {
        assert!(man.contains(&page.to_owned()), "{page} missing: {man:?}");
    }
    assert_eq!(
        file_names(&generated.path("completions")),
        [
            "_pictl",
            "_pid",
            "pictl.bash",
            "pictl.fish",
            "pid.bash",
            "pid.fish"
        ]
    );
}

#[test]
fn every_page_renders_without_a_warning() {
    let generated = Generated::new();
    for page in generated.pages() {
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&page)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{}: {stderr}",
            page.display()
        );
    }
}

#[test]
fn every_page_has_the_whatis_entry_apropos_finds_it_by() {
    let generated = Generated::new();
    for page in generated.pages() {
        let out = Command::new("lexgrog").arg(&page).output().unwrap();
        let entry = String::from_utf8_lossy(&out.stdout);
        let name = page.file_name().unwrap().to_str().unwrap();
        let (stem, _) = name.rsplit_once('.').unwrap();
        assert!(
            out.status.success() && entry.contains(&format!(": \"{stem} - ")),
            "{name}: {entry}"
        );
    }
}

#[test]
fn every_page_refers_to_the_other_pages() {
    let generated = Generated::new();
    for page in generated.pages() {
        let name = page.file_name().unwrap().to_str().unwrap().to_owned();
        let (stem, section) = name.rsplit_once('.').unwrap();
        let own = format!("{stem}({section})");
        let text = generated.rendered(&name);
        let see_also = text
            .split("SEE ALSO")
            .nth(1)
            .unwrap_or_else(|| panic!("{name} has no SEE ALSO"));
        for other in ["pictl(1)", "pid(8)", "pam_pi(8)", "pid.toml(5)"] {
            assert!(
                other == own || see_also.contains(other),
                "{name} does not refer to {other}"
            );
        }
    }
}

/// Every one of `expected` appears in `text`.
fn assert_mentions(text: &str, expected: &[&str]) {
    for expected in expected {
        assert!(text.contains(expected), "{expected}:\n{text}");
    }
}

/// Whether `text` has a tagged paragraph for `term`: a line starting with it.
fn has_entry(text: &str, term: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim_start();
        l == term || l.starts_with(&format!("{term} "))
    })
}

#[test]
fn pictl_1_lists_every_command_group_with_the_global_options_exit_status_and_environment() {
    let generated = Generated::new();
    let text = generated.rendered("pictl.1");
    for sub in pictl::command().get_subcommands() {
        let name = sub.get_name();
        if name == "help" {
            continue;
        }
        assert!(
            text.contains(&format!("pictl-{name}(1)")),
            "{name}:\n{text}"
        );
        assert!(
            generated.path(&format!("man/pictl-{name}.1")).exists(),
            "pictl-{name}.1"
        );
    }
    assert_mentions(
        &text,
        &[
            "--socket",
            "--daemon-uid",
            "--json",
            "EXIT STATUS",
            "PI_SOCKET",
            "PI_DAEMON_UID",
            "EXAMPLES",
        ],
    );
}

#[test]
fn a_subcommand_page_shows_how_it_is_typed_its_options_and_examples() {
    let generated = Generated::new();
    let text = generated.rendered("pictl-token-enroll.1");
    assert_mentions(
        &text,
        &[
            "pictl token enroll",
            "--otpkey",
            "--qr-png",
            "EXAMPLES",
            "sudo pictl token enroll totp --user alice",
        ],
    );
}

#[test]
fn pid_8_has_options_files_signals_exit_status_and_environment() {
    let generated = Generated::new();
    let text = generated.rendered("pid.8");
    assert_mentions(
        &text,
        &[
            "--config",
            "--check-config",
            "--key-fingerprint",
            "/etc/pi/pid.toml",
            "/etc/pi/enckey",
            "/var/lib/pi",
            "/run/pi/pid.sock",
            "SIGHUP",
            "SIGTERM",
            "EXIT STATUS",
            "LISTEN_FDS",
            "NOTIFY_SOCKET",
            "CREDENTIALS_DIRECTORY",
        ],
    );
    for (code, _) in pid::cli::EXIT_STATUS {
        assert!(has_entry(&text, &code.to_string()), "{code}:\n{text}");
    }
}

#[test]
fn pam_pi_8_documents_every_option_the_module_accepts() {
    let generated = Generated::new();
    let text = generated.rendered("pam_pi.8");
    for option in pam_pi::options::OPTIONS {
        let written = match option.value {
            Some(value) => format!("{}={value}", option.name),
            None => option.name.to_owned(),
        };
        assert!(text.contains(&written), "{written}:\n{text}");
    }
    assert_mentions(
        &text,
        &[
            "PAM_SUCCESS",
            "PAM_AUTH_ERR",
            "PAM_AUTHINFO_UNAVAIL",
            "PAM_USER_UNKNOWN",
            "PAM_IGNORE",
            "AuthenticationMethods publickey,keyboard-interactive",
            "auth required pam_pi.so",
        ],
    );
}

#[test]
fn pid_toml_5_documents_every_key_of_the_reference() {
    let generated = Generated::new();
    let text = generated.rendered("pid.toml.5");
    for section in SECTIONS {
        if !section.header.is_empty() {
            assert!(text.contains(section.header), "{}", section.header);
        }
        for key in section.keys {
            assert!(
                has_entry(&text, key.key),
                "{} {}:\n{text}",
                section.header,
                key.key
            );
        }
    }
    assert!(text.contains("passOnNoToken") && text.contains("manage_machine_tokens"));
}

/// `shell args... FILE` exits 0 with nothing on stderr for each completion script of `shell`.
fn check_syntax(generated: &Generated, files: [&str; 2], shell: &str, args: &[&str]) {
    for file in files {
        let path = generated.path(&format!("completions/{file}"));
        let out = Command::new(shell)
            .args(args)
            .arg(&path)
            .output()
            .unwrap_or_else(|e| panic!("{shell}: {e} (bash tests/install-deps.sh installs it)"));
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{shell} {file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_completions_are_valid_scripts_of_their_shells() {
    let generated = Generated::new();
    check_syntax(&generated, ["pictl.bash", "pid.bash"], "bash", &["-n"]);
    check_syntax(&generated, ["_pictl", "_pid"], "zsh", &["-n"]);
    check_syntax(
        &generated,
        ["pictl.fish", "pid.fish"],
        "fish",
        &["--no-execute"],
    );
}

#[test]
fn bash_completes_pictls_commands() {
    let generated = Generated::new();
    let script = generated.path("completions/pictl.bash");
    // Load the completion as bash-completion would, and ask it for `pictl tok<TAB>`.
    let probe = format!(
        "source {}; COMP_WORDS=(pictl tok); COMP_CWORD=1; COMP_LINE='pictl tok'; \
         COMP_POINT=9; _pictl pictl tok pictl; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let out = Command::new("bash").args(["-c", &probe]).output().unwrap();
    let replies = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        replies.trim(),
        "token",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
