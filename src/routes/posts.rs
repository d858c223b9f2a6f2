//! The post routes, all behind the bearer-token middleware.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use chrono::{SubsecRound, Utc};
use utoipa::openapi::schema::Object;
use utoipa::{IntoParams, ToSchema};

use crate::auth::CurrentUser;
use crate::config::PostShape;
use crate::db::models::{PostChanges, PostWithVotes};
use crate::db::{self, DbConnection, DbPool};
use crate::error::{AppError, FieldError};
use crate::extract::{ValidJson, last_value, query_pairs};
use crate::routes::post_shape::{PostBody, PostOut};
use crate::routes::schemas::{self, PayloadTooLarge, RowId, Unauthorized, Unavailable};
use crate::routes::{ErrorBody, ValidationErrorBody, row_id};
use crate::store::{self, PostToWrite, PostWriter};
use crate::validation::{BodyFields, FromJsonBody, check_chars, check_range};

pub const MAX_TITLE_CHARS: usize = 300;
pub const MAX_CONTENT_CHARS: usize = 100_000;
pub const MAX_PAGE_SIZE: i64 = 100;
pub const DEFAULT_PAGE_SIZE: i64 = 10;
/// Longest `search`, in characters. Escaping at most doubles it, which keeps
/// the LIKE pattern far below SQLite's 50,000-byte limit on both backends.
pub const MAX_SEARCH_CHARS: usize = 200;

/// What a client sends to create or fully replace a post.
#[derive(Debug, ToSchema)]
pub struct PostIn {
    #[schema(schema_with = title_schema)]
    pub title: String,
    #[schema(schema_with = content_schema)]
    pub content: String,
    #[schema(required = false, default = true)]
    pub published: bool,
}

fn title_schema() -> Object {
    schemas::text(1, MAX_TITLE_CHARS)
        .pattern(Some(schemas::not_blank_pattern()))
        .description(Some(format!(
            "1 to {MAX_TITLE_CHARS} characters, not blank."
        )))
        .examples(["top beaches in florida"])
        .build()
}

fn content_schema() -> Object {
    schemas::text(0, MAX_CONTENT_CHARS)
        .description(Some(format!("Up to {MAX_CONTENT_CHARS} characters.")))
        .examples(["something something beaches"])
        .build()
}

impl PostIn {
    /// The post's fields as a row takes them, for an insert or a replace.
    fn as_changes(&self) -> PostChanges<'_> {
        PostChanges {
            title: &self.title,
            content: &self.content,
            published: self.published,
        }
    }
}

impl FromJsonBody for PostIn {
    fn from_fields(fields: &mut BodyFields<'_>) -> Option<Self> {
        let title = fields.string("title").and_then(|title| {
            let loc = ["body", "title"];
            match check_chars(&loc, title, 1, MAX_TITLE_CHARS) {
                Err(error) => fields.reject(error),
                Ok(()) if title.trim().is_empty() => fields.reject(FieldError::new(
                    &loc,
                    "title must not be blank",
                    "value_error.blank",
                )),
                Ok(()) => Some(title.to_owned()),
            }
        });
        let content = fields.string("content").and_then(|content| {
            match check_chars(&["body", "content"], content, 0, MAX_CONTENT_CHARS) {
                Err(error) => fields.reject(error),
                Ok(()) => Some(content.to_owned()),
            }
        });
        let published = fields.bool_or("published", true);
        Some(Self {
            title: title?,
            content: content?,
            published: published?,
        })
    }
}

/// The `GET /posts` query, validated: documented and parsed by this one type.
#[derive(Debug, Clone, PartialEq, Eq, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListPostsQuery {
    #[param(required = false, schema_with = limit_schema)]
    pub limit: i64,
    #[param(required = false, schema_with = skip_schema)]
    pub skip: i64,
    #[param(schema_with = search_schema)]
    pub search: Option<String>,
}

fn limit_schema() -> Object {
    schemas::integer(0, MAX_PAGE_SIZE)
        .description(Some("Page size."))
        .default(Some(DEFAULT_PAGE_SIZE.into()))
        .build()
}

fn skip_schema() -> Object {
    schemas::integer(0, i64::MAX)
        .default(Some(0.into()))
        .build()
}

fn search_schema() -> Object {
    schemas::text(0, MAX_SEARCH_CHARS)
        .description(Some("A literal, case-insensitive substring of the title."))
        .default(Some("".into()))
        .build()
}

impl FromRequest for ListPostsQuery {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse_list_query(req))
    }
}

fn parse_list_query(req: &HttpRequest) -> Result<ListPostsQuery, AppError> {
    let pairs = query_pairs(req)?;
    let last = |name: &str| last_value(&pairs, name);
    let mut errors = Vec::new();
    let mut integer = |name: &str, default: i64, min: i64, max: i64| {
        let loc = ["query", name];
        let Some(raw) = last(name) else {
            return default;
        };
        match raw.trim().parse::<i64>() {
            Err(_) => errors.push(FieldError::not_an_integer(&loc)),
            Ok(value) => match check_range(&loc, value, min, max) {
                Ok(value) => return value,
                Err(error) => errors.push(error),
            },
        }
        default
    };
    let limit = integer("limit", DEFAULT_PAGE_SIZE, 0, MAX_PAGE_SIZE);
    let skip = integer("skip", 0, 0, i64::MAX);
    let search = last("search");
    if let Some(text) = search {
        let loc = ["query", "search"];
        if text.contains('\0') {
            errors.push(FieldError::nul(&loc));
        } else if let Err(error) = check_chars(&loc, text, 0, MAX_SEARCH_CHARS) {
            errors.push(error);
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    Ok(ListPostsQuery {
        limit,
        skip,
        search: search.map(str::to_owned),
    })
}

// The course words a missing post differently for reads and for changes;
// clients match on the text, so both wordings stay.

/// 404 for `GET /posts/{id}`.
fn not_found_to_read(id: impl std::fmt::Display) -> AppError {
    AppError::NotFound(format!("post with id: {id} was not found"))
}

/// 404 for `PUT` and `DELETE /posts/{id}`.
fn not_found_to_change(id: impl std::fmt::Display) -> AppError {
    AppError::NotFound(format!("post with id: {id} does not exist"))
}

/// Why a change that matched no post of the caller's did nothing: 404 if the
/// post is missing, 403 if it is someone else's. Looked up only then, so a
/// successful change costs one statement.
fn unchanged(conn: &mut DbConnection, id: i32) -> AppError {
    match db::posts::owner_of(conn, id) {
        Ok(Some(_)) => AppError::Forbidden("Not authorized to perform requested action".into()),
        Ok(None) => not_found_to_change(id),
        Err(error) => error.into(),
    }
}

/// Posts, newest first.
#[utoipa::path(
    get,
    path = "/posts",
    tag = "posts",
    params(ListPostsQuery),
    security(("OAuth2PasswordBearer" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Successful Response", body = Vec<PostOut>),
        (status = 401, response = Unauthorized),
        (status = 422, description = "Validation Error", body = ValidationErrorBody),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list_posts(
    pool: web::Data<DbPool>,
    caller: CurrentUser,
    shape: web::Data<PostShape>,
    query: ListPostsQuery,
) -> Result<HttpResponse, AppError> {
    let posts = store::read_as(&pool, caller.caller(), move |conn, caller| {
        db::posts::list(
            conn,
            caller,
            query.limit,
            query.skip,
            query.search.as_deref(),
        )
    })
    .await?;
    let posts: Vec<PostBody> = posts
        .into_iter()
        .map(|post| PostBody::read(&shape, post))
        .collect();
    Ok(HttpResponse::Ok().json(posts))
}

/// One post, with its owner and votes.
#[utoipa::path(
    get,
    path = "/posts/{id}",
    tag = "posts",
    params(("id" = inline(RowId), Path, description = "Post id")),
    security(("OAuth2PasswordBearer" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Successful Response", body = PostOut),
        (status = 401, response = Unauthorized),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 422, description = "Validation Error", body = ValidationErrorBody),
        (status = 503, response = Unavailable),
    )
)]
pub async fn get_post(
    pool: web::Data<DbPool>,
    caller: CurrentUser,
    shape: web::Data<PostShape>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let id = row_id(id, not_found_to_read)?;
    let post = store::read_as(&pool, caller.caller(), move |conn, caller| {
        db::posts::find_with_votes(conn, id, caller)
    })
    .await?;
    let post = post.ok_or_else(|| not_found_to_read(id))?;
    Ok(HttpResponse::Ok().json(PostBody::read(&shape, post)))
}

/// Create a post owned by the caller.
#[utoipa::path(
    post,
    path = "/posts",
    tag = "posts",
    request_body = PostIn,
    security(("OAuth2PasswordBearer" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = PostOut),
        (status = 401, response = Unauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 422, description = "Validation Error", body = ValidationErrorBody),
        (status = 503, response = Unavailable),
    )
)]
pub async fn create_post(
    pool: web::Data<DbPool>,
    writer: web::Data<PostWriter>,
    shape: web::Data<PostShape>,
    caller: CurrentUser,
    ValidJson(input): ValidJson<PostIn>,
) -> Result<HttpResponse, AppError> {
    // The insert checks the caller's token as it writes, so a deleted
    // account or a revoked session shows as a post not written: 401, at no
    // statement of its own.
    let post = writer
        .write(
            &pool,
            PostToWrite {
                title: input.title,
                content: input.content,
                published: input.published,
                created_at: Utc::now().naive_utc().trunc_subsecs(6),
                author: caller.caller(),
            },
        )
        .await?
        .ok_or_else(|| store::caller_refused(caller.caller()))?;
    Ok(HttpResponse::Created().json(PostBody::written(&shape, post)))
}

/// Replace a post of the caller's.
#[utoipa::path(
    put,
    path = "/posts/{id}",
    tag = "posts",
    params(("id" = inline(RowId), Path, description = "Post id")),
    request_body = PostIn,
    security(("OAuth2PasswordBearer" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Successful Response", body = PostOut),
        (status = 401, response = Unauthorized),
        (status = 403, description = "Not the caller's post", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 422, description = "Validation Error", body = ValidationErrorBody),
        (status = 503, response = Unavailable),
    )
)]
pub async fn update_post(
    pool: web::Data<DbPool>,
    shape: web::Data<PostShape>,
    caller: CurrentUser,
    id: web::Path<i64>,
    ValidJson(input): ValidJson<PostIn>,
) -> Result<HttpResponse, AppError> {
    let id = row_id(id, not_found_to_change)?;
    let post = store::run_as(&pool, caller.caller(), move |conn, owner| {
        let (post, votes) = db::posts::update_owned(conn, id, owner.id, &input.as_changes())?
            .ok_or_else(|| unchanged(conn, id))?;
        Ok(PostWithVotes { post, owner, votes })
    })
    .await?;
    Ok(HttpResponse::Ok().json(PostBody::written(&shape, post)))
}

/// Delete a post of the caller's, with its votes.
#[utoipa::path(
    delete,
    path = "/posts/{id}",
    tag = "posts",
    params(("id" = inline(RowId), Path, description = "Post id")),
    security(("OAuth2PasswordBearer" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = Unauthorized),
        (status = 403, description = "Not the caller's post", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 422, description = "Validation Error", body = ValidationErrorBody),
        (status = 503, response = Unavailable),
    )
)]
pub async fn delete_post(
    pool: web::Data<DbPool>,
    caller: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let id = row_id(id, not_found_to_change)?;
    store::run_as(
        &pool,
        caller.caller(),
        move |conn, owner| match db::posts::delete_owned(conn, id, owner.id)? {
            true => Ok(()),
            false => Err(unchanged(conn, id)),
        },
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
