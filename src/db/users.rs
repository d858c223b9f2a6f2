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

/// True while user `id` exists: the filter with which a read requires its
/// caller, so the check costs no statement of its own.
#[diesel::dsl::auto_type]
pub fn exists_filter(id: i32) -> _ {
    diesel::dsl::exists(users::table.find(id))
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
