//! Text from outside shown to a human: on a terminal, in a PAM prompt, in a log line.
//!
//! Threat: user names, remote hosts, descriptions and a server's messages come from outside (a
//! remote ssh client chooses its login name; a privacyIDEA server writes the challenge text).
//! Shown raw, a control sequence in them would drive the reader's terminal, and an invisible
//! format character would make them read as something else. Everything such is escaped.

use std::borrow::Cow;

/// Replace every character that could change how the terminal shows the text, or hide part of
/// it, by its escaped form (`\u{1b}`, `\u{202e}`). See `is_hidden` for the rule.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_hidden(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `c` is escaped for humans. The rule: Unicode general categories Cc (control
/// characters: C0, DEL, C1, which drive the terminal), Cf (format characters, all invisible:
/// bidi embeddings, overrides, isolates and marks, which reorder what follows them, so
/// `evil\u{202e}gnp.exe` shows as `evilexe.png`; zero-width spaces and joiners, the word joiner
/// and invisible operators, the byte order mark, the soft hyphen, tag characters …), Zl and Zp
/// (the line and paragraph separators, which some terminals and editors break lines at).
/// `FORMAT` is the Cf table of Unicode 15.1, plus the unassigned code points inside its blocks
/// (U+2065, U+E0000, U+E0002–E001F): they are default-ignorable, so they would be invisible too
/// once assigned.
pub fn is_hidden(c: char) -> bool {
    if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
        return true;
    }
    let cp = u32::from(c);
    FORMAT
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Unicode general category Cf as inclusive ranges, sorted (see `is_hidden`).
const FORMAT: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),   // soft hyphen
    (0x0600, 0x0605),   // Arabic number signs
    (0x061C, 0x061C),   // Arabic letter mark
    (0x06DD, 0x06DD),   // Arabic end of ayah
    (0x070F, 0x070F),   // Syriac abbreviation mark
    (0x0890, 0x0891),   // Arabic pound and piastre marks above
    (0x08E2, 0x08E2),   // Arabic disputed end of ayah
    (0x180E, 0x180E),   // Mongolian vowel separator
    (0x200B, 0x200F),   // zero-width space, non-joiner, joiner; LRM, RLM
    (0x202A, 0x202E),   // bidi embeddings and overrides
    (0x2060, 0x206F),   // word joiner, invisible operators, bidi isolates, deprecated formats
    (0xFEFF, 0xFEFF),   // zero-width no-break space (byte order mark)
    (0xFFF9, 0xFFFB),   // interlinear annotation
    (0x110BD, 0x110BD), // Kaithi number sign
    (0x110CD, 0x110CD), // Kaithi number sign above
    (0x13430, 0x1343F), // Egyptian hieroglyph format controls
    (0x1BCA0, 0x1BCA3), // shorthand format controls
    (0x1D173, 0x1D17A), // musical symbol beam and slur formats
    (0xE0000, 0xE007F), // language tag and tag characters
];

/// Like `sanitize`, but keeps line breaks and tabs: for multi-line texts such as prompts.
pub fn sanitize_text(s: &str) -> String {
    s.split('\n')
        .map(|line| {
            line.split('\t')
                .map(|part| sanitize(part).into_owned())
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_and_control_characters_are_escaped_and_visible_text_is_left_alone() {
        // Every kind the rule names, one of each: bidi embeddings, overrides, isolates and
        // marks, zero-width characters, word joiner and invisible operators, BOM, soft hyphen,
        // tags, line and paragraph separators.
        for c in [
            '\u{202a}',
            '\u{202b}',
            '\u{202c}',
            '\u{202d}',
            '\u{202e}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{200e}',
            '\u{200f}',
            '\u{061c}',
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{2060}',
            '\u{2061}',
            '\u{2064}',
            '\u{feff}',
            '\u{00ad}',
            '\u{e0001}',
            '\u{e0041}',
            '\u{e007f}',
            '\u{2028}',
            '\u{2029}',
            '\u{1343f}',
            '\u{85}',
            '\u{7f}',
        ] {
            let text = format!("a{c}b");
            assert_eq!(
                sanitize(&text),
                format!("a\\u{{{:x}}}b", u32::from(c)),
                "U+{:04X}",
                u32::from(c)
            );
        }
        // Visible text, including other scripts and emoji, is left alone.
        for plain in [
            "Zoë",
            "Ελένη",
            "محمد",
            "李雷",
            "naïve café",
            "🔑 key",
            "a\u{301}",
        ] {
            assert!(matches!(sanitize(plain), Cow::Borrowed(_)), "{plain}");
        }
        assert_eq!(sanitize_text("line1\nline\u{1b}2"), "line1\nline\\u{1b}2");
    }

    #[test]
    fn the_format_table_is_sorted_and_disjoint() {
        for pair in FORMAT.windows(2) {
            assert!(pair[0].0 <= pair[0].1 && pair[0].1 < pair[1].0, "{pair:x?}");
        }
    }
}
