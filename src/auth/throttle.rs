//! Failed-login throttling: past a number of failures in a sliding window,
//! per client address and account and per client address across accounts,
//! logins get 429 before any database lookup or bcrypt work.
//!
//! Counts live in this instance's memory: behind a load balancer each
//! instance counts on its own, and a restart forgets them. Memory is bounded:
//! each table tracks at most [`MAX_TRACKED_KEYS`] keys (accounts are kept as
//! a keyed 64-bit hash, never as the text a client sent); when one is full,
//! expired keys go first, then the least recently failing one.
//!
//! An attempt is counted as a failure when it starts and refunded if it
//! succeeds (or never gets a verdict), so parallel guesses cannot all pass
//! the check before the first failure is recorded. An attempt that finds the
//! limit reached only because others are still in flight waits for their
//! verdicts instead of being refused: if they were right, their success
//! clears the count and it goes on, so valid logins are never throttled.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::config::LoginLimits;
use crate::error::AppError;

/// Keys tracked per table; with the default limits the two tables stay
/// within a few tens of MiB even when full.
pub const MAX_TRACKED_KEYS: usize = 65_536;

/// How long an attempt waits for the verdicts of attempts in flight before
/// it is refused after all; longer than a hash may queue and run.
const MAX_WAIT_FOR_PENDING: Duration = Duration::from_secs(15);
/// How often a waiting attempt looks again.
const PENDING_RECHECK: Duration = Duration::from_millis(20);

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

/// Why an attempt may not start now.
#[derive(Debug)]
pub enum Refusal {
    /// A limit is reached by settled failures: 429.
    Throttled(AppError),
    /// A limit is reached only counting attempts still in flight.
    Pending,
}

impl LoginThrottle {
    pub fn new(limits: LoginLimits, clock: Arc<dyn Clock>) -> Self {
        Self::with_capacity(limits, clock, MAX_TRACKED_KEYS)
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
        }
    }

    /// Starts a login attempt by `client` on `account` (the normalised email),
    /// or refuses it with 429 when either limit is reached; waits first while
    /// the limit is reached only by attempts in flight.
    pub async fn begin(
        self: &Arc<Self>,
        client: IpAddr,
        account: &str,
    ) -> Result<LoginAttempt, AppError> {
        let started = Instant::now();
        loop {
            match self.try_begin(client, account) {
                Ok(attempt) => return Ok(attempt),
                Err(Refusal::Throttled(error)) => return Err(error),
                Err(Refusal::Pending) if started.elapsed() >= MAX_WAIT_FOR_PENDING => {
                    return Err(self.throttled(client, 1_000));
                }
                Err(Refusal::Pending) => actix_web::rt::time::sleep(PENDING_RECHECK).await,
            }
        }
    }

    /// [`LoginThrottle::begin`] without waiting.
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
            account,
            at: now,
            settled: false,
        })
    }

    fn throttled(&self, client: ClientKey, wait_ms: i64) -> AppError {
        metrics::counter!("postapi_logins_throttled_total").increment(1);
        log::debug!("login throttled for {client}: too many failed attempts");
        // Whole seconds, rounded up: a client retrying then is let in.
        let retry_after_secs = u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000).max(1);
        AppError::TooManyRequests { retry_after_secs }
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One login attempt, counted as a failure until told otherwise.
pub struct LoginAttempt {
    throttle: Arc<LoginThrottle>,
    account: AccountKey,
    at: i64,
    settled: bool,
}

impl LoginAttempt {
    /// Wrong password or unknown account: the failure stays counted.
    pub fn failed(mut self) {
        self.settled = true;
        self.throttle.counts().remove_pending(&self.account);
        metrics::counter!("postapi_logins_failed_total").increment(1);
    }

    /// The right password: this client's failures on the account are
    /// forgotten, and this attempt is not counted against the address.
    pub fn succeeded(mut self) {
        self.settled = true;
        let mut counts = self.throttle.counts();
        counts.remove_pending(&self.account);
        counts.per_account.forget(&self.account);
        counts.per_address.refund(&self.account.0, self.at);
    }
}

impl Drop for LoginAttempt {
    /// No verdict (the database was unreachable, say): the attempt does not count.
    fn drop(&mut self) {
        if !self.settled {
            let mut counts = self.throttle.counts();
            counts.remove_pending(&self.account);
            counts.per_account.refund(&self.account, self.at);
            counts.per_address.refund(&self.account.0, self.at);
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

    use super::*;
    use crate::clock::ManualClock;

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
        throttle.try_begin(ip(client), account).unwrap().failed();
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
        attempt.succeeded();
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
        in_flight.succeeded();
        let next = throttle
            .try_begin(ip("192.0.2.1"), "a@example.com")
            .unwrap();
        next.failed();
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
            throttle
                .try_begin(client, &format!("{n}@example.com"))
                .unwrap()
                .failed();
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
