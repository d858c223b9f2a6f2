//! The bearer-token middleware for the protected scopes, and the extractor
//! through which handlers receive the caller.

use std::future::{Ready, ready};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{AUTHORIZATION, HeaderMap};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use diesel::QueryResult;

use crate::auth::TokenService;
use crate::db::models::{PostWithVotes, User};
use crate::db::post_writer::{PostToWrite, PostWriter};
use crate::db::{self, DbConnection, DbPool};
use crate::error::AppError;

/// The caller named by a valid token, put in the request extensions by the
/// middleware. Whether the account still exists is checked on the handler's
/// own connection, which saves a pool checkout and a round trip: reads and
/// inserts carry the check in their own statement ([`CurrentUser::read`],
/// [`CurrentUser::write_post`]); other work runs it first ([`CurrentUser::run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentUser {
    id: i32,
}

impl CurrentUser {
    /// Runs `work` with a pooled connection on the blocking pool, once the
    /// caller's account is found on that connection: a deleted user's token
    /// gets 401 before anything else runs.
    pub async fn run<T, F>(self, pool: &DbPool, work: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut DbConnection, User) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        db::run(pool, move |conn| {
            let caller = self.account(conn)?;
            work(conn, caller)
        })
        .await
    }

    /// Runs `query`, a read that finds nothing unless the caller's account
    /// exists (it filters on [`db::users::exists_filter`] of the id it
    /// is given), so a read costs one statement. Only an empty answer costs a
    /// second, to tell a deleted caller (401) from an empty page or a missing
    /// post. Retried on another connection when the first proves dead.
    pub async fn read<T, F>(self, pool: &DbPool, query: F) -> Result<T, AppError>
    where
        F: Fn(&mut DbConnection, i32) -> QueryResult<T> + Send + 'static,
        T: Rows + Send + 'static,
    {
        db::run_retrying(pool, move |conn| {
            let rows = query(conn, self.id)?;
            if rows.is_empty() {
                self.account(conn)?;
            }
            Ok(rows)
        })
        .await
    }

    /// Writes a new post of the caller's, made by `post` from the caller's
    /// id, through `writer`. Its foreign key names the caller, so a deleted
    /// account shows as a post not written: then the request gets 401, and
    /// the check cost no statement of its own.
    pub async fn write_post(
        self,
        pool: &DbPool,
        writer: &PostWriter,
        post: impl FnOnce(i32) -> PostToWrite,
    ) -> Result<PostWithVotes, AppError> {
        writer
            .write(pool, post(self.id))
            .await?
            .ok_or_else(|| self.gone())
    }

    fn account(self, conn: &mut DbConnection) -> Result<User, AppError> {
        db::users::find(conn, self.id)?.ok_or_else(|| self.gone())
    }

    /// The 401 for a valid token whose user no longer exists.
    fn gone(self) -> AppError {
        log::debug!("token refused: user {} no longer exists", self.id);
        AppError::invalid_token()
    }
}

/// What a read answers: empty when the caller may no longer exist.
pub trait Rows {
    fn is_empty(&self) -> bool;
}

impl<T> Rows for Vec<T> {
    fn is_empty(&self) -> bool {
        Vec::is_empty(self)
    }
}

impl<T> Rows for Option<T> {
    fn is_empty(&self) -> bool {
        self.is_none()
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
        id: tokens.verify(token)?,
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
