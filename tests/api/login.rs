//! `POST /login`: the OAuth2 password form (urlencoded and multipart), JSON,
//! the single 403 for bad credentials, its timing, and that bcrypt work does
//! not stall other requests.

use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Body, PASSWORD, TestApp, TestResponse, Trial, backend_tests, field_required,
};

const BOUNDARY: &str = "----postapiTestBoundary7MA4YWxkTrZu0gW";

/// A multipart/form-data body of text fields, written by hand.
fn multipart_body(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{BOUNDARY}--\r\n"));
    body.into_bytes()
}

async fn post_multipart(app: &TestApp, fields: &[(&str, &str)]) -> TestResponse {
    app.post_raw(
        "/login",
        None,
        &format!("multipart/form-data; boundary={BOUNDARY}"),
        multipart_body(fields),
    )
    .await
}

/// Asserts a 200 with exactly `{access_token, token_type: "bearer"}` and
/// returns the token.
#[track_caller]
fn assert_token(response: &TestResponse) -> String {
    response.assert_status(StatusCode::OK);
    let body = response.json();
    let object = body.as_object().expect("a Token object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["access_token", "token_type"], "{body}");
    assert_eq!(body["token_type"], "bearer");
    let token = body["access_token"]
        .as_str()
        .expect("access_token is a string");
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    token.to_owned()
}

#[track_caller]
fn assert_invalid_credentials(response: &TestResponse) {
    response.assert_error(StatusCode::FORBIDDEN, json!("Invalid Credentials"));
}

/// The token opens the protected routes.
async fn assert_token_works(app: &TestApp, token: &str) {
    let response = app.get("/posts", Some(token)).await;
    response.assert_status(StatusCode::OK);
    assert_eq!(response.json(), json!([]));
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

async fn timed_login(app: &TestApp, username: &str, password: &str) -> (Duration, TestResponse) {
    let started = Instant::now();
    let response = app
        .post_form("/login", &[("username", username), ("password", password)])
        .await;
    (started.elapsed(), response)
}

async fn the_oauth2_password_form_logs_in_with_a_bearer_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;

    let response = app
        .post_form(
            "/login",
            &[("username", "alice@example.com"), ("password", PASSWORD)],
        )
        .await;

    let token = assert_token(&response);
    assert_token_works(&app, &token).await;
}

async fn the_form_as_swagger_sends_it_with_grant_type_and_scope_logs_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;

    let response = app
        .post_form(
            "/login",
            &[
                ("grant_type", "password"),
                ("username", "alice@example.com"),
                ("password", PASSWORD),
                ("scope", ""),
                ("client_id", ""),
                ("client_secret", ""),
            ],
        )
        .await;

    let token = assert_token(&response);
    assert_token_works(&app, &token).await;
}

async fn a_multipart_form_logs_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;

    let response = post_multipart(
        &app,
        &[("username", "alice@example.com"), ("password", PASSWORD)],
    )
    .await;

    let token = assert_token(&response);
    assert_token_works(&app, &token).await;
}

async fn a_multipart_form_with_a_wrong_password_is_a_403(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;

    let response = post_multipart(
        &app,
        &[
            ("username", "alice@example.com"),
            ("password", "wrong password"),
        ],
    )
    .await;

    assert_invalid_credentials(&response);
}

async fn a_multipart_form_without_a_username_is_a_422_at_the_username(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = post_multipart(&app, &[("password", PASSWORD)]).await;

    response.assert_validation_error(&["body", "username"]);
}

async fn json_with_email_and_password_logs_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;

    let response = app
        .post(
            "/login",
            json!({ "email": "alice@example.com", "password": PASSWORD }),
            None,
        )
        .await;

    let token = assert_token(&response);
    assert_token_works(&app, &token).await;
}

async fn json_with_username_and_password_logs_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;

    let response = app
        .post(
            "/login",
            json!({ "username": "alice@example.com", "password": PASSWORD }),
            None,
        )
        .await;

    let token = assert_token(&response);
    assert_token_works(&app, &token).await;
}

async fn login_matches_the_email_regardless_of_case_and_surrounding_spaces(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;

    for username in [
        "ALICE@EXAMPLE.COM",
        "Alice@Example.com",
        "  alice@example.com  ",
        " ALICE@example.COM\t",
    ] {
        let form = app
            .post_form("/login", &[("username", username), ("password", PASSWORD)])
            .await;
        let json = app
            .post(
                "/login",
                json!({ "email": username, "password": PASSWORD }),
                None,
            )
            .await;

        assert_token(&form);
        assert_token(&json);
    }
}

async fn an_account_signed_up_in_mixed_case_logs_in_in_lower_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("  Alice@Example.COM ").await;

    let token = app.log_in("alice@example.com", PASSWORD).await;

    assert_token_works(&app, &token).await;
}

async fn a_wrong_password_is_a_403_invalid_credentials(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;

    let wrong = app
        .post_form(
            "/login",
            &[
                ("username", "alice@example.com"),
                ("password", "wrong password"),
            ],
        )
        .await;
    let case_changed = app
        .post_form(
            "/login",
            &[
                ("username", "alice@example.com"),
                ("password", &PASSWORD.to_uppercase()),
            ],
        )
        .await;
    let json = app
        .post(
            "/login",
            json!({ "email": "alice@example.com", "password": "wrong password" }),
            None,
        )
        .await;

    assert_invalid_credentials(&wrong);
    assert_invalid_credentials(&case_changed);
    assert_invalid_credentials(&json);
}

async fn an_unknown_email_is_the_same_403_invalid_credentials(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;

    let form = app
        .post_form(
            "/login",
            &[("username", "nobody@example.com"), ("password", PASSWORD)],
        )
        .await;
    let json = app
        .post(
            "/login",
            json!({ "email": "nobody@example.com", "password": PASSWORD }),
            None,
        )
        .await;
    let not_an_email = app
        .post_form(
            "/login",
            &[("username", "not an email"), ("password", PASSWORD)],
        )
        .await;

    assert_invalid_credentials(&form);
    assert_invalid_credentials(&json);
    assert_invalid_credentials(&not_an_email);
    assert_eq!(form.body, json.body);
}

async fn an_empty_json_password_or_an_over_long_one_is_a_403_not_a_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;

    let empty = app
        .post(
            "/login",
            json!({ "email": "alice@example.com", "password": "" }),
            None,
        )
        .await;
    let long = "x".repeat(200);
    let over_long = app
        .post_form(
            "/login",
            &[("username", "alice@example.com"), ("password", &long)],
        )
        .await;
    let unknown_over_long = app
        .post_form(
            "/login",
            &[("username", "nobody@example.com"), ("password", &long)],
        )
        .await;

    assert_invalid_credentials(&empty);
    assert_invalid_credentials(&over_long);
    assert_invalid_credentials(&unknown_over_long);
}

async fn empty_form_fields_count_as_missing_as_in_fastapi(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;

    let response = app
        .post_form("/login", &[("username", ""), ("password", "")])
        .await;

    response.assert_validation_error(&["body", "username"]);
    response.assert_validation_error(&["body", "password"]);
}

async fn an_email_with_a_nul_character_is_invalid_credentials_not_a_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;

    let response = app
        .post_form(
            "/login",
            &[("username", "alice\0@example.com"), ("password", PASSWORD)],
        )
        .await;

    assert_invalid_credentials(&response);
}

async fn a_multipart_body_over_one_mebibyte_is_a_413(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let boundary = "postapi-boundary";
    let filler: String = (0..60_000)
        .map(|n| {
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"f{n}\"\r\n\r\n\r\n")
        })
        .collect();
    let body = format!(
        "{filler}--{boundary}\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice@example.com\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n{PASSWORD}\r\n--{boundary}--\r\n"
    );
    assert!(body.len() > 1024 * 1024);

    let response = app
        .post_raw(
            "/login",
            None,
            &format!("multipart/form-data; boundary={boundary}"),
            body,
        )
        .await;

    response.assert_status(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.get("/health", None).await.status, StatusCode::OK);
}

async fn a_form_without_a_username_is_a_422_at_the_username(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app.post_form("/login", &[("password", PASSWORD)]).await;

    response.assert_validation_error(&["body", "username"]);
    assert_eq!(response.detail(), json!([field_required("username")]));
}

async fn a_form_without_a_password_is_a_422_at_the_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app
        .post_form("/login", &[("username", "alice@example.com")])
        .await;

    response.assert_validation_error(&["body", "password"]);
    assert_eq!(response.detail(), json!([field_required("password")]));
}

async fn an_empty_form_is_a_422_at_both_fields(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app.post_form("/login", &[]).await;

    response.assert_validation_error(&["body", "username"]);
    response.assert_validation_error(&["body", "password"]);
}

async fn no_body_or_a_body_that_is_neither_form_nor_json_lists_both_fields_as_missing(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let both_missing = json!([field_required("username"), field_required("password")]);

    let no_body = app.request(Method::POST, "/login", None, Body::None).await;
    let text = app
        .post_raw(
            "/login",
            None,
            "text/plain",
            "username=alice@example.com&password=x",
        )
        .await;

    for response in [no_body, text] {
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(response.detail(), both_missing);
    }
}

async fn json_without_a_password_is_a_422_at_the_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let by_email = app
        .post("/login", json!({ "email": "alice@example.com" }), None)
        .await;
    let by_username = app
        .post("/login", json!({ "username": "alice@example.com" }), None)
        .await;

    by_email.assert_validation_error(&["body", "password"]);
    by_username.assert_validation_error(&["body", "password"]);
}

async fn json_without_an_email_or_username_is_a_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app
        .post("/login", json!({ "password": PASSWORD }), None)
        .await;

    response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    let errors = response.detail();
    let locs: Vec<&Value> = errors
        .as_array()
        .expect("a list of errors")
        .iter()
        .map(|e| &e["loc"])
        .collect();
    assert!(
        locs.contains(&&json!(["body", "email"])) || locs.contains(&&json!(["body", "username"])),
        "{errors}"
    );
}

async fn json_with_a_non_string_password_is_a_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app
        .post(
            "/login",
            json!({ "email": "alice@example.com", "password": 12345678 }),
            None,
        )
        .await;

    response.assert_validation_error(&["body", "password"]);
}

async fn unknown_email_and_wrong_password_take_about_the_same_time(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.bcrypt_cost = 10;
        // Eight failures on one account: more than throttling allows by default.
        settings.login_limits.per_account = 100;
    })
    .await;
    app.sign_up("alice@example.com").await;
    // Warm the connection and the pool up before measuring.
    timed_login(&app, "alice@example.com", "wrong password").await;

    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    for _ in 0..7 {
        let (elapsed, response) = timed_login(&app, "nobody@example.com", PASSWORD).await;
        assert_invalid_credentials(&response);
        unknown.push(elapsed);
        let (elapsed, response) = timed_login(&app, "alice@example.com", "wrong password").await;
        assert_invalid_credentials(&response);
        wrong.push(elapsed);
    }

    let (unknown, wrong) = (median(unknown), median(wrong));
    let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
    eprintln!(
        "login timing (bcrypt cost 10): unknown email median {unknown:?}, wrong password median {wrong:?}, ratio {ratio:.2}"
    );
    // Both must include a bcrypt verification, which at cost 10 takes tens of ms.
    assert!(
        unknown > Duration::from_millis(8),
        "an unknown email is verified against a dummy hash: {unknown:?}"
    );
    assert!(
        wrong > Duration::from_millis(8),
        "a wrong password is verified: {wrong:?}"
    );
    assert!(
        (0.5..2.0).contains(&ratio),
        "unknown {unknown:?} vs wrong {wrong:?}: ratio {ratio:.2}"
    );
}

async fn a_burst_of_logins_does_not_stall_other_requests(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.workers = Some(1);
        settings.bcrypt_cost = 12;
    })
    .await;
    app.sign_up("alice@example.com").await;
    let started = Instant::now();

    let logins = join_all((0..4).map(|_| async {
        let response = app
            .post_form(
                "/login",
                &[("username", "alice@example.com"), ("password", PASSWORD)],
            )
            .await;
        (response, Instant::now())
    }));
    let health = async {
        let response = app.get("/health", None).await;
        (response, Instant::now())
    };
    let (logins, (health, health_done)) = futures_util::future::join(logins, health).await;

    health.assert_status(StatusCode::OK);
    for (response, _) in &logins {
        assert_token(response);
    }
    let first_login_done = logins
        .iter()
        .map(|(_, done)| *done)
        .min()
        .expect("four logins");
    eprintln!(
        "burst (bcrypt cost 12, 1 worker): /health after {:?}, first login after {:?}, last login after {:?}",
        health_done - started,
        first_login_done - started,
        logins
            .iter()
            .map(|(_, done)| *done)
            .max()
            .expect("four logins")
            - started,
    );
    assert!(
        health_done < first_login_done,
        "/health ({:?}) finished before the first login ({:?})",
        health_done - started,
        first_login_done - started
    );
}

pub fn tests() -> Vec<Trial> {
    backend_tests![
        the_oauth2_password_form_logs_in_with_a_bearer_token,
        the_form_as_swagger_sends_it_with_grant_type_and_scope_logs_in,
        a_multipart_form_logs_in,
        a_multipart_form_with_a_wrong_password_is_a_403,
        a_multipart_form_without_a_username_is_a_422_at_the_username,
        json_with_email_and_password_logs_in,
        json_with_username_and_password_logs_in,
        login_matches_the_email_regardless_of_case_and_surrounding_spaces,
        an_account_signed_up_in_mixed_case_logs_in_in_lower_case,
        a_wrong_password_is_a_403_invalid_credentials,
        an_unknown_email_is_the_same_403_invalid_credentials,
        an_empty_json_password_or_an_over_long_one_is_a_403_not_a_500,
        empty_form_fields_count_as_missing_as_in_fastapi,
        an_email_with_a_nul_character_is_invalid_credentials_not_a_500,
        a_multipart_body_over_one_mebibyte_is_a_413,
        a_form_without_a_username_is_a_422_at_the_username,
        a_form_without_a_password_is_a_422_at_the_password,
        an_empty_form_is_a_422_at_both_fields,
        no_body_or_a_body_that_is_neither_form_nor_json_lists_both_fields_as_missing,
        json_without_a_password_is_a_422_at_the_password,
        json_without_an_email_or_username_is_a_422,
        json_with_a_non_string_password_is_a_422,
        unknown_email_and_wrong_password_take_about_the_same_time,
        a_burst_of_logins_does_not_stall_other_requests,
    ]
}
