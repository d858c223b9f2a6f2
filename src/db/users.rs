//! Queries on `users`.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};

use super::DbConnection;
use super::models::{NewUser, User, UserPassword};
use crate::email;
use crate::schema::users;

diesel::define_sql_function! {
    /// A text's length in bytes (PostgreSQL; SQLite from 3.43, which the
    /// bundled one is).
    fn octet_length(text: diesel::sql_types::Text) -> diesel::sql_types::Integer;
}

diesel::define_sql_function! {
    /// A text's length in characters, on both backends.
    fn length(text: diesel::sql_types::Text) -> diesel::sql_types::Integer;
}

/// Inserts a user; a taken email, or a taken look-alike key, is a unique
/// violation.
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

/// What [`refresh_email_keys`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EmailKeyRefresh {
    /// Users with a non-ASCII address: the only ones whose key can differ
    /// from their address.
    pub examined: usize,
    /// Keys rewritten.
    pub updated: usize,
    /// `(user, holder)`: the user's address reads like the holder's (both
    /// accounts predate the key); the user's key is left as it was. The
    /// holder is `None` if it went meanwhile.
    pub clashes: Vec<(i32, Option<i32>)>,
}

/// Gives every user with a non-ASCII address the look-alike key the current
/// rules compute ([`email::lookalike_key`]), stored where it is not the
/// address itself, as a sign-up stores it: rows from before the key, and
/// rows other tools wrote, hold none, and a newer Unicode table may move a
/// prototype. ASCII addresses are their own key and are not read at all.
///
/// One scan of `users` (no index serves "has a non-ASCII character": the
/// test compares the address's length in bytes and in characters), then one
/// `UPDATE` per key that changed. Each update stands alone: a key another
/// account holds already is a unique violation, recorded as a clash and
/// left, and the rest go on.
pub fn refresh_email_keys(conn: &mut DbConnection) -> QueryResult<EmailKeyRefresh> {
    let rows: Vec<(i32, String, Option<String>)> = users::table
        .filter(octet_length(users::email).ne(length(users::email)))
        .select((users::id, users::email, users::email_key))
        .load(conn)?;
    let mut refresh = EmailKeyRefresh {
        examined: rows.len(),
        ..EmailKeyRefresh::default()
    };
    for (id, address, stored) in rows {
        let key = email::lookalike_key(&address);
        let wanted = Some(key).filter(|key| *key != address);
        if wanted == stored {
            continue;
        }
        let changed = diesel::update(users::table.find(id))
            .set(users::email_key.eq(&wanted))
            .execute(conn);
        match changed {
            Ok(n) => refresh.updated += n,
            Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                // Whose `COALESCE(email_key, email)` it is.
                let key = wanted.as_deref().unwrap_or(&address);
                let holder = users::table
                    .filter(
                        users::email_key
                            .eq(key)
                            .or(users::email_key.is_null().and(users::email.eq(key))),
                    )
                    .select(users::id)
                    .first(conn)
                    .optional()?;
                refresh.clashes.push((id, holder));
            }
            Err(other) => return Err(other),
        }
    }
    Ok(refresh)
}
