//! `X-Request-ID` on every answer: the client's when sane, else a new one.

use actix_web::http::{Method, StatusCode};
use diesel::connection::SimpleConnection;

use crate::helpers::{Backend, TestApp, TestResponse, Trial, backend_tests};

/// A path, the headers sent with it, and the status it must get.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], StatusCode);

fn request_id(response: &TestResponse) -> &str {
    response
        .header("x-request-id")
        .unwrap_or_else(|| panic!("no X-Request-ID on a {}", response.status))
}

/// Asserts the answer to `what` carries an id of the server's: 32 hex digits.
#[track_caller]
fn assert_generated(what: &str, response: &TestResponse) {
    let id = request_id(response);
    assert_eq!(id.len(), 32, "{what}: {id:?}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{what}: {id:?}");
}

/// `GET /` sending `X-Request-ID: id`; asserts a 200.
async fn get_root_with_id(app: &TestApp, id: &str) -> TestResponse {
    let response = app
        .client_request(Method::GET, "/", &[("X-Request-ID", id)])
        .await;
    response.assert_status_for(format!("X-Request-ID {id:?}"), StatusCode::OK);
    response
}

async fn a_sane_incoming_request_id_is_echoed(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    for id in [
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "a",
        "trace:abc.DEF_123~+/=",
        &"x".repeat(64),
    ] {
        let response = get_root_with_id(&app, id).await;

        assert_eq!(request_id(&response), id);
    }
}

async fn a_request_id_is_generated_when_none_is_sent(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let first = app.get("/", None).await;
    let second = app.get("/", None).await;

    assert_generated("the first", &first);
    assert_generated("the second", &second);
    assert_ne!(request_id(&first), request_id(&second));
}

async fn a_malformed_request_id_is_replaced(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    for bad in [
        "x".repeat(65),
        "has a space".to_owned(),
        "tab\tinside".to_owned(),
        "quote\"d".to_owned(),
        "semi;colon".to_owned(),
        String::new(),
    ] {
        let response = get_root_with_id(&app, &bad).await;

        assert_generated(&format!("{bad:?}"), &response);
    }
}

async fn error_answers_carry_the_request_id_too(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("ids@example.com").await;
    let bearer = format!("Bearer {}", user.token);

    let cases: [Case; 4] = [
        ("/posts", &[], StatusCode::UNAUTHORIZED),
        (
            "/posts",
            &[("Authorization", "Bearer not-a-token")],
            StatusCode::UNAUTHORIZED,
        ),
        ("/no/such/route", &[], StatusCode::NOT_FOUND),
        (
            "/posts/abc",
            &[("Authorization", &bearer)],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (path, headers, status) in cases {
        let id = format!("case-{}", status.as_u16());
        let mut headers = headers.to_vec();
        headers.push(("X-Request-ID", &id));

        let response = app.client_request(Method::GET, path, &headers).await;

        assert_eq!(response.status, status, "{path}: {}", response.text());
        assert_eq!(request_id(&response), id, "{path}");
    }
}

async fn a_500_carries_the_request_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("broken@example.com").await;
    // A column the post listing reads, gone: the query fails as a bug would.
    app.db()
        .batch_execute("ALTER TABLE posts RENAME COLUMN vote_count TO renamed")
        .expect("rename the vote count");
    let bearer = format!("Bearer {}", user.token);

    let response = app
        .client_request(
            Method::GET,
            "/posts",
            &[("Authorization", &bearer), ("X-Request-ID", "find-me-500")],
        )
        .await;

    assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.text(), r#"{"detail":"Internal Server Error"}"#);
    assert_eq!(request_id(&response), "find-me-500");
}

pub fn tests() -> Vec<Trial> {
    backend_tests![
        a_sane_incoming_request_id_is_echoed,
        a_request_id_is_generated_when_none_is_sent,
        a_malformed_request_id_is_replaced,
        error_answers_carry_the_request_id_too,
        a_500_carries_the_request_id,
    ]
}
