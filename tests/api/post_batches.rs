//! Group commit on PostgreSQL: new posts that arrive while others are being
//! written are written together, each request still answered with its own
//! post, and a deleted owner's post in a batch fails alone.

use std::time::Duration;

use actix_web::http::StatusCode;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use futures_util::future::join_all;
use postapi::db::DbConnection;
use serde_json::json;

use crate::helpers::{Backend, TestApp, TestResponse, TestUser, Trial, postgres_tests};
use crate::round_trips::{spawn_counting, statements_containing};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

fn count(conn: &mut DbConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .expect("a count")
        .count
}

/// Sends `posts` (author, title) at once while `posts` is locked, so they
/// queue behind the writes already waiting for the lock; releases it `hold`
/// after a write first waits. The answers, in order.
async fn post_together_while_locked(
    app: &TestApp,
    posts: &[(&TestUser, String)],
    hold: Duration,
) -> Vec<TestResponse> {
    let mut locker = app.db();
    locker
        .batch_execute("BEGIN; LOCK TABLE posts IN EXCLUSIVE MODE")
        .expect("lock posts");
    let requests = join_all(posts.iter().map(|(user, title)| {
        app.post(
            "/posts",
            json!({ "title": title, "content": "together" }),
            user.token(),
        )
    }));
    let release = async {
        let mut watcher = app.db();
        for _ in 0..200 {
            let waiting = count(
                &mut watcher,
                "SELECT count(*) AS count FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            );
            if waiting > 0 {
                break;
            }
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
        // The writes' turns are taken: what arrives now queues.
        actix_web::rt::time::sleep(hold).await;
        locker.batch_execute("COMMIT").expect("unlock posts");
    };
    let (responses, ()) = futures_util::future::join(requests, release).await;
    responses
}

async fn posts_arriving_together_are_written_by_fewer_statements(backend: Backend) {
    let app = spawn_counting(backend).await;
    let alice = app.user("alice@example.com").await;
    let posts: Vec<_> = (0..20).map(|n| (&alice, format!("post {n}"))).collect();

    let responses = post_together_while_locked(&app, &posts, Duration::from_millis(300)).await;

    let mut ids = Vec::new();
    for ((_, title), response) in posts.iter().zip(&responses) {
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
        assert_eq!(
            response.json()["title"],
            title.as_str(),
            "each request gets its own post"
        );
        assert_eq!(response.json()["owner"]["id"], alice.id);
        ids.push(response.json()["id"].as_i64().expect("an id"));
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 20, "twenty posts, twenty ids");
    let stored = count(&mut app.db(), "SELECT count(*) AS count FROM posts");
    assert_eq!(stored, 20);
    let inserts = statements_containing(&app, "INSERT INTO posts");
    assert!(
        inserts <= 10,
        "twenty posts that queued together took {inserts} statements"
    );
}

async fn a_deleted_owners_post_in_a_batch_fails_alone(backend: Backend) {
    let app = spawn_counting(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    app.db()
        .batch_execute(&format!("DELETE FROM users WHERE id = {}", bob.id))
        .expect("delete bob");
    // Bob's post in the middle, so it queues with Alice's.
    let posts: Vec<_> = (0..10)
        .map(|n| {
            let author = if n == 5 { &bob } else { &alice };
            (author, format!("post {n}"))
        })
        .collect();

    let responses = post_together_while_locked(&app, &posts, Duration::from_millis(300)).await;

    for (n, response) in responses.iter().enumerate() {
        if n == 5 {
            response.assert_unauthorized();
        } else {
            assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
            assert_eq!(response.json()["title"], format!("post {n}"));
        }
    }
    let stored = count(&mut app.db(), "SELECT count(*) AS count FROM posts");
    assert_eq!(stored, 9, "Alice's nine posts, once each");
}

async fn a_post_queued_past_the_pool_timeout_is_a_503_and_never_written(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.pool_timeout = Duration::from_millis(500);
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let posts: Vec<_> = (0..8).map(|n| (&alice, format!("post {n}"))).collect();

    // Held well past the pool timeout: the writes under way wait for the
    // lock, the posts queued behind them run out of time.
    let responses = post_together_while_locked(&app, &posts, Duration::from_secs(2)).await;

    let created = responses
        .iter()
        .filter(|response| response.status == StatusCode::CREATED)
        .count();
    for response in &responses {
        if response.status != StatusCode::CREATED {
            response.assert_status(StatusCode::SERVICE_UNAVAILABLE);
            assert!(response.header("retry-after").is_some());
        }
    }
    assert!(
        created >= 1,
        "the writes under way finish once the lock goes"
    );
    assert!(
        created < posts.len(),
        "the posts queued behind them time out"
    );
    // A later post's batch would carry any refused post still queued.
    app.create_post(&alice, "later").await;
    let stored = count(&mut app.db(), "SELECT count(*) AS count FROM posts");
    assert_eq!(
        stored,
        created as i64 + 1,
        "no refused post is written afterwards"
    );
}

pub fn tests() -> Vec<Trial> {
    postgres_tests![
        posts_arriving_together_are_written_by_fewer_statements,
        a_deleted_owners_post_in_a_batch_fails_alone,
        a_post_queued_past_the_pool_timeout_is_a_503_and_never_written,
    ]
}
