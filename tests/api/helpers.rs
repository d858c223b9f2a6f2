//! The test harness: a real postapi server on a random port, with its own
//! database (a temporary SQLite file, or a PostgreSQL database created for the
//! test and dropped after it), a movable clock, and a small HTTP client.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{Method, StatusCode};
use chrono::{TimeDelta, Utc};
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};
use postapi::clock::{Clock, ManualClock, SystemClock};
use postapi::config::{DatabaseUrl, Settings};
use postapi::db::DbConnection;
use postapi::db::pool::ConnectionManager;
use postapi::startup::Application;
use serde_json::{Value, json};

/// The key test servers sign with, so tests can mint their own tokens.
pub const TEST_SECRET: &str = "test-secret-key-that-is-at-least-32-bytes-long";
pub const PASSWORD: &str = "correct horse battery";

/// alice@example.com as people also type it: in other cases, with spaces
/// around. Each names her account.
pub const ALICE_RETYPED: [&str; 5] = [
    "ALICE@EXAMPLE.COM",
    "Alice@Example.com",
    " alice@example.com ",
    "  alice@example.com  ",
    " ALICE@example.COM\t",
];

pub use libtest_mimic::Trial;

/// `value` as a failure message names a case: at most 100 characters.
pub fn brief(value: impl std::fmt::Display) -> String {
    let text = value.to_string();
    match text.char_indices().nth(100) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

/// A bound pydantic checks: `le`/`ge` on numbers, `max_length`/`min_length`
/// (in characters) on strings.
#[derive(Clone, Copy)]
pub enum Bound {
    Le(i64),
    Ge(i64),
    MaxLength(i64),
    MinLength(i64),
}

/// The 422 item for a value at `loc` past `bound`, as FastAPI words it.
pub fn past(loc: [&str; 2], bound: Bound) -> Value {
    let (msg, kind) = match bound {
        Bound::Le(n) => (format!("is less than or equal to {n}"), "number.not_le"),
        Bound::Ge(n) => (format!("is greater than or equal to {n}"), "number.not_ge"),
        Bound::MaxLength(n) => (format!("has at most {n} characters"), "any_str.max_length"),
        Bound::MinLength(n) => (format!("has at least {n} characters"), "any_str.min_length"),
    };
    let (Bound::Le(limit) | Bound::Ge(limit) | Bound::MaxLength(limit) | Bound::MinLength(limit)) =
        bound;
    json!({
        "loc": loc,
        "msg": format!("ensure this value {msg}"),
        "type": format!("value_error.{kind}"),
        "ctx": { "limit_value": limit },
    })
}

/// The 422 item for a body field left out, as FastAPI words it.
pub fn field_required(field: &str) -> Value {
    json!({ "loc": ["body", field], "msg": "field required", "type": "value_error.missing" })
}

/// The trials for async tests that take a [`Backend`]: `module::name::on_sqlite`
/// and `module::name::on_postgres`, the latter ignored without `TEST_POSTGRES_URL`.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {{
        let module = $crate::helpers::module_name(module_path!());
        vec![$(
            $crate::helpers::on_sqlite(module, stringify!($name), $name),
            $crate::helpers::on_postgres(module, stringify!($name), $name),
        )*]
    }};
}
pub(crate) use backend_tests;

/// The trials for async tests that need PostgreSQL alone: `module::name::on_postgres`.
macro_rules! postgres_tests {
    ($($name:ident),* $(,)?) => {{
        let module = $crate::helpers::module_name(module_path!());
        vec![$($crate::helpers::on_postgres(module, stringify!($name), $name)),*]
    }};
}
pub(crate) use postgres_tests;

/// The trials for plain synchronous tests: `module::name`.
macro_rules! plain_tests {
    ($($name:ident),* $(,)?) => {{
        let module = $crate::helpers::module_name(module_path!());
        vec![$($crate::helpers::Trial::test(format!("{module}::{}", stringify!($name)), || {
            $name();
            Ok(())
        })),*]
    }};
}
pub(crate) use plain_tests;

/// `api::votes` → `votes`.
pub fn module_name(path: &'static str) -> &'static str {
    path.split_once("::").map_or(path, |(_, rest)| rest)
}

pub fn on_sqlite<F, Fut>(module: &str, name: &str, test: F) -> Trial
where
    F: FnOnce(Backend) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    Trial::test(format!("{module}::{name}::on_sqlite"), move || {
        run_async(test(Backend::Sqlite));
        Ok(())
    })
}

pub fn on_postgres<F, Fut>(module: &str, name: &str, test: F) -> Trial
where
    F: FnOnce(Backend) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let url = postgres_url();
    Trial::test(format!("{module}::{name}::on_postgres"), move || {
        let url = url.ok_or("TEST_POSTGRES_URL is not set: it names a PostgreSQL server where test databases may be created")?;
        run_async(test(Backend::Postgres(url)));
        Ok(())
    })
    .with_ignored_flag(postgres_url().is_none())
}

/// Drives a test on an actix system of its own, as `#[actix_web::test]` does.
/// Then stops the test's servers and drops their databases, in that order.
fn run_async(test: impl Future<Output = ()>) {
    actix_web::rt::System::new().block_on(async {
        test.await;
        stop_servers_then_drop_databases().await;
    });
}

thread_local! {
    /// Servers a finished test left, with the databases they created (an
    /// app spawned beside another created none): stopped by the harness
    /// after the test, so no database is dropped under a live pool.
    static STOPPED_APPS: RefCell<Vec<(ServerHandle, Option<TestDatabase>)>> = const { RefCell::new(Vec::new()) };
}

async fn stop_servers_then_drop_databases() {
    let apps = STOPPED_APPS.take();
    for (server, _) in &apps {
        server.stop(false).await;
    }
    for database in apps.into_iter().filter_map(|(_, database)| database) {
        database.wait_for_no_connections().await;
    }
}

/// `TEST_POSTGRES_URL`, when set: an admin URL of a server where test
/// databases may be created.
pub fn postgres_url() -> Option<String> {
    std::env::var("TEST_POSTGRES_URL")
        .ok()
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty())
}

#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// An admin URL of a server where test databases may be created.
    Postgres(String),
}

/// Where a test's data lives; removed when the test ends.
pub enum TestDatabase {
    Sqlite {
        _dir: tempfile::TempDir,
        url: DatabaseUrl,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: DatabaseUrl,
    },
}

impl TestDatabase {
    pub fn create(backend: &Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = DatabaseUrl::Sqlite(dir.path().join("postapi-test.db"));
                Self::Sqlite { _dir: dir, url }
            }
            Backend::Postgres(admin_url) => {
                static COUNTER: AtomicU32 = AtomicU32::new(0);
                let name = format!(
                    "postapi_test_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::Relaxed),
                    Utc::now().timestamp_subsec_micros()
                );
                let mut admin = PgConnection::establish(admin_url)
                    .expect("TEST_POSTGRES_URL must be reachable");
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .expect("create the test database");
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(base, _)| base);
                let url = DatabaseUrl::Postgres(format!("{base}/{name}"));
                Self::Postgres {
                    admin_url: admin_url.clone(),
                    name,
                    url,
                }
            }
        }
    }

    pub fn url(&self) -> &DatabaseUrl {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url, .. } => url,
        }
    }
}

impl TestDatabase {
    /// Waits (a few seconds at most) until no session uses a PostgreSQL test
    /// database, so dropping it terminates nobody: a terminated session
    /// makes libpq print a FATAL line into the test output.
    async fn wait_for_no_connections(&self) {
        let Self::Postgres {
            admin_url, name, ..
        } = self
        else {
            return;
        };
        let Ok(mut admin) = PgConnection::establish(admin_url) else {
            return;
        };
        let query = format!("SELECT 1 FROM pg_stat_activity WHERE datname = '{name}'");
        for _ in 0..100 {
            match diesel::sql_query(&query).execute(&mut admin) {
                Ok(0) | Err(_) => return,
                Ok(_) => actix_web::rt::time::sleep(Duration::from_millis(30)).await,
            }
        }
    }
}

impl Drop for TestDatabase {
    /// Drops a PostgreSQL test database. FORCE, because the stopped server's
    /// pool may not have closed its connections yet.
    fn drop(&mut self) {
        if let Self::Postgres {
            admin_url, name, ..
        } = self
            && let Ok(mut admin) = PgConnection::establish(admin_url)
        {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// Settings for a test server: its own database, a known key, port 0, one
/// worker, cheap bcrypt.
pub fn test_settings(database_url: DatabaseUrl) -> Settings {
    let mut settings = Settings::from_lookup(|name| match name {
        "SECRET_KEY" => Some(TEST_SECRET.into()),
        "BCRYPT_COST" => Some("4".into()),
        "PORT" => Some("0".into()),
        _ => None,
    })
    .expect("test settings are valid");
    settings.database_url = database_url;
    settings.workers = Some(1);
    settings.pool_size = 4;
    settings.pool_timeout = Duration::from_secs(2);
    // Tests run side by side and the hashing threads are low priority: a
    // login may wait for a thread far longer than in service.
    settings.password_hashing.max_wait = Duration::from_secs(60);
    settings
}

pub struct TestApp {
    pub address: String,
    /// `http://127.0.0.1:<port>` of `/metrics`, when the test set `metrics_addr`.
    pub metrics_address: Option<String>,
    /// The clock the server issues and checks tokens by; see [`TestApp::advance_clock`].
    pub clock: Arc<ManualClock>,
    client: awc::Client,
    server: ServerHandle,
    /// The database this app created: `Some` until the app is dropped,
    /// when the harness takes it; `None` for an app spawned beside another.
    database: Option<TestDatabase>,
    database_url: DatabaseUrl,
    /// What the server reads: `clock`, or the wall clock.
    server_clock: Arc<dyn Clock>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Spawns with adjusted settings.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_inner(backend, adjust, false).await
    }

    /// Spawns with the real wall clock, for tests that let time pass for real.
    pub async fn spawn_with_real_clock(
        backend: Backend,
        adjust: impl FnOnce(&mut Settings),
    ) -> Self {
        Self::spawn_inner(backend, adjust, true).await
    }

    async fn spawn_inner(
        backend: Backend,
        adjust: impl FnOnce(&mut Settings),
        real_clock: bool,
    ) -> Self {
        let database = TestDatabase::create(&backend);
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let server_clock: Arc<dyn Clock> = if real_clock {
            Arc::new(SystemClock)
        } else {
            clock.clone()
        };
        let url = database.url().clone();
        Self::start(url, Some(database), adjust, clock, server_clock).await
    }

    /// A second instance on this app's database and clock, with the test
    /// settings changed by `adjust`: pass what this app got, as instances
    /// behind one load balancer share their settings (the test key is
    /// always the same).
    pub async fn spawn_beside(&self, adjust: impl FnOnce(&mut Settings)) -> Self {
        Self::start(
            self.database_url.clone(),
            None,
            adjust,
            self.clock.clone(),
            self.server_clock.clone(),
        )
        .await
    }

    async fn start(
        database_url: DatabaseUrl,
        database: Option<TestDatabase>,
        adjust: impl FnOnce(&mut Settings),
        clock: Arc<ManualClock>,
        server_clock: Arc<dyn Clock>,
    ) -> Self {
        let mut settings = test_settings(database_url.clone());
        adjust(&mut settings);
        let app = Application::build_with_clock(settings, server_clock.clone())
            .await
            .expect("the test app starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        let metrics_address = app
            .metrics_port()
            .map(|port| format!("http://127.0.0.1:{port}"));
        let server = app.handle();
        actix_web::rt::spawn(app.run_until_stopped());
        // Redirects are not followed: the contract has none, so one must show.
        let client = awc::Client::builder()
            .disable_redirects()
            .timeout(Duration::from_secs(30))
            .finish();
        Self {
            address,
            metrics_address,
            clock,
            client,
            server,
            database,
            database_url,
            server_clock,
        }
    }

    /// The database this app created (not one spawned beside another).
    pub fn database(&self) -> &TestDatabase {
        self.database
            .as_ref()
            .expect("the database lives as long as the app that created it")
    }

    pub fn advance_clock(&self, by: TimeDelta) {
        self.clock.advance(by);
    }

    /// A direct connection to the test's database, for arranging what the
    /// API cannot (deleting a user, say).
    pub fn db(&self) -> DbConnection {
        ConnectionManager::new(self.database_url.clone())
            .establish()
            .expect("connect to the test database")
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Body,
    ) -> TestResponse {
        let authorization = token.map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|value| ("authorization", value.as_str()))
            .collect();
        self.send(method, path, &headers, body).await
    }

    /// A request with arbitrary headers and a body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> TestResponse {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address));
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let sent = match body {
            Body::None => request.send().await,
            Body::Json(value) => request.send_json(&value).await,
            Body::Raw {
                content_type,
                bytes,
            } => {
                request
                    .insert_header((header::CONTENT_TYPE, content_type))
                    .send_body(bytes)
                    .await
            }
        };
        let mut response = sent.expect("the request reaches the server");
        let bytes = response
            .body()
            .limit(64 * 1024 * 1024)
            .await
            .expect("the response body");
        TestResponse {
            status: response.status(),
            headers: response.headers().clone(),
            body: bytes.to_vec(),
        }
    }

    /// A request with arbitrary headers and no body.
    pub async fn client_request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        self.send(method, path, headers, Body::None).await
    }

    /// A `GET` with arbitrary headers.
    pub async fn get_with_headers(&self, path: &str, headers: &[(&str, &str)]) -> TestResponse {
        self.client_request(Method::GET, path, headers).await
    }

    /// A `POST` of raw bytes labelled `content_type`.
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        bytes: impl Into<Vec<u8>>,
    ) -> TestResponse {
        self.request(Method::POST, path, token, Body::raw(content_type, bytes))
            .await
    }

    /// A `POST` of `text` labelled JSON, for bodies `json!` cannot make.
    pub async fn post_json_text(
        &self,
        path: &str,
        token: Option<&str>,
        text: &str,
    ) -> TestResponse {
        self.post_raw(path, token, "application/json", text).await
    }

    /// A urlencoded form posted with extra headers (`X-Forwarded-For`, say).
    pub async fn post_form_with_headers(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let form = serde_urlencoded::to_string(fields).expect("form encoding");
        let body = Body::raw("application/x-www-form-urlencoded", form);
        self.send(Method::POST, path, headers, body).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.request(Method::GET, path, token, Body::None).await
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> TestResponse {
        self.request(Method::POST, path, token, Body::Json(body))
            .await
    }

    pub async fn put(&self, path: &str, body: Value, token: Option<&str>) -> TestResponse {
        self.request(Method::PUT, path, token, Body::Json(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.request(Method::DELETE, path, token, Body::None).await
    }

    /// `POST /users {email, password}`, whatever the answer.
    pub async fn try_sign_up(&self, email: &str, password: &str) -> TestResponse {
        let credentials = json!({ "email": email, "password": password });
        self.post("/users", credentials, None).await
    }

    /// Signs up; panics unless the answer is 201.
    pub async fn sign_up(&self, email: &str) -> Value {
        let response = self.try_sign_up(email, PASSWORD).await;
        response.assert_status_for(format!("sign up {email}"), StatusCode::CREATED);
        response.json()
    }

    /// `POST /login` with the OAuth2 password form, whatever the answer.
    pub async fn try_log_in(&self, username: &str, password: &str) -> TestResponse {
        self.post_form("/login", &[("username", username), ("password", password)])
            .await
    }

    /// Logs in with the OAuth2 password form; panics unless the answer is 200.
    pub async fn log_in(&self, email: &str, password: &str) -> String {
        let response = self.try_log_in(email, password).await;
        response.assert_status_for(format!("log in {email}"), StatusCode::OK);
        response.json()["access_token"]
            .as_str()
            .expect("a token")
            .to_owned()
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        let body = serde_urlencoded::to_string(fields).expect("form encoding");
        self.post_raw(path, None, "application/x-www-form-urlencoded", body)
            .await
    }

    /// A signed-up, logged-in user.
    pub async fn user(&self, email: &str) -> TestUser {
        let user = self.sign_up(email).await;
        let token = self.log_in(email, PASSWORD).await;
        TestUser {
            id: user["id"].as_i64().expect("an id"),
            email: email.to_owned(),
            token,
        }
    }

    /// `POST /vote {post_id, dir}` as `user`.
    pub async fn vote(&self, user: &TestUser, post_id: i64, dir: i64) -> TestResponse {
        self.post(
            "/vote",
            json!({ "post_id": post_id, "dir": dir }),
            user.token(),
        )
        .await
    }

    /// `POST /posts` with `body` as `user`, whatever the answer.
    pub async fn send_post(&self, user: &TestUser, body: Value) -> TestResponse {
        self.post("/posts", body, user.token()).await
    }

    /// `PUT /posts/{id}` with `body` as `user`, whatever the answer.
    pub async fn send_put(&self, user: &TestUser, id: i64, body: Value) -> TestResponse {
        self.put(&format!("/posts/{id}"), body, user.token()).await
    }

    /// Asserts `POST path` as `user` refuses `malformed` JSON and the JSON
    /// `non_object` as FastAPI does: 422s at the body.
    pub async fn assert_bad_json_refused(
        &self,
        path: &str,
        user: &TestUser,
        malformed: &str,
        non_object: Value,
    ) {
        let response = self.post_json_text(path, user.token(), malformed).await;
        response.assert_validation_error_for(malformed, &["body"]);
        assert_eq!(response.detail()[0]["type"], "value_error.jsondecode");
        let response = self.post(path, non_object, user.token()).await;
        assert_eq!(
            response.json(),
            json!({ "detail": [{ "loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict" }] })
        );
    }

    /// Creates a post as `user`; panics unless the answer is 201.
    pub async fn create_post(&self, user: &TestUser, title: &str) -> Value {
        let body = json!({ "title": title, "content": format!("about {title}") });
        let response = self.send_post(user, body).await;
        response.assert_status_for("create post", StatusCode::CREATED);
        response.json()
    }
}

/// A fresh app with Alice and Bob signed up and logged in, and a post of
/// Alice's titled `title`: the app, Alice, Bob and the post as created.
pub async fn alice_bob_and_her_post(
    backend: Backend,
    title: &str,
) -> (TestApp, TestUser, TestUser, Value) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let post = app.create_post(&alice, title).await;
    (app, alice, bob, post)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stopping is awaited by the harness once the test is over (see
        // `run_async`); the database must outlive every server's pool.
        let database = self.database.take();
        STOPPED_APPS.with_borrow_mut(|apps| apps.push((self.server.clone(), database)));
    }
}

pub struct TestUser {
    pub id: i64,
    pub email: String,
    pub token: String,
}

impl TestUser {
    pub fn token(&self) -> Option<&str> {
        Some(&self.token)
    }
}

pub enum Body {
    None,
    Json(Value),
    Raw {
        content_type: String,
        bytes: Vec<u8>,
    },
}

impl Body {
    pub fn raw(content_type: &str, bytes: impl Into<Vec<u8>>) -> Self {
        Self::Raw {
            content_type: content_type.to_owned(),
            bytes: bytes.into(),
        }
    }
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn assert_status(&self, expected: StatusCode) {
        assert_eq!(self.status, expected, "{}", self.text());
    }

    /// Asserts the status of the answer to `what`, showing both when it differs.
    #[track_caller]
    pub fn assert_status_for(&self, what: impl std::fmt::Display, expected: StatusCode) {
        assert_eq!(self.status, expected, "{what}: {}", self.text());
    }

    /// Asserts the status and that the body is exactly `{"detail": detail}`.
    #[track_caller]
    pub fn assert_error(&self, status: StatusCode, detail: Value) {
        self.assert_status(status);
        assert_eq!(self.json(), json!({ "detail": detail }));
    }

    /// [`Self::assert_error`] for the answer to `what`, named in a failure.
    #[track_caller]
    pub fn assert_error_for(
        &self,
        what: impl std::fmt::Display,
        status: StatusCode,
        detail: Value,
    ) {
        self.assert_status_for(&what, status);
        assert_eq!(self.json(), json!({ "detail": detail }), "{what}");
    }

    /// The `detail` of an error body.
    pub fn detail(&self) -> Value {
        self.json()["detail"].clone()
    }

    /// Asserts a 422 with an error at `loc`, each error in FastAPI's shape.
    #[track_caller]
    pub fn assert_validation_error(&self, loc: &[&str]) {
        self.assert_validation_error_for("the request", loc);
    }

    /// [`Self::assert_validation_error`] for the answer to `what`, named in a failure.
    #[track_caller]
    pub fn assert_validation_error_for(&self, what: impl std::fmt::Display, loc: &[&str]) {
        self.assert_status_for(&what, StatusCode::UNPROCESSABLE_ENTITY);
        let errors = self.detail();
        let locs: Vec<Value> = errors
            .as_array()
            .expect("a list of errors")
            .iter()
            .map(|e| e["loc"].clone())
            .collect();
        assert!(
            locs.contains(&json!(loc)),
            "{what}: no error at {loc:?} in {errors}"
        );
        for error in errors.as_array().into_iter().flatten() {
            assert!(
                error["msg"].is_string() && error["type"].is_string(),
                "{what}: FastAPI's shape: {error}"
            );
        }
    }

    #[track_caller]
    pub fn assert_unauthorized(&self) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "{}", self.text());
        assert_eq!(
            self.json(),
            json!({ "detail": "Could not validate credentials" })
        );
        let challenge = self
            .header("www-authenticate")
            .expect("a WWW-Authenticate header");
        assert!(challenge.starts_with("Bearer"), "{challenge}");
    }
}
