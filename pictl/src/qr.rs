//! QR codes for the terminal, two modules per character cell with Unicode half blocks.
//!
//! A scanner needs dark modules on a light background and a light quiet zone around the code.
//! Terminals differ in their background colour, so in `Colors::Ansi` mode every line sets white
//! on black explicitly and draws the *light* modules as blocks: the code looks right on dark and
//! light terminal themes alike. `Colors::Plain` (output redirected) draws light modules as
//! blocks too, which is correct for the usual light-on-dark terminal the text is later shown in.

use qrcode::{Color, QrCode};

/// Light modules around the code; the QR specification asks for four.
pub const QUIET_ZONE: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colors {
    /// Set bright white on black with ANSI escapes (stdout is a terminal).
    Ansi,
    /// No escape sequences.
    Plain,
}

/// Draw `data` as a QR code. Fails only when the data does not fit into any QR version.
pub fn render(data: &str, colors: Colors) -> Result<String, String> {
    let code = QrCode::new(data.as_bytes())
        .map_err(|e| format!("cannot draw a QR code for this URL ({e})"))?;
    let width = code.width();
    let modules = code.to_colors();
    let size = width + 2 * QUIET_ZONE;
    // Outside the code proper everything is light: that is the quiet zone.
    let light = |x: usize, y: usize| -> bool {
        if x < QUIET_ZONE || y < QUIET_ZONE || x >= width + QUIET_ZONE || y >= width + QUIET_ZONE {
            return true;
        }
        modules[(y - QUIET_ZONE) * width + (x - QUIET_ZONE)] == Color::Light
    };
    let mut out = String::new();
    for y in (0..size).step_by(2) {
        if colors == Colors::Ansi {
            out.push_str("\x1b[97;40m");
        }
        for x in 0..size {
            let top = light(x, y);
            // An odd size leaves a last half row: it belongs to the quiet zone, so it is light.
            let bottom = y + 1 >= size || light(x, y + 1);
            out.push(match (top, bottom) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        if colors == Colors::Ansi {
            out.push_str("\x1b[0m");
        }
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "otpauth://totp/pi:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=pi&algorithm=SHA1&digits=6&period=30";

    /// Read the drawing back into modules: light = true.
    fn decode(drawing: &str) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in drawing.lines() {
            let (mut top, mut bottom) = (Vec::new(), Vec::new());
            for c in line.chars() {
                let (t, b) = match c {
                    '█' => (true, true),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    ' ' => (false, false),
                    other => panic!("unexpected {other:?}"),
                };
                top.push(t);
                bottom.push(b);
            }
            rows.push(top);
            rows.push(bottom);
        }
        rows
    }

    #[test]
    fn drawing_encodes_exactly_the_qr_modules() {
        let drawing = render(URL, Colors::Plain).unwrap();
        assert!(!drawing.is_empty());
        let code = QrCode::new(URL.as_bytes()).unwrap();
        let width = code.width();
        let colors = code.to_colors();
        let rows = decode(&drawing);
        let size = width + 2 * QUIET_ZONE;
        assert_eq!(drawing.lines().count(), size.div_ceil(2));
        assert!(rows.iter().all(|r| r.len() == size));
        for y in 0..width {
            for x in 0..width {
                let light = rows[y + QUIET_ZONE][x + QUIET_ZONE];
                assert_eq!(
                    light,
                    colors[y * width + x] == Color::Light,
                    "module {x},{y}"
                );
            }
        }
    }

    #[test]
    fn quiet_zone_surrounds_the_code() {
        let rows = decode(&render(URL, Colors::Plain).unwrap());
        let size = rows[0].len();
        for (y, row) in rows.iter().enumerate().take(size) {
            for (x, &light) in row.iter().enumerate() {
                let edge = x < QUIET_ZONE
                    || y < QUIET_ZONE
                    || x >= size - QUIET_ZONE
                    || y >= size - QUIET_ZONE;
                if edge {
                    assert!(light, "quiet zone module {x},{y} is dark");
                }
            }
        }
    }

    #[test]
    fn ansi_mode_forces_colours_on_every_line_and_resets_them() {
        let drawing = render(URL, Colors::Ansi).unwrap();
        for line in drawing.lines() {
            assert!(
                line.starts_with("\x1b[97;40m") && line.ends_with("\x1b[0m"),
                "{line:?}"
            );
        }
        assert!(!render(URL, Colors::Plain).unwrap().contains('\x1b'));
    }

    #[test]
    fn data_too_large_for_any_qr_code_is_an_error() {
        let huge = "x".repeat(8000);
        let err = render(&huge, Colors::Plain).unwrap_err();
        assert!(err.contains("QR code"), "{err}");
    }
}
