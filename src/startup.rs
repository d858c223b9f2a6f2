//! Building the application: state from settings, the routes, and the HTTP
//! server. The server and the tests build the app with the same function.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{
    AppService, HttpServiceFactory, Server, ServerHandle, ServiceFactory, ServiceRequest,
    ServiceResponse,
};
use actix_web::http::{Method, header};
use actix_web::middleware::{Next, NormalizePath, TrailingSlash, from_fn};
use actix_web::web::{self, PayloadConfig};
use actix_web::{
    App, FromRequest, Handler, HttpServer, Resource, Responder, ResponseError, Route, guard,
};

use crate::auth::{
    LoginThrottle, PasswordHasher, SessionService, TokenService, require_bearer_token,
};
use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, CorsOrigins, DatabaseUrl, PostShape, Settings, TrustedProxies};
use crate::db::DbPool;
use crate::db::pool::{DatabaseSetupError, connect_and_migrate};
use crate::error::AppError;
use crate::extract::{BodyReadTimeout, MAX_BODY_BYTES, path_config};
use crate::logging::access_log;
use crate::metrics::record_request;
use crate::request_id::assign_request_id;
use crate::routes::{self, account, docs, login, posts, root, sessions, users, votes};
use crate::store::PostWriter;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Database(#[from] DatabaseSetupError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("cannot set up {what}: {cause}")]
    Setup { what: &'static str, cause: String },
}

/// Everything the handlers share, built once from the settings.
#[derive(Clone)]
pub struct AppState {
    pub pool: web::Data<DbPool>,
    pub post_writer: web::Data<PostWriter>,
    pub tokens: web::Data<TokenService>,
    pub sessions: web::Data<SessionService>,
    pub hasher: web::Data<PasswordHasher>,
    pub openapi: web::Data<docs::OpenApiJson>,
    pub swagger: web::Data<Arc<utoipa_swagger_ui::Config<'static>>>,
    pub post_shape: web::Data<PostShape>,
    pub cors_origins: CorsOrigins,
    pub throttle: web::Data<LoginThrottle>,
    pub trusted_proxies: web::Data<TrustedProxies>,
    pub body_read_timeout: BodyReadTimeout,
}

impl AppState {
    /// Connects and migrates the database and prepares the keys. The blocking
    /// parts (connecting, migrating, the dummy bcrypt hash) run off the executor.
    pub async fn build(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Self, StartupError> {
        let db_settings = settings.clone();
        let pool = web::block(move || connect_and_migrate(&db_settings))
            .await
            .map_err(setup("the database"))??;
        let (cost, hashing) = (settings.bcrypt_cost, settings.password_hashing);
        let hasher = web::block(move || PasswordHasher::new(cost, hashing))
            .await
            .map_err(setup("bcrypt"))?
            .map_err(setup("bcrypt"))?;
        let throttle = LoginThrottle::for_database(settings, &pool, clock.clone());
        let tokens = TokenService::new(
            &settings.secret_key,
            settings.algorithm,
            settings.token_ttl,
            clock.clone(),
        )
        .and_then(|tokens| tokens.with_previous_keys(&settings.previous_secret_keys))
        .map_err(setup("JWT keys"))?;
        let tokens = Arc::new(tokens);
        let sessions = SessionService::new(tokens.clone(), clock, settings.refresh_ttl);
        let openapi = docs::OpenApiJson::render(&settings.post_shape)
            .map_err(setup("the OpenAPI document"))?;
        // Batches of new posts on PostgreSQL, as many at once as there are
        // cores for the database to write them with.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let post_writer = PostWriter::new(
            matches!(settings.database_url, DatabaseUrl::Postgres(_)),
            cores.min(settings.pool_size as usize),
        );
        Ok(Self {
            pool: web::Data::new(pool),
            post_writer: web::Data::new(post_writer),
            tokens: web::Data::from(tokens),
            sessions: web::Data::new(sessions),
            hasher: web::Data::new(hasher),
            openapi: web::Data::new(openapi),
            swagger: web::Data::new(docs::swagger_config()),
            post_shape: web::Data::new(settings.post_shape),
            cors_origins: settings.cors_origins.clone(),
            throttle: web::Data::new(throttle),
            trusted_proxies: web::Data::new(settings.trusted_proxies.clone()),
            body_read_timeout: BodyReadTimeout(settings.client_limits.body_read_timeout),
        })
    }
}

fn setup<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> StartupError {
    move |e| StartupError::Setup {
        what,
        cause: e.to_string(),
    }
}

/// The whole application: routes, extractor settings and middleware.
pub fn build_app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(PayloadConfig::new(MAX_BODY_BYTES))
        .app_data(path_config())
        .app_data(state.pool)
        .app_data(state.post_writer)
        .app_data(state.tokens)
        .app_data(state.sessions)
        .app_data(state.hasher)
        .app_data(state.openapi)
        .app_data(state.swagger)
        .app_data(state.post_shape)
        .app_data(state.throttle)
        .app_data(state.trusted_proxies)
        .app_data(state.body_read_timeout)
        .service(endpoint("/").get(root::root))
        .service(endpoint("/health").get(root::health))
        .service(endpoint("/health/live").get(root::live))
        .service(endpoint("/openapi.json").get(docs::openapi_json))
        .service(endpoint("/docs").get(docs::swagger_index))
        .service(endpoint("/docs/{file:.+}").get(docs::swagger_asset))
        .service(endpoint("/users").post(users::create_user))
        // Before `/users/{id}`, which would take `me` for an id.
        .service(
            web::scope("/users/me")
                .wrap(from_fn(require_bearer_token))
                .service(endpoint("").get(account::get_me).delete(account::delete_me))
                .service(endpoint("/password").put(account::change_password)),
        )
        .service(endpoint("/users/{id}").get(users::get_user))
        .service(endpoint("/login").post(login::login))
        .service(endpoint("/login/refresh").post(login::refresh))
        .service(
            web::scope("/sessions")
                .wrap(from_fn(require_bearer_token))
                .service(endpoint("").get(sessions::list_sessions))
                .service(endpoint("/{id}").delete(sessions::revoke_session)),
        )
        .service(
            web::scope("/logout")
                .wrap(from_fn(require_bearer_token))
                .service(endpoint("").post(sessions::log_out))
                .service(endpoint("/all").post(sessions::log_out_everywhere)),
        )
        .service(
            web::scope("/posts")
                .wrap(from_fn(require_bearer_token))
                .service(endpoint("").get(posts::list_posts).post(posts::create_post))
                .service(
                    endpoint("/{id}")
                        .get(posts::get_post)
                        .put(posts::update_post)
                        .delete(posts::delete_post),
                ),
        )
        .service(
            web::scope("/vote")
                .wrap(from_fn(require_bearer_token))
                .service(endpoint("").post(votes::vote)),
        )
        .default_service(web::to(routes::not_found))
        // Inside the path normalisation, so `/posts/` counts as `/posts`.
        .wrap(from_fn(record_request))
        // Collection routes answer with and without the trailing slash,
        // without a redirect.
        .wrap(NormalizePath::new(TrailingSlash::Trim))
        .wrap(cors(&state.cors_origins))
        .wrap(from_fn(cors_refusals_as_json))
        .wrap(from_fn(access_log))
        // Outermost, so every answer (CORS's too) carries the id and every
        // log line written for the request can name it.
        .wrap(from_fn(assign_request_id))
}

/// A resource that records the methods it routes, so that every other method
/// gets a JSON 405 whose `Allow` lists exactly those (RFC 9110 requires it).
/// The routes and the header come from the same calls, so they cannot differ.
pub struct Endpoint {
    resource: Resource,
    allowed: Vec<Method>,
}

pub fn endpoint(path: &str) -> Endpoint {
    Endpoint {
        resource: web::resource(path),
        allowed: Vec::new(),
    }
}

impl Endpoint {
    /// GET, and HEAD as Starlette adds it to every GET route (load balancers'
    /// health checks use it); actix sends no body for HEAD.
    pub fn get<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let route = web::route().guard(guard::Any(guard::Get()).or(guard::Head()));
        self.route([Method::GET, Method::HEAD], route.to(handler))
    }

    pub fn post<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route([Method::POST], web::post().to(handler))
    }

    pub fn put<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route([Method::PUT], web::put().to(handler))
    }

    pub fn delete<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route([Method::DELETE], web::delete().to(handler))
    }

    fn route<const N: usize>(mut self, methods: [Method; N], route: Route) -> Self {
        self.resource = self.resource.route(route);
        self.allowed.extend(methods);
        self
    }
}

impl HttpServiceFactory for Endpoint {
    fn register(self, config: &mut AppService) {
        let allow = routes::AllowedMethods::new(&self.allowed);
        self.resource
            .default_service(web::to(move || {
                let allow = allow.clone();
                async move { routes::method_not_allowed(&allow) }
            }))
            .register(config)
    }
}

fn cors(origins: &CorsOrigins) -> Cors {
    let cors = Cors::default()
        // What the routes take, and no more (never TRACE or CONNECT).
        .allowed_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::DELETE,
        ])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .max_age(600);
    match origins {
        CorsOrigins::Any => cors.allow_any_origin().send_wildcard(),
        CorsOrigins::List(origins) => origins
            .iter()
            .fold(cors, |cors, origin| cors.allowed_origin(origin)),
    }
}

/// actix-cors refuses a request (a preflight from an origin or for a method
/// it does not allow) with a plain-text 400; every error body here is
/// `{"detail": ...}`.
async fn cors_refusals_as_json(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let response = next.call(req).await?.map_into_boxed_body();
    let refusal = response
        .response()
        .error()
        .and_then(|error| error.as_error::<actix_cors::CorsError>())
        .map(ToString::to_string);
    Ok(match refusal {
        Some(reason) => {
            let (req, _) = response.into_parts();
            ServiceResponse::new(req, AppError::BadRequest(reason).error_response())
        }
        None => response,
    })
}

/// How often what can no longer matter is deleted (finished sessions,
/// expired refresh tokens, expired failed-login counts), and how many rows
/// of each kind a statement deletes at most.
const CLEANUP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
const CLEANUP_BATCH: u32 = 500;

/// Deletes, in the background and in small batches so that no statement
/// holds locks for long, the rows of sessions and of the shared login
/// throttle that can no longer matter. Between rounds it holds the pool only
/// weakly, so that it ends once the server has stopped and dropped its state
/// (a pool kept alive would keep its connections open).
fn spawn_cleanup(
    pool: &web::Data<DbPool>,
    sessions: &web::Data<SessionService>,
    throttle: &web::Data<LoginThrottle>,
) {
    let pool = Arc::downgrade(&pool.clone().into_inner());
    let sessions = Arc::downgrade(&sessions.clone().into_inner());
    let throttle = Arc::downgrade(&throttle.clone().into_inner());
    actix_web::rt::spawn(async move {
        // The first round a period after start-up, not at once.
        let first = actix_web::rt::time::Instant::now() + CLEANUP_EVERY;
        let mut every = actix_web::rt::time::interval_at(first, CLEANUP_EVERY);
        loop {
            every.tick().await;
            let (Some(pool), Some(sessions), Some(throttle)) =
                (pool.upgrade(), sessions.upgrade(), throttle.upgrade())
            else {
                return;
            };
            // An outage is logged by the pool; the next round retries.
            match sessions.delete_finished(&pool, CLEANUP_BATCH.into()).await {
                Ok(0) => {}
                Ok(deleted) => {
                    log::debug!("deleted {deleted} finished sessions and refresh tokens")
                }
                Err(error) => log::debug!("session cleanup skipped: {error}"),
            }
            match throttle.delete_expired(CLEANUP_BATCH).await {
                Ok(0) => {}
                Ok(deleted) => log::debug!("deleted {deleted} expired failed-login rows"),
                Err(error) => log::debug!("failed-login cleanup skipped: {error}"),
            }
        }
    });
}

/// Each worker's blocking pool: the database pool's connections, and a few
/// for start-up work and requests that fail before they need one.
fn blocking_threads_for(pool_size: u32) -> usize {
    usize::try_from(pool_size)
        .unwrap_or(usize::MAX)
        .saturating_add(4)
}

/// A running server bound to its port, and its `/metrics` server if
/// `METRICS_ADDR` is set.
pub struct Application {
    port: u16,
    server: Server,
    metrics: Option<(Server, u16)>,
}

impl Application {
    /// Builds the state and binds `HOST:PORT` (port 0 picks a free one).
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// As [`Application::build`], with the clock tokens are issued and checked by.
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        let state = AppState::build(&settings, clock).await?;
        spawn_cleanup(&state.pool, &state.sessions, &state.throttle);
        let metrics = match settings.metrics_addr {
            None => None,
            Some(address) => {
                let handle = crate::metrics::install().map_err(|cause| StartupError::Setup {
                    what: "metrics",
                    cause,
                })?;
                let pool = state.pool.clone();
                let sample = Arc::new(move || {
                    let state = pool.state();
                    crate::metrics::PoolGauges {
                        connections: state.connections,
                        idle: state.idle_connections,
                        max: pool.max_size(),
                    }
                });
                let served = crate::metrics::serve(address, handle, sample).map_err(|source| {
                    StartupError::Bind {
                        address: format!("{address} (METRICS_ADDR)"),
                        source,
                    }
                })?;
                Some(served)
            }
        };

        let limits = settings.client_limits;
        // On SIGTERM actix stops accepting at once and gives in-flight
        // requests the drain time before it closes what is left.
        let mut server = HttpServer::new(move || build_app(state.clone()))
            .client_request_timeout(limits.header_read_timeout)
            .keep_alive(Some(limits.keep_alive).filter(|ka| !ka.is_zero()))
            .shutdown_timeout(settings.shutdown_timeout.as_secs());
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        // Blocking threads only ever wait for or use a pooled connection
        // (hashing has threads of its own): more than the pool can serve
        // would only queue at the pool, each holding a stack.
        server = server.worker_max_blocking_threads(blocking_threads_for(settings.pool_size));
        // actix binds every address the host resolves to, with SO_REUSEADDR
        // on Unix (a restart rebinds at once) and the backlog asked for.
        let address = format!("{}:{}", settings.host, settings.port);
        let server = server
            .backlog(limits.listen_backlog)
            .bind((settings.host.as_str(), settings.port))
            .map_err(|source| StartupError::Bind {
                address: address.clone(),
                source,
            })?;
        let port = server
            .addrs()
            .first()
            .map(SocketAddr::port)
            .ok_or_else(|| StartupError::Bind {
                address,
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "no address to listen on",
                ),
            })?;
        let server = server.run();
        Ok(Self {
            port,
            server,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` is served on, if `METRICS_ADDR` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(_, port)| *port)
    }

    /// A handle to stop the server from elsewhere.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT or SIGTERM (graceful) or a stop through the handle.
    /// The metrics server, if any, runs alongside and stops after it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Some((metrics_server, _)) = self.metrics else {
            return self.server.await;
        };
        let metrics_handle = metrics_server.handle();
        let metrics_task = actix_web::rt::spawn(metrics_server);
        let served = self.server.await;
        metrics_handle.stop(false).await;
        let _ = metrics_task.await;
        served
    }
}
