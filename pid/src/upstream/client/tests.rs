//! The client against small fake servers on 127.0.0.1 that misbehave on purpose.

use super::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};

/// What the fake server does with each request.
#[derive(Clone)]
enum Act {
    /// Answer with this status, content type and body.
    Answer(u16, &'static str, Vec<u8>),
    /// Read the request and never answer.
    Hang,
}

const ACCEPT: &str = r#"{"result":{"status":true,"value":true,"authentication":"ACCEPT"},"detail":{"serial":"H1"},"version":"privacyIDEA 3.14"}"#;

fn json(body: &str) -> Act {
    Act::Answer(200, "application/json", body.as_bytes().to_vec())
}

/// A server answering every request with `act`; its URL, how many connections it accepted and
/// the requests it read.
fn serve(act: Act) -> (String, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let conns = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (c, s) = (conns.clone(), seen.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            c.fetch_add(1, Ordering::SeqCst);
            let (act, s) = (act.clone(), s.clone());
            std::thread::spawn(move || connection(stream, act, s));
        }
    });
    (url, conns, seen)
}

fn connection(stream: TcpStream, act: Act, seen: Arc<Mutex<Vec<String>>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut head = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0u8; length];
        std::io::Read::read_exact(&mut reader, &mut body).unwrap();
        seen.lock()
            .unwrap()
            .push(format!("{head}{}", String::from_utf8_lossy(&body)));
        match &act {
            Act::Hang => {
                std::thread::sleep(Duration::from_secs(30));
                return;
            }
            Act::Answer(status, content_type, body) => {
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nLocation: http://127.0.0.1:1/\r\n\r\n",
                    body.len()
                );
                if out.write_all(head.as_bytes()).is_err() || out.write_all(body).is_err() {
                    return;
                }
            }
        }
    }
}

fn client(urls: &[&str], timeout_secs: u64) -> Client {
    let cfg = UpstreamConfig {
        urls: urls.iter().map(|u| u.to_string()).collect(),
        timeout_secs: Some(timeout_secs),
        connect_timeout_ms: Some(500),
        realm: Some("corp".into()),
        ..UpstreamConfig::default()
    };
    cfg.validate("test").unwrap();
    Client::new("test", &cfg).unwrap()
}

fn fields() -> CheckFields<'static> {
    CheckFields {
        transaction_id: None,
        service: "sshd",
        rhost: Some("192.0.2.7"),
    }
}

#[test]
fn logins_reuse_one_kept_alive_connection_and_send_privacyideas_fields() {
    let (url, conns, seen) = serve(json(ACCEPT));
    let c = client(&[&url], 3);
    for _ in 0..3 {
        let answer = c.validate_check("alice", "pin123456", &fields()).unwrap();
        assert!(matches!(answer, answer::Check::Accept { .. }));
    }
    assert_eq!(
        conns.load(Ordering::SeqCst),
        1,
        "one connection for three logins"
    );
    let first = seen.lock().unwrap()[0].clone();
    assert!(
        first.starts_with("POST /validate/check HTTP/1.1"),
        "{first}"
    );
    for field in [
        "user=alice",
        "pass=pin123456",
        "realm=corp",
        "client_service=sshd",
        "client_host=192.0.2.7",
    ] {
        assert!(first.contains(field), "{field} in {first}");
    }
    let health = c.health();
    assert_eq!(health.reachable, Some(true));
    assert_eq!(health.version.as_deref(), Some("privacyIDEA 3.14"));
}

#[test]
fn a_server_that_refuses_connections_is_skipped_for_the_next_url() {
    // A port nobody listens on: bind one and close it.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let (url, _, _) = serve(json(ACCEPT));
    let c = client(&[&dead_url, &url], 3);
    assert!(matches!(
        c.validate_check("alice", "x", &fields()).unwrap(),
        answer::Check::Accept { .. }
    ));
    let only_dead = client(&[&dead_url], 3);
    let e = only_dead
        .validate_check("alice", "x", &fields())
        .unwrap_err();
    assert!(e.unreachable(), "{e}");
    assert!(e.to_string().contains(&dead_url), "{e}");
    assert_eq!(only_dead.health().reachable, Some(false));
}

#[test]
fn a_server_that_never_answers_costs_at_most_the_timeout() {
    let (url, _, _) = serve(Act::Hang);
    let (url2, _, _) = serve(Act::Hang);
    let c = client(&[&url, &url2], 1);
    let started = Instant::now();
    let e = c.validate_check("alice", "x", &fields()).unwrap_err();
    let took = started.elapsed();
    assert!(e.unreachable(), "{e}");
    assert!(
        took < Duration::from_millis(1800),
        "took {took:?} for a 1 s timeout"
    );
}

#[test]
fn answers_that_are_not_privacyideas_are_refused_with_a_clear_error() {
    let cases: Vec<(Act, &str)> = vec![
        (
            Act::Answer(502, "text/html", b"<h1>Bad Gateway</h1>".to_vec()),
            "HTTP 502: <h1>Bad Gateway</h1>",
        ),
        (Act::Answer(302, "text/html", Vec::new()), "HTTP 302"),
        (
            Act::Answer(500, "application/json", b"{}".to_vec()),
            "HTTP 500",
        ),
        (
            Act::Answer(200, "text/plain", ACCEPT.as_bytes().to_vec()),
            "\"text/plain\", not JSON",
        ),
        (json("{\"result\": 1}"), "the answer is refused"),
        (json("not json at all"), "the answer is refused"),
        (
            Act::Answer(200, "application/json", vec![b' '; 10 * 1024 * 1024]),
            "more than 1048576 bytes",
        ),
    ];
    for (act, says) in cases {
        let (url, _, _) = serve(act);
        let c = client(&[&url], 3);
        let e = c.validate_check("alice", "x", &fields()).unwrap_err();
        let shown = crate::error::chain(&e).to_string();
        assert!(shown.contains(says), "{says}: {shown}");
        assert!(!e.unreachable(), "{shown}");
        assert!(c.health().last_error.is_some());
    }
}

#[test]
fn an_unknown_user_answered_with_http_400_is_the_servers_refusal() {
    let body = r#"{"result":{"status":false,"error":{"code":904,"message":"ERR904: The user can not be found in any resolver in this realm!"}},"detail":null}"#;
    let (url, _, _) = serve(Act::Answer(
        400,
        "application/json",
        body.as_bytes().to_vec(),
    ));
    let c = client(&[&url], 3);
    let answer = c.validate_check("mallory", "x", &fields()).unwrap();
    assert!(
        matches!(&answer, answer::Check::Refused(r) if r.code == Some(904)),
        "{answer:?}"
    );
}

#[test]
fn admin_endpoints_need_a_service_account() {
    let (url, conns, _) = serve(json(ACCEPT));
    let c = client(&[&url], 3);
    let e = c.ssh_keys("host1", "alice", None, 0).unwrap_err();
    assert!(e.to_string().contains("service_user"), "{e}");
    assert_eq!(
        conns.load(Ordering::SeqCst),
        0,
        "nothing is sent without one"
    );
}

#[test]
fn a_jwt_is_reused_until_shortly_before_it_expires() {
    let now = 1_800_000_000;
    let jwt = |claims: String| {
        format!(
            "eyJhbGciOiJIUzI1NiJ9.{}.c2ln",
            data_encoding::BASE64URL_NOPAD.encode(claims.as_bytes())
        )
    };
    let hour = jwt(format!("{{\"exp\": {}}}", now + 3600));
    assert_eq!(jwt_lifetime(&hour, now), 3600 - JWT_MARGIN);
    let expired = jwt(format!("{{\"exp\": {}}}", now - 5));
    assert_eq!(jwt_lifetime(&expired, now), 0);
    assert_eq!(jwt_lifetime(&jwt("{}".into()), now), JWT_DEFAULT_LIFETIME);
    assert_eq!(jwt_lifetime("garbage", now), JWT_DEFAULT_LIFETIME);
}
