//! Inputs at and past every bound: each is a clear 4xx or a success, never a
//! database limit surfacing as a 500.

use actix_web::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Bound, PASSWORD, TestApp, TestUser, Trial, backend_tests, brief, past,
};
use postapi::routes::users::MAX_EMAIL_CHARS;

async fn search_for(app: &TestApp, user: &TestUser, term: &str) -> crate::helpers::TestResponse {
    let query = serde_urlencoded::to_string([("search", term)]).expect("a query string");
    app.get(&format!("/posts?{query}"), user.token()).await
}

fn titles(listed: &Value) -> Vec<&str> {
    listed
        .as_array()
        .expect("a list of posts")
        .iter()
        .map(|post| post["title"].as_str().expect("a title"))
        .collect()
}

async fn a_search_over_200_characters_is_a_422_in_fastapis_shape(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    app.create_post(&alice, "a post to search").await;

    for term in ["x".repeat(201), "é".repeat(201), "_".repeat(50_000)] {
        let response = search_for(&app, &alice, &term).await;

        response.assert_error_for(
            format!("{} characters", term.chars().count()),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!([past(["query", "search"], Bound::MaxLength(200))]),
        );
    }
}

async fn a_search_of_200_characters_that_escaping_doubles_is_answered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let underscores = "_".repeat(200);
    app.create_post(&alice, &underscores).await;
    app.create_post(&alice, "no wildcards here").await;

    for term in [
        underscores.clone(),
        "%".repeat(200),
        "\\".repeat(200),
        "😀".repeat(200),
    ] {
        let response = search_for(&app, &alice, &term).await;

        response.assert_status(StatusCode::OK);
        let expected: Vec<&str> = if term == underscores {
            vec![underscores.as_str()]
        } else {
            vec![]
        };
        assert_eq!(titles(&response.json()), expected);
    }
}

async fn the_largest_skip_is_an_empty_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    app.create_post(&alice, "only post").await;

    for query in [
        format!("skip={}", i64::MAX),
        format!("skip={}&limit=100", i64::MAX),
        format!("skip={}&limit=0", i64::MAX),
        format!("skip={}&search=only", i64::MAX - 1),
    ] {
        let response = app.get(&format!("/posts?{query}"), alice.token()).await;

        response.assert_status_for(&query, StatusCode::OK);
        assert_eq!(response.json(), json!([]), "{query}");
    }
    let past_i64 = app
        .get("/posts?skip=9223372036854775808", alice.token())
        .await;
    past_i64.assert_validation_error(&["query", "skip"]);
}

async fn a_post_at_the_largest_title_and_content_is_stored_and_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    // Four bytes a character: the most bytes the character limits allow.
    let title = "𝄞".repeat(300);
    let content = "𝄞".repeat(100_000);

    let created = app
        .send_post(&alice, json!({ "title": title, "content": content }))
        .await;

    created.assert_status(StatusCode::CREATED);
    let found = search_for(&app, &alice, &"𝄞".repeat(200)).await;
    found.assert_status(StatusCode::OK);
    assert_eq!(titles(&found.json()), [title.as_str()]);
    assert_eq!(found.json()[0]["content"], json!(content));
}

async fn an_email_at_its_longest_signs_up_and_logs_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // The longest local part (64) and 254 characters in all, RFC 5321's limit.
    let email = longest_email_but(0);
    assert_eq!(email.len(), MAX_EMAIL_CHARS);

    let user = app.user(&email).await;

    let again = app.try_sign_up(&email, PASSWORD).await;
    again.assert_status(StatusCode::CONFLICT);
    assert!(user.id > 0);
}

/// An address of `MAX_EMAIL_CHARS + extra` characters, with 63-character labels.
fn longest_email_but(extra: usize) -> String {
    let label = "d".repeat(63);
    format!(
        "{}@{label}.{label}.{}.com",
        "l".repeat(64),
        "e".repeat(57 + extra)
    )
}

async fn an_email_past_its_longest_is_a_422_and_a_login_with_one_a_403(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let local_part_too_long = format!("{}@example.com", "l".repeat(65));
    let one_character_too_long = longest_email_but(1);
    let huge = format!("{}@example.com", "l".repeat(500_000));

    for email in [&local_part_too_long, &one_character_too_long, &huge] {
        let what = format!("{} characters: {}", email.chars().count(), brief(email));
        let signed_up = app.try_sign_up(email, PASSWORD).await;
        signed_up.assert_validation_error_for(&what, &["body", "email"]);

        let logged_in = app.try_log_in(email, PASSWORD).await;
        logged_in.assert_status_for(&what, StatusCode::FORBIDDEN);
    }
}

pub fn tests() -> Vec<Trial> {
    backend_tests![
        a_search_over_200_characters_is_a_422_in_fastapis_shape,
        a_search_of_200_characters_that_escaping_doubles_is_answered,
        the_largest_skip_is_an_empty_page,
        a_post_at_the_largest_title_and_content_is_stored_and_found,
        an_email_at_its_longest_signs_up_and_logs_in,
        an_email_past_its_longest_is_a_422_and_a_login_with_one_a_403,
    ]
}
