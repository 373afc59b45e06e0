//! What the module does, without libpam: generic over the PAM conversation and the transport to
//! the daemon, so every path is unit-tested with scripted mocks (bottom of this file).
//!
//! The module renders, the daemon decides. Threats handled here:
//! - a daemon that never ends a session → at most `MAX_STEPS` prompts per session;
//! - input a user controls (name, answers) that would overflow a frame → refused locally as a
//!   failed login, so it can never surface as a transport error (`PAM_AUTHINFO_UNAVAIL`, which
//!   stacks may map to `ignore`);
//! - a user who sits on a prompt until the daemon drops the connection → once the user has been
//!   shown anything, a lost connection is `PAM_AUTH_ERR`, never `PAM_AUTHINFO_UNAVAIL`;
//! - secrets in logs → answers and `PAM_AUTHTOK` are only ever held in `protocol::Secret`
//!   (redacted `Debug`, zeroised on drop) and never formatted.

use crate::error::{pam_code, Event, PamCode};
use crate::options::Options;
use protocol::paths::{MAX_ANSWER_LEN, MAX_TEXT_LEN, MAX_USER_LEN};
use protocol::{
    AuthBegin, Client, ClientError, ErrorCode, FrameError, Outcome, Prompt, Request, Response,
    Secret,
};

/// Most prompts the module renders in one daemon session. Today's conversations have one or
/// two; anything beyond this is a broken or hostile daemon.
pub const MAX_STEPS: usize = 16;

/// How a question is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptStyle {
    /// `PAM_PROMPT_ECHO_OFF`: PINs, OTPs, passwords.
    EchoOff,
    /// `PAM_PROMPT_ECHO_ON`.
    EchoOn,
}

/// How a message without an answer is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageStyle {
    /// `PAM_TEXT_INFO`.
    Info,
    /// `PAM_ERROR_MSG`.
    Error,
}

/// Syslog priorities the module uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warning,
    Notice,
    Info,
    Debug,
}

/// The PAM user as the application has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PamUser {
    Name(String),
    /// Not UTF-8 (or otherwise not representable on the wire): never sent to the daemon.
    Unusable,
}

/// The application's conversation failed; the text is for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvFailed(pub String);

/// What the module needs from PAM. `conv.rs` implements it over pamsm; tests script it.
pub trait Conversation {
    /// `PAM_USER`, asking the application for it if it is not set yet (`pam_get_user`).
    fn user(&mut self) -> Result<PamUser, ConvFailed>;
    fn service(&self) -> Option<String>;
    fn rhost(&self) -> Option<String>;
    fn tty(&self) -> Option<String>;
    fn ruser(&self) -> Option<String>;
    /// `PAM_AUTHTOK` set by an earlier module; read only for `use_first_pass`/`try_first_pass`.
    fn cached_authtok(&self) -> Option<Secret>;
    /// Ask one question; the reply goes straight into a `Secret`.
    fn prompt(&mut self, style: PromptStyle, text: &str) -> Result<Secret, ConvFailed>;
    /// Show one line that needs no answer.
    fn message(&mut self, style: MessageStyle, text: &str) -> Result<(), ConvFailed>;
    /// Keep a PIN change ticket in the PAM handle for acct_mgmt and chauthtok of this
    /// transaction; libpam's cleanup forgets it.
    fn keep_ticket(&mut self, ticket: Secret) -> Result<(), ConvFailed>;
    /// The ticket an earlier authenticate of this PAM transaction kept.
    fn ticket(&self) -> Option<Secret>;
    /// The ticket is spent: forget it now.
    fn drop_ticket(&mut self);
    /// Write to syslog. Callers never pass a secret.
    fn log(&self, level: LogLevel, message: &str);
}

/// One request, one response, bounded by the client's timeouts.
pub trait Transport {
    fn call(&mut self, request: &Request) -> Result<Response, ClientError>;
    /// The process id of the daemon at the other end (SO_PEERCRED), if the kernel told us.
    fn daemon_pid(&self) -> Option<i32>;
}

impl Transport for Client {
    fn call(&mut self, request: &Request) -> Result<Response, ClientError> {
        Client::call(self, request)
    }

    fn daemon_pid(&self) -> Option<i32> {
        self.peer_pid()
    }
}

/// Whether `daemon` is this very process: pid checks a user store password by running a PAM
/// service, and that service loads pam_pi.
fn is_this_process(daemon: Option<i32>) -> bool {
    daemon.and_then(|p| u32::try_from(p).ok()) == Some(std::process::id())
}

/// Connect to the daemon with the module's timeouts, and make sure it is the daemon: a process
/// of another uid on the socket is refused before the user name or any answer reaches it.
pub fn connect(options: &Options) -> Result<Client, ClientError> {
    let mut client =
        Client::connect_with(&options.socket, options.connect_timeout(), options.timeout)?;
    client.require_peer_uid(options.daemon_uid)?;
    client.set_busy_wait(options.busy_wait);
    Ok(client)
}

/// `pam_sm_authenticate`: run the daemon's conversation and map its verdict (fail closed).
pub fn authenticate<C, T, F>(conv: &mut C, options: &Options, silent: bool, connect: F) -> PamCode
where
    C: Conversation,
    T: Transport,
    F: FnOnce(&Options) -> Result<T, ClientError>,
{
    let mut auth = Auth {
        conv,
        options,
        silent,
        user: String::new(),
    };
    auth.run(connect)
}

/// `pam_sm_setcred`: pi issues no credentials (no ticket, no keyring), so there is nothing to
/// establish or delete. SUCCESS, because applications call setcred after a successful auth
/// stack and pamsm's default (`PAM_SERVICE_ERR`) would break every login.
pub fn setcred() -> PamCode {
    PamCode::Success
}

/// `pam_sm_acct_mgmt`: account validity (expiry, locks, access rules) belongs to pam_unix and
/// friends; token state is checked by the daemon during authenticate. One thing is this
/// module's: a login the daemon accepted with a PIN change due (a ticket is held) answers
/// `PAM_NEW_AUTHTOK_REQD`, so the application runs chauthtok. Otherwise IGNORE, without asking
/// the daemon, so this module neither grants nor denies an account it has no business in.
pub fn acct_mgmt<C: Conversation>(conv: &mut C, silent: bool) -> PamCode {
    if conv.ticket().is_none() {
        return PamCode::Ignore;
    }
    if !silent {
        if let Err(ConvFailed(why)) = conv.message(
            MessageStyle::Error,
            "The PIN of your token has expired; you must set a new PIN now.",
        ) {
            conv.log(
                LogLevel::Debug,
                &format!("could not show that the PIN must change: {why}"),
            );
        }
    }
    conv.log(
        LogLevel::Info,
        "the PIN change of the token is due; new authentication token required",
    );
    PamCode::NewAuthtokReqd
}

/// `pam_sm_open_session`: pi keeps no per-session state in the host process. IGNORE.
pub fn open_session() -> PamCode {
    PamCode::Ignore
}

/// `pam_sm_close_session`: nothing was opened. IGNORE.
pub fn close_session() -> PamCode {
    PamCode::Ignore
}

/// Which pass of `pam_chauthtok` libpam is making.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// `PAM_PRELIM_CHECK`: can this module change the token?
    Prelim,
    /// `PAM_UPDATE_AUTHTOK`: change it.
    Update,
    /// Neither flag: not a call libpam makes.
    Neither,
}

/// Tries at a new PIN the daemon's PIN rules refuse, within one chauthtok (the daemon's ticket
/// allows as many).
pub const PIN_TRIES: usize = 3;

/// `pam_sm_chauthtok`: only the PIN change of a login the daemon accepted with a PIN change due
/// (a ticket is held). Everything else, `passwd` above all, is IGNORE without asking the daemon:
/// a new Unix password never reaches it.
pub fn chauthtok<C, T, F>(
    conv: &mut C,
    options: &Options,
    phase: Phase,
    silent: bool,
    connect: F,
) -> PamCode
where
    C: Conversation,
    T: Transport,
    F: FnOnce(&Options) -> Result<T, ClientError>,
{
    let Some(ticket) = conv.ticket() else {
        return PamCode::Ignore;
    };
    match phase {
        Phase::Neither => PamCode::Ignore,
        Phase::Prelim => PamCode::Success,
        Phase::Update => {
            let mut change = PinChange {
                conv,
                options,
                silent,
                ticket,
            };
            change.run(connect)
        }
    }
}

/// Why a daemon session ended without a verdict.
enum Failure {
    /// `engaged`: the failure came after the session's first step, when the user could have
    /// held the conversation open (see the module header).
    Transport {
        error: ClientError,
        engaged: bool,
    },
    Daemon(ErrorCode, String),
    Unexpected,
    Endless,
    Conversation(ConvFailed),
    AnswerTooLong,
}

/// A verdict, and whether the user was asked anything on the way.
struct Ended {
    outcome: Outcome,
    prompted: bool,
}

struct Auth<'a, C> {
    conv: &'a mut C,
    options: &'a Options,
    silent: bool,
    /// The PAM user once known (for log lines).
    user: String,
}

impl<C: Conversation> Auth<'_, C> {
    fn run<T, F>(&mut self, connect: F) -> PamCode
    where
        T: Transport,
        F: FnOnce(&Options) -> Result<T, ClientError>,
    {
        match self.conv.user() {
            Ok(PamUser::Name(name)) if !name.contains('\0') => self.user = name,
            Ok(_) => {
                self.log(
                    LogLevel::Notice,
                    "the PAM user name is not valid UTF-8; treated as an unknown user \
                     and not sent to the daemon",
                );
                return self.code(Event::UnusableUserName);
            }
            Err(ConvFailed(why)) => {
                self.log(LogLevel::Error, &format!("cannot get the user name: {why}"));
                return self.code(Event::ConversationFailed);
            }
        }
        if self.user.len() > MAX_USER_LEN {
            self.log(
                LogLevel::Notice,
                &format!(
                    "user name of {} bytes exceeds the daemon's limit of {MAX_USER_LEN}; \
                     authentication refused",
                    self.user.len()
                ),
            );
            return self.code(Event::InputTooLong);
        }

        let first_pass = if self.options.use_first_pass || self.options.try_first_pass {
            self.conv
                .cached_authtok()
                .filter(|t| !t.is_empty() && t.len() <= MAX_ANSWER_LEN)
        } else {
            None
        };
        if self.options.use_first_pass && first_pass.is_none() {
            self.log(
                LogLevel::Notice,
                &format!(
                    "use_first_pass is set but no earlier module left a usable password \
                     for user {}; refused without prompting (put pam_pi after the password \
                     module, or use try_first_pass)",
                    self.user
                ),
            );
            return self.code(Event::NoFirstPass);
        }

        let base = AuthBegin {
            user: self.user.clone(),
            service: self.conv.service().map(clip).unwrap_or_default(),
            rhost: self.conv.rhost().map(clip),
            tty: self.conv.tty().map(clip),
            ruser: self.conv.ruser().map(clip),
            authtok: None,
        };
        self.debug(&format!(
            "authenticate user={} service={} rhost={} tty={} ruser={} earlier_password={}",
            base.user,
            base.service,
            base.rhost.as_deref().unwrap_or("-"),
            base.tty.as_deref().unwrap_or("-"),
            base.ruser.as_deref().unwrap_or("-"),
            if first_pass.is_some() { "sent" } else { "none" },
        ));

        let mut transport = match connect(self.options) {
            Ok(transport) => transport,
            Err(e) => {
                self.log(LogLevel::Error, &format!("{e}{}", advice(&e)));
                return self.code(Event::Transport(&e));
            }
        };
        // Inside the daemon every request would start another password check through this
        // same PAM service: nothing is sent, the check fails closed.
        if is_this_process(transport.daemon_pid()) {
            self.log(
                LogLevel::Error,
                &format!(
                    "pam_pi loaded by the PAM service pid uses for password checks \
                     (service {}, user {}); remove it from that service (use pam_unix.so there)",
                    self.conv.service().unwrap_or_else(|| "?".into()),
                    self.user
                ),
            );
            return self.code(Event::InsideDaemon);
        }

        let with_first_pass = first_pass.is_some();
        let first = AuthBegin {
            authtok: first_pass,
            ..base.clone()
        };
        let mut ended = self.converse(&mut transport, first);
        let retry = with_first_pass && self.options.try_first_pass && !self.options.use_first_pass;
        if retry {
            if let Ok(Ended {
                outcome: Outcome::Reject { .. },
                prompted: false,
            }) = ended
            {
                // The earlier module's password was not this user's second factor: ask for it.
                // The reject message is not shown, it was about a password the user never
                // typed for us.
                self.debug("earlier password rejected; prompting (try_first_pass)");
                ended = self.converse(&mut transport, base);
            }
        }
        self.finish(ended)
    }

    /// One daemon session: `AuthBegin`, then render each `AuthStep` until `AuthDone`.
    fn converse<T: Transport>(
        &mut self,
        transport: &mut T,
        begin: AuthBegin,
    ) -> Result<Ended, Failure> {
        let mut response = transport
            .call(&Request::AuthBegin(begin))
            .map_err(|error| Failure::Transport {
                error,
                engaged: false,
            })?;
        let mut prompted = false;
        let mut steps = 0usize;
        loop {
            let (session, prompt) = match response {
                Response::AuthDone(outcome) => return Ok(Ended { outcome, prompted }),
                Response::AuthStep { session, prompt } => (session, prompt),
                Response::Error { code, message } => return Err(Failure::Daemon(code, message)),
                Response::Status(_)
                | Response::Admin(_)
                | Response::SshKeys { .. }
                | Response::PinChanged { .. } => return Err(Failure::Unexpected),
            };
            steps += 1;
            if steps > MAX_STEPS {
                return Err(Failure::Endless);
            }
            self.debug(&format!(
                "step {steps}: daemon asks {} (session {session})",
                prompt_kind(&prompt)
            ));
            let answer = match &prompt {
                Prompt::Secret { text } => {
                    prompted = true;
                    self.conv.prompt(PromptStyle::EchoOff, text)
                }
                Prompt::Echo { text } => {
                    prompted = true;
                    self.conv.prompt(PromptStyle::EchoOn, text)
                }
                Prompt::Info { text } => self.show(MessageStyle::Info, text),
                Prompt::Error { text } => self.show(MessageStyle::Error, text),
            }
            .map_err(Failure::Conversation)?;
            if answer.len() > MAX_ANSWER_LEN {
                return Err(Failure::AnswerTooLong);
            }
            response = transport
                .call(&Request::AuthContinue { session, answer })
                .map_err(|error| Failure::Transport {
                    error,
                    engaged: true,
                })?;
        }
    }

    /// Show an info or error line unless `PAM_SILENT`; the daemon gets an empty answer either way.
    fn show(&mut self, style: MessageStyle, text: &str) -> Result<Secret, ConvFailed> {
        if !self.silent {
            self.conv.message(style, text)?;
        }
        Ok(Secret::default())
    }

    /// Tell the user and the log how it ended, and map it.
    fn finish(&mut self, ended: Result<Ended, Failure>) -> PamCode {
        let user = self.user.clone();
        match ended {
            Ok(Ended { outcome, .. }) => {
                match &outcome {
                    Outcome::Accept { message } => {
                        self.tell(MessageStyle::Info, message);
                        self.log(LogLevel::Info, &format!("user {user} accepted"));
                    }
                    Outcome::AcceptPinChangeDue { message, ticket } => {
                        self.tell(MessageStyle::Info, message);
                        self.log(
                            LogLevel::Info,
                            &format!("user {user} accepted; the PIN change of the token is due"),
                        );
                        // The second factor was checked: the login stands. Without the ticket
                        // the PIN is not changed now, and the next login finds it due again.
                        if let Err(ConvFailed(why)) = self.conv.keep_ticket(ticket.clone()) {
                            self.log(
                                LogLevel::Error,
                                &format!(
                                    "cannot keep the PIN change of user {user} for chauthtok:                                      {why}; the PIN stays due"
                                ),
                            );
                        }
                    }
                    Outcome::Reject { message } => {
                        self.tell(MessageStyle::Error, message);
                        self.log(LogLevel::Notice, &format!("user {user} rejected"));
                    }
                    Outcome::NoToken => self.log(
                        LogLevel::Notice,
                        &format!(
                            "user {user} has no token{}",
                            if self.options.nullok {
                                "; ignored (nullok)"
                            } else {
                                "; refused (enroll one with `pictl token enroll`, or set nullok \
                                 during rollout)"
                            }
                        ),
                    ),
                    Outcome::UnknownUser => self.log(
                        LogLevel::Notice,
                        &format!("the pi daemon does not know user {user}"),
                    ),
                    Outcome::Unavailable => self.log(
                        LogLevel::Error,
                        &format!(
                            "the pi daemon could not decide for user {user} (store or \
                             upstream failure); see `journalctl -u pid`"
                        ),
                    ),
                    Outcome::ServerUnreachable { message } => {
                        self.tell(MessageStyle::Error, message);
                        self.log(
                            LogLevel::Error,
                            &format!(
                                "the authentication server upstream of the pi daemon cannot \
                                 be reached for user {user}; see `pictl status`"
                            ),
                        );
                    }
                }
                self.code(Event::Done(&outcome))
            }
            Err(Failure::Transport { error: e, engaged }) => {
                self.log(LogLevel::Error, &format!("user {user}: {e}{}", advice(&e)));
                if engaged {
                    self.code(Event::LostMidSession(&e))
                } else {
                    self.code(Event::Transport(&e))
                }
            }
            Err(Failure::Daemon(code, message)) => {
                let hint = if code == ErrorCode::PermissionDenied {
                    " (a program not running as root may only authenticate its own user)"
                } else {
                    ""
                };
                self.log(
                    LogLevel::Error,
                    &format!("the pi daemon refused user {user}: {code}: {message}{hint}"),
                );
                self.code(Event::DaemonError(code))
            }
            Err(Failure::Unexpected) => {
                self.log(
                    LogLevel::Error,
                    "the pi daemon sent a message that does not belong to an \
                     authentication (are pam_pi and pid the same version?)",
                );
                self.code(Event::UnexpectedResponse)
            }
            Err(Failure::Endless) => {
                self.log(
                    LogLevel::Error,
                    &format!(
                        "the pi daemon sent more than {MAX_STEPS} prompts for user {user}; \
                         refused (check the daemon's policies and `journalctl -u pid`)"
                    ),
                );
                self.code(Event::EndlessSession)
            }
            Err(Failure::Conversation(ConvFailed(why))) => {
                self.log(
                    LogLevel::Notice,
                    &format!("conversation with user {user} failed: {why}"),
                );
                self.code(Event::ConversationFailed)
            }
            Err(Failure::AnswerTooLong) => {
                self.log(
                    LogLevel::Notice,
                    &format!("answer of user {user} longer than {MAX_ANSWER_LEN} bytes; refused"),
                );
                self.code(Event::InputTooLong)
            }
        }
    }

    /// Show the daemon's final message (see `tell`).
    fn tell(&mut self, style: MessageStyle, text: &str) {
        tell(self.conv, self.options, self.silent, style, text);
    }

    fn code(&self, event: Event<'_>) -> PamCode {
        pam_code(&event, self.options)
    }

    fn log(&self, level: LogLevel, message: &str) {
        self.conv.log(level, message);
    }

    fn debug(&self, message: &str) {
        if self.options.debug {
            self.conv.log(LogLevel::Debug, message);
        }
    }
}

/// One `PAM_UPDATE_AUTHTOK` pass of chauthtok with a ticket: ask the new PIN twice, send it,
/// and ask again (up to `PIN_TRIES`) while the daemon's PIN rules refuse it.
struct PinChange<'a, C> {
    conv: &'a mut C,
    options: &'a Options,
    silent: bool,
    ticket: Secret,
}

impl<C: Conversation> PinChange<'_, C> {
    fn run<T, F>(&mut self, connect: F) -> PamCode
    where
        T: Transport,
        F: FnOnce(&Options) -> Result<T, ClientError>,
    {
        let mut transport = match connect(self.options) {
            Ok(transport) => transport,
            Err(e) => {
                self.conv
                    .log(LogLevel::Error, &format!("PIN change: {e}{}", advice(&e)));
                self.tell(
                    MessageStyle::Error,
                    "The PIN cannot be changed now; it stays due.",
                );
                return PamCode::AuthtokErr;
            }
        };
        for _ in 0..PIN_TRIES {
            let Some(pin) = (match self.ask_twice() {
                Ok(pin) => pin,
                Err(code) => return code,
            }) else {
                self.tell(
                    MessageStyle::Error,
                    "The PINs do not match; the PIN was not changed.",
                );
                self.conv.log(
                    LogLevel::Notice,
                    "PIN change: the repeated PIN did not match",
                );
                return PamCode::AuthtokErr;
            };
            let request = Request::PinChange {
                ticket: self.ticket.clone(),
                pin,
            };
            match transport.call(&request) {
                Ok(Response::PinChanged { message }) => {
                    self.conv.drop_ticket();
                    self.tell(MessageStyle::Info, &message);
                    self.conv.log(LogLevel::Info, "PIN changed");
                    return PamCode::Success;
                }
                // The PIN rules refused it: the message says what they want; ask again.
                Ok(Response::Error {
                    code: ErrorCode::InvalidArgument,
                    message,
                }) => {
                    self.tell(MessageStyle::Error, &message);
                    self.conv.log(
                        LogLevel::Notice,
                        &format!("PIN change: new PIN refused: {message}"),
                    );
                }
                Ok(Response::Error { code, message }) => {
                    self.conv.log(
                        LogLevel::Error,
                        &format!("PIN change refused by the pi daemon: {code}: {message}"),
                    );
                    self.tell(MessageStyle::Error, &message);
                    return PamCode::AuthtokErr;
                }
                Ok(_) => {
                    self.conv.log(
                        LogLevel::Error,
                        "PIN change: the pi daemon sent a message that does not answer it \
                         (are pam_pi and pid the same version?)",
                    );
                    return PamCode::AuthtokErr;
                }
                Err(e) => {
                    self.conv
                        .log(LogLevel::Error, &format!("PIN change: {e}{}", advice(&e)));
                    self.tell(
                        MessageStyle::Error,
                        "The PIN could not be changed; it stays due.",
                    );
                    return PamCode::AuthtokErr;
                }
            }
        }
        self.tell(MessageStyle::Error, "The PIN was not changed.");
        PamCode::AuthtokErr
    }

    /// The new PIN, or `None` when the repetition differs.
    fn ask_twice(&mut self) -> Result<Option<Secret>, PamCode> {
        let mut ask = |text: &str| {
            let answer = self.conv.prompt(PromptStyle::EchoOff, text);
            match answer {
                Ok(pin) if pin.len() <= MAX_ANSWER_LEN => Ok(pin),
                Ok(_) => Err(PamCode::AuthtokErr),
                Err(ConvFailed(why)) => {
                    self.conv.log(
                        LogLevel::Notice,
                        &format!("PIN change: the conversation failed: {why}"),
                    );
                    Err(PamCode::ConvErr)
                }
            }
        };
        let pin = ask("New PIN: ")?;
        let again = ask("Repeat new PIN: ")?;
        Ok((pin.expose() == again.expose()).then_some(pin))
    }

    fn tell(&mut self, style: MessageStyle, text: &str) {
        tell(self.conv, self.options, self.silent, style, text);
    }
}

/// Show a line unless it is empty or `PAM_SILENT`. What it reports is already decided, so a
/// failure to show it changes nothing (it is logged with `debug`).
fn tell<C: Conversation>(
    conv: &mut C,
    options: &Options,
    silent: bool,
    style: MessageStyle,
    text: &str,
) {
    if silent || text.is_empty() {
        return;
    }
    if let Err(ConvFailed(why)) = conv.message(style, text) {
        if options.debug {
            conv.log(LogLevel::Debug, &format!("could not show a message: {why}"));
        }
    }
}

/// What to check after a transport failure, appended to its message.
fn advice(e: &ClientError) -> String {
    match e {
        ClientError::Timeout => " (check `journalctl -u pid`, or raise timeout=)".into(),
        ClientError::Protocol(FrameError::Closed | FrameError::Io(_)) => {
            " (the daemon closed the connection; check `journalctl -u pid`)".into()
        }
        ClientError::Protocol(_) => " (are pam_pi and pid the same version?)".into(),
        ClientError::UntrustedDaemon { found, .. } => {
            let uid = found.map_or_else(|| "N".to_string(), |u| u.to_string());
            format!(
                "; if pid runs as uid {uid} on purpose, add daemon_uid={uid} to the pam_pi line"
            )
        }
        // Its message already says what to check.
        ClientError::Unreachable { .. } => String::new(),
    }
}

fn prompt_kind(prompt: &Prompt) -> &'static str {
    match prompt {
        Prompt::Secret { .. } => "a hidden answer",
        Prompt::Echo { .. } => "a visible answer",
        Prompt::Info { .. } => "to show an info line",
        Prompt::Error { .. } => "to show an error line",
    }
}

/// Keep a PAM item within the daemon's text limit (at a character boundary). These items are
/// informational (rhost, tty, ruser, service); a clipped value stays present, so "remote" can
/// never turn into "local" by being too long.
fn clip(mut text: String) -> String {
    if text.len() > MAX_TEXT_LEN {
        let mut end = MAX_TEXT_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::StatusInfo;
    use std::cell::RefCell;
    use std::collections::VecDeque;

    /// What the user saw, in order.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Shown {
        EchoOff(String),
        EchoOn(String),
        Info(String),
        Error(String),
    }

    struct MockConv {
        user: Result<PamUser, ConvFailed>,
        service: Option<String>,
        rhost: Option<String>,
        tty: Option<String>,
        ruser: Option<String>,
        authtok: Option<String>,
        /// Replies to prompts, in order. Running out is a conversation failure (like Ctrl-D).
        replies: VecDeque<Result<String, ConvFailed>>,
        shown: Vec<Shown>,
        logs: RefCell<Vec<(LogLevel, String)>>,
        authtok_reads: RefCell<usize>,
        /// The PIN change ticket kept in the "PAM handle".
        ticket: Option<String>,
    }

    impl MockConv {
        fn new(replies: &[&str]) -> MockConv {
            MockConv {
                user: Ok(PamUser::Name("alice".into())),
                service: Some("sshd".into()),
                rhost: Some("192.0.2.7".into()),
                tty: None,
                ruser: None,
                authtok: None,
                replies: replies.iter().map(|r| Ok(r.to_string())).collect(),
                shown: Vec::new(),
                logs: RefCell::new(Vec::new()),
                authtok_reads: RefCell::new(0),
                ticket: None,
            }
        }

        fn with_ticket(mut self, ticket: &str) -> MockConv {
            self.ticket = Some(ticket.into());
            self
        }

        fn with_authtok(mut self, authtok: &str) -> MockConv {
            self.authtok = Some(authtok.into());
            self
        }

        fn logged(&self) -> String {
            self.logs
                .borrow()
                .iter()
                .map(|(l, m)| format!("{l:?}: {m}\n"))
                .collect()
        }
    }

    impl Conversation for MockConv {
        fn user(&mut self) -> Result<PamUser, ConvFailed> {
            self.user.clone()
        }
        fn service(&self) -> Option<String> {
            self.service.clone()
        }
        fn rhost(&self) -> Option<String> {
            self.rhost.clone()
        }
        fn tty(&self) -> Option<String> {
            self.tty.clone()
        }
        fn ruser(&self) -> Option<String> {
            self.ruser.clone()
        }
        fn cached_authtok(&self) -> Option<Secret> {
            *self.authtok_reads.borrow_mut() += 1;
            self.authtok.as_deref().map(Secret::new)
        }
        fn prompt(&mut self, style: PromptStyle, text: &str) -> Result<Secret, ConvFailed> {
            self.shown.push(match style {
                PromptStyle::EchoOff => Shown::EchoOff(text.into()),
                PromptStyle::EchoOn => Shown::EchoOn(text.into()),
            });
            match self.replies.pop_front() {
                Some(reply) => reply.map(Secret::new),
                None => Err(ConvFailed("end of input".into())),
            }
        }
        fn message(&mut self, style: MessageStyle, text: &str) -> Result<(), ConvFailed> {
            self.shown.push(match style {
                MessageStyle::Info => Shown::Info(text.into()),
                MessageStyle::Error => Shown::Error(text.into()),
            });
            Ok(())
        }
        fn keep_ticket(&mut self, ticket: Secret) -> Result<(), ConvFailed> {
            self.ticket = Some(ticket.expose().to_owned());
            Ok(())
        }
        fn ticket(&self) -> Option<Secret> {
            self.ticket.as_deref().map(Secret::new)
        }
        fn drop_ticket(&mut self) {
            self.ticket = None;
        }
        fn log(&self, level: LogLevel, message: &str) {
            self.logs.borrow_mut().push((level, message.into()));
        }
    }

    /// A daemon that answers from a script and records every request.
    #[derive(Default)]
    struct MockDaemon {
        script: VecDeque<Result<Response, ClientError>>,
        requests: Vec<Request>,
        /// What SO_PEERCRED says about the daemon's process.
        pid: Option<i32>,
    }

    impl MockDaemon {
        fn new(script: Vec<Result<Response, ClientError>>) -> MockDaemon {
            MockDaemon {
                script: script.into(),
                requests: Vec::new(),
                pid: None,
            }
        }
    }

    impl Transport for &mut MockDaemon {
        fn call(&mut self, request: &Request) -> Result<Response, ClientError> {
            self.requests.push(request.clone());
            self.script
                .pop_front()
                .unwrap_or_else(|| panic!("the module sent an unscripted request: {request:?}"))
        }

        fn daemon_pid(&self) -> Option<i32> {
            self.pid
        }
    }

    fn step(session: u64, prompt: Prompt) -> Result<Response, ClientError> {
        Ok(Response::AuthStep { session, prompt })
    }

    fn secret(text: &str) -> Prompt {
        Prompt::Secret { text: text.into() }
    }

    fn info(text: &str) -> Prompt {
        Prompt::Info { text: text.into() }
    }

    fn done(outcome: Outcome) -> Result<Response, ClientError> {
        Ok(Response::AuthDone(outcome))
    }

    fn accept() -> Result<Response, ClientError> {
        done(Outcome::Accept {
            message: String::new(),
        })
    }

    fn reject(message: &str) -> Result<Response, ClientError> {
        done(Outcome::Reject {
            message: message.into(),
        })
    }

    fn run(conv: &mut MockConv, daemon: &mut MockDaemon, options: &Options) -> PamCode {
        authenticate(conv, options, false, |_| Ok(daemon))
    }

    fn run_silent(conv: &mut MockConv, daemon: &mut MockDaemon, options: &Options) -> PamCode {
        authenticate(conv, options, true, |_| Ok(daemon))
    }

    fn begin_of(request: &Request) -> &AuthBegin {
        match request {
            Request::AuthBegin(begin) => begin,
            other => panic!("expected AuthBegin, got {other:?}"),
        }
    }

    fn answer_of(request: &Request) -> (u64, &str) {
        match request {
            Request::AuthContinue { session, answer } => (*session, answer.expose()),
            other => panic!("expected AuthContinue, got {other:?}"),
        }
    }

    fn options() -> Options {
        Options::default()
    }

    fn must_not_connect(_: &Options) -> Result<Client, ClientError> {
        panic!("the module must not connect to the daemon here")
    }

    #[test]
    fn accepted_otp_follows_the_daemons_prompts_in_order() {
        let mut conv = MockConv::new(&["123456"]);
        let mut daemon = MockDaemon::new(vec![
            step(7, info("Please enter your OTP")),
            step(7, secret("PIN+OTP: ")),
            accept(),
        ]);
        assert_eq!(run(&mut conv, &mut daemon, &options()), PamCode::Success);
        assert_eq!(
            conv.shown,
            vec![
                Shown::Info("Please enter your OTP".into()),
                Shown::EchoOff("PIN+OTP: ".into())
            ]
        );
        assert_eq!(daemon.requests.len(), 3);
        let begin = begin_of(&daemon.requests[0]);
        assert_eq!(begin.user, "alice");
        assert_eq!(begin.service, "sshd");
        assert_eq!(begin.rhost.as_deref(), Some("192.0.2.7"));
        assert_eq!(begin.tty, None);
        assert_eq!(begin.ruser, None);
        assert!(begin.authtok.is_none());
        assert_eq!(answer_of(&daemon.requests[1]), (7, ""));
        assert_eq!(answer_of(&daemon.requests[2]), (7, "123456"));
    }

    #[test]
    fn echo_prompt_is_asked_with_echo_on_and_error_prompt_as_error_message() {
        let mut conv = MockConv::new(&["yes"]);
        let mut daemon = MockDaemon::new(vec![
            step(
                1,
                Prompt::Error {
                    text: "Token is about to expire".into(),
                },
            ),
            step(
                1,
                Prompt::Echo {
                    text: "Continue? ".into(),
                },
            ),
            accept(),
        ]);
        assert_eq!(run(&mut conv, &mut daemon, &options()), PamCode::Success);
        assert_eq!(
            conv.shown,
            vec![
                Shown::Error("Token is about to expire".into()),
                Shown::EchoOn("Continue? ".into())
            ]
        );
        assert_eq!(answer_of(&daemon.requests[2]), (1, "yes"));
    }

    #[test]
    fn accept_message_is_shown_as_info() {
        let mut conv = MockConv::new(&["123456"]);
        let mut daemon = MockDaemon::new(vec![
            step(1, secret("OTP: ")),
            done(Outcome::Accept {
                message: "Welcome".into(),
            }),
        ]);
        assert_eq!(run(&mut conv, &mut daemon, &options()), PamCode::Success);
        assert_eq!(conv.shown.last(), Some(&Shown::Info("Welcome".into())));
    }

    #[test]
    fn rejected_otp_shows_the_daemons_message_and_fails() {
        let mut conv = MockConv::new(&["000000"]);
        let mut daemon = MockDaemon::new(vec![step(1, secret("OTP: ")), reject("wrong OTP")]);
        assert_eq!(run(&mut conv, &mut daemon, &options()), PamCode::AuthErr);
        assert_eq!(
            conv.shown,
            vec![
                Shown::EchoOff("OTP: ".into()),
                Shown::Error("wrong OTP".into())
            ]
        );
    }

    #[test]
    fn pam_silent_suppresses_info_and_error_text_but_still_answers_and_prompts() {
        let mut conv = MockConv::new(&["123456"]);
        let mut daemon = MockDaemon::new(vec![
            step(3, info("We sent you an email")),
            step(
                3,
                Prompt::Error {
                    text: "Last attempt".into(),
                },
            ),
            step(3, secret("OTP: ")),
            reject("wrong OTP"),
        ]);
        assert_eq!(
            run_silent(&mut conv, &mut daemon, &options()),
            PamCode::AuthErr
        );
        assert_eq!(conv.shown, vec![Shown::EchoOff("OTP: ".into())]);
        assert_eq!(answer_of(&daemon.requests[1]), (3, ""));
        assert_eq!(answer_of(&daemon.requests[2]), (3, ""));
        assert_eq!(answer_of(&daemon.requests[3]), (3, "123456"));
    }

    #[test]
    fn pam_silent_suppresses_the_accept_message() {
        let mut conv = MockConv::new(&[]);
        let mut daemon = MockDaemon::new(vec![done(Outcome::Accept {
            message: "Welcome".into(),
        })]);
        assert_eq!(
            run_silent(&mut conv, &mut daemon, &options()),
            PamCode::Success
        );
        assert!(conv.shown.is_empty());
    }

    #[test]
    fn unknown_user_is_user_unknown_unless_ignore_unknown_user() {
        let mut conv = MockConv::new(&[]);
        let mut daemon = MockDaemon::new(vec![done(Outcome::UnknownUser)]);
        assert_eq!(
            run(&mut conv, &mut daemon, &options()),
            PamCode::UserUnknown
        );

        let lenient = Options {
            ignore_unknown_user: true,
            ..options()
        };
        let mut daemon = MockDaemon::new(vec![done(Outcome::UnknownUser)]);
        assert_eq!(run(&mut conv, &mut daemon, &lenient), PamCode::Ignore);
        assert!(conv.shown.is_empty());
    }

    #[test]
    fn user_without_token_fails_unless_nullok() {
        let mut conv = MockConv::new(&[]);
        let mut daemon = MockDaemon::new(vec![done(Outcome::NoToken)]);
        assert_eq!(run(&mut conv, &mut daemon, &options()), PamCode::AuthErr);
        assert!(
            conv.logged().contains("pictl token enroll"),
            "{}",
            conv.logged()
        );

        let nullok = Options {
            nullok: true,
            ..options()
        };
        let mut daemon = MockDaemon::new(vec![done(Outcome::NoToken)]);
        assert_eq!(run(&mut conv, &mut daemon, &nullok), PamCode::Ignore);
        assert!(
            conv.shown.is_empty(),
            "no prompt for a user without a token"
        );
    }

    #[test]
    fn daemon_that_cannot_decide_gives_authinfo_unavail() {
        let mut conv = MockConv::new(&["123456"]);
        let mut daemon =
            MockDaemon::new(vec![step(1, secret("OTP: ")), done(Outcome::Unavailable)]);
        assert_eq!(
            run(&mut conv, &mut daemon, &options()),
            PamCode::AuthinfoUnavail
        );
    }

    #[test]
    fn an_unreachable_server_upstream_is_told_to_the_user_and_gives_authinfo_unavail() {
        let mut conv = MockConv::new(&["123456"]);
        let said = "The authentication server cannot be reached.";
        let mut daemon = MockDaemon::new(vec![
            step(1, secret("OTP: ")),
            done(Outcome::ServerUnreachable {
                message: said.into(),
            }),
        ]);
        assert_eq!(
            run(&mut conv, &mut daemon, &options()),
            PamCode::AuthinfoUnavail
        );
        assert_eq!(conv.shown.last(), Some(&Shown::Error(said.into())));
        assert!(conv.logged().contains("pictl status"), "{}", conv.logged());
    }

    /// Authenticate with a connection that fails with `error`.
    fn refused_at_connect(error: impl FnOnce(&Options) -> ClientError) -> (PamCode, MockConv) {
        let mut conv = MockConv::new(&["123456"]);
        let code = authenticate(&mut conv, &options(), false, |o| {
            Err::<&mut MockDaemon, _>(error(o))
        });
        (code, conv)
    }

    #[test]
    fn unreachable_daemon_gives_authinfo_unavail_without_prompting() {
        let (code, conv) = refused_at_connect(|o| ClientError::Unreachable {
            path: o.socket.display().to_string(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
        assert_eq!(code, PamCode::AuthinfoUnavail);
        assert!(conv.shown.is_empty());
        assert!(
            conv.logged().contains("is pid running"),
            "{}",
            conv.logged()
        );
    }

    #[test]
    fn an_impostor_on_the_socket_gives_authinfo_unavail_and_says_how_to_trust_it() {
        let (code, conv) = refused_at_connect(|o| ClientError::UntrustedDaemon {
            path: o.socket.display().to_string(),
            found: Some(65534),
            expected: o.daemon_uid,
        });
        assert_eq!(code, PamCode::AuthinfoUnavail);
        assert!(conv.shown.is_empty(), "the user is asked nothing");
        let logged = conv.logged();
        for needle in ["/run/pi/pid.sock", "uid 65534", "daemon_uid=65534"] {
            assert!(logged.contains(needle), "{needle}: {logged}");
        }
    }

    #[test]
    fn timeout_on_the_first_exchange_gives_authinfo_unavail() {
        let mut conv = MockConv::new(&["123456"]);
        let mut daemon = MockDaemon::new(vec![Err(ClientError::Timeout)]);
        assert_eq!(
            run(&mut conv, &mut daemon, &options()),
            PamCode::AuthinfoUnavail
        );
        assert!(conv.shown.is_empty());
    }

    #[test]
    fn connection_lost_after_the_user_was_prompted_is_auth_err_not_authinfo_unavail() {
        // A user could otherwise sit on the prompt until the daemon's idle timeout closes the
        // connection, and a stack with `authinfo_unavail=ignore` would let them in.
        for lost in [
            ClientError::Timeout,
            ClientError::Protocol(protocol::FrameError::Closed),
            ClientError::Protocol(protocol::FrameError::Io(
                std::io::ErrorKind::BrokenPipe.into(),
            )),
        ] {
            let mut conv = MockConv::new(&["123456"]);
            let mut daemon = MockDaemon::new(vec![step(1, secret("OTP: ")), Err(lost)]);
            assert_eq!(run(&mut conv, &mut daemon, &options()), PamCode::AuthErr);
        }
        let mut conv = MockConv::new(&[]);
        let mut daemon = MockDaemon::new(vec![
            step(1, info("hello")),
            Err(ClientError::Protocol(protocol::FrameError::Closed)),
        ]);
        assert_eq!(run(&mut conv, &mut daemon, &options()), PamCode::AuthErr);
    }

    #[test]
    fn garbage_from_the_daemon_gives_authinfo_unavail() {
        let mut conv = MockConv::new(&[]);
        let mut daemon = MockDaemon::new(vec![Err(ClientError::Protocol(
            protocol::FrameError::Decode("nonsense".into()),
        ))]);
        assert_eq!(
            run(&mut conv, &mut daemon, &options()),
            PamCode::AuthinfoUnavail
        );

        let status = Response::Status(StatusInfo {
            version: "0".into(),
            protocol: 1,
            store_path: String::new(),
            tokens: 0,
            uptime_secs: 0,
            caller_is_admin: false,
            notices: Vec::new(),
        });
        let mut daemon = MockDaemon::new(vec![Ok(status)]);
        assert_eq!(
            run(&mut conv, &mut daemon, &options()),
            PamCode::AuthinfoUnavail
        );
    }

    #[test]
    fn permission_denied_by_the_daemon_is_auth_err() {
        let mut conv = MockConv::new(&[]);
        let mut daemon = MockDaemon::new(vec![Ok(Response::Error {
            code: ErrorCode::PermissionDenied,
            message: "uid 1000 may only authenticate itself".into(),
        })]);
        assert_eq!(run(&mut conv, &mut daemon, &options()), PamCode::AuthErr);
        assert!(
            conv.logged().contains("permission_denied"),
            "{}",
            conv.logged()
        );
    }

    #[test]
    fn other_daemon_errors_are_auth_err() {
        for code in [
            ErrorCode::RateLimited,
            ErrorCode::Internal,
            ErrorCode::SessionExpired,
        ] {
            let mut conv = MockConv::new(&["123456"]);
            let mut daemon = MockDaemon::new(vec![
                step(1, secret("OTP: ")),
                Ok(Response::Error {
                    code,
                    message: "no".into(),
                }),
            ]);
            assert_eq!(
                run(&mut conv, &mut daemon, &options()),
                PamCode::AuthErr,
                "{code}"
            );
        }
    }

    #[test]
    fn daemon_that_never_ends_the_session_is_cut_off() {
        struct Endless {
            calls: usize,
        }
        impl Transport for &mut Endless {
            fn call(&mut self, _: &Request) -> Result<Response, ClientError> {
                self.calls += 1;
                assert!(
                    self.calls < 1000,
                    "the module keeps talking to an endless daemon"
                );
                Ok(Response::AuthStep {
                    session: 1,
                    prompt: Prompt::Info {
                        text: "again".into(),
                    },
                })
            }
            fn daemon_pid(&self) -> Option<i32> {
                None
            }
        }
        let mut conv = MockConv::new(&[]);
        let mut daemon = Endless { calls: 0 };
        let code = authenticate(&mut conv, &options(), false, |_| Ok(&mut daemon));
        assert_eq!(code, PamCode::AuthErr);
        assert_eq!(
            daemon.calls,
            MAX_STEPS + 1,
            "AuthBegin plus one answer per allowed step"
        );
        assert_eq!(conv.shown.len(), MAX_STEPS);
    }

    #[test]
    fn conversation_failure_is_conv_err_and_nothing_more_is_sent() {
        let mut conv = MockConv::new(&[]);
        conv.replies
            .push_back(Err(ConvFailed("user pressed Ctrl-D".into())));
        let mut daemon = MockDaemon::new(vec![step(1, secret("OTP: "))]);
        assert_eq!(run(&mut conv, &mut daemon, &options()), PamCode::ConvErr);
        assert_eq!(
            daemon.requests.len(),
            1,
            "no answer may be sent after a failed prompt"
        );
    }

    #[test]
    fn try_first_pass_prompts_after_the_earlier_password_is_rejected() {
        let try_first = Options {
            try_first_pass: true,
            ..options()
        };
        let mut conv = MockConv::new(&["123456"]).with_authtok("hunter2");
        let mut daemon = MockDaemon::new(vec![
            reject("wrong OTP"),
            step(2, secret("OTP: ")),
            accept(),
        ]);
        assert_eq!(run(&mut conv, &mut daemon, &try_first), PamCode::Success);
        assert_eq!(daemon.requests.len(), 3);
        let first = begin_of(&daemon.requests[0]);
        assert_eq!(first.authtok.as_ref().map(Secret::expose), Some("hunter2"));
        let second = begin_of(&daemon.requests[1]);
        assert!(
            second.authtok.is_none(),
            "the retry must not resend the password"
        );
        assert_eq!(second.user, "alice");
        assert_eq!(answer_of(&daemon.requests[2]), (2, "123456"));
        assert_eq!(
            conv.shown,
            vec![Shown::EchoOff("OTP: ".into())],
            "the first rejection is not shown: it was about a password typed for another module"
        );
    }

    #[test]
    fn try_first_pass_accepted_without_prompting() {
        let try_first = Options {
            try_first_pass: true,
            ..options()
        };
        let mut conv = MockConv::new(&[]).with_authtok("123456");
        let mut daemon = MockDaemon::new(vec![accept()]);
        assert_eq!(run(&mut conv, &mut daemon, &try_first), PamCode::Success);
        assert!(conv.shown.is_empty());
        assert_eq!(daemon.requests.len(), 1);
    }

    #[test]
    fn try_first_pass_without_earlier_password_prompts_once() {
        let try_first = Options {
            try_first_pass: true,
            ..options()
        };
        let mut conv = MockConv::new(&["000000"]);
        let mut daemon = MockDaemon::new(vec![step(1, secret("OTP: ")), reject("wrong OTP")]);
        assert_eq!(run(&mut conv, &mut daemon, &try_first), PamCode::AuthErr);
        assert_eq!(daemon.requests.len(), 2, "no second session");
        assert!(begin_of(&daemon.requests[0]).authtok.is_none());
    }

    #[test]
    fn try_first_pass_does_not_start_over_after_the_user_was_prompted() {
        let try_first = Options {
            try_first_pass: true,
            ..options()
        };
        let mut conv = MockConv::new(&["000000"]).with_authtok("1234");
        let mut daemon = MockDaemon::new(vec![step(1, secret("OTP: ")), reject("wrong OTP")]);
        assert_eq!(run(&mut conv, &mut daemon, &try_first), PamCode::AuthErr);
        assert_eq!(daemon.requests.len(), 2);
        assert_eq!(conv.shown.last(), Some(&Shown::Error("wrong OTP".into())));
    }

    #[test]
    fn use_first_pass_without_earlier_password_fails_without_prompting_or_connecting() {
        let use_first = Options {
            use_first_pass: true,
            ..options()
        };
        for authtok in [None, Some("")] {
            let mut conv = MockConv::new(&["123456"]);
            conv.authtok = authtok.map(str::to_owned);
            let code = authenticate(&mut conv, &use_first, false, must_not_connect);
            assert_eq!(code, PamCode::AuthErr);
            assert!(conv.shown.is_empty());
            assert!(
                conv.logged().contains("use_first_pass"),
                "{}",
                conv.logged()
            );
        }
    }

    #[test]
    fn use_first_pass_rejected_is_not_retried() {
        let use_first = Options {
            use_first_pass: true,
            try_first_pass: true,
            ..options()
        };
        let mut conv = MockConv::new(&["123456"]).with_authtok("hunter2");
        let mut daemon = MockDaemon::new(vec![reject("wrong OTP")]);
        assert_eq!(run(&mut conv, &mut daemon, &use_first), PamCode::AuthErr);
        assert_eq!(daemon.requests.len(), 1);
        assert_eq!(conv.shown, vec![Shown::Error("wrong OTP".into())]);
    }

    #[test]
    fn earlier_password_is_neither_read_nor_sent_without_first_pass_options() {
        let mut conv = MockConv::new(&["123456"]).with_authtok("hunter2");
        let mut daemon = MockDaemon::new(vec![step(1, secret("OTP: ")), accept()]);
        assert_eq!(run(&mut conv, &mut daemon, &options()), PamCode::Success);
        assert!(begin_of(&daemon.requests[0]).authtok.is_none());
        assert_eq!(*conv.authtok_reads.borrow(), 0);
    }

    #[test]
    fn unusable_user_name_is_never_sent() {
        for user in [PamUser::Unusable, PamUser::Name("ali\0ce".into())] {
            let mut conv = MockConv::new(&[]);
            conv.user = Ok(user);
            let code = authenticate(&mut conv, &options(), false, must_not_connect);
            assert_eq!(code, PamCode::UserUnknown);
            let lenient = Options {
                ignore_unknown_user: true,
                ..options()
            };
            let code = authenticate(&mut conv, &lenient, false, must_not_connect);
            assert_eq!(code, PamCode::Ignore);
        }
    }

    #[test]
    fn failure_to_get_the_user_name_is_conv_err_even_with_ignore_unknown_user() {
        let mut conv = MockConv::new(&[]);
        conv.user = Err(ConvFailed("no conversation function".into()));
        let lenient = Options {
            ignore_unknown_user: true,
            nullok: true,
            ..options()
        };
        let code = authenticate(&mut conv, &lenient, false, must_not_connect);
        assert_eq!(code, PamCode::ConvErr);
    }

    #[test]
    fn overlong_user_name_is_refused_locally() {
        let mut conv = MockConv::new(&[]);
        conv.user = Ok(PamUser::Name("a".repeat(MAX_USER_LEN + 1)));
        let lenient = Options {
            ignore_unknown_user: true,
            ..options()
        };
        let code = authenticate(&mut conv, &lenient, false, must_not_connect);
        assert_eq!(code, PamCode::AuthErr);
    }

    #[test]
    fn overlong_answer_is_refused_locally_not_sent() {
        let long = "9".repeat(MAX_ANSWER_LEN + 1);
        let mut conv = MockConv::new(&[long.as_str()]);
        let mut daemon = MockDaemon::new(vec![step(1, secret("OTP: "))]);
        assert_eq!(run(&mut conv, &mut daemon, &options()), PamCode::AuthErr);
        assert_eq!(daemon.requests.len(), 1);
    }

    #[test]
    fn overlong_items_are_clipped_but_kept() {
        let mut conv = MockConv::new(&[]);
        conv.rhost = Some("é".repeat(MAX_TEXT_LEN));
        let mut daemon = MockDaemon::new(vec![accept()]);
        assert_eq!(run(&mut conv, &mut daemon, &options()), PamCode::Success);
        let rhost = begin_of(&daemon.requests[0]).rhost.clone().unwrap();
        assert!(rhost.len() <= MAX_TEXT_LEN && rhost.len() >= MAX_TEXT_LEN - 1);
        assert!(rhost.chars().all(|c| c == 'é'));
    }

    #[test]
    fn debug_logs_each_step_but_never_an_answer_or_password() {
        let debug = Options {
            debug: true,
            try_first_pass: true,
            ..options()
        };
        let mut conv = MockConv::new(&["987654"]).with_authtok("hunter2");
        let mut daemon = MockDaemon::new(vec![
            reject("wrong OTP"),
            step(5, info("hello")),
            step(5, secret("OTP: ")),
            accept(),
        ]);
        assert_eq!(run(&mut conv, &mut daemon, &debug), PamCode::Success);
        let logged = conv.logged();
        assert!(logged.contains("step 1"), "{logged}");
        assert!(logged.contains("step 2"), "{logged}");
        assert!(logged.contains("user=alice"), "{logged}");
        assert!(!logged.contains("987654"), "{logged}");
        assert!(!logged.contains("hunter2"), "{logged}");
    }

    #[test]
    fn without_debug_no_step_is_logged() {
        let mut conv = MockConv::new(&["987654"]);
        let mut daemon = MockDaemon::new(vec![step(5, secret("OTP: ")), accept()]);
        assert_eq!(run(&mut conv, &mut daemon, &options()), PamCode::Success);
        assert!(conv
            .logs
            .borrow()
            .iter()
            .all(|(l, _)| *l != LogLevel::Debug));
    }

    #[test]
    fn other_hooks_are_deliberate() {
        assert_eq!(setcred(), PamCode::Success);
        assert_eq!(open_session(), PamCode::Ignore);
        assert_eq!(close_session(), PamCode::Ignore);
    }

    fn change_pin(conv: &mut MockConv, daemon: &mut MockDaemon, phase: Phase) -> PamCode {
        chauthtok(conv, &options(), phase, false, |_| Ok(daemon))
    }

    fn pin_of(request: &Request) -> (&str, &str) {
        match request {
            Request::PinChange { ticket, pin } => (ticket.expose(), pin.expose()),
            other => panic!("expected PinChange, got {other:?}"),
        }
    }

    fn refused(code: ErrorCode, message: &str) -> Result<Response, ClientError> {
        Ok(Response::Error {
            code,
            message: message.into(),
        })
    }

    fn changed() -> Result<Response, ClientError> {
        Ok(Response::PinChanged {
            message: "The PIN has been changed.".into(),
        })
    }

    #[test]
    fn an_accept_with_a_pin_change_due_succeeds_and_keeps_the_ticket() {
        let mut conv = MockConv::new(&["1234123456"]);
        let mut daemon = MockDaemon::new(vec![
            step(1, secret("PIN and one-time password: ")),
            done(Outcome::AcceptPinChangeDue {
                message: "The PIN must change.".into(),
                ticket: Secret::new("t1"),
            }),
        ]);
        assert_eq!(run(&mut conv, &mut daemon, &options()), PamCode::Success);
        assert_eq!(conv.ticket.as_deref(), Some("t1"));
        assert_eq!(
            conv.shown.last(),
            Some(&Shown::Info("The PIN must change.".into()))
        );
        assert!(!conv.logged().contains("t1"), "{}", conv.logged());
    }

    #[test]
    fn without_a_ticket_acct_mgmt_and_chauthtok_ignore_without_asking_anyone() {
        let mut conv = MockConv::new(&["x"]);
        assert_eq!(acct_mgmt(&mut conv, false), PamCode::Ignore);
        for phase in [Phase::Prelim, Phase::Update, Phase::Neither] {
            let code = chauthtok(&mut conv, &options(), phase, false, must_not_connect);
            assert_eq!(code, PamCode::Ignore, "{phase:?}");
        }
        assert!(conv.shown.is_empty());
    }

    #[test]
    fn with_a_ticket_acct_mgmt_requires_a_new_token_and_says_why() {
        let mut conv = MockConv::new(&[]).with_ticket("t1");
        assert_eq!(acct_mgmt(&mut conv, false), PamCode::NewAuthtokReqd);
        assert!(
            matches!(&conv.shown[..], [Shown::Error(m)] if m.contains("PIN")),
            "{:?}",
            conv.shown
        );
        let mut quiet = MockConv::new(&[]).with_ticket("t1");
        assert_eq!(acct_mgmt(&mut quiet, true), PamCode::NewAuthtokReqd);
        assert!(quiet.shown.is_empty(), "PAM_SILENT");
    }

    #[test]
    fn with_a_ticket_the_preliminary_check_succeeds_without_connecting() {
        let mut conv = MockConv::new(&[]).with_ticket("t1");
        let code = chauthtok(
            &mut conv,
            &options(),
            Phase::Prelim,
            false,
            must_not_connect,
        );
        assert_eq!(code, PamCode::Success);
        let code = chauthtok(
            &mut conv,
            &options(),
            Phase::Neither,
            false,
            must_not_connect,
        );
        assert_eq!(code, PamCode::Ignore);
    }

    #[test]
    fn the_new_pin_is_asked_twice_sent_with_the_ticket_and_the_ticket_forgotten() {
        let mut conv = MockConv::new(&["5678", "5678"]).with_ticket("t1");
        let mut daemon = MockDaemon::new(vec![changed()]);
        assert_eq!(
            change_pin(&mut conv, &mut daemon, Phase::Update),
            PamCode::Success
        );
        assert_eq!(
            conv.shown,
            vec![
                Shown::EchoOff("New PIN: ".into()),
                Shown::EchoOff("Repeat new PIN: ".into()),
                Shown::Info("The PIN has been changed.".into()),
            ]
        );
        assert_eq!(pin_of(&daemon.requests[0]), ("t1", "5678"));
        assert_eq!(conv.ticket, None);
        assert!(!conv.logged().contains("5678"), "{}", conv.logged());
    }

    #[test]
    fn a_repeated_pin_that_differs_is_refused_and_nothing_is_sent() {
        let mut conv = MockConv::new(&["5678", "5679"]).with_ticket("t1");
        let mut daemon = MockDaemon::new(vec![]);
        assert_eq!(
            change_pin(&mut conv, &mut daemon, Phase::Update),
            PamCode::AuthtokErr
        );
        assert!(daemon.requests.is_empty());
        assert!(matches!(conv.shown.last(), Some(Shown::Error(m)) if m.contains("do not match")));
        assert_eq!(conv.ticket.as_deref(), Some("t1"), "kept for another try");
    }

    #[test]
    fn a_pin_the_rules_refuse_is_asked_again_up_to_three_times() {
        let answers = ["1", "1", "22", "22", "333", "333"];
        let mut conv = MockConv::new(&answers).with_ticket("t1");
        let too_short = || refused(ErrorCode::InvalidArgument, "the PIN must have at least 4");
        let mut daemon = MockDaemon::new(vec![too_short(), too_short(), too_short()]);
        assert_eq!(
            change_pin(&mut conv, &mut daemon, Phase::Update),
            PamCode::AuthtokErr
        );
        assert_eq!(daemon.requests.len(), PIN_TRIES);
        let errors = conv
            .shown
            .iter()
            .filter(|s| matches!(s, Shown::Error(m) if m.contains("at least 4")))
            .count();
        assert_eq!(errors, PIN_TRIES);

        let mut conv = MockConv::new(&["1", "1", "4444", "4444"]).with_ticket("t1");
        let mut daemon = MockDaemon::new(vec![too_short(), changed()]);
        assert_eq!(
            change_pin(&mut conv, &mut daemon, Phase::Update),
            PamCode::Success
        );
        assert_eq!(pin_of(&daemon.requests[1]), ("t1", "4444"));
    }

    #[test]
    fn an_expired_ticket_or_a_missing_daemon_is_authtok_err() {
        let mut conv = MockConv::new(&["5678", "5678"]).with_ticket("t1");
        let mut daemon = MockDaemon::new(vec![refused(
            ErrorCode::SessionExpired,
            "log in again to change the PIN",
        )]);
        assert_eq!(
            change_pin(&mut conv, &mut daemon, Phase::Update),
            PamCode::AuthtokErr
        );
        assert_eq!(daemon.requests.len(), 1, "not asked again");

        let mut conv = MockConv::new(&["5678", "5678"]).with_ticket("t1");
        let code = chauthtok(&mut conv, &options(), Phase::Update, false, |_| {
            Err::<Client, _>(ClientError::Timeout)
        });
        assert_eq!(code, PamCode::AuthtokErr);
        assert!(
            !conv.shown.iter().any(|s| matches!(s, Shown::EchoOff(_))),
            "nobody is asked for a PIN that cannot be set"
        );
    }

    #[test]
    fn a_conversation_that_fails_while_asking_is_conv_err() {
        let mut conv = MockConv::new(&["5678"]).with_ticket("t1");
        let mut daemon = MockDaemon::new(vec![]);
        assert_eq!(
            change_pin(&mut conv, &mut daemon, Phase::Update),
            PamCode::ConvErr
        );
        assert!(daemon.requests.is_empty());
    }

    #[test]
    fn inside_the_daemon_nothing_is_sent_and_the_login_fails() {
        let mut conv = MockConv::new(&["123456"]);
        conv.service = Some("pi-userstore".into());
        let mut daemon = MockDaemon::new(vec![]);
        daemon.pid = i32::try_from(std::process::id()).ok();
        assert_eq!(run(&mut conv, &mut daemon, &options()), PamCode::AuthErr);
        assert!(daemon.requests.is_empty(), "{:?}", daemon.requests);
        assert!(conv.shown.is_empty(), "nobody is asked anything");
        let logged = conv.logged();
        assert!(
            logged.contains("Error: pam_pi loaded by the PAM service pid uses for password checks")
                && logged.contains("service pi-userstore")
                && logged.contains("remove it from that service"),
            "{logged}"
        );
    }

    #[test]
    fn a_daemon_in_another_process_is_asked() {
        let mut conv = MockConv::new(&["123456"]);
        let mut daemon = MockDaemon::new(vec![step(1, secret("OTP: ")), accept()]);
        daemon.pid = Some(1);
        assert_eq!(run(&mut conv, &mut daemon, &options()), PamCode::Success);
        assert_eq!(daemon.requests.len(), 2);
        assert!(!is_this_process(None), "unknown peer: not us");
        assert!(!is_this_process(Some(-1)));
    }
}
