//! The OpenAPI document against the running server: every documented
//! operation is routed, and every status (and required response header) that
//! a handful of quick requests draw from it is one the document declares.
//! Schemathesis (`.ci/schemathesis`) fuzzes the same in depth.

use actix_web::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Body, PASSWORD, TestApp, TestResponse, TestUser, Trial, backend_tests,
};

/// One documented operation with the path it is called on and a request the
/// server accepts. Every documented operation must be listed here.
struct Call {
    method: Method,
    template: &'static str,
    body: Option<Value>,
}

/// What a call needs to find: alice's post, her id, one of her sessions and
/// one of her refresh tokens.
struct Fixtures {
    post_id: i64,
    user_id: i64,
    session_id: i64,
    refresh_token: String,
}

impl Fixtures {
    async fn arrange(app: &TestApp, user: &TestUser) -> Self {
        let post = app.create_post(user, "a post").await;
        let login = app.try_log_in(&user.email, PASSWORD).await.json();
        let sessions = app.get("/sessions", user.token()).await.json();
        let other_session = sessions
            .as_array()
            .expect("a list")
            .iter()
            .find(|session| session["current"] == false)
            .expect("a session besides the token's")["id"]
            .as_i64()
            .expect("an id");
        Self {
            post_id: post["id"].as_i64().expect("an id"),
            user_id: user.id,
            session_id: other_session,
            refresh_token: login["refresh_token"]
                .as_str()
                .expect("a refresh token")
                .to_owned(),
        }
    }
}

/// Every documented operation, with a valid request; those that end the
/// caller's session or account last.
fn calls(fixtures: &Fixtures) -> Vec<(Call, String)> {
    let call = |method: Method, template: &'static str, body: Option<Value>| {
        let id = if template.starts_with("/users") {
            fixtures.user_id
        } else if template.starts_with("/sessions") {
            fixtures.session_id
        } else {
            fixtures.post_id
        };
        let path = template.replace("{id}", &id.to_string());
        (
            Call {
                method,
                template,
                body,
            },
            path,
        )
    };
    let post = json!({ "title": "a title", "content": "some content" });
    vec![
        call(Method::GET, "/", None),
        call(Method::GET, "/health", None),
        call(Method::GET, "/health/live", None),
        call(
            Method::POST,
            "/users",
            Some(json!({ "email": "bob@example.com", "password": "bob's password" })),
        ),
        call(Method::GET, "/users/{id}", None),
        call(
            Method::POST,
            "/login",
            Some(json!({ "email": "alice@example.com", "password": PASSWORD })),
        ),
        call(
            Method::POST,
            "/login/refresh",
            Some(json!({ "refresh_token": fixtures.refresh_token })),
        ),
        call(Method::GET, "/users/me", None),
        call(Method::GET, "/sessions", None),
        call(Method::GET, "/posts", None),
        call(Method::POST, "/posts", Some(post.clone())),
        call(Method::GET, "/posts/{id}", None),
        call(Method::PUT, "/posts/{id}", Some(post)),
        call(
            Method::POST,
            "/vote",
            Some(json!({ "post_id": fixtures.post_id, "dir": 1 })),
        ),
        call(Method::DELETE, "/posts/{id}", None),
        call(Method::DELETE, "/sessions/{id}", None),
        call(
            Method::PUT,
            "/users/me/password",
            Some(json!({ "current_password": PASSWORD, "new_password": PASSWORD })),
        ),
        call(Method::POST, "/logout", None),
        call(Method::POST, "/logout/all", None),
        call(
            Method::DELETE,
            "/users/me",
            Some(json!({ "password": PASSWORD })),
        ),
    ]
}

/// A token of `user`'s own, so that a call ending its session ends no other
/// call's.
async fn fresh_token(app: &TestApp, user: &TestUser) -> String {
    app.log_in(&user.email, PASSWORD).await
}

fn operation<'a>(document: &'a Value, call: &Call) -> &'a Value {
    let operation = &document["paths"][call.template][call.method.as_str().to_lowercase()];
    assert!(
        operation.is_object(),
        "{} {} is not documented",
        call.method,
        call.template
    );
    operation
}

/// The declared response for the answer's status, with `$ref`s followed.
fn declared<'a>(document: &'a Value, operation: &'a Value, response: &TestResponse) -> &'a Value {
    let declared = &operation["responses"][response.status.as_str()];
    assert!(
        declared.is_object(),
        "{} is not declared for this operation: {}",
        response.status,
        response.text()
    );
    match declared["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().expect("a name");
            &document["components"]["responses"][name]
        }
        None => declared,
    }
}

/// The status is declared, the headers it requires are there, and an error
/// body has the declared shape.
#[track_caller]
fn assert_declared(document: &Value, call: &Call, what: &str, response: &TestResponse) {
    let declared = declared(document, operation(document, call), response);
    for (name, header) in declared["headers"].as_object().into_iter().flatten() {
        if header["required"] == json!(true) {
            assert!(
                response.header(name).is_some(),
                "{} {} ({what}): {} without {name}",
                call.method,
                call.template,
                response.status
            );
        }
    }
    if response.status == StatusCode::UNPROCESSABLE_ENTITY {
        for error in response.json()["detail"].as_array().expect("a list") {
            let loc = error["loc"].as_array().expect("loc is a list");
            assert!(!loc.is_empty());
            assert!(
                loc.iter().all(|part| part.is_string() || part.is_i64()),
                "{error}"
            );
        }
    } else if response.status.is_client_error() {
        assert!(response.json()["detail"].is_string(), "{}", response.text());
    }
}

async fn every_documented_operation_is_routed_and_accepts_a_valid_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;
    let fixtures = Fixtures::arrange(&app, &user).await;
    let document = app.get("/openapi.json", None).await.json();
    let calls = calls(&fixtures);

    let documented: usize = document["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|item| item.as_object().map_or(0, |methods| methods.len()))
        .sum();
    assert_eq!(
        documented,
        calls.len(),
        "every documented operation is called"
    );

    for (call, path) in &calls {
        let body = call.body.clone().map_or(Body::None, Body::Json);
        let token = fresh_token(&app, &user).await;
        let response = app
            .request(call.method.clone(), path, Some(&token), body)
            .await;

        assert!(
            response.status.is_success(),
            "{} {path}: {} {}",
            call.method,
            response.status,
            response.text()
        );
        assert_declared(&document, call, "valid", &response);
    }
}

async fn the_statuses_of_bad_requests_are_all_declared(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;
    let other = app.user("eve@example.com").await;
    let fixtures = Fixtures::arrange(&app, &user).await;
    let document = app.get("/openapi.json", None).await.json();

    for (call, path) in calls(&fixtures) {
        let operation = operation(&document, &call);
        let protected = operation.get("security").is_some();
        // Fresh for each operation: a logout's tries end only its own.
        let (mine, theirs) = (
            fresh_token(&app, &user).await,
            fresh_token(&app, &other).await,
        );
        let (mine, theirs) = (Some(mine.as_str()), Some(theirs.as_str()));
        let mut tries: Vec<(&str, String, Option<&str>, Body)> = vec![
            ("no token, no body", path.clone(), None, Body::None),
            (
                "empty JSON object",
                path.clone(),
                mine,
                Body::Json(json!({})),
            ),
            (
                "not JSON",
                path.clone(),
                mine,
                Body::raw("application/json", "{"),
            ),
            ("someone else's", path.clone(), theirs, Body::None),
            ("a bad token", path.clone(), Some("not.a.token"), Body::None),
        ];
        if operation.get("requestBody").is_some() {
            tries.push(("over the size limit", path.clone(), mine, oversized()));
        }
        if call.template.contains("{id}") {
            for id in ["0", "-1", "abc", "2147483648", "99999999999999999999"] {
                let bad = call.template.replace("{id}", id);
                tries.push(("an id out of range", bad, mine, Body::None));
            }
        }
        for (what, path, token, body) in tries {
            let response = app.request(call.method.clone(), &path, token, body).await;

            assert!(
                response.status != StatusCode::METHOD_NOT_ALLOWED,
                "{} {path} is routed",
                call.method
            );
            assert_declared(&document, &call, what, &response);
            if protected && token.is_none() {
                response.assert_unauthorized();
            }
        }
    }
}

/// A JSON body one byte over the 1 MiB limit.
fn oversized() -> Body {
    let mut body = format!("{{\"content\": \"{}\"}}", "x".repeat(1024 * 1024));
    body.truncate(1024 * 1024 + 1);
    Body::raw("application/json", body)
}

async fn every_body_taking_operation_declares_413_and_gets_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;
    let fixtures = Fixtures::arrange(&app, &user).await;
    let document = app.get("/openapi.json", None).await.json();

    let mut checked = 0;
    for (call, path) in calls(&fixtures) {
        if operation(&document, &call).get("requestBody").is_none() {
            continue;
        }
        let response = app
            .request(call.method.clone(), &path, user.token(), oversized())
            .await;

        assert_eq!(
            response.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{} {path}",
            call.method
        );
        assert_declared(&document, &call, "over the size limit", &response);
        checked += 1;
    }
    assert_eq!(
        checked, 8,
        "POST /users, /login, /login/refresh, /posts, /vote, PUT /posts/{{id}}, \
         PUT /users/me/password and DELETE /users/me"
    );
}

async fn an_unparseable_multipart_login_is_a_declared_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let document = app.get("/openapi.json", None).await.json();
    let login = Call {
        method: Method::POST,
        template: "/login",
        body: None,
    };

    let response = app
        .request(
            Method::POST,
            "/login",
            None,
            Body::raw(
                "multipart/form-data; boundary=XX",
                "--XX\r\nContent-Disposition: form-data; name=\"a\x0bb\"\r\n\r\nv\r\n--XX--\r\n",
            ),
        )
        .await;

    assert_eq!(
        response.status,
        StatusCode::BAD_REQUEST,
        "{}",
        response.text()
    );
    assert_declared(&document, &login, "malformed multipart", &response);
}

/// An address of exactly `length` characters, with labels under 64.
fn email_of_length(length: usize) -> String {
    let mut domain = String::new();
    let mut left = length - "a@".len() - ".com".len();
    while left > 64 {
        domain.push_str(&"b".repeat(63));
        domain.push('.');
        left -= 64;
    }
    domain.push_str(&"c".repeat(left));
    format!("a@{domain}.com")
}

fn bound(document: &Value, schema: &str, field: &str, keyword: &str) -> usize {
    document["components"]["schemas"][schema]["properties"][field][keyword]
        .as_u64()
        .unwrap_or_else(|| panic!("{schema}.{field} declares {keyword}")) as usize
}

async fn the_bounds_the_document_declares_are_where_the_server_draws_the_line(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;
    let document = app.get("/openapi.json", None).await.json();
    let sign_up = |email: String, password: String| {
        let app = &app;
        async move {
            app.post(
                "/users",
                json!({ "email": email, "password": password }),
                None,
            )
            .await
        }
    };

    let longest = bound(&document, "UserCreate", "email", "maxLength");
    let response = sign_up(email_of_length(longest), "password".into()).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    sign_up(email_of_length(longest + 1), "password".into())
        .await
        .assert_validation_error(&["body", "email"]);

    // In characters, as JSON Schema counts: 7 three-byte characters are too few.
    let fewest = bound(&document, "UserCreate", "password", "minLength");
    sign_up("b@example.com".into(), "€".repeat(fewest - 1))
        .await
        .assert_validation_error(&["body", "password"]);
    let response = sign_up("b@example.com".into(), "€".repeat(fewest)).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    let most_bytes = document["components"]["schemas"]["UserCreate"]["properties"]["password"]
        ["x-max-utf8-bytes"]
        .as_u64()
        .expect("the password's byte limit") as usize;
    sign_up("c@example.com".into(), "p".repeat(most_bytes + 1))
        .await
        .assert_validation_error(&["body", "password"]);

    let title = bound(&document, "PostIn", "title", "maxLength");
    let create = |title: String| {
        let app = &app;
        let token = user.token.clone();
        async move {
            app.post(
                "/posts",
                json!({ "title": title, "content": "" }),
                Some(&token),
            )
            .await
        }
    };
    let response = create("t".repeat(title)).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    create("t".repeat(title + 1))
        .await
        .assert_validation_error(&["body", "title"]);
    // The not-blank pattern: every White_Space character is blank, NUL never allowed.
    create("\u{3000}\t\u{85}".into())
        .await
        .assert_validation_error(&["body", "title"]);
    let response = create("\u{1c}".into()).await;
    assert_eq!(
        response.status,
        StatusCode::CREATED,
        "U+001C is not White_Space"
    );

    let search = document["paths"]["/posts"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|parameter| parameter["name"] == "search")
        .expect("a search parameter")["schema"]["maxLength"]
        .as_u64()
        .expect("a bound search") as usize;
    let response = app
        .get(
            &format!("/posts?search={}", "s".repeat(search)),
            user.token(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    app.get(
        &format!("/posts?search={}", "s".repeat(search + 1)),
        user.token(),
    )
    .await
    .assert_validation_error(&["query", "search"]);

    // JSON Schema counts 1.0 as an integer; so does the server.
    let post = app.create_post(&user, "votable").await;
    let response = app
        .post(
            "/vote",
            json!({ "post_id": post["id"], "dir": 1.0 }),
            user.token(),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    app.post(
        "/vote",
        json!({ "post_id": post["id"], "dir": 1.5 }),
        user.token(),
    )
    .await
    .assert_validation_error(&["body", "dir"]);
}

pub fn tests() -> Vec<Trial> {
    backend_tests![
        every_documented_operation_is_routed_and_accepts_a_valid_request,
        the_statuses_of_bad_requests_are_all_declared,
        every_body_taking_operation_declares_413_and_gets_it,
        an_unparseable_multipart_login_is_a_declared_400,
        the_bounds_the_document_declares_are_where_the_server_draws_the_line,
    ]
}
