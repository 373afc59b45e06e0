//! A real privacyIDEA server (the PyPI release `tests/privacyidea-venv.sh` installs) for the tests
//! of pid's upstream realms: gunicorn on 127.0.0.1 on a free port, over plain HTTP or over HTTPS
//! with a certificate from a CA the test makes, with its configuration, sqlite database, keys and
//! logs in a temporary directory removed when the test ends. Killed (its whole process group) on
//! drop; a test that fails while a server is up prints the end of the server's logs, and so does
//! every failure of the fixture itself.
//!
//! Setting up an empty instance (encryption key, audit keys, tables, the admin) costs several
//! seconds of Python, so it is done once per machine into a "blank instance" directory beside the
//! virtualenv, named after everything that goes into it, and each server starts from a copy. What
//! a server costs is then gunicorn importing privacyIDEA: a few seconds (docs/testing.md).
//!
//! The admin REST client panics with the server's answer when a call fails: a fixture that cannot
//! set up what the test asked for is a failed test. PIN hashing is argon2 at its cheapest
//! parameters, which privacyIDEA's own test configuration uses too.

use crate::{certs, process};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The local administrator every server has.
pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "test";
/// The realm `add_user` fills (the default realm), over the `passwdresolver` `RESOLVER`.
pub const REALM: &str = "pitest";
pub const RESOLVER: &str = "pitest-users";
/// The machine LUKS tokens are attached to: the only host of a `hosts` machine resolver.
pub const MACHINE: &str = "pi-test-machine";
pub const MACHINE_RESOLVER: &str = "pitest-hosts";
/// How long gunicorn may take to answer `/healthz/`: importing privacyIDEA on a loaded machine.
pub const READY_DEADLINE: Duration = Duration::from_secs(90);
/// One request in the server's access log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The port pid's end of the connection had.
    pub client_port: u16,
    pub method: String,
    /// Without the query.
    pub path: String,
}

/// How much of each log a failing test shows (privacyIDEA logs several lines per request).
const LOG_TAIL_LINES: usize = 60;
/// How long one REST call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// One worker: every worker imports privacyIDEA and writes to the database as it starts; with
/// two, five servers starting at once took over 20 s each on two cores instead of under 2 s.
const WORKERS: &str = "1";
/// gunicorn's threaded worker with one thread: requests are answered one after another (which no
/// test here needs otherwise), and, unlike its default sync worker, connections are kept alive
/// between requests, as a production server behind Apache or nginx keeps them, so that tests can
/// see that pid reuses its connections.
const WORKER_CLASS: [&str; 4] = ["--worker-class", "gthread", "--threads", "1"];
/// How long gunicorn keeps an idle connection open, in seconds.
const KEEP_ALIVE_SECS: &str = "30";
/// gunicorn's configuration: a hook that writes each request's client port (one per
/// connection), method and path to `REQUEST_LOG`. (gunicorn's own access log cannot serve:
/// privacyIDEA's logging setup disables the loggers that exist before it.)
const GUNICORN_CONF: &str = "gunicorn.conf.py";
const REQUEST_LOG: &str = "requests.log";
const GUNICORN_HOOK: &str = r#"
def pre_request(worker, req):
    with open("requests.log", "a") as log:
        log.write("%s %s %s\n" % (req.peer_addr[1], req.method, req.path))
"#;
const APP: &str = r#"privacyidea.app:create_app(config_name="production", silent=True)"#;
/// What a blank instance holds besides its configuration; a server starts from copies.
const BLANK_FILES: [&str; 4] = ["enckey", "private.pem", "public.pem", "pi.sqlite"];
const BLANK_READY: &str = "ready";

/// What `pi-manage` does to set up a server, in one Python process rather than four (each pays
/// for importing privacyIDEA). `standalone_mode=False` returns an exit code where click would
/// otherwise exit, so every step is checked.
const BOOTSTRAP: &str = r#"
import sys
from privacyidea.cli.pimanage import cli
admin, password = sys.argv[1], sys.argv[2]
for args in (["setup", "create_enckey"], ["setup", "create_audit_keys"],
             ["setup", "create_tables"], ["admin", "add", admin, "-p", password]):
    rv = cli.main(args, prog_name="pi-manage", standalone_mode=False)
    if rv not in (None, 0):
        sys.exit("pi-manage %s failed with %r" % (" ".join(args[:2]), rv))
"#;

/// How the server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    /// `http://`
    Plain,
    /// `https://` with a certificate for 127.0.0.1 and localhost signed by `ca_file()`.
    Ca,
}

pub struct PrivacyIdea {
    dir: TempDir,
    tls: Tls,
    port: u16,
    child: Option<Child>,
    agent: ureq::Agent,
    state: Mutex<State>,
}

/// What the fixture has set up so far on the server.
#[derive(Default)]
struct State {
    admin_token: Option<String>,
    users: Vec<String>,
    machine_resolver: bool,
    service_ids: Vec<String>,
    serials: u32,
}

/// What `/validate/check` (or `/validate/offlinerefill`) answered: HTTP status and JSON.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub json: Value,
}

impl Answer {
    /// `ACCEPT`, `REJECT`, `CHALLENGE`, or "" when the request failed (see `json`).
    pub fn authentication(&self) -> &str {
        self.json["result"]["authentication"].as_str().unwrap_or("")
    }

    pub fn accepted(&self) -> bool {
        self.authentication() == "ACCEPT"
    }

    /// `detail.transaction_id` of a `CHALLENGE`, for `validate_check_tx`.
    pub fn transaction_id(&self) -> &str {
        self.json["detail"]["transaction_id"].as_str().unwrap_or("")
    }

    /// `auth_items.offline[0]`: the offline OTP hashes (`response`) and the `refilltoken`.
    pub fn offline_item(&self) -> &Value {
        &self.json["auth_items"]["offline"][0]
    }
}

impl PrivacyIdea {
    /// A server with nothing but the admin, answering on `url()`.
    pub fn start(tls: Tls) -> PrivacyIdea {
        let started = Instant::now();
        let blank = blank_instance();
        let dir = tempfile::Builder::new()
            .prefix("pi-test-privacyidea-")
            .tempdir()
            .expect("create privacyIDEA's temporary directory");
        let root = dir.path();
        for file in BLANK_FILES {
            fs::copy(blank.join(file), root.join(file))
                .unwrap_or_else(|e| panic!("copy {file} of {}: {e}", blank.display()));
        }
        fs::write(root.join("pi.cfg"), config(root)).expect("write pi.cfg");
        fs::write(root.join(GUNICORN_CONF), GUNICORN_HOOK).expect("write gunicorn's configuration");
        fs::write(root.join("users"), "").expect("write the users file");
        fs::write(root.join("hosts"), format!("127.0.0.1 {MACHINE}\n"))
            .expect("write the hosts file");
        let agent = match tls {
            Tls::Plain => agent(None),
            Tls::Ca => {
                certs::make_certificates(root);
                agent(Some(&root.join("ca.pem")))
            }
        };
        let mut pi = PrivacyIdea {
            dir,
            tls,
            port: 0,
            child: None,
            agent,
            state: Mutex::new(State::default()),
        };
        // A free port can be taken by another test before gunicorn binds it: retry.
        for attempt in 0..5 {
            pi.port = crate::free_port();
            if pi.spawn() {
                eprintln!(
                    "privacyIDEA answers on {} {:.1} s after start",
                    pi.url(),
                    started.elapsed().as_secs_f64()
                );
                return pi;
            }
            eprintln!("gunicorn could not listen (attempt {attempt}); trying another port");
        }
        panic!("privacyIDEA did not start on any of 5 ports");
    }

    /// Start gunicorn on `self.port`; false if it exited before answering (port taken).
    fn spawn(&mut self) -> bool {
        assert!(self.child.is_none(), "privacyIDEA already running");
        let root = self.dir.path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.join("gunicorn.log"))
            .expect("open gunicorn's log");
        let log2 = log.try_clone().expect("clone the log handle");
        let mut cmd = Command::new(venv().join("bin/gunicorn"));
        // Its own directory, with its own configuration file.
        cmd.current_dir(root)
            .env("PRIVACYIDEA_CONFIGFILE", root.join("pi.cfg"))
            .env_remove("GUNICORN_CMD_ARGS")
            .args(["--workers", WORKERS, "--graceful-timeout", "5"])
            .args(WORKER_CLASS)
            .args(["--keep-alive", KEEP_ALIVE_SECS])
            .args(["--config", GUNICORN_CONF, "--bind"])
            .arg(format!("127.0.0.1:{}", self.port));
        if self.tls == Tls::Ca {
            cmd.arg("--certfile")
                .arg(root.join("server.pem"))
                .arg("--keyfile")
                .arg(root.join("server.key"));
        }
        // A process group of its own, so that stop and drop reach the workers too.
        let child = cmd
            .arg(APP)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .spawn()
            .expect("start gunicorn");
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if let Some(_status) = self.child_mut().try_wait().expect("poll gunicorn") {
                self.child = None;
                return false;
            }
            if self.ready() {
                return true;
            }
            if started.elapsed() > READY_DEADLINE {
                panic!(
                    "privacyIDEA did not report ready on {}/healthz/ within {READY_DEADLINE:?}",
                    self.url()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn ready(&self) -> bool {
        self.agent
            .get(&format!("{}/healthz/", self.url()))
            .timeout(Duration::from_secs(2))
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
            .is_some_and(|body| body.contains("\"ready\""))
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("privacyIDEA is not running")
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        let scheme = match self.tls {
            Tls::Plain => "http",
            Tls::Ca => "https",
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The server's directory (its configuration, database, users file and logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA that signed the server's certificate (PEM); only with `Tls::Ca`.
    pub fn ca_file(&self) -> PathBuf {
        assert_eq!(self.tls, Tls::Ca, "this privacyIDEA speaks plain HTTP");
        self.dir.path().join("ca.pem")
    }

    /// A CA that signed nothing this server presents: a client trusting only it must refuse.
    pub fn other_ca_file(&self) -> PathBuf {
        assert_eq!(self.tls, Tls::Ca, "this privacyIDEA speaks plain HTTP");
        self.dir.path().join("other-ca.pem")
    }

    /// SIGTERM to gunicorn and wait for it and its workers: the server goes away in the middle of
    /// a test. Its database stays for `restart`.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = process_group(&child);
        let _ = killpg(group, Signal::SIGTERM);
        let started = Instant::now();
        // gunicorn's master exits after its workers (or kills them at --graceful-timeout). The
        // group is signalled only while the master is unreaped: afterwards its id may be reused.
        while child.try_wait().expect("poll gunicorn").is_none() {
            if started.elapsed() > Duration::from_secs(15) {
                let _ = killpg(group, Signal::SIGKILL);
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err(),
            "privacyIDEA stopped but {} still accepts connections",
            self.url()
        );
    }

    /// Start again on the same port with the same database (after `stop`, or instead of it).
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.spawn(),
            "privacyIDEA did not start again on {}",
            self.url()
        );
    }

    /// The requests the server was sent, over all starts, with the client port of each: one
    /// port is one connection (the kernel hands out ephemeral ports in turn, so none comes back
    /// within a test).
    pub fn requests(&self) -> Vec<Request> {
        let text = fs::read_to_string(self.dir.path().join(REQUEST_LOG)).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut words = line.split(' ');
                Some(Request {
                    client_port: words.next()?.parse().ok()?,
                    method: words.next()?.to_owned(),
                    path: words.next()?.to_owned(),
                })
            })
            .collect()
    }

    /// gunicorn's log (with what privacyIDEA printed) and privacyIDEA's own log, over all starts.
    pub fn log(&self) -> String {
        self.log_tail(usize::MAX)
    }

    /// The last `lines` lines of each of the logs `log` shows.
    fn log_tail(&self, lines: usize) -> String {
        let tail = |name: &str| {
            let text = fs::read(self.dir.path().join(name))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        };
        format!(
            "--- gunicorn.log ---\n{}\n--- privacyidea.log ---\n{}",
            tail("gunicorn.log"),
            tail("privacyidea.log")
        )
    }

    // ---- users, tokens, policies, machines -------------------------------------------------

    /// Add `login` to the users file (passwd format) of the default realm `REALM`, creating the
    /// resolver and the realm with the first user.
    pub fn add_user(&self, login: &str) {
        let mut state = self.state.lock().expect("fixture state");
        assert!(
            !state.users.iter().any(|u| u == login),
            "user {login} added twice"
        );
        let uid = 20000 + state.users.len();
        let mut users = OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("users"))
            .expect("open the users file");
        writeln!(
            users,
            "{login}:x:{uid}:{uid}:{login},,,:/nonexistent:/usr/sbin/nologin"
        )
        .expect("append to the users file");
        let first = state.users.is_empty();
        state.users.push(login.to_owned());
        drop(state);
        if first {
            let file = self.dir.path().join("users");
            self.post(
                &format!("/resolver/{RESOLVER}"),
                json!({"type": "passwdresolver", "fileName": file}),
            );
            self.post(&format!("/realm/{REALM}"), json!({"resolvers": RESOLVER}));
            self.post(&format!("/defaultrealm/{REALM}"), json!({}));
        }
    }

    /// An HOTP token (sha1, 6 digits, counter 0) with key `key_hex` and token PIN `pin` for
    /// `user` of `REALM`. Returns its serial.
    pub fn hotp_token(&self, user: &str, key_hex: &str, pin: &str) -> String {
        self.oath_token("hotp", "HOTP", user, key_hex, pin)
    }

    /// A TOTP token (sha1, 6 digits, 30 s steps), otherwise as `hotp_token`.
    pub fn totp_token(&self, user: &str, key_hex: &str, pin: &str) -> String {
        self.oath_token("totp", "TOTP", user, key_hex, pin)
    }

    fn oath_token(&self, kind: &str, prefix: &str, user: &str, key_hex: &str, pin: &str) -> String {
        let serial = self.new_serial(prefix);
        let mut params = json!({
            "type": kind, "serial": serial, "otpkey": key_hex, "pin": pin,
            "user": user, "realm": REALM, "otplen": 6, "hashlib": "sha1",
        });
        if kind == "totp" {
            params["timeStep"] = json!(30);
        }
        self.post("/token/init", params);
        serial
    }

    /// An SSH key token holding `public_key` (an `authorized_keys` line) for `user`.
    pub fn sshkey_token(&self, user: &str, public_key: &str) -> String {
        let serial = self.new_serial("SSHK");
        self.post(
            "/token/init",
            json!({"type": "sshkey", "serial": serial, "sshkey": public_key,
                   "user": user, "realm": REALM}),
        );
        serial
    }

    /// A Yubikey challenge-response token as privacyIDEA's LUKS application knows it: a TOTP
    /// token whose serial starts with `UBOM`, answering HMAC-SHA1 of a challenge under `key_hex`.
    pub fn luks_token(&self, key_hex: &str) -> String {
        let serial = self.new_serial("UBOM");
        self.post(
            "/token/init",
            json!({"type": "totp", "serial": serial, "otpkey": key_hex, "otplen": 6}),
        );
        serial
    }

    /// An SMTP server definition `name` for 127.0.0.1:`port`, plain and without login (a
    /// `sinks::Sink::smtp()`), for `email_token`.
    pub fn smtp_server(&self, name: &str, port: u16) {
        self.post(
            &format!("/smtpserver/{name}"),
            json!({"server": "127.0.0.1", "port": port, "tls": false,
                   "sender": "privacyidea@pi.test", "timeout": 5}),
        );
    }

    /// An email token for `user` with token PIN `pin`: a login with the PIN alone is answered
    /// with a challenge, and the code goes to `address` through the SMTP definition `smtp`.
    pub fn email_token(&self, user: &str, address: &str, smtp: &str, pin: &str) -> String {
        let serial = self.new_serial("EMAI");
        self.post(
            "/token/init",
            json!({"type": "email", "serial": serial, "email": address,
                   "email.identifier": smtp, "pin": pin, "user": user, "realm": REALM}),
        );
        serial
    }

    fn new_serial(&self, prefix: &str) -> String {
        let mut state = self.state.lock().expect("fixture state");
        state.serials += 1;
        format!("{prefix}{:04}", state.serials)
    }

    /// An active policy `name` in `scope` (`authentication`, `admin`, ...) with `action`
    /// (`otppin=userstore`, `passthru`, ...), for `realm` or for every realm.
    pub fn policy(&self, name: &str, scope: &str, action: &str, realm: Option<&str>) {
        let mut params = json!({"scope": scope, "action": action, "active": true});
        if let Some(realm) = realm {
            params["realm"] = json!(realm);
        }
        self.post(&format!("/policy/{name}"), params);
    }

    /// Attach HOTP token `serial` to any machine for the `offline` application: a successful
    /// `/validate/check` then hands out `count` hashes (pbkdf2-sha512, `rounds`) of the next
    /// PIN+OTP values in `auth_items.offline`.
    pub fn attach_offline(&self, serial: &str, count: u32, rounds: u32) {
        self.post(
            "/machine/token",
            json!({"serial": serial, "application": "offline",
                   "count": count.to_string(), "rounds": rounds.to_string()}),
        );
    }

    /// Attach SSH key token `serial` for login `user` on the servers of `service_id` (created
    /// if new): `ssh_keys(service_id, user)` then lists its key.
    pub fn attach_ssh(&self, serial: &str, service_id: &str, user: &str) {
        let new = {
            let mut state = self.state.lock().expect("fixture state");
            let new = !state.service_ids.iter().any(|s| s == service_id);
            if new {
                state.service_ids.push(service_id.to_owned());
            }
            new
        };
        if new {
            self.post(
                &format!("/serviceid/{service_id}"),
                json!({"description": "pi test servers"}),
            );
        }
        self.post(
            "/machine/token",
            json!({"serial": serial, "application": "ssh", "service_id": service_id,
                   "user": user}),
        );
    }

    /// Attach LUKS token `serial` (from `luks_token`) to `MACHINE` for key slot `slot` of
    /// `partition`: `luks_items(challenge)` then answers with its response.
    pub fn attach_luks(&self, serial: &str, slot: u8, partition: &str) {
        let new = !std::mem::replace(
            &mut self.state.lock().expect("fixture state").machine_resolver,
            true,
        );
        if new {
            let hosts = self.dir.path().join("hosts");
            self.post(
                &format!("/machineresolver/{MACHINE_RESOLVER}"),
                json!({"type": "hosts", "filename": hosts}),
            );
        }
        self.post(
            "/machine/token",
            json!({"serial": serial, "application": "luks", "hostname": MACHINE,
                   "slot": slot, "partition": partition}),
        );
    }

    /// `GET /machine/authitem/ssh` for `user` on the servers of `service_id`: the `ssh` items
    /// (`sshkey`, `username`, ...), an empty array when there are none.
    pub fn ssh_keys(&self, service_id: &str, user: &str) -> Value {
        let value = self.get(
            "/machine/authitem/ssh",
            &[
                ("hostname", MACHINE),
                ("user", user),
                ("service_id", service_id),
            ],
        );
        items(&value, "ssh")
    }

    /// `GET /machine/authitem/luks` for `MACHINE` with `challenge` (hex): the `luks` items
    /// (`slot`, `partition`, `challenge`, `response`), an empty array when there are none.
    pub fn luks_items(&self, challenge_hex: &str) -> Value {
        let value = self.get(
            "/machine/authitem/luks",
            &[("hostname", MACHINE), ("challenge", challenge_hex)],
        );
        items(&value, "luks")
    }

    // ---- what a client of the server does --------------------------------------------------

    /// `POST /validate/check` with `user` (of the default realm) and `pass`, straight to the
    /// server: what pid's upstream realm will send.
    pub fn validate_check(&self, user: &str, pass: &str) -> Answer {
        self.send(
            "POST",
            "/validate/check",
            &[],
            Some(&json!({"user": user, "pass": pass})),
            None,
        )
    }

    /// `POST /validate/check` answering the challenge `transaction_id`.
    pub fn validate_check_tx(&self, user: &str, pass: &str, transaction_id: &str) -> Answer {
        let body = json!({"user": user, "pass": pass, "transaction_id": transaction_id});
        self.send("POST", "/validate/check", &[], Some(&body), None)
    }

    /// `POST /validate/offlinerefill`: more offline hashes for `pass`, an OTP the client used.
    pub fn offline_refill(&self, serial: &str, pass: &str, refilltoken: &str) -> Answer {
        let body = json!({"serial": serial, "pass": pass, "refilltoken": refilltoken});
        self.send("POST", "/validate/offlinerefill", &[], Some(&body), None)
    }

    // ---- the admin REST API ----------------------------------------------------------------

    /// `POST path` with JSON `params` as the admin; returns `result.value`. Panics with the
    /// server's answer unless it succeeded.
    pub fn post(&self, path: &str, params: Value) -> Value {
        self.admin("POST", path, &[], Some(&params))
    }

    /// `GET path?query` as the admin; returns `result.value`, as `post`.
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        self.admin("GET", path, query, None)
    }

    fn admin(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Value {
        let token = self.admin_token();
        let answer = self.send(method, path, query, body, Some(&token));
        if answer.status != 200 || answer.json["result"]["status"] != json!(true) {
            panic!(
                "privacyIDEA refused {method} {path} {}: HTTP {}\n{:#}",
                body.map(Value::to_string).unwrap_or_default(),
                answer.status,
                answer.json
            );
        }
        answer.json["result"]["value"].clone()
    }

    /// The admin's JWT from `POST /auth`, fetched once (valid for an hour, and across restarts:
    /// the signing key is in the configuration).
    fn admin_token(&self) -> String {
        if let Some(token) = &self.state.lock().expect("fixture state").admin_token {
            return token.clone();
        }
        let body = json!({"username": ADMIN, "password": ADMIN_PASSWORD});
        let answer = self.send("POST", "/auth", &[], Some(&body), None);
        let Some(token) = answer.json["result"]["value"]["token"].as_str() else {
            panic!(
                "privacyIDEA did not log the admin in: HTTP {}\n{:#}",
                answer.status, answer.json
            );
        };
        self.state.lock().expect("fixture state").admin_token = Some(token.to_owned());
        token.to_owned()
    }

    /// One request; any HTTP status is an answer, only a transport error or a body that is not
    /// JSON fails the test.
    fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Answer {
        let url = format!("{}{path}", self.url());
        let mut request = self.agent.request(method, &url).timeout(CALL_TIMEOUT);
        for (key, value) in query {
            request = request.query(key, value);
        }
        if let Some(token) = token {
            // privacyIDEA takes the bare JWT, without "Bearer".
            request = request.set("Authorization", token);
        }
        let result = match body {
            Some(body) => request
                .set("Content-Type", "application/json")
                .send_string(&body.to_string()),
            None => request.call(),
        };
        let response = match result {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(e) => panic!("{method} {url} failed: {e}"),
        };
        let status = response.status();
        let text = response
            .into_string()
            .unwrap_or_else(|e| panic!("{method} {url}: reading the answer failed: {e}"));
        let json = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("{method} {url}: HTTP {status}, an answer that is not JSON ({e}):\n{text}")
        });
        Answer { status, json }
    }
}

impl Drop for PrivacyIdea {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- privacyIDEA at {}, the end of its logs ---\n{}",
                self.url(),
                self.log_tail(LOG_TAIL_LINES)
            );
        }
        if let Some(mut child) = self.child.take() {
            let _ = killpg(process_group(&child), Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}

/// A client that trusts only the CA in `ca_file` (PEM), or the system's roots when `None`.
pub fn agent(ca_file: Option<&Path>) -> ureq::Agent {
    let builder = ureq::AgentBuilder::new().timeout(CALL_TIMEOUT);
    let Some(ca_file) = ca_file else {
        return builder.build();
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file)
        .unwrap_or_else(|e| panic!("read {}: {e}", ca_file.display()))
    {
        roots
            .add(cert.unwrap_or_else(|e| panic!("parse {}: {e}", ca_file.display())))
            .unwrap_or_else(|e| panic!("trust {}: {e}", ca_file.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("rustls protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    builder.tls_config(Arc::new(config)).build()
}

/// `value[application]` of an `/machine/authitem` answer; privacyIDEA leaves the key out when no
/// token matches.
fn items(value: &Value, application: &str) -> Value {
    value.get(application).cloned().unwrap_or_else(|| json!([]))
}

fn process_group(child: &Child) -> Pid {
    Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"))
}

/// The virtualenv `tests/privacyidea-venv.sh` made (privacyIDEA, and python-pskc for the PSKC
/// import tests), checked (not built) by the script itself so that what "installed" means is
/// written down once.
pub fn venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("privacyidea-venv.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(&script).arg("--check");
        let out = process::run(cmd, b"");
        assert!(
            out.success(),
            "privacyIDEA is not installed for the tests: {}",
            out.stderr.trim()
        );
        PathBuf::from(out.stdout.trim())
    })
}

/// Run `script` with the virtualenv's Python (python-pskc writing a test file), with `args` as
/// `sys.argv[1:]`; it must succeed.
pub fn python(script: &str, args: &[&str]) {
    let mut cmd = Command::new(venv().join("bin/python3"));
    cmd.arg("-c").arg(script).args(args);
    let out = process::run(cmd, b"");
    assert!(out.success(), "python: {}", out.describe());
}

/// The configuration of a server in `root`. The secrets are fixed test values: the blank
/// instance's admin password hash depends on `PI_PEPPER`, and every server starts from it.
fn config(root: &Path) -> String {
    let r = root.display();
    format!(
        "# privacyIDEA for one test (tests/src/privacyidea.rs); everything in this directory.\n\
         SQLALCHEMY_DATABASE_URI = 'sqlite:///{r}/pi.sqlite'\n\
         SECRET_KEY = 'pi-test-secret-key-of-32-bytes-or-more'\n\
         PI_PEPPER = 'pi-test-pepper'\n\
         PI_ENCFILE = '{r}/enckey'\n\
         PI_AUDIT_KEY_PRIVATE = '{r}/private.pem'\n\
         PI_AUDIT_KEY_PUBLIC = '{r}/public.pem'\n\
         PI_AUDIT_SQL_TRUNCATE = True\n\
         PI_LOGFILE = '{r}/privacyidea.log'\n\
         PI_LOGLEVEL = 20\n\
         PI_UUID_FILE = '{r}/uuid.txt'\n\
         PI_NODE = 'pi-test'\n\
         PI_NO_RESPONSE_SIGN = True\n\
         PI_HASH_ALGO_PARAMS = {{'argon2__rounds': 1, 'argon2__memory_cost': 8, \
         'argon2__parallelism': 1}}\n"
    )
}

/// A set-up, never started instance (`BLANK_FILES`) shared by every server of this machine,
/// made on first use. Its name hashes the virtualenv's requirements, the configuration and the
/// bootstrap, so a change to any of them makes a new one. It is made in a temporary directory
/// beside it and renamed into place, so a reader never sees half of one and two test processes
/// making it at once both succeed.
fn blank_instance() -> &'static Path {
    static BLANK: OnceLock<PathBuf> = OnceLock::new();
    BLANK.get_or_init(|| {
        let venv = venv();
        let parent = venv
            .parent()
            .expect("the virtualenv has a parent directory");
        let stamp = fs::read(venv.join("pi-requirements.txt")).expect("read the venv's stamp");
        let mut hash = Sha256::new();
        hash.update(&stamp);
        hash.update(config(Path::new("/")));
        hash.update(BOOTSTRAP);
        hash.update(ADMIN_PASSWORD);
        let dest = parent.join(format!("blank-{}", &hex::encode(hash.finalize())[..16]));
        if dest.join(BLANK_READY).is_file() {
            return dest;
        }
        let started = Instant::now();
        let tmp = tempfile::Builder::new()
            .prefix(".blank-")
            .tempdir_in(parent)
            .expect("create a directory for the blank instance");
        let cfg = tmp.path().join("pi.cfg");
        fs::write(&cfg, config(tmp.path())).expect("write pi.cfg");
        let mut cmd = Command::new(venv.join("bin/python"));
        cmd.env("PRIVACYIDEA_CONFIGFILE", &cfg)
            .args(["-c", BOOTSTRAP, ADMIN, ADMIN_PASSWORD]);
        let out = process::run_with_deadline(cmd, b"", READY_DEADLINE);
        assert!(
            out.success(),
            "setting up privacyIDEA (enckey, audit keys, tables, admin) failed\n{}",
            out.describe()
        );
        for file in BLANK_FILES {
            assert!(
                tmp.path().join(file).is_file(),
                "the privacyIDEA set-up made no {file}\n{}",
                out.describe()
            );
        }
        fs::write(tmp.path().join(BLANK_READY), "").expect("mark the blank instance ready");
        let tmp = tmp.keep();
        if let Err(e) = fs::rename(&tmp, &dest) {
            let _ = fs::remove_dir_all(&tmp);
            assert!(
                dest.join(BLANK_READY).is_file(),
                "cannot move the blank privacyIDEA instance to {}: {e} (remove it)",
                dest.display()
            );
        }
        eprintln!(
            "made the blank privacyIDEA instance {} in {:.1} s",
            dest.display(),
            started.elapsed().as_secs_f64()
        );
        dest
    })
}
