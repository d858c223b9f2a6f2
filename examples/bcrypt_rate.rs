//! How many `bcrypt::hash` calls this machine does per second: the ceiling
//! for logins per second, which cost one bcrypt verification each.
//!
//!     cargo run --release --example bcrypt_rate [COST] [HASHES PER THREAD] [THREADS]
//!
//! COST defaults to 12 (the server's default `BCRYPT_COST`), HASHES PER THREAD
//! to 8, THREADS to one per core. Prints one line; the last field is the rate.

use std::process::ExitCode;
use std::thread;
use std::time::Instant;

fn argument(position: usize, name: &str, default: u64) -> Result<u64, String> {
    match std::env::args().nth(position) {
        None => Ok(default),
        Some(raw) => raw
            .parse()
            .map_err(|_| format!("{name} must be a whole number, not {raw:?}")),
    }
}

fn main() -> ExitCode {
    let cores = thread::available_parallelism().map_or(1, usize::from) as u64;
    let parsed = (|| {
        Ok::<_, String>((
            argument(1, "COST", u64::from(bcrypt::DEFAULT_COST))?,
            argument(2, "HASHES PER THREAD", 8)?,
            argument(3, "THREADS", cores)?,
        ))
    })();
    let (cost, per_thread, threads) = match parsed {
        Ok(values) => values,
        Err(message) => {
            eprintln!("bcrypt_rate: {message}");
            return ExitCode::from(2);
        }
    };
    let Ok(cost) = u32::try_from(cost) else {
        eprintln!("bcrypt_rate: COST {cost} is out of range");
        return ExitCode::from(2);
    };
    // One hash first, so a bad cost fails before the clock starts.
    if let Err(error) = bcrypt::hash("warm-up password", cost) {
        eprintln!("bcrypt_rate: {error}");
        return ExitCode::FAILURE;
    }

    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            thread::spawn(move || {
                for _ in 0..per_thread {
                    bcrypt::hash("correct horse battery", cost).expect("a hash");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a hashing thread");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let hashes = per_thread * threads;
    println!(
        "bcrypt::hash at cost {cost}: {hashes} hashes on {threads} threads in {elapsed:.2} s: {:.2} hashes/s",
        hashes as f64 / elapsed
    );
    ExitCode::SUCCESS
}
