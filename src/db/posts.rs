//! Queries on `posts`, each post read with its owner and vote count in one
//! statement.

use diesel::dsl::count;
use diesel::prelude::*;

use super::DbConnection;
use super::models::{NewPost, Post, PostChanges, PostWithVotes, USER_COLUMNS};
use super::pool::lower;
use crate::schema::{posts, users, votes};

// Grouping by both primary keys determines every selected column; Diesel needs
// to be told that this holds across the two tables.
diesel::allow_columns_to_appear_in_same_group_by_clause!(
    posts::id,
    posts::title,
    posts::content,
    posts::published,
    posts::created_at,
    posts::owner_id,
    users::id,
    users::email,
    users::created_at,
);

/// Posts joined to their owners and left-joined to votes, grouped per post.
macro_rules! posts_with_votes {
    () => {
        posts::table
            .inner_join(users::table)
            .left_join(votes::table.on(votes::post_id.eq(posts::id)))
            .group_by((posts::id, users::id))
            .select((
                posts::all_columns,
                USER_COLUMNS,
                count(votes::user_id.nullable()),
            ))
    };
}

/// One page of posts, newest first; `search` is a literal, case-insensitive
/// substring of the title.
pub fn list(
    conn: &mut DbConnection,
    limit: i64,
    skip: i64,
    search: Option<&str>,
) -> QueryResult<Vec<PostWithVotes>> {
    let mut query = posts_with_votes!()
        .order_by((posts::created_at.desc(), posts::id.desc()))
        .limit(limit)
        .offset(skip)
        .into_boxed();
    if let Some(search) = search.filter(|s| !s.is_empty()) {
        // Both sides folded by the same lower(); escaping survives it.
        let pattern = format!("%{}%", escape_like(search));
        query = query.filter(lower(posts::title).like(lower(pattern)).escape('\\'));
    }
    query.load(conn)
}

pub fn find_with_votes(conn: &mut DbConnection, id: i32) -> QueryResult<Option<PostWithVotes>> {
    posts_with_votes!()
        .filter(posts::id.eq(id))
        .first(conn)
        .optional()
}

pub fn find(conn: &mut DbConnection, id: i32) -> QueryResult<Option<Post>> {
    posts::table.find(id).first(conn).optional()
}

pub fn exists(conn: &mut DbConnection, id: i32) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(posts::table.find(id))).get_result(conn)
}

pub fn insert(conn: &mut DbConnection, new_post: &NewPost<'_>) -> QueryResult<Post> {
    diesel::insert_into(posts::table)
        .values(new_post)
        .returning(posts::all_columns)
        .get_result(conn)
}

/// Replaces what an owner may change; `false` when the post is gone.
pub fn update(conn: &mut DbConnection, id: i32, changes: &PostChanges<'_>) -> QueryResult<bool> {
    Ok(diesel::update(posts::table.find(id))
        .set(changes)
        .execute(conn)?
        > 0)
}

/// Deletes a post (its votes go with it); `false` when there was none.
pub fn delete(conn: &mut DbConnection, id: i32) -> QueryResult<bool> {
    Ok(diesel::delete(posts::table.find(id)).execute(conn)? > 0)
}

/// Makes `%`, `_` and `\` match themselves under `LIKE ... ESCAPE '\'`.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::escape_like;

    #[test]
    fn like_wildcards_and_the_escape_character_are_escaped() {
        assert_eq!(escape_like(r"50%_off\now"), r"50\%\_off\\now");
        assert_eq!(escape_like("plain 'quoted'"), "plain 'quoted'");
    }
}
