//! Black-box tests: each starts the real app on a random port with its own
//! database, on SQLite and (with TEST_POSTGRES_URL) PostgreSQL.
//!
//! A harness of our own (libtest-mimic) so that the PostgreSQL half shows as
//! ignored, not passed, when no server is named. Each module lists its tests
//! in `tests()`; a test left out of the list is dead code, which clippy fails.

mod helpers;

mod database;
mod dead_connections;
mod health_and_errors;
mod login;
mod password_hashing;
mod posts;
mod round_trips;
mod search_index;
mod startup;
mod tokens;
mod users;
mod votes;

fn main() -> std::process::ExitCode {
    let arguments = libtest_mimic::Arguments::from_args();
    let trials = [
        database::tests(),
        dead_connections::tests(),
        health_and_errors::tests(),
        login::tests(),
        password_hashing::tests(),
        posts::tests(),
        round_trips::tests(),
        search_index::tests(),
        startup::tests(),
        tokens::tests(),
        users::tests(),
        votes::tests(),
    ]
    .into_iter()
    .flatten()
    .collect();
    libtest_mimic::run(&arguments, trials).exit_code()
}
