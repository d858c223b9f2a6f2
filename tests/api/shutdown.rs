//! The binary under an operator's hands: SIGTERM drains in-flight requests
//! and refuses new connections, and a 5xx's log lines name its request id.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStderr, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};

use crate::helpers::{Trial, plain_tests};
use crate::startup::{postapi, serving_port, sigterm, wait_for_exit};

/// Starts the release-or-debug binary in `dir` with only `vars`, and returns
/// it with its port and a channel of its log lines.
#[expect(
    clippy::zombie_processes,
    reason = "the caller waits for the child it is handed"
)]
pub fn start(dir: &Path, vars: &[(&str, &str)]) -> (Child, u16, mpsc::Receiver<String>) {
    let mut child = postapi(dir, vars)
        .env("PORT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start postapi");
    let lines = read_lines(child.stderr.take().expect("stderr"));
    let started = Instant::now();
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("postapi did not start serving")
            });
        if let Some(port) = serving_port(&line) {
            return (child, port, lines);
        }
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}

fn read_lines(stderr: ChildStderr) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = send.send(line);
        }
    });
    receive
}

fn send(port: u16, request: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.write_all(request.as_bytes()).expect("send");
    stream
}

fn response_of(mut stream: TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a read timeout");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

/// A sign-up whose head and first half of body are sent: in flight, the
/// handler waiting for the rest.
fn half_sent_sign_up(port: u16, email: &str) -> (TcpStream, String) {
    let body = format!(r#"{{"email": "{email}", "password": "correct horse"}}"#);
    let (first, rest) = body.split_at(body.len() / 2);
    let stream = send(
        port,
        &format!(
            "POST /users HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{first}",
            body.len()
        ),
    );
    (stream, rest.to_owned())
}

fn sigterm_finishes_in_flight_requests_refuses_new_connections_and_exits_zero() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (mut child, port, _log) = start(
        dir.path(),
        &[("BCRYPT_COST", "4"), ("SHUTDOWN_TIMEOUT_SECONDS", "30")],
    );
    let (mut in_flight, rest) = half_sent_sign_up(port, "draining@example.com");
    std::thread::sleep(Duration::from_millis(300));

    sigterm(&child);
    let refused_from = Instant::now();
    let refused = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Err(error) => break error,
            Ok(_) if refused_from.elapsed() < Duration::from_secs(1) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(_) => panic!("still accepting connections a second after SIGTERM"),
        }
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().expect("poll").is_none(),
        "exited before the drain"
    );
    in_flight.write_all(rest.as_bytes()).expect("send the rest");
    let response = response_of(in_flight);
    let status = wait_for_exit(&mut child, Duration::from_secs(30), "SIGTERM");

    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(
        response.starts_with("HTTP/1.1 201 Created"),
        "the in-flight sign-up: {response}"
    );
    assert!(status.success(), "{status:?}");
}

fn the_drain_time_bounds_how_long_a_stop_takes() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (mut child, port, _log) = start(
        dir.path(),
        &[("BCRYPT_COST", "4"), ("SHUTDOWN_TIMEOUT_SECONDS", "1")],
    );
    // Never finished: only the drain time ends it.
    let (_in_flight, _rest) = half_sent_sign_up(port, "stalled@example.com");
    std::thread::sleep(Duration::from_millis(300));

    let stopping = Instant::now();
    sigterm(&child);
    let status = wait_for_exit(&mut child, Duration::from_secs(10), "SIGTERM");

    let took = stopping.elapsed();
    assert!(took >= Duration::from_millis(900), "took {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(status.success(), "{status:?}");
}

fn a_server_errors_log_lines_name_its_request_id() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (mut child, port, log) = start(dir.path(), &[("SECRET_KEY", &"k".repeat(32))]);
    let mut db = SqliteConnection::establish(&dir.path().join("postapi.db").to_string_lossy())
        .expect("open the database");
    db.batch_execute("DROP TABLE votes; DROP TABLE posts; DROP TABLE users")
        .expect("break the database");

    let response = response_of(send(
        port,
        "GET /users/1 HTTP/1.1\r\nHost: localhost\r\nX-Request-ID: find-me-in-the-log\r\n\
         Connection: close\r\n\r\n",
    ));
    sigterm(&child);
    let _ = wait_for_exit(&mut child, Duration::from_secs(10), "SIGTERM");
    let lines: Vec<String> = log.try_iter().collect();

    assert!(response.starts_with("HTTP/1.1 500"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("x-request-id: find-me-in-the-log"),
        "{response}"
    );
    let error = lines
        .iter()
        .find(|line| line.starts_with("ERROR:") && line.contains("500 Internal Server Error"))
        .unwrap_or_else(|| panic!("no error line in {lines:?}"));
    assert!(error.ends_with(" request_id=find-me-in-the-log"), "{error}");
    let access = lines
        .iter()
        .find(|line| line.contains("\"GET /users/1 HTTP/1.1\" 500"))
        .unwrap_or_else(|| panic!("no access line in {lines:?}"));
    assert!(
        access.ends_with("500 Internal Server Error request_id=find-me-in-the-log"),
        "{access}"
    );
    // Other answers keep uvicorn's exact access line.
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("request_id=") && l.contains(" 200 "))
    );
}

pub fn tests() -> Vec<Trial> {
    plain_tests![
        sigterm_finishes_in_flight_requests_refuses_new_connections_and_exits_zero,
        the_drain_time_bounds_how_long_a_stop_takes,
        a_server_errors_log_lines_name_its_request_id,
    ]
}
