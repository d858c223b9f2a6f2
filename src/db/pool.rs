//! Connections to either database, the r2d2 pool over them, migrations, and
//! the helpers that run queries off the async executor.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::{DatabaseUrl, Settings};
use crate::db::availability::Availability;
pub use crate::db::availability::DbPool;
use crate::db::wal_keeper::{MAX_WAL_BYTES, WalKeeper};
use crate::error::AppError;

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
            availability: None,
        }
    }

    /// Reports the outcome of every `connect` to `availability`.
    pub fn reporting_to(mut self, availability: Arc<Availability>) -> Self {
        self.availability = Some(availability);
        self
    }

    pub fn establish(&self) -> Result<DbConnection, ConnectionError> {
        match &self.target {
            DatabaseUrl::Postgres(url) => PgConnection::establish(url).map(DbConnection::Postgres),
            DatabaseUrl::Sqlite(path) => {
                let path = path.to_str().ok_or_else(|| {
                    ConnectionError::BadConnection("the SQLite path is not valid UTF-8".into())
                })?;
                let mut conn = SqliteConnection::establish(path)?;
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; \
                     PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; \
                     PRAGMA journal_size_limit = {MAX_WAL_BYTES}; \
                     PRAGMA foreign_keys = ON;"
                ))
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
                lower_utils::register_impl(&mut conn, |text: String| text.to_lowercase())
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
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
    #[error("cannot build the connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("cannot start the SQLite log checkpointer: {0}")]
    WalKeeper(std::io::Error),
}

/// Connects once (so a bad URL fails with the database's own words), applies
/// pending migrations, then builds the pool.
pub fn connect_and_migrate(settings: &Settings) -> Result<DbPool, DatabaseSetupError> {
    let manager = ConnectionManager::new(settings.database_url.clone());
    let target = settings.database_url.to_string();
    let mut first = manager
        .establish()
        .map_err(|source| DatabaseSetupError::Connect {
            target: target.clone(),
            source,
        })?;
    run_migrations(&mut first)
        .map_err(|message| DatabaseSetupError::Migrate { target, message })?;
    drop(first);

    let wal_keeper = match &settings.database_url {
        DatabaseUrl::Sqlite(path) => {
            Some(WalKeeper::start(path, manager.clone()).map_err(DatabaseSetupError::WalKeeper)?)
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
        .build(manager.reporting_to(availability.clone()))?;
    Ok(DbPool::new(pool, availability).with_wal_keeper(wal_keeper))
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

/// Runs `query` with a pooled connection on actix's blocking thread pool, so
/// neither waiting for a connection nor the query itself stalls the executor.
/// While the database is known to be down it answers 503 at once, without
/// taking a blocking thread (see [`crate::db::availability`]).
pub async fn run<T, F>(pool: &DbPool, query: F) -> Result<T, AppError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    with_turn(pool, move |pool| {
        let mut conn = pool.checkout()?;
        let result = query(&mut conn);
        if matches!(result, Err(AppError::Unavailable(_))) {
            // The database went away under this connection (a restart, say):
            // it must not serve another request.
            conn.mark_broken();
        }
        result
    })
    .await
}

/// As [`run`], for a query that may run more than once: when the connection
/// turns out dead (the database restarted since it was last used), it is
/// discarded and the query tried on another, until a live one answers or
/// every connection the pool held has been tried.
pub async fn run_retrying<T, F>(pool: &DbPool, query: F) -> Result<T, AppError>
where
    F: Fn(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    with_turn(pool, move |pool| {
        let mut attempts_left = pool.max_size();
        loop {
            let mut conn = pool.checkout()?;
            match query(&mut conn) {
                Err(AppError::Unavailable(cause)) => {
                    conn.mark_broken();
                    if attempts_left == 0 {
                        return Err(AppError::Unavailable(cause));
                    }
                    log::warn!("discarding a dead database connection ({cause}); trying another");
                    attempts_left -= 1;
                }
                result => return result,
            }
        }
    })
    .await
}

/// Runs `work` on the blocking pool once the request's turn for a connection
/// has come (see [`DbPool::turn`]); 503 at once while the database is known
/// to be down.
async fn with_turn<T, F>(pool: &DbPool, work: F) -> Result<T, AppError>
where
    F: FnOnce(&DbPool) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    pool.fail_fast()?;
    let turn = pool.turn().await?;
    let pool = pool.clone();
    web::block(move || {
        let _turn = turn;
        work(&pool)
    })
    .await?
}

/// Runs `work` in a transaction that takes the write lock up front.
///
/// SQLite's default deferred transaction reads under a shared lock and fails
/// with "database is locked" (without waiting) when it later tries to write
/// while another writer went first; `BEGIN IMMEDIATE` waits for the lock
/// instead. PostgreSQL gets an ordinary transaction.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        DbConnection::Sqlite(sqlite) => {
            AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?
        }
        DbConnection::Postgres(pg) => AnsiTransactionManager::begin_transaction(pg)?,
    }
    match work(conn) {
        Ok(value) => {
            <DbConnection as TransactionManager<DbConnection>>::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            // The work's error is the one worth reporting; a failed rollback
            // marks the connection broken and r2d2 discards it.
            let _ = <DbConnection as TransactionManager<DbConnection>>::rollback_transaction(conn);
            Err(error)
        }
    }
}
