//! QR codes of otpauth URLs: on the terminal (two modules per character cell, with Unicode half
//! blocks), and as PNG and SVG images.
//!
//! A scanner wants dark modules on a light background, with a light quiet zone of four modules
//! around the code. Many read nothing else: zbarimg (0.23.92, Debian 12) finds an inverted code
//! (light modules on dark) only when told to look for one (`-Stest-inverted`), and phone
//! scanners differ. Text has no colour of its own, though: the viewer draws the characters in
//! its foreground colour, dark on a light theme and light on a dark one, so the same characters
//! show a code in one and its inverse in the other.
//!
//! - `Colors::Ansi` (stdout is a terminal) sets the colours itself on every line, bright white on
//!   black, and draws the light modules and the quiet zone as blocks: the code reads right on
//!   light and dark terminal themes alike.
//! - `Colors::Plain` (stdout redirected, e.g. to a file that is later printed, shown with `cat` or
//!   opened in an editor) cannot carry colours: escape sequences would show up as garbage in an
//!   editor. It draws the code twice, each under a line saying where to scan it: once with the
//!   dark modules as characters (ink on paper: a normal code where text is dark on a light
//!   background), once with the light modules and the quiet zone as characters (a normal code
//!   where text is light on a dark background). Whatever the viewer's colours, one of the two
//!   reads as a normal code. The first one's trailing blanks are left out (the background is its
//!   quiet zone), so an editor that marks trailing whitespace cannot draw into it. Images (`png`,
//!   `svg`) carry their own light background and quiet zone.

use qrcode::{Color, QrCode};

/// Light modules around the code; the QR specification asks for four.
pub const QUIET_ZONE: usize = 4;

/// Pixels per module in a PNG image: a version 6 code (a typical otpauth URL) is 392 pixels.
pub const PNG_MODULE_PIXELS: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colors {
    /// Set bright white on black with ANSI escapes (stdout is a terminal).
    Ansi,
    /// No escape sequences: dark modules are the characters.
    Plain,
}

/// The code's modules with the quiet zone around them, row by row: `true` is dark. Fails only
/// when the data does not fit into any QR version.
fn modules(data: &str) -> Result<Vec<Vec<bool>>, String> {
    let code = QrCode::new(data.as_bytes())
        .map_err(|e| format!("cannot draw a QR code for this URL ({e})"))?;
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 2 * QUIET_ZONE;
    let inside = QUIET_ZONE..width + QUIET_ZONE;
    Ok((0..size)
        .map(|y| {
            (0..size)
                .map(|x| {
                    inside.contains(&x)
                        && inside.contains(&y)
                        && colors[(y - QUIET_ZONE) * width + (x - QUIET_ZONE)] == Color::Dark
                })
                .collect()
        })
        .collect())
}

/// Draw `data` as a QR code for the terminal. Fails only when the data does not fit into any QR
/// version.
pub fn render(data: &str, colors: Colors) -> Result<String, String> {
    let rows = modules(data)?;
    Ok(match colors {
        // The light modules as blocks on the forced black.
        Colors::Ansi => lines(&rows, |dark| !dark)
            .iter()
            .map(|line| format!("\x1b[97;40m{line}\x1b[0m\n"))
            .collect(),
        // The same characters show a code on a light background and its inverse on a dark one,
        // and plain text cannot say which it will get: it carries the code once for each.
        Colors::Plain => {
            let mut out = String::from(PLAIN_ON_LIGHT);
            for line in lines(&rows, |dark| dark) {
                out.push_str(line.trim_end());
                out.push('\n');
            }
            out.push('\n');
            out.push_str(PLAIN_ON_DARK);
            for line in lines(&rows, |dark| !dark) {
                out.push_str(&line);
                out.push('\n');
            }
            out
        }
    })
}

/// What the first of the two plain codes is for.
const PLAIN_ON_LIGHT: &str = "Scan this one where the text is dark on a light background \
                              (paper, a light theme):\n";
/// What the second is for.
const PLAIN_ON_DARK: &str = "Scan this one where the text is light on a dark background \
                             (a dark theme):\n";

/// The modules as lines of half blocks, two rows a line; `inked` says which modules are drawn
/// as blocks (the others are blanks).
fn lines(rows: &[Vec<bool>], inked: impl Fn(bool) -> bool) -> Vec<String> {
    (0..rows.len())
        .step_by(2)
        .map(|y| {
            (0..rows[y].len())
                .map(|x| {
                    let top = inked(rows[y][x]);
                    // An odd size leaves a last half row: it belongs to the quiet zone, light.
                    let bottom = inked(rows.get(y + 1).is_some_and(|row| row[x]));
                    match (top, bottom) {
                        (true, true) => '█',
                        (true, false) => '▀',
                        (false, true) => '▄',
                        (false, false) => ' ',
                    }
                })
                .collect()
        })
        .collect()
}

/// `data` as a PNG image: 8-bit grey, opaque, black modules on white with the quiet zone.
pub fn png(data: &str) -> Result<Vec<u8>, String> {
    let rows = modules(data)?;
    let side = rows.len() * PNG_MODULE_PIXELS;
    let mut pixels = Vec::with_capacity(side * side);
    for row in &rows {
        let line: Vec<u8> = row
            .iter()
            .flat_map(|&dark| std::iter::repeat_n(if dark { 0 } else { 255 }, PNG_MODULE_PIXELS))
            .collect();
        for _ in 0..PNG_MODULE_PIXELS {
            pixels.extend_from_slice(&line);
        }
    }
    let side = u32::try_from(side).map_err(|_| "the QR code is too large for a PNG".to_string())?;
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let problem = |e: png::EncodingError| format!("cannot encode the PNG image: {e}");
    let mut writer = encoder.write_header().map_err(problem)?;
    writer.write_image_data(&pixels).map_err(problem)?;
    writer.finish().map_err(problem)?;
    Ok(out)
}

/// `data` as an SVG image: black modules on a white rectangle that includes the quiet zone.
pub fn svg(data: &str) -> Result<String, String> {
    let code = QrCode::new(data.as_bytes())
        .map_err(|e| format!("cannot draw a QR code for this URL ({e})"))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .quiet_zone(true)
        .module_dimensions(PNG_MODULE_PIXELS as u32, PNG_MODULE_PIXELS as u32)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "otpauth://totp/pi:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=pi&algorithm=SHA1&digits=6&period=30";

    /// Read a drawing back into modules: `true` where a block is drawn. Lines may be short
    /// (trailing blanks left out).
    fn inked(drawing: &str, size: usize) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in drawing.lines() {
            let line = line.trim_start_matches("\x1b[97;40m");
            let line = line.trim_end_matches("\x1b[0m");
            let (mut top, mut bottom) = (vec![false; size], vec![false; size]);
            for (x, c) in line.chars().enumerate() {
                let (t, b) = match c {
                    '█' => (true, true),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    ' ' => (false, false),
                    other => panic!("unexpected {other:?}"),
                };
                top[x] = t;
                bottom[x] = b;
            }
            rows.push(top);
            rows.push(bottom);
        }
        rows.truncate(size);
        rows
    }

    fn expected_dark() -> (usize, Vec<Vec<bool>>) {
        let code = QrCode::new(URL.as_bytes()).unwrap();
        let width = code.width();
        let colors = code.to_colors();
        let size = width + 2 * QUIET_ZONE;
        let mut rows = vec![vec![false; size]; size];
        for y in 0..width {
            for x in 0..width {
                rows[y + QUIET_ZONE][x + QUIET_ZONE] = colors[y * width + x] == Color::Dark;
            }
        }
        (size, rows)
    }

    #[test]
    fn plain_drawing_inks_the_dark_modules_then_the_light_ones_each_under_its_heading() {
        let drawing = render(URL, Colors::Plain).unwrap();
        let (size, dark) = expected_dark();
        let lines = size.div_ceil(2);
        let (first, second) = drawing
            .strip_prefix(PLAIN_ON_LIGHT)
            .and_then(|rest| rest.split_once(&format!("\n{PLAIN_ON_DARK}")))
            .expect("two codes, each under its heading");
        assert_eq!(first.lines().count(), lines);
        assert_eq!(inked(first, size), dark, "ink for a light background");
        assert!(
            first.lines().all(|l| !l.ends_with(' ')),
            "no trailing blanks: {first:?}"
        );
        let light: Vec<Vec<bool>> = dark
            .iter()
            .map(|row| row.iter().map(|d| !d).collect())
            .collect();
        assert_eq!(second.lines().count(), lines);
        assert_eq!(inked(second, size), light, "ink for a dark background");
        assert!(!drawing.contains('\x1b'));
    }

    #[test]
    fn ansi_drawing_inks_exactly_the_light_modules_and_quiet_zone_in_forced_colours() {
        let drawing = render(URL, Colors::Ansi).unwrap();
        let (size, dark) = expected_dark();
        let light: Vec<Vec<bool>> = dark
            .iter()
            .map(|row| row.iter().map(|d| !d).collect())
            .collect();
        assert_eq!(inked(&drawing, size), light);
        for line in drawing.lines() {
            assert!(
                line.starts_with("\x1b[97;40m") && line.ends_with("\x1b[0m"),
                "{line:?}"
            );
            let cells = &line["\x1b[97;40m".len()..line.len() - "\x1b[0m".len()];
            assert_eq!(cells.chars().count(), size, "full width: {line:?}");
        }
    }

    #[test]
    fn the_png_is_the_modules_scaled_with_the_quiet_zone() {
        let image = png(URL).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(image))
            .read_info()
            .unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!(info.color_type, png::ColorType::Grayscale, "opaque grey");
        let (size, dark) = expected_dark();
        let side = size * PNG_MODULE_PIXELS;
        assert_eq!((info.width as usize, info.height as usize), (side, side));
        for (y, row) in dark.iter().enumerate() {
            for (x, &d) in row.iter().enumerate() {
                let centre = (y * PNG_MODULE_PIXELS + 4) * side + x * PNG_MODULE_PIXELS + 4;
                assert_eq!(pixels[centre], if d { 0 } else { 255 }, "module {x},{y}");
            }
        }
    }

    #[test]
    fn the_svg_has_a_white_background_under_black_modules() {
        let image = svg(URL).unwrap();
        assert!(image.contains("<svg"), "{image}");
        assert!(image.contains(r##"fill="#ffffff""##), "{image}");
        assert!(image.contains(r##"fill="#000000""##), "{image}");
    }

    #[test]
    fn data_too_large_for_any_qr_code_is_an_error() {
        let huge = "x".repeat(8000);
        for result in [
            render(&huge, Colors::Plain).map(|_| ()),
            png(&huge).map(|_| ()),
            svg(&huge).map(|_| ()),
        ] {
            let err = result.unwrap_err();
            assert!(err.contains("QR code"), "{err}");
        }
    }
}
