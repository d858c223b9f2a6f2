//! Answers that actix or its middleware would shape on its own: every error
//! body the app can shape is `{"detail": ...}`, CORS allows only the methods
//! the routes take, and what actix answers before the app (a 431) is pinned.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use postapi::config::CorsOrigins;
use serde_json::json;

use crate::helpers::{Backend, TestApp, TestResponse, Trial, backend_tests, plain_tests};
use crate::shutdown::start;

async fn app_allowing(origin: &str, backend: Backend) -> TestApp {
    let origin = origin.to_owned();
    TestApp::spawn_with(backend, |settings| {
        settings.cors_origins = CorsOrigins::List(vec![origin]);
    })
    .await
}

/// A CORS preflight for `method` on `/posts/1` from `origin`.
async fn preflight(app: &TestApp, origin: &str, method: &str) -> TestResponse {
    app.client_request(
        Method::OPTIONS,
        "/posts/1",
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", method),
        ],
    )
    .await
}

async fn a_refused_cors_preflight_answers_a_json_detail(backend: Backend) {
    let app = app_allowing("https://app.example.com", backend).await;

    let other_origin = preflight(&app, "https://evil.example.com", "POST").await;
    let other_method = preflight(&app, "https://app.example.com", "TRACE").await;

    other_origin.assert_error(
        StatusCode::BAD_REQUEST,
        json!("Origin is not allowed to make this request"),
    );
    other_method.assert_error(
        StatusCode::BAD_REQUEST,
        json!("Requested method is not allowed"),
    );
    assert_eq!(
        other_origin.header("content-type"),
        Some("application/json")
    );
}

async fn cors_allows_the_methods_the_routes_take_and_no_others(backend: Backend) {
    let app = app_allowing("https://app.example.com", backend).await;

    for method in ["GET", "HEAD", "POST", "PUT", "DELETE"] {
        let response = preflight(&app, "https://app.example.com", method).await;
        response.assert_status_for(method, StatusCode::OK);
        let mut allowed: Vec<&str> = response
            .header("access-control-allow-methods")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .collect();
        allowed.sort_unstable();
        assert_eq!(
            allowed,
            ["DELETE", "GET", "HEAD", "POST", "PUT"],
            "{method}"
        );
    }
    for method in ["TRACE", "CONNECT", "PATCH"] {
        preflight(&app, "https://app.example.com", method)
            .await
            .assert_status_for(method, StatusCode::BAD_REQUEST);
    }
}

/// actix-http answers a head over its 128 KiB buffer with a 431 before the
/// app sees the request, and gives no way to shape its body: it stays empty,
/// and the connection is closed. (nginx in front answers such heads itself.)
async fn a_request_head_over_128_kib_is_a_431_and_the_server_keeps_serving(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let port: u16 = app
        .address
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("the app's port");

    let answer = actix_web::rt::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a read timeout");
        let head = format!(
            "GET / HTTP/1.1\r\nHost: localhost\r\nX-Padding: {}\r\n\r\n",
            "a".repeat(140 * 1024)
        );
        // The server may close before it has read everything.
        let _ = stream.write_all(head.as_bytes());
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    })
    .await
    .expect("the raw request");

    assert!(
        answer.starts_with("HTTP/1.1 431 "),
        "{}",
        answer.lines().next().unwrap_or_default()
    );
    assert!(answer.contains("content-length: 0"), "{answer}");
    app.get("/", None).await.assert_status(StatusCode::OK);
}

/// Sends `raw` on a connection of its own and reads the answer to its end.
fn exchange(port: u16, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    let _ = stream.write_all(raw);
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

fn a_malformed_request_is_a_400_logged_as_the_clients_mistake_not_an_error() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = dir.path().join("malformed.db");
    let (mut child, port, log) = start(
        dir.path(),
        &[
            ("DATABASE_URL", database.to_str().expect("a UTF-8 path")),
            ("SECRET_KEY", "malformed-secret-key-0123456789abcdef"),
        ],
    );

    let bad_header = exchange(port, b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n");
    let bad_target = exchange(port, b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n");
    let fine = exchange(
        port,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();

    for answer in [&bad_header, &bad_target] {
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    }
    assert!(fine.starts_with("HTTP/1.1 200 "), "{fine}");
    // The child has exited: its log ends, and with it the channel.
    let lines: Vec<String> = log.iter().collect();
    assert!(
        !lines.iter().any(|line| line.starts_with("ERROR")),
        "{lines:#?}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|line| line.starts_with("INFO:") && line.contains("malformed request"))
            .count(),
        2,
        "{lines:#?}"
    );
}

pub fn tests() -> Vec<Trial> {
    let mut tests = backend_tests![
        a_refused_cors_preflight_answers_a_json_detail,
        cors_allows_the_methods_the_routes_take_and_no_others,
        a_request_head_over_128_kib_is_a_431_and_the_server_keeps_serving,
    ];
    tests.extend(plain_tests![
        a_malformed_request_is_a_400_logged_as_the_clients_mistake_not_an_error
    ]);
    tests
}
