//! postapi: the posts/users/votes API of the FastAPI course, on actix-web and
//! Diesel, serving SQLite or PostgreSQL from one binary.
//!
//! - [`config`]: settings, read once at start-up.
//! - [`startup`]: the app and server, shared by `main` and the tests.
//! - [`db`]: pool, migrations and plain synchronous queries; [`schema`] is
//!   Diesel's table list.
//! - [`store`]: runs the queries for the handlers, off the executor, within
//!   one deadline per request; group commit of new posts.
//! - [`auth`]: passwords, tokens and the bearer-token middleware.
//! - [`routes`]: one module of handlers per resource.
//! - [`error`]: the one error type, with FastAPI's 422 items; [`validation`]:
//!   pydantic-style field checks; [`extract`]: reading bodies, queries, paths.
//! - [`email`]: look-alike addresses (UTS #39): the mixed-script rule and
//!   the key that addresses reading alike share.
//! - [`client_addr`]: the client's address, through trusted proxies.
//! - [`logging`], [`request_id`], [`metrics`]: what operators see: log lines,
//!   `X-Request-ID`, and Prometheus metrics on `METRICS_ADDR`.

pub mod auth;
pub mod client_addr;
pub mod clock;
pub mod config;
pub mod db;
pub mod email;
pub mod error;
pub mod extract;
pub mod logging;
pub mod metrics;
pub mod request_id;
pub mod routes;
pub mod schema;
pub mod startup;
pub mod store;
pub mod validation;
