//! The caller's own account: `GET /users/me`, `PUT /users/me/password` and
//! `DELETE /users/me`, behind the bearer-token middleware. Changing the
//! password or deleting the account takes the password again, throttled as
//! a login is.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use secrecy::zeroize::Zeroize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::schema::Object;

use crate::auth::password::Verdict;
use crate::auth::{CurrentUser, LoginThrottle, PasswordHasher, SessionService};
use crate::client_addr::client_address;
use crate::db::models::{Caller, User};
use crate::db::{self, DbPool};
use crate::error::AppError;
use crate::extract::ValidJson;
use crate::routes::schemas::{self, PayloadTooLarge, TooManyRequests, Unauthorized, Unavailable};
use crate::routes::users::{EXAMPLE_PASSWORD, UserOut, new_password, password_schema};
use crate::routes::{ErrorBody, ValidationErrorBody};
use crate::store;
use crate::validation::{BodyFields, FromJsonBody, from_json_fields};

/// `PUT /users/me/password`.
#[derive(Debug, ToSchema)]
pub struct PasswordChange {
    #[schema(schema_with = current_password_schema)]
    pub current_password: SecretString,
    /// As a sign-up's password.
    #[schema(schema_with = password_schema)]
    pub new_password: SecretString,
}

/// `DELETE /users/me`.
#[derive(Debug, ToSchema)]
pub struct AccountDeletion {
    #[schema(schema_with = current_password_schema)]
    pub password: SecretString,
}

fn current_password_schema() -> Object {
    schemas::text(0, usize::MAX)
        .description(Some("The account's password now."))
        .examples([EXAMPLE_PASSWORD])
        .build()
}

/// Reads a body holding passwords, then wipes their text in the parsed body,
/// accepted or not. (Not wiped: actix's buffer of the raw request.)
fn parse_wiping<T: FromJsonBody>(mut body: Value, secrets: &[&str]) -> Result<T, AppError> {
    let parsed = from_json_fields(&body);
    for name in secrets {
        if let Some(Value::String(text)) = body.get_mut(*name) {
            text.zeroize();
        }
    }
    parsed
}

impl FromJsonBody for PasswordChange {
    fn from_fields(fields: &mut BodyFields<'_>) -> Option<Self> {
        let current = fields.string("current_password").map(SecretString::from);
        let new = new_password(fields, "new_password");
        Some(Self {
            current_password: current?,
            new_password: new?,
        })
    }

    fn from_json(body: Value) -> Result<Self, AppError> {
        parse_wiping(body, &["current_password", "new_password"])
    }
}

impl FromJsonBody for AccountDeletion {
    fn from_fields(fields: &mut BodyFields<'_>) -> Option<Self> {
        let password = fields.string("password").map(SecretString::from);
        Some(Self {
            password: password?,
        })
    }

    fn from_json(body: Value) -> Result<Self, AppError> {
        parse_wiping(body, &["password"])
    }
}

/// The caller's account, with its email.
#[utoipa::path(
    get,
    path = "/users/me",
    tag = "users",
    security(("OAuth2PasswordBearer" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Successful Response", body = UserOut),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub async fn get_me(
    pool: web::Data<DbPool>,
    caller: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let account = store::run(&pool, move |conn| {
        store::require_account(conn, caller.caller())
    })
    .await?;
    Ok(HttpResponse::Ok().json(UserOut::from(account)))
}

/// Change the password: every other session of the account ends, and tokens
/// without a session issued until now are refused; this session goes on.
#[utoipa::path(
    put,
    path = "/users/me/password",
    tag = "users",
    request_body = PasswordChange,
    security(("OAuth2PasswordBearer" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Changed"),
        (status = 401, response = Unauthorized),
        (status = 403, description = "Wrong current password", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 422, description = "Validation Error", body = ValidationErrorBody),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
pub async fn change_password(
    req: HttpRequest,
    pool: web::Data<DbPool>,
    hasher: web::Data<PasswordHasher>,
    throttle: web::Data<LoginThrottle>,
    sessions: web::Data<SessionService>,
    caller: CurrentUser,
    ValidJson(input): ValidJson<PasswordChange>,
) -> Result<HttpResponse, AppError> {
    let caller = caller.caller();
    confirm_password(
        &req,
        &pool,
        &hasher,
        &throttle,
        caller,
        input.current_password,
    )
    .await?;
    let new_hash = hasher.hash(input.new_password).await?;
    sessions.change_password(&pool, caller, new_hash).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Delete the account, with its posts, votes and sessions.
#[utoipa::path(
    delete,
    path = "/users/me",
    tag = "users",
    request_body = AccountDeletion,
    security(("OAuth2PasswordBearer" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = Unauthorized),
        (status = 403, description = "Wrong password", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 422, description = "Validation Error", body = ValidationErrorBody),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
pub async fn delete_me(
    req: HttpRequest,
    pool: web::Data<DbPool>,
    hasher: web::Data<PasswordHasher>,
    throttle: web::Data<LoginThrottle>,
    caller: CurrentUser,
    ValidJson(input): ValidJson<AccountDeletion>,
) -> Result<HttpResponse, AppError> {
    let caller = caller.caller();
    confirm_password(&req, &pool, &hasher, &throttle, caller, input.password).await?;
    store::run_as(&pool, caller, |conn, account: User| {
        db::users::delete(conn, account.id)?;
        log::info!("user {} deleted their account", account.id);
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Checks that `password` is the caller's, as a login would: throttled per
/// client address and account, a wrong one counted as a failed login.
async fn confirm_password(
    req: &HttpRequest,
    pool: &DbPool,
    hasher: &PasswordHasher,
    throttle: &web::Data<LoginThrottle>,
    caller: Caller,
    password: SecretString,
) -> Result<(), AppError> {
    let (account, stored_hash) = store::run(pool, move |conn| {
        db::sessions::account_with_password(conn, caller)?
            .ok_or_else(|| store::caller_refused(caller))
    })
    .await?;
    let attempt = throttle.begin(client_address(req), &account.email).await?;
    match hasher.verify(password, Some(stored_hash)).await? {
        Verdict::Matches { .. } => {
            attempt.succeeded().await;
            Ok(())
        }
        verdict => {
            if !matches!(verdict, Verdict::Wrong) {
                log::warn!(
                    "user {}'s stored password hash cannot be verified ({verdict:?}): refused",
                    account.id
                );
            }
            attempt.failed().await;
            Err(AppError::Forbidden("Invalid Credentials".into()))
        }
    }
}
