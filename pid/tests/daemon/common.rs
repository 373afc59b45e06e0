//! The harness: a daemon in this process whose clock the test sets, and the requests the tests
//! send it, as pam_pi, pictl or another local caller would.

use pid::caller::Caller;
use pid::clock::FixedClock;
use pid::config::Config;
use pid::connection::ConnState;
use pid::State;
use protocol::admin::{AdminRequest, AdminResponse, EnrollRequest, TokenSettings, UserRef};
use protocol::{
    AuthBegin, Client, Enrolled, ErrorCode, MachineApp, MachineAttach, MachineOptions,
    MachineTokenInfo, Outcome, Prompt, Request, Response, Secret, TokenInfo, TokenType,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const KEY20: &str = "3132333435363738393031323334353637383930";
/// RFC 4226 Appendix D, counters 0..9.
pub const HOTP: [&str; 10] = [
    "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
    "520489",
];

pub const CHEAP_ARGON2: &str = "[argon2]\nmemory_kib = 64\niterations = 1\nparallelism = 1\n";

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub clock: FixedClock,
    pub state: Arc<State>,
    pub rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

fn config(dir: &Path, extra: &str) -> Config {
    // The cheapest argon2 unless the test brings its own [argon2] section.
    let argon2 = if extra.contains("[argon2]") {
        ""
    } else {
        CHEAP_ARGON2
    };
    let text = format!(
        "socket = \"{d}/pid.sock\"\nstate_dir = \"{d}/state\"\nenckey_file = \"{d}/enckey\"\n\
         {extra}\n{argon2}",
        d = dir.display()
    );
    Config::parse(&text, "test").unwrap()
}

/// A `[[policy]]` named `name` of `scope` with no conditions (every service, host and user);
/// `actions` is the inline table's contents.
pub fn policy(name: &str, scope: &str, actions: &str) -> String {
    format!("[[policy]]\nname = \"{name}\"\nscope = \"{scope}\"\nactions = {{ {actions} }}\n")
}

/// The realm `default` of the host's accounts and the realm `realm` of the users in `file`
/// (passwd format).
pub fn host_and_file_realms(file: &Path, realm: &str) -> String {
    format!(
        "[resolvers.local]\ntype = \"passwd\"\n[resolvers.people]\ntype = \"flatfile\"\nfile = \"{}\"\n\
         [realms.default]\nresolvers = [\"local\"]\n[realms.{realm}]\nresolvers = [\"people\"]\n",
        file.display()
    )
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_with("", 1_111_111_109)
    }

    pub fn start_with(extra: &str, now: i64) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        Daemon::start_in(dir, extra, FixedClock::new(now))
    }

    /// A daemon whose directory holds `people`, a passwd-format file of `users`; its
    /// configuration is `extra` given that file's path.
    pub fn start_with_people(users: &str, now: i64, extra: impl FnOnce(&Path) -> String) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let people = dir.path().join("people");
        std::fs::write(&people, users).unwrap();
        let extra = extra(&people);
        Daemon::start_in(dir, &extra, FixedClock::new(now))
    }

    fn start_in(dir: tempfile::TempDir, extra: &str, clock: FixedClock) -> Daemon {
        let cfg = config(dir.path(), extra);
        let socket = cfg.socket.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let c2 = clock.clone();
        let (state, server) = rt.block_on(async move {
            let state = Arc::new(State::open(cfg, Arc::new(c2)).unwrap());
            let listener = pid::server::bind(&state.live().config.socket).unwrap();
            let s2 = state.clone();
            let server = tokio::spawn(async move {
                pid::server::run(listener, s2, async {
                    let _ = rx.await;
                })
                .await
            });
            (state, server)
        });
        Daemon {
            dir,
            socket,
            clock,
            state,
            rt,
            stop: Some(tx),
            server: Some(server),
        }
    }

    /// Stop the server and reopen the same store, as a restart would.
    pub fn restart(self) -> Daemon {
        self.restart_with("")
    }

    /// Restart with this configuration.
    pub fn restart_with(mut self, extra: &str) -> Daemon {
        self.shutdown();
        let clock = self.clock.clone();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        drop(self);
        Daemon::start_in(dir, extra, clock)
    }

    pub fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = self.rt.block_on(h);
        }
        self.rt.block_on(self.state.store.durable()).unwrap();
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.socket).unwrap()
    }

    pub fn call(&self, req: Request) -> Response {
        self.client().call(&req).unwrap()
    }

    /// `req` from `who` on the connection `conn`, straight to the dispatcher: the socket would
    /// take the caller from the kernel, i.e. root.
    pub fn dispatch_on(&self, who: &Caller, conn: &mut ConnState, req: Request) -> Response {
        self.rt
            .block_on(pid::dispatch::dispatch(&self.state, who, conn, req))
    }

    /// `req` from `who` on a connection of its own.
    pub fn dispatch_as(&self, who: &Caller, req: Request) -> Response {
        self.dispatch_on(who, &mut ConnState::default(), req)
    }

    /// An admin request from `who` (not root).
    pub fn admin_as(&self, who: &Caller, req: AdminRequest) -> Response {
        self.dispatch_as(who, Request::Admin(req))
    }

    pub fn admin(&self, req: AdminRequest) -> AdminResponse {
        match self.call(Request::Admin(req)) {
            Response::Admin(a) => a,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn admin_err(&self, req: AdminRequest) -> (ErrorCode, String) {
        match self.call(Request::Admin(req)) {
            Response::Error { code, message } => (code, message),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    pub fn enroll(
        &self,
        t: TokenType,
        user: &str,
        key: &str,
        pin: Option<&str>,
        digits: u8,
    ) -> String {
        self.enroll_spec(EnrollRequest {
            otpkey: Some(Secret::new(key)),
            pin: pin.map(Secret::new),
            digits: Some(digits),
            ..spec_for(t, user)
        })
        .token
        .serial
    }

    /// root's HOTP token with the RFC 4226 key: six digits, `HOTP` are its codes.
    pub fn enroll_root_hotp(&self, pin: Option<&str>) -> String {
        self.enroll(TokenType::Hotp, "root", KEY20, pin, 6)
    }

    /// A HOTP token of nobody, with this serial and a generated key.
    pub fn enroll_unassigned(&self, serial: &str) -> Enrolled {
        self.enroll_spec(EnrollRequest {
            token_type: Some(TokenType::Hotp),
            serial: Some(serial.into()),
            ..Default::default()
        })
    }

    pub fn enroll_spec(&self, spec: EnrollRequest) -> Enrolled {
        match self.admin(AdminRequest::TokenEnroll(Box::new(spec))) {
            AdminResponse::Enrolled(e) => *e,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// The refusal of an enrollment.
    pub fn enroll_err(&self, spec: EnrollRequest) -> (ErrorCode, String) {
        self.admin_err(AdminRequest::TokenEnroll(Box::new(spec)))
    }

    pub fn show(&self, serial: &str) -> TokenInfo {
        match self.admin(AdminRequest::TokenShow {
            serial: serial.into(),
        }) {
            AdminResponse::Token(t) => *t,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn set(&self, serial: &str, settings: TokenSettings) {
        self.admin(AdminRequest::TokenSet {
            serial: serial.into(),
            settings: Box::new(settings),
        });
    }

    /// The serial of the first token listed (of `user`, or of anyone).
    pub fn first_serial(&self, user: Option<&str>) -> String {
        match self.admin(AdminRequest::TokenList {
            user: user.map(local_user),
            after: None,
            limit: 10,
        }) {
            AdminResponse::Tokens { tokens, .. } => tokens[0].serial.clone(),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// The number of tokens `Status` reports.
    pub fn token_count(&self) -> u64 {
        match self.call(Request::Status) {
            Response::Status(s) => s.tokens,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn audit(&self) -> Vec<protocol::AuditEntry> {
        match self.admin(AdminRequest::AuditShow {
            user: None,
            before: None,
            limit: 32,
        }) {
            AdminResponse::Audit { entries, .. } => entries,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A login as pam_pi makes it: begin, then `pass` as the answer to the prompt.
    pub fn login(&self, user: &str, pass: &str) -> Outcome {
        let mut c = self.client();
        match c
            .call(&Request::AuthBegin(auth_begin(user, "test", None)))
            .unwrap()
        {
            Response::AuthStep {
                session,
                prompt: Prompt::Secret { .. },
            } => {
                match c
                    .call(&Request::AuthContinue {
                        session,
                        answer: Secret::new(pass),
                    })
                    .unwrap()
                {
                    Response::AuthDone(o) => o,
                    other => panic!("unexpected {other:?}"),
                }
            }
            Response::AuthDone(o) => o,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A login for `service` from `rhost` with `pass` as the password an earlier module read.
    pub fn login_from(
        &self,
        user: &str,
        pass: &str,
        service: &str,
        rhost: Option<&str>,
    ) -> Outcome {
        let begin = AuthBegin {
            rhost: rhost.map(str::to_owned),
            ..auth_begin(user, service, Some(pass))
        };
        match self.call(Request::AuthBegin(begin)) {
            Response::AuthDone(o) => o,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// The prompt a login of `user` starts with (no answer is sent).
    pub fn first_prompt(&self, user: &str) -> String {
        match self.call(Request::AuthBegin(auth_begin(user, "test", None))) {
            Response::AuthStep {
                prompt: Prompt::Secret { text },
                ..
            } => text,
            other => panic!("expected a prompt, got {other:?}"),
        }
    }

    /// AuthBegin with `first` as the authtok; then answer every further prompt from `then`.
    pub fn converse(&self, user: &str, first: &str, then: &[&str]) -> (Vec<String>, Outcome) {
        let mut c = self.client();
        let mut prompts = Vec::new();
        let mut answers = then.iter();
        let mut resp = c
            .call(&Request::AuthBegin(auth_begin(user, "test", Some(first))))
            .unwrap();
        loop {
            match resp {
                Response::AuthStep {
                    session,
                    prompt: Prompt::Secret { text },
                } => {
                    prompts.push(text);
                    let answer = answers.next().expect("a prompt nobody expected");
                    resp = c
                        .call(&Request::AuthContinue {
                            session,
                            answer: Secret::new(*answer),
                        })
                        .unwrap();
                }
                Response::AuthDone(o) => return (prompts, o),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Start a login with `first`, read the challenge prompt, answer what `answer` makes of it.
    pub fn answer_challenge(
        &self,
        user: &str,
        first: &str,
        answer: impl Fn(&str) -> String,
    ) -> (String, Outcome) {
        let mut c = self.client();
        match c
            .call(&Request::AuthBegin(auth_begin(user, "test", Some(first))))
            .unwrap()
        {
            Response::AuthStep {
                session,
                prompt: Prompt::Secret { text },
            } => {
                let reply = answer(&text);
                match c
                    .call(&Request::AuthContinue {
                        session,
                        answer: Secret::new(reply),
                    })
                    .unwrap()
                {
                    Response::AuthDone(o) => (text, o),
                    // A wrong answer is asked again: not accepted (yet).
                    Response::AuthStep {
                        prompt: Prompt::Secret { text: again },
                        ..
                    } => (text, Outcome::Reject { message: again }),
                    other => panic!("unexpected {other:?}"),
                }
            }
            other => panic!("expected a challenge, got {other:?}"),
        }
    }

    pub fn enroll_sshkey(&self, user: &str, key: &str) -> Enrolled {
        self.enroll_spec(EnrollRequest {
            sshkey: Some(key.into()),
            ..spec_for(TokenType::Sshkey, user)
        })
    }

    pub fn attach(&self, serial: &str, app: MachineApp, options: MachineOptions) -> Response {
        self.call(Request::Admin(AdminRequest::MachineAttach(Box::new(
            MachineAttach {
                serial: serial.into(),
                app,
                host: None,
                options,
            },
        ))))
    }

    pub fn ssh_keys(&self, login: &str, service_id: Option<&str>) -> Vec<String> {
        match self.call(Request::SshKeys {
            user: login.into(),
            service_id: service_id.map(Into::into),
        }) {
            Response::SshKeys { keys } => keys,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn machines(&self) -> Vec<MachineTokenInfo> {
        match self.admin(AdminRequest::MachineList {
            serial: None,
            app: None,
            host: None,
        }) {
            AdminResponse::Machines(m) => m,
            other => panic!("unexpected {other:?}"),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

pub fn accepted(o: &Outcome) -> bool {
    matches!(o, Outcome::Accept { .. })
}

/// A login of the default realm.
pub fn local_user(login: &str) -> UserRef {
    UserRef {
        login: login.into(),
        realm: None,
    }
}

/// An `AuthBegin` of `user` for `service`, with `authtok` if an earlier module read a password.
pub fn auth_begin(user: &str, service: &str, authtok: Option<&str>) -> AuthBegin {
    AuthBegin {
        user: user.into(),
        service: service.into(),
        authtok: authtok.map(Secret::new),
        ..Default::default()
    }
}

/// An enrollment of a token of type `t` for `login`, nothing else given.
pub fn spec_for(t: TokenType, login: &str) -> EnrollRequest {
    EnrollRequest {
        token_type: Some(t),
        user: Some(local_user(login)),
        ..Default::default()
    }
}

pub fn root_spec(t: TokenType) -> EnrollRequest {
    spec_for(t, "root")
}

pub fn enroll_req(t: TokenType, user: Option<&str>, pin: Option<&str>) -> AdminRequest {
    AdminRequest::TokenEnroll(Box::new(EnrollRequest {
        token_type: Some(t),
        user: user.map(local_user),
        pin: pin.map(Secret::new),
        ..Default::default()
    }))
}

pub fn error_code(r: &Response) -> Option<ErrorCode> {
    match r {
        Response::Error { code, .. } => Some(*code),
        _ => None,
    }
}

/// A local caller whose uid, gid and account are `uid`.
pub fn caller(uid: u32, is_admin: bool) -> Caller {
    Caller {
        uid,
        gid: uid,
        pid: 1,
        is_admin,
        account: uid,
    }
}

/// The host account `nobody` (uid 65534, group nogroup), as a plain user or as a member of the
/// admin group.
pub fn nobody(is_admin: bool) -> Caller {
    caller(65534, is_admin)
}
