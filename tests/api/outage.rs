//! A database that goes away and comes back, simulated with a proxy the test
//! closes (the shared PostgreSQL is never touched): quick 503s with
//! `Retry-After` while it is away, recovery on its own, never a 500.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use postapi::config::DatabaseUrl;
use serde_json::json;

use crate::helpers::{Backend, TestApp, TestResponse, TestUser, Trial, postgres_tests};
use crate::proxy::{TcpProxy, postgres_address, through_port};

/// An app whose database connections all go through `proxy`.
async fn app_behind(proxy: &TcpProxy, backend: Backend, pool_timeout: Duration) -> TestApp {
    let port = proxy.port();
    TestApp::spawn_with(backend, |settings| {
        if let DatabaseUrl::Postgres(url) = &settings.database_url {
            settings.database_url = DatabaseUrl::Postgres(through_port(url, port));
        }
        settings.pool_timeout = pool_timeout;
    })
    .await
}

fn proxy_for(backend: &Backend) -> TcpProxy {
    let Backend::Postgres(admin_url) = backend else {
        panic!("outage tests run on PostgreSQL only");
    };
    TcpProxy::start(postgres_address(admin_url))
}

async fn timed_get(app: &TestApp, path: &str, user: &TestUser) -> (TestResponse, Duration) {
    let started = Instant::now();
    let response = app.get(path, user.token()).await;
    (response, started.elapsed())
}

#[track_caller]
fn assert_unavailable(response: &TestResponse, path: &str) {
    response.assert_status_for(path, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.header("retry-after"), Some("1"), "{path}");
    assert_eq!(
        response.json(),
        json!({ "detail": "Service Unavailable: the database cannot be reached" })
    );
}

/// Polls `GET path` as `user` every 100 ms until it answers 200; each
/// other answer must be the 503. Fails when still 503 10 s on, saying it
/// was `since` ("the database came back", say). Returns how long it took.
async fn until_ok_again(app: &TestApp, path: &str, user: &TestUser, since: &str) -> Duration {
    let started = Instant::now();
    loop {
        let (response, _) = timed_get(app, path, user).await;
        if response.status == StatusCode::OK {
            return started.elapsed();
        }
        assert_unavailable(&response, path);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{path} still 503 10 s after {since}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn while_the_database_is_away_requests_get_quick_503s_and_recover_on_their_own(
    backend: Backend,
) {
    let mut proxy = proxy_for(&backend);
    // The default pool timeout: the 503s must not wait for it.
    let app = app_behind(&proxy, backend, Duration::from_secs(5)).await;
    let alice = app.user("alice@example.com").await;
    app.create_post(&alice, "before the outage").await;
    assert_eq!(
        timed_get(&app, "/posts", &alice).await.0.status,
        StatusCode::OK
    );

    proxy.close();

    let mut slowest = Duration::ZERO;
    for round in 0..5 {
        for path in ["/health", "/posts", "/posts/1"] {
            let (response, took) = timed_get(&app, path, &alice).await;
            assert_unavailable(&response, path);
            // /health always; the others once the outage is known.
            if path == "/health" || round > 0 {
                assert!(took < Duration::from_millis(1200), "{path} took {took:?}");
                slowest = slowest.max(took);
            }
        }
        let live = app.get("/health/live", None).await;
        assert_eq!(live.status, StatusCode::OK);
        assert_eq!(live.json(), json!({ "status": "ok" }));
    }
    eprintln!("slowest 503 during the outage: {slowest:?}");

    proxy.reopen();
    let took = until_ok_again(&app, "/posts", &alice, "the database came back").await;
    eprintln!("serving again {took:?} after the database came back");
    for path in ["/health", "/posts", "/posts/1"] {
        let (response, _) = timed_get(&app, path, &alice).await;
        response.assert_status_for(path, StatusCode::OK);
    }
}

async fn the_first_request_after_the_database_is_back_succeeds(backend: Backend) {
    let mut proxy = proxy_for(&backend);
    let pool_timeout = Duration::from_secs(2);
    let app = app_behind(&proxy, backend, pool_timeout).await;
    let alice = app.user("alice@example.com").await;
    app.create_post(&alice, "before").await;

    // A restart no request saw: the pool holds only cut connections.
    proxy.close();
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    proxy.reopen();

    let (first, _) = timed_get(&app, "/posts", &alice).await;
    first.assert_status(StatusCode::OK);
    let written = app
        .send_post(&alice, json!({ "title": "after", "content": "c" }))
        .await;
    written.assert_status(StatusCode::CREATED);

    // An outage requests did see: once the pool has reconnected by itself
    // (its retries back off to at most half the pool timeout), the first
    // request succeeds.
    proxy.close();
    for path in ["/posts", "/health"] {
        assert_unavailable(&timed_get(&app, path, &alice).await.0, path);
    }
    proxy.reopen();
    actix_web::rt::time::sleep(pool_timeout).await;

    let (first, _) = timed_get(&app, "/posts", &alice).await;
    first.assert_status(StatusCode::OK);
    assert_eq!(first.json().as_array().map(Vec::len), Some(2));
}

async fn health_answers_within_a_second_while_the_database_hangs(backend: Backend) {
    let mut proxy = proxy_for(&backend);
    let app = app_behind(&proxy, backend, Duration::from_secs(5)).await;
    let alice = app.user("alice@example.com").await;

    // Connections are cut and new ones get no answer: each connection
    // attempt now waits for libpq's connect_timeout (5 s).
    proxy.hang();
    for _ in 0..3 {
        let (response, took) = timed_get(&app, "/health", &alice).await;
        assert_unavailable(&response, "/health");
        assert!(took < Duration::from_millis(1200), "/health took {took:?}");
        eprintln!("/health while the database hangs: {took:?}");
    }
    // The first request that needs a connection waits until the attempt
    // fails (at most the pool timeout); after that, 503s come at once.
    let (response, took) = timed_get(&app, "/posts", &alice).await;
    assert_unavailable(&response, "/posts");
    assert!(took < Duration::from_millis(6500), "/posts took {took:?}");
    eprintln!("first 503 while the database hangs: {took:?}");
    let marked = Instant::now();
    loop {
        let (response, took) = timed_get(&app, "/posts", &alice).await;
        assert_unavailable(&response, "/posts");
        if took < Duration::from_millis(200) {
            break;
        }
        assert!(
            marked.elapsed() < Duration::from_secs(8),
            "503s still slow: {took:?}"
        );
    }

    proxy.resume();
    let took = until_ok_again(&app, "/health", &alice, "the database answered again").await;
    eprintln!("ready again {took:?} after the database answered");
    let (response, _) = timed_get(&app, "/posts", &alice).await;
    response.assert_status(StatusCode::OK);
}

pub fn tests() -> Vec<Trial> {
    postgres_tests![
        health_answers_within_a_second_while_the_database_hangs,
        while_the_database_is_away_requests_get_quick_503s_and_recover_on_their_own,
        the_first_request_after_the_database_is_back_succeeds,
    ]
}
