//! bcrypt computed in short bursts with a sleep between them, so that a
//! hash never holds a core for long: the same hashes as the `bcrypt` crate
//! (which still parses stored hashes), from blowfish's bcrypt primitives.
//!
//! Why: on Linux with autogroups (or per-service cgroups), a thread's nice
//! value only orders it within its own process. Against PostgreSQL's
//! backends, which are another process, a hashing thread that runs for a
//! whole 250 ms hash counts as much as any other thread of ours, and a
//! backend woken on its core waited up to a second (`perf sched`, 32 logins
//! at once). A hashing thread that sleeps every few hundred microseconds
//! hands its core back at each pause.

use std::str::FromStr;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use blowfish::Blowfish;
use subtle::ConstantTimeEq;

/// How long a hash may run before it pauses, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub burst: Duration,
    pub pause: Duration,
}

impl Pace {
    /// Never pauses.
    pub const FLAT_OUT: Pace = Pace {
        burst: Duration::MAX,
        pause: Duration::ZERO,
    };
}

const MIN_COST: u32 = 4;
const MAX_COST: u32 = 31;
/// bcrypt's own limit: a longer password counts only its first 72 bytes.
const KEY_BYTES: usize = 72;

/// A new `$2b$` hash of `password` with a random salt.
pub fn hash(password: &[u8], cost: u32, pace: Pace) -> Result<String, HashError> {
    if !(MIN_COST..=MAX_COST).contains(&cost) {
        return Err(HashError::Cost(cost));
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)?;
    let digest = raw(cost, salt, password, pace);
    let mut salt_text = [0u8; 22];
    let mut digest_text = [0u8; 31];
    encode(&salt, &mut salt_text);
    encode(&digest, &mut digest_text);
    Ok(format!(
        "$2b${cost:02}${}{}",
        ascii(&salt_text),
        ascii(&digest_text)
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("bcrypt cost {0} is outside 4..=31")]
    Cost(u32),
    #[error("no random salt: {0}")]
    Random(#[from] getrandom::Error),
}

/// Whether `password` matches `stored`, any of the `$2a$`, `$2b$`, `$2x$`,
/// `$2y$` forms; a malformed hash matches nothing.
pub fn verify(password: &[u8], stored: &str, pace: Pace) -> bool {
    let Ok(parts) = bcrypt::HashParts::from_str(stored) else {
        return false;
    };
    let cost = parts.get_cost();
    if !(MIN_COST..=MAX_COST).contains(&cost) {
        return false;
    }
    // The parse checked the form: 60 ASCII bytes, the digest in the last 31.
    let mut expected = [0u8; 23];
    if bcrypt::BASE_64
        .decode_slice(&stored[29..], &mut expected)
        .is_err()
    {
        return false;
    }
    let digest = raw(cost, parts.get_salt_raw(), password, pace);
    digest.ct_eq(&expected).into()
}

/// The 23 bytes bcrypt keeps, as the `bcrypt` crate computes them: the key is
/// the password and a NUL, cut at 72 bytes.
fn raw(cost: u32, salt: [u8; 16], password: &[u8], pace: Pace) -> [u8; 23] {
    let mut key = [0u8; KEY_BYTES];
    let length = password.len().min(KEY_BYTES);
    key[..length].copy_from_slice(&password[..length]);
    let key = &key[..(length + 1).min(KEY_BYTES)];

    let mut state = Blowfish::bc_init_state();
    state.salted_expand_key(&salt, key);
    let mut burst_started = Instant::now();
    for _ in 0..1u64 << cost {
        state.bc_expand_key(key);
        state.bc_expand_key(&salt);
        if burst_started.elapsed() >= pace.burst {
            thread::sleep(pace.pause);
            burst_started = Instant::now();
        }
    }

    // "OrpheanBeholderScryDoubt"
    let mut text: [u32; 6] = [
        0x4f72_7068,
        0x6561_6e42,
        0x6568_6f6c,
        0x6465_7253,
        0x6372_7944,
        0x6f75_6274,
    ];
    for pair in text.chunks_exact_mut(2) {
        let mut block = [pair[0], pair[1]];
        for _ in 0..64 {
            block = state.bc_encrypt(block);
        }
        pair.copy_from_slice(&block);
    }
    let mut digest = [0u8; 23];
    for (bytes, word) in digest.chunks_mut(4).zip(text) {
        bytes.copy_from_slice(&word.to_be_bytes()[..bytes.len()]);
    }
    digest
}

fn encode(bytes: &[u8], text: &mut [u8]) {
    // Sizes fixed by the format: 16 bytes make 22 characters, 23 make 31.
    let written = bcrypt::BASE_64.encode_slice(bytes, text);
    debug_assert_eq!(written, Ok(text.len()));
}

fn ascii(text: &[u8]) -> &str {
    // bcrypt's base64 alphabet is ASCII.
    std::str::from_utf8(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Pace = Pace {
        burst: Duration::from_micros(200),
        pause: Duration::from_micros(50),
    };

    #[test]
    fn hashes_are_the_bcrypt_crates_for_the_same_salt() {
        for password in [
            "",
            "correct horse",
            "ünïcödé",
            &"p".repeat(71),
            &"p".repeat(72),
        ] {
            let ours = hash(password.as_bytes(), 5, QUICK).unwrap();
            let salt = bcrypt::HashParts::from_str(&ours).unwrap().get_salt_raw();
            let theirs = bcrypt::hash_with_salt(password, 5, salt)
                .unwrap()
                .to_string();
            assert_eq!(ours, theirs, "password {password:?}");
        }
    }

    #[test]
    fn the_bcrypt_crates_hashes_verify_in_every_version() {
        let password = "correct horse";
        let parts = bcrypt::hash_with_result(password, 4).unwrap();
        for version in [
            bcrypt::Version::TwoA,
            bcrypt::Version::TwoB,
            bcrypt::Version::TwoX,
            bcrypt::Version::TwoY,
        ] {
            let stored = parts.format_for_version(version);
            assert!(verify(password.as_bytes(), &stored, QUICK), "{stored}");
            assert!(!verify(b"correct horse!", &stored, QUICK), "{stored}");
        }
    }

    #[test]
    fn a_password_past_72_bytes_counts_its_first_72_as_bcrypt_does() {
        let long = "p".repeat(80);
        let stored = bcrypt::hash(&long, 4).unwrap();
        assert!(verify(&long.as_bytes()[..72], &stored, QUICK));
        assert!(verify(long.as_bytes(), &stored, QUICK));
    }

    #[test]
    fn malformed_hashes_and_impossible_costs_match_nothing() {
        let stored = bcrypt::hash("pw", 4).unwrap();
        for bad in [
            "",
            "not a hash",
            &stored[..59],
            &stored.replacen("$04$", "$03$", 1),
            &stored.replacen("$04$", "$99$", 1),
            &format!("{}é", &stored[..58]),
        ] {
            assert!(!verify(b"pw", bad, QUICK), "{bad:?}");
        }
    }

    #[test]
    fn a_known_vector_of_openbsd_verifies() {
        // From the OpenBSD/jBCrypt test vectors: password "abc", cost 6.
        let stored = "$2a$06$If6bvum7DFjUnE9p2uDeDu0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0i";
        assert!(verify(b"abc", stored, Pace::FLAT_OUT));
        assert!(!verify(b"abd", stored, Pace::FLAT_OUT));
    }

    #[test]
    fn a_paced_hash_sleeps_between_bursts() {
        // A burst of zero pauses after every one of the 2^4 rounds.
        let pace = Pace {
            burst: Duration::ZERO,
            pause: Duration::from_millis(2),
        };
        let started = Instant::now();
        hash(b"pw", 4, pace).unwrap();
        assert!(
            started.elapsed() >= pace.pause * 16,
            "{:?}",
            started.elapsed()
        );
    }
}
