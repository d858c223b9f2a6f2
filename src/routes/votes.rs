//! `POST /vote`, behind the bearer-token middleware.

use actix_web::{HttpResponse, web};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::CurrentUser;
use crate::db::models::Vote;
use crate::db::{self, DbPool};
use crate::error::AppError;
use crate::extract::ValidJson;
use crate::routes::{ErrorBody, ValidationErrorBody};
use crate::validation::{BodyFields, FromJsonBody, check_range};

#[derive(Debug, ToSchema)]
pub struct VoteIn {
    pub post_id: i32,
    /// 1 adds the caller's vote, 0 removes it.
    #[schema(minimum = 0, maximum = 1)]
    pub dir: u8,
}

impl FromJsonBody for VoteIn {
    fn from_fields(fields: &mut BodyFields<'_>) -> Option<Self> {
        let post_id = fields.integer("post_id").and_then(|id| {
            match check_range(&["body", "post_id"], id, i32::MIN.into(), i32::MAX.into()) {
                Ok(id) => i32::try_from(id).ok(),
                Err(error) => fields.reject(error),
            }
        });
        let dir =
            fields
                .integer("dir")
                .and_then(|dir| match check_range(&["body", "dir"], dir, 0, 1) {
                    Ok(dir) => u8::try_from(dir).ok(),
                    Err(error) => fields.reject(error),
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
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "No such post, or no vote to remove", body = ErrorBody),
        (status = 409, description = "Already voted", body = ErrorBody),
        (status = 422, description = "Validation Error", body = ValidationErrorBody),
    )
)]
pub async fn vote(
    pool: web::Data<DbPool>,
    caller: CurrentUser,
    ValidJson(input): ValidJson<VoteIn>,
) -> Result<HttpResponse, AppError> {
    let message = if input.dir == 1 {
        caller
            .run(&pool, move |conn, voter| {
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
        caller
            .run(&pool, move |conn, voter| {
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
