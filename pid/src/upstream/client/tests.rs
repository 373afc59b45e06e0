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
    /// What to do, from the request line (`POST /auth HTTP/1.1`).
    Route(fn(&str) -> Act),
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
        let act = match &act {
            Act::Route(route) => route(head.lines().next().unwrap_or("")),
            other => other.clone(),
        };
        match &act {
            Act::Route(_) => unreachable!("a route answers with an answer"),
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

/// The unix time the service-account tests start at, and the expiry of the JWT their server
/// hands out (an hour later).
const T0: i64 = 1_800_000_000;
const JWT_EXP: i64 = T0 + 3600;
const NO_ITEMS: &str = r#"{"result":{"status":true,"value":{}},"version":"privacyIDEA 3.14"}"#;
const WRONG_CREDENTIALS: &str = r#"{"result":{"status":false,"error":{"code":4031,"message":"Authentication failure. Wrong credentials"}},"version":"privacyIDEA 3.14"}"#;
const SERVICE_PASSWORD: &str = "s3rvice-Pa55word";

/// A JWT whose claims expire at `JWT_EXP` (its signature is the server's business).
fn service_jwt() -> String {
    let claims = format!("{{\"username\":\"pi-svc\",\"exp\":{JWT_EXP}}}");
    format!(
        "eyJhbGciOiJIUzI1NiJ9.{}.c2lnbmF0dXJl",
        data_encoding::BASE64URL_NOPAD.encode(claims.as_bytes())
    )
}

fn jwt_answer() -> Act {
    let body = format!(
        r#"{{"result":{{"status":true,"value":{{"token":"{}","role":"admin"}}}},"version":"privacyIDEA 3.14"}}"#,
        service_jwt()
    );
    Act::Answer(200, "application/json", body.into_bytes())
}

/// A client of `url` with the service account `pi-svc` (its password in a root-only file).
fn service_client(url: &str) -> (tempfile::TempDir, Client) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("service.pw");
    std::fs::write(&file, format!("{SERVICE_PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = UpstreamConfig {
        urls: vec![url.to_owned()],
        timeout_secs: Some(3),
        service_user: Some("pi-svc".into()),
        service_password_file: Some(file),
        ..UpstreamConfig::default()
    };
    cfg.validate("test").unwrap();
    (dir, Client::new("test", &cfg).unwrap())
}

fn requests_to(seen: &Mutex<Vec<String>>, line: &str) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|r| r.starts_with(line))
        .cloned()
        .collect()
}

#[test]
fn the_service_accounts_jwt_is_reused_across_lookups_until_it_expires() {
    let (url, _, seen) = serve(Act::Route(|line| {
        if line.starts_with("POST /auth ") {
            jwt_answer()
        } else {
            json(NO_ITEMS)
        }
    }));
    let (_dir, c) = service_client(&url);
    c.ssh_keys("host1", "alice", None, T0).unwrap();
    c.luks("host1", "00ff", T0 + 60).unwrap();
    c.ssh_keys("host1", "bob", Some("web"), JWT_EXP - JWT_MARGIN - 1)
        .unwrap();
    assert_eq!(
        requests_to(&seen, "POST /auth ").len(),
        1,
        "one login of the service account for three lookups within the JWT's lifetime"
    );
    let auth = &requests_to(&seen, "POST /auth ")[0];
    assert!(auth.contains("username=pi-svc"), "{auth}");
    let lookups = requests_to(&seen, "GET /machine/authitem/");
    assert_eq!(lookups.len(), 3);
    for lookup in &lookups {
        assert!(
            lookup.contains(&format!("Authorization: {}\r\n", service_jwt())),
            "each lookup carries the JWT: {lookup}"
        );
        assert!(
            !lookup.contains(SERVICE_PASSWORD),
            "the password goes to /auth only"
        );
    }
    assert_eq!(c.health().service_account_ok, Some(true));

    c.ssh_keys("host1", "alice", None, JWT_EXP - JWT_MARGIN)
        .unwrap();
    assert_eq!(
        requests_to(&seen, "POST /auth ").len(),
        2,
        "renewed shortly before it expires"
    );
}

#[test]
fn a_jwt_the_server_no_longer_takes_is_renewed_once_then_the_lookup_fails() {
    let (url, _, seen) = serve(Act::Route(|line| {
        if line.starts_with("POST /auth ") {
            jwt_answer()
        } else {
            Act::Answer(
                401,
                "application/json",
                WRONG_CREDENTIALS.as_bytes().to_vec(),
            )
        }
    }));
    let (_dir, c) = service_client(&url);
    let e = c.ssh_keys("host1", "alice", None, T0).unwrap_err();
    assert!(matches!(e, UpstreamError::Refused { .. }), "{e}");
    assert_eq!(
        requests_to(&seen, "POST /auth ").len(),
        2,
        "one renewal after the 401, no loop"
    );
    assert_eq!(requests_to(&seen, "GET /machine/authitem/ssh").len(), 2);
}

#[test]
fn a_refused_service_account_says_what_to_check_and_shows_in_the_health() {
    let (url, _, seen) = serve(Act::Route(|line| {
        if line.starts_with("POST /auth ") {
            Act::Answer(
                401,
                "application/json",
                WRONG_CREDENTIALS.as_bytes().to_vec(),
            )
        } else {
            json(NO_ITEMS)
        }
    }));
    let (_dir, c) = service_client(&url);
    let e = c.ssh_keys("host1", "alice", None, T0).unwrap_err();
    let shown = crate::error::chain(&e).to_string();
    assert!(matches!(e, UpstreamError::ServiceAccount { .. }), "{shown}");
    for says in ["pi-svc", "Wrong credentials", "service_password_file"] {
        assert!(shown.contains(says), "{says}: {shown}");
    }
    assert!(!shown.contains(SERVICE_PASSWORD), "{shown}");
    let health = c.health();
    assert_eq!(health.service_account_ok, Some(false));
    assert_eq!(health.last_error.as_deref(), Some(shown.as_str()));
    assert!(
        requests_to(&seen, "GET ").is_empty(),
        "no lookup without a JWT"
    );
}
