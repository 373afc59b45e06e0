//! `pam_pi(8)`: the module arguments come from `pam_pi::options::OPTIONS`, the table the
//! argument parser looks every argument up in; the return values are those of
//! `pam_pi::error::pam_code` and the hooks in `pam_pi::hooks`.

use crate::page::{assignment, term, Page};
use clap_mangen::roff::{bold, italic, roman};
use pam_pi::options::OPTIONS;
use protocol::paths::{DAEMON_UID_ENV, DEFAULT_SOCKET};

pub(crate) fn page() -> String {
    let mut page = Page::new("pam_pi", "8");
    page.section("NAME")
        .paragraph("pam_pi - PAM module for pi two-factor authentication");
    page.section("SYNOPSIS").inlines(vec![
        bold("auth required pam_pi.so"),
        roman(" ["),
        italic("option"),
        roman("...]"),
    ]);
    page.section("DESCRIPTION")
        .paragraph(
            "pam_pi adds a second factor (a one-time password from an authenticator app or a \
             hardware token, usually typed after the token's PIN) to the services whose PAM \
             stack loads it. It only shows what the pi daemon, pid(8), asks (a prompt, a \
             message) and maps the daemon's verdict to a PAM return value: it never reads the \
             token store and never decides anything itself.",
        )
        .paragraph(&format!(
            "The module connects to the daemon's socket ({DEFAULT_SOCKET} unless socket= says \
             otherwise) and refuses to send anything to a process there that does not run as \
             daemon_uid. The auth management group checks the second factor; setcred returns \
             PAM_SUCCESS; the session group returns PAM_IGNORE. The account and password \
             groups act only after this module accepted a login whose token PIN must change \
             (see PIN CHANGES below), and return PAM_IGNORE otherwise, without contacting the \
             daemon."
        ))
        .paragraph(
            "Without use_first_pass or try_first_pass the module always prompts through the \
             PAM conversation and never hands the one-time password to later modules as a \
             password. A panic inside the module is caught and becomes a failure, never a \
             crash of sshd or sudo.",
        );
    page.section("OPTIONS").paragraph(
        "Arguments follow the module's name in the PAM service file. An unknown or malformed \
         argument is logged to syslog and ignored, and the default stays in force: every \
         default is the one that fails closed.",
    );
    for option in OPTIONS {
        let tag = match option.value {
            Some(value) => assignment(option.name, value),
            None => term(option.name, ""),
        };
        let default = format!("Default: {}.", option.default);
        page.item_lines(tag, &[option.meaning, &default]);
    }
    page.section("MODULE TYPES PROVIDED").paragraph(
        "auth (pam_sm_authenticate and pam_sm_setcred); account (pam_sm_acct_mgmt) and \
         password (pam_sm_chauthtok), for PIN changes only; session (returns PAM_IGNORE). \
         Listed in the account or password group, the module neither grants nor denies \
         anything to a transaction in which it accepted no login with a PIN change due.",
    );
    page.section("PIN CHANGES")
        .paragraph(
            "When the daemon's enrollment policies change_pin_on_first_use or change_pin_every \
             make a token's PIN change due, a login with that token is still accepted \
             (PAM_SUCCESS), and the module keeps a one-time ticket from the daemon in the PAM \
             handle (forgotten when the handle ends, valid for five minutes, only for the uid \
             that logged in). pam_sm_acct_mgmt then shows that the PIN has expired and returns \
             PAM_NEW_AUTHTOK_REQD; applications that handle it (login, su, sudo, sshd) then call \
             pam_chauthtok. \
             pam_sm_chauthtok returns PAM_SUCCESS in the preliminary check, asks \"New PIN: \" \
             and \"Repeat new PIN: \" in the update, and sends the PIN to the daemon, which \
             checks it against the owner's PIN policies. A repetition that differs gives \
             PAM_AUTHTOK_ERR; a PIN the policies refuse is asked again, three times at most, \
             then PAM_AUTHTOK_ERR. Until a new PIN is set, the old one still logs in and the \
             change stays due.",
        )
        .paragraph(
            "Add the account line after the service's other account modules, and the password \
             line before its other password modules, so that a PIN change ends the password \
             group and pam_unix does not also ask for a new Unix password (Linux-PAM before \
             1.7.2 ignores PAM_CHANGE_EXPIRED_AUTHTOK). The pam-auth-update profile adds \
             neither.",
        )
        .literal(
            "account  required  pam_pi.so\n\
             password [success=done ignore=ignore default=die] pam_pi.so\n\
             @include common-password",
        );
    page.section("RETURN VALUES");
    for (code, when) in RETURN_VALUES {
        page.item(term(code, ""), when);
    }
    page.section("EXAMPLES")
        .paragraph(
            "SSH with a public key and a one-time password: configure sshd first \
             (/etc/ssh/sshd_config.d/pi.conf), then, in /etc/pam.d/sshd, put pi in place of \
             the password check, so the key is the first factor and the one-time password the \
             second:",
        )
        .literal(
            "# /etc/ssh/sshd_config.d/pi.conf\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication yes\n\
             AuthenticationMethods publickey,keyboard-interactive\n\
             UsePAM yes\n\
             \n\
             # /etc/pam.d/sshd\n\
             # @include common-auth\n\
             auth required pam_pi.so",
        )
        .paragraph("sudo asks the password, then a one-time password (/etc/pam.d/sudo):")
        .literal("@include common-auth\nauth required pam_pi.so")
        .paragraph(
            "A gradual rollout: users who have no token yet pass on to the rest of the stack, \
             users who have one must use it:",
        )
        .literal("auth [success=ok ignore=ignore default=die] pam_pi.so nullok")
        .paragraph(
            "After pam_unix: the Unix password first, then the token's PIN and one-time \
             password at pi's own prompt. A user whose Unix password is wrong never reaches \
             pi (requisite), so no token counts a failure for it:",
        )
        .literal(
            "auth requisite pam_unix.so\n\
             auth required  pam_pi.so",
        )
        .paragraph(
            "use_first_pass (or try_first_pass) belongs after a module that collected the \
             token's PIN followed by the one-time password, such as a front end that asks \
             once: pam_pi then checks that answer without a second prompt. Not after pam_unix \
             as above: a Unix password is never what pi checks, and sent as PIN and one-time \
             password it would count as a failure on the user's token.",
        )
        .paragraph("Test a login before changing any PAM file, and keep a root shell open:")
        .literal("pictl auth test --user alice");
    page.section("FILES")
        .item(
            term(DEFAULT_SOCKET, ""),
            "The daemon's socket (socket= chooses another).",
        )
        .item(
            term("/usr/lib/<multiarch>/security/pam_pi.so", ""),
            "The module.",
        )
        .item(
            term("/usr/share/pam-configs/pi", ""),
            "The pam-auth-update(8) profile that adds pam_pi after the password check of \
             common-auth, for every service that includes it. It is off until an \
             administrator selects it.",
        );
    page.section("ENVIRONMENT").paragraph(&format!(
        "None: the module reads only its arguments. ({DAEMON_UID_ENV} is pictl's; the module's \
         counterpart is daemon_uid=.)"
    ));
    page.see_also(
        "pam_pi",
        &[("pam.conf", "5"), ("pam", "8"), ("pam-auth-update", "8")],
    );
    page.render()
}

/// What `pam_sm_authenticate` returns, and when (`pam_pi::error::pam_code`).
const RETURN_VALUES: [(&str, &str); 6] = [
    (
        "PAM_SUCCESS",
        "The daemon accepted the login. Nothing else gives success.",
    ),
    (
        "PAM_AUTH_ERR",
        "The daemon rejected the answer, or refused the request (rate limit, permission); a \
         user without a token (without nullok); the connection was lost or timed out after the \
         user was shown a prompt; use_first_pass without an earlier password; an answer or \
         name too long; a caught panic.",
    ),
    (
        "PAM_USER_UNKNOWN",
        "The daemon knows no such user, or the user name is not UTF-8 (without \
         ignore_unknown_user).",
    ),
    (
        "PAM_AUTHINFO_UNAVAIL",
        "The daemon is not there, does not answer within timeout before the user saw a prompt, \
         speaks another protocol version, runs as another uid than daemon_uid, or an upstream \
         privacyIDEA server it needs cannot be reached and holds no usable offline value. \
         Nothing a user types causes it; stacks may treat it as a reason to fall back.",
    ),
    (
        "PAM_CONV_ERR",
        "The application's conversation failed: the user pressed Ctrl-D, or there is no \
         conversation function.",
    ),
    (
        "PAM_IGNORE",
        "A user the daemon does not know, with ignore_unknown_user; a user without a token, \
         with nullok.",
    ),
];
