//! Failed-login throttling: per client address and account, per client
//! address, 429 with `Retry-After`, a success resetting the count, and the
//! client address taken from `X-Forwarded-For` only behind a trusted proxy.
//! On PostgreSQL, instances on one database share the counts.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use chrono::TimeDelta;
use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use diesel::{QueryableByName, RunQueryDsl};
use futures_util::future::join_all;
use postapi::clock::Clock;
use postapi::config::{DatabaseUrl, TrustedProxies};
use postapi::db::login_failures;
use serde_json::json;

use crate::helpers::{
    Backend, PASSWORD, TestApp, TestResponse, Trial, backend_tests, postgres_tests,
};
use crate::proxy::{TcpProxy, postgres_address, through_port};

const WRONG: &str = "wrong password!";

async fn log_in(app: &TestApp, email: &str, password: &str) -> TestResponse {
    app.post_form("/login", &[("username", email), ("password", password)])
        .await
}

/// A login through a proxy that says the client is `client`.
async fn log_in_as(
    app: &TestApp,
    forwarded_for: &str,
    email: &str,
    password: &str,
) -> TestResponse {
    app.post_form_with_headers(
        "/login",
        &[("username", email), ("password", password)],
        &[("X-Forwarded-For", forwarded_for)],
    )
    .await
}

#[track_caller]
fn assert_throttled(response: &TestResponse) -> u64 {
    assert_eq!(
        response.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        response.text()
    );
    assert_eq!(
        response.json(),
        json!({ "detail": "Too many failed login attempts; try again later" })
    );
    response
        .header("retry-after")
        .and_then(|value| value.parse().ok())
        .expect("a Retry-After of whole seconds")
}

#[track_caller]
fn assert_refused(response: &TestResponse) {
    assert_eq!(
        response.status,
        StatusCode::FORBIDDEN,
        "{}",
        response.text()
    );
}

#[track_caller]
fn assert_logged_in(response: &TestResponse) {
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert!(response.json()["access_token"].is_string());
}

fn behind_local_proxy(settings: &mut postapi::config::Settings) {
    settings.trusted_proxies = TrustedProxies::parse("127.0.0.1").expect("a proxy list");
}

async fn five_failures_on_an_account_get_429_with_retry_after_until_the_window_passes(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;
    for _ in 0..5 {
        assert_refused(&log_in(&app, "alice@example.com", WRONG).await);
    }

    // Even the right password waits: a guess cannot be told apart beforehand.
    let throttled = log_in(&app, "Alice@Example.com ", PASSWORD).await;
    assert_eq!(assert_throttled(&throttled), 900);

    app.advance_clock(TimeDelta::seconds(600));
    assert_eq!(
        assert_throttled(&log_in(&app, "alice@example.com", WRONG).await),
        300
    );
    app.advance_clock(TimeDelta::seconds(300));
    assert_logged_in(&log_in(&app, "alice@example.com", PASSWORD).await);
}

async fn a_successful_login_resets_the_count_for_that_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;
    for _ in 0..4 {
        assert_refused(&log_in(&app, "alice@example.com", WRONG).await);
    }
    assert_logged_in(&log_in(&app, "alice@example.com", PASSWORD).await);

    for _ in 0..5 {
        assert_refused(&log_in(&app, "alice@example.com", WRONG).await);
    }
    assert_throttled(&log_in(&app, "alice@example.com", WRONG).await);
}

async fn other_accounts_and_other_addresses_are_not_throttled(backend: Backend) {
    let app = TestApp::spawn_with(backend, behind_local_proxy).await;
    app.sign_up("alice@example.com").await;
    app.sign_up("bob@example.com").await;
    for _ in 0..5 {
        assert_refused(&log_in_as(&app, "198.51.100.7", "alice@example.com", WRONG).await);
    }
    assert_throttled(&log_in_as(&app, "198.51.100.7", "alice@example.com", PASSWORD).await);

    // The victim, from elsewhere, is not locked out.
    assert_logged_in(&log_in_as(&app, "203.0.113.5", "alice@example.com", PASSWORD).await);
    // The same address may still use another account.
    assert_logged_in(&log_in_as(&app, "198.51.100.7", "bob@example.com", PASSWORD).await);
}

async fn failures_across_accounts_are_limited_per_address(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        behind_local_proxy(settings);
        settings.login_limits.per_address = 6;
    })
    .await;
    app.sign_up("alice@example.com").await;
    // Unknown accounts count like known ones, so the 429 reveals nothing.
    for n in 0..6 {
        let email = format!("guess{n}@example.com");
        assert_refused(&log_in_as(&app, "198.51.100.7", &email, WRONG).await);
    }

    let throttled = log_in_as(&app, "198.51.100.7", "alice@example.com", PASSWORD).await;
    assert_eq!(assert_throttled(&throttled), 900);
    assert_logged_in(&log_in_as(&app, "198.51.100.8", "alice@example.com", PASSWORD).await);
}

async fn x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;
    for n in 0..5 {
        let spoofed = format!("198.51.100.{n}");
        assert_refused(&log_in_as(&app, &spoofed, "alice@example.com", WRONG).await);
    }

    assert_throttled(&log_in_as(&app, "203.0.113.99", "alice@example.com", WRONG).await);
}

async fn behind_a_trusted_proxy_the_first_untrusted_address_from_the_right_is_the_client(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.trusted_proxies =
            TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").expect("a proxy list");
    })
    .await;
    app.sign_up("alice@example.com").await;
    // What the client itself put in the header (left) changes nothing.
    for n in 0..5 {
        let chain = format!("192.0.2.{n}, 198.51.100.7, 10.1.2.3");
        assert_refused(&log_in_as(&app, &chain, "alice@example.com", WRONG).await);
    }

    assert_throttled(&log_in_as(&app, "198.51.100.7", "alice@example.com", PASSWORD).await);
    // Naming the throttled address on the left does not borrow its count.
    let other_client = "198.51.100.7, 203.0.113.1, 10.9.9.9";
    assert_logged_in(&log_in_as(&app, other_client, "alice@example.com", PASSWORD).await);
}

async fn parallel_guesses_cannot_pass_the_limit_together(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;

    let answers = join_all((0..20).map(|_| log_in(&app, "alice@example.com", WRONG))).await;

    let refused = answers
        .iter()
        .filter(|r| r.status == StatusCode::FORBIDDEN)
        .count();
    let throttled = answers
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((refused, throttled), (5, 15));
}

async fn a_burst_of_right_logins_from_one_address_is_never_throttled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;

    // Four times the per-account limit, all at once: the ones past the limit
    // wait for the verdicts in flight, which clear the count.
    let answers = join_all((0..20).map(|_| log_in(&app, "alice@example.com", PASSWORD))).await;

    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
}

async fn a_throttled_login_costs_no_password_hash(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.bcrypt_cost = 13;
        settings.login_limits.per_account = 1;
    })
    .await;

    let started = Instant::now();
    assert_refused(&log_in(&app, "alice@example.com", WRONG).await);
    let hashed = started.elapsed();
    let started = Instant::now();
    assert_throttled(&log_in(&app, "alice@example.com", WRONG).await);
    let throttled = started.elapsed();

    assert!(
        hashed > Duration::from_millis(100) && throttled < hashed / 3,
        "a verified guess took {hashed:?}, a throttled one {throttled:?}"
    );
}

fn per_account_limit_of_3(settings: &mut postapi::config::Settings) {
    settings.login_limits.per_account = 3;
}

async fn two_instances_on_one_database_count_failures_against_one_limit(backend: Backend) {
    let first = TestApp::spawn_with(backend, per_account_limit_of_3).await;
    let second = first.spawn_beside(per_account_limit_of_3).await;
    first.sign_up("alice@example.com").await;

    assert_refused(&log_in(&first, "alice@example.com", WRONG).await);
    assert_refused(&log_in(&second, "alice@example.com", WRONG).await);
    assert_refused(&log_in(&first, "alice@example.com", WRONG).await);

    // Three failures over two instances: the limit, on both.
    assert_eq!(
        assert_throttled(&log_in(&second, "alice@example.com", PASSWORD).await),
        900
    );
    assert_eq!(
        assert_throttled(&log_in(&first, "alice@example.com", WRONG).await),
        900
    );
    first.advance_clock(TimeDelta::seconds(900));
    assert_logged_in(&log_in(&second, "alice@example.com", PASSWORD).await);
}

async fn a_success_on_one_instance_clears_the_account_for_the_other(backend: Backend) {
    let first = TestApp::spawn_with(backend, per_account_limit_of_3).await;
    let second = first.spawn_beside(per_account_limit_of_3).await;
    first.sign_up("alice@example.com").await;
    for _ in 0..2 {
        assert_refused(&log_in(&first, "alice@example.com", WRONG).await);
    }

    assert_logged_in(&log_in(&second, "alice@example.com", PASSWORD).await);

    // Three more failures fit again: the two before the success are gone.
    for _ in 0..3 {
        assert_refused(&log_in(&first, "alice@example.com", WRONG).await);
    }
    assert_throttled(&log_in(&second, "alice@example.com", WRONG).await);
}

/// How many rows `login_failures` has.
fn shared_rows(app: &TestApp) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        rows: i64,
    }
    let postapi::db::DbConnection::Postgres(mut pg) = app.db() else {
        panic!("login_failures is PostgreSQL's");
    };
    diesel::sql_query("SELECT count(*) AS rows FROM login_failures")
        .get_result::<Count>(&mut pg)
        .expect("count login_failures")
        .rows
}

async fn expired_counts_are_deleted_in_batches_and_a_clean_login_leaves_none(backend: Backend) {
    let app = TestApp::spawn_with(backend, behind_local_proxy).await;
    app.sign_up("alice@example.com").await;
    assert_logged_in(&log_in_as(&app, "198.51.100.1", "alice@example.com", PASSWORD).await);
    assert_eq!(shared_rows(&app), 0, "a first-time success leaves no row");
    for n in 2..5 {
        let client = format!("198.51.100.{n}");
        assert_refused(&log_in_as(&app, &client, "alice@example.com", WRONG).await);
    }
    assert_eq!(shared_rows(&app), 3);
    let delete_expired = |now, batch| {
        let mut conn = app.db();
        login_failures::delete_expired(&mut conn, now, batch).expect("delete expired rows")
    };

    assert_eq!(delete_expired(app.clock.now(), 2), 0, "nothing expired yet");
    let window_later = app.clock.now() + TimeDelta::seconds(900);
    assert_eq!(delete_expired(window_later, 2), 2);
    assert_eq!(delete_expired(window_later, 2), 1);
    assert_eq!(delete_expired(window_later, 2), 0);
    assert_eq!(shared_rows(&app), 0);
}

async fn a_broken_shared_table_means_counting_in_memory_never_a_500(backend: Backend) {
    let app = TestApp::spawn_with(backend, behind_local_proxy).await;
    app.sign_up("alice@example.com").await;
    app.db()
        .batch_execute("DROP TABLE login_failures")
        .expect("drop the shared counts");

    for _ in 0..5 {
        assert_refused(&log_in_as(&app, "198.51.100.7", "alice@example.com", WRONG).await);
    }
    assert_throttled(&log_in_as(&app, "198.51.100.7", "alice@example.com", PASSWORD).await);
    assert_logged_in(&log_in_as(&app, "198.51.100.8", "alice@example.com", PASSWORD).await);
}

async fn a_login_while_the_database_is_away_gets_the_503_and_counts_nothing(backend: Backend) {
    let Backend::Postgres(admin_url) = &backend else {
        panic!("the proxy stands in front of PostgreSQL");
    };
    let mut proxy = TcpProxy::start(postgres_address(admin_url));
    let port = proxy.port();
    let app = TestApp::spawn_with(backend, |settings| {
        if let DatabaseUrl::Postgres(url) = &settings.database_url {
            settings.database_url = DatabaseUrl::Postgres(through_port(url, port));
        }
        settings.pool_timeout = Duration::from_secs(1);
        settings.login_limits.per_account = 1;
    })
    .await;
    app.sign_up("alice@example.com").await;

    proxy.close();
    for _ in 0..3 {
        let response = log_in(&app, "alice@example.com", WRONG).await;
        response.assert_error(
            StatusCode::SERVICE_UNAVAILABLE,
            json!("Service Unavailable: the database cannot be reached"),
        );
        assert_eq!(response.header("retry-after"), Some("1"));
    }
    proxy.reopen();

    // The first answer other than the 503 is the one a first attempt gets.
    let started = Instant::now();
    let response = loop {
        let response = log_in(&app, "alice@example.com", PASSWORD).await;
        if response.status != StatusCode::SERVICE_UNAVAILABLE {
            break response;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still 503 10 s after the database came back"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    };
    assert_logged_in(&response);
}

pub fn tests() -> Vec<Trial> {
    let mut trials = backend_tests![
        five_failures_on_an_account_get_429_with_retry_after_until_the_window_passes,
        a_successful_login_resets_the_count_for_that_account,
        other_accounts_and_other_addresses_are_not_throttled,
        failures_across_accounts_are_limited_per_address,
        x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy,
        behind_a_trusted_proxy_the_first_untrusted_address_from_the_right_is_the_client,
        parallel_guesses_cannot_pass_the_limit_together,
        a_burst_of_right_logins_from_one_address_is_never_throttled,
        a_throttled_login_costs_no_password_hash,
    ];
    trials.extend(postgres_tests![
        two_instances_on_one_database_count_failures_against_one_limit,
        a_success_on_one_instance_clears_the_account_for_the_other,
        expired_counts_are_deleted_in_batches_and_a_clean_login_leaves_none,
        a_broken_shared_table_means_counting_in_memory_never_a_500,
        a_login_while_the_database_is_away_gets_the_503_and_counts_nothing,
    ]);
    trials
}
