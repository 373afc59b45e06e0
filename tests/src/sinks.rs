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

/// A Python receiver process and the directory its messages land in.
pub struct Sink {
    child: Child,
    dir: TempDir,
    pub port: u16,
}

impl Sink {
    fn start(script: &str) -> Sink {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new("python3")
            .args(["-c", script])
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
