//! `GET /`, and the probes: `GET /health` (ready: the database answers) and
//! `GET /health/live` (alive: the process answers).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::db::DbPool;
use crate::error::AppError;
use crate::routes::schemas::Unavailable;
use crate::store;

#[derive(Serialize, ToSchema)]
pub struct Message {
    #[schema(example = "Hello World")]
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
    #[schema(example = "ok")]
    pub database: String,
}

/// Say hello.
#[utoipa::path(get, path = "/", tag = "root", responses((status = 200, description = "Successful Response", body = Message)))]
pub async fn root() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "message": "Hello World" }))
}

/// Load balancers probe with timeouts of a second or two: `/health` answers
/// within this whatever the database does.
pub const HEALTH_DEADLINE: Duration = Duration::from_millis(900);

#[derive(Serialize, ToSchema)]
pub struct Liveness {
    #[schema(example = "ok")]
    pub status: String,
}

/// Readiness: whether the service and its database answer (within a second).
#[utoipa::path(
    get,
    path = "/health",
    tag = "root",
    responses(
        (status = 200, description = "Successful Response", body = Health),
        (status = 503, response = Unavailable),
    )
)]
pub async fn health(pool: web::Data<DbPool>) -> Result<HttpResponse, AppError> {
    let check = store::run(&pool, |conn| {
        use diesel::connection::SimpleConnection;
        conn.batch_execute("SELECT 1")
            .map_err(|e| AppError::Unavailable(format!("health check: {e}")))
    });
    actix_web::rt::time::timeout(HEALTH_DEADLINE, check)
        .await
        .map_err(|_| AppError::Unavailable("health check: no answer in time".into()))?
        .map_err(|e| match e {
            AppError::Unavailable(cause) | AppError::Internal(cause) => {
                AppError::Unavailable(cause)
            }
            other => other,
        })?;
    Ok(HttpResponse::Ok().json(Health {
        status: "ok".into(),
        database: "ok".into(),
    }))
}

/// Liveness: the process answers. Touches no database, so an outage there
/// does not get a healthy process restarted.
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "root",
    responses((status = 200, description = "Successful Response", body = Liveness))
)]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Liveness {
        status: "ok".into(),
    })
}
