//! The bounded password-hashing pool: at most `PASSWORD_HASH_THREADS` hashes
//! at once, at most `PASSWORD_HASH_QUEUE` waiting, each for at most
//! `PASSWORD_HASH_WAIT_SECONDS`; past that, a 503 with `Retry-After` at once.

use std::time::Duration;

use actix_web::http::StatusCode;
use futures_util::future::join_all;
use postapi::config::HashPoolSize;

use crate::helpers::{Backend, PASSWORD, TestApp, TestResponse, Trial, backend_tests};

async fn log_in(app: &TestApp) -> TestResponse {
    app.post_form(
        "/login",
        &[("username", "alice@example.com"), ("password", PASSWORD)],
    )
    .await
}

fn assert_busy(response: &TestResponse, retry_after: &str) {
    assert_eq!(
        response.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        response.text()
    );
    assert_eq!(response.header("retry-after"), Some(retry_after));
    assert_eq!(
        response.detail(),
        "Service Unavailable: the server is busy, retry shortly"
    );
}

async fn logins_past_the_threads_and_the_queue_get_a_503_with_retry_after(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        // Tens of milliseconds a hash, so the logins below overlap; the
        // admitted ones may wait as long as a busy machine needs.
        settings.bcrypt_cost = 10;
        settings.password_hashing = HashPoolSize {
            threads: 1,
            queue: 1,
            max_wait: Duration::from_secs(600),
        };
    })
    .await;
    app.sign_up("alice@example.com").await;

    let responses = join_all((0..6).map(|_| log_in(&app))).await;

    let ok = responses
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let busy: Vec<_> = responses
        .iter()
        .filter(|r| r.status != StatusCode::OK)
        .collect();
    for response in &busy {
        assert_busy(response, "600");
    }
    // One hashing and one waiting are admitted; the rest arrive while both
    // places are taken (each hash takes far longer than six requests do).
    assert!(
        (2..=5).contains(&ok),
        "{ok} logins succeeded of 6, with room for 2 at once"
    );
    assert!(!busy.is_empty());
    // Once the pool is free again, logins succeed.
    assert_eq!(log_in(&app).await.status, StatusCode::OK);
}

async fn a_login_waiting_longer_than_the_wait_bound_gets_a_503(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        // Hundreds of milliseconds a hash: five in a row take over a second.
        settings.bcrypt_cost = 13;
        settings.password_hashing = HashPoolSize {
            threads: 1,
            queue: 4,
            max_wait: Duration::from_secs(1),
        };
    })
    .await;
    app.sign_up("alice@example.com").await;

    // All five fit in the thread and the queue: only waiting can refuse one.
    let responses = join_all((0..5).map(|_| log_in(&app))).await;

    let ok = responses
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    for response in responses.iter().filter(|r| r.status != StatusCode::OK) {
        assert_busy(response, "1");
    }
    assert!(
        (1..5).contains(&ok),
        "{ok} of 5 logins succeeded: the first must, the last cannot wait long enough"
    );
}

pub fn tests() -> Vec<Trial> {
    backend_tests![
        logins_past_the_threads_and_the_queue_get_a_503_with_retry_after,
        a_login_waiting_longer_than_the_wait_bound_gets_a_503,
    ]
}
