//! The public surface that needs no account: `/`, `/health`, and the error
//! shapes every route shares.

use actix_web::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Body, TestApp, Trial, backend_tests};

/// Asserts `GET path`, with no token, answers `status` with exactly `body`.
async fn assert_get_answers(backend: Backend, path: &str, status: StatusCode, body: Value) {
    let app = TestApp::spawn(backend).await;

    let response = app.get(path, None).await;

    response.assert_status_for(path, status);
    assert_eq!(response.json(), body, "{path}");
}

async fn the_root_route_says_hello_world(backend: Backend) {
    let hello = json!({ "message": "Hello World" });

    assert_get_answers(backend, "/", StatusCode::OK, hello).await;
}

async fn health_reports_the_database_as_ok(backend: Backend) {
    let ok = json!({ "status": "ok", "database": "ok" });

    assert_get_answers(backend, "/health", StatusCode::OK, ok).await;
}

async fn head_is_answered_like_get_without_a_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app.request(Method::HEAD, "/health", None, Body::None).await;

    assert_eq!(response.status, StatusCode::OK);
    assert!(response.body.is_empty());
}

async fn an_unknown_route_is_a_json_404(backend: Backend) {
    let not_found = json!({ "detail": "Not Found" });

    assert_get_answers(backend, "/no/such/route", StatusCode::NOT_FOUND, not_found).await;
}

async fn a_wrong_method_is_a_json_405(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    for (method, path) in [
        (Method::DELETE, "/"),
        (Method::GET, "/login"),
        (Method::PUT, "/users"),
    ] {
        let response = app.request(method.clone(), path, None, Body::None).await;

        assert_eq!(
            response.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(response.json(), json!({ "detail": "Method Not Allowed" }));
    }
}

async fn a_body_over_one_mebibyte_is_a_413_and_the_server_keeps_serving(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let huge = format!(
        "{{\"email\": \"a@example.com\", \"password\": \"{}\"}}",
        "x".repeat(1024 * 1024)
    );

    let response = app.post_raw("/users", None, "application/json", huge).await;

    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(response.json()["detail"].is_string());
    assert_eq!(app.get("/health", None).await.status, StatusCode::OK);
}

async fn malformed_json_is_a_422_at_the_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app.post_json_text("/users", None, "{not json").await;

    response.assert_validation_error(&["body"]);
    assert_eq!(response.detail()[0]["type"], "value_error.jsondecode");
}

async fn a_json_body_that_is_not_an_object_is_a_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app.post("/users", json!(["a list"]), None).await;

    response.assert_validation_error(&["body"]);
    assert_eq!(response.detail()[0]["type"], "type_error.dict");
}

async fn a_non_integer_path_id_is_a_422_not_a_404(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app.get("/users/abc", None).await;

    response.assert_validation_error(&["path", "id"]);
    assert_eq!(
        response.detail()[0],
        json!({ "loc": ["path", "id"], "msg": "value is not a valid integer", "type": "type_error.integer" })
    );
}

async fn cors_preflight_is_answered_for_any_origin_by_default(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app
        .client_request(
            Method::OPTIONS,
            "/posts",
            &[
                ("Origin", "http://example.com"),
                ("Access-Control-Request-Method", "POST"),
                (
                    "Access-Control-Request-Headers",
                    "authorization, content-type",
                ),
            ],
        )
        .await;

    response.assert_status(StatusCode::OK);
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    let allowed = response
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
}

async fn cors_origins_limit_which_origins_are_allowed(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.cors_origins =
            postapi::config::CorsOrigins::List(vec!["https://app.example.com".into()]);
    })
    .await;

    let allowed = app
        .get_with_headers("/", &[("Origin", "https://app.example.com")])
        .await;
    let refused = app
        .get_with_headers("/", &[("Origin", "https://evil.example.com")])
        .await;

    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(refused.header("access-control-allow-origin"), None);
}

async fn the_openapi_document_lists_every_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let document = app.get("/openapi.json", None).await.json();

    assert!(
        document["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with('3'),
        "{}",
        document["openapi"]
    );
    let paths = document["paths"].as_object().expect("paths");
    for (path, methods) in [
        ("/", &["get"][..]),
        ("/health", &["get"]),
        ("/users", &["post"]),
        ("/users/{id}", &["get"]),
        ("/login", &["post"]),
        ("/posts", &["get", "post"]),
        ("/posts/{id}", &["get", "put", "delete"]),
        ("/vote", &["post"]),
    ] {
        for method in methods {
            assert!(
                paths[path][method].is_object(),
                "{method} {path} is documented"
            );
        }
    }
    let password_flow =
        &document["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"];
    assert_eq!(password_flow["tokenUrl"], "/login");
}

async fn swagger_ui_is_served_from_the_binary(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let page = app.get("/docs", None).await;
    let script = app.get("/docs/swagger-ui-bundle.js", None).await;
    let initializer = app.get("/docs/swagger-initializer.js", None).await;

    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text().contains("<base href=\"/docs/\">"),
        "{}",
        page.text()
    );
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.body.len() > 100_000);
    assert!(initializer.text().contains("/openapi.json"));
}

pub fn tests() -> Vec<Trial> {
    backend_tests![
        the_root_route_says_hello_world,
        health_reports_the_database_as_ok,
        head_is_answered_like_get_without_a_body,
        an_unknown_route_is_a_json_404,
        a_wrong_method_is_a_json_405,
        a_body_over_one_mebibyte_is_a_413_and_the_server_keeps_serving,
        malformed_json_is_a_422_at_the_body,
        a_json_body_that_is_not_an_object_is_a_422,
        a_non_integer_path_id_is_a_422_not_a_404,
        cors_preflight_is_answered_for_any_origin_by_default,
        cors_origins_limit_which_origins_are_allowed,
        the_openapi_document_lists_every_route,
        swagger_ui_is_served_from_the_binary,
    ]
}
