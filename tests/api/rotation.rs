//! Rotating `SECRET_KEY`: keys in `SECRET_KEY_PREVIOUS` still verify the
//! tokens they signed until those expire, but never sign new ones.

use actix_web::http::StatusCode;
use chrono::TimeDelta;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use postapi::clock::Clock;
use postapi::config::SecretKey;
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TEST_SECRET, TestApp, Trial, backend_tests};

const OLD_KEY: &str = "the-key-we-are-rotating-out-0123456789";
const OLDER_KEY: &str = "an-even-older-key-still-honoured-987654";
const UNKNOWN_KEY: &str = "a-key-this-server-has-never-been-given-42";

async fn spawn_rotating(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |settings| {
        settings.previous_secret_keys = vec![SecretKey::new(OLDER_KEY), SecretKey::new(OLD_KEY)];
    })
    .await
}

/// A token for `user_id`, signed with `key`, expiring a minute from the
/// server's now.
fn mint_for_a_minute(app: &TestApp, key: &str, user_id: i64) -> String {
    let claims = json!({ "user_id": user_id, "exp": app.clock.now().timestamp() + 60 });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key.as_bytes()).expect("an HMAC key"),
    )
    .expect("a signed token")
}

fn verifies_with(token: &str, key: &str) -> bool {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(key.as_bytes()).expect("an HMAC key"),
        &validation,
    )
    .is_ok()
}

async fn a_token_signed_with_a_previous_key_works_until_it_expires(backend: Backend) {
    let app = spawn_rotating(backend).await;
    let user = app.user("rotated@example.com").await;
    let old = mint_for_a_minute(&app, OLD_KEY, user.id);
    let older = mint_for_a_minute(&app, OLDER_KEY, user.id);

    for token in [&old, &older] {
        let response = app.get("/posts", Some(token)).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    }

    app.advance_clock(TimeDelta::seconds(61));
    for token in [&old, &older] {
        app.get("/posts", Some(token)).await.assert_unauthorized();
    }
}

async fn a_token_signed_with_a_key_in_neither_setting_is_a_401(backend: Backend) {
    let app = spawn_rotating(backend).await;
    let user = app.user("stranger@example.com").await;

    let token = mint_for_a_minute(&app, UNKNOWN_KEY, user.id);

    app.get("/posts", Some(&token)).await.assert_unauthorized();
}

async fn a_previous_key_is_refused_once_it_is_dropped_from_the_setting(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("dropped@example.com").await;

    let token = mint_for_a_minute(&app, OLD_KEY, user.id);

    app.get("/posts", Some(&token)).await.assert_unauthorized();
}

async fn new_tokens_are_signed_with_the_current_key_only(backend: Backend) {
    let app = spawn_rotating(backend).await;
    app.sign_up("fresh@example.com").await;

    let token = app.log_in("fresh@example.com", PASSWORD).await;

    assert!(verifies_with(&token, TEST_SECRET));
    assert!(!verifies_with(&token, OLD_KEY));
    assert!(!verifies_with(&token, OLDER_KEY));
    let response = app.get("/posts", Some(&token)).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
}

pub fn tests() -> Vec<Trial> {
    backend_tests![
        a_token_signed_with_a_previous_key_works_until_it_expires,
        a_token_signed_with_a_key_in_neither_setting_is_a_401,
        a_previous_key_is_refused_once_it_is_dropped_from_the_setting,
        new_tokens_are_signed_with_the_current_key_only,
    ]
}
