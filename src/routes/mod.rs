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
use chrono::{Datelike, NaiveDateTime, Timelike};
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

/// chrono's spelling of [`utc_timestamp`]'s text, for the years it does not
/// write itself.
const UTC_TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6f+00:00";

/// Writes a stored UTC timestamp the way FastAPI does: RFC 3339 with
/// microseconds and `+00:00`, as `2026-11-29T19:54:42.950631+00:00`.
pub fn utc_timestamp<S: Serializer>(at: &NaiveDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    // chrono's format() parses its pattern again for every value: that was
    // 4% of the server's CPU on `GET /posts`, so the usual years are written
    // here, the same as chrono writes them.
    let mut text = [0u8; 32];
    match write_utc_timestamp(at, &mut text) {
        Some(text) => serializer.serialize_str(text),
        None => serializer.collect_str(&at.format(UTC_TIMESTAMP_FORMAT)),
    }
}

/// `at` as `YYYY-MM-DDTHH:MM:SS.ffffff+00:00` in `buffer`, for years 0 to
/// 9999 (chrono signs and widens the others).
fn write_utc_timestamp<'a>(at: &NaiveDateTime, buffer: &'a mut [u8; 32]) -> Option<&'a str> {
    let year = u32::try_from(at.year()).ok().filter(|year| *year <= 9999)?;
    // A leap second is stored as nanoseconds past 999,999,999; chrono writes
    // it as second 60.
    let nanos = at.nanosecond();
    let second = at.second() + nanos / 1_000_000_000;
    let micros = nanos % 1_000_000_000 / 1_000;
    let mut at_byte = 0;
    let mut put = |value: u32, digits: u32, after: &[u8]| {
        for place in (0..digits).rev() {
            buffer[at_byte] = b'0' + (value / 10u32.pow(place) % 10) as u8;
            at_byte += 1;
        }
        buffer[at_byte..at_byte + after.len()].copy_from_slice(after);
        at_byte += after.len();
    };
    put(year, 4, b"-");
    put(at.month(), 2, b"-");
    put(at.day(), 2, b"T");
    put(at.hour(), 2, b":");
    put(at.minute(), 2, b":");
    put(second, 2, b".");
    put(micros, 6, b"+00:00");
    std::str::from_utf8(&buffer[..at_byte]).ok()
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

    use super::{UTC_TIMESTAMP_FORMAT, write_utc_timestamp};

    fn at(year: i32, month: u32, day: u32, hms: (u32, u32, u32), nanos: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(year, month, day)
            .and_then(|date| date.and_hms_nano_opt(hms.0, hms.1, hms.2, nanos))
            .expect("a valid test time")
    }

    #[test]
    fn timestamps_are_written_as_chrono_writes_them() {
        let times = [
            at(2026, 11, 29, (19, 54, 42), 950_631_000),
            at(2026, 1, 2, (3, 4, 5), 6_789),
            at(1, 1, 1, (0, 0, 0), 0),
            at(9999, 12, 31, (23, 59, 59), 999_999_999),
            // A leap second.
            at(2016, 12, 31, (23, 59, 59), 1_500_000_000),
        ];
        for time in times {
            let mut buffer = [0u8; 32];
            assert_eq!(
                write_utc_timestamp(&time, &mut buffer),
                Some(time.format(UTC_TIMESTAMP_FORMAT).to_string().as_str()),
            );
        }
    }

    #[test]
    fn years_past_four_digits_are_left_to_chrono() {
        let mut buffer = [0u8; 32];
        assert_eq!(
            write_utc_timestamp(&at(10_000, 1, 1, (0, 0, 0), 0), &mut buffer),
            None
        );
        assert_eq!(
            write_utc_timestamp(&at(-1, 1, 1, (0, 0, 0), 0), &mut buffer),
            None
        );
    }
}
