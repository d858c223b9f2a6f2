//! Prometheus metrics: the process-wide recorder, the middleware that counts
//! and times requests by route pattern, and the `/metrics` server on its own
//! address (`METRICS_ADDR`), never on the public port.
//!
//! The recorder is global to the process and can be installed once, so every
//! application in a process (the tests start many) shares one: its counters
//! are process-wide.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{App, HttpResponse, HttpServer, web};
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "postapi_http_requests_total";
pub const HTTP_DURATION: &str = "postapi_http_request_duration_seconds";
pub const POOL_CONNECTIONS: &str = "postapi_db_pool_connections";
pub const POOL_IDLE: &str = "postapi_db_pool_idle_connections";
pub const POOL_IN_USE: &str = "postapi_db_pool_in_use_connections";
pub const POOL_MAX: &str = "postapi_db_pool_max_connections";
pub const POOL_WAITING: &str = "postapi_db_pool_waiting_requests";
// Emitted by the password hasher and the login throttle; described here so
// every name shows with its help text from the first scrape.
pub const HASH_IN_FLIGHT: &str = "postapi_password_hash_in_flight";
pub const HASH_QUEUE_DEPTH: &str = "postapi_password_hash_queue_depth";
pub const HASH_REJECTED: &str = "postapi_password_hash_rejected_total";
pub const LOGINS_FAILED: &str = "postapi_logins_failed_total";
pub const LOGINS_THROTTLED: &str = "postapi_logins_throttled_total";
pub const POST_BATCHES: &str = "postapi_post_batches_total";
pub const POSTS_BATCHED: &str = "postapi_posts_batched_total";
pub const WAL_CHECKPOINTS: &str = "postapi_sqlite_wal_checkpoints_total";

/// Label for requests no route matched (404s), so raw paths never become
/// labels.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// From a cached `GET /` (well under a millisecond) to a bcrypt login under
/// load (around a second), and the pool timeout's 5 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static RECORDER: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Installs the process's recorder the first time; later calls get the same
/// handle.
pub fn install() -> Result<PrometheusHandle, String> {
    RECORDER
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), LATENCY_BUCKETS)
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|e| e.to_string())?;
            describe();
            Ok(handle)
        })
        .clone()
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route pattern, method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to the response head, by route pattern and method."
    );
    describe_gauge!(POOL_CONNECTIONS, "Database connections open in the pool.");
    describe_gauge!(POOL_IDLE, "Pooled database connections idle.");
    describe_gauge!(POOL_IN_USE, "Pooled database connections in use.");
    describe_gauge!(
        POOL_MAX,
        "Most connections the pool opens (DATABASE_POOL_SIZE)."
    );
    describe_gauge!(
        POOL_WAITING,
        "Requests waiting for a database connection from the pool."
    );
    describe_gauge!(HASH_IN_FLIGHT, "bcrypt operations running.");
    describe_gauge!(HASH_QUEUE_DEPTH, "bcrypt operations waiting to run.");
    describe_counter!(
        HASH_REJECTED,
        "bcrypt operations refused with 503 because the queue was full."
    );
    describe_counter!(LOGINS_FAILED, "Logins refused for bad credentials.");
    describe_counter!(
        LOGINS_THROTTLED,
        "Logins refused with 429 for too many failed attempts."
    );
    describe_counter!(
        POST_BATCHES,
        "Statements that wrote new posts on PostgreSQL (group commit)."
    );
    describe_counter!(
        POSTS_BATCHED,
        "New posts those statements carried; over postapi_post_batches_total, the mean batch."
    );
    describe_counter!(
        WAL_CHECKPOINTS,
        "Checkpoints that emptied SQLite's write-ahead log after it passed 16 MiB."
    );
    // Touch every series without a label so it is in the first scrape,
    // without changing a value anyone else may have set.
    for name in [POOL_WAITING, HASH_IN_FLIGHT, HASH_QUEUE_DEPTH] {
        gauge!(name).increment(0.0);
    }
    for name in [
        HASH_REJECTED,
        LOGINS_FAILED,
        LOGINS_THROTTLED,
        POST_BATCHES,
        POSTS_BATCHED,
    ] {
        metrics::counter!(name).increment(0);
    }
}

/// Counts one statement that wrote `posts` new posts.
pub fn post_batch_written(posts: usize) {
    metrics::counter!(POST_BATCHES).increment(1);
    metrics::counter!(POSTS_BATCHED).increment(posts as u64);
}

/// Counts and times every request by its route pattern (`/posts/{id}`, never
/// the raw path), method and status.
pub async fn record_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let pattern_before = req.match_pattern();
    let response = next.call(req).await;
    let (status, pattern) = match &response {
        Ok(response) => (
            response.status(),
            response.request().match_pattern().or(pattern_before),
        ),
        Err(error) => (error.as_response_error().status_code(), pattern_before),
    };
    let route = pattern.unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
    metrics::histogram!(HTTP_DURATION, "route" => route.clone(), "method" => method)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        HTTP_REQUESTS,
        "route" => route,
        "method" => method,
        "status" => status.as_str().to_owned()
    )
    .increment(1);
    response
}

/// The methods the API knows; anything else is one label, so a client cannot
/// make up series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts a request as waiting for a connection for as long as it lives.
pub struct WaitingForConnection(());

impl WaitingForConnection {
    pub fn start() -> Self {
        gauge!(POOL_WAITING).increment(1.0);
        Self(())
    }
}

impl Drop for WaitingForConnection {
    fn drop(&mut self) {
        gauge!(POOL_WAITING).decrement(1.0);
    }
}

/// The pool's state, read when `/metrics` is scraped.
#[derive(Debug, Clone, Copy)]
pub struct PoolGauges {
    pub connections: u32,
    pub idle: u32,
    pub max: u32,
}

/// Reads the pool's state for a scrape.
pub type PoolSampler = Arc<dyn Fn() -> PoolGauges + Send + Sync>;

fn record_pool(pool: PoolGauges) {
    gauge!(POOL_CONNECTIONS).set(f64::from(pool.connections));
    gauge!(POOL_IDLE).set(f64::from(pool.idle));
    gauge!(POOL_IN_USE).set(f64::from(pool.connections.saturating_sub(pool.idle)));
    gauge!(POOL_MAX).set(f64::from(pool.max));
}

async fn scrape(handle: web::Data<PrometheusHandle>, pool: web::Data<PoolSampler>) -> HttpResponse {
    // The gauges are process-wide: one scrape at a time, so a scrape shows
    // the pool of the server it was asked of (tests run several at once).
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let text = {
        let _guard = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        record_pool(pool());
        // Also drains histogram samples into their buckets, which keeps
        // memory bounded as long as someone scrapes.
        handle.run_upkeep();
        handle.render()
    };
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text)
}

/// The `/metrics` server: one worker, no signal handling of its own (it stops
/// when the API server does), and a bound listener, so a taken address fails
/// start-up.
pub fn serve(
    address: SocketAddr,
    handle: PrometheusHandle,
    pool: PoolSampler,
) -> std::io::Result<(Server, u16)> {
    let listener = TcpListener::bind(address)?;
    let port = listener.local_addr()?.port();
    let handle = web::Data::new(handle);
    let pool = web::Data::new(pool);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(handle.clone())
            .app_data(pool.clone())
            .route("/metrics", web::get().to(scrape))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    Ok((server, port))
}
