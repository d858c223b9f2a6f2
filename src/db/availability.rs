//! Failing fast while the database is down: a flag that the pool's own
//! connection attempts set and clear, and the pool handle that consults it.
//!
//! When a new connection cannot be opened the database is marked unreachable,
//! and requests that would have to wait for a connection get 503 at once
//! instead of after the pool timeout. r2d2 keeps retrying the failed
//! connection in the background (backing off up to half the pool timeout);
//! those retries are the probes: the first that connects marks the database
//! reachable again, with no request needed. Idle connections are still
//! handed out while the flag is set, so one failed connect (say, the server's
//! `max_connections` reached) cannot stop a pool that still works.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::db::pool::{ConnectionManager, PooledConnection};
use crate::db::wal_keeper::WalKeeper;
use crate::error::AppError;

/// How often a request waiting for a connection looks at the flag again.
const RECHECK_EVERY: Duration = Duration::from_millis(100);

/// Whether the last attempt to open a connection failed.
#[derive(Debug, Default)]
pub struct Availability {
    down: AtomicBool,
}

impl Availability {
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// A connection attempt failed.
    pub fn connect_failed(&self, cause: &dyn std::fmt::Display) {
        if !self.down.swap(true, Ordering::AcqRel) {
            log::error!(
                "the database cannot be reached ({}); answering 503 until a connection succeeds",
                one_line(cause)
            );
        }
    }

    /// A connection attempt succeeded.
    pub fn connected(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            log::info!("the database can be reached again");
        }
    }
}

fn one_line(text: &dyn std::fmt::Display) -> String {
    text.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The connection pool with the database's availability. It dereferences to
/// the r2d2 pool for everything else.
#[derive(Clone)]
pub struct DbPool {
    pool: r2d2::Pool<ConnectionManager>,
    availability: Arc<Availability>,
    /// One per connection: requests queue here, first come first served,
    /// before taking a blocking thread. (r2d2's own wait is not fair: a
    /// request can lose the race for a freed connection again and again,
    /// which showed as second-long tails under load.)
    turns: Arc<Semaphore>,
    /// SQLite's log checkpointer, stopped when the last clone goes.
    wal_keeper: Option<Arc<WalKeeper>>,
}

impl DbPool {
    /// `availability` must be the one the pool's manager reports to.
    pub fn new(pool: r2d2::Pool<ConnectionManager>, availability: Arc<Availability>) -> Self {
        let turns = Arc::new(Semaphore::new(pool.max_size().max(1) as usize));
        Self {
            pool,
            availability,
            turns,
            wal_keeper: None,
        }
    }

    /// Keeps `keeper` (SQLite's) running as long as this pool.
    pub fn with_wal_keeper(mut self, keeper: Option<WalKeeper>) -> Self {
        self.wal_keeper = keeper.map(Arc::new);
        self
    }

    /// Waits, in arrival order and at most the pool timeout, for a turn to
    /// use a connection; hold it while the connection is checked out.
    pub async fn turn(&self) -> Result<OwnedSemaphorePermit, AppError> {
        if let Ok(permit) = self.turns.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let _waiting = crate::metrics::WaitingForConnection::start();
        let wait = self.turns.clone().acquire_owned();
        match tokio::time::timeout(self.pool.connection_timeout(), wait).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_closed)) => Err(AppError::Unavailable("connection pool: closed".into())),
            Err(_elapsed) => Err(AppError::Unavailable("connection pool: timed out".into())),
        }
    }

    pub fn availability(&self) -> &Availability {
        &self.availability
    }

    /// True when a request would only wait to be told the database is down:
    /// it is marked unreachable and no idle connection is left to try.
    pub fn known_unreachable(&self) -> bool {
        self.availability.is_down() && self.pool.state().idle_connections == 0
    }

    /// 503 at once when [`DbPool::known_unreachable`]: no blocking thread
    /// need be taken to learn it.
    pub fn fail_fast(&self) -> Result<(), AppError> {
        if self.known_unreachable() {
            return Err(AppError::Unavailable(
                "the database is marked unreachable".into(),
            ));
        }
        Ok(())
    }

    /// A connection, waiting at most the pool timeout, and no longer once
    /// the database is marked unreachable. Blocks: call it off the executor.
    /// The wait shows in the pool's `waiting` gauge.
    pub fn checkout(&self) -> Result<PooledConnection, AppError> {
        crate::metrics::waiting_for_connection(|| self.wait_for_connection())
    }

    fn wait_for_connection(&self) -> Result<PooledConnection, AppError> {
        let deadline = Instant::now() + self.pool.connection_timeout();
        let mut last_error = None;
        loop {
            if self.availability.is_down() {
                return self.pool.try_get().ok_or_else(|| {
                    AppError::Unavailable("the database is marked unreachable".into())
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(last_error.map_or_else(
                    || AppError::Unavailable("connection pool: timed out".into()),
                    AppError::from,
                ));
            }
            match self.pool.get_timeout(left.min(RECHECK_EVERY)) {
                Ok(conn) => return Ok(conn),
                Err(error) => last_error = Some(error),
            }
        }
    }
}

impl Deref for DbPool {
    type Target = r2d2::Pool<ConnectionManager>;

    fn deref(&self) -> &Self::Target {
        &self.pool
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::config::DatabaseUrl;

    /// A pool of one SQLite connection, in a directory removed with it.
    fn one_connection_pool(timeout: Duration) -> (DbPool, tempfile::TempDir) {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let manager =
            ConnectionManager::new(DatabaseUrl::Sqlite(directory.path().join("turns.db")));
        let pool = r2d2::Pool::builder()
            .max_size(1)
            .connection_timeout(timeout)
            .build(manager)
            .expect("a pool");
        (DbPool::new(pool, Arc::default()), directory)
    }

    #[test]
    fn turns_are_given_in_arrival_order_and_waiting_past_the_pool_timeout_is_a_503() {
        actix_web::rt::System::new().block_on(async {
            let (pool, _directory) = one_connection_pool(Duration::from_millis(300));
            let first = pool.turn().await.expect("the free turn");
            let served = Rc::new(RefCell::new(Vec::new()));
            let waiters: Vec<_> = (1..=3)
                .map(|n| {
                    let (pool, served) = (pool.clone(), served.clone());
                    actix_web::rt::spawn(async move {
                        let turn = pool.turn().await.expect("a turn in time");
                        served.borrow_mut().push(n);
                        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
                        drop(turn);
                    })
                })
                .collect();
            // Every waiter queues, in spawn order, before the turn is freed.
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            drop(first);
            for waiter in waiters {
                waiter.await.expect("a waiter");
            }
            assert_eq!(*served.borrow(), [1, 2, 3]);

            let _held = pool.turn().await.expect("the free turn");
            let late = pool.turn().await;
            assert!(
                matches!(late, Err(AppError::Unavailable(_))),
                "a wait past the pool timeout is a 503"
            );
        });
    }

    #[test]
    fn the_flag_follows_the_last_connection_attempt() {
        let availability = Availability::default();
        assert!(!availability.is_down());
        availability.connect_failed(&"connection refused");
        availability.connect_failed(&"connection refused");
        assert!(availability.is_down());
        availability.connected();
        assert!(!availability.is_down());
    }
}
