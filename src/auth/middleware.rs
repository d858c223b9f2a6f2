//! The bearer-token middleware for the protected scopes, and the extractor
//! through which handlers receive the caller. It runs no query: a bad token
//! never reaches the database.

use std::future::{Ready, ready};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{AUTHORIZATION, HeaderMap};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use crate::auth::TokenService;
use crate::db::models::Caller;
use crate::error::AppError;

/// The caller named by a valid token, put in the request extensions by the
/// middleware. Whether the account still exists, and the token's session
/// still stands, is checked on the handler's own connection, in the
/// statements of its own work (see [`crate::store`]), which saves a pool
/// checkout and a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentUser {
    caller: Caller,
}

impl CurrentUser {
    /// The caller's user id.
    pub fn id(self) -> i32 {
        self.caller.user_id
    }

    /// The caller as the database checks them.
    pub fn caller(self) -> Caller {
        self.caller
    }
}

/// Refuses the request with 401 unless it carries a valid bearer token (good
/// signature, not expired); otherwise hands the caller to the handler.
pub async fn require_bearer_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let caller = authenticate(&req)?;
    req.extensions_mut().insert(caller);
    next.call(req).await
}

fn authenticate(req: &ServiceRequest) -> Result<CurrentUser, AppError> {
    let token = bearer_token(req.headers()).ok_or(AppError::Unauthorized { token_given: false })?;
    let tokens = req
        .app_data::<web::Data<TokenService>>()
        .ok_or_else(|| AppError::Internal("TokenService is not registered".into()))?;
    Ok(CurrentUser {
        caller: tokens.verify(token)?,
    })
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Missing only if a route was mounted outside the middleware: refuse.
        ready(
            req.extensions()
                .get::<CurrentUser>()
                .copied()
                .ok_or(AppError::Unauthorized { token_given: false }),
        )
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(authorization).unwrap());
        headers
    }

    #[test]
    fn the_bearer_scheme_is_matched_regardless_of_case() {
        assert_eq!(bearer_token(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("bearer abc")), Some("abc"));
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_not_bearer_tokens() {
        assert_eq!(bearer_token(&headers("Basic abc")), None);
        assert_eq!(bearer_token(&headers("Bearer ")), None);
        assert_eq!(bearer_token(&headers("Bearer")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
