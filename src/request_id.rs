//! `X-Request-ID`: every response carries one, and every warning or error
//! logged while a request is handled names it, so an operator can find the
//! log lines behind a user's failed request.
//!
//! The incoming id is kept when it is sane (see [`RequestId::parse`]): a
//! proxy in front (nginx's `$request_id`) or the client can then follow one
//! id end to end. Anything else is replaced by a new random one.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest incoming id kept.
pub const MAX_LENGTH: usize = 64;

tokio::task_local! {
    static CURRENT: RequestId;
}

/// A request's id: 1 to 64 characters of `A-Z a-z 0-9 - . _ ~ : + / =`
/// (UUIDs, hex, base64 and nginx's `$request_id` all fit; no spaces, quotes
/// or control characters that could forge or break a log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The id if `raw` is a sane one.
    pub fn parse(raw: &str) -> Option<Self> {
        let sane = (1..=MAX_LENGTH).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~:+/=".contains(&b));
        sane.then(|| Self(raw.to_owned()))
    }

    /// The incoming `X-Request-ID` when there is exactly one and it is sane.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let mut values = headers.get_all(X_REQUEST_ID);
        let first = values.next()?;
        if values.next().is_some() {
            return None;
        }
        Self::parse(first.to_str().ok()?)
    }

    /// 32 random hex digits, the shape of nginx's `$request_id`.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        if getrandom::fill(&mut bytes).is_err() {
            // No entropy: unique within the process is still enough to find
            // a log line.
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            bytes[..8].copy_from_slice(&nanos.to_be_bytes());
            bytes[8..].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        }
        Self(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the request being handled on this task, if any.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The outermost middleware: picks the id, puts it in the request's
/// extensions and in a task-local for the log lines written while the request
/// is handled, and sets it on the response.
///
/// Errors returned by inner middleware (the bearer-token check's 401, say)
/// become their response here, inside the task-local scope, so their log
/// lines carry the id and their response carries the header too.
pub async fn assign_request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = RequestId::from_headers(req.headers()).unwrap_or_else(RequestId::generate);
    req.extensions_mut().insert(id.clone());
    let header =
        HeaderValue::from_str(id.as_str()).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    CURRENT
        .scope(id, async move {
            match next.call(req).await {
                Ok(mut response) => {
                    response.headers_mut().insert(X_REQUEST_ID, header);
                    Ok(response)
                }
                Err(error) => {
                    let mut response = error.error_response();
                    response.headers_mut().insert(X_REQUEST_ID, header);
                    Err(InternalError::from_response(error, response).into())
                }
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept() {
        for id in [
            "a",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "abc.DEF_123~:+/=",
            &"x".repeat(64),
        ] {
            assert_eq!(RequestId::parse(id).map(|i| i.0), Some(id.to_owned()));
        }
    }

    #[test]
    fn empty_long_spaced_or_control_character_ids_are_refused() {
        for id in [
            "",
            &"x".repeat(65),
            "has space",
            "tab\there",
            "line\nbreak",
            "quote\"",
            "é",
        ] {
            assert_eq!(RequestId::parse(id), None, "{id:?}");
        }
    }

    #[test]
    fn generated_ids_are_32_hex_digits_and_differ() {
        let (a, b) = (RequestId::generate(), RequestId::generate());
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(RequestId::parse(a.as_str()).is_some());
    }
}
