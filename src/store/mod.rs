//! Runs database work for the handlers: off the async executor, within one
//! deadline per request, with the caller's check carried by the work's own
//! statements, and new posts gathered into group commits
//! ([`post_writer`]). The queries themselves are [`crate::db`]'s.

pub mod post_writer;

use std::time::Instant;

use actix_web::web;
use diesel::QueryResult;

use crate::db::models::User;
use crate::db::{self, DbConnection, DbError, DbPool};
use crate::error::AppError;

pub use post_writer::{PostToWrite, PostWriter};

/// Runs `work` with a pooled connection on actix's blocking thread pool, so
/// neither waiting for a connection nor the query itself stalls the executor.
/// While the database is known to be down it answers 503 at once, without
/// taking a blocking thread.
pub async fn run<T, F>(pool: &DbPool, work: F) -> Result<T, AppError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    run_until(pool, pool.deadline(), work).await
}

/// As [`run`], with the deadline of a request that has waited already.
pub(crate) async fn run_until<T, F>(
    pool: &DbPool,
    deadline: Instant,
    work: F,
) -> Result<T, AppError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    with_turn(pool, deadline, move |pool| {
        let mut conn = pool.checkout(deadline)?;
        let result = work(&mut conn);
        if matches!(result, Err(AppError::Unavailable(_))) {
            // The database went away under this connection (a restart, say):
            // it must not serve another request.
            conn.mark_broken();
        }
        result
    })
    .await
}

/// As [`run`], for work that may run more than once: when the connection
/// turns out dead (the database restarted since it was last used), it is
/// discarded and the work tried on another, until a live one answers or
/// every connection the pool held has been tried.
pub async fn run_retrying<T, F>(pool: &DbPool, work: F) -> Result<T, AppError>
where
    F: Fn(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    let deadline = pool.deadline();
    with_turn(pool, deadline, move |pool| {
        let mut attempts_left = pool.max_size();
        loop {
            let mut conn = pool.checkout(deadline)?;
            match work(&mut conn) {
                Err(AppError::Unavailable(cause)) => {
                    conn.mark_broken();
                    if attempts_left == 0 {
                        return Err(AppError::Unavailable(cause));
                    }
                    // Once per dead connection, which an outage bounds by the
                    // pool's size: the outage itself is logged by the pool.
                    log::debug!("discarding a dead database connection ({cause}); trying another");
                    attempts_left -= 1;
                }
                result => return result,
            }
        }
    })
    .await
}

/// Runs `work` on the blocking pool once the request's turn for a connection
/// has come, all by `deadline`; 503 at once while the database is known to
/// be down.
async fn with_turn<T, F>(pool: &DbPool, deadline: Instant, work: F) -> Result<T, AppError>
where
    F: FnOnce(&DbPool) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    let result = if pool.known_unreachable() {
        Err(DbError::Unavailable("the database is marked unreachable".into()).into())
    } else {
        match pool.turn(deadline).await {
            Ok(turn) => {
                let pool = pool.clone();
                web::block(move || {
                    let _turn = turn;
                    work(&pool)
                })
                .await
                .unwrap_or_else(|blocking| Err(blocking.into()))
            }
            Err(error) => Err(error.into()),
        }
    };
    if matches!(result, Err(AppError::Unavailable(_))) {
        pool.note_refused();
    }
    result
}

/// Runs `work` for user `caller` once the account is found on the same
/// connection, and given it: a deleted user's token gets 401 before anything
/// else runs.
pub async fn run_as<T, F>(pool: &DbPool, caller: i32, work: F) -> Result<T, AppError>
where
    F: FnOnce(&mut DbConnection, User) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    run(pool, move |conn| {
        let account = require_account(conn, caller)?;
        work(conn, account)
    })
    .await
}

/// Runs `query`, a read for user `caller` that finds nothing unless the
/// account exists (it filters on [`db::users::exists_filter`]), so a read
/// costs one statement. Only an empty answer costs a second, to tell a
/// deleted caller (401) from an empty page or a missing post. Retried on
/// another connection when the first proves dead.
pub async fn read_as<T, F>(pool: &DbPool, caller: i32, query: F) -> Result<T, AppError>
where
    F: Fn(&mut DbConnection, i32) -> QueryResult<T> + Send + 'static,
    T: Rows + Send + 'static,
{
    run_retrying(pool, move |conn| {
        let rows = query(conn, caller)?;
        if rows.is_empty() {
            require_account(conn, caller)?;
        }
        Ok(rows)
    })
    .await
}

fn require_account(conn: &mut DbConnection, caller: i32) -> Result<User, AppError> {
    db::users::find(conn, caller)?.ok_or_else(|| caller_gone(caller))
}

/// The 401 for a valid token whose user no longer exists.
pub fn caller_gone(caller: i32) -> AppError {
    log::debug!("token refused: user {caller} no longer exists");
    AppError::invalid_token()
}

/// What a read answers: empty when the caller may no longer exist.
pub trait Rows {
    fn is_empty(&self) -> bool;
}

impl<T> Rows for Vec<T> {
    fn is_empty(&self) -> bool {
        Vec::is_empty(self)
    }
}

impl<T> Rows for Option<T> {
    fn is_empty(&self) -> bool {
        self.is_none()
    }
}
