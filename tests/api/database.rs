//! The database layer under the API: migrations, the per-connection SQLite
//! set-up, and writers racing through the `BEGIN IMMEDIATE` transactions.

use actix_web::http::StatusCode;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use futures_util::future::join_all;
use postapi::config::{DatabaseUrl, SqliteSynchronous};
use postapi::db::DbConnection;
use postapi::db::pool::{ConnectionManager, connect_and_migrate, run_migrations};
use postapi::db::wal_keeper::{MAX_WAL_BYTES, WalKeeper};
use postapi::schema::{posts, users, votes};
use serde_json::json;

use crate::helpers::{
    Backend, TestApp, TestDatabase, Trial, backend_tests, plain_tests, test_settings,
};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

async fn start_up_migrates_a_new_database_and_a_second_run_applies_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut conn = app.db();

    let tables_answer = users::table.count().get_result::<i64>(&mut conn).is_ok()
        && posts::table.count().get_result::<i64>(&mut conn).is_ok()
        && votes::table.count().get_result::<i64>(&mut conn).is_ok();
    let again = run_migrations(&mut conn);
    let applied = diesel::sql_query("SELECT COUNT(*) AS count FROM __diesel_schema_migrations")
        .get_result::<Count>(&mut conn)
        .map(|row| row.count);

    assert!(tables_answer, "users, posts and votes exist");
    assert_eq!(again, Ok(()));
    assert_eq!(applied, Ok(migration_count()));
}

/// The migrations the crate embeds (both backends have the same versions).
fn migration_count() -> i64 {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let entries = std::fs::read_dir(dir).expect("migrations/sqlite is readable");
    let count = entries
        .filter(|entry| entry.as_ref().is_ok_and(|e| e.path().is_dir()))
        .count();
    i64::try_from(count).expect("a small number")
}

async fn parallel_updates_and_deletes_never_meet_a_locked_database(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let mut ids = Vec::new();
    for n in 0..8 {
        ids.push(
            app.create_post(&alice, &format!("post {n}")).await["id"]
                .as_i64()
                .unwrap_or_default(),
        );
    }

    let (app, alice) = (&app, &alice);
    let update_answers = join_all(ids.iter().flat_map(|id| {
        (0..3).map(move |n| async move {
            let body = json!({ "title": format!("edit {n}"), "content": "edited" });
            app.put(&format!("/posts/{id}"), body, alice.token())
                .await
                .status
        })
    }))
    .await;
    let delete_answers = join_all(ids.iter().map(|id| async move {
        app.delete(&format!("/posts/{id}"), alice.token())
            .await
            .status
    }))
    .await;

    assert!(
        update_answers
            .iter()
            .all(|status| *status == StatusCode::OK),
        "{update_answers:?}"
    );
    assert!(
        delete_answers
            .iter()
            .all(|status| *status == StatusCode::NO_CONTENT),
        "{delete_answers:?}"
    );
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

/// A pragma's value; `column` is the name SQLite gives its result.
fn pragma(conn: &mut diesel::SqliteConnection, name: &str, column: &str) -> String {
    diesel::sql_query(format!(
        "SELECT CAST({column} AS TEXT) AS value FROM pragma_{name}"
    ))
    .get_result::<Setting>(conn)
    .map(|row| row.value)
    .unwrap_or_else(|e| panic!("PRAGMA {name}: {e}"))
}

fn every_sqlite_connection_enforces_foreign_keys_in_wal_mode_waits_for_writers_and_bounds_its_log()
{
    let database = TestDatabase::create(&Backend::Sqlite);
    let manager = ConnectionManager::new(database.url().clone());

    for _ in 0..3 {
        let DbConnection::Sqlite(mut conn) = manager.establish().expect("connect") else {
            panic!("a SQLite URL gives a SQLite connection");
        };
        assert_eq!(pragma(&mut conn, "foreign_keys", "foreign_keys"), "1");
        assert_eq!(pragma(&mut conn, "journal_mode", "journal_mode"), "wal");
        assert_eq!(pragma(&mut conn, "busy_timeout", "timeout"), "5000");
        assert_eq!(
            pragma(&mut conn, "journal_size_limit", "journal_size_limit"),
            MAX_WAL_BYTES.to_string()
        );
        assert_eq!(
            pragma(&mut conn, "synchronous", "synchronous"),
            "1",
            "NORMAL"
        );
    }
}

fn sqlite_synchronous_sets_the_pragma_of_every_pooled_connection() {
    for (mode, pragma_value) in [
        (SqliteSynchronous::Normal, "1"),
        (SqliteSynchronous::Full, "2"),
    ] {
        let database = TestDatabase::create(&Backend::Sqlite);
        let mut settings = test_settings(database.url().clone());
        settings.sqlite_synchronous = mode;
        let pool = connect_and_migrate(&settings).expect("a pool");
        // Every connection of the pool, held at once so each is another.
        let mut held: Vec<_> = (0..settings.pool_size)
            .map(|_| pool.checkout(pool.deadline()).expect("a connection"))
            .collect();
        for conn in &mut held {
            let DbConnection::Sqlite(conn) = &mut ***conn else {
                panic!("a SQLite pool holds SQLite connections");
            };
            assert_eq!(
                pragma(conn, "synchronous", "synchronous"),
                pragma_value,
                "{mode:?}"
            );
        }
    }
}

fn sqlite_log_bytes(database: &std::path::Path) -> u64 {
    let mut log = database.as_os_str().to_owned();
    log.push("-wal");
    std::fs::metadata(log).map_or(0, |m| m.len())
}

fn a_sqlite_log_past_its_size_is_checkpointed_so_the_next_write_starts_it_over() {
    let database = TestDatabase::create(&Backend::Sqlite);
    let DatabaseUrl::Sqlite(path) = database.url().clone() else {
        panic!("a SQLite database");
    };
    let manager = ConnectionManager::new(database.url().clone());
    let DbConnection::Sqlite(mut writer) = manager.establish().expect("connect") else {
        panic!("a SQLite URL gives a SQLite connection");
    };
    // No checkpoints of SQLite's own, as when writers never pause.
    writer
        .batch_execute("PRAGMA wal_autocheckpoint = 0; CREATE TABLE filler (bytes BLOB);")
        .expect("set up");
    let chunks = MAX_WAL_BYTES / (1 << 20) + 4;
    for _ in 0..chunks {
        writer
            .batch_execute("INSERT INTO filler VALUES (randomblob(1048576))")
            .expect("insert");
    }
    assert!(sqlite_log_bytes(&path) > MAX_WAL_BYTES);

    let _keeper =
        WalKeeper::start(&path, move || manager.establish_sqlite()).expect("start the keeper");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        writer
            .batch_execute("INSERT INTO filler VALUES (x'00')")
            .expect("insert");
        // Emptied, then started over by the write: a page or two.
        let size = sqlite_log_bytes(&path);
        if size < 1 << 20 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the log is still {size} bytes"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

pub fn tests() -> Vec<Trial> {
    let mut tests = backend_tests![
        start_up_migrates_a_new_database_and_a_second_run_applies_nothing,
        parallel_updates_and_deletes_never_meet_a_locked_database,
    ];
    tests.extend(plain_tests![
        every_sqlite_connection_enforces_foreign_keys_in_wal_mode_waits_for_writers_and_bounds_its_log,
        sqlite_synchronous_sets_the_pragma_of_every_pooled_connection,
        a_sqlite_log_past_its_size_is_checkpointed_so_the_next_write_starts_it_over
    ]);
    tests
}
