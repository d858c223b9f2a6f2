//! HTTP handlers, one module per resource, with their request and response
//! shapes.

pub mod docs;
pub mod login;
pub mod post_shape;
pub mod posts;
pub mod root;
pub mod users;
pub mod votes;

use actix_web::{HttpResponse, web};
use chrono::NaiveDateTime;
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

use crate::error::{AppError, FieldError};

/// Every error body but a 422.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(example = "post with id: 7 was not found")]
    pub detail: String,
}

/// A 422 body, as FastAPI writes it.
#[derive(Serialize, ToSchema)]
pub struct ValidationErrorBody {
    pub detail: Vec<FieldError>,
}

/// Writes a stored UTC timestamp the way FastAPI does: RFC 3339 with `+00:00`.
pub fn utc_timestamp<S: Serializer>(at: &NaiveDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&at.format("%Y-%m-%dT%H:%M:%S%.6f+00:00"))
}

/// A path id as a row id. FastAPI takes integers of any size; the tables'
/// ids are 32-bit, so a larger one names no row and gets `missing`'s 404.
pub fn row_id(id: web::Path<i64>, missing: fn(i64) -> AppError) -> Result<i32, AppError> {
    let id = id.into_inner();
    i32::try_from(id).map_err(|_| missing(id))
}

/// Unknown routes.
pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound("Not Found".into()))
}

/// Known routes asked with a method they do not take.
pub async fn method_not_allowed() -> Result<HttpResponse, AppError> {
    Err(AppError::MethodNotAllowed)
}
