//! SQLite only: keeps the write-ahead log from growing without bound under
//! sustained writes, with a `RESTART` checkpoint whenever it passes a size.
//!
//! SQLite's own checkpoints (after a commit, every 1,000 pages) are passive:
//! they copy what they can while the next writers go on appending, so under
//! writes that never pause the log is never emptied and never starts over.
//! Measured: 32 connections posting for 10 s grew it to 2 GiB. A `RESTART`
//! checkpoint holds writers back (they wait in their busy handler) until the
//! log is copied and readers have left it, so the next write starts the log
//! again from its beginning. The file itself is cut back by the
//! `journal_size_limit` every connection sets.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use diesel::RunQueryDsl;
use diesel::sql_types::Integer;

use super::pool::{ConnectionManager, DbConnection};

/// A log past this size is checkpointed. Small, so each checkpoint has
/// little left to copy: 16 MiB held writers back for at most 55 ms.
pub const MAX_WAL_BYTES: u64 = 16 << 20;
/// How often the log's size is read (one `stat`).
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// Checks the log until dropped.
pub struct WalKeeper {
    _running: mpsc::Sender<()>,
}

impl WalKeeper {
    /// Starts the thread that watches `database`'s log, checkpointing through
    /// a connection of its own from `manager`, opened when first needed.
    pub fn start(database: &Path, manager: ConnectionManager) -> std::io::Result<Self> {
        let (running, stopped) = mpsc::channel::<()>();
        let mut log = database.as_os_str().to_owned();
        log.push("-wal");
        let log = PathBuf::from(log);
        thread::Builder::new()
            .name("sqlite-wal-keeper".into())
            .spawn(move || {
                let mut conn = None;
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECK_EVERY) {
                    let size = std::fs::metadata(&log).map_or(0, |m| m.len());
                    if size > MAX_WAL_BYTES {
                        checkpoint(&manager, &mut conn, size);
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

fn checkpoint(manager: &ConnectionManager, conn: &mut Option<DbConnection>, size: u64) {
    if conn.is_none() {
        match manager.establish() {
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
    match diesel::sql_query("PRAGMA wal_checkpoint(RESTART)")
        .get_result::<CheckpointResult>(connection)
    {
        Ok(result) => {
            metrics::counter!(crate::metrics::WAL_CHECKPOINTS).increment(1);
            if result.busy != 0 {
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
