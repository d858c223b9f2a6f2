//! The two shapes a post is answered in (`POST_SHAPE`): postapi's flat post,
//! or the FastAPI course's own response models, and the OpenAPI document that
//! describes whichever the server answers. The shape also says how a user is
//! shown to anyone but themselves (a post's owner, `GET /users/{id}`): flat,
//! a [`PublicUser`], without the email; course, the course's [`UserOut`],
//! with it.

use std::borrow::Cow;

use chrono::NaiveDateTime;
use serde::Serialize;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{ArrayItems, Schema};
use utoipa::openapi::{OpenApi, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::config::PostShape;
use crate::db::models::PostWithVotes;
use crate::routes::users::{PublicUser, UserOut};
use crate::routes::utc_timestamp;

/// A post with its owner, without its vote count (the course's `Post`), as
/// `POST /posts` and `PUT /posts/{id}` answer it with `POST_SHAPE=course`.
// Fields in the order pydantic writes them (`PostBase`'s first), so the
// course's clients see the same bytes.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Post)]
pub struct CoursePost {
    #[schema(example = "top beaches in florida")]
    pub title: String,
    #[schema(example = "something something beaches")]
    pub content: String,
    pub published: bool,
    #[schema(example = 4)]
    pub id: i32,
    #[serde(serialize_with = "utc_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2021-08-22T19:55:27.727572+00:00")]
    pub created_at: NaiveDateTime,
    pub owner_id: i32,
    pub owner: UserOut,
}

/// A post with its owner and vote count: the one shape every post route answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostOut {
    #[schema(example = 4)]
    pub id: i32,
    #[schema(example = "top beaches in florida")]
    pub title: String,
    #[schema(example = "something something beaches")]
    pub content: String,
    pub published: bool,
    #[serde(serialize_with = "utc_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2021-08-22T19:55:27.727572+00:00")]
    pub created_at: NaiveDateTime,
    pub owner_id: i32,
    pub owner: PublicUser,
    #[schema(example = 0)]
    pub votes: i64,
}

// The owner's email is read with the post and dropped here: one statement for
// both shapes, which reads the owner's row by its key for `created_at` anyway
// (docs/decisions.md).
impl From<PostWithVotes> for PostOut {
    fn from(PostWithVotes { post, owner, votes }: PostWithVotes) -> Self {
        Self {
            id: post.id,
            title: post.title,
            content: post.content,
            published: post.published,
            created_at: post.created_at,
            owner_id: post.owner_id,
            owner: owner.into(),
            votes,
        }
    }
}

/// A post beside its vote count (the course's `PostOut`), as `GET /posts`
/// and `GET /posts/{id}` answer it with `POST_SHAPE=course`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PostOut)]
pub struct CoursePostOut {
    #[serde(rename = "Post")]
    pub post: CoursePost,
    #[schema(example = 0)]
    pub votes: i64,
}

impl From<PostWithVotes> for CoursePost {
    fn from(PostWithVotes { post, owner, .. }: PostWithVotes) -> Self {
        Self {
            title: post.title,
            content: post.content,
            published: post.published,
            id: post.id,
            created_at: post.created_at,
            owner_id: post.owner_id,
            owner: owner.into(),
        }
    }
}

impl From<PostWithVotes> for CoursePostOut {
    fn from(post: PostWithVotes) -> Self {
        Self {
            votes: post.votes,
            post: post.into(),
        }
    }
}

/// A post as a route answers it, in the configured shape.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum PostBody {
    Flat(PostOut),
    CoursePost(CoursePost),
    CoursePostOut(CoursePostOut),
}

impl PostBody {
    /// What `GET /posts` (for each post) and `GET /posts/{id}` answer.
    pub fn read(shape: &PostShape, post: PostWithVotes) -> Self {
        match shape {
            PostShape::Flat => Self::Flat(post.into()),
            PostShape::Course => Self::CoursePostOut(post.into()),
        }
    }

    /// What `POST /posts` and `PUT /posts/{id}` answer: the course leaves the
    /// votes out of these.
    pub fn written(shape: &PostShape, post: PostWithVotes) -> Self {
        match shape {
            PostShape::Flat => Self::Flat(post.into()),
            PostShape::Course => Self::CoursePost(post.into()),
        }
    }
}

type OperationOf = fn(&mut PathItem) -> Option<&mut Operation>;
type SchemaName = fn() -> Cow<'static, str>;

/// The operations that answer otherwise in the course's shape: for each, the
/// schema the generated document names and the course's in its place.
const COURSE_ANSWERS: [(&str, &str, OperationOf, SchemaName, SchemaName); 5] = [
    (
        "/posts",
        "get",
        |item| item.get.as_mut(),
        <PostOut as ToSchema>::name,
        <CoursePostOut as ToSchema>::name,
    ),
    (
        "/posts/{id}",
        "get",
        |item| item.get.as_mut(),
        <PostOut as ToSchema>::name,
        <CoursePostOut as ToSchema>::name,
    ),
    (
        "/posts",
        "post",
        |item| item.post.as_mut(),
        <PostOut as ToSchema>::name,
        <CoursePost as ToSchema>::name,
    ),
    (
        "/posts/{id}",
        "put",
        |item| item.put.as_mut(),
        <PostOut as ToSchema>::name,
        <CoursePost as ToSchema>::name,
    ),
    (
        "/users/{id}",
        "get",
        |item| item.get.as_mut(),
        <PublicUser as ToSchema>::name,
        <UserOut as ToSchema>::name,
    ),
];

/// Makes the generated document (which describes the flat shape) describe
/// the shape the server answers: in course mode the course's `PostOut` and
/// `Post` replace the flat schema on every post route, and its `UserOut`
/// (with the email) replaces [`PublicUser`] on `GET /users/{id}`.
pub fn describe(shape: &PostShape, document: &mut OpenApi) -> Result<(), String> {
    if *shape == PostShape::Flat {
        return Ok(());
    }
    let components = document.components.get_or_insert_with(Default::default);
    // Answered in the flat shape only. The course's `PostOut` takes the flat
    // one's name.
    for flat_only in [
        <PostOut as ToSchema>::name(),
        <PublicUser as ToSchema>::name(),
    ] {
        components.schemas.remove(flat_only.as_ref());
    }
    components.schemas.insert(
        <CoursePostOut as ToSchema>::name().into_owned(),
        <CoursePostOut as PartialSchema>::schema(),
    );
    components.schemas.insert(
        <CoursePost as ToSchema>::name().into_owned(),
        <CoursePost as PartialSchema>::schema(),
    );

    for (path, method, operation_of, flat, course) in COURSE_ANSWERS {
        let (from, to) = (schema_ref(&flat()), schema_ref(&course()));
        let operation = document
            .paths
            .paths
            .get_mut(path)
            .and_then(operation_of)
            .ok_or_else(|| format!("{method} {path} is not in the document"))?;
        let replaced: usize = operation
            .responses
            .responses
            .values_mut()
            .filter_map(|response| match response {
                RefOr::T(response) => Some(response),
                RefOr::Ref(_) => None,
            })
            .flat_map(|response| response.content.values_mut())
            .filter_map(|content| match content {
                RefOr::T(content) => content.schema.as_mut(),
                RefOr::Ref(_) => None,
            })
            .map(|schema| retarget(schema, &from, &to))
            .sum();
        if replaced == 0 {
            return Err(format!("{method} {path} answers no {from} to replace"));
        }
    }
    Ok(())
}

fn schema_ref(name: &str) -> String {
    format!("#/components/schemas/{name}")
}

/// Points `schema` (or the items of an array of it) at `to` instead of
/// `from`; returns how many references it changed.
fn retarget(schema: &mut RefOr<Schema>, from: &str, to: &str) -> usize {
    match schema {
        RefOr::Ref(reference) if reference.ref_location == from => {
            to.clone_into(&mut reference.ref_location);
            1
        }
        RefOr::T(Schema::Array(array)) => match &mut array.items {
            ArrayItems::RefOrSchema(items) => retarget(items, from, to),
            _ => 0,
        },
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi as _;

    use super::*;
    use crate::routes::docs::ApiDoc;

    #[test]
    fn the_flat_shape_leaves_the_generated_document_as_it_is() {
        let mut document = ApiDoc::openapi();
        describe(&PostShape::Flat, &mut document).unwrap();
        assert_eq!(
            document.to_json().unwrap(),
            ApiDoc::openapi().to_json().unwrap()
        );
    }

    #[test]
    fn the_course_document_names_no_schema_of_the_flat_shape_alone() {
        let mut document = ApiDoc::openapi();
        describe(&PostShape::Course, &mut document).unwrap();
        let json = document.to_json().unwrap();

        let public_user = schema_ref(&<PublicUser as ToSchema>::name());
        assert!(!json.contains(&public_user), "{json}");
        let schemas = &document.components.unwrap().schemas;
        assert!(!schemas.contains_key(<PublicUser as ToSchema>::name().as_ref()));
        assert!(schemas.contains_key(<UserOut as ToSchema>::name().as_ref()));
    }

    #[test]
    fn a_document_without_the_post_routes_cannot_be_made_to_describe_the_course() {
        let mut document = ApiDoc::openapi();
        document.paths.paths.remove("/posts/{id}");
        let Err(error) = describe(&PostShape::Course, &mut document) else {
            panic!("describing the course without /posts/{{id}} succeeded");
        };
        assert!(error.contains("/posts/{id}"), "{error}");
    }
}
