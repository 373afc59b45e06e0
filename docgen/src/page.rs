//! The pieces of a manual page written by hand, on top of the `roff` crate: every text goes
//! through its escaping, so a key, a default or a meaning can hold any character.

use clap_mangen::roff::{bold, italic, roman, Inline, Roff};

/// A manual page (or the part of one after what clap_mangen rendered).
pub(crate) struct Page {
    roff: Roff,
}

impl Page {
    /// An empty page, to be appended to clap_mangen's output.
    pub(crate) fn continuation() -> Page {
        Page { roff: Roff::new() }
    }

    /// A page of its own: the `.TH` header of `title(section)`.
    pub(crate) fn new(title: &str, section: &str) -> Page {
        let mut page = Page::continuation();
        let source = crate::source();
        page.roff.control(
            "TH",
            [title, section, crate::NO_DATE, &source, crate::MANUAL],
        );
        page
    }

    /// A section. The heading is the text line after `.SH` rather than its argument: the `roff`
    /// crate escapes text lines, but cannot quote an argument that holds a quote
    /// (`[resolvers.NAME] with type = "ldap"`).
    pub(crate) fn section(&mut self, heading: &str) -> &mut Self {
        self.roff.control("SH", []).text([roman(heading)]);
        self
    }

    /// A subsection, its heading written as `section`'s.
    pub(crate) fn subsection(&mut self, heading: &str) -> &mut Self {
        self.roff.control("SS", []).text([roman(heading)]);
        self
    }

    /// A paragraph of filled text.
    pub(crate) fn paragraph(&mut self, text: &str) -> &mut Self {
        self.roff.control("PP", []).text([roman(text)]);
        self
    }

    /// A paragraph of mixed fonts.
    pub(crate) fn inlines(&mut self, inlines: Vec<Inline>) -> &mut Self {
        self.roff.control("PP", []).text(inlines);
        self
    }

    /// A tagged paragraph: `tag` on its own line, `text` indented below it.
    pub(crate) fn item(&mut self, tag: Vec<Inline>, text: &str) -> &mut Self {
        self.roff.control("TP", []).text(tag).text([roman(text)]);
        self
    }

    /// A tagged paragraph with further indented lines below the first text.
    pub(crate) fn item_lines(&mut self, tag: Vec<Inline>, lines: &[&str]) -> &mut Self {
        self.roff.control("TP", []).text(tag);
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                self.roff.control("br", []);
            }
            self.roff.text([roman(*line)]);
        }
        self
    }

    /// Lines shown as written (commands, configuration): no filling, no hyphenation.
    pub(crate) fn literal(&mut self, lines: &str) -> &mut Self {
        self.roff
            .control("PP", [])
            .control("RS", ["4"])
            .control("nf", []);
        for line in lines.lines() {
            self.roff.text([roman(line)]);
        }
        self.roff.control("fi", []).control("RE", []);
        self
    }

    /// The SEE ALSO section every page ends with: the other pages of pi, then `others`.
    pub(crate) fn see_also(&mut self, own: &str, others: &[(&str, &str)]) -> &mut Self {
        self.section("SEE ALSO");
        let refs: Vec<(&str, &str)> = crate::SEE_ALSO
            .iter()
            .copied()
            .filter(|(name, _)| *name != own)
            .chain(others.iter().copied())
            .collect();
        let mut inlines = Vec::new();
        for (i, (name, section)) in refs.iter().enumerate() {
            inlines.push(bold(*name));
            let end = if i + 1 == refs.len() { "" } else { ", " };
            inlines.push(roman(format!("({section}){end}")));
        }
        self.roff.control("PP", []).text(inlines);
        self
    }

    pub(crate) fn render(&self) -> String {
        self.roff.to_roff()
    }
}

/// `name` in bold followed by `rest` in roman: a term, a flag, a key.
pub(crate) fn term(name: &str, rest: &str) -> Vec<Inline> {
    let mut inlines = vec![bold(name)];
    if !rest.is_empty() {
        inlines.push(roman(rest));
    }
    inlines
}

/// `name` in bold, then `=`, then `value` in italics: a module argument with its value.
pub(crate) fn assignment(name: &str, value: &str) -> Vec<Inline> {
    vec![bold(name), roman("="), italic(value)]
}
