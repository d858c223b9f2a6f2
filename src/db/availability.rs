//! Whether the database can be reached, as the pool's own connection
//! attempts last found.
//!
//! When a new connection cannot be opened the database is marked unreachable,
//! and requests that would have to wait for a connection get 503 at once
//! instead of after the pool timeout. r2d2 keeps retrying the failed
//! connection in the background (backing off up to half the pool timeout);
//! those retries are the probes: the first that connects marks the database
//! reachable again, with no request needed. Idle connections are still
//! handed out while the flag is set, so one failed connect (say, the server's
//! `max_connections` reached) cannot stop a pool that still works.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// Whether the last attempt to open a connection failed, and what the
/// outage has cost so far. An outage is logged twice, not once a request:
/// a warning when it starts, and when it ends how long it lasted and how
/// many requests were refused meanwhile (each also shows in the access log
/// and in the request metrics as a 503).
#[derive(Debug, Default)]
pub struct Availability {
    down: AtomicBool,
    /// When the current outage started.
    since: Mutex<Option<Instant>>,
    /// Requests answered 503 for want of the database, since the last start.
    refused: AtomicU64,
}

impl Availability {
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// A connection attempt failed.
    pub fn connect_failed(&self, cause: &dyn std::fmt::Display) {
        if !self.down.swap(true, Ordering::AcqRel) {
            *self.since.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            self.refused.store(0, Ordering::Release);
            log::warn!(
                "the database cannot be reached ({}); answering 503 until a connection succeeds",
                one_line(cause)
            );
        }
    }

    /// A connection attempt succeeded.
    pub fn connected(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            let since = self.since.lock().unwrap_or_else(|e| e.into_inner()).take();
            let seconds = since.map_or(0.0, |since| since.elapsed().as_secs_f64());
            log::info!(
                "the database can be reached again, after {seconds:.1} s; {} requests were refused meanwhile",
                self.refused.load(Ordering::Acquire)
            );
        }
    }

    /// A request was answered 503 for want of the database.
    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::AcqRel);
    }
}

/// libpq's messages span lines; an operator should get one.
fn one_line(text: &dyn std::fmt::Display) -> String {
    text.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_follows_the_last_connection_attempt() {
        let availability = Availability::default();
        assert!(!availability.is_down());
        availability.connect_failed(&"connection refused");
        availability.connect_failed(&"connection refused");
        assert!(availability.is_down());
        availability.refused();
        availability.refused();
        assert_eq!(availability.refused.load(Ordering::Acquire), 2);
        availability.connected();
        assert!(!availability.is_down());
        // The next outage counts from zero.
        availability.connect_failed(&"connection refused");
        assert_eq!(availability.refused.load(Ordering::Acquire), 0);
    }
}
