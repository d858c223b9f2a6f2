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

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the last attempt to open a connection failed.
#[derive(Debug, Default)]
pub struct Availability {
    down: AtomicBool,
}

impl Availability {
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// A connection attempt failed.
    pub fn connect_failed(&self, cause: &dyn std::fmt::Display) {
        if !self.down.swap(true, Ordering::AcqRel) {
            log::error!(
                "the database cannot be reached ({}); answering 503 until a connection succeeds",
                one_line(cause)
            );
        }
    }

    /// A connection attempt succeeded.
    pub fn connected(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            log::info!("the database can be reached again");
        }
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
        availability.connected();
        assert!(!availability.is_down());
    }
}
