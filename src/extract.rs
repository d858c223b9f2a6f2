//! Reading requests: bodies under the size cap (413 beyond it), JSON and query
//! strings parsed the way FastAPI answers their faults, and path parameters.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::web::{Bytes, PathConfig};
use actix_web::{FromRequest, HttpRequest};
use serde_json::Value;

use crate::error::{AppError, FieldError};
use crate::validation::FromJsonBody;

/// Largest request body accepted; more is a 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The value of `name` in form or query pairs; of repeated names the last
/// wins, as in Starlette.
pub fn last_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Parses JSON bytes, answering malformed JSON the way FastAPI does.
pub fn parse_json(bytes: &[u8]) -> Result<Value, AppError> {
    serde_json::from_slice(bytes).map_err(|e| {
        AppError::validation(FieldError::new(
            &["body"],
            format!("Invalid JSON: {e}"),
            "value_error.jsondecode",
        ))
    })
}

/// How long a body may take to arrive once a handler starts reading it;
/// registered as app data (`BODY_READ_TIMEOUT_SECONDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyReadTimeout(pub Duration);

impl Default for BodyReadTimeout {
    fn default() -> Self {
        Self(Duration::from_secs(10))
    }
}

/// Reads the whole body, turning an oversized one into a 413 and one that
/// does not arrive within the [`BodyReadTimeout`] into a 408, so a client
/// trickling bytes cannot hold a connection (and its memory) for ever.
pub async fn read_body(req: &HttpRequest, payload: &mut Payload) -> Result<Bytes, AppError> {
    let BodyReadTimeout(limit) = req.app_data().copied().unwrap_or_default();
    let read = actix_web::rt::time::timeout(limit, Bytes::from_request(req, payload)).await;
    read.map_err(|_| AppError::RequestTimeout)?.map_err(|e| {
        if e.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge
        } else {
            AppError::malformed_body()
        }
    })
}

/// The future of an extractor that reads the body.
pub type BodyFuture<T> = Pin<Box<dyn Future<Output = Result<T, AppError>>>>;

/// Runs `read` with the request and the payload to itself, as a body
/// extractor's future must.
pub fn read_request<T, Fut>(
    req: &HttpRequest,
    payload: &mut Payload,
    read: impl FnOnce(HttpRequest, Payload) -> Fut,
) -> BodyFuture<T>
where
    Fut: Future<Output = Result<T, AppError>> + 'static,
{
    Box::pin(read(req.clone(), payload.take()))
}

/// A JSON body validated into `T`.
pub struct ValidJson<T>(pub T);

impl<T: FromJsonBody + 'static> FromRequest for ValidJson<T> {
    type Error = AppError;
    type Future = BodyFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        read_request(req, payload, |req, mut payload| async move {
            let bytes = read_body(&req, &mut payload).await?;
            if bytes.is_empty() {
                return Err(AppError::validation(FieldError::missing(&["body"])));
            }
            match body_kind(&req) {
                BodyKind::Json => T::from_json(parse_json(&bytes)?).map(ValidJson),
                // FastAPI leaves such a body as bytes, which no model accepts.
                BodyKind::Other => Err(AppError::validation(FieldError::not_a_dict(&["body"]))),
            }
        })
    }
}

/// How FastAPI reads a body by its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No content type, `application/json` or `application/*+json`.
    Json,
    Other,
}

pub fn body_kind(req: &HttpRequest) -> BodyKind {
    let Some(value) = req.headers().get(actix_web::http::header::CONTENT_TYPE) else {
        return BodyKind::Json;
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", subtype)) if subtype == "json" || subtype.ends_with("+json") => {
            BodyKind::Json
        }
        _ => BodyKind::Other,
    }
}

/// The query string as name/value pairs (see [`last_value`]).
pub fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, AppError> {
    serde_urlencoded::from_str(req.query_string()).map_err(|_| {
        AppError::validation(FieldError::new(
            &["query"],
            "invalid query string",
            "value_error.query",
        ))
    })
}

/// Path parameters that fail to parse are 422 `["path", name]`, not 404.
pub fn path_config() -> PathConfig {
    PathConfig::default().error_handler(|_, req| {
        let name = req
            .match_info()
            .iter()
            .next()
            .map_or("id", |(name, _)| name)
            .to_owned();
        AppError::validation(FieldError::not_an_integer(&["path", &name])).into()
    })
}
