//! How many statements each authenticated route sends to the database: reads
//! carry the caller check in their own statement, other routes run it on the
//! handler's connection, nothing tests a connection on every checkout, and
//! changes put ownership in their WHERE clause.
//!
//! Counted through Diesel's instrumentation: every connection established in
//! this process counts its statements under its database URL, so tests
//! running side by side (each with a database of its own) do not mix.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Once};

use actix_web::http::StatusCode;
use diesel::connection::{Instrumentation, InstrumentationEvent, set_default_instrumentation};
use postapi::config::DatabaseUrl;
use serde_json::json;

use crate::helpers::{Backend, TestApp, TestResponse, Trial, backend_tests};

/// Statements sent so far, per database URL as the connection was opened with.
static STATEMENTS: LazyLock<Mutex<HashMap<String, Arc<AtomicUsize>>>> =
    LazyLock::new(Mutex::default);

/// The SQL of every statement sent, per database URL, oldest first.
static STATEMENT_TEXTS: LazyLock<Mutex<HashMap<String, Vec<String>>>> =
    LazyLock::new(Mutex::default);

struct CountStatements {
    url: String,
    counter: Option<Arc<AtomicUsize>>,
}

impl Instrumentation for CountStatements {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartEstablishConnection { url, .. } => {
                let mut counters = STATEMENTS.lock().expect("counters lock");
                self.counter = Some(Arc::clone(counters.entry(url.to_owned()).or_default()));
                url.clone_into(&mut self.url);
            }
            InstrumentationEvent::StartQuery { query, .. } => {
                if let Some(counter) = &self.counter {
                    counter.fetch_add(1, Ordering::SeqCst);
                    STATEMENT_TEXTS
                        .lock()
                        .expect("texts lock")
                        .entry(self.url.clone())
                        .or_default()
                        .push(query.to_string());
                }
            }
            _ => {}
        }
    }
}

fn count_statements() -> Option<Box<dyn Instrumentation>> {
    Some(Box::new(CountStatements {
        url: String::new(),
        counter: None,
    }))
}

/// Spawns an app whose connections count and record their statements.
pub async fn spawn_counting(backend: Backend) -> TestApp {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        set_default_instrumentation(count_statements).expect("install the statement counter");
    });
    TestApp::spawn(backend).await
}

/// What the connections to the app's database were opened with starts so.
fn url_prefix(app: &TestApp) -> String {
    match app.database().url() {
        DatabaseUrl::Sqlite(path) => path.to_string_lossy().into_owned(),
        // The pool adds `?connect_timeout=` to the URL.
        DatabaseUrl::Postgres(url) => url.clone(),
    }
}

/// Every statement sent to the app's database, as Diesel prints it: the
/// SQL, then ` -- binds: [...]`; each connection's oldest first.
fn statement_texts(app: &TestApp) -> Vec<String> {
    let prefix = url_prefix(app);
    let texts = STATEMENT_TEXTS.lock().expect("texts lock");
    texts
        .iter()
        .filter(|(url, _)| url.starts_with(&prefix))
        .flat_map(|(_, texts)| texts.iter().cloned())
        .collect()
}

/// The last statement sent to the app's database that contains all of
/// `needles`.
pub fn last_statement_containing(app: &TestApp, needles: &[&str]) -> Option<String> {
    statement_texts(app)
        .into_iter()
        .rfind(|text| needles.iter().all(|needle| text.contains(needle)))
}

/// How many statements sent to the app's database contain `needle`.
pub fn statements_containing(app: &TestApp, needle: &str) -> usize {
    statement_texts(app)
        .iter()
        .filter(|text| text.contains(needle))
        .count()
}

/// Statements sent so far to the app's database, by any connection.
fn statements(app: &TestApp) -> usize {
    let prefix = url_prefix(app);
    STATEMENTS
        .lock()
        .expect("counters lock")
        .iter()
        .filter(|(url, _)| url.starts_with(&prefix))
        .map(|(_, counter)| counter.load(Ordering::SeqCst))
        .sum()
}

/// The response to `request` and the statements it cost.
async fn counted(
    app: &TestApp,
    request: impl Future<Output = TestResponse>,
) -> (TestResponse, usize) {
    let before = statements(app);
    let response = request.await;
    (response, statements(app) - before)
}

async fn a_read_costs_one_statement_which_also_checks_the_caller(backend: Backend) {
    let app = spawn_counting(backend).await;
    let alice = app.user("alice@example.com").await;
    let id = app.create_post(&alice, "counted").await["id"].clone();
    let one_post = format!("/posts/{id}");
    // The pool's connections are warm (used within the last second), so no
    // validation query is due.
    app.get("/posts", alice.token()).await;

    let (list, list_statements) = counted(&app, app.get("/posts", alice.token())).await;
    let (search, search_statements) =
        counted(&app, app.get("/posts?search=count", alice.token())).await;
    let (post, post_statements) = counted(&app, app.get(&one_post, alice.token())).await;

    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    assert_eq!(search.json().as_array().map(Vec::len), Some(1));
    assert_eq!(post.status, StatusCode::OK, "{}", post.text());
    assert_eq!(
        (list_statements, search_statements, post_statements),
        (1, 1, 1),
        "statements for GET /posts, GET /posts?search=, GET /posts/{{id}}"
    );
    let read = last_statement_containing(&app, &["FROM", "posts", "EXISTS", "sessions"]);
    assert!(read.is_some(), "the read carries the session check");
}

async fn a_read_with_a_token_without_a_session_costs_the_same(backend: Backend) {
    let app = spawn_counting(backend).await;
    let alice = app.user("alice@example.com").await;
    let id = app.create_post(&alice, "counted").await["id"].clone();
    let exp = {
        use postapi::clock::Clock;
        app.clock.now().timestamp() + 600
    };
    // As the course app mints them: no `sid`, no `iat`.
    let course_token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "user_id": alice.id, "exp": exp }),
        &jsonwebtoken::EncodingKey::from_secret(crate::helpers::TEST_SECRET.as_bytes())
            .expect("an HMAC key"),
    )
    .expect("a token");
    app.get("/posts", Some(&course_token)).await;

    let (list, list_statements) = counted(&app, app.get("/posts", Some(&course_token))).await;
    let (post, post_statements) =
        counted(&app, app.get(&format!("/posts/{id}"), Some(&course_token))).await;

    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    assert_eq!(post.status, StatusCode::OK, "{}", post.text());
    assert_eq!((list_statements, post_statements), (1, 1));
    let read = last_statement_containing(&app, &["FROM", "posts", "tokens_valid_after"]);
    assert!(read.is_some(), "the read carries the account's cut-off");
}

async fn an_empty_answer_costs_a_second_statement_to_tell_why(backend: Backend) {
    let app = spawn_counting(backend).await;
    let alice = app.user("alice@example.com").await;
    app.get("/posts", alice.token()).await;

    let (list, list_statements) =
        counted(&app, app.get("/posts?search=nothing", alice.token())).await;
    let (missing, missing_statements) =
        counted(&app, app.get("/posts/999999", alice.token())).await;

    assert_eq!(list.json(), json!([]));
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        (list_statements, missing_statements),
        (2, 2),
        "the read, then the caller check that tells a deleted caller from no rows"
    );
}

async fn a_revoked_tokens_list_is_gated_before_any_post_is_read(backend: Backend) {
    let on_sqlite = matches!(backend, Backend::Sqlite);
    let app = spawn_counting(backend).await;
    let alice = app.user("alice@example.com").await;
    app.create_post(&alice, "counted").await;
    app.post("/logout", json!({}), alice.token()).await;

    let (list, statements) = counted(&app, app.get("/posts", alice.token())).await;

    list.assert_unauthorized();
    assert_eq!(
        statements, 2,
        "the read, empty, then the check that tells why"
    );
    // PostgreSQL makes the check in WHERE a one-time filter. SQLite would
    // walk every post testing it, so there the check sets the LIMIT, which
    // it computes before the scan; a LIMIT of 0 skips the scan.
    let gated = last_statement_containing(
        &app,
        &["FROM", "LIMIT CASE WHEN EXISTS (SELECT", "sessions"],
    );
    assert_eq!(gated.is_some(), on_sqlite, "{gated:?}");
}

async fn a_new_post_costs_one_statement_on_postgresql_and_two_on_sqlite(backend: Backend) {
    let on_postgres = matches!(backend, Backend::Postgres(_));
    let app = spawn_counting(backend).await;
    let alice = app.user("alice@example.com").await;
    app.create_post(&alice, "warm-up").await;

    let body = json!({ "title": "counted", "content": "one insert" });
    let (created, statements) = counted(&app, app.post("/posts", body, alice.token())).await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(created.json()["owner"]["id"], alice.id);
    assert!(created.json()["owner"]["created_at"].is_string());
    assert_eq!(created.json()["votes"], 0);
    if on_postgres {
        assert_eq!(
            statements, 1,
            "the INSERT and its owner in one statement, which needs the caller"
        );
    } else {
        assert_eq!(statements, 2, "the caller's row, then INSERT ... RETURNING");
    }
}

async fn changing_a_post_checks_ownership_in_the_same_statement(backend: Backend) {
    let app = spawn_counting(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let id = app.create_post(&alice, "mine").await["id"].clone();
    let doomed = app.create_post(&alice, "to delete").await["id"].clone();
    let body = json!({ "title": "edited", "content": "edited" });

    let (updated, update_statements) = counted(
        &app,
        app.put(&format!("/posts/{id}"), body.clone(), alice.token()),
    )
    .await;
    let (forbidden, forbidden_statements) = counted(
        &app,
        app.put(&format!("/posts/{id}"), body.clone(), bob.token()),
    )
    .await;
    let (missing, missing_statements) =
        counted(&app, app.delete("/posts/999999", alice.token())).await;
    let (deleted, delete_statements) =
        counted(&app, app.delete(&format!("/posts/{doomed}"), alice.token())).await;

    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text());
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        update_statements, 2,
        "caller check, UPDATE ... WHERE owner RETURNING (with the vote count)"
    );
    assert_eq!(
        (forbidden_statements, missing_statements),
        (3, 3),
        "caller check, the change matching nothing, the lookup choosing 403 or 404"
    );
    assert_eq!(delete_statements, 2, "caller check, DELETE ... WHERE owner");
}

async fn a_vote_costs_two_statements(backend: Backend) {
    let app = spawn_counting(backend).await;
    let alice = app.user("alice@example.com").await;
    let id = app.create_post(&alice, "vote on me").await["id"].clone();

    let (added, add_statements) = counted(
        &app,
        app.post("/vote", json!({ "post_id": id, "dir": 1 }), alice.token()),
    )
    .await;
    let (removed, remove_statements) = counted(
        &app,
        app.post("/vote", json!({ "post_id": id, "dir": 0 }), alice.token()),
    )
    .await;

    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text());
    assert_eq!(removed.status, StatusCode::CREATED, "{}", removed.text());
    assert_eq!((add_statements, remove_statements), (2, 2));
}

async fn a_bad_token_costs_no_statement(backend: Backend) {
    let app = spawn_counting(backend).await;

    let (response, statements) = counted(&app, app.get("/posts", Some("not.a.token"))).await;

    response.assert_unauthorized();
    assert_eq!(statements, 0);
}

pub fn tests() -> Vec<Trial> {
    backend_tests![
        a_read_costs_one_statement_which_also_checks_the_caller,
        a_read_with_a_token_without_a_session_costs_the_same,
        a_revoked_tokens_list_is_gated_before_any_post_is_read,
        an_empty_answer_costs_a_second_statement_to_tell_why,
        a_new_post_costs_one_statement_on_postgresql_and_two_on_sqlite,
        changing_a_post_checks_ownership_in_the_same_statement,
        a_vote_costs_two_statements,
        a_bad_token_costs_no_statement,
    ]
}
