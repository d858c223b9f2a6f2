//! The database layer: connections and the pool, migrations, row types, and
//! one module of plain synchronous queries per table. Nothing here knows of
//! HTTP: queries return Diesel's `QueryResult`, the pool its [`DbError`];
//! the `store` module runs them for the handlers.

pub mod availability;
pub mod login_failures;
pub mod models;
pub mod pool;
pub mod posts;
pub mod sessions;
pub mod users;
pub mod votes;
pub mod wal_keeper;

pub use pool::{DbConnection, DbPool};

/// What the database layer can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A statement failed.
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    /// No connection could be had: the database is down, or every connection
    /// stayed busy until the request's deadline.
    #[error("{0}")]
    Unavailable(String),
}

/// Whether a statement failed because its connection is gone.
pub fn is_connection_lost(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        )
        | Error::BrokenTransactionManager => true,
        // A server shutting down (a restart) ends sessions with 57P01, which
        // libpq may report before it marks the connection bad.
        Error::DatabaseError(_, info) => [
            "terminating connection",
            "server closed the connection",
            "no connection to the server",
            "connection to server was lost",
        ]
        .iter()
        .any(|words| info.message().contains(words)),
        _ => false,
    }
}
