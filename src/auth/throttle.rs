//! Failed-login throttling: past a number of failures in a sliding window,
//! per client address and account and per client address across accounts,
//! logins get 429 before any database lookup or bcrypt work.
//!
//! An attempt is counted as a failure when it starts and refunded if it
//! succeeds (or never gets a verdict), so parallel guesses cannot all pass
//! the check before the first failure is recorded. An attempt that finds the
//! limit reached only because others are still in flight waits for their
//! verdicts instead of being refused: if they were right, their success
//! clears the count and it goes on, so valid logins are never throttled.
//!
//! Where the counts live depends on the database:
//!
//! - **PostgreSQL**: in the database ([`crate::db::login_failures`]), so
//!   every instance on it counts against the same limits: one statement
//!   begins an attempt, one settles it. Accounts are kept as a keyed hash
//!   every instance computes alike (HMAC-SHA-256 under a key derived from
//!   `SECRET_KEY`), never as the text a client sent. Should a statement
//!   fail for another reason than the database being unreachable (which is
//!   the 503 of every route), the attempt is counted in memory instead, as
//!   on SQLite: a login never gets a 500 from throttling.
//! - **SQLite** (one instance): in this instance's memory, which a restart
//!   forgets. Memory is bounded: each table tracks at most
//!   [`MAX_TRACKED_KEYS`] keys (accounts are kept as a keyed 64-bit hash,
//!   under a key of this process); when one is full, expired keys go first,
//!   then the least recently failing one.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::sync::oneshot;

use crate::clock::Clock;
use crate::config::{DatabaseUrl, LoginLimits, SecretKey, Settings};
use crate::db::DbPool;
use crate::db::login_failures::{self, Begun, Rules, Verdict};
use crate::error::AppError;
use crate::store;

/// Keys tracked per table; with the default limits the two tables stay
/// within a few tens of MiB even when full.
pub const MAX_TRACKED_KEYS: usize = 65_536;

/// How long an attempt waits for the verdicts of attempts in flight before
/// it is refused after all; longer than a hash may queue and run.
const MAX_WAIT_FOR_PENDING: Duration = Duration::from_secs(15);
/// How often a waiting attempt looks again, in memory.
const PENDING_RECHECK: Duration = Duration::from_millis(20);
/// How often a waiting attempt looks again when each look is a statement.
const SHARED_PENDING_RECHECK: Duration = Duration::from_millis(50);
/// How often a verdict the database could not take is tried again.
const SETTLE_RETRY: Duration = Duration::from_secs(1);
/// How much longer than its waits (for connections, for a hashing thread)
/// an attempt is given for its verdict before the database counts take it
/// as failed: the hash itself, and the rest of the request.
const IN_FLIGHT_MARGIN: Duration = Duration::from_secs(30);

/// A client address as throttling counts it: IPv4 addresses one by one,
/// IPv6 by /64 network, the block one subscriber usually holds.
type ClientKey = IpAddr;
/// A client and a hashed account name.
type AccountKey = (ClientKey, u64);

pub struct LoginThrottle {
    window_ms: i64,
    clock: Arc<dyn Clock>,
    account_hasher: RandomState,
    counts: Mutex<Counts>,
    /// On PostgreSQL, the counts every instance shares; `counts` then only
    /// serves attempts the database could not count.
    shared: Option<Arc<SharedCounts>>,
}

struct Counts {
    per_account: FailureLog<AccountKey>,
    per_address: FailureLog<ClientKey>,
    /// Attempts begun and not yet settled, per key (absent at zero).
    pending_accounts: HashMap<AccountKey, u32>,
    pending_clients: HashMap<ClientKey, u32>,
}

impl Counts {
    fn any_pending(&self, account: &AccountKey) -> bool {
        self.pending_accounts.contains_key(account) || self.pending_clients.contains_key(&account.0)
    }

    fn add_pending(&mut self, account: AccountKey) {
        *self.pending_accounts.entry(account).or_default() += 1;
        *self.pending_clients.entry(account.0).or_default() += 1;
    }

    fn remove_pending(&mut self, account: &AccountKey) {
        decrement(&mut self.pending_accounts, account);
        decrement(&mut self.pending_clients, &account.0);
    }
}

fn decrement<K: Hash + Eq>(pending: &mut HashMap<K, u32>, key: &K) {
    if let Some(count) = pending.get_mut(key) {
        *count -= 1;
        if *count == 0 {
            pending.remove(key);
        }
    }
}

/// The counts in the database, and how to reach them.
struct SharedCounts {
    pool: DbPool,
    rules: Rules,
    /// HMAC-SHA-256 under a key derived from `SECRET_KEY`: the same in every
    /// instance that shares the key.
    account_mac: Hmac<Sha256>,
    /// Whether the last statement failed: a failure is logged when the
    /// statements start failing, and again when they work again.
    failing: AtomicBool,
}

impl SharedCounts {
    fn new(settings: &Settings, pool: &DbPool) -> Self {
        let limits = settings.login_limits;
        Self {
            pool: pool.clone(),
            rules: Rules {
                per_account: limits.per_account,
                per_address: limits.per_address,
                window: limits.window,
                in_flight: IN_FLIGHT_MARGIN
                    + settings.pool_timeout * 2
                    + settings.password_hashing.max_wait,
            },
            account_mac: account_mac(&settings.secret_key),
            failing: AtomicBool::new(false),
        }
    }

    /// The first 8 bytes of the account's MAC.
    fn account_hash(&self, account: &str) -> i64 {
        let digest = self
            .account_mac
            .clone()
            .chain_update(account.as_bytes())
            .finalize()
            .into_bytes();
        let mut first = [0; 8];
        first.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(first)
    }

    async fn begin(
        &self,
        attempt: &login_failures::Attempt,
        now: DateTime<Utc>,
    ) -> Result<Begun, AppError> {
        let (attempt, rules) = (attempt.clone(), self.rules);
        let begun = store::run(&self.pool, move |conn| {
            Ok(login_failures::begin(conn, &attempt, now, &rules)?)
        })
        .await;
        self.note(begun.as_ref().err(), "count a login attempt");
        begun
    }

    /// Records `verdict`; `first_try` is dropped once the first statement
    /// has run. While the database cannot be reached (or no connection is
    /// free), tries again every [`SETTLE_RETRY`] for as long as the attempt
    /// would be waited for: an attempt left in flight makes others wait,
    /// then counts as a failure.
    async fn settle(
        self: Arc<Self>,
        attempt: login_failures::Attempt,
        verdict: Verdict,
        now: DateTime<Utc>,
        first_try: oneshot::Sender<()>,
    ) {
        let give_up = Instant::now() + self.rules.in_flight;
        let mut first_try = Some(first_try);
        loop {
            let (attempt, rules) = (attempt.clone(), self.rules);
            let settled = store::run(&self.pool, move |conn| {
                Ok(login_failures::settle(
                    conn, &attempt, verdict, now, &rules,
                )?)
            })
            .await;
            drop(first_try.take());
            self.note(settled.as_ref().err(), "record a login attempt's verdict");
            match settled {
                Err(AppError::Unavailable(_)) if Instant::now() + SETTLE_RETRY < give_up => {
                    actix_web::rt::time::sleep(SETTLE_RETRY).await;
                }
                _ => return,
            }
        }
    }

    /// Logs statements that fail, once when they start failing and once
    /// when they work again. An unreachable database is logged by the pool.
    fn note(&self, error: Option<&AppError>, what: &str) {
        match error {
            None => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    log::info!("login throttling: the shared counts work again");
                }
            }
            Some(AppError::Unavailable(cause)) => {
                log::debug!("login throttling: cannot {what}: {cause}");
            }
            Some(error) => {
                if self.failing.swap(true, Ordering::Relaxed) {
                    log::debug!("login throttling: cannot {what} in the database: {error}");
                } else {
                    log::warn!(
                        "login throttling: cannot {what} in the database ({error}); \
                         until it can, this instance counts attempts in its own memory"
                    );
                }
            }
        }
    }
}

/// HMAC-SHA-256 under a key of its own, derived from `SECRET_KEY` (HMAC as
/// a pseudo-random function, as HKDF does): account hashes and token
/// signatures never share a key.
fn account_mac(secret: &SecretKey) -> Hmac<Sha256> {
    const LABEL: &[u8] = b"postapi login throttling: account key";
    let derived = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length")
        .chain_update(LABEL)
        .finalize()
        .into_bytes();
    <Hmac<Sha256> as KeyInit>::new_from_slice(&derived).expect("HMAC takes a key of any length")
}

/// A random attempt id; should the system have no randomness to give, one
/// from the standard library's per-process keys (it need only differ from
/// the client's other attempts in flight).
fn attempt_id() -> i64 {
    let id = getrandom::u64().unwrap_or_else(|_| RandomState::new().hash_one(Instant::now()));
    i64::from_ne_bytes(id.to_ne_bytes())
}

/// Why an attempt may not start now.
#[derive(Debug)]
pub enum Refusal {
    /// A limit is reached by settled failures: 429.
    Throttled(AppError),
    /// A limit is reached only counting attempts still in flight.
    Pending,
}

impl LoginThrottle {
    /// Counts in this instance's memory.
    pub fn new(limits: LoginLimits, clock: Arc<dyn Clock>) -> Self {
        Self::with_capacity(limits, clock, MAX_TRACKED_KEYS)
    }

    /// Counts where the database calls for: in the database on PostgreSQL,
    /// shared by every instance on it; in memory on SQLite.
    pub fn for_database(settings: &Settings, pool: &DbPool, clock: Arc<dyn Clock>) -> Self {
        let throttle = Self::new(settings.login_limits, clock);
        match settings.database_url {
            DatabaseUrl::Postgres(_) => Self {
                shared: Some(Arc::new(SharedCounts::new(settings, pool))),
                ..throttle
            },
            DatabaseUrl::Sqlite(_) => throttle,
        }
    }

    fn with_capacity(limits: LoginLimits, clock: Arc<dyn Clock>, capacity: usize) -> Self {
        let window_ms = i64::try_from(limits.window.as_millis()).unwrap_or(i64::MAX);
        Self {
            window_ms,
            clock,
            account_hasher: RandomState::new(),
            counts: Mutex::new(Counts {
                per_account: FailureLog::new(limits.per_account, capacity),
                per_address: FailureLog::new(limits.per_address, capacity),
                pending_accounts: HashMap::new(),
                pending_clients: HashMap::new(),
            }),
            shared: None,
        }
    }

    /// Starts a login attempt by `client` on `account` (the normalised email),
    /// or refuses it with 429 when either limit is reached; waits first while
    /// the limit is reached only by attempts in flight. On PostgreSQL, 503
    /// when the database cannot be reached, as every route answers then.
    pub async fn begin(
        self: &Arc<Self>,
        client: IpAddr,
        account: &str,
    ) -> Result<LoginAttempt, AppError> {
        let started = Instant::now();
        loop {
            let (tried, recheck) = match &self.shared {
                Some(shared) => (
                    self.try_begin_shared(shared, client, account).await?,
                    SHARED_PENDING_RECHECK,
                ),
                None => (self.try_begin(client, account), PENDING_RECHECK),
            };
            match tried {
                Ok(attempt) => return Ok(attempt),
                Err(Refusal::Throttled(error)) => return Err(error),
                Err(Refusal::Pending) if started.elapsed() >= MAX_WAIT_FOR_PENDING => {
                    return Err(self.throttled(client_key(client), 1_000));
                }
                Err(Refusal::Pending) => actix_web::rt::time::sleep(recheck).await,
            }
        }
    }

    /// [`LoginThrottle::begin`] without waiting, in memory.
    pub fn try_begin(
        self: &Arc<Self>,
        client: IpAddr,
        account: &str,
    ) -> Result<LoginAttempt, Refusal> {
        let client = client_key(client);
        let account = (client, self.account_hasher.hash_one(account));
        let now = self.clock.now().timestamp_millis();
        let mut counts = self.counts();
        let wait_ms = [
            counts.per_account.wait(&account, now, self.window_ms),
            counts.per_address.wait(&client, now, self.window_ms),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(wait_ms) = wait_ms {
            if counts.any_pending(&account) {
                return Err(Refusal::Pending);
            }
            drop(counts);
            return Err(Refusal::Throttled(self.throttled(client, wait_ms)));
        }
        counts.per_account.record(account, now, self.window_ms);
        counts.per_address.record(client, now, self.window_ms);
        counts.add_pending(account);
        Ok(LoginAttempt {
            throttle: Arc::clone(self),
            counted: Counted::InMemory { account, at: now },
            settled: false,
        })
    }

    /// [`LoginThrottle::begin`] without waiting, in the database; in memory
    /// when a statement fails for another reason than an unreachable
    /// database (then 503).
    async fn try_begin_shared(
        self: &Arc<Self>,
        shared: &Arc<SharedCounts>,
        client: IpAddr,
        account: &str,
    ) -> Result<Result<LoginAttempt, Refusal>, AppError> {
        let key = client_key(client);
        let attempt = login_failures::Attempt {
            client: key.to_string(),
            id: attempt_id(),
            account: shared.account_hash(account),
        };
        let begun = match shared.begin(&attempt, self.clock.now()).await {
            Ok(begun) => begun,
            Err(error @ AppError::Unavailable(_)) => return Err(error),
            Err(_) => return Ok(self.try_begin(client, account)),
        };
        Ok(match begun {
            Begun { begun: true, .. } => Ok(LoginAttempt {
                throttle: Arc::clone(self),
                counted: Counted::Shared {
                    counts: Arc::clone(shared),
                    attempt,
                },
                settled: false,
            }),
            Begun {
                in_flight: false,
                wait_ms: Some(wait_ms),
                ..
            } => Err(Refusal::Throttled(self.throttled(key, wait_ms))),
            // In flight, or a limit no longer reached (it can be only
            // briefly): look again.
            Begun { .. } => Err(Refusal::Pending),
        })
    }

    fn throttled(&self, client: ClientKey, wait_ms: i64) -> AppError {
        metrics::counter!("postapi_logins_throttled_total").increment(1);
        log::debug!("login throttled for {client}: too many failed attempts");
        // Whole seconds, rounded up: a client retrying then is let in.
        let retry_after_secs = u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000).max(1);
        AppError::TooManyRequests { retry_after_secs }
    }

    /// On PostgreSQL, deletes the shared counts' expired rows, `batch` at a
    /// time until none is left; the number deleted. Memory needs no cleanup:
    /// its tables expire their own entries.
    pub async fn delete_expired(&self, batch: u32) -> Result<usize, AppError> {
        let Some(shared) = &self.shared else {
            return Ok(0);
        };
        let mut deleted = 0;
        loop {
            let now = self.clock.now();
            let round = store::run(&shared.pool, move |conn| {
                Ok(login_failures::delete_expired(conn, now, batch)?)
            })
            .await?;
            deleted += round;
            if round < usize::try_from(batch).unwrap_or(usize::MAX) {
                return Ok(deleted);
            }
        }
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One login attempt, counted as a failure until told otherwise. Dropped
/// without a verdict, it is not counted.
pub struct LoginAttempt {
    throttle: Arc<LoginThrottle>,
    counted: Counted,
    settled: bool,
}

/// Where an attempt is counted.
enum Counted {
    InMemory {
        account: AccountKey,
        at: i64,
    },
    Shared {
        counts: Arc<SharedCounts>,
        attempt: login_failures::Attempt,
    },
}

impl LoginAttempt {
    /// Wrong password or unknown account: the failure stays counted.
    pub async fn failed(mut self) {
        self.settled = true;
        metrics::counter!("postapi_logins_failed_total").increment(1);
        self.settle(Verdict::Failed).await;
    }

    /// The right password: this client's failures on the account are
    /// forgotten, and this attempt is not counted against the address.
    pub async fn succeeded(mut self) {
        self.settled = true;
        self.settle(Verdict::Succeeded).await;
    }

    /// Records `verdict`. In the database, on a task of its own, which runs
    /// to its end even if the request goes away; the request waits for its
    /// first try only.
    fn settle(&self, verdict: Verdict) -> impl Future<Output = ()> + 'static {
        let settling = match &self.counted {
            Counted::InMemory { account, at } => {
                let mut counts = self.throttle.counts();
                counts.remove_pending(account);
                match verdict {
                    Verdict::Failed => {}
                    Verdict::Succeeded => {
                        counts.per_account.forget(account);
                        counts.per_address.refund(&account.0, *at);
                    }
                    Verdict::Undecided => {
                        counts.per_account.refund(account, *at);
                        counts.per_address.refund(&account.0, *at);
                    }
                }
                None
            }
            Counted::Shared { counts, attempt } => {
                let (first_try, tried) = oneshot::channel();
                let now = self.throttle.clock.now();
                let settle = Arc::clone(counts).settle(attempt.clone(), verdict, now, first_try);
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => {
                        drop(runtime.spawn(settle));
                        Some(tried)
                    }
                    Err(_) => {
                        log::warn!(
                            "login throttling: no runtime to record a verdict on; \
                             the attempt stays in flight"
                        );
                        None
                    }
                }
            }
        };
        async move {
            if let Some(tried) = settling {
                // Dropped unsent: the first try is over, whatever it gave
                // (the task logs failures).
                let _ = tried.await;
            }
        }
    }
}

impl Drop for LoginAttempt {
    /// No verdict (the database was unreachable, say): the attempt does not
    /// count. In the database, that is recorded in the background.
    fn drop(&mut self) {
        if !self.settled {
            drop(self.settle(Verdict::Undecided));
        }
    }
}

fn client_key(address: IpAddr) -> ClientKey {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(Ipv6Addr::from(network))
        }
        v4 => v4,
    }
}

/// Failure times (milliseconds) per key, oldest first, at most `limit` a key.
struct FailureLog<K> {
    entries: HashMap<K, VecDeque<i64>>,
    limit: usize,
    capacity: usize,
}

impl<K: Hash + Eq + Copy> FailureLog<K> {
    fn new(limit: u32, capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            capacity,
        }
    }

    /// How long until `key` may fail again, if it is at its limit now.
    fn wait(&mut self, key: &K, now: i64, window_ms: i64) -> Option<i64> {
        let failures = self.entries.get_mut(key)?;
        expire(failures, now, window_ms);
        if failures.is_empty() {
            self.entries.remove(key);
            return None;
        }
        if failures.len() < self.limit {
            return None;
        }
        failures.front().map(|oldest| oldest + window_ms - now)
    }

    fn record(&mut self, key: K, now: i64, window_ms: i64) {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.make_room(now, window_ms);
        }
        let failures = self.entries.entry(key).or_default();
        failures.push_back(now);
        while failures.len() > self.limit {
            failures.pop_front();
        }
    }

    fn forget(&mut self, key: &K) {
        self.entries.remove(key);
    }

    /// Takes back one failure recorded at `at`, if it is still there.
    fn refund(&mut self, key: &K, at: i64) {
        if let Some(failures) = self.entries.get_mut(key) {
            if let Some(index) = failures.iter().rposition(|&time| time == at) {
                failures.remove(index);
            }
            if failures.is_empty() {
                self.entries.remove(key);
            }
        }
    }

    /// Drops expired keys; if none were, the one whose last failure is oldest.
    fn make_room(&mut self, now: i64, window_ms: i64) {
        self.entries.retain(|_, failures| {
            expire(failures, now, window_ms);
            !failures.is_empty()
        });
        if self.entries.len() < self.capacity {
            return;
        }
        let stalest = self
            .entries
            .iter()
            .min_by_key(|(_, failures)| failures.back().copied().unwrap_or(i64::MIN))
            .map(|(key, _)| *key);
        if let Some(key) = stalest {
            self.entries.remove(&key);
        }
    }
}

fn expire(failures: &mut VecDeque<i64>, now: i64, window_ms: i64) {
    while failures
        .front()
        .is_some_and(|&oldest| oldest.saturating_add(window_ms) <= now)
    {
        failures.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{TimeDelta, Utc};
    use futures_util::FutureExt;

    use super::*;
    use crate::clock::ManualClock;

    /// A verdict on an attempt counted in memory, which needs no waiting.
    fn settled(verdict: impl Future<Output = ()>) {
        verdict
            .now_or_never()
            .expect("a verdict in memory is recorded at once");
    }

    fn throttle(per_account: u32, per_address: u32) -> (Arc<LoginThrottle>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let limits = LoginLimits {
            per_account,
            per_address,
            window: Duration::from_secs(900),
        };
        (Arc::new(LoginThrottle::new(limits, clock.clone())), clock)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn fail(throttle: &Arc<LoginThrottle>, client: &str, account: &str) {
        settled(throttle.try_begin(ip(client), account).unwrap().failed());
    }

    fn retry_after(result: Result<LoginAttempt, Refusal>) -> u64 {
        match result {
            Err(Refusal::Throttled(AppError::TooManyRequests { retry_after_secs })) => {
                retry_after_secs
            }
            Err(other) => panic!("not a 429: {other:?}"),
            Ok(_) => panic!("not throttled"),
        }
    }

    #[test]
    fn the_limit_slides_with_the_window() {
        let (throttle, clock) = throttle(3, 100);
        fail(&throttle, "192.0.2.1", "a@example.com");
        clock.advance(TimeDelta::seconds(100));
        fail(&throttle, "192.0.2.1", "a@example.com");
        fail(&throttle, "192.0.2.1", "a@example.com");

        assert_eq!(
            retry_after(throttle.try_begin(ip("192.0.2.1"), "a@example.com")),
            800
        );
        clock.advance(TimeDelta::seconds(799));
        assert_eq!(
            retry_after(throttle.try_begin(ip("192.0.2.1"), "a@example.com")),
            1
        );
        clock.advance(TimeDelta::seconds(1));
        assert!(throttle.try_begin(ip("192.0.2.1"), "a@example.com").is_ok());
    }

    #[test]
    fn an_unsettled_attempt_is_refunded_and_a_success_forgets_the_account() {
        let (throttle, _) = throttle(2, 3);
        let pending = throttle
            .try_begin(ip("192.0.2.1"), "a@example.com")
            .unwrap();
        fail(&throttle, "192.0.2.1", "a@example.com");
        // Two in flight or failed: the limit is reached until one settles.
        assert!(
            throttle
                .try_begin(ip("192.0.2.1"), "a@example.com")
                .is_err()
        );
        drop(pending);
        let attempt = throttle
            .try_begin(ip("192.0.2.1"), "a@example.com")
            .unwrap();
        settled(attempt.succeeded());
        fail(&throttle, "192.0.2.1", "a@example.com");
        fail(&throttle, "192.0.2.1", "a@example.com");
        // The address has three failures now (one before the success).
        assert!(
            throttle
                .try_begin(ip("192.0.2.1"), "b@example.com")
                .is_err()
        );
    }

    #[test]
    fn a_limit_reached_only_by_attempts_in_flight_makes_the_next_wait_not_fail() {
        let (throttle, _) = throttle(1, 100);
        let in_flight = throttle
            .try_begin(ip("192.0.2.1"), "a@example.com")
            .unwrap();
        assert!(matches!(
            throttle.try_begin(ip("192.0.2.1"), "a@example.com"),
            Err(Refusal::Pending)
        ));
        settled(in_flight.succeeded());
        let next = throttle
            .try_begin(ip("192.0.2.1"), "a@example.com")
            .unwrap();
        settled(next.failed());
        assert!(matches!(
            throttle.try_begin(ip("192.0.2.1"), "a@example.com"),
            Err(Refusal::Throttled(AppError::TooManyRequests { .. }))
        ));
    }

    #[test]
    fn ipv6_clients_count_by_their_64_bit_network() {
        let (throttle, _) = throttle(1, 100);
        fail(&throttle, "2001:db8:1:2::1", "a@example.com");
        assert!(
            throttle
                .try_begin(ip("2001:db8:1:2:ffff::9"), "a@example.com")
                .is_err()
        );
        assert!(
            throttle
                .try_begin(ip("2001:db8:1:3::1"), "a@example.com")
                .is_ok()
        );
        fail(&throttle, "::ffff:192.0.2.7", "b@example.com");
        assert!(
            throttle
                .try_begin(ip("192.0.2.7"), "b@example.com")
                .is_err()
        );
    }

    #[test]
    fn the_tables_never_grow_past_their_capacity() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let limits = LoginLimits {
            per_account: 5,
            per_address: 50,
            window: Duration::from_secs(900),
        };
        let throttle = Arc::new(LoginThrottle::with_capacity(limits, clock.clone(), 100));
        for n in 0..1_000u32 {
            let client = IpAddr::from(n.to_be_bytes());
            settled(
                throttle
                    .try_begin(client, &format!("{n}@example.com"))
                    .unwrap()
                    .failed(),
            );
            clock.advance(TimeDelta::milliseconds(1));
        }
        let counts = throttle.counts();
        assert_eq!(counts.per_account.entries.len(), 100);
        assert_eq!(counts.per_address.entries.len(), 100);
        // The most recent failures are the ones kept.
        assert!(
            counts
                .per_address
                .entries
                .contains_key(&IpAddr::from(999u32.to_be_bytes()))
        );
    }
}
