//! `405 Method Not Allowed` carries `Allow` (RFC 9110): on every resource the
//! OpenAPI document names and on the undocumented ones, with exactly the
//! methods the resource answers (HEAD wherever GET is).

use std::collections::BTreeSet;

use actix_web::http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, Body, TestApp, Trial, backend_tests};

const PROBED: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
];

fn method_set(list: &str) -> BTreeSet<String> {
    list.split(',')
        .map(|method| method.trim().to_owned())
        .filter(|method| !method.is_empty())
        .collect()
}

/// Sends every probed method the resource does not take and checks each 405.
async fn assert_allow(app: &TestApp, path: &str, token: &str, allowed: &BTreeSet<String>) {
    for method in PROBED.iter().filter(|m| !allowed.contains(**m)) {
        let method = Method::from_bytes(method.as_bytes()).expect("a method");
        let response = app
            .request(method.clone(), path, Some(token), Body::None)
            .await;

        assert_eq!(
            response.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {}",
            response.text()
        );
        if method != Method::HEAD {
            assert_eq!(response.json(), json!({ "detail": "Method Not Allowed" }));
        }
        let allow = response
            .header("allow")
            .unwrap_or_else(|| panic!("{method} {path}: a 405 without Allow"));
        assert_eq!(
            &method_set(allow),
            allowed,
            "{method} {path}: Allow: {allow}"
        );
    }
}

async fn every_documented_resource_lists_its_documented_methods_in_allow(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;
    let post = app.create_post(&user, "a post").await;
    let document = app.get("/openapi.json", None).await.json();
    let paths = document["paths"].as_object().expect("paths");
    assert!(paths.len() >= 6, "{paths:?}");

    for (template, item) in paths {
        let mut allowed: BTreeSet<String> = item
            .as_object()
            .expect("a path item")
            .keys()
            .map(|method| method.to_uppercase())
            .filter(|method| PROBED.contains(&method.as_str()))
            .collect();
        if allowed.contains("GET") {
            allowed.insert("HEAD".into());
        }
        let id = if template.starts_with("/users") {
            user.id.to_string()
        } else {
            post["id"].to_string()
        };
        let path = template.replace("{id}", &id);

        assert_allow(&app, &path, &user.token, &allowed).await;
    }
}

async fn undocumented_resources_and_trailing_slashes_carry_allow_too(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;
    let get_only = method_set("GET, HEAD");

    for path in ["/openapi.json", "/docs", "/docs/index.css"] {
        assert_allow(&app, path, &user.token, &get_only).await;
    }
    assert_allow(&app, "/posts/", &user.token, &method_set("GET, HEAD, POST")).await;
    assert_allow(&app, "/vote/", &user.token, &method_set("POST")).await;
    assert_allow(&app, "/users/", &user.token, &method_set("POST")).await;
}

async fn a_protected_resource_checks_the_token_before_the_method(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app
        .request(Method::PATCH, "/posts/1", None, Body::None)
        .await;

    response.assert_unauthorized();
    assert_eq!(response.header("allow"), None);
}

pub fn tests() -> Vec<Trial> {
    backend_tests![
        every_documented_resource_lists_its_documented_methods_in_allow,
        undocumented_resources_and_trailing_slashes_carry_allow_too,
        a_protected_resource_checks_the_token_before_the_method,
    ]
}
