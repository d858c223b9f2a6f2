//! Clients that hold connections: a body that trickles in is cut off with a
//! 408 and the connection closed; the listen backlog is the configured one.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::helpers::{Backend, TestApp, Trial, backend_tests};

/// Sends `head` (without the blank line) and `first_bytes` of a 100,000-byte
/// body, then stalls. Returns what the server sent back, until it closed the
/// connection, and how long that took.
async fn stall_mid_body(
    app: &TestApp,
    head: String,
    first_bytes: &'static [u8],
) -> (String, Duration) {
    let port = app.address.rsplit(':').next().expect("a port").to_owned();
    actix_web::rt::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(8)))
            .expect("a read timeout");
        let started = Instant::now();
        stream
            .write_all(format!("{head}\r\nContent-Length: 100000\r\n\r\n").as_bytes())
            .expect("send the head");
        stream.write_all(first_bytes).expect("send a few bytes");
        let mut answer = Vec::new();
        // Ends at EOF: the server closed the connection. A read timeout
        // (the connection left open) fails the test.
        stream
            .read_to_end(&mut answer)
            .expect("the server answers and closes the connection");
        (
            String::from_utf8_lossy(&answer).into_owned(),
            started.elapsed(),
        )
    })
    .await
    .expect("the raw client")
}

#[track_caller]
fn assert_cut_off(answer: &str, took: Duration) {
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{answer}"
    );
    assert!(
        answer.ends_with(r#"{"detail":"Request body not received in time"}"#),
        "{answer}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "answered after {took:?}"
    );
}

async fn a_body_that_stalls_gets_408_and_the_connection_is_closed(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.client_limits.body_read_timeout = Duration::from_secs(1);
    })
    .await;
    let alice = app.user("alice@example.com").await;

    let routes = [
        (
            "POST /users HTTP/1.1\r\nHost: test\r\nContent-Type: application/json".to_owned(),
            &b"{\"email\": \"a"[..],
        ),
        (
            "POST /login HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded"
                .to_owned(),
            &b"username=a"[..],
        ),
        (
            "POST /login HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=b"
                .to_owned(),
            &b"--b\r\n"[..],
        ),
        (
            format!(
                "POST /posts HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nAuthorization: Bearer {}",
                alice.token
            ),
            &b"{\"title\": "[..],
        ),
    ];
    for (head, first_bytes) in routes {
        let (answer, took) = stall_mid_body(&app, head, first_bytes).await;
        assert_cut_off(&answer, took);
    }
    // The server kept serving.
    assert_eq!(app.get("/", None).await.status, 200);
}

async fn the_listen_backlog_is_the_configured_one(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.client_limits.listen_backlog = 777;
    })
    .await;
    let port = app.address.rsplit(':').next().expect("a port").to_owned();

    // ss shows a listening socket's backlog as its Send-Q.
    let output = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2) runs");
    let listing = String::from_utf8_lossy(&output.stdout);
    let send_q: Vec<&str> = listing
        .lines()
        .filter_map(|line| line.split_whitespace().nth(2))
        .collect();
    assert_eq!(send_q, ["777"], "{listing}");
}

pub fn tests() -> Vec<Trial> {
    backend_tests![
        a_body_that_stalls_gets_408_and_the_connection_is_closed,
        the_listen_backlog_is_the_configured_one,
    ]
}
