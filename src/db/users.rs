//! Queries on `users`.

use diesel::prelude::*;

use super::DbConnection;
use super::models::{NewUser, User, UserPassword};
use crate::schema::users;

/// Inserts a user; a taken email is a unique violation.
pub fn insert(conn: &mut DbConnection, new_user: &NewUser<'_>) -> QueryResult<User> {
    diesel::insert_into(users::table)
        .values(new_user)
        .returning(User::columns())
        .get_result(conn)
}

pub fn find(conn: &mut DbConnection, id: i32) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// Looks up by an email already normalised (trimmed, lower-cased).
pub fn credentials_by_email(
    conn: &mut DbConnection,
    email: &str,
) -> QueryResult<Option<UserPassword>> {
    users::table
        .filter(users::email.eq(email))
        .select((users::id, users::password_hash))
        .first(conn)
        .optional()
}

/// Replaces user `id`'s password hash (a login's rehash at the configured
/// cost); the number of rows changed, 0 if the user is gone.
pub fn set_password_hash(conn: &mut DbConnection, id: i32, hash: &str) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set(users::password_hash.eq(hash))
        .execute(conn)
}

/// Deletes user `id` with everything of theirs (the foreign keys cascade to
/// posts, votes and sessions); `false` if there was no such user.
pub fn delete(conn: &mut DbConnection, id: i32) -> QueryResult<bool> {
    Ok(diesel::delete(users::table.find(id)).execute(conn)? > 0)
}

/// Replaces user `id`'s password, ending every session of theirs but `keep`
/// and refusing their tokens without a session issued until `now`.
pub fn change_password(
    conn: &mut DbConnection,
    id: i32,
    hash: &str,
    keep: Option<i32>,
    now: chrono::NaiveDateTime,
) -> QueryResult<()> {
    conn.transaction(|conn| {
        set_password_hash(conn, id, hash)?;
        super::sessions::revoke_all(conn, id, keep, now)
    })
}
