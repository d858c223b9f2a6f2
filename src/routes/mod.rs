//! HTTP handlers, one module per resource, with their request and response
//! shapes.

pub mod account;
pub mod docs;
pub mod login;
pub mod post_shape;
pub mod posts;
pub mod root;
pub mod schemas;
pub mod sessions;
pub mod users;
pub mod votes;

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError, web};
use chrono::{NaiveDateTime, SecondsFormat};
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

/// Writes a stored UTC timestamp the way FastAPI does: RFC 3339 with
/// microseconds and `+00:00`, as `2026-11-29T19:54:42.950631+00:00`.
pub fn utc_timestamp<S: Serializer>(at: &NaiveDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    // chrono's RFC 3339 writer, not format(): it parses no pattern per value.
    serializer.serialize_str(&at.and_utc().to_rfc3339_opts(SecondsFormat::Micros, false))
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

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, NaiveDateTime};
    use serde::Serialize;

    use super::utc_timestamp;

    #[derive(Serialize)]
    struct At(#[serde(serialize_with = "utc_timestamp")] NaiveDateTime);

    fn written(year: i32, month: u32, day: u32, hms: (u32, u32, u32), nanos: u32) -> String {
        let at = NaiveDate::from_ymd_opt(year, month, day)
            .and_then(|date| date.and_hms_nano_opt(hms.0, hms.1, hms.2, nanos))
            .expect("a valid test time");
        serde_json::to_string(&At(at)).expect("serialises")
    }

    #[test]
    fn timestamps_are_written_as_fastapi_writes_them() {
        for (at, expected) in [
            (
                written(2026, 11, 29, (19, 54, 42), 950_631_000),
                "2026-11-29T19:54:42.950631+00:00",
            ),
            // Always six digits, cut (not rounded) past the microsecond.
            (
                written(2026, 1, 2, (3, 4, 5), 6_789),
                "2026-01-02T03:04:05.000006+00:00",
            ),
            (
                written(1, 1, 1, (0, 0, 0), 0),
                "0001-01-01T00:00:00.000000+00:00",
            ),
            // A leap second, as PostgreSQL never stores but chrono can hold.
            (
                written(2016, 12, 31, (23, 59, 59), 1_500_000_000),
                "2016-12-31T23:59:60.500000+00:00",
            ),
        ] {
            assert_eq!(at, format!("\"{expected}\""));
        }
    }
}
