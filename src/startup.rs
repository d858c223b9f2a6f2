//! Building the application: state from settings, the routes, and the HTTP
//! server. The server and the tests build the app with the same function.

use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{NormalizePath, TrailingSlash, from_fn};
use actix_web::web::{self, PayloadConfig};
use actix_web::{App, HttpServer, Resource, Route, guard};

use crate::auth::{PasswordHasher, TokenService, require_bearer_token};
use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, CorsOrigins, Settings};
use crate::db::DbPool;
use crate::db::pool::{DatabaseSetupError, connect_and_migrate};
use crate::extract::{MAX_BODY_BYTES, path_config};
use crate::logging::access_log;
use crate::routes::{self, docs, login, posts, root, users, votes};

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
    pub tokens: web::Data<TokenService>,
    pub hasher: web::Data<PasswordHasher>,
    pub openapi: web::Data<docs::OpenApiJson>,
    pub swagger: web::Data<Arc<utoipa_swagger_ui::Config<'static>>>,
    pub cors_origins: CorsOrigins,
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
        let tokens = TokenService::new(
            &settings.secret_key,
            settings.algorithm,
            settings.token_ttl,
            clock,
        )
        .map_err(setup("JWT keys"))?;
        let openapi = docs::OpenApiJson::render().map_err(setup("the OpenAPI document"))?;
        Ok(Self {
            pool: web::Data::new(pool),
            tokens: web::Data::new(tokens),
            hasher: web::Data::new(hasher),
            openapi: web::Data::new(openapi),
            swagger: web::Data::new(docs::swagger_config()),
            cors_origins: settings.cors_origins.clone(),
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
        .app_data(state.tokens)
        .app_data(state.hasher)
        .app_data(state.openapi)
        .app_data(state.swagger)
        .service(resource("/").route(get().to(root::root)))
        .service(resource("/health").route(get().to(root::health)))
        .service(resource("/openapi.json").route(get().to(docs::openapi_json)))
        .service(resource("/docs").route(get().to(docs::swagger_index)))
        .service(resource("/docs/{file:.+}").route(get().to(docs::swagger_asset)))
        .service(resource("/users").route(web::post().to(users::create_user)))
        .service(resource("/users/{id}").route(get().to(users::get_user)))
        .service(resource("/login").route(web::post().to(login::login)))
        .service(
            web::scope("/posts")
                .wrap(from_fn(require_bearer_token))
                .service(
                    resource("")
                        .route(get().to(posts::list_posts))
                        .route(web::post().to(posts::create_post)),
                )
                .service(
                    resource("/{id}")
                        .route(get().to(posts::get_post))
                        .route(web::put().to(posts::update_post))
                        .route(web::delete().to(posts::delete_post)),
                ),
        )
        .service(
            web::scope("/vote")
                .wrap(from_fn(require_bearer_token))
                .service(resource("").route(web::post().to(votes::vote))),
        )
        .default_service(web::to(routes::not_found))
        // Collection routes answer with and without the trailing slash,
        // without a redirect.
        .wrap(NormalizePath::new(TrailingSlash::Trim))
        .wrap(cors(&state.cors_origins))
        .wrap(from_fn(access_log))
}

/// GET, and HEAD as Starlette adds it to every GET route (load balancers'
/// health checks use it); actix sends no body for HEAD.
fn get() -> Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// A resource whose unsupported methods get a JSON 405.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(routes::method_not_allowed))
}

fn cors(origins: &CorsOrigins) -> Cors {
    let cors = Cors::default()
        .allow_any_method()
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .max_age(600);
    match origins {
        CorsOrigins::Any => cors.allow_any_origin().send_wildcard(),
        CorsOrigins::List(origins) => origins
            .iter()
            .fold(cors, |cors, origin| cors.allowed_origin(origin)),
    }
}

/// Each worker's blocking pool: the database pool's connections, and a few
/// for start-up work and requests that fail before they need one.
fn blocking_threads_for(pool_size: u32) -> usize {
    usize::try_from(pool_size)
        .unwrap_or(usize::MAX)
        .saturating_add(4)
}

/// A running server bound to its port.
pub struct Application {
    port: u16,
    server: Server,
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
        let address = format!("{}:{}", settings.host, settings.port);
        let listener = TcpListener::bind(&address).map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { address, source })?
            .port();
        let state = AppState::build(&settings, clock).await?;

        let mut server = HttpServer::new(move || build_app(state.clone()));
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        // Blocking threads only ever wait for or use a pooled connection
        // (hashing has threads of its own): more than the pool can serve
        // would only queue at the pool, each holding a stack.
        server = server.worker_max_blocking_threads(blocking_threads_for(settings.pool_size));
        let server = server
            .listen(listener)
            .map_err(|source| StartupError::Bind {
                address: format!("{}:{port}", settings.host),
                source,
            })?
            .run();
        Ok(Self { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server from elsewhere.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT or SIGTERM (graceful) or a stop through the handle.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
