//! Talking to a daemon's health server in tests.

use std::time::Duration;

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` on the health server: status line and body; None while it is
/// not answering.
pub fn http_get(port: u16, path: &str) -> Option<(String, String)> {
    http_get_with(port, path, &[])
}

/// [`http_get`] with extra request headers (`("Authorization", "Bearer t")`).
pub fn http_get_with(port: u16, path: &str, headers: &[(&str, &str)]) -> Option<(String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_owned(), body.to_owned()))
}

/// Polls `GET path` until it answers 200 with a body `ready` accepts, and
/// returns that body; fails the test after `limit`. A blocking wait: the
/// server is another process.
pub fn wait_for_body(
    port: u16,
    path: &str,
    limit: Duration,
    ready: impl Fn(&str) -> bool,
) -> String {
    let start = std::time::Instant::now();
    loop {
        if let Some((line, body)) = http_get(port, path) {
            if line.contains("200") && ready(&body) {
                return body;
            }
        }
        assert!(
            start.elapsed() < limit,
            "GET {path} never answered as expected"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
