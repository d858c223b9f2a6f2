//! bcrypt computed in short bursts with a sleep between them, so that a
//! hash never holds a core for long: the same hashes as the `bcrypt` crate
//! (which still parses stored hashes), from blowfish's bcrypt primitives.
//!
//! Why: on Linux with autogroups (or a cgroup per service), the kernel first
//! shares a core between sessions (or cgroups), and only then between the
//! threads of one by their nice values. PostgreSQL runs in a session of its
//! own: against its backends, our session as a whole holds its share of a
//! core while a low-priority hashing thread runs a 250 ms hash on it, and a
//! backend woken there waited up to a second (`perf sched`, 32 logins at
//! once). A hashing thread that sleeps after every millisecond of work hands
//! its core back at each pause.

use std::str::FromStr;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use blowfish::Blowfish;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

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
    Ok(format!(
        "$2b${cost:02}${}{}",
        bcrypt::BASE_64.encode(salt),
        bcrypt::BASE_64.encode(digest)
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("bcrypt cost {0} is outside 4..=31")]
    Cost(u32),
    #[error("no random salt: {0}")]
    Random(#[from] getrandom::Error),
}

/// Whether `password` matches `stored`, read as the `bcrypt` crate reads it:
/// the `$2a$`, `$2b$`, `$2x$` and `$2y$` forms alike (no special case for
/// the `$2x$` hashes of PHP's old crypt_blowfish bug); a malformed hash
/// matches nothing.
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
/// the password and a NUL, cut at 72 bytes. `cost` is already checked to be
/// within 4..=31.
fn raw(cost: u32, salt: [u8; 16], password: &[u8], pace: Pace) -> [u8; 23] {
    debug_assert!((MIN_COST..=MAX_COST).contains(&cost));
    let mut key_bytes = [0u8; KEY_BYTES];
    let length = password.len().min(KEY_BYTES);
    key_bytes[..length].copy_from_slice(&password[..length]);
    let key = &key_bytes[..(length + 1).min(KEY_BYTES)];

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
    // As the crate does: no copy of the password outlives the hash.
    key_bytes.zeroize();
    let mut digest = [0u8; 23];
    for (bytes, word) in digest.chunks_mut(4).zip(text) {
        bytes.copy_from_slice(&word.to_be_bytes()[..bytes.len()]);
    }
    digest
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
        let passwords: [&[u8]; 9] = [
            b"",
            b"correct horse",
            "ünïcödé".as_bytes(),
            b"\0",
            b"nul\0inside",
            &[b'p'; 71],
            &[b'p'; 72],
            &[b'p'; 73],
            &[0xff; 100],
        ];
        for cost in [4, 6] {
            for password in passwords {
                let ours = hash(password, cost, QUICK).unwrap();
                let salt = bcrypt::HashParts::from_str(&ours).unwrap().get_salt_raw();
                let theirs = bcrypt::hash_with_salt(password, cost, salt)
                    .unwrap()
                    .to_string();
                assert_eq!(ours, theirs, "password {password:?}, cost {cost}");
            }
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
            &stored.replacen("$04$", "$32$", 1),
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
