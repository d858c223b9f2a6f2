//! The caller's sessions: `GET /sessions`, `DELETE /sessions/{id}`,
//! `POST /logout` and `POST /logout/all`, behind the bearer-token middleware.

use actix_web::{HttpResponse, web};
use chrono::NaiveDateTime;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{CurrentUser, SessionService};
use crate::db::DbPool;
use crate::db::models::Session;
use crate::error::AppError;
use crate::routes::schemas::{RowId, Unauthorized, Unavailable};
use crate::routes::{ErrorBody, ValidationErrorBody, row_id, utc_timestamp};

/// A live session of the caller's.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionOut {
    #[schema(example = 3)]
    pub id: i32,
    /// When the login that opened it happened.
    #[serde(serialize_with = "utc_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2021-08-22T19:55:27.727572+00:00")]
    pub created_at: NaiveDateTime,
    /// Its last login or refresh (requests do not write it).
    #[serde(serialize_with = "utc_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2021-08-22T20:25:01.000219+00:00")]
    pub last_used_at: NaiveDateTime,
    /// When its refresh token stops working, unless refreshed before.
    #[serde(serialize_with = "utc_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2021-09-05T20:25:01.000219+00:00")]
    pub expires_at: NaiveDateTime,
    /// The `User-Agent` it was opened with, cut to 256 characters.
    #[schema(example = "PostmanRuntime/7.39.0")]
    pub user_agent: Option<String>,
    /// The client address it was opened from.
    #[schema(example = "203.0.113.7")]
    pub client_addr: Option<String>,
    /// Whether the token of this request belongs to it.
    pub current: bool,
}

impl SessionOut {
    fn new(session: Session, current: Option<i32>) -> Self {
        Self {
            current: current == Some(session.id),
            id: session.id,
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            expires_at: session.expires_at,
            user_agent: session.user_agent,
            client_addr: session.client_addr,
        }
    }
}

fn session_missing(id: i64) -> AppError {
    AppError::NotFound(format!("session with id: {id} was not found"))
}

/// The caller's live sessions, most recently used first.
#[utoipa::path(
    get,
    path = "/sessions",
    tag = "sessions",
    security(("OAuth2PasswordBearer" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Successful Response", body = Vec<SessionOut>),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list_sessions(
    pool: web::Data<DbPool>,
    sessions: web::Data<SessionService>,
    caller: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let caller = caller.caller();
    let live = sessions.list(&pool, caller).await?;
    let live: Vec<SessionOut> = live
        .into_iter()
        .map(|session| SessionOut::new(session, caller.session_id))
        .collect();
    Ok(HttpResponse::Ok().json(live))
}

/// End one of the caller's sessions: its access and refresh tokens stop
/// working.
#[utoipa::path(
    delete,
    path = "/sessions/{id}",
    tag = "sessions",
    params(("id" = inline(RowId), Path, description = "Session id")),
    security(("OAuth2PasswordBearer" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, response = Unauthorized),
        (status = 404, description = "Not one of the caller's live sessions", body = ErrorBody),
        (status = 422, description = "Validation Error", body = ValidationErrorBody),
        (status = 503, response = Unavailable),
    )
)]
pub async fn revoke_session(
    pool: web::Data<DbPool>,
    sessions: web::Data<SessionService>,
    caller: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let id = row_id(id, session_missing)?;
    if sessions.revoke(&pool, caller.caller(), id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(session_missing(id.into()))
    }
}

/// Log out: this session's access and refresh tokens stop working.
#[utoipa::path(
    post,
    path = "/logout",
    tag = "sessions",
    security(("OAuth2PasswordBearer" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub async fn log_out(
    pool: web::Data<DbPool>,
    sessions: web::Data<SessionService>,
    caller: CurrentUser,
) -> Result<HttpResponse, AppError> {
    sessions.log_out(&pool, caller.caller()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Log out everywhere: every session ends, and every token issued until now
/// is refused.
#[utoipa::path(
    post,
    path = "/logout/all",
    tag = "sessions",
    security(("OAuth2PasswordBearer" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Logged out everywhere"),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub async fn log_out_everywhere(
    pool: web::Data<DbPool>,
    sessions: web::Data<SessionService>,
    caller: CurrentUser,
) -> Result<HttpResponse, AppError> {
    sessions
        .log_out_everywhere(&pool, caller.caller(), false)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
