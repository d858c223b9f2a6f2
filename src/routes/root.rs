//! `GET /` and `GET /health`.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::db::{self, DbPool};
use crate::error::AppError;
use crate::routes::schemas::Unavailable;

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

/// Whether the service and its database answer.
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
    db::run(&pool, |conn| {
        use diesel::connection::SimpleConnection;
        conn.batch_execute("SELECT 1")
            .map_err(|e| AppError::Unavailable(format!("health check: {e}")))
    })
    .await
    .map_err(|e| match e {
        AppError::Unavailable(cause) | AppError::Internal(cause) => AppError::Unavailable(cause),
        other => other,
    })?;
    Ok(HttpResponse::Ok().json(Health {
        status: "ok".into(),
        database: "ok".into(),
    }))
}
