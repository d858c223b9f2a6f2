//! Runs database work for the handlers: off the async executor, within one
//! deadline per request, with the caller's check carried by the work's own
//! statements, and new posts gathered into group commits
//! ([`post_writer`]). The queries themselves are [`crate::db`]'s.

pub mod post_writer;

use std::time::Instant;

use actix_web::web;
use diesel::QueryResult;

use crate::db::models::{Caller, User};
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

/// Runs `work` for `caller` once their account is found, and their token
/// still good, on the same connection: a deleted user's or a revoked
/// session's token gets 401 before anything else runs.
pub async fn run_as<T, F>(pool: &DbPool, caller: Caller, work: F) -> Result<T, AppError>
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

/// Runs `query`, a read for `caller` that finds nothing unless their token
/// is still good (it carries `db::sessions::with_caller_check`), so a read costs
/// one statement. Only an empty answer costs a second, to tell a refused
/// caller (401) from an empty page or a missing post. Retried on another
/// connection when the first proves dead.
pub async fn read_as<T, F>(pool: &DbPool, caller: Caller, query: F) -> Result<T, AppError>
where
    F: Fn(&mut DbConnection, Caller) -> QueryResult<T> + Send + 'static,
    T: Rows + Send + 'static,
{
    run_retrying(pool, move |conn| {
        let rows = query(conn, caller)?;
        if rows.is_empty() {
            require_alive(conn, caller)?;
        }
        Ok(rows)
    })
    .await
}

/// 401 unless the caller's token is still good.
fn require_alive(conn: &mut DbConnection, caller: Caller) -> Result<(), AppError> {
    if db::sessions::is_alive(conn, caller)? {
        Ok(())
    } else {
        Err(caller_refused(caller))
    }
}

/// The caller's account, or 401 if it is gone or their token no longer good.
pub fn require_account(conn: &mut DbConnection, caller: Caller) -> Result<User, AppError> {
    db::sessions::account(conn, caller)?.ok_or_else(|| caller_refused(caller))
}

/// The 401 for a well-signed, unexpired token refused by the database: its
/// user deleted, its session revoked, or issued before the account's cut-off.
pub fn caller_refused(caller: Caller) -> AppError {
    log::debug!(
        "token refused: user {} is gone, or session {:?} revoked or before the cut-off",
        caller.user_id,
        caller.session_id
    );
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
