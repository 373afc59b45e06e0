//! pi's manual pages and shell completions, generated from the code they document: pictl's and
//! pid's clap commands, pam_pi's table of module arguments (`pam_pi::options::OPTIONS`) and
//! pid.toml's key reference (`pid::config::reference`), each tied to its parser by tests in its
//! own crate. A flag, option or key cannot be added without showing up here.
//!
//! `generate(DIR)` writes `DIR/man/` (`pictl.1` and a page per subcommand, `pid.8`,
//! `pam_pi.8`, `pid.toml.5`) and `DIR/completions/` (bash, zsh and fish for `pictl` and
//! `pid`). The Debian packages install exactly these files.
//!
//! Every word of the pages goes through the `roff` crate (clap_mangen's own), which escapes
//! what roff would read as a request or an escape; nothing here concatenates raw roff with text.
//! The finished pages are plain ASCII: other characters become groff's escapes (`ascii`).

mod completions;
mod page;
mod pam_pi_page;
mod pictl_pages;
mod pid_page;
mod pid_toml_page;

use std::path::{Path, PathBuf};

/// The manual pages' footer: which package and version they document.
pub(crate) fn source() -> String {
    format!("pi {}", env!("CARGO_PKG_VERSION"))
}

/// The date argument of every page's `.TH`: none, so the pages depend on the code alone (a build
/// on another day gives the same files). Written as roff's empty quoted argument, because the
/// `roff` crate leaves an empty argument out and the source and manual would move into its place.
pub(crate) const NO_DATE: &str = "\"\"";

/// The manual's name in every page's header.
pub(crate) const MANUAL: &str = "pi Manual";

/// What every page refers to, as `(name, section)`.
pub(crate) const SEE_ALSO: [(&str, &str); 4] = [
    ("pictl", "1"),
    ("pid", "8"),
    ("pam_pi", "8"),
    ("pid.toml", "5"),
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create {}: {source}; check that its parent exists and is writable", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot render {page}: {source}")]
    Render {
        page: &'static str,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}; check the free space and permissions of its directory", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Write every manual page and completion file under `out` (created if missing); returns the
/// files written.
pub fn generate(out: &Path) -> Result<Vec<PathBuf>, Error> {
    let man = out.join("man");
    let completions = out.join("completions");
    for dir in [&man, &completions] {
        std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
            path: dir.clone(),
            source,
        })?;
    }
    let mut files = Vec::new();
    let render = |page: &'static str| move |source| Error::Render { page, source };
    let mut pages = pictl_pages::pages().map_err(render("pictl.1"))?;
    pages.push((
        "pid.8".to_owned(),
        pid_page::page().map_err(render("pid.8"))?,
    ));
    pages.push(("pam_pi.8".to_owned(), pam_pi_page::page()));
    pages.push(("pid.toml.5".to_owned(), pid_toml_page::page()));
    for (name, text) in pages {
        files.push(write(&man.join(name), ascii(&text).as_bytes())?);
    }
    for (name, text) in completions::scripts() {
        files.push(write(&completions.join(name), &text)?);
    }
    Ok(files)
}

/// `roff` with every character beyond ASCII written as groff's escape for it (`—` as
/// `\[u2014]`): troff reads its input as Latin-1 unless a preprocessor converts it, so the help
/// texts' dashes and ellipses would otherwise be mangled wherever the page is read without
/// man(1)'s preconv.
fn ascii(roff: &str) -> String {
    let mut out = String::with_capacity(roff.len());
    for c in roff.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    out
}

fn write(path: &Path, bytes: &[u8]) -> Result<PathBuf, Error> {
    std::fs::write(path, bytes).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })?;
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_beyond_ascii_become_groff_escapes() {
        assert_eq!(
            ascii("a — b… 8 × p"),
            "a \\[u2014] b\\[u2026] 8 \\[u00D7] p"
        );
        assert_eq!(ascii(".TH \\- x"), ".TH \\- x");
    }
}
