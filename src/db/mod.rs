//! The database layer: connections and pool, row types, and one module of
//! plain synchronous queries per table.

pub mod availability;
pub mod models;
pub mod pool;
pub mod post_writer;
pub mod posts;
pub mod users;
pub mod votes;
pub mod wal_keeper;

pub use pool::{DbConnection, DbPool, run, run_retrying, write_transaction};
