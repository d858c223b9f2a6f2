//! The one error type: every failure a request can meet, and its HTTP answer.
//!
//! Bodies are always `{"detail": ...}`; a 500 or 503 says nothing of its cause,
//! which goes to the log instead.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, OneOfBuilder, Type};

use crate::db::{self, DbError};

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    /// 422 in FastAPI's shape: a list of field errors.
    #[error("validation failed: {0:?}")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    BadRequest(String),
    /// 401; `token_given` picks the RFC 6750 `error=` attribute.
    #[error("Could not validate credentials")]
    Unauthorized { token_given: bool },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("Method Not Allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("Request body too large")]
    PayloadTooLarge,
    /// 408, and the connection is closed: the body did not arrive in time.
    #[error("Request body not received in time")]
    RequestTimeout,
    /// 429 with `Retry-After`: too many failed logins from this client.
    #[error("Too many failed login attempts; try again later")]
    TooManyRequests { retry_after_secs: u64 },
    /// 503 with `Retry-After`: the database cannot be reached or the pool is exhausted.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// 503 with `Retry-After`: too much work of one kind queued (password
    /// hashing); a retry shortly will likely succeed.
    #[error("busy: {cause}")]
    Busy {
        cause: String,
        retry_after_secs: u64,
    },
    /// 500: a bug or an unexpected database answer.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn invalid_token() -> Self {
        Self::Unauthorized { token_given: true }
    }

    /// A body that cannot be read as its content type says (FastAPI's words).
    pub fn malformed_body() -> Self {
        Self::BadRequest("There was an error parsing the body".into())
    }

    pub fn validation(error: FieldError) -> Self {
        Self::Validation(vec![error])
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let detail = match self {
            // Serialised straight from the structs, so keys keep FastAPI's order.
            Self::Validation(errors) => {
                return HttpResponse::build(status).json(ValidationBody { detail: errors });
            }
            // Not one line each: an outage is logged when it starts and ends
            // (see `db::availability`); each 503 is in the access log.
            Self::Unavailable(cause) => {
                log::debug!("503 Service Unavailable: {cause}");
                json!("Service Unavailable: the database cannot be reached")
            }
            Self::Busy { cause, .. } => {
                log::warn!("503 Service Unavailable: {cause}");
                json!("Service Unavailable: the server is busy, retry shortly")
            }
            Self::Internal(cause) => {
                log::error!("500 Internal Server Error: {cause}");
                json!("Internal Server Error")
            }
            other => json!(other.to_string()),
        };
        let mut response = HttpResponse::build(status);
        match self {
            Self::Unauthorized { token_given } => {
                let challenge = if *token_given {
                    r#"Bearer error="invalid_token""#
                } else {
                    "Bearer"
                };
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                ));
            }
            Self::TooManyRequests { retry_after_secs }
            | Self::Busy {
                retry_after_secs, ..
            } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            // The database is probed about once a second.
            Self::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            // What is left of the body is still on its way: reading on would
            // mean waiting for it, so the connection goes.
            Self::RequestTimeout => {
                response.force_close();
            }
            _ => {}
        }
        response.json(json!({ "detail": detail }))
    }
}

#[derive(Serialize)]
struct ValidationBody<'a> {
    detail: &'a [FieldError],
}

impl From<DieselError> for AppError {
    fn from(error: DieselError) -> Self {
        match error {
            DieselError::NotFound => Self::NotFound("Not Found".into()),
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                Self::Conflict("Resource already exists".into())
            }
            DieselError::BrokenTransactionManager => {
                Self::Unavailable("the connection's transaction state is broken".into())
            }
            DieselError::DatabaseError(_, ref info) if db::is_connection_lost(&error) => {
                Self::Unavailable(info.message().to_owned())
            }
            other => Self::Internal(format!("database: {other}")),
        }
    }
}

/// The one place database failures become HTTP answers.
impl From<DbError> for AppError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Query(error) => error.into(),
            DbError::Unavailable(cause) => Self::Unavailable(cause),
        }
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        Self::Internal(format!("blocking pool: {error}"))
    }
}

/// One entry of a 422 `detail` list.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Where the problem is: `["body", "title"]`, `["query", "limit"]`, `["path", "id"]`.
    #[schema(schema_with = field_error_loc)]
    pub loc: Vec<Value>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = field_error_ctx, required = false)]
    pub ctx: Option<Value>,
}

impl FieldError {
    pub fn new(loc: &[&str], msg: impl Into<String>, kind: impl Into<String>) -> Self {
        Self {
            loc: loc.iter().map(|part| json!(part)).collect(),
            msg: msg.into(),
            kind: kind.into(),
            ctx: None,
        }
    }

    fn with_limit(mut self, limit: impl Serialize) -> Self {
        self.ctx = Some(json!({ "limit_value": limit }));
        self
    }

    pub fn not_a_dict(loc: &[&str]) -> Self {
        Self::new(loc, "value is not a valid dict", "type_error.dict")
    }

    pub fn missing(loc: &[&str]) -> Self {
        Self::new(loc, "field required", "value_error.missing")
    }

    /// PostgreSQL cannot store NUL in text, and SQLite would cut at it.
    pub fn nul(loc: &[&str]) -> Self {
        Self::new(
            loc,
            "string must not contain NUL characters",
            "value_error.str.nul",
        )
    }

    pub fn not_an_integer(loc: &[&str]) -> Self {
        Self::new(loc, "value is not a valid integer", "type_error.integer")
    }

    pub fn too_small(loc: &[&str], limit: i64) -> Self {
        Self::new(
            loc,
            format!("ensure this value is greater than or equal to {limit}"),
            "value_error.number.not_ge",
        )
        .with_limit(limit)
    }

    pub fn too_large(loc: &[&str], limit: i64) -> Self {
        Self::new(
            loc,
            format!("ensure this value is less than or equal to {limit}"),
            "value_error.number.not_le",
        )
        .with_limit(limit)
    }

    pub fn too_short(loc: &[&str], limit: usize, unit: &str) -> Self {
        Self::new(
            loc,
            format!("ensure this value has at least {limit} {unit}"),
            "value_error.any_str.min_length",
        )
        .with_limit(limit)
    }

    pub fn too_long(loc: &[&str], limit: usize, unit: &str) -> Self {
        Self::new(
            loc,
            format!("ensure this value has at most {limit} {unit}"),
            "value_error.any_str.max_length",
        )
        .with_limit(limit)
    }
}

/// `FieldError.loc`: where the problem is, as names and list positions
/// (`["body", "title"]`, `["query", "limit"]`).
fn field_error_loc() -> Array {
    let part = OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ObjectBuilder::new().schema_type(Type::Integer));
    ArrayBuilder::new().items(part).min_items(Some(1)).build()
}

/// `FieldError.ctx`: the limit a value broke, when there is one.
fn field_error_ctx() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "limit_value",
            ObjectBuilder::new().schema_type(Type::Integer),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;
    use diesel::result::DatabaseErrorInformation;

    use super::*;

    struct Info(&'static str);

    impl DatabaseErrorInformation for Info {
        fn message(&self) -> &str {
            self.0
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn database_error(kind: DatabaseErrorKind, message: &'static str) -> AppError {
        DieselError::DatabaseError(kind, Box::new(Info(message))).into()
    }

    fn body_of(error: &AppError) -> String {
        let body = error
            .error_response()
            .into_body()
            .try_into_bytes()
            .unwrap_or_default();
        String::from_utf8_lossy(&body).into_owned()
    }

    #[test]
    fn database_errors_map_to_their_statuses() {
        let status = |error: AppError| error.status_code();
        assert_eq!(status(DieselError::NotFound.into()), StatusCode::NOT_FOUND);
        assert_eq!(
            status(database_error(DatabaseErrorKind::UniqueViolation, "dup")),
            StatusCode::CONFLICT
        );
        assert_eq!(
            status(database_error(DatabaseErrorKind::ClosedConnection, "gone")),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(database_error(DatabaseErrorKind::Unknown, "boom")),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn a_500_and_a_503_never_show_their_cause() {
        let internal = database_error(
            DatabaseErrorKind::Unknown,
            "relation secret_table is broken",
        );
        let unavailable =
            AppError::Unavailable("password authentication failed for hunter2".into());

        assert_eq!(body_of(&internal), r#"{"detail":"Internal Server Error"}"#);
        assert!(!body_of(&unavailable).contains("hunter2"));
    }

    #[test]
    fn a_429_and_a_503_say_when_to_retry_and_a_408_closes_the_connection() {
        let throttled = AppError::TooManyRequests {
            retry_after_secs: 42,
        }
        .error_response();
        assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(throttled.headers().get(header::RETRY_AFTER).unwrap(), "42");
        let unavailable = AppError::Unavailable("down".into()).error_response();
        assert_eq!(unavailable.headers().get(header::RETRY_AFTER).unwrap(), "1");
        let timed_out = AppError::RequestTimeout.error_response();
        assert_eq!(timed_out.status(), StatusCode::REQUEST_TIMEOUT);
        assert!(timed_out.head().connection_type() == actix_web::http::ConnectionType::Close);
    }

    #[test]
    fn a_401_carries_a_bearer_challenge() {
        let response = AppError::invalid_token().error_response();
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok());
        assert_eq!(challenge, Some(r#"Bearer error="invalid_token""#));
    }
}
