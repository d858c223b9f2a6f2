//! Settings: read from the environment (and `.env`) once at start-up, checked, and typed.
//!
//! Nothing else in the crate reads the environment; a bad value stops start-up
//! with one line naming the variable.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::TimeDelta;
use jsonwebtoken::Algorithm;

pub use crate::client_addr::TrustedProxies;

/// Which database `DATABASE_URL` selects.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A `postgres://` or `postgresql://` URL, passed to libpq as given.
    Postgres(String),
    /// A SQLite database file (created if missing).
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let raw = raw.trim();
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self::Postgres(raw.to_owned()));
        }
        let path = raw.strip_prefix("sqlite://").unwrap_or(raw);
        if path.is_empty() || path == ":memory:" || path.starts_with("file::memory:") {
            // Every pooled connection would get a database of its own.
            return Err(ConfigError::new(
                "DATABASE_URL",
                "give a SQLite file path or a postgres:// URL (in-memory SQLite cannot be shared by a pool)",
            ));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }
}

/// Prints the target without any password the URL may carry.
impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite {}", path.display()),
            Self::Postgres(url) => {
                let after_scheme = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
                // Credentials may sit before the host or in the query string.
                let without_query = after_scheme.split('?').next().unwrap_or_default();
                let host_part = without_query
                    .rsplit_once('@')
                    .map_or(without_query, |(_, host)| host);
                write!(f, "postgres {host_part}")
            }
        }
    }
}

/// The JWT signing key. Never printed.
#[derive(Clone)]
pub struct SecretKey {
    bytes: Vec<u8>,
    generated: bool,
}

impl SecretKey {
    pub fn new(value: &str) -> Self {
        Self {
            bytes: value.as_bytes().to_vec(),
            generated: false,
        }
    }

    /// A random key for this process only: tokens die with it.
    pub fn random() -> Result<Self, ConfigError> {
        let mut bytes = vec![0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| {
            ConfigError::new(
                "SECRET_KEY",
                format!("unset, and no randomness to make one: {e}"),
            )
        })?;
        Ok(Self {
            bytes,
            generated: true,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn is_generated(&self) -> bool {
        self.generated
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(**redacted**)")
    }
}

/// `CORS_ORIGINS`: `*` or an explicit list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    Any,
    List(Vec<String>),
}

impl CorsOrigins {
    /// A comma-separated list of `scheme://host[:port]` origins, or `*`.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let origins: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .collect();
        if origins.is_empty() || origins.contains(&"*") {
            return Ok(Self::Any);
        }
        for origin in &origins {
            let uri: actix_web::http::Uri = origin.parse().map_err(|_| invalid_origin(origin))?;
            let bare =
                uri.scheme().is_some() && uri.host().is_some() && matches!(uri.path(), "" | "/");
            if !bare || origin.ends_with('/') {
                return Err(invalid_origin(origin));
            }
        }
        Ok(Self::List(origins.into_iter().map(str::to_owned).collect()))
    }
}

fn invalid_origin(origin: &str) -> ConfigError {
    ConfigError::new(
        "CORS_ORIGINS",
        format!("{origin:?} is not an origin like https://app.example.com"),
    )
}

/// How many failed logins are allowed before 429s, counted per instance
/// over a sliding window (see `auth::throttle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures one client address may have on one account
    /// (`LOGIN_MAX_FAILURES_PER_ACCOUNT`).
    pub per_account: u32,
    /// Failures one client address may have across all accounts
    /// (`LOGIN_MAX_FAILURES_PER_ADDRESS`).
    pub per_address: u32,
    /// How long a failure counts (`LOGIN_FAILURE_WINDOW_SECONDS`).
    pub window: Duration,
}

/// How long the server waits on a client, and how many connections it queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// From the connection's first byte to the end of the request head
    /// (`HEADER_READ_TIMEOUT_SECONDS`); then 408 and the connection closed.
    pub header_read_timeout: Duration,
    /// For the whole body, from when the handler starts reading it
    /// (`BODY_READ_TIMEOUT_SECONDS`); then 408 and the connection closed.
    pub body_read_timeout: Duration,
    /// How long an idle keep-alive connection stays open (`KEEP_ALIVE_SECONDS`;
    /// zero closes every connection after its response).
    pub keep_alive: Duration,
    /// Connections the kernel queues before they are accepted (`LISTEN_BACKLOG`).
    pub listen_backlog: u32,
}

/// How the password-hashing pool is sized (`PASSWORD_HASH_*` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashPoolSize {
    /// Hashes computed at once, each on a thread of its own. Zero (only a
    /// test can set it; the environment cannot) refuses every hash with a
    /// 503, and so shows whether a request reached the pool at all.
    pub threads: usize,
    /// Hashes that may wait for a thread; any more are refused at once.
    pub queue: usize,
    /// Longest a hash may wait for a thread before it is refused.
    pub max_wait: Duration,
}

impl HashPoolSize {
    /// One thread per core: the threads run at a low priority, so the
    /// scheduler gives the HTTP workers first call on the cores, and logins
    /// can use all of the machine that nothing else wants.
    pub fn default_threads() -> usize {
        std::thread::available_parallelism().map_or(1, usize::from)
    }
}

/// `POST_SHAPE`: how the post routes answer, and whether a user is shown to
/// others with their email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PostShape {
    /// One flat post, with `owner` and `votes`, from every post route; a
    /// post's owner and `GET /users/{id}` without the email.
    #[default]
    Flat,
    /// The course's response models: `{"Post": {...}, "votes": n}` from list
    /// and get, its `Post` without `votes` from create and update; every user
    /// shown with their email, to anyone, as the course does.
    Course,
}

impl PostShape {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        match raw.trim() {
            "flat" => Ok(Self::Flat),
            "course" => Ok(Self::Course),
            other => Err(ConfigError::new(
                "POST_SHAPE",
                format!("{other:?} is not a post shape; use flat or course"),
            )),
        }
    }
}

/// `SQLITE_SYNCHRONOUS`: when a SQLite commit is acknowledged. Either way
/// the file stays consistent, and a crash of the process loses nothing
/// acknowledged (the write-ahead log is in the OS's hands once written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSynchronous {
    /// After the write reaches the OS; a power loss or OS crash can lose
    /// the last commits.
    #[default]
    Normal,
    /// After the write-ahead log is synced to disk at every commit; survives
    /// power loss, at the cost of an fsync per commit.
    Full,
}

impl SqliteSynchronous {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "normal" => Ok(Self::Normal),
            "full" => Ok(Self::Full),
            other => Err(ConfigError::new(
                "SQLITE_SYNCHRONOUS",
                format!("{other:?} is not a synchronous mode; use normal or full"),
            )),
        }
    }

    /// The value of SQLite's `PRAGMA synchronous`.
    pub fn pragma(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: DatabaseUrl,
    /// SQLite only: when a commit is acknowledged (`SQLITE_SYNCHRONOUS`).
    pub sqlite_synchronous: SqliteSynchronous,
    /// Most connections the pool opens (`DATABASE_POOL_SIZE`).
    pub pool_size: u32,
    /// How long a request waits for a pooled connection before a 503
    /// (`DATABASE_POOL_TIMEOUT_SECONDS`).
    pub pool_timeout: Duration,
    pub secret_key: SecretKey,
    /// Old keys still accepted when verifying tokens, never used to sign
    /// (`SECRET_KEY_PREVIOUS`, comma-separated), so a key can be rotated
    /// without logging everyone out.
    pub previous_secret_keys: Vec<SecretKey>,
    pub algorithm: Algorithm,
    /// Lifetime of an access token (`ACCESS_TOKEN_EXPIRE_MINUTES`). Tests may
    /// set it below a minute; the environment only takes whole minutes.
    pub token_ttl: TimeDelta,
    /// Lifetime of a refresh token, and of an idle session
    /// (`REFRESH_TOKEN_EXPIRE_DAYS`).
    pub refresh_ttl: TimeDelta,
    pub bcrypt_cost: u32,
    /// Threads, queue and wait of the password-hashing pool
    /// (`PASSWORD_HASH_THREADS`, `PASSWORD_HASH_QUEUE`,
    /// `PASSWORD_HASH_WAIT_SECONDS`).
    pub password_hashing: HashPoolSize,
    pub host: String,
    pub port: u16,
    pub cors_origins: CorsOrigins,
    pub post_shape: PostShape,
    /// HTTP worker threads; `None` lets actix pick one per core.
    pub workers: Option<usize>,
    pub login_limits: LoginLimits,
    /// Proxies whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
    pub client_limits: ClientLimits,
    /// How long a stopping server lets in-flight requests finish
    /// (`SHUTDOWN_TIMEOUT_SECONDS`).
    pub shutdown_timeout: Duration,
    /// Where `/metrics` is served (`METRICS_ADDR`); `None`: nowhere.
    pub metrics_addr: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub fn new(name: &'static str, reason: impl Into<String>) -> Self {
        Self {
            name,
            reason: reason.into(),
        }
    }
}

impl Settings {
    /// Reads `.env` (the environment wins over it), then the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(ConfigError::new(".env", e.to_string())),
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds settings from any variable lookup, so tests need not touch the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());

        let database_url =
            DatabaseUrl::parse(&var("DATABASE_URL").unwrap_or_else(|| "postapi.db".into()))?;
        let secret_key = match lookup("SECRET_KEY").filter(|value| !value.is_empty()) {
            Some(value) => SecretKey::new(&value),
            None => SecretKey::random()?,
        };
        let previous_secret_keys = lookup("SECRET_KEY_PREVIOUS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .map(SecretKey::new)
            .collect();
        let algorithm = match var("ALGORITHM").as_deref().map(str::trim) {
            None | Some("HS256") => Algorithm::HS256,
            Some("HS384") => Algorithm::HS384,
            Some("HS512") => Algorithm::HS512,
            Some(other) => {
                return Err(ConfigError::new(
                    "ALGORITHM",
                    format!("{other:?} is not supported; use HS256, HS384 or HS512"),
                ));
            }
        };
        let minutes: i64 = parse_number(
            &var,
            "ACCESS_TOKEN_EXPIRE_MINUTES",
            30,
            1..=i64::from(u32::MAX),
        )?;
        let token_ttl = TimeDelta::try_minutes(minutes)
            .ok_or_else(|| ConfigError::new("ACCESS_TOKEN_EXPIRE_MINUTES", "too large"))?;
        let days: i64 = parse_number(&var, "REFRESH_TOKEN_EXPIRE_DAYS", 14, 1..=36_500)?;
        let refresh_ttl = TimeDelta::try_days(days)
            .ok_or_else(|| ConfigError::new("REFRESH_TOKEN_EXPIRE_DAYS", "too large"))?;
        let cors_origins = match var("CORS_ORIGINS") {
            None => CorsOrigins::Any,
            Some(raw) => CorsOrigins::parse(&raw)?,
        };
        let seconds = |name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| {
            parse_number(&var, name, default, range).map(Duration::from_secs)
        };
        let login_limits = LoginLimits {
            per_account: parse_number(&var, "LOGIN_MAX_FAILURES_PER_ACCOUNT", 5, 1..=1_000)?,
            per_address: parse_number(&var, "LOGIN_MAX_FAILURES_PER_ADDRESS", 50, 1..=10_000)?,
            window: seconds("LOGIN_FAILURE_WINDOW_SECONDS", 900, 1..=86_400)?,
        };
        let trusted_proxies = match var("TRUSTED_PROXIES") {
            None => TrustedProxies::default(),
            Some(raw) => TrustedProxies::parse(&raw)
                .map_err(|message| ConfigError::new("TRUSTED_PROXIES", message))?,
        };
        let client_limits = ClientLimits {
            header_read_timeout: seconds("HEADER_READ_TIMEOUT_SECONDS", 5, 1..=3_600)?,
            body_read_timeout: seconds("BODY_READ_TIMEOUT_SECONDS", 10, 1..=3_600)?,
            keep_alive: seconds("KEEP_ALIVE_SECONDS", 5, 0..=3_600)?,
            listen_backlog: parse_number(&var, "LISTEN_BACKLOG", 1024, 1..=65_535)?,
        };
        let metrics_addr = var("METRICS_ADDR")
            .map(|raw| {
                raw.trim().parse::<SocketAddr>().map_err(|_| {
                    ConfigError::new(
                        "METRICS_ADDR",
                        format!("{raw:?} is not an address like 127.0.0.1:9100"),
                    )
                })
            })
            .transpose()?;

        Ok(Self {
            database_url,
            sqlite_synchronous: var("SQLITE_SYNCHRONOUS")
                .as_deref()
                .map(SqliteSynchronous::parse)
                .transpose()?
                .unwrap_or_default(),
            pool_size: parse_number(&var, "DATABASE_POOL_SIZE", 10, 1..=1000)?,
            pool_timeout: Duration::from_secs(parse_number(
                &var,
                "DATABASE_POOL_TIMEOUT_SECONDS",
                5,
                1..=600,
            )?),
            secret_key,
            previous_secret_keys,
            algorithm,
            token_ttl,
            refresh_ttl,
            bcrypt_cost: parse_number(&var, "BCRYPT_COST", bcrypt::DEFAULT_COST, 4..=31)?,
            password_hashing: HashPoolSize {
                threads: parse_number(
                    &var,
                    "PASSWORD_HASH_THREADS",
                    HashPoolSize::default_threads(),
                    1..=256,
                )?,
                queue: parse_number(&var, "PASSWORD_HASH_QUEUE", 64, 0..=100_000)?,
                max_wait: Duration::from_secs(parse_number(
                    &var,
                    "PASSWORD_HASH_WAIT_SECONDS",
                    5,
                    1..=600,
                )?),
            },
            host: var("HOST").map_or_else(|| "127.0.0.1".to_owned(), |h| h.trim().to_owned()),
            port: parse_number(&var, "PORT", 8000, 0..=u16::MAX)?,
            cors_origins,
            post_shape: var("POST_SHAPE")
                .as_deref()
                .map(PostShape::parse)
                .transpose()?
                .unwrap_or_default(),
            workers: None,
            login_limits,
            trusted_proxies,
            client_limits,
            shutdown_timeout: Duration::from_secs(parse_number(
                &var,
                "SHUTDOWN_TIMEOUT_SECONDS",
                10,
                0..=3600,
            )?),
            metrics_addr,
        })
    }

    /// Lines worth a warning at start-up (never the key itself).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.secret_key.is_generated() {
            warnings.push(
                "SECRET_KEY is not set: using a random key for this process; tokens will not survive a restart"
                    .to_owned(),
            );
        } else if self.secret_key.as_bytes().len() < 32 {
            warnings
                .push("SECRET_KEY is shorter than 32 bytes: use a longer random key".to_owned());
        }
        warnings
    }
}

fn parse_number<T>(
    var: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let Some(raw) = var(name) else {
        return Ok(default);
    };
    let value: T = raw
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(name, format!("{raw:?} is not a whole number")))?;
    if !range.contains(&value) {
        return Err(ConfigError::new(
            name,
            format!(
                "{value} is out of range ({}..={})",
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_match_the_contract() {
        let settings = settings(&[]).unwrap();
        assert_eq!(
            settings.database_url,
            DatabaseUrl::Sqlite("postapi.db".into())
        );
        assert_eq!(settings.algorithm, Algorithm::HS256);
        assert_eq!(settings.token_ttl, TimeDelta::minutes(30));
        assert_eq!(settings.refresh_ttl, TimeDelta::days(14));
        assert_eq!(settings.bcrypt_cost, 12);
        assert_eq!(
            settings.password_hashing.threads,
            std::thread::available_parallelism().map_or(1, usize::from)
        );
        assert_eq!((settings.host.as_str(), settings.port), ("127.0.0.1", 8000));
        assert_eq!(settings.cors_origins, CorsOrigins::Any);
        assert_eq!(
            settings.login_limits,
            LoginLimits {
                per_account: 5,
                per_address: 50,
                window: Duration::from_secs(900)
            }
        );
        assert!(settings.trusted_proxies.is_empty());
        assert_eq!(
            settings.client_limits,
            ClientLimits {
                header_read_timeout: Duration::from_secs(5),
                body_read_timeout: Duration::from_secs(10),
                keep_alive: Duration::from_secs(5),
                listen_backlog: 1024,
            }
        );
        assert_eq!(settings.post_shape, PostShape::Flat);
        assert!(settings.secret_key.is_generated());
        assert_eq!(settings.warnings().len(), 1);
    }

    #[test]
    fn postgres_urls_select_postgres_and_anything_else_is_a_sqlite_path() {
        let pg = |url| DatabaseUrl::parse(url).unwrap();
        assert_eq!(
            pg("postgres://u@h/db"),
            DatabaseUrl::Postgres("postgres://u@h/db".into())
        );
        assert_eq!(
            pg("postgresql://u@h/db"),
            DatabaseUrl::Postgres("postgresql://u@h/db".into())
        );
        assert_eq!(
            pg("sqlite://data/app.db"),
            DatabaseUrl::Sqlite("data/app.db".into())
        );
        assert_eq!(pg("app.db"), DatabaseUrl::Sqlite("app.db".into()));
        assert!(DatabaseUrl::parse(":memory:").is_err());
    }

    #[test]
    fn the_database_url_prints_without_its_password() {
        let url = DatabaseUrl::parse("postgres://user:hunter2@db.example.com:5432/app").unwrap();
        assert_eq!(url.to_string(), "postgres db.example.com:5432/app");
        assert!(!format!("{url:?}").contains("hunter2"));
        let url =
            DatabaseUrl::parse("postgres://db.example.com/app?user=u&password=hunter2").unwrap();
        assert_eq!(url.to_string(), "postgres db.example.com/app");
    }

    #[test]
    fn the_secret_key_never_prints() {
        let settings =
            settings(&[("SECRET_KEY", "super-secret-value-that-is-long-enough")]).unwrap();
        assert!(!format!("{settings:?}").contains("super-secret"));
        assert_eq!(
            settings.secret_key.as_bytes(),
            b"super-secret-value-that-is-long-enough"
        );
        assert!(settings.warnings().is_empty());
    }

    #[test]
    fn previous_secret_keys_are_a_comma_separated_list_that_never_prints() {
        let rotating = settings(&[(
            "SECRET_KEY_PREVIOUS",
            " old-key-one-that-is-long-enough , ,old-key-two",
        )])
        .unwrap();
        let keys: Vec<&[u8]> = rotating
            .previous_secret_keys
            .iter()
            .map(SecretKey::as_bytes)
            .collect();
        assert_eq!(
            keys,
            [&b"old-key-one-that-is-long-enough"[..], &b"old-key-two"[..]]
        );
        assert!(!format!("{rotating:?}").contains("old-key"));
        assert!(settings(&[]).unwrap().previous_secret_keys.is_empty());
    }

    #[test]
    fn the_drain_time_and_the_metrics_address_are_checked() {
        let defaults = settings(&[]).unwrap();
        assert_eq!(defaults.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(defaults.metrics_addr, None);
        let set = settings(&[
            ("SHUTDOWN_TIMEOUT_SECONDS", "25"),
            ("METRICS_ADDR", "127.0.0.1:9100"),
        ])
        .unwrap();
        assert_eq!(set.shutdown_timeout, Duration::from_secs(25));
        assert_eq!(set.metrics_addr, Some("127.0.0.1:9100".parse().unwrap()));
        for (name, bad) in [
            ("SHUTDOWN_TIMEOUT_SECONDS", "-1"),
            ("SHUTDOWN_TIMEOUT_SECONDS", "soon"),
            ("METRICS_ADDR", "9100"),
            ("METRICS_ADDR", "localhost:9100"),
        ] {
            assert_eq!(
                settings(&[(name, bad)]).unwrap_err().name,
                name,
                "{name}={bad}"
            );
        }
    }

    #[test]
    fn a_short_secret_key_is_accepted_with_a_warning() {
        let settings = settings(&[("SECRET_KEY", "short")]).unwrap();
        assert_eq!(settings.warnings().len(), 1);
        assert!(settings.warnings()[0].contains("32 bytes"));
    }

    #[test]
    fn only_hmac_algorithms_are_accepted() {
        assert_eq!(
            settings(&[("ALGORITHM", "HS384")]).unwrap().algorithm,
            Algorithm::HS384
        );
        assert_eq!(
            settings(&[("ALGORITHM", "HS512")]).unwrap().algorithm,
            Algorithm::HS512
        );
        for bad in ["RS256", "none", "hs256"] {
            assert_eq!(
                settings(&[("ALGORITHM", bad)]).unwrap_err().name,
                "ALGORITHM",
                "{bad}"
            );
        }
    }

    #[test]
    fn sqlite_synchronous_is_normal_unless_set_to_full() {
        assert_eq!(
            settings(&[]).unwrap().sqlite_synchronous,
            SqliteSynchronous::Normal
        );
        assert_eq!(
            settings(&[("SQLITE_SYNCHRONOUS", " FULL ")])
                .unwrap()
                .sqlite_synchronous,
            SqliteSynchronous::Full
        );
        for bad in ["off", "extra", "2"] {
            assert_eq!(
                settings(&[("SQLITE_SYNCHRONOUS", bad)]).unwrap_err().name,
                "SQLITE_SYNCHRONOUS",
                "{bad}"
            );
        }
    }

    #[test]
    fn the_post_shape_is_flat_or_course() {
        assert_eq!(
            settings(&[("POST_SHAPE", "flat")]).unwrap().post_shape,
            PostShape::Flat
        );
        assert_eq!(
            settings(&[("POST_SHAPE", " course ")]).unwrap().post_shape,
            PostShape::Course
        );
        for bad in ["Course", "nested", "1"] {
            assert_eq!(
                settings(&[("POST_SHAPE", bad)]).unwrap_err().name,
                "POST_SHAPE",
                "{bad}"
            );
        }
    }

    #[test]
    fn the_token_lifetime_must_be_a_positive_whole_number_of_minutes() {
        assert_eq!(
            settings(&[("ACCESS_TOKEN_EXPIRE_MINUTES", "1")])
                .unwrap()
                .token_ttl,
            TimeDelta::minutes(1)
        );
        for bad in ["0", "-5", "1.5", "thirty"] {
            let error = settings(&[("ACCESS_TOKEN_EXPIRE_MINUTES", bad)]).unwrap_err();
            assert_eq!(error.name, "ACCESS_TOKEN_EXPIRE_MINUTES", "{bad}");
            let error = settings(&[("REFRESH_TOKEN_EXPIRE_DAYS", bad)]).unwrap_err();
            assert_eq!(error.name, "REFRESH_TOKEN_EXPIRE_DAYS", "{bad}");
        }
    }

    #[test]
    fn bad_numbers_name_their_setting() {
        for (name, bad) in [
            ("PORT", "http"),
            ("PORT", "70000"),
            ("BCRYPT_COST", "3"),
            ("DATABASE_POOL_SIZE", "0"),
            ("LOGIN_MAX_FAILURES_PER_ACCOUNT", "0"),
            ("LOGIN_MAX_FAILURES_PER_ADDRESS", "many"),
            ("LOGIN_FAILURE_WINDOW_SECONDS", "0"),
            ("BODY_READ_TIMEOUT_SECONDS", "0"),
            ("HEADER_READ_TIMEOUT_SECONDS", "-1"),
            ("KEEP_ALIVE_SECONDS", "1.5"),
            ("LISTEN_BACKLOG", "0"),
            ("TRUSTED_PROXIES", "proxy.internal"),
            ("PASSWORD_HASH_THREADS", "0"),
            ("PASSWORD_HASH_QUEUE", "-1"),
            ("PASSWORD_HASH_WAIT_SECONDS", "0"),
        ] {
            assert_eq!(
                settings(&[(name, bad)]).unwrap_err().name,
                name,
                "{name}={bad}"
            );
        }
    }

    #[test]
    fn cors_origins_are_a_comma_separated_list_or_a_star() {
        let list = settings(&[("CORS_ORIGINS", "https://a.example, https://b.example")])
            .unwrap()
            .cors_origins;
        assert_eq!(
            list,
            CorsOrigins::List(vec!["https://a.example".into(), "https://b.example".into()])
        );
        assert_eq!(
            settings(&[("CORS_ORIGINS", "*")]).unwrap().cors_origins,
            CorsOrigins::Any
        );
        for bad in [
            "app.example.com",
            "https://app.example.com/path",
            "https://app.example.com/",
            "not a url",
        ] {
            assert_eq!(
                settings(&[("CORS_ORIGINS", bad)]).unwrap_err().name,
                "CORS_ORIGINS",
                "{bad}"
            );
        }
    }
}
