//! `POST /vote`, behind the bearer-token middleware.

use actix_web::{HttpResponse, web};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::Object;

use crate::auth::CurrentUser;
use crate::db::models::Vote;
use crate::db::{self, DbPool};
use crate::error::AppError;
use crate::extract::ValidJson;
use crate::routes::schemas::{self, PayloadTooLarge, Unauthorized, Unavailable};
use crate::routes::{ErrorBody, ValidationErrorBody};
use crate::store;
use crate::validation::{BodyFields, FromJsonBody, check_range};

/// The two values of `dir`.
pub const REMOVE_VOTE: i64 = 0;
pub const ADD_VOTE: i64 = 1;

#[derive(Debug, ToSchema)]
pub struct VoteIn {
    #[schema(schema_with = schemas::row_id)]
    pub post_id: i32,
    #[schema(schema_with = dir_schema)]
    pub dir: u8,
}

fn dir_schema() -> Object {
    schemas::integer(REMOVE_VOTE, ADD_VOTE)
        .description(Some(format!(
            "{ADD_VOTE} adds the caller's vote, {REMOVE_VOTE} removes it."
        )))
        .examples([ADD_VOTE])
        .build()
}

impl FromJsonBody for VoteIn {
    fn from_fields(fields: &mut BodyFields<'_>) -> Option<Self> {
        let post_id = fields.integer("post_id").and_then(|id| {
            match check_range(&["body", "post_id"], id, i32::MIN.into(), i32::MAX.into()) {
                Ok(id) => i32::try_from(id).ok(),
                Err(error) => fields.reject(error),
            }
        });
        let dir = fields.integer("dir").and_then(|dir| {
            match check_range(&["body", "dir"], dir, REMOVE_VOTE, ADD_VOTE) {
                Ok(dir) => u8::try_from(dir).ok(),
                Err(error) => fields.reject(error),
            }
        });
        Some(Self {
            post_id: post_id?,
            dir: dir?,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct VoteMessage {
    #[schema(example = "successfully added vote")]
    pub message: String,
}

fn post_missing(post_id: i32) -> AppError {
    AppError::NotFound(format!("Post with id: {post_id} does not exist"))
}

/// Vote on a post, or take the vote back.
///
/// `dir` 1 adds the caller's vote; `dir` 0 removes it.
#[utoipa::path(
    post,
    path = "/vote",
    tag = "votes",
    request_body = VoteIn,
    security(("OAuth2PasswordBearer" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = VoteMessage),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No such post, or no vote to remove", body = ErrorBody),
        (status = 409, description = "Already voted", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 422, description = "Validation Error", body = ValidationErrorBody),
        (status = 503, response = Unavailable),
    )
)]
pub async fn vote(
    pool: web::Data<DbPool>,
    caller: CurrentUser,
    ValidJson(input): ValidJson<VoteIn>,
) -> Result<HttpResponse, AppError> {
    let message = if i64::from(input.dir) == ADD_VOTE {
        store::run_as(&pool, caller.caller(), move |conn, voter| {
            let vote = Vote {
                user_id: voter.id,
                post_id: input.post_id,
            };
            db::votes::insert(conn, vote).map_err(|e| match e {
                DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                    AppError::Conflict(format!(
                        "user {} has already voted on post {}",
                        vote.user_id, vote.post_id
                    ))
                }
                DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                    post_missing(vote.post_id)
                }
                other => other.into(),
            })
        })
        .await?;
        "successfully added vote"
    } else {
        store::run_as(&pool, caller.caller(), move |conn, voter| {
            let vote = Vote {
                user_id: voter.id,
                post_id: input.post_id,
            };
            if db::votes::delete(conn, vote)? {
                Ok(())
            } else if db::posts::exists(conn, vote.post_id)? {
                Err(AppError::NotFound("Vote does not exist".into()))
            } else {
                Err(post_missing(vote.post_id))
            }
        })
        .await?;
        "successfully deleted vote"
    };
    Ok(HttpResponse::Created().json(VoteMessage {
        message: message.into(),
    }))
}
