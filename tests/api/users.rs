//! `POST /users` (sign up) and `GET /users/{id}`: the User shapes (with the
//! email about the caller's own account, without it about anyone else), email
//! normalisation and uniqueness, the password's limits (8 characters, 72 bytes), validation.

use actix_web::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{
    ALICE_RETYPED, Backend, PASSWORD, TestApp, TestResponse, TestUser, Trial, backend_tests,
    field_required,
};

/// Asserts `user` is exactly `{id, email, created_at}` with a UTC RFC 3339
/// timestamp of about now.
#[track_caller]
fn assert_user_shape(user: &Value, email: &str) {
    let object = user.as_object().expect("a User object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["created_at", "email", "id"], "{user}");
    assert!(user["id"].as_i64().is_some_and(|id| id > 0), "{user}");
    assert_eq!(user["email"], email);
    let created_at = user["created_at"].as_str().expect("created_at is a string");
    assert!(created_at.ends_with("+00:00"), "{created_at}");
    let parsed = DateTime::parse_from_rfc3339(created_at)
        .unwrap_or_else(|e| panic!("created_at {created_at:?} is not RFC 3339: {e}"));
    let age = Utc::now().signed_duration_since(parsed);
    assert!(
        age > TimeDelta::seconds(-60) && age < TimeDelta::seconds(60),
        "created_at {created_at} is about now"
    );
}

/// `user`, an own-account answer, as anyone else is shown them: `{id, created_at}`.
fn without_email(user: &Value) -> Value {
    json!({ "id": user["id"], "created_at": user["created_at"] })
}

/// Asserts that exactly one answer is a 201 and every other one a 409.
#[track_caller]
fn assert_one_created_rest_conflict(responses: &[TestResponse]) {
    let mut created = 0;
    for response in responses {
        match response.status {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => assert!(response.detail().is_string(), "{}", response.text()),
            other => panic!("neither 201 nor 409 but {other}: {}", response.text()),
        }
    }
    assert_eq!(created, 1, "exactly one sign-up wins");
}

/// Asserts alice may sign up with `password` (201) and then log in with it.
async fn assert_signs_up_and_logs_in_with(app: &TestApp, password: &str) {
    let response = app.try_sign_up("alice@example.com", password).await;

    response.assert_status(StatusCode::CREATED);
    app.log_in("alice@example.com", password).await;
}

/// Asserts alice may not sign up with `password`: a 422 at the password.
async fn assert_password_refused(app: &TestApp, password: &str) -> TestResponse {
    let response = app.try_sign_up("alice@example.com", password).await;

    let size = (password.chars().count(), password.len());
    response.assert_validation_error_for(
        format!("{} characters, {} bytes", size.0, size.1),
        &["body", "password"],
    );
    response
}

/// Asserts that nothing was stored for alice: her address is still free.
async fn assert_alice_still_free(app: &TestApp, password: &str) {
    let response = app.try_sign_up("alice@example.com", password).await;

    response.assert_status_for("the address is still free", StatusCode::CREATED);
}

/// Asserts the 404 `GET /users/{id}` gives for `id`, which no user has.
#[track_caller]
fn assert_no_user(response: &TestResponse, id: i64) {
    response.assert_error_for(
        format!("user {id}"),
        StatusCode::NOT_FOUND,
        json!(format!("User with id: {id} does not exist")),
    );
}

async fn signing_up_answers_201_with_exactly_id_email_and_created_at(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app.try_sign_up("alice@example.com", PASSWORD).await;

    response.assert_status(StatusCode::CREATED);
    assert_user_shape(&response.json(), "alice@example.com");
}

async fn the_created_user_never_shows_a_password_or_hash(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app.try_sign_up("alice@example.com", PASSWORD).await;

    let text = response.text();
    assert_eq!(response.status, StatusCode::CREATED, "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!text.contains("$2"), "no bcrypt hash: {text}");
    let lowered = text.to_lowercase();
    assert!(
        !lowered.contains("password") && !lowered.contains("hash"),
        "{text}"
    );
}

async fn the_email_is_stored_trimmed_and_lower_cased(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let created = app
        .try_sign_up("  Alice.Smith@Example.COM \t", PASSWORD)
        .await;

    // The answer is the row as the INSERT returned it.
    created.assert_status(StatusCode::CREATED);
    assert_user_shape(&created.json(), "alice.smith@example.com");
}

async fn a_taken_email_is_a_409(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;

    let response = app
        .try_sign_up("alice@example.com", "another password")
        .await;

    response.assert_status(StatusCode::CONFLICT);
    assert!(response.detail().is_string(), "{}", response.text());
}

async fn an_email_differing_only_in_case_or_spaces_is_taken_too(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;

    for variant in ALICE_RETYPED {
        let response = app.try_sign_up(variant, "another password").await;

        response.assert_status_for(variant, StatusCode::CONFLICT);
        assert!(response.detail().is_string(), "{}", response.text());
    }
    // The first account keeps its password.
    app.log_in("alice@example.com", PASSWORD).await;
}

async fn racing_identical_sign_ups_give_one_201_and_409s_never_a_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let responses = join_all((0..8).map(|_| app.try_sign_up("racer@example.com", PASSWORD))).await;

    assert_one_created_rest_conflict(&responses);
    app.log_in("racer@example.com", PASSWORD).await;
}

async fn racing_sign_ups_differing_only_in_case_give_one_201_and_409s(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let variants = [
        "racer@example.com",
        "Racer@example.com",
        "RACER@EXAMPLE.COM",
        "racer@Example.Com",
        " racer@example.com",
        "rAcEr@example.com",
        "racer@EXAMPLE.com ",
        "RaCeR@eXaMpLe.CoM",
    ];

    let responses = join_all(
        variants
            .iter()
            .map(|email| app.try_sign_up(email, PASSWORD)),
    )
    .await;

    assert_one_created_rest_conflict(&responses);
    let winner = responses
        .iter()
        .find(|r| r.status == StatusCode::CREATED)
        .expect("a winner");
    assert_eq!(winner.json()["email"], "racer@example.com");
}

async fn invalid_emails_are_a_422_at_the_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    for email in [
        "",
        "   ",
        "alice",
        "alice@",
        "@example.com",
        "alice@example",
        "alice@@example.com",
        "a b@example.com",
        "alice@example.",
    ] {
        let response = app.try_sign_up(email, PASSWORD).await;

        response.assert_validation_error_for(format!("{email:?}"), &["body", "email"]);
    }
}

async fn a_password_of_seven_bytes_is_a_422_at_the_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    assert_password_refused(&app, "1234567").await;
    assert_alice_still_free(&app, "12345678").await;
}

async fn a_password_of_eight_bytes_is_accepted_and_works(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    assert_signs_up_and_logs_in_with(&app, "12345678").await;
}

async fn a_password_needs_eight_characters_so_four_two_byte_chars_are_a_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let short = "é".repeat(4);
    assert_eq!((short.chars().count(), short.len()), (4, 8));

    let response = assert_password_refused(&app, &short).await;

    assert_eq!(
        response.detail()[0]["msg"],
        "ensure this value has at least 8 characters"
    );
    assert_signs_up_and_logs_in_with(&app, &"é".repeat(8)).await;
}

async fn a_password_of_72_bytes_is_accepted_and_logs_in_but_not_truncated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let password = "p".repeat(72);

    let response = app.try_sign_up("alice@example.com", &password).await;
    let longer = app
        .try_log_in("alice@example.com", &format!("{password}x"))
        .await;

    response.assert_status(StatusCode::CREATED);
    app.log_in("alice@example.com", &password).await;
    // 73 bytes starting with the right 72 is not the right password.
    longer.assert_error(StatusCode::FORBIDDEN, json!("Invalid Credentials"));
}

async fn a_password_of_36_two_byte_chars_is_72_bytes_and_accepted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let password = "é".repeat(36);
    assert_eq!(password.len(), 72);

    assert_signs_up_and_logs_in_with(&app, &password).await;
}

async fn a_password_of_73_bytes_is_a_422_never_truncated(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    assert_password_refused(&app, &"p".repeat(73)).await;
    assert_alice_still_free(&app, PASSWORD).await;
}

async fn a_password_of_37_two_byte_chars_is_74_bytes_and_a_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let password = "é".repeat(37);
    assert_eq!((password.chars().count(), password.len()), (37, 74));

    assert_password_refused(&app, &password).await;
}

async fn missing_fields_are_a_422_at_each_missing_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let neither = app.post("/users", json!({}), None).await;
    let no_email = app
        .post("/users", json!({ "password": PASSWORD }), None)
        .await;
    let no_password = app
        .post("/users", json!({ "email": "alice@example.com" }), None)
        .await;

    neither.assert_validation_error(&["body", "email"]);
    neither.assert_validation_error(&["body", "password"]);
    assert_eq!(
        neither.detail().as_array().map(Vec::len),
        Some(2),
        "{}",
        neither.text()
    );
    no_email.assert_validation_error(&["body", "email"]);
    assert_eq!(no_email.detail()[0]["type"], "value_error.missing");
    no_password.assert_validation_error(&["body", "password"]);
    assert_eq!(no_password.detail(), json!([field_required("password")]));
}

async fn fields_of_the_wrong_type_are_a_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    for (body, loc) in [
        (json!({ "email": 42, "password": PASSWORD }), "email"),
        (
            json!({ "email": ["alice@example.com"], "password": PASSWORD }),
            "email",
        ),
        (json!({ "email": null, "password": PASSWORD }), "email"),
        (
            json!({ "email": "alice@example.com", "password": true }),
            "password",
        ),
        (
            json!({ "email": "alice@example.com", "password": { "text": PASSWORD } }),
            "password",
        ),
        (
            json!({ "email": "alice@example.com", "password": null }),
            "password",
        ),
    ] {
        let response = app.post("/users", body.clone(), None).await;

        response.assert_validation_error_for(&body, &["body", loc]);
    }
}

async fn a_form_body_is_not_a_sign_up_and_is_a_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app
        .post_form(
            "/users",
            &[("email", "alice@example.com"), ("password", PASSWORD)],
        )
        .await;

    response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    response.assert_validation_error(&["body"]);
}

async fn signing_up_at_users_with_a_trailing_slash_works_directly(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app
        .post(
            "/users/",
            json!({ "email": "alice@example.com", "password": PASSWORD }),
            None,
        )
        .await;

    response.assert_status(StatusCode::CREATED);
    assert_user_shape(&response.json(), "alice@example.com");
}

async fn getting_a_user_answers_200_with_their_id_and_created_at_and_no_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app.sign_up("alice@example.com").await;
    app.sign_up("bob@example.com").await;
    let id = created["id"].as_i64().expect("an id");

    let response = app.get(&format!("/users/{id}"), None).await;

    response.assert_status(StatusCode::OK);
    assert_eq!(response.json(), without_email(&created));
}

async fn getting_a_user_needs_no_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app.sign_up("alice@example.com").await;

    let response = app
        .get_with_headers(
            &format!("/users/{}", created["id"]),
            &[("Authorization", "Bearer garbage")],
        )
        .await;

    response.assert_status(StatusCode::OK);
    assert_eq!(response.json(), without_email(&created));
}

/// The ids of the users an answer shows: each post's owner in a list, a
/// post's owner, or the user answered.
fn shown_users(answer: &Value) -> Vec<i64> {
    let posts = match answer.as_array() {
        Some(posts) => posts.iter().collect(),
        None => vec![answer],
    };
    posts
        .into_iter()
        .map(|shown| {
            shown.get("owner").unwrap_or(shown)["id"]
                .as_i64()
                .expect("an id")
        })
        .collect()
}

async fn another_accounts_email_appears_in_no_answer_of_the_flat_shape(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let signed_up = app.sign_up("alice@example.com").await;
    let alice = TestUser {
        id: signed_up["id"].as_i64().expect("an id"),
        email: "alice@example.com".into(),
        token: app.log_in("alice@example.com", PASSWORD).await,
    };
    let bob = app.user("bob@example.com").await;
    let first = app.create_post(&bob, "bob's first").await;
    let second = app
        .send_post(&bob, json!({ "title": "bob's second", "content": "c" }))
        .await;
    let id = second.json()["id"].as_i64().expect("an id");
    let edited = json!({ "title": "bob's second, edited", "content": "c" });
    let updated = app.send_put(&bob, id, edited).await;

    // Each statement that reads posts: the first page, a later one, a search.
    let listed = app.get("/posts", alice.token()).await;
    let later = app.get("/posts?skip=1", alice.token()).await;
    let found = app.get("/posts?search=first", alice.token()).await;
    let shown = app.get(&format!("/posts/{id}"), alice.token()).await;
    let user = app.get(&format!("/users/{}", bob.id), None).await;
    let user_to_alice = app.get(&format!("/users/{}", bob.id), alice.token()).await;

    // Her own account's answer has her address.
    assert_eq!(signed_up["email"], "alice@example.com");
    let answers = [
        ("GET /posts", &listed, 2),
        ("GET /posts?skip=1", &later, 1),
        ("GET /posts?search=first", &found, 1),
        ("GET /posts/{id}", &shown, 1),
        ("GET /users/{bob}", &user, 1),
        ("GET /users/{bob} with alice's token", &user_to_alice, 1),
        // Nor does bob's own post show it: an owner is shown as to anyone.
        ("bob's POST /posts", &second, 1),
        ("bob's PUT /posts/{id}", &updated, 1),
    ];
    for (what, response, bob_shown) in answers {
        let text = response.text();
        assert!(response.status.is_success(), "{what}: {text}");
        assert!(!text.to_lowercase().contains(&bob.email), "{what}: {text}");
        assert!(
            !text.contains('@') && !text.contains("email"),
            "{what}: {text}"
        );
        // Not vacuous: bob is shown, as each post's owner or as the user.
        assert_eq!(
            shown_users(&response.json()),
            vec![bob.id; bob_shown],
            "{what}: {text}"
        );
    }
    assert_eq!(found.json()[0]["id"], first["id"]);
}

async fn an_id_beyond_the_32_bit_range_is_a_404_not_a_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app.get("/users/99999999999", None).await;

    assert_no_user(&response, 99999999999);
}

async fn a_nul_character_in_the_email_is_a_422_not_a_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app.try_sign_up("a\u{0}b@example.com", PASSWORD).await;

    response.assert_validation_error(&["body", "email"]);
}

async fn an_unknown_user_id_is_a_404_naming_the_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app.sign_up("alice@example.com").await;
    let missing = created["id"].as_i64().expect("an id") + 1000;

    let response = app.get(&format!("/users/{missing}"), None).await;
    let zero = app.get("/users/0", None).await;

    assert_no_user(&response, missing);
    assert_no_user(&zero, 0);
}

async fn a_non_integer_user_id_is_a_422_at_the_path(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    for path in ["/users/abc", "/users/1.5", "/users/1abc"] {
        let response = app.get(path, None).await;

        response.assert_validation_error_for(path, &["path", "id"]);
    }
}

pub fn tests() -> Vec<Trial> {
    backend_tests![
        signing_up_answers_201_with_exactly_id_email_and_created_at,
        the_created_user_never_shows_a_password_or_hash,
        the_email_is_stored_trimmed_and_lower_cased,
        a_taken_email_is_a_409,
        an_email_differing_only_in_case_or_spaces_is_taken_too,
        racing_identical_sign_ups_give_one_201_and_409s_never_a_500,
        racing_sign_ups_differing_only_in_case_give_one_201_and_409s,
        invalid_emails_are_a_422_at_the_email,
        a_password_of_seven_bytes_is_a_422_at_the_password,
        a_password_of_eight_bytes_is_accepted_and_works,
        a_password_needs_eight_characters_so_four_two_byte_chars_are_a_422,
        a_password_of_72_bytes_is_accepted_and_logs_in_but_not_truncated,
        a_password_of_36_two_byte_chars_is_72_bytes_and_accepted,
        a_password_of_73_bytes_is_a_422_never_truncated,
        a_password_of_37_two_byte_chars_is_74_bytes_and_a_422,
        missing_fields_are_a_422_at_each_missing_field,
        fields_of_the_wrong_type_are_a_422,
        a_form_body_is_not_a_sign_up_and_is_a_422,
        signing_up_at_users_with_a_trailing_slash_works_directly,
        getting_a_user_answers_200_with_their_id_and_created_at_and_no_email,
        getting_a_user_needs_no_token,
        another_accounts_email_appears_in_no_answer_of_the_flat_shape,
        an_id_beyond_the_32_bit_range_is_a_404_not_a_422,
        a_nul_character_in_the_email_is_a_422_not_a_500,
        an_unknown_user_id_is_a_404_naming_the_id,
        a_non_integer_user_id_is_a_422_at_the_path,
    ]
}
