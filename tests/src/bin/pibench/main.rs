//! pibench: load generator for the real `pid` binary over the real socket, durability on, and —
//! with `--privacyidea URL` — the same workload against a privacyIDEA server's /validate/check in
//! the same run; with `--upstream URL`, logins straight to a privacyIDEA server against the same
//! load through pid to that server (a realm it serves upstream). It prints numbers; it asserts
//! nothing (docs/performance.md).
//!
//! Users are `pibench-u%07d` in a flatfile realm `bench`; user i's key is the first 20 bytes of
//! SHA-256("pibench-key-<i>"), serial `PB%07d` (tests/bench/README.md has the same scheme for
//! the privacyIDEA side). OTPs are computed here from those known seeds.

mod polled;

use clap::{Parser, ValueEnum};
use protocol::admin::{AdminRequest, AdminResponse, EnrollRequest, UserRef};
use protocol::{AuthBegin, Client, Outcome, Prompt, Request, Response, Secret, TokenType};
use sha2::Digest;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Kind {
    Totp,
    Hotp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Argon {
    /// pid's default cost (OWASP minimum: 19 MiB, t=2, p=1).
    Default,
    /// privacyIDEA 3.14's default cost (64 MiB, t=9, p=4).
    Privacyidea,
    /// Cheapest allowed (tests only).
    Cheap,
}

/// Load generator for pid (and privacyIDEA): accepted/rejected logins per second, latency
/// percentiles, daemon RSS and CPU.
#[derive(Parser, Debug)]
#[command(after_help = "Examples:\n  \
  cargo build --release --workspace\n  \
  target/release/pibench --users 10000 --clients 32 --duration 10 --type hotp\n  \
  target/release/pibench --users 10000 --clients 32 --duration 2 --type totp\n  \
  target/release/pibench --users 1000 --pin --argon2 privacyidea --privacyidea http://127.0.0.1:5001\n\n\
The work directory (users file, config, store) is kept with --workdir, so a later run reuses the\n\
enrolled tokens; without it a temporary directory is used and removed.")]
struct Args {
    /// Number of users, one token each.
    #[arg(long, default_value_t = 10_000)]
    users: u32,
    /// Token type.
    #[arg(long = "type", value_enum, default_value_t = Kind::Totp)]
    kind: Kind,
    /// Tokens have the PIN "1234" (argon2id on every login).
    #[arg(long)]
    pin: bool,
    /// argon2 cost for the daemon's PINs.
    #[arg(long, value_enum, default_value_t = Argon::Default)]
    argon2: Argon,
    /// The daemon's argon2.verified_pin_cache_secs: a PIN argon2 accepted for a token is
    /// accepted again without argon2 for this long (0: off, the daemon's default).
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    pin_cache: u32,
    /// Concurrent clients, each with its own connection.
    #[arg(long, default_value_t = 32)]
    clients: u32,
    /// Seconds of load per target.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Share of logins sent with a wrong OTP (0.0 – 1.0): the right one with every digit
    /// changed. About one in 100,000 of those is the code of another counter in the HOTP
    /// look-ahead window (TOTP: another time step in the window), is rightly accepted and
    /// counts in `unexp`.
    #[arg(long, default_value_t = 0.0)]
    wrong_share: f64,
    /// Talk like pam_pi (AuthBegin, prompt, AuthContinue: two round trips) instead of passing
    /// the code with AuthBegin (one round trip, like `use_first_pass`).
    #[arg(long)]
    conversation: bool,
    /// Connect anew for every login, as pam_pi does inside sshd/sudo (implies --blocking). The
    /// latency then includes the connect.
    #[arg(long)]
    reconnect: bool,
    /// Each client pauses this long between logins (implies --blocking): with one client, the
    /// daemon is idle between logins, as on a host where people log in now and then.
    #[arg(long, value_name = "MS")]
    pause_ms: Option<f64>,
    /// One blocked thread per client instead of poll loops. Costs the load generator two
    /// thread wake-ups per login, taken from the cores the daemon is measured on.
    #[arg(long)]
    blocking: bool,
    /// Poll loops (threads) that drive the clients' connections, unless --blocking.
    #[arg(long, default_value_t = 1)]
    client_threads: u32,
    /// The pid binary (default: next to this program).
    #[arg(long)]
    pid: Option<PathBuf>,
    /// Keep config, users and store here (reused by later runs).
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Also run the workload against this privacyIDEA server (see tests/bench/privacyidea.sh).
    #[arg(long, value_name = "URL")]
    privacyidea: Option<String>,
    /// Seconds of load against privacyIDEA (default: --duration). It answers a few logins per
    /// second, so a longer run gives it enough samples.
    #[arg(long)]
    privacyidea_duration: Option<f64>,
    /// Skip pid and measure only privacyIDEA.
    #[arg(long)]
    only_privacyidea: bool,
    /// Measure what pid costs as a client of this privacyIDEA server: the workload straight to
    /// its /validate/check, then the same through pid with the server upstream of a realm
    /// (HOTP only; one blocked thread per client for both). `stand-in` measures pid's own share:
    /// a server on 127.0.0.1 that accepts every login after `--stand-in-ms`.
    #[arg(long, value_name = "URL", conflicts_with_all = ["privacyidea", "only_privacyidea"])]
    upstream: Option<String>,
    /// How long the `--upstream stand-in` server takes for each login, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 20)]
    stand_in_ms: u64,
    /// Measure offline logins: a server on 127.0.0.1 (a stand-in of this program) hands each
    /// user this many offline values at one online login, then goes down; the load is logins
    /// with those values (HOTP; with --wrong-share 1.0, the cost of a wrong offline code).
    #[arg(long, value_name = "COUNT", conflicts_with_all = ["privacyidea", "only_privacyidea", "upstream"])]
    offline: Option<u32>,
    /// PBKDF2 rounds of the offline values (privacyIDEA's default).
    #[arg(long, default_value_t = 6549)]
    offline_rounds: u32,
}

impl Args {
    /// One blocked thread per client: asked for, or implied by --reconnect, --pause-ms and
    /// --upstream.
    fn blocked_threads(&self) -> bool {
        self.blocking
            || self.reconnect
            || self.pause_ms.is_some()
            || self.upstream.is_some()
            || self.offline.is_some()
    }
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("pibench: {e}");
        std::process::exit(1);
    }
}

fn now_unix() -> i64 {
    #[allow(clippy::disallowed_methods)] // the benchmark plays the phone: it reads the clock
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn login_name(i: u32) -> String {
    format!("pibench-u{i:07}")
}

fn key_of(i: u32) -> [u8; 20] {
    let d = sha2::Sha256::digest(format!("pibench-key-{i}").as_bytes());
    let mut k = [0u8; 20];
    k.copy_from_slice(&d[..20]);
    k
}

fn hotp(key: &[u8], counter: u64) -> String {
    pid::tokens::hotp::hotp(key, counter, 6, protocol::HashAlgorithm::Sha1)
}

struct Summary {
    target: String,
    accepted: u64,
    rejected: u64,
    unexpected: u64,
    secs: f64,
    lat_us: Vec<u32>,
    rss_kib: Option<u64>,
    hwm_kib: Option<u64>,
    cpu_secs: Option<f64>,
}

impl Summary {
    /// Mean latency in milliseconds.
    fn mean_ms(&self) -> f64 {
        if self.lat_us.is_empty() {
            return 0.0;
        }
        self.lat_us.iter().map(|&u| f64::from(u)).sum::<f64>() / self.lat_us.len() as f64 / 1000.0
    }

    fn pct(&self, p: f64) -> f64 {
        if self.lat_us.is_empty() {
            return 0.0;
        }
        let i = ((self.lat_us.len() as f64 - 1.0) * p).round() as usize;
        self.lat_us[i] as f64 / 1000.0
    }

    fn row(&self) -> String {
        // A PIN run at privacyIDEA's argon2 cost answers a few logins per second: keep a decimal.
        let rate = |n: u64| {
            let per_s = n as f64 / self.secs;
            if per_s < 100.0 {
                format!("{per_s:.1}")
            } else {
                format!("{per_s:.0}")
            }
        };
        format!(
            "{:<12} {:>10} {:>10} {:>6} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>9} {:>9} {:>8}",
            self.target,
            rate(self.accepted),
            rate(self.rejected),
            self.unexpected,
            self.pct(0.50),
            self.pct(0.90),
            self.pct(0.99),
            self.lat_us
                .last()
                .map(|&v| v as f64 / 1000.0)
                .unwrap_or(0.0),
            self.rss_kib
                .map(|k| format!("{:.1}", k as f64 / 1024.0))
                .unwrap_or("-".into()),
            self.hwm_kib
                .map(|k| format!("{:.1}", k as f64 / 1024.0))
                .unwrap_or("-".into()),
            self.cpu_secs
                .map(|c| format!("{c:.2}"))
                .unwrap_or("-".into()),
        )
    }
}

const HEADER: &str = "target        accepted/s rejected/s  unexp  p50(ms)  p90(ms)  p99(ms)  max(ms)  RSS(MiB)  HWM(MiB)   CPU(s)";

fn run(args: Args) -> Result<(), String> {
    if !(0.0..=1.0).contains(&args.wrong_share) {
        return Err("--wrong-share must be between 0 and 1".into());
    }
    if args
        .pause_ms
        .is_some_and(|ms| !(0.0..=60_000.0).contains(&ms))
    {
        return Err("--pause-ms must be between 0 and 60000".into());
    }
    let users = args.users.max(1);
    let clients = args.clients.max(1).min(users);
    if let Some(ms) = args.pause_ms {
        println!("pibench: each client pauses {ms} ms between logins");
    }
    println!(
        "pibench: {} users, {:?}{}, {} clients, {:.1} s, wrong share {:.2}, {}{}",
        users,
        args.kind,
        if args.pin { " with PIN" } else { "" },
        clients,
        args.duration,
        args.wrong_share,
        if args.conversation {
            "2 round trips (PAM conversation)"
        } else {
            "1 round trip (authtok)"
        },
        if args.reconnect {
            ", new connection per login, a blocked thread per client".to_string()
        } else if args.blocked_threads() {
            ", a blocked thread per client".to_string()
        } else {
            format!(
                ", clients driven by {} poll loop(s)",
                args.client_threads.max(1)
            )
        },
    );
    println!("machine: {} cores, {} MiB memory", cores(), mem_total_mib());
    if let Some(url) = &args.upstream {
        return bench_upstream(&args, url, users, clients);
    }
    if let Some(count) = args.offline {
        return bench_offline(&args, count, users, clients);
    }
    let mut rows = Vec::new();
    if !args.only_privacyidea {
        rows.push(bench_pid(&args, users, clients)?);
    }
    if let Some(url) = &args.privacyidea {
        rows.push(bench_privacyidea(&args, url, users, clients)?);
    }
    println!("\n{HEADER}");
    for r in &rows {
        println!("{}", r.row());
    }
    for r in &rows {
        // A handful is chance (see --wrong-share); more means the run measured something else.
        if r.unexpected * 100 > r.accepted + r.rejected + r.unexpected {
            eprintln!(
                "pibench: {}: {} of the logins had the wrong outcome. Locked tokens? A \
                 --wrong-share run raises every token's fail counter; use a fresh --workdir.",
                r.target, r.unexpected
            );
        }
    }
    if rows.len() == 2 {
        let (a, b) = (&rows[0], &rows[1]);
        let ratio = |x: f64, y: f64| {
            if y > 0.0 {
                format!("{:.1}x", x / y)
            } else {
                "-".into()
            }
        };
        println!(
            "ratio pid/privacyIDEA: accepted/s {}, p50 latency {}",
            ratio(a.accepted as f64 / a.secs, b.accepted as f64 / b.secs),
            ratio(b.pct(0.5), a.pct(0.5)),
        );
    }
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn mem_total_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                })
        })
        .map(|k| k / 1024)
        .unwrap_or(0)
}

/// The daemon under test, started with a config of our own and killed when we are done.
struct Daemon {
    child: Child,
    socket: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = nix_kill(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nix_kill(pid: u32, sig: &str) -> std::io::Result<std::process::ExitStatus> {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
}

/// pid with a realm `bench`: the flatfile of pibench's users, or (`upstream`) the privacyIDEA
/// server at that URL.
fn start_daemon(args: &Args, users: u32, upstream: Option<&str>) -> Result<Daemon, String> {
    let (tmp, dir) = match &args.workdir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            (None, d.clone())
        }
        None => {
            let t = tempfile::tempdir().map_err(|e| e.to_string())?;
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    let users_file = dir.join("users.passwd");
    let expected_len: usize = (0..users).map(|i| login_name(i).len() + 1 + 22).sum();
    let fresh = std::fs::metadata(&users_file)
        .map(|m| m.len() as usize)
        .unwrap_or(0)
        != expected_len;
    if fresh {
        let mut out = String::with_capacity(expected_len);
        for i in 0..users {
            // 22 bytes after the name: ":x:1000000:1000000::/:" — a fixed width keeps the length
            // check above exact.
            out.push_str(&login_name(i));
            out.push_str(":x:1000000:1000000::/:\n");
        }
        std::fs::write(&users_file, out).map_err(|e| format!("{}: {e}", users_file.display()))?;
    }
    let (m, t, p) = match args.argon2 {
        Argon::Default => (19456, 2, 1),
        Argon::Privacyidea => (65536, 9, 4),
        Argon::Cheap => (64, 1, 1),
    };
    let socket = dir.join("pid.sock");
    // maxfail at its highest: with --wrong-share, ten wrong codes in a row for one user would
    // lock the token and turn its right codes into "unexpected" answers; the bench measures
    // rejections, not lockouts.
    let config = format!(
        "socket = \"{s}\"\nstate_dir = \"{d}/state\"\nenckey_file = \"{d}/enckey\"\n\
         default_realm = \"bench\"\nlog_level = \"warn\"\n\
         [argon2]\nmemory_kib = {m}\niterations = {t}\nparallelism = {p}\n\
         verified_pin_cache_secs = {c}\n\
         [limits]\nmax_connections = 4096\n\
         [tokens]\nmaxfail = 1000\n\
         {realm}",
        s = socket.display(),
        d = dir.display(),
        c = args.pin_cache,
        realm = match upstream {
            Some(url) => format!(
                "[upstream.bench]\nurls = [\"{url}\"]\ntimeout_secs = 8\n\
                 offline_max_fails = 1000000\n\
                 [realms.bench]\nupstream = \"bench\"\n"
            ),
            None => format!(
                "[resolvers.bench]\ntype = \"flatfile\"\nfile = \"{}\"\n\
                 [realms.bench]\nresolvers = [\"bench\"]\n",
                users_file.display()
            ),
        },
    );
    let config_path = dir.join("pid.toml");
    std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
    let pid_bin = match &args.pid {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("pid"),
    };
    let started = Instant::now();
    let child = Command::new(&pid_bin)
        .arg("--config")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start {}: {e} (build it: cargo build --release)",
                pid_bin.display()
            )
        })?;
    let daemon = Daemon {
        child,
        socket: socket.clone(),
        _tmp: tmp,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut c) = Client::connect(&socket) {
            if matches!(c.call(&Request::Status), Ok(Response::Status(_))) {
                break;
            }
        }
        if Instant::now() > deadline {
            return Err("pid did not become ready within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "pid ready after {:.3} s (pid {})",
        started.elapsed().as_secs_f64(),
        daemon.child.id()
    );
    Ok(daemon)
}

/// Where each user's counter stands in the daemon (HOTP: next counter; TOTP: last step), so a
/// run on a reused store continues where the last one stopped. A store enrolled for another
/// token type or PIN setting is refused: its logins would all count as unexpected.
fn read_counters(args: &Args, socket: &Path, users: u32) -> Result<Vec<u64>, String> {
    let wanted = match args.kind {
        Kind::Totp => TokenType::Totp,
        Kind::Hotp => TokenType::Hotp,
    };
    let mut counters = vec![0u64; users as usize];
    let mut c = Client::connect(socket).map_err(|e| e.to_string())?;
    let mut after = None;
    loop {
        let req = AdminRequest::TokenList {
            user: None,
            after: after.clone(),
            limit: 1000,
        };
        match c.call(&Request::Admin(req)).map_err(|e| e.to_string())? {
            Response::Admin(AdminResponse::Tokens { tokens, next }) => {
                for t in tokens {
                    if t.serial.starts_with("PB")
                        && (t.token_type != wanted || t.has_pin != args.pin)
                    {
                        return Err(format!(
                            "the reused store holds {:?} tokens{}, this run asks for {wanted:?}{}: \
                             use another --workdir",
                            t.token_type,
                            if t.has_pin { " with a PIN" } else { "" },
                            if args.pin { " with a PIN" } else { "" },
                        ));
                    }
                    let i = t
                        .serial
                        .strip_prefix("PB")
                        .and_then(|n| n.parse::<usize>().ok());
                    if let Some(slot) = i.and_then(|i| counters.get_mut(i)) {
                        *slot = t.count;
                    }
                }
                match next {
                    Some(n) => after = Some(n),
                    None => return Ok(counters),
                }
            }
            other => return Err(format!("token list: {other:?}")),
        }
    }
}

fn enroll_all(args: &Args, socket: &Path, users: u32, clients: u32) -> Result<Vec<u64>, String> {
    let existing = match Client::connect(socket).and_then(|mut c| c.call(&Request::Status)) {
        Ok(Response::Status(s)) => s.tokens,
        other => return Err(format!("status: {other:?}")),
    };
    if existing >= users as u64 {
        let started = Instant::now();
        let counters = read_counters(args, socket, users)?;
        println!(
            "reusing {existing} enrolled tokens (counters read in {:.1} s)",
            started.elapsed().as_secs_f64()
        );
        return Ok(counters);
    }
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..clients.min(16))
        .map(|_| {
            let (next, failed, socket) = (next.clone(), failed.clone(), socket.to_path_buf());
            let (kind, pin) = (args.kind, args.pin);
            std::thread::spawn(move || -> Result<(), String> {
                let mut c = Client::connect(&socket).map_err(|e| e.to_string())?;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= users as u64 || failed.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    let i = i as u32;
                    let spec = EnrollRequest {
                        token_type: Some(match kind {
                            Kind::Totp => TokenType::Totp,
                            Kind::Hotp => TokenType::Hotp,
                        }),
                        user: Some(UserRef {
                            login: login_name(i),
                            realm: None,
                        }),
                        serial: Some(format!("PB{i:07}")),
                        otpkey: Some(Secret::new(hex::encode(key_of(i)))),
                        pin: pin.then(|| Secret::new("1234")),
                        ..Default::default()
                    };
                    match c.call(&Request::Admin(AdminRequest::TokenEnroll(Box::new(spec)))) {
                        Ok(Response::Admin(AdminResponse::Enrolled(_))) => {}
                        Ok(Response::Error {
                            code: protocol::ErrorCode::AlreadyExists,
                            ..
                        }) => {}
                        other => {
                            failed.store(true, Ordering::Relaxed);
                            return Err(format!("enrolling user {i}: {other:?}"));
                        }
                    }
                    if (i + 1).is_multiple_of(10_000) {
                        eprintln!("  enrolled {} of {users}", i + 1);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| "enrollment thread panicked".to_string())??;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "enrolled {users} tokens in {secs:.1} s ({:.0}/s)",
        users as f64 / secs
    );
    // The daemon writes what was just enrolled to its tables at its next checkpoint (every
    // 500 ms): a one-off write of every token that would land in the first second of logins.
    std::thread::sleep(Duration::from_secs(1));
    Ok(vec![0; users as usize])
}

/// Per-user OTP state as the "phone" sees it.
struct UserState {
    index: u32,
    key: [u8; 20],
    /// HOTP: next counter. TOTP: next time step that may be used.
    next: u64,
}

/// The next OTP for a user, or None when the user has no unused TOTP code right now.
fn next_otp(kind: Kind, u: &mut UserState) -> Option<String> {
    match kind {
        Kind::Hotp => {
            let otp = hotp(&u.key, u.next);
            u.next += 1;
            Some(otp)
        }
        Kind::Totp => {
            let t = (now_unix() / 30) as u64;
            // Replay protection allows each step once and never an older one; within the
            // window (±6 steps, privacyIDEA's default) a phone can be at most 5 steps ahead.
            let step = u.next.max(t);
            if step > t + 5 {
                return None;
            }
            u.next = step + 1;
            Some(hotp(&u.key, step))
        }
    }
}

fn wrong(otp: &str) -> String {
    otp.chars()
        .map(|c| {
            if c == '9' {
                '0'
            } else {
                ((c as u8) + 1) as char
            }
        })
        .collect()
}

struct ThreadResult {
    accepted: u64,
    rejected: u64,
    unexpected: u64,
    lat_us: Vec<u32>,
    /// Each user's next HOTP counter when the thread stopped (blocked threads only): where a
    /// later run against the same server goes on.
    next: Vec<(u32, u64)>,
}

/// Something to log in to: the pid socket or a privacyIDEA server.
trait Target: Sync {
    type Conn;
    fn connect(&self) -> Result<Self::Conn, String>;
    /// true = accepted.
    fn login(&self, conn: &mut Self::Conn, user: &str, pass: &str) -> Result<bool, String>;
}

/// The users client `t` logs in as (user i belongs to client i % clients), with the OTP state
/// the daemon's counters imply.
fn users_of(args: &Args, users: u32, clients: u32, t: u32, counters: &[u64]) -> Vec<UserState> {
    (t..users)
        .step_by(clients as usize)
        .map(|i| {
            let count = counters.get(i as usize).copied().unwrap_or(0);
            // HOTP stores the next counter; TOTP the last accepted step.
            let next = match args.kind {
                Kind::Hotp => count,
                Kind::Totp if count > 0 => count + 1,
                Kind::Totp => 0,
            };
            UserState {
                index: i,
                key: key_of(i),
                next,
            }
        })
        .collect()
}

/// Drive `clients` threads for the duration; user i belongs to thread i % clients, so the
/// OTP state needs no locks.
fn drive<T: Target>(
    args: &Args,
    target: &T,
    users: u32,
    clients: u32,
    counters: &[u64],
    duration: f64,
) -> Result<(Vec<ThreadResult>, f64), String> {
    run_timed((0..clients).collect(), duration, |t, stop| {
        client_loop(args, target, users, clients, t, stop, counters)
    })
}

/// One load thread per item for `duration` seconds, then stop them all and collect what they
/// counted, with the seconds that really passed.
fn run_timed<I: Send>(
    items: Vec<I>,
    duration: f64,
    work: impl Fn(I, &AtomicBool) -> Result<ThreadResult, String> + Sync,
) -> Result<(Vec<ThreadResult>, f64), String> {
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .into_iter()
            .map(|item| {
                let (stop, work) = (&stop, &work);
                scope.spawn(move || work(item, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(duration));
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "load thread panicked".to_string())?)
            .collect::<Result<Vec<_>, String>>()
    })?;
    Ok((results, started.elapsed().as_secs_f64()))
}

fn client_loop<T: Target>(
    args: &Args,
    target: &T,
    users: u32,
    clients: u32,
    t: u32,
    stop: &AtomicBool,
    counters: &[u64],
) -> Result<ThreadResult, String> {
    let mut mine = users_of(args, users, clients, t, counters);
    let mut res = ThreadResult {
        accepted: 0,
        rejected: 0,
        unexpected: 0,
        lat_us: Vec::new(),
        next: Vec::new(),
    };
    let mut conn: Option<T::Conn> = None;
    let mut rng = (t as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut cursor = 0usize;
    let mut idle = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let n = mine.len();
        let u = &mut mine[cursor % n];
        cursor += 1;
        let Some(otp) = next_otp(args.kind, u) else {
            idle += 1;
            if idle >= mine.len() {
                // Every user of this thread spent its codes: wait for the next time step.
                std::thread::sleep(Duration::from_millis(50));
                idle = 0;
            }
            continue;
        };
        idle = 0;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let send_wrong = (rng % 10_000) as f64 / 10_000.0 < args.wrong_share;
        let otp = if send_wrong { wrong(&otp) } else { otp };
        let pass = if args.pin { format!("1234{otp}") } else { otp };
        if let Some(ms) = args.pause_ms {
            std::thread::sleep(Duration::from_secs_f64(ms / 1000.0));
        }
        let connect_started = Instant::now();
        if args.reconnect {
            conn = None;
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => conn.insert(target.connect()?),
        };
        // With --reconnect the connect is part of the login, as under PAM.
        let begin = if args.reconnect {
            connect_started
        } else {
            Instant::now()
        };
        let ok = target.login(c, &login_name(u.index), &pass)?;
        res.lat_us
            .push(begin.elapsed().as_micros().min(u32::MAX as u128) as u32);
        match (ok, send_wrong) {
            (true, false) => res.accepted += 1,
            (false, true) => res.rejected += 1,
            _ => res.unexpected += 1,
        }
    }
    res.next = mine.iter().map(|u| (u.index, u.next)).collect();
    Ok(res)
}

fn summarize(target: &str, results: Vec<ThreadResult>, secs: f64) -> Summary {
    let mut s = Summary {
        target: target.into(),
        accepted: 0,
        rejected: 0,
        unexpected: 0,
        secs,
        lat_us: Vec::new(),
        rss_kib: None,
        hwm_kib: None,
        cpu_secs: None,
    };
    for r in results {
        s.accepted += r.accepted;
        s.rejected += r.rejected;
        s.unexpected += r.unexpected;
        s.lat_us.extend(r.lat_us);
    }
    s.lat_us.sort_unstable();
    s
}

struct PidTarget {
    socket: PathBuf,
    conversation: bool,
}

impl Target for PidTarget {
    type Conn = Client;

    fn connect(&self) -> Result<Client, String> {
        // Logins with a PIN at privacyIDEA's argon2 cost queue behind each other for seconds.
        Client::connect_with(
            &self.socket,
            Duration::from_secs(2),
            Duration::from_secs(120),
        )
        .map_err(|e| e.to_string())
    }

    fn login(&self, c: &mut Client, user: &str, pass: &str) -> Result<bool, String> {
        let begin = AuthBegin {
            user: user.into(),
            service: "pibench".into(),
            authtok: (!self.conversation).then(|| Secret::new(pass)),
            ..Default::default()
        };
        let mut resp = c
            .call(&Request::AuthBegin(begin))
            .map_err(|e| e.to_string())?;
        for _ in 0..4 {
            match resp {
                Response::AuthStep {
                    session,
                    prompt: Prompt::Secret { .. },
                } => {
                    resp = c
                        .call(&Request::AuthContinue {
                            session,
                            answer: Secret::new(pass),
                        })
                        .map_err(|e| e.to_string())?;
                }
                Response::AuthDone(Outcome::Accept { .. }) => return Ok(true),
                Response::AuthDone(_) => return Ok(false),
                other => return Err(format!("unexpected answer {other:?}")),
            }
        }
        Err("the conversation did not end".into())
    }
}

fn proc_status(pid: u32) -> (Option<u64>, Option<u64>) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// utime + stime of a process, seconds (USER_HZ = 100 on Linux).
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn bench_pid(args: &Args, users: u32, clients: u32) -> Result<Summary, String> {
    let daemon = start_daemon(args, users, None)?;
    let counters = enroll_all(args, &daemon.socket, users, clients)?;
    let pid = daemon.child.id();
    let cpu0 = cpu_secs(pid);
    let target = PidTarget {
        socket: daemon.socket.clone(),
        conversation: args.conversation,
    };
    let (results, secs) = if args.blocked_threads() {
        drive(args, &target, users, clients, &counters, args.duration)?
    } else {
        polled::drive(
            args,
            &daemon.socket,
            users,
            clients,
            args.client_threads,
            &counters,
            args.duration,
        )?
    };
    let mut s = summarize("pid", results, secs);
    let (rss, hwm) = proc_status(pid);
    s.rss_kib = rss;
    s.hwm_kib = hwm;
    s.cpu_secs = cpu_secs(pid).zip(cpu0).map(|(a, b)| a - b);
    Ok(s)
}

struct PrivacyIdeaTarget {
    addr: String,
    host: String,
}

fn form_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Target for PrivacyIdeaTarget {
    type Conn = ();

    fn connect(&self) -> Result<(), String> {
        Ok(())
    }

    /// POST /validate/check, one TCP connection per request (gunicorn's sync workers close
    /// after each response anyway).
    fn login(&self, _: &mut (), user: &str, pass: &str) -> Result<bool, String> {
        let body = format!(
            "user={}&realm=bench&pass={}",
            form_escape(user),
            form_escape(pass)
        );
        let req = format!(
            "POST /validate/check HTTP/1.1\r\nHost: {}\r\nContent-Type: \
             application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            self.host,
            body.len(),
            body
        );
        let mut s =
            std::net::TcpStream::connect(&self.addr).map_err(|e| format!("{}: {e}", self.addr))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
        if !resp.starts_with("HTTP/1.") {
            return Err(format!("not an HTTP answer: {resp:.80}"));
        }
        let compact: String = resp.chars().filter(|c| !c.is_whitespace()).collect();
        Ok(compact.contains("\"authentication\":\"ACCEPT\""))
    }
}

/// passlib's `pbkdf2_sha512` of `typed`, as privacyIDEA hands offline values out.
fn offline_value(typed: &str, rounds: u32, salt: &[u8]) -> String {
    let mut out = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(typed.as_bytes(), salt, rounds, &mut out);
    let ab64 = |b: &[u8]| data_encoding::BASE64_NOPAD.encode(b).replace('+', ".");
    format!("$pbkdf2-sha512${rounds}${}${}", ab64(salt), ab64(&out))
}

/// Offline logins with the server down: a stand-in server accepts one online login per user
/// and hands out `count` values (counters 1..=count) at `--offline-rounds`, then closes every
/// connection; the load is logins with those values, decided by pid alone.
fn bench_offline(args: &Args, count: u32, users: u32, clients: u32) -> Result<(), String> {
    use pi_tests::fake_http::{FakeServer, Reply};
    if args.kind != Kind::Hotp {
        return Err("--offline measures HOTP logins (--type hotp)".into());
    }
    let started = Instant::now();
    // The hand-outs, computed before the server answers anything (one thread per core).
    let threads = cores() as u32;
    let handouts: Vec<(u32, String)> = std::thread::scope(|s| {
        let parts: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..users)
                        .step_by(threads as usize)
                        .map(|i| {
                            let key = key_of(i);
                            let values: Vec<String> = (1..=u64::from(count))
                                .map(|c| {
                                    let otp = hotp(&key, c);
                                    let typed = if args.pin { format!("1234{otp}") } else { otp };
                                    let salt =
                                        [(i % 251) as u8, (c % 251) as u8, 7, 7, 7, 7, 7, 7, 7, 7];
                                    format!(
                                        "\"{c}\": \"{}\"",
                                        offline_value(&typed, args.offline_rounds, &salt)
                                    )
                                })
                                .collect();
                            (i, values.join(", "))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let handouts: std::collections::HashMap<String, String> = handouts
        .into_iter()
        .map(|(i, values)| {
            let answer = format!(
                "{{\"result\": {{\"status\": true, \"value\": true, \"authentication\": \"ACCEPT\"}}, \
                 \"detail\": {{\"serial\": \"PB{i:07}\"}}, \"auth_items\": {{\"offline\": [{{\
                 \"serial\": \"PB{i:07}\", \"refilltoken\": \"{}\", \"response\": {{{values}}}}}]}}}}",
                "ab".repeat(40)
            );
            (format!("user={}", login_name(i)), answer)
        })
        .collect();
    println!(
        "pibench: {} values per user at {} rounds computed in {:.1} s",
        count,
        args.offline_rounds,
        started.elapsed().as_secs_f64()
    );
    let down = Arc::new(AtomicBool::new(false));
    let server_down = down.clone();
    let server = FakeServer::start(move |req| {
        if server_down.load(Ordering::SeqCst) {
            return Reply::Close;
        }
        let user = req.body.split('&').find(|f| f.starts_with("user="));
        match user.and_then(|u| handouts.get(u)) {
            Some(answer) => Reply::json(answer),
            None => Reply::Close,
        }
    });
    let daemon = start_daemon(args, users, Some(server.url()))?;
    let target = PidTarget {
        socket: daemon.socket.clone(),
        conversation: args.conversation,
    };
    let mut conn = target.connect()?;
    for i in 0..users {
        let otp = hotp(&key_of(i), 0);
        let pass = if args.pin { format!("1234{otp}") } else { otp };
        if !target.login(&mut conn, &login_name(i), &pass)? {
            return Err(format!("the online login of {} was refused", login_name(i)));
        }
    }
    down.store(true, Ordering::SeqCst);
    println!("pibench: {users} users hold {count} offline values each; the server is down");
    let pid = daemon.child.id();
    let cpu0 = cpu_secs(pid);
    let counters = vec![1; users as usize];
    let (results, secs) = drive(args, &target, users, clients, &counters, args.duration)?;
    let mut s = summarize("pid offline", results, secs);
    let (rss, hwm) = proc_status(pid);
    s.rss_kib = rss;
    s.hwm_kib = hwm;
    s.cpu_secs = cpu_secs(pid).zip(cpu0).map(|(a, b)| a - b);
    println!("\n{HEADER}");
    println!("{}", s.row());
    if s.unexpected * 100 > s.accepted + s.rejected + s.unexpected {
        eprintln!(
            "pibench: {} logins had the wrong outcome (more logins per user than --offline \
             values, or offline logins locked by wrong codes)",
            s.unexpected
        );
    }
    Ok(())
}

/// The privacyIDEA server at `url` (http://, as tests/bench/privacyidea.sh runs it).
fn privacyidea_target(url: &str) -> Result<PrivacyIdeaTarget, String> {
    let host = url
        .strip_prefix("http://")
        .ok_or("the privacyIDEA URL must be http:// on 127.0.0.1 (tests/bench/privacyidea.sh)")?
        .trim_end_matches('/')
        .to_owned();
    let addr = if host.contains(':') {
        host.clone()
    } else {
        format!("{host}:80")
    };
    Ok(PrivacyIdeaTarget { addr, host })
}

/// pid as a client of a privacyIDEA server: the HOTP workload straight to the server, then the
/// same through pid with the server upstream of realm `bench`, in one run. The second run goes
/// on with the counters the first left.
fn bench_upstream(args: &Args, url: &str, users: u32, clients: u32) -> Result<(), String> {
    if args.kind != Kind::Hotp {
        return Err(
            "--upstream measures HOTP logins (--type hotp): their counters carry over \
                    from the run straight to the server to the run through pid"
                .into(),
        );
    }
    let duration = args.privacyidea_duration.unwrap_or(args.duration);
    // A stand-in answers in a fixed time, so the difference is pid's alone.
    let stand_in = (url == "stand-in").then(|| {
        let ms = args.stand_in_ms;
        pi_tests::fake_http::FakeServer::start(move |_| {
            std::thread::sleep(Duration::from_millis(ms));
            pi_tests::fake_http::Reply::json(
                r#"{"result": {"status": true, "value": true, "authentication": "ACCEPT"}, "detail": {"message": "stand-in"}}"#,
            )
        })
    });
    let url = stand_in.as_ref().map_or(url, |s| s.url());
    let straight = privacyidea_target(url)?;
    let server_pids = gunicorn_pids();
    let cpu = || -> f64 { server_pids.iter().filter_map(|p| cpu_secs(*p)).sum() };
    let cpu0 = cpu();
    let (results, secs) = drive(
        args,
        &straight,
        users,
        clients,
        &vec![0; users as usize],
        duration,
    )?;
    let mut counters = vec![0; users as usize];
    for (i, next) in results.iter().flat_map(|r| r.next.iter().copied()) {
        counters[i as usize] = next;
    }
    let mut direct = summarize("privacyIDEA", results, secs);
    let cpu1 = cpu();
    direct.cpu_secs = Some(cpu1 - cpu0);

    let daemon = start_daemon(args, users, Some(url))?;
    let pid = daemon.child.id();
    let pid_cpu0 = cpu_secs(pid);
    let target = PidTarget {
        socket: daemon.socket.clone(),
        conversation: args.conversation,
    };
    let (results, secs) = drive(args, &target, users, clients, &counters, duration)?;
    let mut through = summarize("pid→privacyIDEA", results, secs);
    through.rss_kib = proc_status(pid).0;
    through.hwm_kib = proc_status(pid).1;
    through.cpu_secs = cpu_secs(pid).zip(pid_cpu0).map(|(a, b)| a - b);
    let server_cpu = cpu() - cpu1;
    println!("\n{HEADER}");
    println!("{}", direct.row());
    println!("{}", through.row());
    let rate = |s: &Summary| s.accepted as f64 / s.secs;
    println!(
        "through pid: {:.3} of the server's accepted/s; p50 {:+.2} ms, mean {:+.2} ms per login; \
         pid CPU {:.2} s, the server's CPU {:.2} s straight and {:.2} s through pid",
        rate(&through) / rate(&direct).max(f64::MIN_POSITIVE),
        through.pct(0.5) - direct.pct(0.5),
        through.mean_ms() - direct.mean_ms(),
        through.cpu_secs.unwrap_or(0.0),
        direct.cpu_secs.unwrap_or(0.0),
        server_cpu,
    );
    for s in [&direct, &through] {
        if s.unexpected * 100 > s.accepted + s.rejected + s.unexpected {
            eprintln!(
                "pibench: {}: {} logins had the wrong outcome: set the server up afresh \
                 (tests/bench/privacyidea.sh setup --type hotp ...) before each run",
                s.target, s.unexpected
            );
        }
    }
    Ok(())
}

fn bench_privacyidea(args: &Args, url: &str, users: u32, clients: u32) -> Result<Summary, String> {
    let target = privacyidea_target(url)?;
    let server_pids = gunicorn_pids();
    let cpu0: f64 = server_pids.iter().filter_map(|p| cpu_secs(*p)).sum();
    // A privacyIDEA server set up by tests/bench/privacyidea.sh starts every counter at 0.
    let counters = vec![0; users as usize];
    let duration = args.privacyidea_duration.unwrap_or(args.duration);
    let (results, secs) = drive(args, &target, users, clients, &counters, duration)?;
    let mut s = summarize("privacyIDEA", results, secs);
    if !server_pids.is_empty() {
        let cpu1: f64 = server_pids.iter().filter_map(|p| cpu_secs(*p)).sum();
        s.cpu_secs = Some(cpu1 - cpu0);
        s.rss_kib = Some(server_pids.iter().filter_map(|p| proc_status(*p).0).sum());
    }
    Ok(s)
}

/// gunicorn master and workers serving privacyIDEA, for its CPU and RSS.
fn gunicorn_pids() -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.contains("gunicorn") && cmd.contains("privacyidea") {
                out.push(pid);
            }
        }
    }
    out
}
