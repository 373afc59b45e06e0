//! `pictl(1)` and a page per subcommand (`pictl-token(1)`, `pictl-token-enroll(1)`, ...), from
//! pictl's clap command.
//!
//! A page per subcommand, as git has, rather than one long page: pictl has ten command groups
//! and some forty commands, several with a screen of notes and examples each. One page would
//! bury `token enroll`'s options between forty others; per-command pages let `man
//! pictl-token-enroll` open exactly the one wanted, while `pictl(1)` lists every command group
//! with its own page, and the global options, exit status and environment every command shares.

use crate::page::{term, Page};
use clap::Command;
use clap_mangen::Man;
use pictl::Exit;
use protocol::paths::{DAEMON_UID_ENV, DEFAULT_SOCKET, SOCKET_ENV};
use std::io;

/// clap_mangen's page of `command` with pi's header.
pub(crate) fn man_of(mut command: Command, section: &str) -> Man {
    // `pictl: manage ...` in --help; the NAME line already starts with the name.
    let prefix = format!("{}: ", command.get_name());
    let about = command.get_about().map(|a| a.to_string());
    if let Some(rest) = about.as_deref().and_then(|a| a.strip_prefix(&prefix)) {
        command = command.about(rest.to_owned());
    }
    Man::new(command)
        .section(section)
        .date(crate::NO_DATE)
        .source(crate::source())
        .manual(crate::MANUAL)
}

/// What clap_mangen writes before each part it renders (a string for the apostrophe): kept once,
/// at the top of the page.
const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// A page assembled from clap_mangen's parts and `Page`s, with clap_mangen's preamble once.
pub(crate) fn finish(out: &[u8]) -> String {
    let text = String::from_utf8_lossy(out);
    format!("{PREAMBLE}{}", text.replace(PREAMBLE, ""))
}

/// Every page: `(file name, roff)`.
pub(crate) fn pages() -> io::Result<Vec<(String, String)>> {
    // Built once, so every subcommand knows its full name (`pictl-token-enroll`) and how it is
    // typed (`pictl token enroll`).
    let mut command = pictl::command().disable_help_subcommand(true);
    command.build();
    let mut pages = Vec::new();
    add_pages(&command, true, &mut pages)?;
    Ok(pages)
}

fn add_pages(command: &Command, top: bool, pages: &mut Vec<(String, String)>) -> io::Result<()> {
    let name = command
        .get_display_name()
        .unwrap_or_else(|| command.get_name())
        .to_owned();
    pages.push((format!("{name}.1"), page(command, &name, top)?));
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        add_pages(sub, false, pages)?;
    }
    Ok(())
}

fn page(command: &Command, name: &str, top: bool) -> io::Result<String> {
    let man = man_of(command.clone(), "1");
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    if command.has_subcommands() {
        man.render_subcommands_section(&mut out)?;
    }
    let mut page = Page::continuation();
    if top {
        exit_status_and_environment(&mut page);
    }
    after_help_sections(command, &mut page);
    page.see_also(name, &[]);
    out.extend_from_slice(page.render().as_bytes());
    Ok(finish(&out))
}

fn exit_status_and_environment(page: &mut Page) {
    page.section("EXIT STATUS");
    for (exit, meaning) in [
        (Exit::Ok, "Success."),
        (
            Exit::Failed,
            "The daemon refused, or the operation failed (a rejected authentication included).",
        ),
        (Exit::Usage, "Bad arguments, or bad input on stdin."),
        (
            Exit::Unreachable,
            "The daemon is unreachable, did not answer in time, runs as another uid than \
             expected, or speaks another protocol version.",
        ),
    ] {
        page.item(term(&exit.code().to_string(), ""), meaning);
    }
    page.section("ENVIRONMENT")
        .item(
            term(SOCKET_ENV, ""),
            &format!("The daemon's socket when --socket is not given (default {DEFAULT_SOCKET})."),
        )
        .item(
            term(DAEMON_UID_ENV, ""),
            "The uid pid runs as when --daemon-uid is not given (default 0). pictl sends nothing \
             to a process of any other uid on the socket: it could be an impostor collecting \
             PINs and keys.",
        );
}

/// The command's notes and examples (clap's `after_help`): paragraphs of prose become NOTES,
/// an `Examples:` block becomes EXAMPLES, shown as written. An `Exit status:` block is left
/// out: pictl(1) has its own section for it.
pub(crate) fn after_help_sections(command: &Command, page: &mut Page) {
    let Some(text) = command.get_after_help().map(|h| h.to_string()) else {
        return;
    };
    let mut notes = Vec::new();
    let mut examples = Vec::new();
    for block in text.split("\n\n") {
        let block = block.trim_matches('\n');
        if let Some(lines) = block.strip_prefix("Examples:\n") {
            examples.push(dedent(lines));
        } else if block.starts_with("Exit status:") || block.is_empty() {
            continue;
        } else {
            notes.push(block.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    if !notes.is_empty() {
        page.section("NOTES");
        for note in &notes {
            page.paragraph(note);
        }
    }
    if !examples.is_empty() {
        page.section("EXAMPLES");
        for lines in &examples {
            page.literal(lines);
        }
    }
}

/// `lines` without the indentation they have in `--help`.
fn dedent(lines: &str) -> String {
    lines
        .lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}
