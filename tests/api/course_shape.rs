//! `POST_SHAPE=course`: the post routes answer the FastAPI course's own
//! response models, byte for byte, and users are shown with their email to
//! anyone, as the course shows them; everything else answers as in the flat
//! default, which stays as it was but for the owner's email; and
//! `/openapi.json` describes whichever shape the server answers.

use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use postapi::config::PostShape;
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, TestResponse, TestUser, Trial, backend_tests};

async fn spawn_in(backend: Backend, shape: PostShape) -> TestApp {
    TestApp::spawn_with(backend, |settings| settings.post_shape = shape).await
}

async fn course_app(backend: Backend) -> TestApp {
    spawn_in(backend, PostShape::Course).await
}

/// A user as `GET /users/{id}` shows them: the `owner` of their posts (with
/// the email in the course's shape, without it in the flat one).
async fn public_user(app: &TestApp, user: &TestUser) -> Value {
    let response = app.get(&format!("/users/{}", user.id), None).await;
    response.assert_status(StatusCode::OK);
    response.json()
}

/// Asserts an RFC 3339 timestamp in UTC of about now; returns it.
#[track_caller]
fn utc_timestamp(value: &Value) -> &str {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("a timestamp string: {value}"));
    assert!(text.ends_with("+00:00"), "UTC: {text}");
    let at =
        DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("RFC 3339 ({e}): {text}"));
    assert!((Utc::now() - at.with_timezone(&Utc)).num_seconds().abs() < 300);
    text
}

/// What a post holds, to write the exact text a shape answers for it.
struct Expected {
    id: i64,
    title: String,
    content: String,
    published: bool,
    created_at: String,
    owner: Value,
}

impl Expected {
    fn owner_text(&self) -> String {
        format!(
            r#"{{"id":{},"email":{},"created_at":{}}}"#,
            self.owner["id"], self.owner["email"], self.owner["created_at"]
        )
    }

    /// The course's `Post`, keys in pydantic's order: `PostBase`'s first.
    fn course_post(&self) -> String {
        format!(
            r#"{{"title":{},"content":{},"published":{},"id":{},"created_at":{},"owner_id":{},"owner":{}}}"#,
            json!(self.title),
            json!(self.content),
            self.published,
            self.id,
            json!(self.created_at),
            self.owner["id"],
            self.owner_text()
        )
    }

    /// The course's `PostOut`.
    fn course_post_out(&self, votes: i64) -> String {
        format!(r#"{{"Post":{},"votes":{votes}}}"#, self.course_post())
    }

    /// The owner as the flat shape shows them to anyone: no email.
    fn public_owner_text(&self) -> String {
        format!(
            r#"{{"id":{},"created_at":{}}}"#,
            self.owner["id"], self.owner["created_at"]
        )
    }

    /// postapi's flat post, as it has always been written but for the
    /// owner's email, which it no longer shows.
    fn flat(&self, votes: i64) -> String {
        format!(
            r#"{{"id":{},"title":{},"content":{},"published":{},"created_at":{},"owner_id":{},"owner":{},"votes":{votes}}}"#,
            self.id,
            json!(self.title),
            json!(self.content),
            self.published,
            json!(self.created_at),
            self.owner["id"],
            self.public_owner_text()
        )
    }
}

#[track_caller]
fn assert_answer(response: &TestResponse, status: StatusCode, text: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(response.text(), text);
    assert!(
        response
            .header("content-type")
            .is_some_and(|value| value.starts_with("application/json")),
        "{:?}",
        response.header("content-type")
    );
}

/// `POST /posts` as `user` with `title`, `content` and, when given,
/// `published`; panics unless 201. Returns the answer and what the post
/// holds: the answer's id and created_at, published true unless given.
async fn create(
    app: &TestApp,
    user: &TestUser,
    title: &str,
    content: &str,
    published: Option<bool>,
) -> (TestResponse, Expected) {
    let mut body = json!({ "title": title, "content": content });
    if let Some(published) = published {
        body["published"] = json!(published);
    }
    let response = app.send_post(user, body).await;
    response.assert_status(StatusCode::CREATED);
    let post = response.json();
    let expected = Expected {
        id: post["id"].as_i64().expect("a top-level post id"),
        title: title.to_owned(),
        content: content.to_owned(),
        published: published.unwrap_or(true),
        created_at: utc_timestamp(&post["created_at"]).to_owned(),
        owner: public_user(app, user).await,
    };
    (response, expected)
}

/// Asserts `voter`'s vote on post `id` is cast.
async fn assert_voted(app: &TestApp, voter: &TestUser, id: i64) {
    app.vote(voter, id, 1)
        .await
        .assert_status(StatusCode::CREATED);
}

async fn creating_a_post_answers_the_courses_post_without_votes(backend: Backend) {
    let app = course_app(backend).await;
    let alice = app.user("alice@example.com").await;

    let (response, expected) = create(
        &app,
        &alice,
        "top beaches \"in\" florida",
        "sand",
        Some(false),
    )
    .await;
    let (defaulted, defaulted_expected) =
        create(&app, &alice, "published by default", "", None).await;

    assert_answer(&response, StatusCode::CREATED, &expected.course_post());
    assert_answer(
        &defaulted,
        StatusCode::CREATED,
        &defaulted_expected.course_post(),
    );
}

async fn getting_a_post_answers_the_courses_post_out_with_its_votes(backend: Backend) {
    let app = course_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (_, expected) = create(&app, &alice, "mine", "words", None).await;
    assert_voted(&app, &bob, expected.id).await;
    assert_voted(&app, &alice, expected.id).await;

    let response = app
        .get(&format!("/posts/{}", expected.id), bob.token())
        .await;

    assert_answer(&response, StatusCode::OK, &expected.course_post_out(2));
}

async fn listing_answers_each_post_as_the_courses_post_out_newest_first(backend: Backend) {
    let app = course_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (_, first) = create(&app, &alice, "first", "one", None).await;
    let (_, second) = create(&app, &bob, "second", "two", Some(false)).await;
    let (_, third) = create(&app, &alice, "third", "three", None).await;
    assert_voted(&app, &bob, first.id).await;

    let everything = app.get("/posts", bob.token()).await;
    let page = app.get("/posts/?limit=1&skip=1", bob.token()).await;
    let found = app.get("/posts?search=THIR", bob.token()).await;
    let nothing = app.get("/posts?search=absent", bob.token()).await;

    assert_answer(
        &everything,
        StatusCode::OK,
        &format!(
            "[{},{},{}]",
            third.course_post_out(0),
            second.course_post_out(0),
            first.course_post_out(1)
        ),
    );
    assert_answer(
        &page,
        StatusCode::OK,
        &format!("[{}]", second.course_post_out(0)),
    );
    assert_answer(
        &found,
        StatusCode::OK,
        &format!("[{}]", third.course_post_out(0)),
    );
    assert_answer(&nothing, StatusCode::OK, "[]");
}

async fn updating_a_post_answers_the_courses_post_without_votes(backend: Backend) {
    let app = course_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (_, created) = create(&app, &alice, "draft", "soon", None).await;
    let id = created.id;
    assert_voted(&app, &bob, id).await;

    let replacement = json!({ "title": "final", "content": "now", "published": false });
    let response = app.send_put(&alice, id, replacement).await;

    let expected = Expected {
        title: "final".into(),
        content: "now".into(),
        published: false,
        ..created
    };
    assert_answer(&response, StatusCode::OK, &expected.course_post());
    let shown = app.get(&format!("/posts/{id}"), alice.token()).await;
    assert_answer(&shown, StatusCode::OK, &expected.course_post_out(1));
}

async fn deleting_voting_and_every_error_answer_as_in_the_flat_shape(backend: Backend) {
    let app = course_app(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let id = create(&app, &alice, "t", "c", None).await.1.id;
    let replacement = json!({ "title": "x", "content": "y" });

    let added = app.vote(&bob, id, 1).await;
    let again = app.vote(&bob, id, 1).await;
    let removed = app.vote(&bob, id, 0).await;
    let no_vote = app.vote(&bob, id, 0).await;
    let bad_dir = app.vote(&bob, id, 2).await;
    let missing_get = app.get("/posts/999999", alice.token()).await;
    let missing_put = app
        .put("/posts/999999", replacement.clone(), alice.token())
        .await;
    let others_put = app
        .put(&format!("/posts/{id}"), replacement.clone(), bob.token())
        .await;
    let others_delete = app.delete(&format!("/posts/{id}"), bob.token()).await;
    let invalid = app
        .post("/posts", json!({ "content": "no title" }), alice.token())
        .await;
    let bad_limit = app.get("/posts?limit=101", alice.token()).await;
    let no_token = app.get("/posts", None).await;
    let deleted = app.delete(&format!("/posts/{id}"), alice.token()).await;
    let gone = app.get(&format!("/posts/{id}"), alice.token()).await;

    assert_answer(
        &added,
        StatusCode::CREATED,
        r#"{"message":"successfully added vote"}"#,
    );
    again.assert_status(StatusCode::CONFLICT);
    assert_eq!(
        again.json(),
        json!({ "detail": format!("user {} has already voted on post {id}", bob.id) })
    );
    assert_answer(
        &removed,
        StatusCode::CREATED,
        r#"{"message":"successfully deleted vote"}"#,
    );
    assert_answer(
        &no_vote,
        StatusCode::NOT_FOUND,
        r#"{"detail":"Vote does not exist"}"#,
    );
    bad_dir.assert_validation_error(&["body", "dir"]);
    assert_answer(
        &missing_get,
        StatusCode::NOT_FOUND,
        r#"{"detail":"post with id: 999999 was not found"}"#,
    );
    assert_answer(
        &missing_put,
        StatusCode::NOT_FOUND,
        r#"{"detail":"post with id: 999999 does not exist"}"#,
    );
    for refused in [&others_put, &others_delete] {
        assert_answer(
            refused,
            StatusCode::FORBIDDEN,
            r#"{"detail":"Not authorized to perform requested action"}"#,
        );
    }
    invalid.assert_validation_error(&["body", "title"]);
    bad_limit.assert_validation_error(&["query", "limit"]);
    no_token.assert_unauthorized();
    deleted.assert_status(StatusCode::NO_CONTENT);
    assert!(deleted.body.is_empty(), "{}", deleted.text());
    assert_answer(
        &gone,
        StatusCode::NOT_FOUND,
        &format!(r#"{{"detail":"post with id: {id} was not found"}}"#),
    );
}

async fn the_flat_default_answers_as_before_but_without_the_owners_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;

    let (created, mut expected) = create(&app, &alice, "flat", "as ever", None).await;
    let id = expected.id;
    assert_voted(&app, &bob, id).await;
    let shown = app.get(&format!("/posts/{id}"), alice.token()).await;
    let listed = app.get("/posts", alice.token()).await;
    let replacement = json!({ "title": "flat", "content": "as ever", "published": false });
    let updated = app.send_put(&alice, id, replacement).await;

    assert_answer(&created, StatusCode::CREATED, &expected.flat(0));
    assert_answer(&shown, StatusCode::OK, &expected.flat(1));
    assert_answer(&listed, StatusCode::OK, &format!("[{}]", expected.flat(1)));
    expected.published = false;
    assert_answer(&updated, StatusCode::OK, &expected.flat(1));
}

async fn getting_a_user_shows_their_email_to_anyone_as_the_course_does(backend: Backend) {
    let app = course_app(backend).await;
    let alice = app.sign_up("alice@example.com").await;

    let response = app.get(&format!("/users/{}", alice["id"]), None).await;

    assert_answer(
        &response,
        StatusCode::OK,
        &format!(
            r#"{{"id":{},"email":"alice@example.com","created_at":{}}}"#,
            alice["id"], alice["created_at"]
        ),
    );
}

// ---------------------------------------------------------------------------
// The OpenAPI document against real answers.
// ---------------------------------------------------------------------------

/// Where `$ref` points inside `document`; panics if nothing is there.
fn resolve<'a>(document: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("a local reference: {reference}"));
    document
        .pointer(pointer)
        .unwrap_or_else(|| panic!("{reference} names nothing in the document"))
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        other => panic!("unknown JSON Schema type {other:?}"),
    }
}

/// Checks `value` against `schema`, for the part of JSON Schema utoipa emits,
/// collecting what does not fit (with where) in `errors`. Stricter than JSON
/// Schema in one way: an object whose schema lists `properties` may hold no
/// other key, so the document must name every key the server sends. An
/// unknown keyword panics, so nothing is passed unchecked.
fn check_schema(
    document: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    errors: &mut Vec<String>,
) {
    let schema = schema
        .as_object()
        .unwrap_or_else(|| panic!("a schema object at {at}: {schema}"));
    for (keyword, rule) in schema {
        match keyword.as_str() {
            "$ref" => {
                let target = resolve(document, rule.as_str().expect("a $ref string"));
                check_schema(document, target, value, at, errors);
            }
            "type" => {
                let names: Vec<&str> = match rule {
                    Value::String(name) => vec![name],
                    Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
                    other => panic!("a type name or list: {other}"),
                };
                if !names.iter().any(|name| type_matches(name, value)) {
                    errors.push(format!("{at}: {value} is not of type {rule}"));
                }
            }
            "properties" => {
                let (Some(object), Some(properties)) = (value.as_object(), rule.as_object()) else {
                    continue;
                };
                for (key, item) in object {
                    match properties.get(key) {
                        Some(property) => {
                            check_schema(document, property, item, &format!("{at}.{key}"), errors);
                        }
                        None => errors.push(format!("{at}: key {key:?} is not in the schema")),
                    }
                }
            }
            "required" => {
                if let Some(object) = value.as_object() {
                    for key in rule.as_array().expect("a required list") {
                        let key = key.as_str().expect("a property name");
                        if !object.contains_key(key) {
                            errors.push(format!("{at}: required key {key:?} is missing"));
                        }
                    }
                }
            }
            "items" => {
                for (index, item) in value.as_array().into_iter().flatten().enumerate() {
                    check_schema(document, rule, item, &format!("{at}[{index}]"), errors);
                }
            }
            "oneOf" | "anyOf" => {
                let fitting = rule
                    .as_array()
                    .expect("a list of schemas")
                    .iter()
                    .filter(|option| {
                        let mut option_errors = Vec::new();
                        check_schema(document, option, value, at, &mut option_errors);
                        option_errors.is_empty()
                    })
                    .count();
                let fits = if keyword == "oneOf" {
                    fitting == 1
                } else {
                    fitting >= 1
                };
                if !fits {
                    errors.push(format!("{at}: {fitting} of the {keyword} schemas fit"));
                }
            }
            "allOf" => {
                for part in rule.as_array().expect("a list of schemas") {
                    check_schema(document, part, value, at, errors);
                }
            }
            "enum" => {
                if !rule.as_array().expect("an enum list").contains(value) {
                    errors.push(format!("{at}: {value} is not one of {rule}"));
                }
            }
            "format" => {
                let fits = match (rule.as_str(), value) {
                    (Some("date-time"), Value::String(text)) => {
                        DateTime::parse_from_rfc3339(text).is_ok()
                    }
                    (Some("int32"), Value::Number(number)) => {
                        number.as_i64().is_some_and(|n| i32::try_from(n).is_ok())
                    }
                    _ => true,
                };
                if !fits {
                    errors.push(format!("{at}: {value} is not a {rule}"));
                }
            }
            "minimum" | "maximum" | "minLength" | "maxLength" | "description" | "example"
            | "examples" | "default" | "title" | "deprecated" | "readOnly" | "writeOnly" => {}
            other => panic!("the check knows no keyword {other:?} (at {at})"),
        }
    }
}

/// The schema the document declares for `method path`'s `status` answer;
/// `None` when it declares no body.
fn declared<'a>(document: &'a Value, method: &str, path: &str, status: u16) -> Option<&'a Value> {
    let paths = document["paths"].as_object().expect("paths");
    let operation = &paths
        .get(path)
        .unwrap_or_else(|| panic!("{path} is documented"))[method];
    let response = &operation["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path} documents a {status} answer"
    );
    let response = match response.get("$ref") {
        Some(reference) => resolve(document, reference.as_str().expect("a $ref string")),
        None => response,
    };
    response
        .get("content")
        .map(|content| &content["application/json"]["schema"])
}

/// What `value` breaks of the schema declared for `method path status`.
fn misfits(document: &Value, method: &str, path: &str, status: u16, value: &Value) -> Vec<String> {
    let schema = declared(document, method, path, status)
        .unwrap_or_else(|| panic!("{method} {path} declares a body for {status}"));
    let mut errors = Vec::new();
    check_schema(document, schema, value, "$", &mut errors);
    errors
}

/// Every `$ref` in the document names something in it.
fn assert_references_resolve(document: &Value, node: &Value) {
    match node {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get("$ref") {
                resolve(document, reference);
            }
            object
                .values()
                .for_each(|value| assert_references_resolve(document, value));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|value| assert_references_resolve(document, value)),
        _ => {}
    }
}

/// Real answers of every post route with a body (and of a vote), as
/// (method, path template, status, body): the five successes first.
async fn real_answers(app: &TestApp) -> Vec<(&'static str, &'static str, u16, Value)> {
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let created = app
        .send_post(&alice, json!({ "title": "documented", "content": "c" }))
        .await;
    let id = created.json()["id"].as_i64().expect("an id");
    let voted = app.vote(&bob, id, 1).await;
    let listed = app.get("/posts", alice.token()).await;
    let shown = app.get(&format!("/posts/{id}"), alice.token()).await;
    let updated = app
        .send_put(&alice, id, json!({ "title": "documented", "content": "d" }))
        .await;
    let missing = app.get("/posts/999999", alice.token()).await;
    let refused = app
        .send_put(&bob, id, json!({ "title": "x", "content": "y" }))
        .await;
    let unauthorized = app.get(&format!("/posts/{id}"), None).await;
    let answers = [
        ("post", "/posts", created),
        ("post", "/vote", voted),
        ("get", "/posts", listed),
        ("get", "/posts/{id}", shown),
        ("put", "/posts/{id}", updated),
        ("get", "/posts/{id}", missing),
        ("put", "/posts/{id}", refused),
        ("get", "/posts/{id}", unauthorized),
    ];
    answers
        .into_iter()
        .map(|(method, path, response)| (method, path, response.status.as_u16(), response.json()))
        .collect()
}

async fn the_openapi_document_describes_the_answers_of_the_shape_the_server_answers(
    backend: Backend,
) {
    let flat_app = spawn_in(backend.clone(), PostShape::Flat).await;
    let course_app = spawn_in(backend, PostShape::Course).await;
    let flat_document = flat_app.get("/openapi.json", None).await.json();
    let course_document = course_app.get("/openapi.json", None).await.json();
    let flat_answers = real_answers(&flat_app).await;
    let course_answers = real_answers(&course_app).await;

    for (document, answers, shape) in [
        (&flat_document, &flat_answers, "flat"),
        (&course_document, &course_answers, "course"),
    ] {
        assert_references_resolve(document, document);
        assert_eq!(
            answers.iter().map(|answer| answer.2).collect::<Vec<_>>(),
            [201, 201, 200, 200, 200, 404, 403, 401],
            "{shape}"
        );
        for (method, path, status, body) in answers {
            let errors = misfits(document, method, path, *status, body);
            assert!(
                errors.is_empty(),
                "{shape}: {method} {path} {status} does not fit its document: {errors:?}\n{body}"
            );
        }
    }
    // Each document refuses the other shape's post answers: it describes one
    // shape, and the check can tell them apart.
    for (document, answers, shape) in [
        (&flat_document, &course_answers, "flat"),
        (&course_document, &flat_answers, "course"),
    ] {
        for (method, path, status, body) in answers.iter().take(5) {
            if *path == "/vote" {
                continue;
            }
            assert!(
                !misfits(document, method, path, *status, body).is_empty(),
                "the {shape} document accepts the other shape's {method} {path}: {body}"
            );
        }
    }
    let schemas = &course_document["components"]["schemas"];
    assert_eq!(schemas["PostOut"]["required"], json!(["Post", "votes"]));
    assert_eq!(
        schemas["Post"]["required"],
        json!([
            "title",
            "content",
            "published",
            "id",
            "created_at",
            "owner_id",
            "owner"
        ])
    );
    assert_eq!(
        declared(&course_document, "delete", "/posts/{id}", 204),
        None,
        "a 204 has no body"
    );
}

/// Real answers of the user routes, as (method, path template, status, body):
/// a sign-up (the caller's own account) and that user looked up by anyone.
async fn user_answers(app: &TestApp) -> Vec<(&'static str, &'static str, u16, Value)> {
    let signed_up = app.try_sign_up("carol@example.com", PASSWORD).await;
    let id = signed_up.json()["id"].as_i64().expect("an id");
    let shown = app.get(&format!("/users/{id}"), None).await;
    [("post", "/users", signed_up), ("get", "/users/{id}", shown)]
        .into_iter()
        .map(|(method, path, response)| (method, path, response.status.as_u16(), response.json()))
        .collect()
}

async fn the_user_answers_fit_the_document_of_the_shape_the_server_answers(backend: Backend) {
    let flat_app = spawn_in(backend.clone(), PostShape::Flat).await;
    let course_app = spawn_in(backend, PostShape::Course).await;
    let flat_document = flat_app.get("/openapi.json", None).await.json();
    let course_document = course_app.get("/openapi.json", None).await.json();
    let flat_answers = user_answers(&flat_app).await;
    let course_answers = user_answers(&course_app).await;

    for (document, answers, shape) in [
        (&flat_document, &flat_answers, "flat"),
        (&course_document, &course_answers, "course"),
    ] {
        assert_eq!(
            answers.iter().map(|answer| answer.2).collect::<Vec<_>>(),
            [201, 200],
            "{shape}"
        );
        for (method, path, status, body) in answers {
            let errors = misfits(document, method, path, *status, body);
            assert!(
                errors.is_empty(),
                "{shape}: {method} {path} {status} does not fit its document: {errors:?}\n{body}"
            );
        }
    }
    // A sign-up answers the email in both; a user looked up by anyone has
    // it in the course's shape alone, and each document tells them apart.
    assert_eq!(flat_answers[0].3["email"], "carol@example.com");
    assert_eq!(course_answers[0].3["email"], "carol@example.com");
    assert_eq!(flat_answers[1].3.get("email"), None);
    assert_eq!(course_answers[1].3["email"], "carol@example.com");
    for (document, other_answers, shape) in [
        (&flat_document, &course_answers, "flat"),
        (&course_document, &flat_answers, "course"),
    ] {
        let (method, path, status, body) = &other_answers[1];
        assert!(
            !misfits(document, method, path, *status, body).is_empty(),
            "the {shape} document accepts the other shape's {method} {path}: {body}"
        );
    }
    // The flat document names no email but on the caller's own account.
    let schemas = flat_document["components"]["schemas"]
        .as_object()
        .expect("schemas");
    let with_email: Vec<&str> = schemas
        .iter()
        .filter(|(_, schema)| schema["properties"].get("email").is_some())
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(with_email, ["UserCreate", "UserOut"]);
    assert_eq!(
        schemas["PostOut"]["properties"]["owner"]["$ref"],
        "#/components/schemas/PublicUser"
    );
    let user_out = json!({ "$ref": "#/components/schemas/UserOut" });
    assert_eq!(
        declared(&flat_document, "post", "/users", 201),
        Some(&user_out)
    );
    assert_eq!(
        declared(&course_document, "get", "/users/{id}", 200),
        Some(&user_out)
    );
}

pub fn tests() -> Vec<Trial> {
    backend_tests![
        creating_a_post_answers_the_courses_post_without_votes,
        getting_a_post_answers_the_courses_post_out_with_its_votes,
        listing_answers_each_post_as_the_courses_post_out_newest_first,
        updating_a_post_answers_the_courses_post_without_votes,
        deleting_voting_and_every_error_answer_as_in_the_flat_shape,
        the_flat_default_answers_as_before_but_without_the_owners_email,
        getting_a_user_shows_their_email_to_anyone_as_the_course_does,
        the_openapi_document_describes_the_answers_of_the_shape_the_server_answers,
        the_user_answers_fit_the_document_of_the_shape_the_server_answers,
    ]
}
