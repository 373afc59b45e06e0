#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! The QR codes `pictl token enroll` draws, read back by a real scanner (`zbarimg`, zbar-tools)
//! the way a user's screen or file would show them: the terminal text turned into an image in a
//! light scheme (dark text on a light background) and a dark one (light on dark), with the ANSI
//! colours it sets applied; the PNG and SVG files as written, and placed on a dark page.
//!
//! zbarimg reads an inverted code (light modules on dark) only with `-Stest-inverted`, as many
//! phone scanners do not at all: every check reads a normal code, without it.

use pi_tests::{CmdOutput, Daemon};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Clone, Copy, Debug)]
enum Scheme {
    /// Dark text on a light background.
    Light,
    /// Light text on a dark background.
    Dark,
}

/// Grey levels of the colours an SGR sequence can set (xterm's palette, as grey).
fn sgr_grey(code: u32) -> Option<u8> {
    match code {
        30 | 40 => Some(0),
        37 | 47 => Some(229),
        90 | 100 => Some(127),
        97 | 107 => Some(255),
        31..=36 | 41..=46 => Some(100),
        91..=96 | 101..=106 => Some(180),
        _ => None,
    }
}

/// The lines of `text` that draw the QR code (from the first line with a block character to the
/// last), each as (foreground, background, character) cells after applying SGR escapes.
fn qr_cells(text: &str, scheme: Scheme) -> Vec<Vec<(u8, u8, char)>> {
    let (default_fg, default_bg) = match scheme {
        Scheme::Light => (20, 250),
        Scheme::Dark => (230, 30),
    };
    let (mut fg, mut bg) = (default_fg, default_bg);
    let mut lines = Vec::new();
    for line in text.split('\n') {
        let mut cells = Vec::new();
        let mut chars = line.trim_end_matches('\r').chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                assert_eq!(
                    chars.next(),
                    Some('['),
                    "only SGR escapes expected: {line:?}"
                );
                let mut params = String::new();
                for p in chars.by_ref() {
                    if p == 'm' {
                        break;
                    }
                    params.push(p);
                }
                for code in params.split(';').map(|p| p.parse::<u32>().unwrap_or(0)) {
                    match code {
                        0 => (fg, bg) = (default_fg, default_bg),
                        30..=37 | 90..=97 => fg = sgr_grey(code).unwrap(),
                        40..=47 | 100..=107 => bg = sgr_grey(code).unwrap(),
                        _ => {}
                    }
                }
            } else {
                cells.push((fg, bg, c));
            }
        }
        lines.push(cells);
    }
    let drawn = |cells: &Vec<(u8, u8, char)>| cells.iter().any(|c| "█▀▄".contains(c.2));
    // A line of words between two codes shows as a line of background.
    for cells in lines.iter_mut().filter(|cells| !drawn(cells)) {
        cells.clear();
    }
    let first = lines
        .iter()
        .position(drawn)
        .expect("no QR code in the output");
    let last = lines.iter().rposition(drawn).unwrap();
    lines[first..=last].to_vec()
}

/// The terminal text as a greyscale PGM image: a character cell is one module wide and two
/// high, four pixels a module, with a margin of the scheme's background all around.
fn text_to_pgm(text: &str, scheme: Scheme) -> Vec<u8> {
    const PX: usize = 4;
    const MARGIN: usize = 8;
    let background = match scheme {
        Scheme::Light => 250,
        Scheme::Dark => 30,
    };
    let cells = qr_cells(text, scheme);
    let columns = cells.iter().map(Vec::len).max().unwrap() + 2 * MARGIN;
    let rows = 2 * (cells.len() + 2 * MARGIN);
    let (width, height) = (columns * PX, rows * PX);
    let mut pixels = vec![background; width * height];
    for (y, line) in cells.iter().enumerate() {
        for (x, &(fg, bg, c)) in line.iter().enumerate() {
            let (top, bottom) = match c {
                '█' => (fg, fg),
                '▀' => (fg, bg),
                '▄' => (bg, fg),
                ' ' => (bg, bg),
                other => panic!("unexpected {other:?} in the QR code"),
            };
            for (half, grey) in [(0, top), (1, bottom)] {
                for dy in 0..PX {
                    let py = (2 * (y + MARGIN) + half) * PX + dy;
                    let px = (x + MARGIN) * PX;
                    pixels[py * width + px..py * width + px + PX].fill(grey);
                }
            }
        }
    }
    let mut pgm = format!("P5\n{width} {height}\n255\n").into_bytes();
    pgm.extend(pixels);
    pgm
}

/// What zbarimg reads in `image` (`None`: nothing).
fn zbarimg(image: &Path) -> Option<String> {
    let out = Command::new("zbarimg")
        .args(["--nodbus", "--raw", "-q"])
        .arg(image)
        .output()
        .expect("run zbarimg (apt-get install zbar-tools)");
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap().trim_end().to_owned())
}

/// The otpauth URL of a human enrollment report.
fn url_in(out: &CmdOutput) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix("otpauth URL   "))
        .unwrap_or_else(|| panic!("no otpauth URL\n{}", out.describe()))
        .to_owned()
}

fn scan_text(daemon: &Daemon, name: &str, text: &str, scheme: Scheme) -> Option<String> {
    let path = daemon.dir().join(format!("{name}.pgm"));
    std::fs::write(&path, text_to_pgm(text, scheme)).unwrap();
    zbarimg(&path)
}

/// `image` (a PNG or SVG beside it) drawn in the middle of a black page, as a PNG.
fn on_a_dark_page(image: &Path) -> PathBuf {
    let dir = image.parent().unwrap();
    let page = dir.join(format!(
        "{}-page.svg",
        image.file_name().unwrap().to_str().unwrap()
    ));
    std::fs::write(
        &page,
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" \
             width=\"800\" height=\"800\"><rect width=\"800\" height=\"800\" fill=\"#000\"/>\
             <image x=\"100\" y=\"100\" width=\"600\" height=\"600\" xlink:href=\"{}\"/></svg>",
            image.file_name().unwrap().to_str().unwrap()
        ),
    )
    .unwrap();
    let png = page.with_extension("png");
    let out = Command::new("rsvg-convert")
        .arg("-o")
        .arg(&png)
        .arg(&page)
        .output()
        .expect("run rsvg-convert (apt-get install librsvg2-bin)");
    assert!(out.status.success(), "{out:?}");
    png
}

#[test]
fn the_qr_code_on_a_terminal_scans_on_light_and_dark_themes() {
    let daemon = Daemon::start();
    // stdout a terminal: `script` runs pictl on a pseudo-terminal and copies what it shows.
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c"])
        .arg(format!(
            "{} token enroll totp --user root",
            pi_tests::bins::pictl().display()
        ))
        .arg("/dev/null")
        .env(protocol::paths::SOCKET_ENV, daemon.socket());
    let out = pi_tests::process::run(cmd, b"");
    assert!(out.success(), "{}", out.describe());
    assert!(
        out.stdout.contains("\x1b[97;40m"),
        "not drawn for a terminal\n{}",
        out.describe()
    );
    let url = url_in(&out);
    for scheme in [Scheme::Light, Scheme::Dark] {
        assert_eq!(
            scan_text(&daemon, &format!("ansi-{scheme:?}"), &out.stdout, scheme).as_deref(),
            Some(url.as_str()),
            "{scheme:?} theme"
        );
    }
}

#[test]
fn the_plain_qr_code_in_a_file_scans_on_light_and_dark_backgrounds() {
    let daemon = Daemon::start();
    let out = daemon.pictl(&["token", "enroll", "totp", "--user", "root", "--qr"]);
    assert!(out.success(), "{}", out.describe());
    assert!(
        !out.stdout.contains('\x1b'),
        "plain text carries no escapes"
    );
    let url = url_in(&out);
    for scheme in [Scheme::Light, Scheme::Dark] {
        assert_eq!(
            scan_text(&daemon, &format!("plain-{scheme:?}"), &out.stdout, scheme).as_deref(),
            Some(url.as_str()),
            "{scheme:?}: one of the two codes is a normal one"
        );
    }
}

#[test]
fn png_and_svg_files_scan_on_their_own_and_on_a_dark_page_and_are_mode_0600() {
    let daemon = Daemon::start();
    let png = daemon.dir().join("root-qr.png");
    let svg = daemon.dir().join("root-qr.svg");
    let doc = daemon.pictl_json(&[
        "token",
        "enroll",
        "hotp",
        "--user",
        "root",
        "--qr-png",
        png.to_str().unwrap(),
        "--qr-svg",
        svg.to_str().unwrap(),
    ]);
    let url = doc["otpauth_url"].as_str().unwrap().to_owned();
    assert_eq!(doc["qr_files"][0]["path"], png.to_str().unwrap(), "{doc}");
    assert_eq!(doc["qr_files"][1]["format"], "SVG", "{doc}");
    for file in [&png, &svg] {
        let meta = std::fs::symlink_metadata(file).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o600, "{}", file.display());
        assert!(meta.file_type().is_file());
        assert_eq!(
            zbarimg(&on_a_dark_page(file)).as_deref(),
            Some(url.as_str()),
            "{} on a dark page",
            file.display()
        );
    }
    assert_eq!(zbarimg(&png).as_deref(), Some(url.as_str()));
    let white = daemon.dir().join("svg-on-white.png");
    let out = Command::new("rsvg-convert")
        .args(["--background-color", "white", "-o"])
        .arg(&white)
        .arg(&svg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(zbarimg(&white).as_deref(), Some(url.as_str()));

    // A human enrollment says where the image is.
    let third = daemon.dir().join("third.png");
    let out = daemon.pictl(&[
        "token",
        "enroll",
        "totp",
        "--user",
        "root",
        "--qr-png",
        third.to_str().unwrap(),
    ]);
    assert!(out.success(), "{}", out.describe());
    assert!(
        out.stdout.contains(&format!(
            "The QR code is in {} (PNG, mode 0600)",
            third.display()
        )),
        "{}",
        out.describe()
    );
}

#[test]
fn an_existing_path_or_a_symbolic_link_is_refused_before_anything_is_enrolled() {
    let daemon = Daemon::start();
    let existing = daemon.dir().join("existing.png");
    std::fs::write(&existing, b"keep").unwrap();
    let target = daemon.dir().join("target.png");
    let link = daemon.dir().join("link.png");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["totp", "--qr-png", existing.to_str().unwrap()],
            "exists (a file)",
        ),
        (
            &["totp", "--qr-svg", link.to_str().unwrap()],
            "exists (a symbolic link)",
        ),
        (
            &["totp", "--qr-png", "/nonexistent-pi/qr.png"],
            "/nonexistent-pi",
        ),
        (
            &[
                "totp",
                "--qr-png",
                "/tmp/pi-same",
                "--qr-svg",
                "/tmp/pi-same",
            ],
            "same file",
        ),
        (
            &["spass", "--pin", "1234", "--qr-png", "/tmp/pi-spass.png"],
            "a spass token has none",
        ),
    ];
    for (args, says) in cases {
        let mut all = vec!["token", "enroll", "--user", "root"];
        all.extend_from_slice(args);
        let out = daemon.pictl(&all);
        assert_eq!(out.code(), 2, "{args:?}\n{}", out.describe());
        assert!(
            out.stderr.contains(says),
            "{args:?}: expected {says:?}\n{}",
            out.describe()
        );
    }
    assert!(
        daemon.tokens(None).is_empty(),
        "a refused command enrolled a token"
    );
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep");
    assert!(!target.exists(), "the symbolic link was followed");
    assert!(!Path::new("/tmp/pi-spass.png").exists());
}
