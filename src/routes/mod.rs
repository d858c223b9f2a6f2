//! HTTP handlers, one module per resource, with their request and response
//! shapes.

pub mod docs;
pub mod login;
pub mod post_shape;
pub mod posts;
pub mod root;
pub mod schemas;
pub mod users;
pub mod votes;

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError, web};
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

/// The `Allow` value of one resource: the methods it routes, in routing order.
#[derive(Debug, Clone)]
pub struct AllowedMethods(HeaderValue);

impl AllowedMethods {
    pub fn new(methods: &[Method]) -> Self {
        let list = methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        // Method names are tokens, always valid in a header.
        Self(HeaderValue::from_str(&list).unwrap_or_else(|_| HeaderValue::from_static("")))
    }
}

/// Known routes asked with a method they do not take: a JSON 405 with the
/// `Allow` header RFC 9110 requires.
pub fn method_not_allowed(allowed: &AllowedMethods) -> HttpResponse {
    let mut response = AppError::MethodNotAllowed.error_response();
    response
        .headers_mut()
        .insert(header::ALLOW, allowed.0.clone());
    response
}
