//! `POST /login`: the OAuth2 password form (urlencoded and multipart), JSON,
//! the single 403 for bad credentials, its timing, and that bcrypt work does
//! not stall other requests.

use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{
    ALICE_RETYPED, Backend, Body, PASSWORD, TestApp, TestResponse, Trial, backend_tests,
    field_required,
};

const BOUNDARY: &str = "----postapiTestBoundary7MA4YWxkTrZu0gW";
const ALICE: &str = "alice@example.com";

/// A urlencoded form of text fields.
fn form(fields: &[(&str, &str)]) -> Body {
    let form = serde_urlencoded::to_string(fields).expect("form encoding");
    Body::raw("application/x-www-form-urlencoded", form)
}

/// A multipart/form-data body of text fields, written by hand.
fn multipart(fields: &[(&str, &str)]) -> Body {
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{BOUNDARY}--\r\n"));
    Body::raw(&format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

async fn post_login(app: &TestApp, body: Body) -> TestResponse {
    app.request(Method::POST, "/login", None, body).await
}

/// The ways a client sends its credentials to `/login`.
#[derive(Clone, Copy, Debug)]
enum Login {
    /// The OAuth2 password form, urlencoded: `username` and `password`.
    Form,
    /// The form as Swagger UI sends it: with `grant_type`, `scope` and the
    /// client fields, empty.
    SwaggerForm,
    /// The form as multipart/form-data.
    Multipart,
    /// JSON `{email, password}`.
    JsonEmail,
    /// JSON `{username, password}`.
    JsonUsername,
}

impl Login {
    fn body(self, username: &str, password: &str) -> Body {
        let fields = [("username", username), ("password", password)];
        match self {
            Self::Form => form(&fields),
            Self::SwaggerForm => form(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
                ("scope", ""),
                ("client_id", ""),
                ("client_secret", ""),
            ]),
            Self::Multipart => multipart(&fields),
            Self::JsonEmail => Body::Json(json!({ "email": username, "password": password })),
            Self::JsonUsername => Body::Json(json!({ "username": username, "password": password })),
        }
    }

    async fn send(self, app: &TestApp, username: &str, password: &str) -> TestResponse {
        post_login(app, self.body(username, password)).await
    }
}

/// Asserts a 200 with exactly `{access_token, token_type: "bearer"}` and
/// returns the token.
#[track_caller]
fn assert_token(response: &TestResponse) -> String {
    assert_token_for("the login", response)
}

/// [`assert_token`] for the answer to `what`, named in a failure.
#[track_caller]
fn assert_token_for(what: impl std::fmt::Display, response: &TestResponse) -> String {
    response.assert_status_for(&what, StatusCode::OK);
    let body = response.json();
    let object = body.as_object().expect("a Token object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["access_token", "expires_in", "refresh_token", "token_type"],
        "{what}: {body}"
    );
    assert_eq!(body["token_type"], "bearer", "{what}");
    let token = body["access_token"]
        .as_str()
        .expect("access_token is a string");
    assert_eq!(token.split('.').count(), 3, "{what}: a JWT: {token}");
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

/// Alice signs up and logs in through `login`; the token opens the API.
async fn alice_logs_in_through(backend: Backend, login: Login) {
    let app = TestApp::spawn(backend).await;
    app.sign_up(ALICE).await;

    let response = login.send(&app, ALICE, PASSWORD).await;

    let token = assert_token_for(format!("{login:?}"), &response);
    assert_token_works(&app, &token).await;
}

/// Alice signs up; each `(login, username, password)` is then the one 403
/// for bad credentials. Returns the answers, in order.
async fn each_is_invalid_credentials(
    backend: Backend,
    cases: &[(Login, &str, &str)],
) -> Vec<TestResponse> {
    let app = TestApp::spawn(backend).await;
    app.sign_up(ALICE).await;
    let mut responses = Vec::new();
    for &(login, username, password) in cases {
        let response = login.send(&app, username, password).await;

        response.assert_error_for(
            format!("{login:?} as {username:?} with {password:?}"),
            StatusCode::FORBIDDEN,
            json!("Invalid Credentials"),
        );
        responses.push(response);
    }
    responses
}

/// `POST /login` with `body`; asserts a 422 with an error at each of the
/// body's `fields`.
async fn assert_422_at(app: &TestApp, body: Body, fields: &[&str]) -> TestResponse {
    let response = post_login(app, body).await;
    for field in fields {
        response.assert_validation_error(&["body", field]);
    }
    response
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
    alice_logs_in_through(backend, Login::Form).await;
}

async fn the_form_as_swagger_sends_it_with_grant_type_and_scope_logs_in(backend: Backend) {
    alice_logs_in_through(backend, Login::SwaggerForm).await;
}

async fn a_multipart_form_logs_in(backend: Backend) {
    alice_logs_in_through(backend, Login::Multipart).await;
}

async fn a_multipart_form_with_a_wrong_password_is_a_403(backend: Backend) {
    each_is_invalid_credentials(backend, &[(Login::Multipart, ALICE, "wrong password")]).await;
}

async fn a_multipart_form_without_a_username_is_a_422_at_the_username(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    assert_422_at(&app, multipart(&[("password", PASSWORD)]), &["username"]).await;
}

async fn json_with_email_and_password_logs_in(backend: Backend) {
    alice_logs_in_through(backend, Login::JsonEmail).await;
}

async fn json_with_username_and_password_logs_in(backend: Backend) {
    alice_logs_in_through(backend, Login::JsonUsername).await;
}

async fn login_matches_the_email_regardless_of_case_and_surrounding_spaces(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up(ALICE).await;

    for username in ALICE_RETYPED {
        for login in [Login::Form, Login::JsonEmail] {
            let response = login.send(&app, username, PASSWORD).await;

            assert_token_for(format!("{login:?} as {username:?}"), &response);
        }
    }
}

async fn an_account_signed_up_in_mixed_case_logs_in_in_lower_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("  Alice@Example.COM ").await;

    let token = app.log_in(ALICE, PASSWORD).await;

    assert_token_works(&app, &token).await;
}

async fn a_wrong_password_is_a_403_invalid_credentials(backend: Backend) {
    let case_changed = PASSWORD.to_uppercase();

    each_is_invalid_credentials(
        backend,
        &[
            (Login::Form, ALICE, "wrong password"),
            (Login::Form, ALICE, &case_changed),
            (Login::JsonEmail, ALICE, "wrong password"),
        ],
    )
    .await;
}

async fn an_unknown_email_is_the_same_403_invalid_credentials(backend: Backend) {
    let responses = each_is_invalid_credentials(
        backend,
        &[
            (Login::Form, "nobody@example.com", PASSWORD),
            (Login::JsonEmail, "nobody@example.com", PASSWORD),
            (Login::Form, "not an email", PASSWORD),
        ],
    )
    .await;

    assert_eq!(responses[0].body, responses[1].body, "form and JSON");
}

async fn an_empty_json_password_or_an_over_long_one_is_a_403_not_a_500(backend: Backend) {
    let long = "x".repeat(200);

    each_is_invalid_credentials(
        backend,
        &[
            (Login::JsonEmail, ALICE, ""),
            (Login::Form, ALICE, &long),
            (Login::Form, "nobody@example.com", &long),
        ],
    )
    .await;
}

async fn empty_form_fields_count_as_missing_as_in_fastapi(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up(ALICE).await;

    let body = form(&[("username", ""), ("password", "")]);

    assert_422_at(&app, body, &["username", "password"]).await;
}

async fn an_email_with_a_nul_character_is_invalid_credentials_not_a_500(backend: Backend) {
    each_is_invalid_credentials(backend, &[(Login::Form, "alice\0@example.com", PASSWORD)]).await;
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

    let response = assert_422_at(&app, form(&[("password", PASSWORD)]), &["username"]).await;

    assert_eq!(response.detail(), json!([field_required("username")]));
}

async fn a_form_without_a_password_is_a_422_at_the_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = assert_422_at(&app, form(&[("username", ALICE)]), &["password"]).await;

    assert_eq!(response.detail(), json!([field_required("password")]));
}

async fn an_empty_form_is_a_422_at_both_fields(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    assert_422_at(&app, form(&[]), &["username", "password"]).await;
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

    for body in [json!({ "email": ALICE }), json!({ "username": ALICE })] {
        let response = post_login(&app, Body::Json(body.clone())).await;

        response.assert_validation_error_for(&body, &["body", "password"]);
    }
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
    let body = json!({ "email": ALICE, "password": 12345678 });

    assert_422_at(&app, Body::Json(body), &["password"]).await;
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
