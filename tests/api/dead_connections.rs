//! Pooled connections that PostgreSQL ended (as a restart does) cost no 500:
//! a read retries on another connection, a write answers 503, and the dead
//! connections leave the pool. Ended with `pg_terminate_backend` on the
//! test's own database; the shared server keeps running.

use actix_web::http::StatusCode;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use postapi::config::DatabaseUrl;
use serde_json::json;

use crate::helpers::{Backend, TestApp, Trial, postgres_tests};

#[derive(QueryableByName)]
struct Ended {
    #[diesel(sql_type = BigInt)]
    ended: i64,
}

/// Ends every other session on the app's database; how many it ended.
fn end_the_servers_sessions(app: &TestApp) -> i64 {
    let DatabaseUrl::Postgres(url) = app.database().url() else {
        unreachable!("a PostgreSQL test")
    };
    let name = url.rsplit('/').next().unwrap_or_default().to_owned();
    let mut conn = app.db();
    diesel::sql_query(
        "SELECT COUNT(pg_terminate_backend(pid)) AS ended FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind::<Text, _>(name)
    .get_result::<Ended>(&mut conn)
    .expect("end the sessions")
    .ended
}

async fn connections_ended_by_the_database_give_no_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    app.create_post(&alice, "before").await;

    let ended = end_the_servers_sessions(&app);
    let read = app.get("/posts", alice.token()).await;
    let ended_again = end_the_servers_sessions(&app);
    let mut writes = Vec::new();
    for n in 0..6 {
        let body = json!({ "title": format!("after {n}"), "content": "x" });
        writes.push(app.post("/posts", body, alice.token()).await.status);
    }

    assert!(ended > 0 && ended_again > 0, "the pool had sessions to end");
    assert_eq!(read.status, StatusCode::OK, "{}", read.text());
    assert!(
        writes.iter().all(|status| matches!(
            *status,
            StatusCode::CREATED | StatusCode::SERVICE_UNAVAILABLE
        )),
        "{writes:?}"
    );
    assert_eq!(
        writes.last(),
        Some(&StatusCode::CREATED),
        "the dead connections are gone: {writes:?}"
    );
}

pub fn tests() -> Vec<Trial> {
    postgres_tests![connections_ended_by_the_database_give_no_500]
}
