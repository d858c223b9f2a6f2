//! Sessions: refresh tokens with rotation and reuse detection, logout,
//! logout everywhere, the account-wide cut-off for tokens without a session,
//! `GET /sessions` and `DELETE /sessions/{id}`, the cap, and the cleanup.

use actix_web::http::{Method, StatusCode};
use chrono::TimeDelta;
use diesel::prelude::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{Backend, Body, PASSWORD, TEST_SECRET, TestApp, Trial, backend_tests};

/// What a login or a refresh answered.
struct Pair {
    access: String,
    refresh: String,
}

impl Pair {
    fn from(response: &crate::helpers::TestResponse) -> Self {
        response.assert_status(StatusCode::OK);
        let body = response.json();
        Self {
            access: body["access_token"]
                .as_str()
                .expect("an access token")
                .into(),
            refresh: body["refresh_token"]
                .as_str()
                .expect("a refresh token")
                .into(),
        }
    }
}

async fn log_in(app: &TestApp, email: &str) -> Pair {
    Pair::from(&app.try_log_in(email, PASSWORD).await)
}

async fn try_refresh(app: &TestApp, refresh_token: &str) -> crate::helpers::TestResponse {
    app.post(
        "/login/refresh",
        json!({ "refresh_token": refresh_token }),
        None,
    )
    .await
}

async fn works(app: &TestApp, access: &str) -> bool {
    let response = app.get("/posts", Some(access)).await;
    match response.status {
        StatusCode::OK => true,
        StatusCode::UNAUTHORIZED => {
            response.assert_unauthorized();
            false
        }
        other => panic!("GET /posts answered {other}: {}", response.text()),
    }
}

/// Signs `claims` as the course app would with the test key.
fn course_token(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(TEST_SECRET.as_bytes()).expect("an HMAC key"),
    )
    .expect("a signed token")
}

fn now(app: &TestApp) -> i64 {
    use postapi::clock::Clock;
    app.clock.now().timestamp()
}

async fn a_login_answers_a_refresh_token_and_the_access_tokens_lifetime(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;

    let response = app.try_log_in("alice@example.com", PASSWORD).await;

    response.assert_status(StatusCode::OK);
    let body = response.json();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 1800);
    let refresh = body["refresh_token"].as_str().expect("a refresh token");
    assert_eq!(refresh.len(), 64, "{refresh}");
    assert!(refresh.chars().all(|c| c.is_ascii_hexdigit()), "{refresh}");
}

async fn a_refresh_gives_a_working_pair_and_spends_the_old_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;
    let first = log_in(&app, "alice@example.com").await;

    let second = Pair::from(&try_refresh(&app, &first.refresh).await);
    let third = Pair::from(&try_refresh(&app, &second.refresh).await);

    assert_ne!(first.refresh, second.refresh);
    assert!(works(&app, &second.access).await);
    assert!(works(&app, &third.access).await);
    // The session is the same: the first access token still works.
    assert!(works(&app, &first.access).await);
}

async fn a_spent_refresh_token_revokes_its_whole_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;
    let stolen = log_in(&app, "alice@example.com").await;
    let other_device = log_in(&app, "alice@example.com").await;
    let victim = Pair::from(&try_refresh(&app, &stolen.refresh).await);

    let replayed = try_refresh(&app, &stolen.refresh).await;

    replayed.assert_unauthorized();
    assert!(
        !works(&app, &victim.access).await,
        "the pair issued from it"
    );
    assert!(!works(&app, &stolen.access).await);
    try_refresh(&app, &victim.refresh)
        .await
        .assert_unauthorized();
    // Another session of the account is not touched.
    assert!(works(&app, &other_device.access).await);
    Pair::from(&try_refresh(&app, &other_device.refresh).await);
}

async fn a_refresh_token_is_taken_as_the_oauth2_form(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;
    let first = log_in(&app, "alice@example.com").await;

    let refreshed = app
        .post_form(
            "/login/refresh",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &first.refresh),
            ],
        )
        .await;
    let without_grant = app
        .post_form("/login/refresh", &[("refresh_token", "abc")])
        .await;
    let other_grant = app
        .post_form(
            "/login/refresh",
            &[("grant_type", "password"), ("refresh_token", "abc")],
        )
        .await;

    let second = Pair::from(&refreshed);
    assert!(works(&app, &second.access).await);
    without_grant.assert_validation_error(&["body", "grant_type"]);
    other_grant.assert_validation_error(&["body", "grant_type"]);
}

async fn an_unknown_refresh_token_is_a_401_and_a_missing_one_a_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    for token in ["", "nonsense", &"0".repeat(64), &"é".repeat(300)] {
        try_refresh(&app, token).await.assert_unauthorized();
    }
    app.post("/login/refresh", json!({}), None)
        .await
        .assert_validation_error(&["body", "refresh_token"]);
    app.post("/login/refresh", json!({ "refresh_token": 7 }), None)
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    // An access token is no refresh token.
    app.sign_up("alice@example.com").await;
    let pair = log_in(&app, "alice@example.com").await;
    try_refresh(&app, &pair.access).await.assert_unauthorized();
}

async fn a_refresh_token_expires_after_the_configured_days_of_disuse(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.refresh_ttl = TimeDelta::days(14);
    })
    .await;
    app.sign_up("alice@example.com").await;
    let first = log_in(&app, "alice@example.com").await;

    // A refresh moves the session's end on: 13 days, then 13 more.
    app.advance_clock(TimeDelta::days(13));
    let second = Pair::from(&try_refresh(&app, &first.refresh).await);
    app.advance_clock(TimeDelta::days(13));
    let third = Pair::from(&try_refresh(&app, &second.refresh).await);
    app.advance_clock(TimeDelta::days(14) + TimeDelta::seconds(1));

    try_refresh(&app, &third.refresh)
        .await
        .assert_unauthorized();
}

async fn logout_ends_the_current_access_and_refresh_token_and_nothing_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let laptop = log_in(&app, "alice@example.com").await;
    let phone = log_in(&app, "alice@example.com").await;

    let response = app.post("/logout", json!({}), Some(&laptop.access)).await;

    response.assert_status(StatusCode::NO_CONTENT);
    assert!(response.body.is_empty());
    assert!(!works(&app, &laptop.access).await);
    try_refresh(&app, &laptop.refresh)
        .await
        .assert_unauthorized();
    let body = json!({ "title": "after logout", "content": "x" });
    app.post("/posts", body, Some(&laptop.access))
        .await
        .assert_unauthorized();
    app.post("/logout", json!({}), Some(&laptop.access))
        .await
        .assert_unauthorized();
    assert!(works(&app, &phone.access).await);
    Pair::from(&try_refresh(&app, &phone.refresh).await);
    assert!(works(&app, &bob.token).await);
}

async fn a_revoked_sessions_token_can_write_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let post = app.create_post(&alice, "mine").await["id"].clone();
    let session = log_in(&app, "alice@example.com").await;
    app.post("/logout", json!({}), Some(&session.access))
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let token = Some(session.access.as_str());

    let body = json!({ "title": "changed", "content": "x" });
    app.put(&format!("/posts/{post}"), body, token)
        .await
        .assert_unauthorized();
    app.delete(&format!("/posts/{post}"), token)
        .await
        .assert_unauthorized();
    app.post("/vote", json!({ "post_id": post, "dir": 1 }), token)
        .await
        .assert_unauthorized();
    app.post("/posts", json!({ "title": "t", "content": "c" }), token)
        .await
        .assert_unauthorized();
    app.get("/users/me", token).await.assert_unauthorized();
    app.get("/sessions", token).await.assert_unauthorized();
    app.post("/logout/all", json!({}), token)
        .await
        .assert_unauthorized();

    let listed = app.get("/posts", alice.token()).await.json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["title"], "mine");
    assert_eq!(listed[0]["votes"], 0);
}

async fn logout_all_ends_tokens_with_and_without_a_session_issued_before_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.sign_up("alice@example.com").await;
    let laptop = log_in(&app, "alice@example.com").await;
    let phone = log_in(&app, "alice@example.com").await;
    let course_with_iat = course_token(&json!({
        "user_id": alice["id"], "exp": now(&app) + 1800, "iat": now(&app),
    }));
    let course_without_iat = course_token(&json!({
        "user_id": alice["id"], "exp": now(&app) + 1800,
    }));
    assert!(works(&app, &course_with_iat).await);
    assert!(works(&app, &course_without_iat).await);

    app.advance_clock(TimeDelta::seconds(5));
    app.post("/logout/all", json!({}), Some(&laptop.access))
        .await
        .assert_status(StatusCode::NO_CONTENT);

    for token in [
        &laptop.access,
        &phone.access,
        &course_with_iat,
        &course_without_iat,
    ] {
        assert!(!works(&app, token).await, "{token}");
    }
    try_refresh(&app, &laptop.refresh)
        .await
        .assert_unauthorized();
    try_refresh(&app, &phone.refresh)
        .await
        .assert_unauthorized();
    // What is issued afterwards works.
    let again = log_in(&app, "alice@example.com").await;
    assert!(works(&app, &again.access).await);
    app.advance_clock(TimeDelta::seconds(1));
    let later_course_token = course_token(&json!({
        "user_id": alice["id"], "exp": now(&app) + 1800, "iat": now(&app),
    }));
    assert!(works(&app, &later_course_token).await);
}

async fn logout_with_a_course_token_ends_the_accounts_course_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.sign_up("alice@example.com").await;
    let session = log_in(&app, "alice@example.com").await;
    let course = course_token(&json!({ "user_id": alice["id"], "exp": now(&app) + 1800 }));

    app.post("/logout", json!({}), Some(&course))
        .await
        .assert_status(StatusCode::NO_CONTENT);

    assert!(!works(&app, &course).await);
    assert!(
        works(&app, &session.access).await,
        "sessions are not touched"
    );
}

async fn changing_the_password_keeps_this_session_and_ends_the_others(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.sign_up("alice@example.com").await;
    let here = log_in(&app, "alice@example.com").await;
    let elsewhere = log_in(&app, "alice@example.com").await;
    let course = course_token(&json!({ "user_id": alice["id"], "exp": now(&app) + 1800 }));
    app.advance_clock(TimeDelta::seconds(1));

    let changed = app
        .put(
            "/users/me/password",
            json!({ "current_password": PASSWORD, "new_password": "a brand new secret" }),
            Some(&here.access),
        )
        .await;

    changed.assert_status(StatusCode::NO_CONTENT);
    assert!(works(&app, &here.access).await);
    Pair::from(&try_refresh(&app, &here.refresh).await);
    assert!(!works(&app, &elsewhere.access).await);
    try_refresh(&app, &elsewhere.refresh)
        .await
        .assert_unauthorized();
    assert!(!works(&app, &course).await);
    app.try_log_in("alice@example.com", PASSWORD)
        .await
        .assert_status(StatusCode::FORBIDDEN);
    app.try_log_in("alice@example.com", "a brand new secret")
        .await
        .assert_status(StatusCode::OK);
}

async fn a_wrong_current_password_is_a_403_and_counts_as_a_failed_login(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.login_limits.per_account = 2;
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let wrong = json!({ "current_password": "not my password", "new_password": "whatever it is" });

    let first = app
        .put("/users/me/password", wrong.clone(), alice.token())
        .await;
    let second = app
        .put("/users/me/password", wrong.clone(), alice.token())
        .await;
    let third = app.put("/users/me/password", wrong, alice.token()).await;
    let login = app.try_log_in("alice@example.com", PASSWORD).await;

    first.assert_error(StatusCode::FORBIDDEN, json!("Invalid Credentials"));
    second.assert_error(StatusCode::FORBIDDEN, json!("Invalid Credentials"));
    third.assert_status(StatusCode::TOO_MANY_REQUESTS);
    login.assert_status(StatusCode::TOO_MANY_REQUESTS);
    assert!(works(&app, &alice.token).await, "nothing changed");
}

async fn a_new_password_is_checked_as_a_sign_ups_is(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;

    let short = app
        .put(
            "/users/me/password",
            json!({ "current_password": PASSWORD, "new_password": "short" }),
            alice.token(),
        )
        .await;
    let long = app
        .put(
            "/users/me/password",
            json!({ "current_password": PASSWORD, "new_password": "x".repeat(73) }),
            alice.token(),
        )
        .await;
    let missing = app
        .put(
            "/users/me/password",
            json!({ "new_password": "long enough" }),
            alice.token(),
        )
        .await;

    short.assert_validation_error(&["body", "new_password"]);
    long.assert_validation_error(&["body", "new_password"]);
    missing.assert_validation_error(&["body", "current_password"]);
    app.put("/users/me/password", json!({}), None)
        .await
        .assert_unauthorized();
}

async fn deleting_the_account_ends_its_tokens_and_takes_its_posts_and_votes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let hers = app.create_post(&alice, "hers").await["id"].clone();
    let his = app.create_post(&bob, "his").await["id"].clone();
    app.vote(&alice, his.as_i64().unwrap(), 1)
        .await
        .assert_status(StatusCode::CREATED);
    app.vote(&bob, hers.as_i64().unwrap(), 1)
        .await
        .assert_status(StatusCode::CREATED);
    let session = log_in(&app, "alice@example.com").await;

    let wrong = app
        .request(
            Method::DELETE,
            "/users/me",
            alice.token(),
            Body::Json(json!({ "password": "not my password" })),
        )
        .await;
    wrong.assert_error(StatusCode::FORBIDDEN, json!("Invalid Credentials"));
    assert!(works(&app, &alice.token).await, "still there");

    let deleted = app
        .request(
            Method::DELETE,
            "/users/me",
            alice.token(),
            Body::Json(json!({ "password": PASSWORD })),
        )
        .await;

    deleted.assert_status(StatusCode::NO_CONTENT);
    assert!(!works(&app, &alice.token).await);
    assert!(!works(&app, &session.access).await);
    try_refresh(&app, &session.refresh)
        .await
        .assert_unauthorized();
    app.get(&format!("/posts/{hers}"), bob.token())
        .await
        .assert_status(StatusCode::NOT_FOUND);
    let his_now = app.get(&format!("/posts/{his}"), bob.token()).await.json();
    assert_eq!(his_now["votes"], 0, "her vote went with her");
    app.get(&format!("/users/{}", alice.id), None)
        .await
        .assert_status(StatusCode::NOT_FOUND);
    app.try_log_in("alice@example.com", PASSWORD)
        .await
        .assert_status(StatusCode::FORBIDDEN);
    // The address is free again.
    app.sign_up("alice@example.com").await;
}

async fn users_me_answers_the_caller_with_their_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;

    let me = app.get("/users/me", alice.token()).await;
    let anonymous = app.get("/users/me", None).await;

    me.assert_status(StatusCode::OK);
    let body = me.json();
    assert_eq!(body["id"], alice.id);
    assert_eq!(body["email"], "alice@example.com");
    assert!(body["created_at"].is_string());
    assert!(body.get("password_hash").is_none());
    anonymous.assert_unauthorized();
}

async fn sessions_lists_the_live_ones_and_marks_the_current_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;
    let phone_login = app
        .post_form_with_headers(
            "/login",
            &[("username", "alice@example.com"), ("password", PASSWORD)],
            &[("User-Agent", "AlicePhone/1.0")],
        )
        .await;
    let phone = Pair::from(&phone_login);
    let laptop = log_in(&app, "alice@example.com").await;
    let gone = log_in(&app, "alice@example.com").await;
    app.post("/logout", json!({}), Some(&gone.access))
        .await
        .assert_status(StatusCode::NO_CONTENT);

    let listed = app.get("/sessions", Some(&laptop.access)).await;

    listed.assert_status(StatusCode::OK);
    let sessions = listed.json();
    let sessions = sessions.as_array().expect("a list");
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let current: Vec<bool> = sessions
        .iter()
        .map(|s| s["current"].as_bool().expect("a bool"))
        .collect();
    assert_eq!(current.iter().filter(|c| **c).count(), 1);
    let phone_session = sessions
        .iter()
        .find(|s| s["user_agent"] == "AlicePhone/1.0")
        .expect("the phone's session");
    assert_eq!(phone_session["current"], false);
    assert_eq!(phone_session["client_addr"], "127.0.0.1");
    for key in ["id", "created_at", "last_used_at", "expires_at"] {
        assert!(!phone_session[key].is_null(), "{key}: {phone_session}");
    }
    let from_phone = app.get("/sessions", Some(&phone.access)).await.json();
    let marked = from_phone
        .as_array()
        .expect("a list")
        .iter()
        .find(|s| s["current"] == true)
        .expect("one is current");
    assert_eq!(marked["id"], phone_session["id"]);
}

async fn deleting_a_session_ends_its_tokens_and_another_accounts_is_a_404(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let laptop = log_in(&app, "alice@example.com").await;
    let phone = log_in(&app, "alice@example.com").await;
    let sessions = app.get("/sessions", Some(&laptop.access)).await.json();
    let phone_id = sessions
        .as_array()
        .expect("a list")
        .iter()
        .find(|s| s["current"] == false)
        .expect("the other session")["id"]
        .clone();

    let by_bob = app
        .delete(&format!("/sessions/{phone_id}"), bob.token())
        .await;
    let by_alice = app
        .delete(&format!("/sessions/{phone_id}"), Some(&laptop.access))
        .await;
    let again = app
        .delete(&format!("/sessions/{phone_id}"), Some(&laptop.access))
        .await;

    by_bob.assert_error(
        StatusCode::NOT_FOUND,
        json!(format!("session with id: {phone_id} was not found")),
    );
    by_alice.assert_status(StatusCode::NO_CONTENT);
    again.assert_status(StatusCode::NOT_FOUND);
    assert!(!works(&app, &phone.access).await);
    try_refresh(&app, &phone.refresh)
        .await
        .assert_unauthorized();
    assert!(works(&app, &laptop.access).await);
    app.delete("/sessions/abc", Some(&laptop.access))
        .await
        .assert_validation_error(&["path", "id"]);
}

async fn past_the_cap_a_login_revokes_the_oldest_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;
    let oldest = log_in(&app, "alice@example.com").await;
    let second = log_in(&app, "alice@example.com").await;
    for _ in 2..postapi::auth::sessions::MAX_LIVE_SESSIONS {
        log_in(&app, "alice@example.com").await;
    }
    assert!(works(&app, &oldest.access).await, "at the cap");

    let newest = log_in(&app, "alice@example.com").await;

    assert!(!works(&app, &oldest.access).await);
    try_refresh(&app, &oldest.refresh)
        .await
        .assert_unauthorized();
    assert!(works(&app, &second.access).await);
    let listed = app.get("/sessions", Some(&newest.access)).await.json();
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(postapi::auth::sessions::MAX_LIVE_SESSIONS as usize)
    );
}

/// Rows of `sessions` and `refresh_tokens` in the test's database.
fn rows(app: &TestApp) -> (i64, i64) {
    use postapi::schema::{refresh_tokens, sessions};
    let mut conn = app.db();
    let sessions = sessions::table
        .count()
        .get_result(&mut conn)
        .expect("count sessions");
    let tokens = refresh_tokens::table
        .count()
        .get_result(&mut conn)
        .expect("count refresh tokens");
    (sessions, tokens)
}

async fn finished_sessions_and_expired_refresh_tokens_are_deleted_in_batches(backend: Backend) {
    use postapi::clock::Clock;
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;
    let live = log_in(&app, "alice@example.com").await;
    for _ in 0..3 {
        let ended = log_in(&app, "alice@example.com").await;
        app.post("/logout", json!({}), Some(&ended.access))
            .await
            .assert_status(StatusCode::NO_CONTENT);
    }
    let live = Pair::from(&try_refresh(&app, &live.refresh).await);
    assert_eq!(rows(&app), (4, 5));
    let now = app.clock.now().naive_utc();
    let mut conn = app.db();

    // Revoked sessions go, with their refresh tokens, two at a time.
    let first = postapi::db::sessions::delete_finished(&mut conn, now, now, 2).expect("cleanup");
    let second = postapi::db::sessions::delete_finished(&mut conn, now, now, 2).expect("cleanup");
    let third = postapi::db::sessions::delete_finished(&mut conn, now, now, 2).expect("cleanup");

    assert_eq!((first, second, third), (2, 1, 0));
    assert_eq!(rows(&app), (1, 2), "the live session and its two tokens");
    assert!(works(&app, &live.access).await);
    // Past its expiry (and an access token's lifetime), the live one goes too.
    let later = now + TimeDelta::days(15);
    let deleted =
        postapi::db::sessions::delete_finished(&mut conn, later, later, 10).expect("cleanup");
    assert_eq!(deleted, 1, "the session; its tokens go with it");
    assert_eq!(rows(&app), (0, 0));
}

#[derive(diesel::QueryableByName)]
struct PgPlanLine {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
    line: String,
}

#[derive(diesel::QueryableByName)]
struct SqlitePlanLine {
    #[diesel(sql_type = diesel::sql_types::Text)]
    detail: String,
}

/// The plan of `sql`; on PostgreSQL with sequential scans priced out, so
/// that a tiny table shows which index the query can use.
fn plan(conn: &mut postapi::db::DbConnection, sql: &str) -> String {
    use diesel::connection::SimpleConnection;
    match conn {
        postapi::db::DbConnection::Postgres(pg) => {
            pg.batch_execute("SET enable_seqscan = off")
                .expect("set enable_seqscan");
            let lines: Vec<PgPlanLine> = diesel::sql_query(format!("EXPLAIN {sql}"))
                .load(pg)
                .unwrap_or_else(|e| panic!("explain {sql}: {e}"));
            lines
                .into_iter()
                .map(|l| l.line)
                .collect::<Vec<_>>()
                .join("\n")
        }
        postapi::db::DbConnection::Sqlite(sqlite) => {
            let lines: Vec<SqlitePlanLine> = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
                .load(sqlite)
                .unwrap_or_else(|e| panic!("explain {sql}: {e}"));
            lines
                .into_iter()
                .map(|l| l.detail)
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}

async fn the_session_queries_use_their_indexes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut conn = app.db();
    let at = "'2026-12-03 12:00:00'";
    // As db::sessions writes them.
    for (sql, index) in [
        (
            "SELECT 1 FROM sessions WHERE id = 7 AND user_id = 3 AND revoked_at IS NULL".to_owned(),
            "sessions_pkey|sessions_user_id_idx|INTEGER PRIMARY KEY",
        ),
        (
            format!(
                "SELECT id FROM sessions WHERE user_id = 3 AND revoked_at IS NULL \
                 AND expires_at > {at} ORDER BY last_used_at DESC, id DESC"
            ),
            "sessions_user_id_idx",
        ),
        (
            "SELECT id FROM sessions WHERE revoked_at IS NOT NULL LIMIT 500".to_owned(),
            "sessions_revoked_at_idx",
        ),
        (
            format!("SELECT id FROM sessions WHERE expires_at < {at} LIMIT 500"),
            "sessions_expires_at_idx",
        ),
        (
            format!("SELECT token_hash FROM refresh_tokens WHERE expires_at < {at} LIMIT 500"),
            "refresh_tokens_expires_at_idx",
        ),
        (
            "SELECT session_id FROM refresh_tokens WHERE token_hash = 'ab'".to_owned(),
            "refresh_tokens_pkey|sqlite_autoindex_refresh_tokens_1",
        ),
        (
            "DELETE FROM refresh_tokens WHERE session_id = 7".to_owned(),
            "refresh_tokens_session_id_idx",
        ),
    ] {
        let plan = plan(&mut conn, &sql);
        assert!(
            index.split('|').any(|name| plan.contains(name)),
            "{sql}\nuses none of {index}:\n{plan}"
        );
    }
}

pub fn tests() -> Vec<Trial> {
    backend_tests![
        a_login_answers_a_refresh_token_and_the_access_tokens_lifetime,
        a_refresh_gives_a_working_pair_and_spends_the_old_token,
        a_spent_refresh_token_revokes_its_whole_session,
        a_refresh_token_is_taken_as_the_oauth2_form,
        an_unknown_refresh_token_is_a_401_and_a_missing_one_a_422,
        a_refresh_token_expires_after_the_configured_days_of_disuse,
        logout_ends_the_current_access_and_refresh_token_and_nothing_else,
        a_revoked_sessions_token_can_write_nothing,
        logout_all_ends_tokens_with_and_without_a_session_issued_before_it,
        logout_with_a_course_token_ends_the_accounts_course_tokens,
        changing_the_password_keeps_this_session_and_ends_the_others,
        a_wrong_current_password_is_a_403_and_counts_as_a_failed_login,
        a_new_password_is_checked_as_a_sign_ups_is,
        deleting_the_account_ends_its_tokens_and_takes_its_posts_and_votes,
        users_me_answers_the_caller_with_their_email,
        sessions_lists_the_live_ones_and_marks_the_current_one,
        deleting_a_session_ends_its_tokens_and_another_accounts_is_a_404,
        past_the_cap_a_login_revokes_the_oldest_session,
        finished_sessions_and_expired_refresh_tokens_are_deleted_in_batches,
        the_session_queries_use_their_indexes,
    ]
}
