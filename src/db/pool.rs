//! Connections to either database, the r2d2 pool over them with its turns
//! and deadline, and migrations.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::{SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::DbError;
use super::availability::Availability;
use super::users;
use super::wal_keeper::{MAX_WAL_BYTES, WalKeeper};
use crate::config::{DatabaseUrl, Settings, SqliteSynchronous};

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// How long SQLite waits for another writer before giving up with "database is locked".
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;
/// How long libpq may take to connect, unless the URL says otherwise.
const POSTGRES_CONNECT_TIMEOUT_SECS: u32 = 5;

diesel::define_sql_function! {
    /// SQL `lower()`. PostgreSQL's folds all of Unicode; SQLite's only A to Z,
    /// so SQLite connections get Rust's `to_lowercase` in its place.
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// A pooled connection idle for less than this is handed out untested: a
/// `SELECT 1` on every checkout would double the round trips of most
/// requests. (HikariCP's rule; a connection that dies meanwhile fails its
/// query with a 503 and is discarded.)
const VALIDATE_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// A connection to whichever database `DATABASE_URL` chose.
// SQLite stays last: the derive tries variants in order.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// A connection as the pool keeps it: since when it has been idle, and
/// whether a query on it showed it broken.
pub struct ManagedConnection {
    conn: DbConnection,
    idle_since: Instant,
    broken: bool,
}

impl ManagedConnection {
    /// Makes the pool discard this connection when it comes back.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }
}

impl Deref for ManagedConnection {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl DerefMut for ManagedConnection {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

/// Opens connections of the configured backend directly, so a failure reports
/// libpq's or SQLite's own words (the derived `establish` would hide them
/// behind the last backend it tried), and sets SQLite up on every connection.
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    target: DatabaseUrl,
    sqlite_synchronous: SqliteSynchronous,
    /// Told of every pooled connection attempt, so requests can fail fast
    /// while the database is down.
    availability: Option<Arc<Availability>>,
}

impl ConnectionManager {
    pub fn new(target: DatabaseUrl) -> Self {
        let target = match target {
            DatabaseUrl::Postgres(url) => DatabaseUrl::Postgres(with_connect_timeout(&url)),
            sqlite => sqlite,
        };
        Self {
            target,
            sqlite_synchronous: SqliteSynchronous::default(),
            availability: None,
        }
    }

    /// SQLite connections acknowledge commits as `mode` says.
    pub fn with_sqlite_synchronous(mut self, mode: SqliteSynchronous) -> Self {
        self.sqlite_synchronous = mode;
        self
    }

    /// Reports the outcome of every `connect` to `availability`.
    pub fn reporting_to(mut self, availability: Arc<Availability>) -> Self {
        self.availability = Some(availability);
        self
    }

    pub fn establish(&self) -> Result<DbConnection, ConnectionError> {
        match &self.target {
            DatabaseUrl::Postgres(url) => PgConnection::establish(url).map(DbConnection::Postgres),
            DatabaseUrl::Sqlite(_) => self.establish_sqlite().map(DbConnection::Sqlite),
        }
    }

    /// A SQLite connection set up as the pool's are; an error for a
    /// PostgreSQL URL.
    pub fn establish_sqlite(&self) -> Result<SqliteConnection, ConnectionError> {
        let DatabaseUrl::Sqlite(path) = &self.target else {
            return Err(ConnectionError::BadConnection(
                "not a SQLite database URL".into(),
            ));
        };
        let path = path.to_str().ok_or_else(|| {
            ConnectionError::BadConnection("the SQLite path is not valid UTF-8".into())
        })?;
        let mut conn = SqliteConnection::establish(path)?;
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; \
             PRAGMA journal_mode = WAL; \
             PRAGMA synchronous = {}; \
             PRAGMA journal_size_limit = {MAX_WAL_BYTES}; \
             PRAGMA foreign_keys = ON;",
            self.sqlite_synchronous.pragma()
        ))
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
        lower_utils::register_impl(&mut conn, |text: String| text.to_lowercase())
            .map_err(ConnectionError::CouldntSetupConfiguration)?;
        Ok(conn)
    }
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = ManagedConnection;
    type Error = ConnectionError;

    fn connect(&self) -> Result<ManagedConnection, ConnectionError> {
        let connection = self.establish();
        if let Some(availability) = &self.availability {
            match &connection {
                Ok(_) => availability.connected(),
                Err(error) => availability.connect_failed(error),
            }
        }
        Ok(ManagedConnection {
            conn: connection?,
            idle_since: Instant::now(),
            broken: false,
        })
    }

    /// Called on every checkout; tests only connections idle for a while.
    fn is_valid(&self, conn: &mut ManagedConnection) -> Result<(), ConnectionError> {
        if conn.idle_since.elapsed() < VALIDATE_WHEN_IDLE_FOR {
            return Ok(());
        }
        conn.conn
            .batch_execute("SELECT 1")
            .map_err(ConnectionError::CouldntSetupConfiguration)
    }

    /// Called on every return to the pool, which is when idleness starts.
    fn has_broken(&self, conn: &mut ManagedConnection) -> bool {
        conn.idle_since = Instant::now();
        conn.broken
            || <DbConnection as TransactionManager<DbConnection>>::is_broken_transaction_manager(
                &mut conn.conn,
            )
    }
}

/// How often a checkout waiting for a connection looks at the availability
/// flag again.
const RECHECK_EVERY: Duration = Duration::from_millis(100);

/// The connection pool with the database's availability and the turns
/// requests take for a connection. It dereferences to the r2d2 pool for
/// everything else.
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

    /// When a request arriving now must have its connection: the pool
    /// timeout covers every wait on the way, the turn and the checkout.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.pool.connection_timeout()
    }

    /// Waits, in arrival order and until `deadline`, for a turn to use a
    /// connection; hold it while the connection is checked out.
    pub async fn turn(&self, deadline: Instant) -> Result<OwnedSemaphorePermit, DbError> {
        if let Ok(permit) = self.turns.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let _waiting = crate::metrics::WaitingForConnection::start();
        let wait = self.turns.clone().acquire_owned();
        match tokio::time::timeout_at(deadline.into(), wait).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_closed)) => Err(DbError::Unavailable("connection pool: closed".into())),
            Err(_elapsed) => Err(DbError::Unavailable("connection pool: timed out".into())),
        }
    }

    /// Counts a request answered 503 for want of the database, for the line
    /// logged when it comes back.
    pub fn note_refused(&self) {
        self.availability.refused();
    }

    /// True when a request would only wait to be told the database is down:
    /// it is marked unreachable and no idle connection is left to try.
    pub fn known_unreachable(&self) -> bool {
        self.availability.is_down() && self.pool.state().idle_connections == 0
    }

    /// A connection by `deadline`, and no later than the database is marked
    /// unreachable. Blocks: call it off the executor. The wait shows in the
    /// pool's `waiting` gauge.
    pub fn checkout(&self, deadline: Instant) -> Result<PooledConnection, DbError> {
        if let Some(conn) = self.pool.try_get() {
            return Ok(conn);
        }
        let _waiting = crate::metrics::WaitingForConnection::start();
        let mut last_error = None;
        loop {
            if self.availability.is_down() {
                return self.pool.try_get().ok_or_else(|| {
                    DbError::Unavailable("the database is marked unreachable".into())
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(DbError::Unavailable(match last_error {
                    Some(error) => format!("connection pool: {error}"),
                    None => "connection pool: timed out".into(),
                }));
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

/// Adds libpq's `connect_timeout` unless the URL sets one, so an unreachable
/// server fails start-up in seconds rather than hanging.
fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}connect_timeout={POSTGRES_CONNECT_TIMEOUT_SECS}")
}

#[derive(Debug, thiserror::Error)]
pub enum DatabaseSetupError {
    #[error("cannot connect to the database ({target}): {source}")]
    Connect {
        target: String,
        source: ConnectionError,
    },
    #[error("cannot apply migrations to the database ({target}): {message}")]
    Migrate { target: String, message: String },
    #[error("cannot bring the look-alike email keys up to date ({target}): {source}")]
    EmailKeys {
        target: String,
        source: diesel::result::Error,
    },
    #[error("cannot build the connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("cannot start the SQLite log checkpointer: {0}")]
    WalKeeper(std::io::Error),
}

/// Connects once (so a bad URL fails with the database's own words), applies
/// pending migrations, brings the look-alike keys of non-ASCII addresses up
/// to date, then builds the pool.
pub fn connect_and_migrate(settings: &Settings) -> Result<DbPool, DatabaseSetupError> {
    let manager = ConnectionManager::new(settings.database_url.clone())
        .with_sqlite_synchronous(settings.sqlite_synchronous);
    let target = settings.database_url.to_string();
    let mut first = manager
        .establish()
        .map_err(|source| DatabaseSetupError::Connect {
            target: target.clone(),
            source,
        })?;
    run_migrations(&mut first).map_err(|message| DatabaseSetupError::Migrate {
        target: target.clone(),
        message,
    })?;
    refresh_email_keys(&mut first)
        .map_err(|source| DatabaseSetupError::EmailKeys { target, source })?;
    drop(first);

    let wal_keeper = match &settings.database_url {
        DatabaseUrl::Sqlite(path) => {
            let manager = manager.clone();
            let keeper = WalKeeper::start(path, move || manager.establish_sqlite());
            Some(keeper.map_err(DatabaseSetupError::WalKeeper)?)
        }
        DatabaseUrl::Postgres(_) => None,
    };
    let availability = Arc::new(Availability::default());
    let pool = r2d2::Pool::builder()
        .max_size(settings.pool_size)
        // A fixed-size pool (HikariCP's advice): every connection is opened
        // at start-up, not while requests queue for one under the first load.
        .min_idle(Some(settings.pool_size))
        .connection_timeout(settings.pool_timeout)
        .idle_timeout(Some(Duration::from_secs(600)))
        // Failed connects are logged once per outage by `Availability`, not
        // by r2d2 at every retry.
        .error_handler(Box::new(r2d2::NopErrorHandler))
        .build(manager.reporting_to(availability.clone()))?;
    Ok(DbPool::new(pool, availability).with_wal_keeper(wal_keeper))
}

/// Runs [`users::refresh_email_keys`] and says what it changed; a clash (two
/// accounts from before the key that read alike) is a warning at every
/// start-up until one of them goes.
fn refresh_email_keys(conn: &mut DbConnection) -> diesel::QueryResult<()> {
    let refresh = users::refresh_email_keys(conn)?;
    if refresh.updated > 0 {
        log::info!(
            "look-alike email keys: {} of {} non-ASCII addresses updated",
            refresh.updated,
            refresh.examined
        );
    }
    for (user, holder) in refresh.clashes {
        let holder = holder.map_or_else(|| "another account".to_owned(), |id| format!("user {id}"));
        log::warn!(
            "user {user}'s address reads like that of {holder}: both predate look-alike \
             keys, so user {user} keeps its address as its key"
        );
    }
    Ok(())
}

/// Applies the pending migrations of the connection's backend. On PostgreSQL an
/// advisory lock keeps instances starting together from migrating at once.
pub fn run_migrations(conn: &mut DbConnection) -> Result<(), String> {
    const MIGRATION_LOCK: &str = "SELECT pg_advisory_lock(7370651)";
    const MIGRATION_UNLOCK: &str = "SELECT pg_advisory_unlock(7370651)";
    match conn {
        DbConnection::Postgres(pg) => {
            pg.batch_execute(MIGRATION_LOCK)
                .map_err(|e| e.to_string())?;
            let applied = pg
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(drop)
                .map_err(|e| e.to_string());
            pg.batch_execute(MIGRATION_UNLOCK)
                .map_err(|e| e.to_string())?;
            applied
        }
        DbConnection::Sqlite(sqlite) => sqlite
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(drop)
            .map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

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
    fn turns_are_given_in_arrival_order_and_none_after_the_deadline() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        tokio::task::LocalSet::new().block_on(&runtime, async {
            let (pool, _directory) = one_connection_pool(Duration::from_millis(300));
            let first = pool.turn(pool.deadline()).await.expect("the free turn");
            let served = Rc::new(RefCell::new(Vec::new()));
            let waiters: Vec<_> = (1..=3)
                .map(|n| {
                    let (pool, served) = (pool.clone(), served.clone());
                    tokio::task::spawn_local(async move {
                        let turn = pool.turn(pool.deadline()).await.expect("a turn in time");
                        served.borrow_mut().push(n);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        drop(turn);
                    })
                })
                .collect();
            // Every waiter queues, in spawn order, before the turn is freed.
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(first);
            for waiter in waiters {
                waiter.await.expect("a waiter");
            }
            assert_eq!(*served.borrow(), [1, 2, 3]);

            let _held = pool.turn(pool.deadline()).await.expect("the free turn");
            let late = pool.turn(pool.deadline()).await;
            assert!(
                matches!(late, Err(DbError::Unavailable(_))),
                "a wait past the deadline is refused"
            );
        });
    }

    #[test]
    fn a_checkout_gives_up_at_the_deadline_it_is_given() {
        let (pool, _directory) = one_connection_pool(Duration::from_secs(30));
        let _held = pool.checkout(pool.deadline()).expect("the free connection");
        let started = Instant::now();
        let late = pool.checkout(Instant::now() + Duration::from_millis(200));
        assert!(matches!(late, Err(DbError::Unavailable(_))));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the checkout kept to its deadline, not the pool's 30 s timeout"
        );
    }
}
