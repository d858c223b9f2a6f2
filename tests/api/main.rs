//! Black-box tests: each starts the real app on a random port with its own
//! database, on SQLite and (with TEST_POSTGRES_URL) PostgreSQL.

mod helpers;

mod database;
mod health_and_errors;
mod login;
mod posts;
mod startup;
mod tokens;
mod users;
mod votes;
