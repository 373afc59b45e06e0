//! `pid(8)`: the options from pid's clap `Args` (`pid::cli`), then what clap does not know:
//! files, signals, exit status and environment.

use crate::page::{term, Page};
use crate::pictl_pages::{after_help_sections, finish, man_of};
use pid::cli::EXIT_STATUS;
use protocol::paths::{DEFAULT_CONFIG, DEFAULT_ENCKEY_FILE, DEFAULT_SOCKET, DEFAULT_STATE_DIR};
use std::io;

pub(crate) fn page() -> io::Result<String> {
    let command = pid::cli::command();
    let man = man_of(command.clone(), "8");
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    let mut page = Page::continuation();
    page.section("DESCRIPTION")
        .paragraph(
            "pid is the pi daemon. It is the only process that opens the token store: it checks \
             what pam_pi(8) forwards from a login against the user's tokens under the policies \
             of pid.toml(5), answers the administrator's pictl(1), and keeps the audit trail. \
             Every request on its socket is authorised by the caller's uid, never by what the \
             caller claims.",
        )
        .paragraph(
            "An accepted one-time password is written to disk before pid answers, so killing \
             it, even with SIGKILL, never makes a spent code valid again. pid refuses a socket, \
             state or key directory that anyone but root owns or may write; --check-config \
             lists each with the command that fixes it.",
        );
    out.extend_from_slice(page.render().as_bytes());
    man.render_options_section(&mut out)?;
    let mut page = Page::continuation();
    page.section("FILES")
        .item(
            term(DEFAULT_CONFIG, ""),
            "The configuration (pid.toml(5)); --config chooses another.",
        )
        .item(
            term(DEFAULT_ENCKEY_FILE, ""),
            "The key that encrypts OTP keys at rest (enckey_file), created with mode 0400 on \
             first start. Back it up apart from the store: pid refuses to start without the \
             key its tokens are sealed with, and names its fingerprint.",
        )
        .item(
            term(DEFAULT_STATE_DIR, ""),
            "The token store db.redb and its journal db.journal (state_dir).",
        )
        .item(
            term(DEFAULT_SOCKET, ""),
            "The socket pam_pi and pictl connect to (socket).",
        );
    page.section("SIGNALS")
        .item(
            term("SIGHUP", ""),
            "Read the configuration again. A file that does not validate is refused and logged, \
             and the running configuration stays; keys that apply only at a restart keep their \
             old value.",
        )
        .item(term("SIGTERM", ", SIGINT"), "Stop, and exit with status 0.");
    page.section("EXIT STATUS");
    for (code, meaning) in EXIT_STATUS {
        page.item(term(&code.to_string(), ""), meaning);
    }
    page.section("ENVIRONMENT")
        .paragraph("When pid is started by systemd:")
        .item(
            term("LISTEN_FDS", ", LISTEN_PID"),
            "Socket activation: pid serves the one socket systemd passes (descriptor 3) instead \
             of creating its own, after checking that it is a listening Unix stream socket bound \
             to the configured socket path; anything else is refused at start. Removed from the \
             environment once read.",
        )
        .item(
            term("NOTIFY_SOCKET", ""),
            "pid tells systemd READY=1 once it serves, RELOADING=1 and READY=1 around a reload \
             (SIGHUP), and STOPPING=1 at shutdown. Removed from the environment once read.",
        )
        .item(
            term("CREDENTIALS_DIRECTORY", ""),
            "Where systemd puts the unit's decrypted credentials; with enckey_credential in \
             pid.toml, pid reads the store's key from the file of that name there.",
        )
        .paragraph("Always:")
        .item(
            term("RUST_LOG", ""),
            "Overrides log_level of pid.toml: a level or directives such as \
             info,pid::realm=debug.",
        );
    page.section("NOTES").paragraph(
        "pid logs to the journal under systemd (journalctl -t pid) and otherwise to stderr; \
         log_target in pid.toml chooses.",
    );
    after_help_sections(&command, &mut page);
    page.see_also("pid", &[("systemd.exec", "5")]);
    out.extend_from_slice(page.render().as_bytes());
    Ok(finish(&out))
}
