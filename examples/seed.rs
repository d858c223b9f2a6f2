//! Seeds posts straight into the tables, for `.ci/bench`:
//! `seed DATABASE_URL OWNER_EMAIL VOTER_EMAIL COUNT`.
//!
//! Adds COUNT posts of OWNER (older than any already there, titled
//! "post <n> <random hex>"; the first seeding also adds one titled "the zebra
//! crossing" for one-match searches), VOTER votes on a third of them, then
//! refreshes the planner's statistics. Connects through postapi's own
//! connection manager, so SQLite's triggers see the application's lower().

use std::process::ExitCode;

use diesel::connection::SimpleConnection;
use postapi::config::DatabaseUrl;
use postapi::db::DbConnection;
use postapi::db::pool::ConnectionManager;

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let [url, owner, voter, count] = arguments.as_slice() else {
        eprintln!("usage: seed DATABASE_URL OWNER_EMAIL VOTER_EMAIL COUNT");
        return ExitCode::FAILURE;
    };
    match seed(url, owner, voter, count) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("seed: {error}");
            ExitCode::FAILURE
        }
    }
}

fn seed(url: &str, owner: &str, voter: &str, count: &str) -> Result<(), String> {
    let count: u32 = count.parse().map_err(|_| "COUNT is not a number")?;
    for email in [owner, voter] {
        if !email
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@.-_".contains(c))
        {
            return Err(format!("{email:?} is not a plain email"));
        }
    }
    let url = DatabaseUrl::parse(url).map_err(|e| e.to_string())?;
    let mut conn = ConnectionManager::new(url)
        .establish()
        .map_err(|e| e.to_string())?;
    let owner = format!("(SELECT id FROM users WHERE email = '{owner}')");
    let voter = format!("(SELECT id FROM users WHERE email = '{voter}')");
    let (numbers, title, created_at) = match conn {
        DbConnection::Postgres(_) => (
            format!("SELECT generate_series(1, {count}) AS n"),
            "'post ' || n || ' ' || md5(random()::text)",
            "timestamp '2020-01-01' - n * interval '1 second'",
        ),
        DbConnection::Sqlite(_) => (
            format!(
                "WITH RECURSIVE numbers(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM numbers WHERE n < {count}) \
                 SELECT n FROM numbers"
            ),
            "'post ' || n || ' ' || lower(hex(randomblob(8)))",
            "datetime('2020-01-01', '-' || n || ' seconds')",
        ),
    };
    let sql = format!(
        "CREATE TEMPORARY TABLE seed_start AS SELECT COALESCE(MAX(id), 0) AS id FROM posts; \
         INSERT INTO posts (title, content, published, created_at, owner_id) \
             SELECT CASE WHEN n = 500 AND (SELECT id FROM seed_start) = 0 \
                         THEN 'the zebra crossing' ELSE {title} END, \
                    'seeded for the benchmark', TRUE, {created_at}, {owner} \
             FROM ({numbers}) AS numbers; \
         INSERT INTO votes (user_id, post_id) \
             SELECT {voter}, id FROM posts WHERE id > (SELECT id FROM seed_start) AND id % 3 = 0; \
         DROP TABLE seed_start; \
         ANALYZE;"
    );
    conn.batch_execute(&sql).map_err(|e| e.to_string())
}
