//! The bounded password-hashing pool: at most `PASSWORD_HASH_THREADS` hashes
//! at once, at most `PASSWORD_HASH_QUEUE` waiting, each for at most
//! `PASSWORD_HASH_WAIT_SECONDS`; past that, a 503 with `Retry-After` at once.
//! And what a stored hash's cost does: a login rehashes a password stored at
//! another cost than `BCRYPT_COST`, and refuses one far above it unverified.

use std::str::FromStr;
use std::time::Duration;

use actix_web::http::StatusCode;
use diesel::prelude::*;
use futures_util::future::join_all;
use postapi::config::HashPoolSize;
use postapi::schema::users;
use serde_json::json;

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

/// `logins` logins at once into one hashing thread with `queue` places and
/// `max_wait`, hashing at `cost`: the app, and how many logins succeeded,
/// every other answer having been checked to be the busy 503.
async fn logins_at_once(
    backend: Backend,
    cost: u32,
    queue: usize,
    max_wait: Duration,
    logins: usize,
) -> (TestApp, usize) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.bcrypt_cost = cost;
        settings.password_hashing = HashPoolSize {
            threads: 1,
            queue,
            max_wait,
        };
    })
    .await;
    app.sign_up("alice@example.com").await;

    let responses = join_all((0..logins).map(|_| log_in(&app))).await;

    let mut ok = 0;
    for response in &responses {
        if response.status == StatusCode::OK {
            ok += 1;
        } else {
            assert_busy(response, &max_wait.as_secs().to_string());
        }
    }
    (app, ok)
}

async fn logins_past_the_threads_and_the_queue_get_a_503_with_retry_after(backend: Backend) {
    // Tens of milliseconds a hash (cost 10), so the logins overlap; the
    // admitted ones may wait as long as a busy machine needs.
    let (app, ok) = logins_at_once(backend, 10, 1, Duration::from_secs(600), 6).await;

    // One hashing and one waiting are admitted; the rest arrive while both
    // places are taken (each hash takes far longer than six requests do).
    assert!(
        (2..=5).contains(&ok),
        "{ok} logins succeeded of 6, with room for 2 at once"
    );
    // Once the pool is free again, logins succeed.
    assert_eq!(log_in(&app).await.status, StatusCode::OK);
}

async fn a_login_waiting_longer_than_the_wait_bound_gets_a_503(backend: Backend) {
    // Hundreds of milliseconds a hash (cost 13): five in a row take over a
    // second. All five fit in the thread and the queue: only waiting can
    // refuse one.
    let (_app, ok) = logins_at_once(backend, 13, 4, Duration::from_secs(1), 5).await;

    assert!(
        (1..5).contains(&ok),
        "{ok} of 5 logins succeeded: the first must, the last cannot wait long enough"
    );
}

/// A pool with no thread and no queue: any request that needs a hash is
/// answered 503 at once, so a request answered otherwise hashed nothing.
const HASHES_NOTHING: HashPoolSize = HashPoolSize {
    threads: 0,
    queue: 0,
    max_wait: Duration::from_secs(600),
};

async fn log_in_as(app: &TestApp, email: &str, password: &str) -> TestResponse {
    app.post_form("/login", &[("username", email), ("password", password)])
        .await
}

fn stored_hash(app: &TestApp, email: &str) -> String {
    users::table
        .filter(users::email.eq(email))
        .select(users::password_hash)
        .first(&mut app.db())
        .expect("the user's stored hash")
}

fn set_stored_hash(app: &TestApp, email: &str, hash: &str) {
    let changed = diesel::update(users::table.filter(users::email.eq(email)))
        .set(users::password_hash.eq(hash))
        .execute(&mut app.db())
        .expect("set the stored hash");
    assert_eq!(changed, 1, "{email} exists");
}

/// A user written straight into the table, as no sign-up could (a sign-up
/// needs a hash).
fn insert_user(app: &TestApp, email: &str, hash: &str) {
    diesel::insert_into(users::table)
        .values((users::email.eq(email), users::password_hash.eq(hash)))
        .execute(&mut app.db())
        .expect("insert a user");
}

fn cost_of(hash: &str) -> u32 {
    bcrypt::HashParts::from_str(hash)
        .expect("a bcrypt hash")
        .get_cost()
}

/// A well-formed bcrypt hash (of no known password) with `cost` written in.
fn hash_with_cost(cost: u32) -> String {
    let real = bcrypt::hash("some other password", 4).expect("a hash");
    format!("$2b${cost:02}${}", &real[7..])
}

#[track_caller]
fn assert_invalid_credentials(response: &TestResponse) {
    response.assert_error(StatusCode::FORBIDDEN, json!("Invalid Credentials"));
}

async fn a_login_rehashes_a_password_stored_at_another_cost_at_bcrypt_cost(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| settings.bcrypt_cost = 5).await;
    app.sign_up("alice@example.com").await;
    let old = bcrypt::hash(PASSWORD, 4).expect("a hash");
    set_stored_hash(&app, "alice@example.com", &old);

    app.log_in("alice@example.com", PASSWORD).await;

    let new = stored_hash(&app, "alice@example.com");
    assert_eq!(cost_of(&new), 5, "{new}");
    assert!(bcrypt::verify(PASSWORD, &new).expect("a hash bcrypt reads"));
    // The password still works, and a login at the right cost stores nothing new.
    app.log_in("alice@example.com", PASSWORD).await;
    assert_eq!(stored_hash(&app, "alice@example.com"), new);
}

async fn a_login_rehashes_a_password_stored_above_bcrypt_cost_down_to_it(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| settings.bcrypt_cost = 4).await;
    app.sign_up("alice@example.com").await;
    set_stored_hash(
        &app,
        "alice@example.com",
        &bcrypt::hash(PASSWORD, 6).expect("a hash"),
    );

    app.log_in("alice@example.com", PASSWORD).await;

    assert_eq!(cost_of(&stored_hash(&app, "alice@example.com")), 4);
}

async fn a_wrong_password_leaves_a_hash_at_another_cost_as_it_was(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| settings.bcrypt_cost = 5).await;
    app.sign_up("alice@example.com").await;
    let old = bcrypt::hash(PASSWORD, 4).expect("a hash");
    set_stored_hash(&app, "alice@example.com", &old);

    assert_invalid_credentials(&log_in_as(&app, "alice@example.com", "wrong password").await);

    assert_eq!(stored_hash(&app, "alice@example.com"), old);
}

async fn a_stored_cost_far_above_bcrypt_cost_is_refused_at_once_without_hashing(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.bcrypt_cost = 5;
        settings.password_hashing = HASHES_NOTHING;
    })
    .await;
    let tampered_hash = hash_with_cost(31);
    insert_user(&app, "tampered@example.com", &tampered_hash);
    insert_user(&app, "at-the-limit@example.com", &hash_with_cost(7));

    let tampered = log_in_as(&app, "tampered@example.com", PASSWORD).await;
    let at_the_limit = log_in_as(&app, "at-the-limit@example.com", PASSWORD).await;
    let unknown = log_in_as(&app, "nobody@example.com", PASSWORD).await;

    // Cost 31 is 26 above 5: refused before the pool, which refuses every
    // hash. Cost 7 (5 + 2) and an unknown email (the dummy hash) are
    // verified, so they reach the pool and get its 503.
    assert_invalid_credentials(&tampered);
    assert_busy(&at_the_limit, "600");
    assert_busy(&unknown, "600");
    // The row is left for an operator to see to.
    assert_eq!(stored_hash(&app, "tampered@example.com"), tampered_hash);
}

async fn a_malformed_stored_hash_is_a_403_like_a_wrong_password_every_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let bad_hashes = [
        "not a hash".to_owned(),
        String::new(),
        // bcrypt's least cost is 4.
        hash_with_cost(3),
        hash_with_cost(4)[..59].to_owned(),
    ];
    for (n, hash) in bad_hashes.iter().enumerate() {
        insert_user(&app, &format!("broken{n}@example.com"), hash);
    }

    for (n, hash) in bad_hashes.iter().enumerate() {
        let email = format!("broken{n}@example.com");
        // Twice each: the answer does not change, and is never a 500.
        for _ in 0..2 {
            let response = log_in_as(&app, &email, PASSWORD).await;
            assert_invalid_credentials(&response);
        }
        assert_eq!(&stored_hash(&app, &email), hash, "left as it was");
    }
}

async fn a_malformed_stored_hash_is_verified_against_the_dummy_hash_like_an_unknown_email(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.password_hashing = HASHES_NOTHING;
    })
    .await;
    insert_user(&app, "broken@example.com", "not a hash");

    // The dummy verification needs a thread, so this pool refuses it: the
    // answer would take as long as a wrong password's.
    assert_busy(
        &log_in_as(&app, "broken@example.com", PASSWORD).await,
        "600",
    );
}

pub fn tests() -> Vec<Trial> {
    backend_tests![
        logins_past_the_threads_and_the_queue_get_a_503_with_retry_after,
        a_login_waiting_longer_than_the_wait_bound_gets_a_503,
        a_login_rehashes_a_password_stored_at_another_cost_at_bcrypt_cost,
        a_login_rehashes_a_password_stored_above_bcrypt_cost_down_to_it,
        a_wrong_password_leaves_a_hash_at_another_cost_as_it_was,
        a_stored_cost_far_above_bcrypt_cost_is_refused_at_once_without_hashing,
        a_malformed_stored_hash_is_a_403_like_a_wrong_password_every_time,
        a_malformed_stored_hash_is_verified_against_the_dummy_hash_like_an_unknown_email,
    ]
}
