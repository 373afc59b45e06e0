//! Local receivers for codes the daemon sends: an SMTP server and an HTTP SMS gateway on
//! 127.0.0.1, both Python standard library (Debian 12's python3 still ships `smtpd`), each
//! writing what it receives into a directory the test reads. Killed on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const SMTP: &str = r#"
import asyncore, os, smtpd, sys, warnings
warnings.simplefilter("ignore")
out = sys.argv[1]
class Sink(smtpd.SMTPServer):
    n = 0
    def process_message(self, peer, mailfrom, rcpttos, data, **kw):
        Sink.n += 1
        body = data.decode() if isinstance(data, bytes) else data
        tmp = os.path.join(out, ".mail%d" % Sink.n)
        with open(tmp, "w") as f:
            f.write("To: " + ",".join(rcpttos) + "\n" + body)
        os.rename(tmp, os.path.join(out, "mail%d" % Sink.n))
s = Sink(("127.0.0.1", 0), None, decode_data=True)
print(s.socket.getsockname()[1], flush=True)
asyncore.loop()
"#;

const HTTP: &str = r#"
import http.server, os, sys
out = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    n = 0
    def log_message(self, *a): pass
    def handle_any(self):
        H.n += 1
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        tmp = os.path.join(out, ".sms%d" % H.n)
        with open(tmp, "w") as f:
            f.write(self.command + " " + self.path + "\n" + body)
        os.rename(tmp, os.path.join(out, "sms%d" % H.n))
        self.send_response(200); self.end_headers(); self.wfile.write(b"OK queued")
    do_GET = handle_any
    do_POST = handle_any
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

const YUBICO: &str = r#"
import base64, hashlib, hmac, http.server, sys, urllib.parse
out = sys.argv[1]
key = base64.b64decode(open(out + "/apikey").read())
seen = set()
def sign(params):
    text = "&".join("%s=%s" % (k, params[k]) for k in sorted(params) if k != "h")
    return base64.b64encode(hmac.new(key, text.encode(), hashlib.sha1).digest()).decode()
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        q = {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query).items()}
        if q.get("h") != sign(q):
            status = "BAD_SIGNATURE"
        elif q["otp"] in seen:
            status = "REPLAYED_OTP"
        elif q["otp"].endswith("c" * 32):
            status = "BAD_OTP"
        else:
            status = "OK"; seen.add(q["otp"])
        r = {"t": "2026-11-23T00:00:00Z0000", "otp": q["otp"], "nonce": q["nonce"], "status": status}
        r["h"] = sign(r)
        body = "\r\n".join("%s=%s" % kv for kv in r.items()).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// A Python receiver process and the directory its messages land in.
pub struct Sink {
    child: Child,
    dir: TempDir,
    pub port: u16,
}

impl Sink {
    fn start(script: &str) -> Sink {
        Sink::start_in(tempfile::tempdir().expect("tempdir"), script)
    }

    fn start_in(dir: TempDir, script: &str) -> Sink {
        let mut child = Command::new("python3")
            .args(["-W", "ignore::DeprecationWarning", "-c", script])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the port");
        let port = line.trim().parse().expect("the receiver printed its port");
        Sink { child, dir, port }
    }

    /// An SMTP server (no TLS) that keeps every mail as a file.
    pub fn smtp() -> Sink {
        Sink::start(SMTP)
    }

    /// An HTTP server that answers 200 "OK queued" and keeps every request as a file.
    pub fn http() -> Sink {
        Sink::start(HTTP)
    }

    /// A Yubico validation protocol 2.0 server that checks request signatures with
    /// `api_key_b64`, signs its answers, says OK to a new OTP, REPLAYED_OTP to a repeated one
    /// and BAD_OTP to one ending in 32 `c`.
    pub fn yubico(api_key_b64: &str) -> Sink {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("apikey"), api_key_b64).expect("write the API key");
        Sink::start_in(dir, YUBICO)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The received messages, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
        });
        files.sort_by_key(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| {
                    n.trim_start_matches(char::is_alphabetic)
                        .parse::<u64>()
                        .ok()
                })
                .unwrap_or(0)
        });
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    }

    /// Wait up to 10 s for message number `n` (1-based) and return it.
    pub fn wait_for(&self, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(m) = self.messages().get(n - 1) {
                return m.clone();
            }
            assert!(Instant::now() < deadline, "message {n} never arrived");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
