//! A real OpenLDAP `slapd` for the `ldap` resolver's tests: started as a child on 127.0.0.1 on free
//! ports, with a generated `slapd.conf`, an mdb database, its pid file and (optionally) a private
//! CA and server certificate, all in a temporary directory that is removed when the test ends.
//! Nothing is written outside that directory and a system slapd (Debian's package configures one
//! on port 389) is neither needed nor touched.
//!
//! The directory holds a fixed set of entries (see the constants) so that tests read as prose:
//! `carol` logs in, `dave` is ambiguous, `erin` is filtered out, and the service account `cn=pi`
//! is the only one that may search.

use crate::certs;
use crate::process::{self, CmdOutput};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub const SLAPD: &str = "/usr/sbin/slapd";
pub const SLAPADD: &str = "/usr/sbin/slapadd";
pub const SLAPPASSWD: &str = "/usr/sbin/slappasswd";

pub const SUFFIX: &str = "dc=pi,dc=test";
/// Where users live: the `base` of the resolver under test.
pub const PEOPLE: &str = "ou=people,dc=pi,dc=test";
/// The service account the resolver searches as. Anonymous users may read nothing.
pub const SERVICE_DN: &str = "cn=pi,ou=services,dc=pi,dc=test";
pub const SERVICE_PASSWORD: &str = "pi-service-password";

/// A posixAccount under `PEOPLE`: the user who logs in.
pub const CAROL: &str = "carol";
pub const CAROL_PASSWORD: &str = "carol-ldap-password";
/// Two posixAccounts share this uid (`ou=people` and `ou=staff,ou=people`): ambiguous.
pub const DAVE: &str = "dave";
/// An inetOrgPerson that is no posixAccount: the default filter leaves her out.
pub const ERIN: &str = "erin";

/// How long slapd may take to answer its first bind.
pub const READY_DEADLINE: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, Debug, Default)]
pub struct SlapdOptions {
    /// Also listen on `ldaps://` and accept STARTTLS on `ldap://`, with a certificate for
    /// 127.0.0.1 signed by a CA generated for this server (`ca_file`).
    pub tls: bool,
}

pub struct Slapd {
    dir: TempDir,
    conf: PathBuf,
    log: PathBuf,
    port: u16,
    tls_port: Option<u16>,
    child: Option<Child>,
}

impl Slapd {
    /// Plain `ldap://` only.
    pub fn start() -> Slapd {
        Slapd::start_with(SlapdOptions::default())
    }

    pub fn start_with(opts: SlapdOptions) -> Slapd {
        for tool in [SLAPD, SLAPADD, SLAPPASSWD] {
            assert!(
                Path::new(tool).is_file(),
                "{tool} not found: apt-get install slapd ldap-utils (tests/install-deps.sh does)"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("pi-test-slapd-")
            .tempdir()
            .expect("create slapd's temporary directory");
        let root = dir.path().to_path_buf();
        fs::create_dir(root.join("db")).expect("create the mdb directory");
        if opts.tls {
            certs::make_certificates(&root);
        }
        let conf = root.join("slapd.conf");
        fs::write(&conf, slapd_conf(&root, opts.tls)).expect("write slapd.conf");
        let ldif = root.join("data.ldif");
        fs::write(&ldif, directory_ldif()).expect("write the LDIF");
        let mut cmd = Command::new(SLAPADD);
        cmd.arg("-q").arg("-f").arg(&conf).arg("-l").arg(&ldif);
        let out = process::run(cmd, b"");
        assert!(out.success(), "slapadd failed\n{}", out.describe());

        let log = root.join("slapd.log");
        let mut slapd = Slapd {
            dir,
            conf,
            log,
            port: 0,
            tls_port: None,
            child: None,
        };
        // A free port can be taken by another test between our probe and slapd's bind: retry.
        for attempt in 0..5 {
            slapd.port = crate::free_port();
            slapd.tls_port = opts.tls.then(crate::free_port);
            if slapd.spawn() {
                return slapd;
            }
            eprintln!("slapd could not listen (attempt {attempt}); trying other ports");
        }
        panic!("slapd did not start\n--- slapd log ---\n{}", slapd.log());
    }

    /// Start slapd on the chosen ports; false if it exited before answering (port taken).
    fn spawn(&mut self) -> bool {
        assert!(self.child.is_none(), "slapd already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open slapd's log");
        let log2 = log.try_clone().expect("clone the log handle");
        let mut urls = self.uri();
        if let Some(p) = self.tls_port {
            urls.push_str(&format!(" ldaps://127.0.0.1:{p}/"));
        }
        // `-d` keeps slapd in the foreground as our child; 256 = "stats" (one line per
        // operation), which is what a failing test wants to see.
        let child = Command::new(SLAPD)
            .arg("-f")
            .arg(&self.conf)
            .arg("-h")
            .arg(&urls)
            .arg("-d")
            .arg("256")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .expect("start slapd");
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if let Some(_status) = self.child_mut().try_wait().expect("poll slapd") {
                self.child = None;
                return false;
            }
            if self.answers() {
                return true;
            }
            if started.elapsed() > READY_DEADLINE {
                panic!(
                    "slapd did not answer a bind on {} within {READY_DEADLINE:?}\n\
                     --- slapd log ---\n{}",
                    self.uri(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The service account can bind: the server is up and its database is loaded.
    fn answers(&self) -> bool {
        if TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            return false;
        }
        ldapwhoami(&self.uri(), SERVICE_DN, SERVICE_PASSWORD).success()
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("slapd is not running")
    }

    /// `ldap://127.0.0.1:PORT` (STARTTLS is offered there when started with `tls`).
    pub fn uri(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// `ldaps://127.0.0.1:PORT`; only with `tls`.
    pub fn ldaps_uri(&self) -> String {
        let port = self
            .tls_port
            .expect("this slapd was started without tls: use SlapdOptions { tls: true }");
        format!("ldaps://127.0.0.1:{port}")
    }

    /// The CA that signed the server's certificate (PEM); only with `tls`.
    pub fn ca_file(&self) -> PathBuf {
        assert!(self.tls_port.is_some(), "this slapd has no TLS");
        self.dir.path().join("ca.pem")
    }

    /// A CA that signed nothing this server presents: a client trusting only it must refuse.
    pub fn other_ca_file(&self) -> PathBuf {
        assert!(self.tls_port.is_some(), "this slapd has no TLS");
        self.dir.path().join("other-ca.pem")
    }

    /// Write `content` to `NAME` in this server's directory with mode 0600 (a root-only secret
    /// such as `bind_password_file`), replacing any previous content. Returns the path.
    pub fn write_secret(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let _ = fs::remove_file(&path);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .expect("create the secret file");
        f.write_all(content.as_bytes())
            .expect("write the secret file");
        path
    }

    /// A `[resolvers.NAME]` table for this server searching `PEOPLE` as the service account,
    /// whose password is in `bind_password_file` (see `write_secret`). `extra` is appended
    /// (e.g. `starttls = true`).
    pub fn resolver_toml(
        &self,
        name: &str,
        uri: &str,
        bind_password_file: &Path,
        extra: &str,
    ) -> String {
        format!(
            "[resolvers.{name}]\ntype = \"ldap\"\nuri = {uri:?}\nbase = {PEOPLE:?}\n\
             bind_dn = {SERVICE_DN:?}\nbind_password_file = {:?}\ntimeout_secs = 3\n{extra}\n",
            bind_password_file.display().to_string()
        )
    }

    /// SIGTERM and wait: the directory goes down in the middle of a test.
    pub fn stop(&mut self) {
        if self.child.is_none() {
            return;
        }
        self.signal(Signal::SIGCONT);
        self.signal(Signal::SIGTERM);
        let Some(mut child) = self.child.take() else {
            return;
        };
        let started = Instant::now();
        while child.try_wait().expect("poll slapd").is_none() {
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The port must be closed before the test goes on to assert "server down".
        assert!(
            TcpStream::connect(("127.0.0.1", self.port)).is_err(),
            "slapd stopped but {} still accepts connections",
            self.uri()
        );
    }

    /// Start again on the same ports and database (after `stop`).
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.spawn(),
            "slapd did not start again on {}\n--- slapd log ---\n{}",
            self.uri(),
            self.log()
        );
    }

    /// SIGSTOP: connections are still accepted by the kernel but nothing answers — a hung
    /// directory. `thaw` resumes it; dropping a frozen server is fine.
    pub fn freeze(&self) {
        self.signal(Signal::SIGSTOP);
    }

    pub fn thaw(&self) {
        self.signal(Signal::SIGCONT);
    }

    fn signal(&self, signal: Signal) {
        let child = self.child.as_ref().expect("slapd is not running");
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
        kill(pid, signal).expect("signal slapd");
    }

    /// Everything slapd wrote, over all its starts.
    pub fn log(&self) -> String {
        fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `ldapwhoami` (ldap-utils), ignoring any system or user ldap.conf.
pub fn ldapwhoami(uri: &str, dn: &str, password: &str) -> CmdOutput {
    let mut cmd = Command::new("ldapwhoami");
    cmd.env("LDAPNOINIT", "1").args([
        "-x",
        "-o",
        "nettimeout=2",
        "-H",
        uri,
        "-D",
        dn,
        "-y",
        "/dev/stdin",
    ]);
    process::run(cmd, password.as_bytes())
}

fn ssha(password: &str) -> String {
    let mut cmd = Command::new(SLAPPASSWD);
    cmd.args(["-h", "{SSHA}", "-T", "/dev/stdin"]);
    let out = process::run(cmd, password.as_bytes());
    assert!(out.success(), "slappasswd failed\n{}", out.describe());
    out.stdout.trim().to_owned()
}

fn slapd_conf(root: &Path, tls: bool) -> String {
    let r = root.display();
    let tls_lines = if tls {
        format!(
            "TLSCACertificateFile {r}/ca.pem\n\
             TLSCertificateFile {r}/server.pem\n\
             TLSCertificateKeyFile {r}/server.key\n"
        )
    } else {
        String::new()
    };
    format!(
        "include /etc/ldap/schema/core.schema\n\
         include /etc/ldap/schema/cosine.schema\n\
         include /etc/ldap/schema/nis.schema\n\
         include /etc/ldap/schema/inetorgperson.schema\n\
         pidfile {r}/slapd.pid\n\
         argsfile {r}/slapd.args\n\
         modulepath /usr/lib/ldap\n\
         moduleload back_mdb\n\
         {tls_lines}\
         database mdb\n\
         maxsize 10485760\n\
         suffix \"{SUFFIX}\"\n\
         rootdn \"cn=admin,{SUFFIX}\"\n\
         rootpw {admin}\n\
         directory {r}/db\n\
         # Passwords are only good for binding; only the service account may search.\n\
         access to attrs=userPassword by anonymous auth by * none\n\
         access to * by dn.exact=\"{SERVICE_DN}\" read by * none\n",
        admin = ssha("pi-test-admin"),
    )
}

fn posix_account(dn: &str, login: &str, uid_number: u32, password: &str) -> String {
    format!(
        "dn: {dn}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nuid: {login}\n\
         cn: {login}\nsn: Test\nuidNumber: {uid_number}\ngidNumber: {uid_number}\n\
         homeDirectory: /nonexistent\nuserPassword: {}\n\n",
        ssha(password)
    )
}

fn directory_ldif() -> String {
    let mut ldif = format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: pi test\ndc: pi\n\n\
         dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=staff,{PEOPLE}\nobjectClass: organizationalUnit\nou: staff\n\n\
         dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n\n\
         dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n\
         cn: pi\nuserPassword: {}\n\n",
        ssha(SERVICE_PASSWORD)
    );
    ldif.push_str(&posix_account(
        &format!("uid={CAROL},{PEOPLE}"),
        CAROL,
        5001,
        CAROL_PASSWORD,
    ));
    ldif.push_str(&posix_account(
        &format!("uid={DAVE},{PEOPLE}"),
        DAVE,
        5002,
        "dave-one",
    ));
    ldif.push_str(&posix_account(
        &format!("uid={DAVE},ou=staff,{PEOPLE}"),
        DAVE,
        5003,
        "dave-two",
    ));
    ldif.push_str(&format!(
        "dn: uid={ERIN},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {ERIN}\ncn: {ERIN}\nsn: Test\n\
         userPassword: {}\n\n",
        ssha("erin-password")
    ));
    ldif
}
