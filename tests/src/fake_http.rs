//! A small HTTP/1.1 server on 127.0.0.1 that answers what a test tells it to: for the answers a
//! real privacyIDEA never gives (malformed JSON, an HTML error page, 10 MiB, silence, a
//! redirect), to show that pid fails closed and keeps nothing of them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server read it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The path with its query string.
    pub path: String,
    pub body: String,
}

/// What the server does with a request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Answer with this status, `Content-Type` and body (and a `Location` header for 3xx).
    Answer {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
    /// Read the request and say nothing for a minute.
    Hang,
    /// Read the request and close the connection without a word (a server going down).
    Close,
}

impl Reply {
    /// `200`, `application/json`.
    pub fn json(body: &str) -> Reply {
        Reply::Answer {
            status: 200,
            content_type: "application/json".into(),
            body: body.as_bytes().to_vec(),
        }
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

pub struct FakeServer {
    url: String,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl FakeServer {
    /// A server that answers every request with what `handler` returns for it.
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (handler, log) = (handler.clone(), log.clone());
                std::thread::spawn(move || serve(stream, &*handler, &log));
            }
        });
        FakeServer { url, seen }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The requests read so far.
    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().expect("request log").clone()
    }
}

fn serve(stream: TcpStream, handler: &Handler, seen: &Mutex<Vec<Request>>) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut out = stream;
    loop {
        let mut first = String::new();
        if reader.read_line(&mut first).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = first.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut length = 0usize;
        let mut close = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            close |= lower.starts_with("connection:") && lower.contains("close");
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = Request {
            method,
            path,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        seen.lock().expect("request log").push(request.clone());
        match handler(&request) {
            Reply::Close => return,
            Reply::Hang => {
                std::thread::sleep(Duration::from_secs(60));
                return;
            }
            Reply::Answer {
                status,
                content_type,
                body,
            } => {
                let head = format!(
                    "HTTP/1.1 {status} Fake\r\nContent-Type: {content_type}\r\n\
                     Content-Length: {}\r\nLocation: http://127.0.0.1:9/\r\n\r\n",
                    body.len()
                );
                // One write: a head and a body sent apart would wait for the client's delayed
                // ACK (Nagle), 40 ms that no real server adds.
                let mut answer = head.into_bytes();
                answer.extend_from_slice(&body);
                if out.write_all(&answer).is_err() || close {
                    return;
                }
            }
        }
    }
}
