//! The binary as an operator meets it: started with nothing set, started with
//! a bad setting, and stopped with SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{Trial, plain_tests};

/// The postapi binary, run in `dir` (so no `.env` of the developer's is read)
/// with an empty environment but `PORT=0` unless `vars` name a port: the
/// server binds before it connects, and a developer's `cargo run` holds 8000.
pub fn postapi(dir: &Path, vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_postapi"));
    command
        .current_dir(dir)
        .env_clear()
        .env("PORT", "0")
        .envs(vars.iter().copied())
        .stdin(Stdio::null());
    command
}

/// Polls `child` every 20 ms until it exits; kills it and fails the test
/// when it still runs `limit` after `since` ("SIGTERM", say).
pub fn wait_for_exit(child: &mut Child, limit: Duration, since: &str) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("poll postapi") {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("postapi still running {limit:?} after {since}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The port of a log line that says where postapi serves.
pub fn serving_port(line: &str) -> Option<u16> {
    line.split("http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
}

/// Runs the binary to its end, failing the test if it takes over `limit`.
fn run_to_exit(mut command: Command, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start postapi");
    wait_for_exit(&mut child, limit, "it started");
    (
        child.wait_with_output().expect("postapi output"),
        started.elapsed(),
    )
}

#[track_caller]
fn assert_fails_with_one_line_naming(vars: &[(&str, &str)], name: &str) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (output, took) = run_to_exit(postapi(dir.path(), vars), Duration::from_secs(10));

    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert!(
        !output.status.success(),
        "exit status for {vars:?}: {:?}",
        output.status
    );
    assert_eq!(lines.len(), 1, "one line for {vars:?}, got: {stderr}");
    assert!(
        lines[0].starts_with("ERROR:") && lines[0].contains(name),
        "{}",
        lines[0]
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

fn an_unsupported_algorithm_stops_start_up_with_one_line() {
    assert_fails_with_one_line_naming(&[("ALGORITHM", "RS256")], "ALGORITHM");
}

fn a_token_lifetime_that_is_not_a_positive_integer_stops_start_up() {
    for bad in ["0", "-1", "soon"] {
        assert_fails_with_one_line_naming(
            &[("ACCESS_TOKEN_EXPIRE_MINUTES", bad)],
            "ACCESS_TOKEN_EXPIRE_MINUTES",
        );
    }
}

fn a_bad_port_stops_start_up() {
    for bad in ["eighty", "70000"] {
        assert_fails_with_one_line_naming(&[("PORT", bad)], "PORT");
    }
}

fn a_post_shape_other_than_flat_or_course_stops_start_up() {
    for bad in ["nested", "Course", "fastapi"] {
        assert_fails_with_one_line_naming(&[("POST_SHAPE", bad)], "POST_SHAPE");
    }
}

fn a_port_already_in_use_stops_start_up() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = taken.local_addr().expect("its address").port().to_string();
    assert_fails_with_one_line_naming(
        &[("PORT", &port), ("SECRET_KEY", "k".repeat(32).as_str())],
        "listen",
    );
}

fn an_unreachable_postgres_stops_start_up_within_seconds() {
    assert_fails_with_one_line_naming(
        &[
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/postapi"),
            ("SECRET_KEY", &"k".repeat(32)),
        ],
        "cannot connect to the database",
    );
}

fn a_sqlite_file_in_a_missing_directory_stops_start_up() {
    assert_fails_with_one_line_naming(
        &[
            ("DATABASE_URL", "no/such/dir/app.db"),
            ("SECRET_KEY", &"k".repeat(32)),
        ],
        "cannot connect to the database",
    );
}

/// Starts the binary and reads its log until it says where it serves.
#[expect(
    clippy::zombie_processes,
    reason = "the caller waits for the child it is handed"
)]
fn start_serving(dir: &Path, vars: &[(&str, &str)]) -> (Child, u16, Vec<String>) {
    let mut child = postapi(dir, vars)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start postapi");
    let mut lines = Vec::new();
    let mut reader = BufReader::new(child.stderr.take().expect("stderr"));
    let started = Instant::now();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).expect("read the log") == 0
            || started.elapsed() > Duration::from_secs(10)
        {
            let _ = child.kill();
            let _ = child.wait();
            panic!("postapi did not start serving: {lines:?}");
        }
        let port = serving_port(&line);
        lines.push(line.trim_end().to_owned());
        if let Some(port) = port {
            // Keep draining the log so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in reader.lines() {});
            return (child, port, lines);
        }
    }
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

pub fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

fn with_nothing_set_it_serves_sqlite_from_postapi_db_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // Only PORT=0, so parallel tests cannot collide on 8000.
    let started = Instant::now();
    let (mut child, port, log) = start_serving(dir.path(), &[("PORT", "0")]);

    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?} to serve",
        started.elapsed()
    );
    assert!(
        log.iter()
            .any(|line| line.starts_with("WARNING:") && line.contains("SECRET_KEY")),
        "{log:?}"
    );
    assert!(
        log.iter().any(|line| line.contains("sqlite postapi.db")),
        "{log:?}"
    );
    assert!(http_get(port, "/").contains(r#"{"message":"Hello World"}"#));
    assert!(http_get(port, "/health").contains(r#""database":"ok""#));
    assert!(dir.path().join("postapi.db").exists());

    sigterm(&child);
    let status = wait_for_exit(&mut child, Duration::from_secs(10), "SIGTERM");
    assert!(status.success(), "{status}");
}

fn every_request_gets_one_access_line_in_uvicorns_shape() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut child = postapi(
        dir.path(),
        &[("PORT", "0"), ("SECRET_KEY", &"k".repeat(32))],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start postapi");
    let mut reader = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    let port = loop {
        line.clear();
        assert!(
            reader.read_line(&mut line).expect("read the log") > 0,
            "postapi exited early"
        );
        if let Some(port) = serving_port(&line) {
            break port;
        }
    };

    http_get(port, "/posts/");
    http_get(port, "/nope?x=1");
    sigterm(&child);
    let rest: Vec<String> = reader.lines().map_while(Result::ok).collect();
    let _ = child.wait();

    let access: Vec<&String> = rest
        .iter()
        .filter(|line| line.contains("HTTP/1.1\" "))
        .collect();
    assert_eq!(access.len(), 2, "{rest:?}");
    let shape = |line: &str, request: &str, status: &str| {
        line.starts_with("INFO:     127.0.0.1:")
            && line.contains(&format!(" - \"{request} HTTP/1.1\" {status}"))
    };
    assert!(
        shape(access[0], "GET /posts/", "401 Unauthorized"),
        "{}",
        access[0]
    );
    assert!(
        shape(access[1], "GET /nope?x=1", "404 Not Found"),
        "{}",
        access[1]
    );
}

pub fn tests() -> Vec<Trial> {
    plain_tests![
        an_unsupported_algorithm_stops_start_up_with_one_line,
        a_token_lifetime_that_is_not_a_positive_integer_stops_start_up,
        a_bad_port_stops_start_up,
        a_post_shape_other_than_flat_or_course_stops_start_up,
        a_port_already_in_use_stops_start_up,
        an_unreachable_postgres_stops_start_up_within_seconds,
        a_sqlite_file_in_a_missing_directory_stops_start_up,
        with_nothing_set_it_serves_sqlite_from_postapi_db_and_stops_gracefully_on_sigterm,
        every_request_gets_one_access_line_in_uvicorns_shape,
    ]
}
