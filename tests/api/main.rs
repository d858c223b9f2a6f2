//! Black-box tests: each starts the real app on a random port with its own
//! database, on SQLite and (with TEST_POSTGRES_URL) PostgreSQL.
//!
//! A harness of our own (libtest-mimic) so that the PostgreSQL half shows as
//! ignored, not passed, when no server is named. Each module lists its tests
//! in `tests()`; a test left out of the list is dead code, which clippy fails.

mod helpers;

mod allow;
mod course_shape;
mod database;
mod dead_connections;
mod error_bodies;
mod health_and_errors;
mod limits;
mod login;
mod lookalike_emails;
mod metrics;
mod openapi;
mod outage;
mod outage_log;
mod password_hashing;
mod post_batches;
mod posts;
mod proxy;
mod request_ids;
mod rotation;
mod round_trips;
mod search_index;
mod sessions;
mod shutdown;
mod slow_clients;
mod startup;
mod throttling;
mod tokens;
mod users;
mod votes;

fn main() -> std::process::ExitCode {
    let arguments = libtest_mimic::Arguments::from_args();
    let trials = [
        allow::tests(),
        course_shape::tests(),
        database::tests(),
        dead_connections::tests(),
        error_bodies::tests(),
        health_and_errors::tests(),
        limits::tests(),
        login::tests(),
        lookalike_emails::tests(),
        metrics::tests(),
        openapi::tests(),
        outage::tests(),
        outage_log::tests(),
        password_hashing::tests(),
        post_batches::tests(),
        posts::tests(),
        request_ids::tests(),
        rotation::tests(),
        round_trips::tests(),
        search_index::tests(),
        sessions::tests(),
        shutdown::tests(),
        slow_clients::tests(),
        startup::tests(),
        throttling::tests(),
        tokens::tests(),
        users::tests(),
        votes::tests(),
    ]
    .into_iter()
    .flatten()
    .collect();
    libtest_mimic::run(&arguments, trials).exit_code()
}
