//! The post routes: listing (pagination, search, order), reading, creating,
//! replacing and deleting, each behind the bearer token.

use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Bound, TestApp, TestResponse, TestUser, Trial, alice_bob_and_her_post, backend_tests,
    brief, field_required, past,
};

/// A user as the API shows one to others (`GET /users/{id}`), the `owner`
/// of their posts.
async fn public_user(app: &TestApp, user: &TestUser) -> Value {
    let response = app.get(&format!("/users/{}", user.id), None).await;
    response.assert_status(StatusCode::OK);
    let shown = response.json();
    assert_utc_timestamp(&shown["created_at"]);
    assert_eq!(
        shown,
        json!({ "id": user.id, "created_at": shown["created_at"] }),
        "a user shown to others is exactly id and created_at"
    );
    shown
}

/// Asserts an RFC 3339 timestamp in UTC (`+00:00`) of about now.
#[track_caller]
fn assert_utc_timestamp(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("a timestamp string: {value}"));
    assert!(
        text.ends_with("+00:00"),
        "UTC with an explicit offset: {text}"
    );
    let at =
        DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("RFC 3339 ({e}): {text}"));
    let skew = (Utc::now() - at.with_timezone(&Utc)).num_seconds().abs();
    assert!(skew < 300, "{text} is now, in UTC");
}

/// Asserts `post` is exactly the flat Post shape holding these values.
#[track_caller]
fn assert_post(
    post: &Value,
    title: &str,
    content: &str,
    published: bool,
    owner: &Value,
    votes: i64,
) {
    assert!(post["id"].is_i64(), "an integer id: {post}");
    assert_utc_timestamp(&post["created_at"]);
    assert_eq!(
        post,
        &json!({
            "id": post["id"],
            "title": title,
            "content": content,
            "published": published,
            "created_at": post["created_at"],
            "owner_id": owner["id"],
            "owner": owner,
            "votes": votes,
        })
    );
}

/// `POST /posts` with `body`; panics unless the answer is 201.
async fn create(app: &TestApp, user: &TestUser, body: Value) -> Value {
    let response = app.send_post(user, body).await;
    response.assert_status(StatusCode::CREATED);
    response.json()
}

/// Lists, creates, reads, replaces and deletes (post `id`) with `token`;
/// each answer named by its route.
async fn send_to_each_post_route(
    app: &TestApp,
    id: i64,
    token: Option<&str>,
) -> Vec<(&'static str, TestResponse)> {
    let body = json!({ "title": "changed", "content": "changed" });
    let path = format!("/posts/{id}");
    vec![
        ("GET /posts", app.get("/posts", token).await),
        ("POST /posts", app.post("/posts", body.clone(), token).await),
        ("GET /posts/{id}", app.get(&path, token).await),
        ("PUT /posts/{id}", app.put(&path, body, token).await),
        ("DELETE /posts/{id}", app.delete(&path, token).await),
    ]
}

/// Asserts every answer is the bearer 401 and that `user` still lists
/// `post` alone: nothing created, changed or deleted.
async fn assert_each_unauthorized_and_nothing_changed(
    app: &TestApp,
    user: &TestUser,
    post: Value,
    responses: &[(&str, TestResponse)],
) {
    for (route, response) in responses {
        response.assert_status_for(route, StatusCode::UNAUTHORIZED);
        response.assert_unauthorized();
    }
    assert_eq!(
        list(app, user, "").await,
        vec![post],
        "nothing created, changed or deleted"
    );
}

/// A `PostIn` body that names all three fields.
fn post_body(title: &str, content: &str, published: bool) -> Value {
    json!({ "title": title, "content": content, "published": published })
}

/// Asserts the 403 someone other than the owner gets, and that `post` is
/// stored as it was.
async fn assert_refused_as_not_the_owner(
    app: &TestApp,
    owner: &TestUser,
    response: &TestResponse,
    post: &Value,
) {
    response.assert_error(
        StatusCode::FORBIDDEN,
        json!("Not authorized to perform requested action"),
    );
    assert_eq!(
        &get_post(app, owner, id_of(post)).await,
        post,
        "the post is unchanged"
    );
}

/// Creates posts with these titles, oldest first; returns their ids.
async fn create_titles(app: &TestApp, user: &TestUser, titles: &[&str]) -> Vec<i64> {
    let mut ids = Vec::new();
    for title in titles {
        ids.push(id_of(&app.create_post(user, title).await));
    }
    ids
}

/// Creates posts "post 1" to "post {count}", oldest first; returns their ids.
async fn create_numbered(app: &TestApp, user: &TestUser, count: usize) -> Vec<i64> {
    let titles: Vec<String> = (1..=count).map(|n| format!("post {n}")).collect();
    let titles: Vec<&str> = titles.iter().map(String::as_str).collect();
    create_titles(app, user, &titles).await
}

/// Alice and a post of hers, and an id no post has: the app, Alice, the
/// post and the missing id.
async fn a_post_and_a_missing_id(backend: Backend) -> (TestApp, TestUser, Value, i64) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let post = app.create_post(&alice, "exists").await;
    let missing = id_of(&post) + 1000;
    (app, alice, post, missing)
}

/// Asserts the 404 a post route gives for `id`, which no post has: "post
/// with id: {id} {says}".
#[track_caller]
fn assert_no_post(response: &TestResponse, id: i64, says: &str) {
    response.assert_error_for(
        format!("post {id}"),
        StatusCode::NOT_FOUND,
        json!(format!("post with id: {id} {says}")),
    );
}

fn id_of(post: &Value) -> i64 {
    post["id"].as_i64().expect("a post id")
}

/// `GET /posts?{query}`; panics unless the answer is 200 with a list.
async fn list(app: &TestApp, user: &TestUser, query: &str) -> Vec<Value> {
    let response = app.get(&format!("/posts?{query}"), user.token()).await;
    response.assert_status_for(format!("GET /posts?{query}"), StatusCode::OK);
    response.json().as_array().expect("a list of posts").clone()
}

async fn listed_ids(app: &TestApp, user: &TestUser, query: &str) -> Vec<i64> {
    list(app, user, query).await.iter().map(id_of).collect()
}

/// The titles `search` finds, newest first.
async fn search(app: &TestApp, user: &TestUser, term: &str) -> Vec<String> {
    let query =
        serde_urlencoded::to_string([("search", term), ("limit", "100")]).expect("a query string");
    list(app, user, &query)
        .await
        .iter()
        .map(|post| post["title"].as_str().expect("a title").to_owned())
        .collect()
}

/// `GET /posts/{id}`; panics unless the answer is 200.
async fn get_post(app: &TestApp, user: &TestUser, id: i64) -> Value {
    let response = app.get(&format!("/posts/{id}"), user.token()).await;
    response.assert_status(StatusCode::OK);
    response.json()
}

async fn listing_four_posts_of_two_users_shows_each_in_the_flat_post_shape(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let alice_shown = public_user(&app, &alice).await;
    let bob_shown = public_user(&app, &bob).await;
    create(&app, &alice, json!({ "title": "first", "content": "one" })).await;
    create(&app, &bob, post_body("second", "two", true)).await;
    create(&app, &alice, post_body("third", "three", false)).await;
    create(&app, &bob, json!({ "title": "fourth", "content": "four" })).await;

    let response = app.get("/posts", bob.token()).await;

    response.assert_status(StatusCode::OK);
    assert!(
        !response.text().to_lowercase().contains("password"),
        "{}",
        response.text()
    );
    let posts = response.json();
    let posts = posts.as_array().expect("a list");
    assert_eq!(posts.len(), 4, "{posts:?}");
    assert_post(&posts[0], "fourth", "four", true, &bob_shown, 0);
    assert_post(&posts[1], "third", "three", false, &alice_shown, 0);
    assert_post(&posts[2], "second", "two", true, &bob_shown, 0);
    assert_post(&posts[3], "first", "one", true, &alice_shown, 0);
}

async fn every_post_route_is_401_without_a_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let post = app.create_post(&alice, "kept").await;
    let body = json!({ "title": "changed", "content": "changed" });

    let mut responses = send_to_each_post_route(&app, id_of(&post), None).await;
    responses.extend([
        ("GET /posts/", app.get("/posts/", None).await),
        (
            "GET /posts?limit=abc",
            app.get("/posts?limit=abc", None).await,
        ),
        ("POST /posts/", app.post("/posts/", body, None).await),
        (
            "POST /posts (invalid body)",
            app.post("/posts", json!({}), None).await,
        ),
        ("GET /posts/{missing}", app.get("/posts/999999", None).await),
        ("GET /posts/abc", app.get("/posts/abc", None).await),
    ]);

    assert_each_unauthorized_and_nothing_changed(&app, &alice, post, &responses).await;
}

async fn every_post_route_is_401_with_a_token_that_is_not_a_valid_jwt(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let post = app.create_post(&alice, "kept").await;

    let responses = send_to_each_post_route(&app, id_of(&post), Some("not.a.jwt")).await;

    assert_each_unauthorized_and_nothing_changed(&app, &alice, post, &responses).await;
}

async fn getting_a_post_returns_it_in_the_flat_post_shape_to_any_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let alice_shown = public_user(&app, &alice).await;
    let created = create(&app, &alice, post_body("mine", "words", false)).await;

    let response = app
        .get(&format!("/posts/{}", id_of(&created)), bob.token())
        .await;

    response.assert_status(StatusCode::OK);
    assert_post(&response.json(), "mine", "words", false, &alice_shown, 0);
    assert_eq!(response.json(), created, "the same post as created");
}

async fn getting_a_missing_post_is_404_was_not_found(backend: Backend) {
    let (app, alice, _, missing) = a_post_and_a_missing_id(backend).await;

    let response = app.get(&format!("/posts/{missing}"), alice.token()).await;
    let negative = app.get("/posts/-1", alice.token()).await;

    assert_no_post(&response, missing, "was not found");
    assert_no_post(&negative, -1, "was not found");
}

async fn a_non_integer_post_id_is_422_at_path_id_on_every_method(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let body = json!({ "title": "t", "content": "c" });

    let responses = [
        ("GET", app.get("/posts/abc", alice.token()).await),
        ("PUT", app.put("/posts/abc", body, alice.token()).await),
        ("DELETE", app.delete("/posts/abc", alice.token()).await),
        ("GET 1.5", app.get("/posts/1.5", alice.token()).await),
    ];

    for (method, response) in &responses {
        response.assert_error_for(method, StatusCode::UNPROCESSABLE_ENTITY, json!([
                { "loc": ["path", "id"], "msg": "value is not a valid integer", "type": "type_error.integer" }
            ]));
    }
}

/// Alice creates a post with `body`: a 201 with exactly the flat post of
/// these values, stored as answered.
async fn assert_creates(
    backend: Backend,
    body: Value,
    title: &str,
    content: &str,
    published: bool,
) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let alice_shown = public_user(&app, &alice).await;

    let created = create(&app, &alice, body).await;

    assert_post(&created, title, content, published, &alice_shown, 0);
    assert_eq!(
        get_post(&app, &alice, id_of(&created)).await,
        created,
        "stored as answered"
    );
}

async fn creating_a_published_post_is_201_with_the_post(backend: Backend) {
    let body = post_body("top beaches", "in florida", true);

    assert_creates(backend, body, "top beaches", "in florida", true).await;
}

async fn creating_an_unpublished_post_keeps_published_false(backend: Backend) {
    let body = post_body("draft", "not yet", false);

    assert_creates(backend, body, "draft", "not yet", false).await;
}

async fn creating_a_post_without_published_defaults_it_to_true(backend: Backend) {
    let body = json!({ "title": "plain", "content": "text" });

    assert_creates(backend, body, "plain", "text", true).await;
}

async fn creating_ignores_id_owner_votes_and_created_at_sent_by_the_client(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let alice_shown = public_user(&app, &alice).await;

    let created = create(
        &app,
        &alice,
        json!({
            "title": "honest",
            "content": "post",
            "id": 4242,
            "owner_id": bob.id,
            "owner": { "id": bob.id, "email": bob.email },
            "votes": 99,
            "created_at": "2000-01-01T00:00:00+00:00",
        }),
    )
    .await;
    assert_post(&created, "honest", "post", true, &alice_shown, 0);
    assert_ne!(created["id"], json!(4242));
}

async fn titles_and_content_at_their_limits_are_accepted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let alice_shown = public_user(&app, &alice).await;
    let longest_title = "t".repeat(300);
    // Characters, not bytes: 300 two-byte characters are 600 bytes.
    let longest_accented_title = "é".repeat(300);
    let longest_content = "c".repeat(100_000);

    let one_char = app
        .send_post(&alice, json!({ "title": "x", "content": "" }))
        .await;
    let long_title = app
        .send_post(&alice, json!({ "title": longest_title, "content": "c" }))
        .await;
    let accented = app
        .send_post(
            &alice,
            json!({ "title": longest_accented_title, "content": "c" }),
        )
        .await;
    let long_content = app
        .send_post(&alice, json!({ "title": "t", "content": longest_content }))
        .await;

    for response in [&one_char, &long_title, &accented, &long_content] {
        response.assert_status(StatusCode::CREATED);
    }
    assert_post(&one_char.json(), "x", "", true, &alice_shown, 0);
    assert_post(
        &long_title.json(),
        &longest_title,
        "c",
        true,
        &alice_shown,
        0,
    );
    assert_post(
        &accented.json(),
        &longest_accented_title,
        "c",
        true,
        &alice_shown,
        0,
    );
    assert_post(
        &long_content.json(),
        "t",
        &longest_content,
        true,
        &alice_shown,
        0,
    );
    let stored = get_post(&app, &alice, id_of(&long_content.json())).await;
    assert_eq!(stored["content"].as_str().map(str::len), Some(100_000));
}

/// Alice sends each `(body, errors)` to `POST /posts`: a 422 with exactly
/// those errors. Nothing is stored.
async fn assert_each_post_refused(
    backend: Backend,
    cases: impl IntoIterator<Item = (Value, Value)>,
) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;

    for (body, errors) in cases {
        let response = app.send_post(&alice, body.clone()).await;

        response.assert_error_for(brief(&body), StatusCode::UNPROCESSABLE_ENTITY, errors);
    }
    assert_eq!(list(&app, &alice, "").await, Vec::<Value>::new());
}

async fn a_blank_title_is_422_and_nothing_is_stored(backend: Backend) {
    let blank = json!([
        { "loc": ["body", "title"], "msg": "title must not be blank", "type": "value_error.blank" }
    ]);

    assert_each_post_refused(
        backend,
        [" ", "   ", "\t", "\n \r\n", "\u{3000}"]
            .map(|title| (json!({ "title": title, "content": "c" }), blank.clone())),
    )
    .await;
}

async fn an_empty_title_is_422_too_short(backend: Backend) {
    assert_each_post_refused(
        backend,
        [(
            json!({ "title": "", "content": "c" }),
            json!([past(["body", "title"], Bound::MinLength(1))]),
        )],
    )
    .await;
}

async fn a_title_of_301_characters_is_422_too_long(backend: Backend) {
    assert_each_post_refused(
        backend,
        ["t", "é"].map(|letter| {
            (
                json!({ "title": letter.repeat(301), "content": "c" }),
                json!([past(["body", "title"], Bound::MaxLength(300))]),
            )
        }),
    )
    .await;
}

async fn content_over_100000_characters_is_422_too_long(backend: Backend) {
    assert_each_post_refused(
        backend,
        [(
            json!({ "title": "t", "content": "c".repeat(100_001) }),
            json!([past(["body", "content"], Bound::MaxLength(100_000))]),
        )],
    )
    .await;
}

async fn fields_of_the_wrong_type_are_422_at_each_field(backend: Backend) {
    let not_a_string = |field: &str| json!({ "loc": ["body", field], "msg": "str type expected", "type": "type_error.str" });
    let not_allowed = |field: &str| json!({ "loc": ["body", field], "msg": "none is not an allowed value", "type": "type_error.none.not_allowed" });
    let not_a_bool = json!({
        "loc": ["body", "published"], "msg": "value could not be parsed to a boolean", "type": "type_error.bool"
    });
    let cases = [
        (
            json!({ "title": ["a"], "content": "c" }),
            json!([not_a_string("title")]),
        ),
        (
            json!({ "title": "t", "content": { "a": 1 } }),
            json!([not_a_string("content")]),
        ),
        (
            json!({ "title": "t", "content": "c", "published": "maybe" }),
            json!([not_a_bool]),
        ),
        (
            json!({ "title": "t", "content": "c", "published": [true] }),
            json!([not_a_bool]),
        ),
        (
            json!({ "title": null, "content": "c" }),
            json!([not_allowed("title")]),
        ),
        (
            json!({ "title": "t", "content": "c", "published": null }),
            json!([not_allowed("published")]),
        ),
        (
            json!({ "title": 1, "content": false, "published": "x" }),
            json!([not_a_string("title"), not_a_string("content"), not_a_bool]),
        ),
    ];

    assert_each_post_refused(backend, cases).await;
}

async fn missing_fields_are_422_each_reported_as_field_required(backend: Backend) {
    let cases = [
        (
            json!({}),
            json!([field_required("title"), field_required("content")]),
        ),
        (
            json!({ "published": true }),
            json!([field_required("title"), field_required("content")]),
        ),
        (json!({ "content": "c" }), json!([field_required("title")])),
        (json!({ "title": "t" }), json!([field_required("content")])),
    ];

    assert_each_post_refused(backend, cases).await;
}

async fn a_malformed_or_non_object_body_is_422_at_the_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;

    app.assert_bad_json_refused("/posts", &alice, "{\"title\": \"t\",", json!(["t", "c"]))
        .await;
    let empty = app.post_json_text("/posts", alice.token(), "").await;

    // As FastAPI: an empty body is a missing one.
    assert_eq!(
        empty.json(),
        json!({ "detail": [{ "loc": ["body"], "msg": "field required", "type": "value_error.missing" }] })
    );
    assert_eq!(list(&app, &alice, "").await, Vec::<Value>::new());
}

async fn a_body_is_read_as_json_only_when_its_content_type_says_json_or_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let body = r#"{"title": "t", "content": "c"}"#;
    let send = |content_type: Option<&'static str>| {
        let mut request = awc::Client::new().post(format!("{}/posts", app.address));
        request = request.insert_header(("authorization", format!("Bearer {}", alice.token)));
        if let Some(content_type) = content_type {
            request = request.insert_header(("content-type", content_type));
        }
        request.send_body(body)
    };

    for content_type in [
        None,
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("application/vnd.api+json"),
    ] {
        let response = send(content_type).await.expect("a response");
        assert_eq!(response.status(), StatusCode::CREATED, "{content_type:?}");
    }
    // curl's `-d` default, and other labels: FastAPI keeps such a body as
    // bytes, which is no object.
    for content_type in ["application/x-www-form-urlencoded", "text/plain"] {
        let mut response = send(Some(content_type)).await.expect("a response");
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{content_type}"
        );
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(
            body,
            json!({ "detail": [{ "loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict" }] }),
            "{content_type}"
        );
    }
    assert_eq!(list(&app, &alice, "").await.len(), 4);
}

async fn the_trailing_slash_works_for_listing_and_creating_without_a_redirect(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let alice_shown = public_user(&app, &alice).await;

    let created = app
        .post(
            "/posts/",
            json!({ "title": "slash", "content": "ed" }),
            alice.token(),
        )
        .await;
    let listed = app.get("/posts/", alice.token()).await;
    let listed_with_query = app.get("/posts/?limit=1&search=SLA", alice.token()).await;

    created.assert_status(StatusCode::CREATED);
    assert_eq!(created.header("location"), None);
    assert_post(&created.json(), "slash", "ed", true, &alice_shown, 0);
    for response in [&listed, &listed_with_query] {
        response.assert_status(StatusCode::OK);
        assert_eq!(response.header("location"), None);
        assert_eq!(response.json(), json!([created.json()]));
    }
}

async fn deleting_your_own_post_is_204_with_an_empty_body_and_then_it_is_gone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let kept = app.create_post(&alice, "kept").await;
    let doomed = app.create_post(&alice, "doomed").await;
    let id = id_of(&doomed);

    let response = app.delete(&format!("/posts/{id}"), alice.token()).await;

    response.assert_status(StatusCode::NO_CONTENT);
    assert!(
        response.body.is_empty(),
        "an empty body: {:?}",
        response.text()
    );
    let get = app.get(&format!("/posts/{id}"), alice.token()).await;
    assert_no_post(&get, id, "was not found");
    let again = app.delete(&format!("/posts/{id}"), alice.token()).await;
    assert_no_post(&again, id, "does not exist");
    assert_eq!(list(&app, &alice, "").await, vec![kept]);
}

async fn deleting_someone_elses_post_is_403_and_changes_nothing(backend: Backend) {
    let (app, alice, bob, post) = alice_bob_and_her_post(backend, "alice's").await;
    let id = id_of(&post);

    let response = app.delete(&format!("/posts/{id}"), bob.token()).await;

    assert_refused_as_not_the_owner(&app, &alice, &response, &post).await;
    assert_eq!(list(&app, &bob, "").await, vec![post]);
}

async fn deleting_a_missing_post_is_404_does_not_exist(backend: Backend) {
    let (app, alice, post, missing) = a_post_and_a_missing_id(backend).await;

    let response = app
        .delete(&format!("/posts/{missing}"), alice.token())
        .await;

    assert_no_post(&response, missing, "does not exist");
    assert_eq!(list(&app, &alice, "").await, vec![post]);
}

/// Alice creates a post with `before`, then replaces it with `after`: a
/// 200 with exactly the flat post of these values, keeping its id and
/// created_at, stored as answered and listed once.
async fn assert_replaces(
    backend: Backend,
    before: Value,
    after: Value,
    (title, content, published): (&str, &str, bool),
) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let alice_shown = public_user(&app, &alice).await;
    let post = create(&app, &alice, before).await;
    let id = id_of(&post);

    let response = app.send_put(&alice, id, after).await;

    response.assert_status(StatusCode::OK);
    let updated = response.json();
    assert_post(&updated, title, content, published, &alice_shown, 0);
    assert_eq!(updated["id"], post["id"]);
    assert_eq!(updated["created_at"], post["created_at"]);
    assert_eq!(
        get_post(&app, &alice, id).await,
        updated,
        "stored as answered"
    );
    assert_eq!(
        list(&app, &alice, "").await,
        vec![updated],
        "replaced, not added"
    );
}

async fn updating_your_own_post_replaces_it_and_keeps_its_id_owner_and_created_at(
    backend: Backend,
) {
    assert_replaces(
        backend,
        post_body("old", "old words", true),
        post_body("new", "new words", false),
        ("new", "new words", false),
    )
    .await;
}

async fn updating_without_published_sets_it_back_to_true(backend: Backend) {
    assert_replaces(
        backend,
        post_body("draft", "c", false),
        json!({ "title": "draft 2", "content": "c2" }),
        ("draft 2", "c2", true),
    )
    .await;
}

async fn updating_cannot_change_the_owner_or_the_id(backend: Backend) {
    let (app, alice, bob, post) = alice_bob_and_her_post(backend, "mine").await;
    let alice_shown = public_user(&app, &alice).await;
    let id = id_of(&post);

    let sneaky = json!({
        "title": "still mine", "content": "c", "owner_id": bob.id, "id": id + 1, "votes": 7,
    });
    let response = app.send_put(&alice, id, sneaky).await;

    response.assert_status(StatusCode::OK);
    assert_post(&response.json(), "still mine", "c", true, &alice_shown, 0);
    assert_eq!(response.json()["id"], json!(id));
    let forbidden = app
        .send_put(&bob, id, json!({ "title": "bob's", "content": "c" }))
        .await;
    forbidden.assert_status_for("bob still may not", StatusCode::FORBIDDEN);
}

async fn updating_someone_elses_post_is_403_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let post = create(&app, &alice, post_body("alice's", "hers", false)).await;
    let id = id_of(&post);

    let response = app
        .send_put(&bob, id, post_body("bob's now", "his", true))
        .await;

    assert_refused_as_not_the_owner(&app, &alice, &response, &post).await;
}

async fn updating_a_missing_post_is_404_does_not_exist(backend: Backend) {
    let (app, alice, post, missing) = a_post_and_a_missing_id(backend).await;

    let response = app
        .send_put(&alice, missing, json!({ "title": "t", "content": "c" }))
        .await;

    assert_no_post(&response, missing, "does not exist");
    assert_eq!(list(&app, &alice, "").await, vec![post], "nothing created");
}

async fn an_invalid_update_is_422_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let post = app.create_post(&alice, "original").await;
    let id = id_of(&post);

    let cases = [
        (
            json!({ "title": "  ", "content": "c" }),
            "title",
            "value_error.blank",
        ),
        (
            json!({ "title": "t".repeat(301), "content": "c" }),
            "title",
            "value_error.any_str.max_length",
        ),
        (
            json!({ "title": "t", "content": "c".repeat(100_001) }),
            "content",
            "value_error.any_str.max_length",
        ),
        (
            json!({ "title": "only a title" }),
            "content",
            "value_error.missing",
        ),
        (
            json!({ "title": "t", "content": "c", "published": "no" }),
            "published",
            "type_error.bool",
        ),
    ];

    for (body, field, kind) in cases {
        let response = app.send_put(&alice, id, body.clone()).await;

        let what = brief(&body);
        response.assert_validation_error_for(&what, &["body", field]);
        assert_eq!(response.detail()[0]["type"], kind, "{what}");
    }
    assert_eq!(
        get_post(&app, &alice, id).await,
        post,
        "the post is unchanged"
    );
}

async fn posts_are_listed_newest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let first = id_of(&app.create_post(&alice, "first").await);
    let second = id_of(&app.create_post(&bob, "second").await);
    let third = id_of(&app.create_post(&alice, "third").await);

    let ids = listed_ids(&app, &bob, "").await;

    assert_eq!(ids, vec![third, second, first]);
}

async fn updating_a_post_does_not_move_it_in_the_listing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let ids = create_titles(&app, &alice, &["a", "b", "c"]).await;

    let response = app
        .put(
            &format!("/posts/{}", ids[0]),
            json!({ "title": "a, edited", "content": "c" }),
            alice.token(),
        )
        .await;

    response.assert_status(StatusCode::OK);
    assert_eq!(
        listed_ids(&app, &alice, "").await,
        vec![ids[2], ids[1], ids[0]]
    );
}

async fn the_listing_shows_ten_posts_by_default(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let ids = create_numbered(&app, &alice, 12).await;

    let listed = listed_ids(&app, &alice, "").await;

    let newest_ten: Vec<i64> = ids.iter().rev().take(10).copied().collect();
    assert_eq!(listed, newest_ten);
}

async fn limit_and_skip_page_through_the_posts_newest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let ids = create_titles(&app, &alice, &["1", "2", "3", "4", "5"]).await;

    let first_page = listed_ids(&app, &alice, "limit=2").await;
    let second_page = listed_ids(&app, &alice, "limit=2&skip=2").await;
    let last_page = listed_ids(&app, &alice, "skip=4&limit=2").await;
    let skip_only = listed_ids(&app, &alice, "skip=3").await;

    assert_eq!(first_page, vec![ids[4], ids[3]]);
    assert_eq!(second_page, vec![ids[2], ids[1]]);
    assert_eq!(last_page, vec![ids[0]]);
    assert_eq!(skip_only, vec![ids[1], ids[0]]);
}

async fn limit_zero_gives_an_empty_list(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    create_titles(&app, &alice, &["a", "b"]).await;

    let response = app.get("/posts?limit=0", alice.token()).await;

    response.assert_status(StatusCode::OK);
    assert_eq!(response.json(), json!([]));
}

async fn limit_100_is_accepted_and_returns_every_post_up_to_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let ids = create_numbered(&app, &alice, 12).await;

    let listed = listed_ids(&app, &alice, "limit=100").await;

    assert_eq!(listed, ids.iter().rev().copied().collect::<Vec<_>>());
}

async fn limit_101_is_422_at_query_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;

    let response = app.get("/posts?limit=101", alice.token()).await;

    response.assert_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!([past(["query", "limit"], Bound::Le(100))]),
    );
}

async fn a_negative_limit_or_skip_is_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let too_small = |field| past(["query", field], Bound::Ge(0));

    let skip = app.get("/posts?skip=-1", alice.token()).await;
    let limit = app.get("/posts?limit=-1", alice.token()).await;

    skip.assert_error(StatusCode::UNPROCESSABLE_ENTITY, json!([too_small("skip")]));
    limit.assert_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!([too_small("limit")]),
    );
}

async fn a_non_integer_limit_or_skip_is_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let not_an_integer = |field: &str| json!({ "loc": ["query", field], "msg": "value is not a valid integer", "type": "type_error.integer" });
    let cases = [
        ("limit=abc", json!([not_an_integer("limit")])),
        ("limit=1.5", json!([not_an_integer("limit")])),
        ("limit=", json!([not_an_integer("limit")])),
        ("skip=abc", json!([not_an_integer("skip")])),
        (
            "limit=abc&skip=xyz",
            json!([not_an_integer("limit"), not_an_integer("skip")]),
        ),
        (
            "limit=99999999999999999999",
            json!([not_an_integer("limit")]),
        ),
    ];

    for (query, errors) in cases {
        let response = app.get(&format!("/posts?{query}"), alice.token()).await;

        response.assert_error_for(query, StatusCode::UNPROCESSABLE_ENTITY, errors);
    }
}

async fn a_bad_limit_and_a_bad_skip_are_reported_together(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;

    let response = app.get("/posts?limit=101&skip=-1", alice.token()).await;

    response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    response.assert_validation_error(&["query", "limit"]);
    response.assert_validation_error(&["query", "skip"]);
    assert_eq!(response.detail().as_array().map(Vec::len), Some(2));
}

async fn skipping_past_the_end_gives_an_empty_list(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    create_titles(&app, &alice, &["a", "b", "c"]).await;

    let at_end = app.get("/posts?skip=3", alice.token()).await;
    let far_past = app
        .get("/posts?skip=1000000&limit=100", alice.token())
        .await;

    for response in [&at_end, &far_past] {
        response.assert_status(StatusCode::OK);
        assert_eq!(response.json(), json!([]));
    }
}

async fn search_folds_case_the_same_way_on_both_sides(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    app.create_post(&alice, "İstanbul trip").await;

    let listed = app.get("/posts?search=%C4%B0STANBUL", alice.token()).await;

    listed.assert_status(StatusCode::OK);
    let titles: Vec<Value> = listed
        .json()
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["title"].clone())
        .collect();
    assert_eq!(titles, vec![json!("İstanbul trip")]);
}

async fn nul_characters_are_a_422_in_bodies_and_in_search(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;

    let created = app
        .send_post(&alice, json!({ "title": "a\u{0}b", "content": "c" }))
        .await;
    let searched = app.get("/posts?search=%00", alice.token()).await;

    created.assert_validation_error(&["body", "title"]);
    searched.assert_validation_error(&["query", "search"]);
}

async fn a_post_id_beyond_the_32_bit_range_is_a_404(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;

    let got = app.get("/posts/99999999999", alice.token()).await;
    let deleted = app.delete("/posts/99999999999", alice.token()).await;

    assert_no_post(&got, 99999999999, "was not found");
    assert_no_post(&deleted, 99999999999, "does not exist");
}

/// Alice writes posts with `titles`, oldest first; then each `(term,
/// titles)` search finds exactly those titles, newest first.
async fn assert_searches_find(
    backend: Backend,
    titles: &[&str],
    searches: &[(&str, &[&str])],
) -> (TestApp, TestUser) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    create_titles(&app, &alice, titles).await;

    for (term, found) in searches {
        assert_eq!(search(&app, &alice, term).await, *found, "search {term:?}");
    }
    (app, alice)
}

async fn search_matches_a_case_insensitive_substring_of_the_title(backend: Backend) {
    assert_searches_find(
        backend,
        &["Hello World", "say HELLO", "help wanted", "world news"],
        &[
            ("hello", &["say HELLO", "Hello World"]),
            ("hElLo", &["say HELLO", "Hello World"]),
            ("WORLD", &["world news", "Hello World"]),
            ("o w", &["Hello World"]),
            ("hel", &["help wanted", "say HELLO", "Hello World"]),
            ("goodbye", &[]),
        ],
    )
    .await;
}

async fn search_is_case_insensitive_for_non_ascii_letters_too(backend: Backend) {
    assert_searches_find(
        backend,
        &["Café Crème", "CAFÉ NOIR", "cafe latte"],
        &[
            ("café", &["CAFÉ NOIR", "Café Crème"]),
            ("CAFÉ", &["CAFÉ NOIR", "Café Crème"]),
            ("crème", &["Café Crème"]),
        ],
    )
    .await;
}

async fn search_looks_at_titles_only_not_content(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    for (title, content) in [
        ("about cats", "dogs are fine too"),
        ("about dogs", "no cats here"),
    ] {
        create(&app, &alice, json!({ "title": title, "content": content })).await;
    }

    assert_eq!(search(&app, &alice, "cats").await, ["about cats"]);
    assert_eq!(search(&app, &alice, "fine").await, Vec::<String>::new());
}

async fn an_empty_search_lists_every_post(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let ids = create_titles(&app, &alice, &["a", "b", "c"]).await;

    let listed = listed_ids(&app, &alice, "search=").await;

    assert_eq!(listed, vec![ids[2], ids[1], ids[0]]);
}

async fn a_percent_sign_in_search_matches_only_itself(backend: Backend) {
    assert_searches_find(
        backend,
        &["100% sure", "1000 sure", "10 sure"],
        &[
            ("100%", &["100% sure"]),
            ("%", &["100% sure"]),
            ("0% s", &["100% sure"]),
            ("1%0", &[]),
            ("%%", &[]),
        ],
    )
    .await;
}

async fn an_underscore_in_search_matches_only_itself(backend: Backend) {
    assert_searches_find(
        backend,
        &["a_b", "axb", "ab"],
        &[("a_b", &["a_b"]), ("_", &["a_b"]), ("a__", &[])],
    )
    .await;
}

async fn a_backslash_in_search_matches_only_itself(backend: Backend) {
    assert_searches_find(
        backend,
        &["back\\slash", "backslash", "a_b", "100% sure"],
        &[
            ("\\", &["back\\slash"]),
            ("k\\s", &["back\\slash"]),
            ("back\\slash", &["back\\slash"]),
            // An escape character of the client's own must not escape the next one.
            ("\\_", &[]),
            ("\\%", &[]),
            ("\\\\", &[]),
        ],
    )
    .await;
}

async fn quotes_in_search_match_only_themselves(backend: Backend) {
    let (app, alice) = assert_searches_find(
        backend,
        &["it's", "its", "say \"hi\"", "say hi"],
        &[
            ("it's", &["it's"]),
            ("'", &["it's"]),
            ("''", &[]),
            ("\"hi\"", &["say \"hi\""]),
            ("' OR '1'='1", &[]),
        ],
    )
    .await;

    assert_eq!(
        listed_ids(&app, &alice, "limit=100").await.len(),
        4,
        "every post survives"
    );
}

async fn search_is_applied_before_limit_and_skip(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let ids = create_titles(
        &app,
        &alice,
        &["match 1", "other", "match 2", "other", "match 3"],
    )
    .await;

    let first = listed_ids(&app, &alice, "search=match&limit=2").await;
    let second = listed_ids(&app, &alice, "search=match&limit=2&skip=2").await;

    assert_eq!(first, vec![ids[4], ids[2]]);
    assert_eq!(second, vec![ids[0]]);
}

async fn forty_eight_posts_created_in_parallel_by_several_users_are_all_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut users = Vec::new();
    for n in 0..4 {
        users.push(app.user(&format!("writer{n}@example.com")).await);
    }

    let responses = join_all(users.iter().flat_map(|user| {
        let app = &app;
        (0..12).map(move |n| {
            app.post(
                "/posts",
                json!({ "title": format!("{} #{n}", user.email), "content": "c" }),
                user.token(),
            )
        })
    }))
    .await;

    for response in &responses {
        response.assert_status(StatusCode::CREATED);
    }
    let posts = list(&app, &users[0], "limit=100").await;
    assert_eq!(posts.len(), 48);
    let mut ids: Vec<i64> = posts.iter().map(id_of).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 48, "distinct ids");
    let mut created: Vec<i64> = responses
        .iter()
        .map(|response| id_of(&response.json()))
        .collect();
    created.sort_unstable();
    assert_eq!(ids, created, "every created post is listed");
    for user in &users {
        let own = posts
            .iter()
            .filter(|post| post["owner_id"] == json!(user.id))
            .count();
        assert_eq!(own, 12, "{}", user.email);
    }
    for pair in posts.windows(2) {
        let newer = (pair[0]["created_at"].as_str(), id_of(&pair[0]));
        let older = (pair[1]["created_at"].as_str(), id_of(&pair[1]));
        assert!(newer > older, "newest first: {newer:?} before {older:?}");
    }
}

pub fn tests() -> Vec<Trial> {
    backend_tests![
        listing_four_posts_of_two_users_shows_each_in_the_flat_post_shape,
        every_post_route_is_401_without_a_token,
        every_post_route_is_401_with_a_token_that_is_not_a_valid_jwt,
        getting_a_post_returns_it_in_the_flat_post_shape_to_any_user,
        getting_a_missing_post_is_404_was_not_found,
        a_non_integer_post_id_is_422_at_path_id_on_every_method,
        creating_a_published_post_is_201_with_the_post,
        creating_an_unpublished_post_keeps_published_false,
        creating_a_post_without_published_defaults_it_to_true,
        creating_ignores_id_owner_votes_and_created_at_sent_by_the_client,
        titles_and_content_at_their_limits_are_accepted,
        a_blank_title_is_422_and_nothing_is_stored,
        an_empty_title_is_422_too_short,
        a_title_of_301_characters_is_422_too_long,
        content_over_100000_characters_is_422_too_long,
        fields_of_the_wrong_type_are_422_at_each_field,
        missing_fields_are_422_each_reported_as_field_required,
        a_malformed_or_non_object_body_is_422_at_the_body,
        a_body_is_read_as_json_only_when_its_content_type_says_json_or_nothing,
        the_trailing_slash_works_for_listing_and_creating_without_a_redirect,
        deleting_your_own_post_is_204_with_an_empty_body_and_then_it_is_gone,
        deleting_someone_elses_post_is_403_and_changes_nothing,
        deleting_a_missing_post_is_404_does_not_exist,
        updating_your_own_post_replaces_it_and_keeps_its_id_owner_and_created_at,
        updating_without_published_sets_it_back_to_true,
        updating_cannot_change_the_owner_or_the_id,
        updating_someone_elses_post_is_403_and_changes_nothing,
        updating_a_missing_post_is_404_does_not_exist,
        an_invalid_update_is_422_and_changes_nothing,
        posts_are_listed_newest_first,
        updating_a_post_does_not_move_it_in_the_listing,
        the_listing_shows_ten_posts_by_default,
        limit_and_skip_page_through_the_posts_newest_first,
        limit_zero_gives_an_empty_list,
        limit_100_is_accepted_and_returns_every_post_up_to_it,
        limit_101_is_422_at_query_limit,
        a_negative_limit_or_skip_is_422,
        a_non_integer_limit_or_skip_is_422,
        a_bad_limit_and_a_bad_skip_are_reported_together,
        skipping_past_the_end_gives_an_empty_list,
        search_folds_case_the_same_way_on_both_sides,
        nul_characters_are_a_422_in_bodies_and_in_search,
        a_post_id_beyond_the_32_bit_range_is_a_404,
        search_matches_a_case_insensitive_substring_of_the_title,
        search_is_case_insensitive_for_non_ascii_letters_too,
        search_looks_at_titles_only_not_content,
        an_empty_search_lists_every_post,
        a_percent_sign_in_search_matches_only_itself,
        an_underscore_in_search_matches_only_itself,
        a_backslash_in_search_matches_only_itself,
        quotes_in_search_match_only_themselves,
        search_is_applied_before_limit_and_skip,
        forty_eight_posts_created_in_parallel_by_several_users_are_all_stored,
    ]
}
