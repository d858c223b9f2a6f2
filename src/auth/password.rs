//! bcrypt hashing and verification through the `bcrypt` crate, on a small
//! pool of low-priority threads of their own with a bounded queue, so a
//! flood of logins can neither starve the HTTP workers nor queue without end.

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

/// The nice value of the hashing threads: under load the scheduler gives
/// them about a tenth of what our other threads get. It orders threads
/// within our session (or cgroup) only, not against a database server in a
/// session of its own.
const HASHING_NICENESS: i32 = 10;

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

pub struct PasswordHasher {
    cost: u32,
    /// Verified against when the email is unknown, so that answer takes as
    /// long as a wrong password does.
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
    /// there is no such user (and then answers `false` whatever happens).
    /// Both take the same path through the pool, queue included.
    pub async fn verify(
        &self,
        password: SecretString,
        stored_hash: Option<String>,
    ) -> Result<bool, AppError> {
        let user_exists = stored_hash.is_some();
        // bcrypt would compare only the first 72 bytes of a longer password:
        // such a password is wrong, though still verified for equal timing.
        let within_limit = password.expose_secret().len() <= MAX_PASSWORD_BYTES;
        let hash = stored_hash.unwrap_or_else(|| self.dummy_hash.clone());
        let matches = self
            .pool
            .run(move || bcrypt::verify(password.expose_secret(), &hash))
            .await?
            // A stored hash bcrypt cannot read matches nothing.
            .unwrap_or(false);
        Ok(user_exists && within_limit && matches)
    }
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

    fn secret(text: &str) -> SecretString {
        SecretString::from(text)
    }

    #[actix_web::test]
    async fn a_password_of_exactly_72_bytes_hashes_and_verifies() {
        let hasher = PasswordHasher::new(4, SMALL).unwrap();
        let password = "p".repeat(MAX_PASSWORD_BYTES);
        let hash = hasher.hash(secret(&password)).await.unwrap();

        assert!(
            hasher
                .verify(secret(&password), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(secret(&format!("{password}x")), Some(hash))
                .await
                .unwrap()
        );
    }

    #[actix_web::test]
    async fn an_unknown_user_never_verifies() {
        let hasher = PasswordHasher::new(4, SMALL).unwrap();
        let dummy_password = secret("postapi timing-equaliser password");

        assert!(!hasher.verify(dummy_password, None).await.unwrap());
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
