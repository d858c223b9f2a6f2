//! The indexes behind listing and searching: the queries the server sends
//! use them (their plans say so, on both backends), SQLite's FTS5 search
//! table follows every insert, update and delete, and the migration fills it
//! from posts already there.

use actix_web::http::StatusCode;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};
use diesel_migrations::{FileBasedMigrations, MigrationHarness};
use postapi::db::DbConnection;
use postapi::db::pool::{ConnectionManager, run_migrations};
use serde_json::json;

use crate::helpers::{
    Backend, TestApp, TestDatabase, TestUser, Trial, backend_tests, plain_tests, postgres_tests,
};
use crate::round_trips::{last_statement_containing, spawn_counting};

/// Enough posts that a planner prefers an index to reading the table.
const SEEDED_POSTS: i32 = 20_000;

/// `SEEDED_POSTS` posts of a user of their own, titled "post <n> <random
/// hex>", written straight into the tables, then statistics refreshed.
fn seed(conn: &mut DbConnection) {
    conn.batch_execute(
        "INSERT INTO users (email, password_hash) VALUES ('seed@example.com', 'not a hash')",
    )
    .expect("seed a user");
    let owner = "(SELECT id FROM users WHERE email = 'seed@example.com')";
    let sql = match conn {
        DbConnection::Postgres(_) => format!(
            "INSERT INTO posts (title, content, owner_id, created_at) \
             SELECT 'post ' || n || ' ' || md5(n::text), 'seeded', {owner}, \
                    timestamp '2026-01-01' + n * interval '1 second' \
             FROM generate_series(1, {SEEDED_POSTS}) AS n; ANALYZE;"
        ),
        DbConnection::Sqlite(_) => format!(
            "WITH RECURSIVE n(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM n WHERE n < {SEEDED_POSTS}) \
             INSERT INTO posts (title, content, owner_id, created_at) \
             SELECT 'post ' || n || ' ' || hex(randomblob(8)), 'seeded', {owner}, \
                    datetime('2026-01-01', '+' || n || ' seconds') FROM n; ANALYZE;"
        ),
    };
    conn.batch_execute(&sql).expect("seed posts");
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    pg: String,
}

#[derive(QueryableByName)]
struct SqlitePlanLine {
    #[diesel(sql_type = Text)]
    detail: String,
}

/// A bind value as Diesel's debug output shows it.
enum Bind {
    Text(String),
    Number(i64),
    Bool(bool),
    Null,
}

/// Splits `SQL -- binds: [1, "text", ...]` (test-made values only: no
/// commas inside strings, nor a quote before one).
fn statement_and_binds(printed: &str) -> (String, Vec<Bind>) {
    let (sql, binds) = printed
        .split_once(" -- binds: [")
        .expect("Diesel prints the binds");
    let binds = binds
        .trim_end_matches(']')
        .split(", ")
        .filter(|item| !item.is_empty())
        .map(|item| match item.strip_prefix('"') {
            Some(text) => Bind::Text(
                text.trim_end_matches('"')
                    .replace("\\\\", "\\")
                    .replace("\\\"", "\""),
            ),
            None => parse_bare_bind(item),
        })
        .collect();
    (sql.to_owned(), binds)
}

/// A bind printed without quotes: a number, `Some(n)`, `None`, a boolean,
/// or a timestamp (`2026-12-03T14:51:58`, passed on as text).
fn parse_bare_bind(item: &str) -> Bind {
    let item = item
        .strip_prefix("Some(")
        .and_then(|inner| inner.strip_suffix(')'))
        .unwrap_or(item);
    match item {
        "None" => Bind::Null,
        "true" => Bind::Bool(true),
        "false" => Bind::Bool(false),
        _ => match item.parse() {
            Ok(n) => Bind::Number(n),
            Err(_) if item.contains('T') => Bind::Text(item.replace('T', " ")),
            Err(error) => panic!("a bind {item:?}: {error}"),
        },
    }
}

/// `binds` as the arguments of an `EXECUTE`: `'text', 1`.
fn sql_arguments(binds: &[Bind]) -> String {
    binds
        .iter()
        .map(|bind| match bind {
            Bind::Text(text) => format!("'{text}'"),
            Bind::Number(n) => n.to_string(),
            Bind::Bool(b) => b.to_string(),
            Bind::Null => "NULL".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The plan of a statement the server sent, with the binds it sent:
/// PostgreSQL's EXPLAIN of it prepared, SQLite's EXPLAIN QUERY PLAN.
fn plan(conn: &mut DbConnection, printed: &str) -> String {
    let (sql, binds) = statement_and_binds(printed);
    match conn {
        DbConnection::Postgres(_) => {
            conn.batch_execute(&format!("PREPARE explained AS {sql}"))
                .expect("prepare the server's query");
            let lines: Vec<PlanLine> = diesel::sql_query(format!(
                "EXPLAIN EXECUTE explained({})",
                sql_arguments(&binds)
            ))
            .load(conn)
            .unwrap_or_else(|e| panic!("explain {printed}: {e}"));
            conn.batch_execute("DEALLOCATE explained")
                .expect("deallocate");
            lines
                .into_iter()
                .map(|l| l.pg)
                .collect::<Vec<_>>()
                .join("\n")
        }
        DbConnection::Sqlite(_) => {
            let mut query = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}")).into_boxed();
            for bind in binds {
                query = match bind {
                    Bind::Text(text) => query.bind::<Text, _>(text),
                    Bind::Number(n) => query.bind::<BigInt, _>(n),
                    Bind::Bool(b) => query.bind::<Bool, _>(b),
                    Bind::Null => query.bind::<Nullable<Integer>, _>(None::<i32>),
                };
            }
            let lines: Vec<SqlitePlanLine> = query
                .load(conn)
                .unwrap_or_else(|e| panic!("explain {printed}: {e}"));
            lines
                .into_iter()
                .map(|l| l.detail)
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}

async fn list_and_search_queries_use_their_indexes(backend: Backend) {
    let app = spawn_counting(backend).await;
    let mut conn = app.db();
    // Before any request: blocking here long would let the server close the
    // client's kept-alive connection.
    seed(&mut conn);
    let alice = app.user("alice@example.com").await;
    let needle = app.create_post(&alice, "the Zebra crossing").await;

    let list_needles = ["vote_count", "created_at", "DESC", "LIMIT"];
    let first_page = app.get("/posts", alice.token()).await;
    let first_page_sql = last_statement_containing(&app, &list_needles).expect("the first page");
    let page = app.get("/posts?limit=10&skip=5", alice.token()).await;
    let list_sql = last_statement_containing(&app, &list_needles).expect("the list query");
    let found = app.get("/posts?search=zebra", alice.token()).await;
    let search_sql = last_statement_containing(&app, &["LIKE"]).expect("the search query");

    assert_eq!(first_page.status, StatusCode::OK);
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(found.json(), json!([needle]));
    let is_postgres = matches!(conn, DbConnection::Postgres(_));
    let search_plan = plan(&mut conn, &search_sql);
    eprintln!("search plan:\n{search_plan}");
    for sql in [first_page_sql, list_sql] {
        let list_plan = plan(&mut conn, &sql);
        eprintln!("list plan of {sql}:\n{list_plan}");
        assert!(
            list_plan.contains("posts_created_at_id_idx"),
            "the list walks the (created_at, id) index:\n{list_plan}"
        );
        assert!(
            !list_plan.contains("Sort") && !list_plan.contains("TEMP B-TREE"),
            "and sorts nothing:\n{list_plan}"
        );
    }
    let search_index = if is_postgres {
        "posts_title_trgm_idx"
    } else {
        "VIRTUAL TABLE INDEX"
    };
    assert!(
        search_plan.contains(search_index),
        "the search looks titles up in {search_index}:\n{search_plan}"
    );
}

/// Titles the search finds for `text`.
async fn titles_found(app: &TestApp, user: &TestUser, text: &str) -> Vec<String> {
    let response = app
        .get(
            &format!("/posts?search={}&limit=100", url_encode(text)),
            user.token(),
        )
        .await;
    response.assert_status(StatusCode::OK);
    response
        .json()
        .as_array()
        .map(|posts| {
            posts
                .iter()
                .filter_map(|p| p["title"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// Rows of SQLite's search table that match `phrase` (none on PostgreSQL,
/// whose index PostgreSQL itself maintains).
fn indexed_rows(conn: &mut DbConnection, phrase: &str) -> i64 {
    if matches!(conn, DbConnection::Postgres(_)) {
        return 0;
    }
    diesel::sql_query("SELECT COUNT(*) AS count FROM posts_search WHERE posts_search MATCH ?")
        .bind::<Text, _>(format!("\"{phrase}\""))
        .get_result::<Count>(conn)
        .expect("count search rows")
        .count
}

async fn the_search_index_follows_inserts_updates_and_deletes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let post = app.create_post(&alice, "Aardvark ÉCLAIR").await;
    app.create_post(&bob, "bob's aardvark").await;
    let path = format!("/posts/{}", post["id"]);

    let after_insert = titles_found(&app, &alice, "aardv").await;
    let edited = app
        .put(
            &path,
            json!({ "title": "Bumblebee", "content": "x" }),
            alice.token(),
        )
        .await;
    let old_title_after_update = titles_found(&app, &alice, "ÉCLAIR").await;
    let new_title_after_update = titles_found(&app, &alice, "BUMBLE").await;
    let stale_rows_after_update = indexed_rows(&mut app.db(), "éclair");
    app.delete(&path, alice.token()).await;
    let after_delete = titles_found(&app, &alice, "bumblebee").await;
    let stale_rows_after_delete = indexed_rows(&mut app.db(), "bumblebee");
    // Deleting a user deletes their posts through the foreign key's cascade.
    let bob_id = i32::try_from(bob.id).expect("an i32 id");
    diesel::delete(postapi::schema::users::table.find(bob_id))
        .execute(&mut app.db())
        .expect("delete bob");
    let after_cascade = titles_found(&app, &alice, "aardvark").await;
    let stale_rows_after_cascade = indexed_rows(&mut app.db(), "aardvark");

    assert_eq!(after_insert.len(), 2, "{after_insert:?}");
    assert_eq!(edited.status, StatusCode::OK);
    assert_eq!(old_title_after_update, Vec::<String>::new());
    assert_eq!(new_title_after_update, vec!["Bumblebee".to_owned()]);
    assert_eq!(after_delete, Vec::<String>::new());
    assert_eq!(after_cascade, Vec::<String>::new());
    assert_eq!(
        (
            stale_rows_after_update,
            stale_rows_after_delete,
            stale_rows_after_cascade
        ),
        (0, 0, 0),
        "no row of the search table outlives its title"
    );
}

async fn short_and_unicode_searches_find_what_like_finds(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    for title in ["İstanbul trip", "CAFÉ au lait", "straße", "100%_sure\\"] {
        app.create_post(&alice, title).await;
    }

    let searches = [
        // Each backend's lower() on both sides: İ folds alike in title and search.
        ("İST", vec!["İstanbul trip"]),
        ("café", vec!["CAFÉ au lait"]),
        ("aß", vec!["straße"]),
        ("ÉЕ", vec![]),
        ("%_s", vec!["100%_sure\\"]),
        ("e\\", vec!["100%_sure\\"]),
        ("\"", vec![]),
    ];
    for (search, expected) in searches {
        let found = titles_found(&app, &alice, search).await;
        assert_eq!(found, expected, "search {search:?}");
    }
}

fn url_encode(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// A new SQLite database with no migration run yet, and the migrations.
fn unmigrated_sqlite() -> (TestDatabase, DbConnection, FileBasedMigrations) {
    let database = TestDatabase::create(&Backend::Sqlite);
    let conn = ConnectionManager::new(database.url().clone())
        .establish()
        .expect("open the database");
    let migrations =
        FileBasedMigrations::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
            .expect("the SQLite migrations");
    (database, conn, migrations)
}

/// An SQLite database holding posts from before the search migration gets
/// them indexed by it.
fn the_sqlite_migration_indexes_posts_already_there() {
    let (_database, mut conn, migrations) = unmigrated_sqlite();
    let DbConnection::Sqlite(sqlite) = &mut conn else {
        unreachable!("an SQLite database")
    };
    sqlite
        .run_next_migration(migrations)
        .expect("the first migration");
    sqlite
        .batch_execute(
            "INSERT INTO users (email, password_hash) VALUES ('a@example.com', 'x'); \
             INSERT INTO posts (title, content, owner_id) VALUES ('Old Ünïcode TITLE', '', 1), ('another', '', 1);",
        )
        .expect("posts before the index");

    run_migrations(&mut conn).expect("the remaining migrations");
    let found =
        postapi::db::posts::list(&mut conn, user_one(), 10, 0, Some("ÜNÏCODE")).expect("search");
    let indexed = diesel::sql_query("SELECT COUNT(*) AS count FROM posts_search")
        .get_result::<Count>(&mut conn)
        .expect("count")
        .count;
    let rowids: Vec<i32> = diesel::sql_query("SELECT rowid AS id FROM posts_search ORDER BY rowid")
        .load::<Id>(&mut conn)
        .expect("rowids")
        .into_iter()
        .map(|row| row.id)
        .collect();

    assert_eq!(
        found
            .iter()
            .map(|p| p.post.title.as_str())
            .collect::<Vec<_>>(),
        ["Old Ünïcode TITLE"]
    );
    assert_eq!(indexed, 2);
    assert_eq!(rowids, [1, 2]);
}

/// The migration after which SQLite's search table is no longer contentless.
const CONVERSION: &str = "2026-11-30-000000_index_titles_for_older_sqlite";

/// User 1, as a token without a session speaks for them.
fn user_one() -> postapi::db::models::Caller {
    postapi::db::models::Caller {
        user_id: 1,
        session_id: None,
        issued_at: chrono::Utc::now().naive_utc(),
    }
}

/// Titles that `search` finds, as user 1 sees them, straight from the query.
fn titles_in(conn: &mut DbConnection, search: &str) -> Vec<String> {
    let mut titles: Vec<String> = postapi::db::posts::list(conn, user_one(), 100, 0, Some(search))
        .unwrap_or_else(|e| panic!("search {search:?}: {e}"))
        .into_iter()
        .map(|p| p.post.title)
        .collect();
    titles.sort();
    titles
}

/// An SQLite database made before the conversion, its contentless search
/// table holding posts (one since retitled, one since deleted), has those
/// posts found by search after it, and its new table keeps following writes.
fn a_database_with_the_contentless_search_table_converts_and_search_finds_its_old_posts() {
    let (_database, mut conn, migrations) = unmigrated_sqlite();
    let DbConnection::Sqlite(sqlite) = &mut conn else {
        unreachable!("an SQLite database")
    };
    let pending = sqlite
        .pending_migrations(migrations)
        .expect("the migrations");
    let earlier = pending
        .iter()
        .take_while(|migration| migration.name().to_string() != CONVERSION);
    for migration in earlier {
        sqlite
            .run_migration(&**migration)
            .unwrap_or_else(|e| panic!("migration {}: {e}", migration.name()));
    }
    let old_table = search_table_sql(&mut conn);
    conn.batch_execute(
        "INSERT INTO users (email, password_hash) VALUES ('a@example.com', 'x'); \
         INSERT INTO posts (title, content, owner_id) VALUES \
             ('İstanbul trip', '', 1), ('Old Ünïcode TITLE', '', 1), \
             ('Doomed dodo', '', 1), ('First draft', '', 1); \
         INSERT INTO votes (user_id, post_id) VALUES (1, 1); \
         UPDATE posts SET title = 'Final version' WHERE title = 'First draft'; \
         DELETE FROM posts WHERE title = 'Doomed dodo';",
    )
    .expect("posts in the contentless table");

    run_migrations(&mut conn).expect("the conversion");
    let new_table = search_table_sql(&mut conn);
    let found = ["İST", "ünïcode", "dodo", "draft", "version"]
        .map(|search| (search, titles_in(&mut conn, search)));
    let vote_count = diesel::sql_query("SELECT vote_count AS count FROM posts WHERE id = 1")
        .get_result::<Count>(&mut conn)
        .expect("the vote count")
        .count;
    let consistent =
        conn.batch_execute("INSERT INTO posts_search (posts_search) VALUES ('integrity-check')");
    // Writes after the conversion go through the new table's triggers.
    conn.batch_execute(
        "UPDATE posts SET title = 'Istanbul again' WHERE id = 1; \
         DELETE FROM posts WHERE title = 'Final version'; \
         INSERT INTO posts (title, content, owner_id) VALUES ('A newer post', '', 1);",
    )
    .expect("writes after the conversion");
    let after_writes = ["İST", "istanbul", "version", "newer"]
        .map(|search| (search, titles_in(&mut conn, search)));
    // What lower() made of the two titles gone: "i" and a combining dot above.
    let stale =
        indexed_rows(&mut conn, "i\u{307}stanbul trip") + indexed_rows(&mut conn, "version");

    assert!(
        old_table.contains("contentless_delete"),
        "the earlier migrations made the contentless table: {old_table}"
    );
    assert!(
        !new_table.contains("contentless_delete"),
        "the conversion replaced it: {new_table}"
    );
    assert_eq!(
        as_strs(&found),
        [
            ("İST", vec!["İstanbul trip"]),
            ("ünïcode", vec!["Old Ünïcode TITLE"]),
            ("dodo", vec![]),
            ("draft", vec![]),
            ("version", vec!["Final version"]),
        ]
    );
    assert_eq!(vote_count, 1);
    assert_eq!(consistent, Ok(()), "FTS5's integrity check");
    assert_eq!(
        as_strs(&after_writes),
        [
            ("İST", vec![]),
            ("istanbul", vec!["Istanbul again"]),
            ("version", vec![]),
            ("newer", vec!["A newer post"]),
        ]
    );
    assert_eq!(
        stale, 0,
        "no trigrams of a replaced or deleted title remain"
    );
}

/// Searches and their titles, borrowed, to compare with literals.
fn as_strs<'a>(found: &'a [(&'a str, Vec<String>)]) -> Vec<(&'a str, Vec<&'a str>)> {
    found
        .iter()
        .map(|(search, titles)| (*search, titles.iter().map(String::as_str).collect()))
        .collect()
}

#[derive(QueryableByName)]
struct Sql {
    #[diesel(sql_type = Text)]
    sql: String,
}

/// The `CREATE VIRTUAL TABLE` statement of SQLite's search table.
fn search_table_sql(conn: &mut DbConnection) -> String {
    diesel::sql_query("SELECT sql FROM sqlite_master WHERE name = 'posts_search'")
        .get_result::<Sql>(conn)
        .expect("the search table")
        .sql
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = Integer)]
    id: i32,
}

#[derive(QueryableByName)]
struct PlanCounts {
    #[diesel(sql_type = BigInt)]
    generic_plans: i64,
    #[diesel(sql_type = BigInt)]
    custom_plans: i64,
}

/// How PostgreSQL planned a statement the server sent, prepared here and
/// executed `times` times with the binds it was sent with.
fn plan_counts(conn: &mut DbConnection, printed: &str, times: usize) -> PlanCounts {
    let (sql, binds) = statement_and_binds(printed);
    let arguments = sql_arguments(&binds);
    conn.batch_execute(&format!("PREPARE counted AS {sql}"))
        .expect("prepare the server's query");
    for _ in 0..times {
        conn.batch_execute(&format!("EXECUTE counted({arguments})"))
            .expect("execute the server's query");
    }
    let counts = diesel::sql_query(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = 'counted'",
    )
    .get_result(conn)
    .expect("the plan counts");
    conn.batch_execute("DEALLOCATE counted")
        .expect("deallocate");
    counts
}

/// PostgreSQL plans a statement with a bound LIMIT again on every execution;
/// the first page of the list, the statement sent most, has its page size
/// written in, so PostgreSQL keeps one plan for it.
async fn the_first_page_of_posts_keeps_one_plan_on_postgresql(backend: Backend) {
    let app = spawn_counting(backend).await;
    let alice = app.user("alice@example.com").await;
    app.create_post(&alice, "a post").await;
    let list_needles = ["vote_count", "created_at", "DESC", "LIMIT"];

    let first_page = app.get("/posts?limit=7", alice.token()).await;
    let first_page_sql = last_statement_containing(&app, &list_needles).expect("the first page");
    let later_page = app.get("/posts?limit=7&skip=1", alice.token()).await;
    let later_page_sql = last_statement_containing(&app, &list_needles).expect("a later page");

    assert_eq!(first_page.status, StatusCode::OK);
    assert_eq!(later_page.status, StatusCode::OK);
    let (sql, _) = statement_and_binds(&first_page_sql);
    assert!(
        sql.ends_with(" LIMIT 7"),
        "the page size is in the text: {sql}"
    );
    let mut conn = app.db();
    let first = plan_counts(&mut conn, &first_page_sql, 10);
    assert!(
        first.generic_plans >= 5 && first.custom_plans <= 5,
        "after five custom plans, one generic plan serves: {} generic, {} custom",
        first.generic_plans,
        first.custom_plans
    );
    // The contrast, which is why: with its values bound, every execution of
    // a later page is planned for them.
    let later = plan_counts(&mut conn, &later_page_sql, 10);
    assert_eq!((later.generic_plans, later.custom_plans), (0, 10));
}

pub fn tests() -> Vec<Trial> {
    let mut trials = backend_tests![
        list_and_search_queries_use_their_indexes,
        the_search_index_follows_inserts_updates_and_deletes,
        short_and_unicode_searches_find_what_like_finds,
    ];
    trials.extend(postgres_tests![
        the_first_page_of_posts_keeps_one_plan_on_postgresql
    ]);
    trials.extend(plain_tests![
        the_sqlite_migration_indexes_posts_already_there,
        a_database_with_the_contentless_search_table_converts_and_search_finds_its_old_posts,
    ]);
    trials
}
