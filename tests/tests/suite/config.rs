//! `pid --check-config`: an administrator's typo must be caught before the daemon is restarted,
//! and every configuration we ship must pass it.

use pi_tests::bins;
use pi_tests::process::{run, CmdOutput};
use std::path::Path;
use std::process::Command;

fn check_config(path: &Path) -> CmdOutput {
    let mut cmd = Command::new(bins::pid());
    cmd.arg("--check-config").arg(path);
    run(cmd, b"")
}

#[test]
fn unknown_key_is_an_error_that_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pid.toml");
    std::fs::write(&path, "version = 1\nsocet = \"/run/pi/pid.sock\"\n").unwrap();
    let out = check_config(&path);
    assert_ne!(
        out.code(),
        0,
        "a misspelt key was accepted\n{}",
        out.describe()
    );
    assert!(
        out.text().contains("socet"),
        "the error must name the key\n{}",
        out.describe()
    );
}

#[test]
fn unknown_key_inside_a_section_is_an_error_that_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pid.toml");
    std::fs::write(&path, "version = 1\n[tokens]\nhotp_windw = 20\n").unwrap();
    let out = check_config(&path);
    assert_ne!(out.code(), 0, "{}", out.describe());
    assert!(out.text().contains("hotp_windw"), "{}", out.describe());
}

#[test]
fn empty_file_is_valid_and_shows_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pid.toml");
    std::fs::write(&path, "").unwrap();
    let out = check_config(&path);
    assert_eq!(out.code(), 0, "every key has a default\n{}", out.describe());
    for default in ["/run/pi/pid.sock", "/var/lib/pi", "/etc/pi/enckey"] {
        assert!(
            out.stdout.contains(default),
            "effective config lacks {default}\n{}",
            out.describe()
        );
    }
}

#[test]
fn missing_file_is_an_error_that_names_the_file() {
    let out = check_config(Path::new("/nonexistent/pi/pid.toml"));
    assert_ne!(out.code(), 0, "{}", out.describe());
    assert!(
        out.text().contains("/nonexistent/pi/pid.toml"),
        "{}",
        out.describe()
    );
}

#[test]
fn shipped_example_config_is_valid() {
    let path = bins::examples_dir().join("pid.toml");
    assert!(path.is_file(), "{} is missing", path.display());
    let out = check_config(&path);
    assert_eq!(out.code(), 0, "{}", out.describe());
}

#[test]
fn every_shipped_toml_config_is_valid() {
    let mut checked = 0;
    for entry in std::fs::read_dir(bins::examples_dir()).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = check_config(&path);
            assert_eq!(out.code(), 0, "{}\n{}", path.display(), out.describe());
            checked += 1;
        }
    }
    assert!(checked > 0, "no *.toml under examples/");
}

#[test]
fn a_bad_line_in_a_user_file_is_an_error_that_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let people = dir.path().join("people");
    std::fs::write(
        &people,
        "alice:x:4242:4242::/:/bin/false\nbad user:x:1:1::/:/\n",
    )
    .unwrap();
    let path = dir.path().join("pid.toml");
    std::fs::write(
        &path,
        format!(
            "[resolvers.people]\ntype = \"flatfile\"\nfile = \"{}\"\n\
             [resolvers.local]\ntype = \"passwd\"\n\
             [realms.default]\nresolvers = [\"local\"]\n[realms.ext]\nresolvers = [\"people\"]\n",
            people.display()
        ),
    )
    .unwrap();
    let out = check_config(&path);
    assert_eq!(out.code(), 2, "{}", out.describe());
    assert!(
        out.stderr
            .contains(&format!("{}, line 2", people.display())),
        "{}",
        out.describe()
    );
}
