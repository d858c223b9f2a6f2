//! SQLite only: keeps the write-ahead log from growing without bound under
//! sustained writes, with a `TRUNCATE` checkpoint whenever it passes a size.
//!
//! SQLite's own checkpoints (after a commit, every 1,000 pages) are passive:
//! they copy what they can while the next writers go on appending, so under
//! writes that never pause the log is rarely emptied and rarely starts over.
//! Under sustained writes it grows by gigabytes a minute. A `TRUNCATE`
//! checkpoint holds writers back (they wait in their busy handler) until the
//! log is copied and readers have left it, then empties the file, so the next
//! write starts the log again from its beginning. (`RESTART` would leave the
//! file its size until that write, and this keeper, which reads the file's
//! size, checkpointing an empty log ten times a second meanwhile.)
//!
//! The checkpoint waits at most [`CHECKPOINT_BUSY_TIMEOUT_MS`] for readers
//! and writers (then it copies what it can, as a passive one would, and
//! tries again at the next look), so it never holds writers back for long.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sql_types::Integer;
use diesel::{ConnectionResult, RunQueryDsl, SqliteConnection};

/// A log past this size is checkpointed: four times the 1,000 pages at which
/// SQLite checkpoints on its own, so the keeper steps in only when those
/// checkpoints fall behind, and still has little to copy when it does. Every
/// connection's `journal_size_limit` too: when SQLite starts the log over on
/// its own, the file is cut back to it rather than keep its high-water mark.
pub const MAX_WAL_BYTES: u64 = 16 << 20;
/// How long the checkpoint waits for the writer lock and for readers,
/// where requests wait 5 s: far less, so it never costs them theirs.
const CHECKPOINT_BUSY_TIMEOUT_MS: u32 = 100;
/// How often the log's size is read (one `stat`).
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// Checks the log until dropped.
pub struct WalKeeper {
    _running: mpsc::Sender<()>,
}

impl WalKeeper {
    /// Starts the thread that watches `database`'s log, checkpointing through
    /// a connection of its own from `connect`, opened when first needed.
    pub fn start(
        database: &Path,
        connect: impl Fn() -> ConnectionResult<SqliteConnection> + Send + 'static,
    ) -> std::io::Result<Self> {
        let (running, stopped) = mpsc::channel::<()>();
        // SQLite keeps the log beside the file a symbolic link points to.
        let database = std::fs::canonicalize(database).unwrap_or_else(|_| database.to_owned());
        let mut log = database.into_os_string();
        log.push("-wal");
        let log = PathBuf::from(log);
        thread::Builder::new()
            .name("sqlite-wal-keeper".into())
            .spawn(move || {
                let mut conn = None;
                let mut warned = false;
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECK_EVERY) {
                    let size = match std::fs::metadata(&log) {
                        Ok(metadata) => metadata.len(),
                        // No log while no connection has the database open.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                        Err(e) => {
                            if !warned {
                                log::warn!("cannot watch SQLite's log {}: {e}", log.display());
                                warned = true;
                            }
                            continue;
                        }
                    };
                    if size > MAX_WAL_BYTES {
                        checkpoint(&connect, &mut conn, size);
                    }
                }
            })?;
        Ok(Self { _running: running })
    }
}

#[derive(diesel::QueryableByName)]
struct CheckpointResult {
    /// 1 when readers or writers kept it from finishing.
    #[diesel(sql_type = Integer)]
    busy: i32,
}

fn checkpoint(
    connect: &impl Fn() -> ConnectionResult<SqliteConnection>,
    conn: &mut Option<SqliteConnection>,
    size: u64,
) {
    if conn.is_none() {
        let opened = connect().and_then(|mut opened| {
            opened
                .batch_execute(&format!(
                    "PRAGMA busy_timeout = {CHECKPOINT_BUSY_TIMEOUT_MS}"
                ))
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(opened)
        });
        match opened {
            Ok(opened) => *conn = Some(opened),
            Err(e) => {
                log::warn!("cannot open a connection to checkpoint SQLite's log: {e}");
                return;
            }
        }
    }
    let Some(connection) = conn.as_mut() else {
        return;
    };
    match diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)")
        .get_result::<CheckpointResult>(connection)
    {
        Ok(result) => {
            if result.busy == 0 {
                metrics::counter!(crate::metrics::WAL_CHECKPOINTS).increment(1);
            } else {
                log::debug!("SQLite log of {size} bytes: checkpoint left unfinished by busy peers");
            }
        }
        Err(e) => {
            log::warn!("checkpointing SQLite's log of {size} bytes: {e}");
            // Opened afresh next time, in case this one is the trouble.
            *conn = None;
        }
    }
}
