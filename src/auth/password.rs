//! bcrypt hashing and verification through the `bcrypt` crate (no code of
//! our own touches the cipher), on a small pool of low-priority threads of
//! their own with a bounded queue, so a flood of logins can neither starve
//! the HTTP workers nor queue without end.
//!
//! A stored hash is read before anything is hashed: one whose cost is far
//! above `BCRYPT_COST` is refused unverified, and a right password stored at
//! another cost is hashed again at `BCRYPT_COST` for the caller to store
//! (passlib's rehash-on-login).

use std::str::FromStr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread;

use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::oneshot;

use crate::config::HashPoolSize;
use crate::error::AppError;

/// Longest password bcrypt can use in full; longer ones are refused, never
/// silently truncated.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// The nice value of the hashing threads, the lowest priority there is:
/// while request handling wants a core the scheduler gives a hashing thread
/// a sliver of it, and when nothing else does, all of it. It orders threads
/// within our session (or cgroup) only, not against a database server in a
/// session of its own: that is the service manager's (`CPUWeight=`).
const HASHING_NICENESS: i32 = 19;

/// How far above `BCRYPT_COST` a stored hash's cost may be and still be
/// verified. Each step doubles the work: a row with cost 31 would hold a
/// hashing thread for days, so a cost past this is refused unverified.
pub const MAX_COST_ABOVE_CONFIGURED: u32 = 2;

/// Moves a password into a [`SecretString`] and wipes `text`, whose buffer
/// would otherwise be freed with the password still in it.
///
/// The secret is a copy of exactly the password's length (`SecretString`'s
/// `From<String>` would shrink a roomier buffer by reallocating, leaving the
/// old one unwiped); `text`, spare capacity included, is then zeroed.
pub fn take_password(text: &mut String) -> SecretString {
    let secret = SecretString::from(text.as_str());
    text.zeroize();
    secret
}

/// What a stored hash allows, read with the `bcrypt` crate's own parser
/// before anything is hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredHash {
    /// bcrypt can verify it; this is its cost.
    Usable { cost: u32 },
    /// Its cost is more than [`MAX_COST_ABOVE_CONFIGURED`] above the
    /// configured one: refused without hashing.
    TooCostly { cost: u32 },
    /// Not a hash bcrypt can verify: not 60 characters of `$2?$NN$` and
    /// bcrypt's base64, or a cost below bcrypt's least (4).
    Malformed,
}

impl StoredHash {
    pub fn assess(stored: &str, configured_cost: u32) -> Self {
        let Ok(parts) = bcrypt::HashParts::from_str(stored) else {
            return Self::Malformed;
        };
        let cost = parts.get_cost();
        if cost > configured_cost.saturating_add(MAX_COST_ABOVE_CONFIGURED) {
            Self::TooCostly { cost }
        } else if !(MIN_COST..=MAX_COST).contains(&cost) {
            Self::Malformed
        } else {
            Self::Usable { cost }
        }
    }
}

/// bcrypt's range of costs (the crate does not export its own constants).
const MIN_COST: u32 = 4;
const MAX_COST: u32 = 31;

/// The outcome of checking a password against a user's stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The password is right. `rehashed` is a new hash of it at the
    /// configured cost, when the stored hash had another cost: store it.
    Matches { rehashed: Option<String> },
    /// A wrong password, an unknown user, or a password over 72 bytes.
    Wrong,
    /// The stored hash is [`StoredHash::Malformed`]: the password was
    /// verified against the dummy hash instead (so the answer takes as long
    /// as a wrong password's), and matches nothing.
    Malformed,
    /// The stored hash is [`StoredHash::TooCostly`]: nothing was hashed.
    TooCostly { cost: u32 },
}

pub struct PasswordHasher {
    cost: u32,
    /// Verified against when the email is unknown (or its stored hash is
    /// malformed), so that answer takes as long as a wrong password does.
    dummy_hash: String,
    pool: HashPool,
}

impl PasswordHasher {
    /// Computes the dummy hash (call it off the async executor) and starts
    /// the hashing threads.
    pub fn new(cost: u32, size: HashPoolSize) -> Result<Self, PasswordHasherError> {
        let dummy_hash = bcrypt::hash("postapi timing-equaliser password", cost)?;
        Ok(Self {
            cost,
            dummy_hash,
            pool: HashPool::start(size)?,
        })
    }

    /// The configured cost (`BCRYPT_COST`).
    pub fn cost(&self) -> u32 {
        self.cost
    }

    /// Hashes a password already checked to be at most 72 bytes (bcrypt would
    /// count only the first 72 of a longer one).
    pub async fn hash(&self, password: SecretString) -> Result<String, AppError> {
        if password.expose_secret().len() > MAX_PASSWORD_BYTES {
            return Err(AppError::Internal(
                "refusing to hash a password over 72 bytes".into(),
            ));
        }
        let cost = self.cost;
        // The secret moves into the job and is wiped when the job is dropped,
        // run or not. bcrypt wipes its own 72-byte copy of the key; the
        // Blowfish state expanded from it is left on the hashing thread's
        // stack unwiped (the crate does not zeroize it).
        self.pool
            .run(move || bcrypt::hash(password.expose_secret(), cost))
            .await?
            .map_err(|e| AppError::Internal(format!("bcrypt hash: {e}")))
    }

    /// Checks `password` against `stored_hash`, or against the dummy hash when
    /// there is no such user. Both take the same path through the pool, queue
    /// included. A stored hash whose cost is not the configured one is
    /// hashed anew at the configured cost in the same job, so a login that
    /// rehashes waits for a thread once.
    pub async fn verify(
        &self,
        password: SecretString,
        stored_hash: Option<String>,
    ) -> Result<Verdict, AppError> {
        let (hash, stored_cost, malformed) = match stored_hash {
            None => (self.dummy_hash.clone(), None, false),
            Some(stored) => match StoredHash::assess(&stored, self.cost) {
                StoredHash::TooCostly { cost } => return Ok(Verdict::TooCostly { cost }),
                StoredHash::Malformed => (self.dummy_hash.clone(), None, true),
                StoredHash::Usable { cost } => (stored, Some(cost), false),
            },
        };
        // bcrypt would compare only the first 72 bytes of a longer password:
        // such a password is wrong, though still verified for equal timing.
        let within_limit = password.expose_secret().len() <= MAX_PASSWORD_BYTES;
        let configured = self.cost;
        let verdict = self
            .pool
            .run(move || {
                let matches = match bcrypt::verify(password.expose_secret(), &hash) {
                    Ok(matches) => matches,
                    Err(error) => {
                        // Not expected: the hash was parsed and its cost checked.
                        log::warn!("bcrypt could not verify a stored hash: {error}");
                        false
                    }
                };
                if malformed {
                    return Verdict::Malformed;
                }
                match stored_cost {
                    Some(cost) if matches && within_limit => Verdict::Matches {
                        rehashed: (cost != configured)
                            .then(|| rehash(&password, configured))
                            .flatten(),
                    },
                    _ => Verdict::Wrong,
                }
            })
            .await?;
        Ok(verdict)
    }
}

/// A new hash of a password just verified, at `cost`; `None` (logged) if
/// bcrypt fails, and then the old hash stays.
fn rehash(password: &SecretString, cost: u32) -> Option<String> {
    bcrypt::hash(password.expose_secret(), cost)
        .inspect_err(|error| log::warn!("cannot rehash a password at cost {cost}: {error}"))
        .ok()
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordHasherError {
    #[error("bcrypt: {0}")]
    Bcrypt(#[from] bcrypt::BcryptError),
    #[error("cannot start a hashing thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// A job's fate, settled once: a thread starts it, or its caller gives up.
const QUEUED: u8 = 0;
const STARTED: u8 = 1;
const ABANDONED: u8 = 2;

struct Job {
    state: Arc<AtomicU8>,
    work: Box<dyn FnOnce() + Send>,
}

/// Threads that take jobs off one shared queue.
struct HashPool {
    jobs: Mutex<Sender<Job>>,
    counts: Arc<Counts>,
    size: HashPoolSize,
}

#[derive(Default)]
struct Counts {
    /// Admitted and not finished: running plus waiting.
    admitted: AtomicUsize,
    running: AtomicUsize,
}

impl Counts {
    fn publish(&self) {
        let admitted = self.admitted.load(Ordering::Relaxed);
        let running = self.running.load(Ordering::Relaxed);
        metrics::gauge!("postapi_password_hash_in_flight").set(running as f64);
        metrics::gauge!("postapi_password_hash_queue_depth")
            .set(admitted.saturating_sub(running) as f64);
    }
}

impl HashPool {
    fn start(size: HashPoolSize) -> std::io::Result<Self> {
        let (sender, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let counts = Arc::new(Counts::default());
        for n in 0..size.threads {
            let receiver = Arc::clone(&receiver);
            let counts = Arc::clone(&counts);
            thread::Builder::new()
                .name(format!("password-hash-{n}"))
                .spawn(move || hashing_thread(&receiver, &counts))?;
        }
        counts.publish();
        Ok(Self {
            jobs: Mutex::new(sender),
            counts,
            size,
        })
    }

    /// Runs `work` on a hashing thread; 503 when the queue is full or the
    /// wait for a thread runs out.
    async fn run<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let bound = self.size.threads + self.size.queue;
        let admitted = self.counts.admitted.fetch_add(1, Ordering::AcqRel);
        if admitted >= bound {
            self.counts.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(self.refuse("the queue is full"));
        }
        self.counts.publish();

        let (reply, answer) = oneshot::channel();
        let state = Arc::new(AtomicU8::new(QUEUED));
        let counts = Arc::clone(&self.counts);
        let job = Job {
            state: Arc::clone(&state),
            work: Box::new(move || {
                let value = work();
                // Counted out before the caller hears back, so its next
                // request finds the place free.
                counts.running.fetch_sub(1, Ordering::AcqRel);
                counts.admitted.fetch_sub(1, Ordering::AcqRel);
                counts.publish();
                let _ = reply.send(value);
            }),
        };
        let sent = self
            .jobs
            .lock()
            .map_err(|_| AppError::Internal("the hashing queue lock is poisoned".into()))
            .and_then(|jobs| {
                jobs.send(job)
                    .map_err(|_| AppError::Internal("the hashing threads are gone".into()))
            });
        if let Err(error) = sent {
            self.counts.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(error);
        }

        let mut answer = answer;
        match tokio::time::timeout(self.size.max_wait, &mut answer).await {
            Ok(result) => result.map_err(|_| hashing_thread_died()),
            Err(_) => {
                if state
                    .compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    // The thread that dequeues it will drop it uncounted.
                    return Err(self.refuse("the wait for a hashing thread ran out"));
                }
                // Started just now: its answer is on the way.
                answer.await.map_err(|_| hashing_thread_died())
            }
        }
    }

    fn refuse(&self, why: &str) -> AppError {
        metrics::counter!("postapi_password_hash_rejected_total").increment(1);
        let retry_after = self.size.max_wait.as_secs().max(1);
        AppError::Busy {
            cause: format!("password hashing: {why}"),
            retry_after_secs: retry_after,
        }
    }
}

fn hashing_thread_died() -> AppError {
    AppError::Internal("a hashing thread stopped before answering".into())
}

fn hashing_thread(receiver: &Mutex<Receiver<Job>>, counts: &Counts) {
    lower_this_threads_priority();
    loop {
        let job = match receiver.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return,
        };
        // The sender lives as long as the hasher; when it goes, so do we.
        let Ok(job) = job else { return };
        let started = job
            .state
            .compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if started {
            counts.running.fetch_add(1, Ordering::AcqRel);
            counts.publish();
            // Counts itself out when done.
            (job.work)();
        } else {
            counts.admitted.fetch_sub(1, Ordering::AcqRel);
            counts.publish();
        }
    }
}

/// Gives the calling thread (and only it) a higher nice value. Best effort:
/// a failure leaves it at normal priority.
#[cfg(target_os = "linux")]
fn lower_this_threads_priority() {
    // SAFETY: gettid and setpriority take plain integers and touch no memory
    // of ours; on Linux PRIO_PROCESS with a thread id acts on that thread.
    let result = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, HASHING_NICENESS)
    };
    if result != 0 {
        log::warn!(
            "cannot lower the priority of a hashing thread: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_threads_priority() {}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SMALL: HashPoolSize = HashPoolSize {
        threads: 1,
        queue: 4,
        max_wait: Duration::from_secs(5),
    };

    /// A pool that hashes nothing: every job is refused at once.
    const NO_THREADS: HashPoolSize = HashPoolSize {
        threads: 0,
        queue: 0,
        max_wait: Duration::from_secs(5),
    };

    fn secret(text: &str) -> SecretString {
        SecretString::from(text)
    }

    /// A well-formed hash with the given cost (of no known password).
    fn hash_at_cost(cost: u32) -> String {
        let real = bcrypt::hash("pw", 4).unwrap();
        format!("$2b${cost:02}${}", &real[7..])
    }

    #[test]
    fn the_cost_is_read_from_every_bcrypt_version_with_the_crates_parser() {
        let parts = bcrypt::hash_with_result("pw", 5).unwrap();
        for version in [
            bcrypt::Version::TwoA,
            bcrypt::Version::TwoB,
            bcrypt::Version::TwoX,
            bcrypt::Version::TwoY,
        ] {
            let stored = parts.format_for_version(version);
            assert_eq!(
                StoredHash::assess(&stored, 5),
                StoredHash::Usable { cost: 5 },
                "{stored}"
            );
        }
        // From the OpenBSD/jBCrypt test vectors: cost 6.
        let openbsd = "$2a$06$If6bvum7DFjUnE9p2uDeDu0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0i";
        assert_eq!(
            StoredHash::assess(openbsd, 12),
            StoredHash::Usable { cost: 6 }
        );
    }

    #[test]
    fn a_cost_up_to_two_above_the_configured_one_is_verified_and_past_that_refused() {
        for (stored, configured, expected) in [
            (4, 12, StoredHash::Usable { cost: 4 }),
            (12, 12, StoredHash::Usable { cost: 12 }),
            (14, 12, StoredHash::Usable { cost: 14 }),
            (15, 12, StoredHash::TooCostly { cost: 15 }),
            (31, 12, StoredHash::TooCostly { cost: 31 }),
            (6, 4, StoredHash::Usable { cost: 6 }),
            (7, 4, StoredHash::TooCostly { cost: 7 }),
            (31, 30, StoredHash::Usable { cost: 31 }),
            (31, 31, StoredHash::Usable { cost: 31 }),
            // Two digits allow 99: far above any configured cost.
            (99, 12, StoredHash::TooCostly { cost: 99 }),
            // bcrypt has no cost above 31, whatever the configured one.
            (32, 31, StoredHash::Malformed),
        ] {
            assert_eq!(
                StoredHash::assess(&hash_at_cost(stored), configured),
                expected,
                "stored cost {stored}, configured {configured}"
            );
        }
    }

    #[test]
    fn what_bcrypt_cannot_parse_or_verify_is_malformed() {
        let stored = bcrypt::hash("pw", 4).unwrap();
        for bad in [
            "",
            "not a hash",
            "x",
            &stored[..59],
            &format!("{stored}x"),
            &stored.replacen("$2b$", "$2c$", 1),
            &stored.replacen("$04$", "$03$", 1),
            &stored.replacen("$04$", "$00$", 1),
            &stored.replacen("$04$", "$ab$", 1),
            &format!("{}é", &stored[..58]),
            &format!("{}!", &stored[..59]),
        ] {
            assert_eq!(
                StoredHash::assess(bad, 12),
                StoredHash::Malformed,
                "{bad:?}"
            );
        }
    }

    #[actix_web::test]
    async fn a_password_of_exactly_72_bytes_hashes_and_verifies() {
        let hasher = PasswordHasher::new(4, SMALL).unwrap();
        let password = "p".repeat(MAX_PASSWORD_BYTES);
        let hash = hasher.hash(secret(&password)).await.unwrap();

        assert_eq!(
            hasher
                .verify(secret(&password), Some(hash.clone()))
                .await
                .unwrap(),
            Verdict::Matches { rehashed: None }
        );
        assert_eq!(
            hasher
                .verify(secret(&format!("{password}x")), Some(hash))
                .await
                .unwrap(),
            Verdict::Wrong
        );
    }

    #[actix_web::test]
    async fn an_unknown_user_never_verifies() {
        let hasher = PasswordHasher::new(4, SMALL).unwrap();
        let dummy_password = secret("postapi timing-equaliser password");

        assert_eq!(
            hasher.verify(dummy_password, None).await.unwrap(),
            Verdict::Wrong
        );
    }

    #[actix_web::test]
    async fn a_right_password_stored_at_another_cost_comes_back_rehashed_at_the_configured_one() {
        let hasher = PasswordHasher::new(5, SMALL).unwrap();
        for old_cost in [4, 6, 7] {
            let stored = bcrypt::hash("pw", old_cost).unwrap();

            let Verdict::Matches {
                rehashed: Some(new),
            } = hasher.verify(secret("pw"), Some(stored)).await.unwrap()
            else {
                panic!("a rehash from cost {old_cost}");
            };

            assert_eq!(StoredHash::assess(&new, 5), StoredHash::Usable { cost: 5 });
            assert!(bcrypt::verify("pw", &new).unwrap());
        }
    }

    #[actix_web::test]
    async fn a_wrong_password_at_another_cost_is_not_rehashed() {
        let hasher = PasswordHasher::new(5, SMALL).unwrap();
        let stored = bcrypt::hash("pw", 4).unwrap();

        assert_eq!(
            hasher.verify(secret("not pw"), Some(stored)).await.unwrap(),
            Verdict::Wrong
        );
    }

    #[actix_web::test]
    async fn a_too_costly_hash_is_refused_without_reaching_the_pool() {
        // Any job would be refused with a 503: the verdict shows none was sent.
        let hasher = PasswordHasher::new(4, NO_THREADS).unwrap();

        let verdict = hasher
            .verify(secret("pw"), Some(hash_at_cost(31)))
            .await
            .unwrap();
        let usable = hasher.verify(secret("pw"), Some(hash_at_cost(4))).await;

        assert_eq!(verdict, Verdict::TooCostly { cost: 31 });
        assert!(matches!(usable, Err(AppError::Busy { .. })));
    }

    #[actix_web::test]
    async fn a_malformed_hash_is_verified_against_the_dummy_and_matches_nothing() {
        let hasher = PasswordHasher::new(4, SMALL).unwrap();
        // The dummy's own password must not open an account with a bad hash.
        for password in ["pw", "postapi timing-equaliser password"] {
            assert_eq!(
                hasher
                    .verify(secret(password), Some("not a hash".into()))
                    .await
                    .unwrap(),
                Verdict::Malformed
            );
        }
        // The same path as a wrong password, through the pool.
        let refusing = PasswordHasher::new(4, NO_THREADS).unwrap();
        let verdict = refusing
            .verify(secret("pw"), Some("not a hash".into()))
            .await;
        assert!(matches!(verdict, Err(AppError::Busy { .. })));
    }

    #[test]
    fn a_taken_password_is_a_secret_and_its_text_is_wiped() {
        let mut text = String::with_capacity(64);
        text.push_str("hunter2 hunter2");

        let password = take_password(&mut text);

        assert_eq!(password.expose_secret(), "hunter2 hunter2");
        assert!(text.is_empty());
        assert!(!format!("{password:?}").contains("hunter2"));
    }
}
