//! Failed-login counts shared by every instance on one PostgreSQL database:
//! the UNLOGGED table `login_failures`, one row per client address (its
//! migration describes the columns). What the counts mean, and when an
//! attempt begins and settles, is `auth::throttle`'s; these are its
//! statements. SQLite has no such table: its one instance counts in memory.
//!
//! A login costs two statements: [`begin`] and [`settle`]. Each finds its one
//! row by the primary key and costs what that row holds, which the limits
//! bound (every counted attempt of the client, and those in flight). The
//! begin checks both limits and records the attempt in one `INSERT ... ON
//! CONFLICT DO UPDATE`: PostgreSQL runs the update on the row's latest
//! version under its lock, so parallel begins for one client, from any
//! instance, take turns. [`delete_expired`] deletes rows nothing in counts
//! any more, a batch at a time, through the `expires_at` index.
//!
//! Times are milliseconds since the Unix epoch, by the application's clock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};

use super::DbConnection;

/// One login attempt as the table keys it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The client address as throttling counts it.
    pub client: String,
    /// Random: how the attempt's verdict finds it.
    pub id: i64,
    /// The keyed hash of the account's normalised email.
    pub account: i64,
}

/// The limits and times every statement applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Counted attempts one client may have on one account.
    pub per_account: u32,
    /// Counted attempts one client may have across accounts.
    pub per_address: u32,
    /// How long an attempt counts from when it began.
    pub window: Duration,
    /// How long an attempt without a verdict is waited for; after that it
    /// is taken as the failure it was counted as (its instance stopped, or
    /// its verdict could not be written).
    pub in_flight: Duration,
}

/// What [`begin`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct Begun {
    /// The attempt is counted and may go on.
    #[diesel(sql_type = Bool)]
    pub begun: bool,
    /// When not begun: how long until the limit reached lets one more in.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub wait_ms: Option<i64>,
    /// When not begun: whether attempts of this client are still waiting
    /// for their verdicts.
    #[diesel(sql_type = Bool)]
    pub in_flight: bool,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A failure: it stays counted, no longer in flight.
    Failed,
    /// A success: not counted, and the client's failures on the account are
    /// forgotten (they still count against the address).
    Succeeded,
    /// No verdict (the database was unreachable, say): not counted.
    Undecided,
}

// The statements' parameters, the same in both: $1 client, $2 attempt id,
// $3 account, $4 now, $5 window, $6 in flight; then $7 and $8 their own.

/// The SQL for how long until `f`'s counts let one more attempt in (the
/// newest counted attempt that makes a limit leaves the window), or NULL
/// while both are under their limits. `f` is the row: the old one in an
/// update's SET, the new one in RETURNING. $7 is the per-account limit, $8
/// the per-address one.
macro_rules! wait_ms {
    () => {
        "GREATEST( \
             (SELECT w.at FROM unnest(f.started_at) AS w (at) \
              WHERE w.at > $4 - $5 \
              ORDER BY w.at DESC OFFSET $8 - 1 LIMIT 1), \
             (SELECT w.at FROM unnest(f.accounts, f.started_at) AS w (account, at) \
              WHERE w.account = $3 AND w.at > $4 - $5 \
              ORDER BY w.at DESC OFFSET $7 - 1 LIMIT 1) \
         ) + $5 - $4"
    };
}

/// The attempts of row `f`, as `k (id, account, at, pending, n)`, that are
/// still worth keeping: counted (within the window) or in flight.
macro_rules! kept_attempts {
    () => {
        "SELECT * FROM unnest(f.attempt_ids, f.accounts, f.started_at, f.pending) \
             WITH ORDINALITY AS k (id, account, at, pending, n) \
         WHERE k.at > $4 - $5 OR (k.pending AND k.at > $4 - $6)"
    };
}

/// Begins an attempt: when the client is under both limits, the attempt is
/// counted (as a failure, in flight) and `begun`; otherwise nothing is
/// counted and the answer says how long until it could be, and whether
/// attempts in flight may change that. Attempts out of the window are
/// dropped from the row on the way.
pub fn begin(
    conn: &mut DbConnection,
    attempt: &Attempt,
    now: DateTime<Utc>,
    rules: &Rules,
) -> QueryResult<Begun> {
    const BEGIN: &str = concat!(
        "INSERT INTO login_failures AS f \
             (client, attempt_ids, accounts, started_at, pending, expires_at) \
         VALUES ($1, ARRAY[$2], ARRAY[$3], ARRAY[$4], ARRAY[true], $4 + GREATEST($5, $6)) \
         ON CONFLICT (client) DO UPDATE \
         SET (attempt_ids, accounts, started_at, pending, expires_at) = ( \
             SELECT COALESCE(array_agg(k.id ORDER BY k.n), '{}'), \
                    COALESCE(array_agg(k.account ORDER BY k.n), '{}'), \
                    COALESCE(array_agg(k.at ORDER BY k.n), '{}'), \
                    COALESCE(array_agg(k.pending ORDER BY k.n), '{}'), \
                    COALESCE(max(k.at), 0) + GREATEST($5, $6) \
             FROM (",
        kept_attempts!(),
        "     UNION ALL \
                   SELECT $2, $3, $4, true, 9223372036854775807 \
                   WHERE ",
        wait_ms!(),
        " IS NULL \
             ) AS k) \
         RETURNING $2 = ANY (f.attempt_ids) AS begun, ",
        wait_ms!(),
        " AS wait_ms, \
           COALESCE((SELECT bool_or(w.pending AND w.at > $4 - $6) \
                     FROM unnest(f.pending, f.started_at) AS w (pending, at)), false) \
               AS in_flight",
    );
    let DbConnection::Postgres(pg) = conn else {
        return Err(postgres_only());
    };
    diesel::sql_query(BEGIN)
        .bind::<Text, _>(&attempt.client)
        .bind::<BigInt, _>(attempt.id)
        .bind::<BigInt, _>(attempt.account)
        .bind::<BigInt, _>(now.timestamp_millis())
        .bind::<BigInt, _>(millis(rules.window))
        .bind::<BigInt, _>(millis(rules.in_flight))
        .bind::<Integer, _>(limit(rules.per_account))
        .bind::<Integer, _>(limit(rules.per_address))
        .get_result(pg)
}

/// Settles an attempt [`begin`] counted, as `verdict` says. A row left
/// with nothing in it is deleted (most logins succeed first time: they
/// leave no row behind). Settling an attempt that is gone (its row expired
/// and was deleted, say) changes nothing.
pub fn settle(
    conn: &mut DbConnection,
    attempt: &Attempt,
    verdict: Verdict,
    now: DateTime<Utc>,
    rules: &Rules,
) -> QueryResult<()> {
    // $7: the attempt stays (a failure); $8: the account is forgotten.
    const SETTLE: &str = concat!(
        "WITH emptied AS ( \
             DELETE FROM login_failures \
             WHERE client = $1 AND attempt_ids = ARRAY[$2] AND NOT $7 \
             RETURNING 1) \
         UPDATE login_failures AS f \
         SET (attempt_ids, accounts, started_at, pending, expires_at) = ( \
             SELECT COALESCE(array_agg(k.id ORDER BY k.n), '{}'), \
                    COALESCE(array_agg( \
                        CASE WHEN $8 AND k.account = $3 THEN NULL ELSE k.account END \
                        ORDER BY k.n), '{}'), \
                    COALESCE(array_agg(k.at ORDER BY k.n), '{}'), \
                    COALESCE(array_agg(k.pending AND k.id <> $2 ORDER BY k.n), '{}'), \
                    COALESCE(max(k.at), 0) + GREATEST($5, $6) \
             FROM (",
        kept_attempts!(),
        ") AS k \
             WHERE $7 OR k.id <> $2) \
         WHERE f.client = $1 AND NOT EXISTS (SELECT FROM emptied)",
    );
    let DbConnection::Postgres(pg) = conn else {
        return Err(postgres_only());
    };
    diesel::sql_query(SETTLE)
        .bind::<Text, _>(&attempt.client)
        .bind::<BigInt, _>(attempt.id)
        .bind::<BigInt, _>(attempt.account)
        .bind::<BigInt, _>(now.timestamp_millis())
        .bind::<BigInt, _>(millis(rules.window))
        .bind::<BigInt, _>(millis(rules.in_flight))
        .bind::<Bool, _>(verdict == Verdict::Failed)
        .bind::<Bool, _>(verdict == Verdict::Succeeded)
        .execute(pg)
        .map(drop)
}

/// Deletes up to `batch` rows in which nothing counts any more at `now`,
/// those expired longest first; how many it deleted. Call it until it
/// deletes fewer than `batch`. Rows another statement holds are skipped,
/// and a row a begin renewed meanwhile stays. On SQLite, 0: nothing there.
pub fn delete_expired(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
    batch: u32,
) -> QueryResult<usize> {
    const DELETE_EXPIRED: &str = "\
        DELETE FROM login_failures \
        WHERE client = ANY (ARRAY( \
                SELECT client FROM login_failures WHERE expires_at <= $1 \
                ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)) \
          AND expires_at <= $1";
    let DbConnection::Postgres(pg) = conn else {
        return Ok(0);
    };
    diesel::sql_query(DELETE_EXPIRED)
        .bind::<BigInt, _>(now.timestamp_millis())
        .bind::<BigInt, _>(i64::from(batch))
        .execute(pg)
}

fn postgres_only() -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(
        "login_failures is PostgreSQL's: SQLite counts failed logins in memory".into(),
    )
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A limit as the statements take it (the settings keep limits far below).
fn limit(limit: u32) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX)
}
