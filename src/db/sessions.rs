//! Queries on `sessions` and `refresh_tokens`, and the check every protected
//! statement makes of its caller: the session alive, or (for tokens without
//! one) the token issued after the account's cut-off.

use chrono::NaiveDateTime;
use diesel::dsl::exists;
use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use diesel::sql_types::Bool;

use super::DbConnection;
use super::models::{Caller, NewRefreshToken, NewSession, Session, User};
use super::pool::MultiBackend;
use crate::schema::{refresh_tokens, sessions, users};

/// A condition on no column of the query it filters.
pub type CallerCheck<QS> = Box<dyn BoxableExpression<QS, MultiBackend, SqlType = Bool>>;

/// Evaluates `$body` with `$check` bound to a condition, on no column of the
/// statement it filters, that is true while `$caller`'s token is good: its
/// session not revoked (a session only exists while its user does), or, for
/// a token without a session, its user there and the token issued after the
/// account's cut-off. Added to a statement's own filter, it costs no
/// statement of its own.
///
/// Each kind of token gets a condition of its own static type, so a
/// statement carrying it is prepared once per connection and found again by
/// type, and binds only what that kind needs; `$body` is compiled once for
/// each.
macro_rules! with_caller_check {
    ($caller:expr, |$check:ident| $body:expr) => {
        match $caller {
            $crate::db::models::Caller {
                user_id,
                session_id: Some(session_id),
                ..
            } => {
                let $check = $crate::db::sessions::session_standing(session_id, user_id);
                $body
            }
            $crate::db::models::Caller {
                user_id,
                session_id: None,
                issued_at,
            } => {
                let $check = $crate::db::sessions::issued_after_cut_off(user_id, issued_at);
                $body
            }
        }
    };
}
pub(crate) use with_caller_check;

/// Whether `caller`'s token is still good, in a statement of its own.
pub fn is_alive(conn: &mut DbConnection, caller: Caller) -> QueryResult<bool> {
    with_caller_check!(caller, |alive| diesel::select(alive).get_result(conn))
}

/// Session `session_id` of user `user_id` exists and is not revoked. (Each
/// `EXISTS` here selects one column: under a MultiConnection every execution
/// writes the statement's SQL out once more, so its length costs every read.)
#[diesel::dsl::auto_type]
pub(crate) fn session_standing(session_id: i32, user_id: i32) -> _ {
    exists(
        sessions::table
            .filter(sessions::id.eq(session_id))
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null())
            .select(sessions::id),
    )
}

/// User `user_id` exists and refuses no token issued at `issued_at`.
#[diesel::dsl::auto_type]
pub(crate) fn issued_after_cut_off(user_id: i32, issued_at: NaiveDateTime) -> _ {
    let before_token: before_token = before_token(issued_at);
    exists(
        users::table
            .filter(users::id.eq(user_id))
            .filter(before_token)
            .select(users::id),
    )
}

/// On a row of `users`: its cut-off, if any, is before `issued_at`.
#[diesel::dsl::auto_type]
fn before_token(issued_at: NaiveDateTime) -> _ {
    users::tokens_valid_after
        .is_null()
        .or(users::tokens_valid_after.assume_not_null().lt(issued_at))
}

/// [`with_caller_check`]'s condition for a statement on `users` itself,
/// which reads the cut-off from its own row.
fn caller_alive_on_users(caller: Caller) -> CallerCheck<users::table> {
    match caller.session_id {
        Some(session_id) => Box::new(session_standing(session_id, caller.user_id)),
        None => Box::new(before_token(caller.issued_at)),
    }
}

/// The caller's account, if their token is still good.
pub fn account(conn: &mut DbConnection, caller: Caller) -> QueryResult<Option<User>> {
    users::table
        .find(caller.user_id)
        .filter(caller_alive_on_users(caller))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// As [`account`], with the password hash: what a password check needs.
pub fn account_with_password(
    conn: &mut DbConnection,
    caller: Caller,
) -> QueryResult<Option<(User, String)>> {
    users::table
        .find(caller.user_id)
        .filter(caller_alive_on_users(caller))
        .select((User::as_select(), users::password_hash))
        .first(conn)
        .optional()
}

/// Opens a session with its first refresh token; past `max_live` live
/// sessions of the user, the oldest are revoked. The new session's id.
pub fn open(
    conn: &mut DbConnection,
    session: &NewSession<'_>,
    refresh_hash: &str,
    max_live: i64,
) -> QueryResult<i32> {
    conn.transaction(|conn| {
        let id = diesel::insert_into(sessions::table)
            .values(session)
            .returning(sessions::id)
            .get_result(conn)?;
        diesel::insert_into(refresh_tokens::table)
            .values(NewRefreshToken {
                token_hash: refresh_hash,
                session_id: id,
                expires_at: session.expires_at,
            })
            .execute(conn)?;
        // The newest live session past the cap, and all older ones, go.
        let past_cap: Option<i32> = live_of(session.user_id, session.created_at)
            .select(sessions::id)
            .order_by(sessions::id.desc())
            .offset(max_live)
            .first(conn)
            .optional()?;
        if let Some(newest_past_cap) = past_cap {
            diesel::update(
                live_of(session.user_id, session.created_at)
                    .filter(sessions::id.le(newest_past_cap)),
            )
            .set(sessions::revoked_at.eq(session.created_at))
            .execute(conn)?;
        }
        Ok(id)
    })
}

/// A user's sessions neither revoked nor expired at `now`.
#[diesel::dsl::auto_type]
fn live_of(user_id: i32, now: NaiveDateTime) -> _ {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// Spent, and replaced: the session (of this user) lives on.
    Rotated { session_id: i32, user_id: i32 },
    /// Already spent: its session, live until now, is revoked.
    Reused { session_id: i32 },
    /// Unknown, expired, or of a revoked or expired session.
    Refused,
}

/// Spends the refresh token hashed `old_hash`, if it and its session are
/// live, and stores `new_hash` in its place, moving the session's expiry to
/// `expires_at`; a token spent before revokes its session instead.
pub fn refresh(
    conn: &mut DbConnection,
    old_hash: &str,
    new_hash: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> QueryResult<Refresh> {
    conn.transaction(|conn| {
        let standing = sessions::table
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(now))
            .select(sessions::id);
        let spent: Option<i32> = diesel::update(
            refresh_tokens::table
                .find(old_hash)
                .filter(refresh_tokens::spent_at.is_null())
                .filter(refresh_tokens::expires_at.gt(now))
                .filter(refresh_tokens::session_id.eq_any(standing)),
        )
        .set(refresh_tokens::spent_at.eq(now))
        .returning(refresh_tokens::session_id)
        .get_result(conn)
        .optional()?;
        let Some(session_id) = spent else {
            return reuse(conn, old_hash, now);
        };
        let user_id: Option<i32> = diesel::update(
            sessions::table
                .find(session_id)
                .filter(sessions::revoked_at.is_null())
                .filter(sessions::expires_at.gt(now)),
        )
        .set((
            sessions::last_used_at.eq(now),
            sessions::expires_at.eq(expires_at),
        ))
        .returning(sessions::user_id)
        .get_result(conn)
        .optional()?;
        let Some(user_id) = user_id else {
            return Ok(Refresh::Refused);
        };
        diesel::insert_into(refresh_tokens::table)
            .values(NewRefreshToken {
                token_hash: new_hash,
                session_id,
                expires_at,
            })
            .execute(conn)?;
        Ok(Refresh::Rotated {
            session_id,
            user_id,
        })
    })
}

/// A token that could not be spent: if it was spent before, its session is
/// revoked (RFC 9700, 4.14.2: the thief and the victim cannot be told apart).
fn reuse(conn: &mut DbConnection, hash: &str, now: NaiveDateTime) -> QueryResult<Refresh> {
    let spent: Option<i32> = refresh_tokens::table
        .find(hash)
        .filter(refresh_tokens::spent_at.is_not_null())
        .select(refresh_tokens::session_id)
        .first(conn)
        .optional()?;
    let Some(session_id) = spent else {
        return Ok(Refresh::Refused);
    };
    let revoked = diesel::update(
        sessions::table
            .find(session_id)
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(now))
    .execute(conn)?;
    // A session already ended needs no alarm.
    Ok(if revoked > 0 {
        Refresh::Reused { session_id }
    } else {
        Refresh::Refused
    })
}

/// The user's live sessions, most recently used first.
pub fn live(
    conn: &mut DbConnection,
    user_id: i32,
    now: NaiveDateTime,
) -> QueryResult<Vec<Session>> {
    live_of(user_id, now)
        .order_by((sessions::last_used_at.desc(), sessions::id.desc()))
        .select(Session::as_select())
        .load(conn)
}

/// Revokes a session of the user not revoked yet; `false` if there is none
/// such.
pub fn revoke(
    conn: &mut DbConnection,
    user_id: i32,
    session_id: i32,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let standing = sessions::table
        .filter(sessions::id.eq(session_id))
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null());
    let revoked = diesel::update(standing)
        .set(sessions::revoked_at.eq(now))
        .execute(conn)?;
    Ok(revoked > 0)
}

/// Revokes every session of the user but `keep`, and refuses from now on
/// their tokens without a session issued until `now`.
pub fn revoke_all(
    conn: &mut DbConnection,
    user_id: i32,
    keep: Option<i32>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    conn.transaction(|conn| {
        diesel::update(users::table.find(user_id))
            .set(users::tokens_valid_after.eq(now))
            .execute(conn)?;
        // Ids start at 1, so 0 keeps none.
        let others = sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::id.ne(keep.unwrap_or(0)));
        diesel::update(others)
            .set(sessions::revoked_at.eq(now))
            .execute(conn)?;
        Ok(())
    })
}

/// Refuses the user's tokens without a session issued until `now`.
pub fn cut_off_unsessioned_tokens(
    conn: &mut DbConnection,
    user_id: i32,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(users::table.find(user_id))
        .set(users::tokens_valid_after.eq(now))
        .execute(conn)
}

/// Deletes at most `batch` rows that can no longer matter: revoked sessions,
/// sessions expired before `stale_before` (after which no access token of
/// theirs can be valid), and expired refresh tokens. The number of rows its
/// statements deleted (a session's refresh tokens go with it, uncounted).
pub fn delete_finished(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    stale_before: NaiveDateTime,
    batch: i64,
) -> QueryResult<usize> {
    let revoked: Vec<i32> = sessions::table
        .filter(sessions::revoked_at.is_not_null())
        .select(sessions::id)
        .limit(batch)
        .load(conn)?;
    let expired: Vec<i32> = sessions::table
        .filter(sessions::expires_at.lt(stale_before))
        .select(sessions::id)
        .limit(batch)
        .load(conn)?;
    let tokens: Vec<String> = refresh_tokens::table
        .filter(refresh_tokens::expires_at.lt(now))
        .select(refresh_tokens::token_hash)
        .limit(batch)
        .load(conn)?;
    let mut deleted = 0;
    for ids in [revoked, expired].iter().filter(|ids| !ids.is_empty()) {
        deleted +=
            diesel::delete(sessions::table.filter(sessions::id.eq_any(ids))).execute(conn)?;
    }
    if !tokens.is_empty() {
        deleted += diesel::delete(
            refresh_tokens::table.filter(refresh_tokens::token_hash.eq_any(&tokens)),
        )
        .execute(conn)?;
    }
    Ok(deleted)
}
