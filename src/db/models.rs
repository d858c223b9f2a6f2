//! Row types: what the queries read and write. Response shapes live with the
//! routes; the password hash has no way into them.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::pool::MultiBackend;
use crate::schema::{posts, refresh_tokens, sessions, users, votes};

/// A user as the rest of the application sees it: no password hash.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i32,
    pub email: String,
    pub created_at: NaiveDateTime,
}

impl User {
    /// The columns its `Selectable` derive lists, as a plain tuple: what
    /// `RETURNING` takes on a connection of either backend (Diesel's
    /// `as_returning()` has to name one).
    pub fn columns() -> <Self as Selectable<MultiBackend>>::SelectExpression {
        <Self as Selectable<MultiBackend>>::construct_selection()
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub email: &'a str,
    /// What look-alike addresses share, where it is not the address itself;
    /// unique with the addresses.
    pub email_key: Option<&'a str>,
    pub password_hash: &'a str,
    pub created_at: NaiveDateTime,
}

/// Who a verified access token speaks for, as every protected statement
/// checks it: the user, the session the token was issued in (none for tokens
/// minted by the course app), and when it was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: i32,
    pub session_id: Option<i32>,
    pub issued_at: NaiveDateTime,
}

/// What login needs to check a password.
#[derive(Debug, Queryable)]
pub struct UserPassword {
    pub user_id: i32,
    pub password_hash: String,
}

/// A post's own columns (`posts` also holds the vote count, which
/// [`PostWithVotes`] carries).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = posts)]
pub struct Post {
    pub id: i32,
    pub title: String,
    pub content: String,
    pub published: bool,
    pub created_at: NaiveDateTime,
    pub owner_id: i32,
}

impl Post {
    /// As [`User::columns`].
    pub fn columns() -> <Self as Selectable<MultiBackend>>::SelectExpression {
        <Self as Selectable<MultiBackend>>::construct_selection()
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = posts)]
pub struct NewPost<'a> {
    #[diesel(embed)]
    pub fields: PostChanges<'a>,
    pub created_at: NaiveDateTime,
    pub owner_id: i32,
    /// The token it is written under (of user `owner_id`): the post is not
    /// written unless that token is still good.
    #[diesel(skip_insertion)]
    pub author: Caller,
}

/// A full replace of what an owner may change; also what a new post is given.
#[derive(Debug, AsChangeset, Insertable)]
#[diesel(table_name = posts)]
pub struct PostChanges<'a> {
    pub title: &'a str,
    pub content: &'a str,
    pub published: bool,
}

/// A post with its owner and vote count, as every post route answers.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct PostWithVotes {
    pub post: Post,
    pub owner: User,
    pub votes: i64,
}

#[derive(Debug, Clone, Copy, Insertable)]
#[diesel(table_name = votes)]
pub struct Vote {
    pub user_id: i32,
    pub post_id: i32,
}

/// A session as its owner sees it in `GET /sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: i32,
    pub created_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub user_agent: Option<String>,
    pub client_addr: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession<'a> {
    pub user_id: i32,
    pub created_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub user_agent: Option<&'a str>,
    pub client_addr: Option<&'a str>,
}

/// A refresh token as stored: its hash, never the token.
#[derive(Debug, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct NewRefreshToken<'a> {
    pub token_hash: &'a str,
    pub session_id: i32,
    pub expires_at: NaiveDateTime,
}
