//! Pieces of the OpenAPI document built from the validation's own rules and
//! constants, so that what the document declares cannot drift from what the
//! server accepts: bounded texts, row ids, and the error answers many routes share.

use serde_json::json;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::header::Header;
use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{PartialSchema, ToResponse, ToSchema};

use crate::error::AppError;
use crate::routes::ErrorBody;

/// The characters `str::trim` removes: Unicode's White_Space property, as
/// inclusive ranges. A unit test holds this to `char::is_whitespace`.
const WHITE_SPACE: &[(char, char)] = &[
    ('\u{9}', '\u{d}'),
    ('\u{20}', '\u{20}'),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

/// Every text field refuses NUL (PostgreSQL cannot store it; see `FieldError::nul`).
pub const NO_NUL_PATTERN: &str = r"^[^\x00]*$";

/// A text with no NUL and at least one character `str::trim` keeps.
pub fn not_blank_pattern() -> String {
    let white_space: String = WHITE_SPACE
        .iter()
        .map(|&(first, last)| {
            if first == last {
                format!(r"\u{:04X}", u32::from(first))
            } else {
                format!(r"\u{:04X}-\u{:04X}", u32::from(first), u32::from(last))
            }
        })
        .collect();
    format!(r"^[^\x00]*[^\x00{white_space}][^\x00]*$")
}

/// A string of `min..=max` characters (code points, as JSON Schema and
/// `check_chars` count them) without NUL.
pub fn text(min_chars: usize, max_chars: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length((min_chars > 0).then_some(min_chars))
        .max_length(Some(max_chars))
        .pattern(Some(NO_NUL_PATTERN))
}

/// An integer in `min..=max`, as `check_range` bounds it.
pub fn integer(min: i64, max: i64) -> ObjectBuilder {
    let format = if i32::try_from(min).is_ok() && i32::try_from(max).is_ok() {
        KnownFormat::Int32
    } else {
        KnownFormat::Int64
    };
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(format)))
        .minimum(Some(min))
        .maximum(Some(max))
}

/// The id of a row: the tables' ids are positive 32-bit integers. Other
/// integers name no row (404); anything else is a 422.
pub fn row_id() -> Object {
    integer(1, i32::MAX.into()).examples([1]).build()
}

/// A path's `{id}`, documented as [`row_id`].
pub struct RowId;

impl PartialSchema for RowId {
    fn schema() -> RefOr<Schema> {
        RefOr::T(Schema::Object(row_id()))
    }
}

impl ToSchema for RowId {}

/// Something OpenAPI has and utoipa's `Header` lacks: `required`.
fn required_header(schema: Object, description: &str) -> Header {
    let mut header = Header::new(schema);
    header.description = Some(description.to_owned());
    header.extensions = Some(Extensions::from_iter([("required", true)]));
    header
}

/// An `ErrorBody` answer; `answer`, when given, is the error whose body the
/// example shows (so the example is what the server really says).
fn error_response(description: &str, answer: Option<AppError>) -> ResponseBuilder {
    let content = ContentBuilder::new()
        .schema(Some(RefOr::Ref(Ref::from_schema_name(ErrorBody::name()))))
        .example(answer.map(|error| json!({ "detail": error.to_string() })));
    ResponseBuilder::new()
        .description(description)
        .content("application/json", content.build())
}

fn retry_after() -> Header {
    required_header(
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
            .build(),
        "Seconds to wait before trying again",
    )
}

/// 401 on the protected routes, with the RFC 6750 challenge.
pub struct Unauthorized;

impl<'r> ToResponse<'r> for Unauthorized {
    fn response() -> (&'r str, RefOr<Response>) {
        let challenge = required_header(
            ObjectBuilder::new().schema_type(Type::String).build(),
            "`Bearer`, or `Bearer error=\"invalid_token\"` when a token was given",
        );
        let response = error_response(
            "Missing, invalid or expired token",
            Some(AppError::invalid_token()),
        )
        .header("WWW-Authenticate", challenge)
        .build();
        ("Unauthorized", response.into())
    }
}

/// 413 on every route that reads a body (`extract::MAX_BODY_BYTES`).
pub struct PayloadTooLarge;

impl<'r> ToResponse<'r> for PayloadTooLarge {
    fn response() -> (&'r str, RefOr<Response>) {
        let description = format!("The body is over {} bytes", crate::extract::MAX_BODY_BYTES);
        (
            "PayloadTooLarge",
            error_response(&description, Some(AppError::PayloadTooLarge))
                .build()
                .into(),
        )
    }
}

/// 400 for a body that cannot be read as its content type says.
pub struct MalformedBody;

impl<'r> ToResponse<'r> for MalformedBody {
    fn response() -> (&'r str, RefOr<Response>) {
        let response = error_response(
            "The body cannot be parsed as its content type says",
            Some(AppError::malformed_body()),
        );
        ("MalformedBody", response.build().into())
    }
}

/// 503 on every route that needs the database.
pub struct Unavailable;

impl<'r> ToResponse<'r> for Unavailable {
    fn response() -> (&'r str, RefOr<Response>) {
        let response = error_response("The database cannot be reached", None)
            .header("Retry-After", retry_after())
            .build();
        ("Unavailable", response.into())
    }
}

/// 429 on `/login` once an address or account has failed too often.
pub struct TooManyRequests;

impl<'r> ToResponse<'r> for TooManyRequests {
    fn response() -> (&'r str, RefOr<Response>) {
        let response = error_response("Too many failed logins; try again later", None)
            .header("Retry-After", retry_after())
            .build();
        ("TooManyRequests", response.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_white_space_ranges_are_exactly_what_trim_removes() {
        let listed = |c: char| {
            WHITE_SPACE
                .iter()
                .any(|&(first, last)| (first..=last).contains(&c))
        };
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            assert_eq!(listed(c), c.is_whitespace(), "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn the_not_blank_pattern_lists_the_white_space() {
        assert_eq!(
            not_blank_pattern(),
            r"^[^\x00]*[^\x00\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000][^\x00]*$"
        );
    }
}
