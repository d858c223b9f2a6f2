//! Queries on `posts`. A post is read with its owner, looked up for the rows
//! of the page only, and its vote count, which triggers on `votes` keep in
//! `posts.vote_count`: pages walk `posts_created_at_id_idx` newest first and
//! stop after `skip + limit` rows.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Timestamp};

use super::DbConnection;
use super::models::{Caller, NewPost, Post, PostChanges, PostWithVotes, User};
use super::pool::{MultiBackend, lower};
use super::sessions::with_caller_check;
use crate::schema::{posts, users};

// The owner is a correlated subquery rather than a join: with `posts` alone
// in FROM, both planners walk the (created_at, id) index and stop at the
// page's end. (Joined to `users`, SQLite starts from the smaller table and
// sorts every post.) It runs for a returned row only.

/// The email of the post's owner, by primary key.
#[diesel::dsl::auto_type]
fn owner_email() -> _ {
    users::table
        .filter(users::id.eq(posts::owner_id))
        .select(users::email)
        .single_value()
        .assume_not_null()
}

/// When the post's owner signed up, by primary key.
#[diesel::dsl::auto_type]
fn owner_created_at() -> _ {
    users::table
        .filter(users::id.eq(posts::owner_id))
        .select(users::created_at)
        .single_value()
        .assume_not_null()
}

/// Posts with their owners and vote counts, in [`PostWithVotes`]'s shape.
#[diesel::dsl::auto_type]
fn posts_with_votes() -> _ {
    let post: diesel::dsl::AsSelect<Post, MultiBackend> = Post::as_select();
    let email: owner_email = owner_email();
    let signed_up: owner_created_at = owner_created_at();
    posts::table.select((post, (posts::owner_id, email, signed_up), posts::vote_count))
}

/// Searches shorter than this (in characters) have no trigram to look up.
const MIN_INDEXED_SEARCH_CHARS: usize = 3;

/// Every post, newest first: the order of `posts_created_at_id_idx`.
#[diesel::dsl::auto_type]
fn newest_first() -> _ {
    posts_with_votes().order_by((posts::created_at.desc(), posts::id.desc()))
}

type NewestFirstBoxed<'a> = diesel::dsl::IntoBoxed<'a, newest_first, MultiBackend>;

/// One page of posts, newest first; `search` is a literal, case-insensitive
/// substring of the title. Empty unless `caller`'s token is still good.
///
/// PostgreSQL makes the caller check in WHERE a one-time filter: a refused
/// caller's read reads no row. SQLite evaluates it once too, but then walks
/// the whole index finding every row filtered out (241 ms at 100,000 posts),
/// so there the check goes in the LIMIT instead ([`CallerGatedPage`]).
/// Queries without a search keep a static type: Diesel finds their prepared
/// statement by type, without writing their SQL again.
pub fn list(
    conn: &mut DbConnection,
    caller: Caller,
    limit: i64,
    skip: i64,
    search: Option<&str>,
) -> QueryResult<Vec<PostWithVotes>> {
    let search = search.filter(|s| !s.is_empty());
    if let DbConnection::Sqlite(_) = conn {
        return with_caller_check!(caller, |alive| match search {
            None => CallerGatedPage {
                query: newest_first(),
                caller: alive,
                limit,
                skip,
            }
            .load(conn),
            Some(search) => CallerGatedPage {
                query: titled(newest_first().into_boxed(), search, true),
                caller: alive,
                limit,
                skip,
            }
            .load(conn),
        });
    }
    with_caller_check!(caller, |alive| {
        let checked = newest_first().filter(alive);
        match search {
            None if skip == 0 => WithLiteralLimit {
                query: checked,
                limit,
            }
            .load(conn),
            None => checked.limit(limit).offset(skip).load(conn),
            Some(search) => titled(checked.into_boxed(), search, false)
                .limit(limit)
                .offset(skip)
                .load(conn),
        }
    })
}

/// `query` narrowed to the posts whose title contains `search`.
fn titled<'a>(query: NewestFirstBoxed<'a>, search: &str, on_sqlite: bool) -> NewestFirstBoxed<'a> {
    // The exact test, both sides folded by the same lower(); escaping
    // survives it. On PostgreSQL the trigram index on lower(title) serves
    // this LIKE itself.
    let pattern = format!("%{}%", escape_like(search));
    let query = query.filter(lower(posts::title).like(lower(pattern)).escape('\\'));
    // SQLite's index is the FTS5 table: it narrows the candidates, the LIKE
    // above keeps the answer exact.
    if on_sqlite && search.chars().count() >= MIN_INDEXED_SEARCH_CHARS {
        return query.filter(
            sql::<Bool>("posts.id IN (SELECT rowid FROM posts_search WHERE posts_search MATCH ")
                .bind::<Text, _>(fts_phrase(search))
                .sql(")"),
        );
    }
    query
}

/// `query` paged by `LIMIT CASE WHEN <caller check> THEN limit ELSE 0 END
/// OFFSET skip`, for SQLite: it computes the LIMIT once, before the scan,
/// and a LIMIT of 0 skips the scan, so a refused caller's read reads no row
/// and a good caller's pays the check once.
#[derive(QueryId)]
struct CallerGatedPage<Q, C> {
    query: Q,
    caller: C,
    limit: i64,
    skip: i64,
}

impl<Q: Query, C> Query for CallerGatedPage<Q, C> {
    type SqlType = Q::SqlType;
}

impl<Q, C, DB> QueryFragment<DB> for CallerGatedPage<Q, C>
where
    Q: QueryFragment<DB>,
    C: QueryFragment<DB>,
    DB: diesel::backend::Backend + diesel::sql_types::HasSqlType<BigInt>,
    i64: diesel::serialize::ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        out.push_sql(" LIMIT CASE WHEN ");
        self.caller.walk_ast(out.reborrow())?;
        out.push_sql(" THEN ");
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        out.push_sql(" ELSE 0 END OFFSET ");
        out.push_bind_param::<BigInt, _>(&self.skip)?;
        Ok(())
    }
}

impl<Q, C, Conn> RunQueryDsl<Conn> for CallerGatedPage<Q, C> {}

/// `query` with its `LIMIT` written into the SQL rather than bound, for the
/// first page of the plain list: the statement most clients send most.
///
/// PostgreSQL plans a statement whose `LIMIT` (or `OFFSET`) is a parameter
/// again on every execution: its one generic plan has to assume a tenth of
/// the table is wanted, so the plan for the values at hand always wins. With
/// the caller as its only parameter, the statement gets a generic plan after
/// five executions and keeps it (docs/performance.md has what it buys). Each
/// distinct text is a statement of its own in each connection's cache, so
/// only the page size is written out, an integer the routes bound to 0..=100:
/// at most 101 texts. Later pages and searches keep their values bound, and a
/// custom plan.
struct WithLiteralLimit<Q> {
    query: Q,
    limit: i64,
}

impl<Q: Query> Query for WithLiteralLimit<Q> {
    type SqlType = Q::SqlType;
}

// Not a static id: Diesel then caches the prepared statement by its text,
// which carries the limit.
impl<Q> QueryId for WithLiteralLimit<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, DB> QueryFragment<DB> for WithLiteralLimit<Q>
where
    Q: QueryFragment<DB>,
    DB: diesel::backend::Backend,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        out.push_sql(&format!(" LIMIT {}", self.limit));
        Ok(())
    }
}

impl<Q, Conn> RunQueryDsl<Conn> for WithLiteralLimit<Q> {}

/// `text` as one FTS5 phrase: lower-cased as the index was (the connection's
/// Unicode lower() is Rust's), in double quotes, inner quotes doubled.
fn fts_phrase(text: &str) -> String {
    format!("\"{}\"", text.to_lowercase().replace('"', "\"\""))
}

/// Post `id`, if it exists and `caller`'s token is still good.
pub fn find_with_votes(
    conn: &mut DbConnection,
    id: i32,
    caller: Caller,
) -> QueryResult<Option<PostWithVotes>> {
    with_caller_check!(caller, |alive| posts_with_votes()
        .filter(posts::id.eq(id))
        .filter(alive)
        .first(conn)
        .optional())
}

pub fn exists(conn: &mut DbConnection, id: i32) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(posts::table.find(id))).get_result(conn)
}

/// Who owns a post, if it exists.
pub fn owner_of(conn: &mut DbConnection, id: i32) -> QueryResult<Option<i32>> {
    posts::table
        .find(id)
        .select(posts::owner_id)
        .first(conn)
        .optional()
}

/// Inserts posts and reads each back with its owner (no votes yet), in the
/// order given; `None` for a post whose author's token is no longer good
/// (the account deleted, the session revoked).
///
/// On PostgreSQL all of them are one statement, whatever their number (see
/// [`crate::store::post_writer`], which gathers them): the rows of the
/// arrays whose author's token is still good are inserted, then joined to
/// their owners, in a CTE.
/// An owner deleted while the statement runs fails the foreign key, and the
/// whole statement with it: the posts are then written one by one, in one
/// transaction, to tell which. SQLite, in process, checks each author and
/// then inserts.
pub fn insert_all(
    conn: &mut DbConnection,
    new_posts: &[NewPost<'_>],
) -> QueryResult<Vec<Option<PostWithVotes>>> {
    match conn {
        DbConnection::Postgres(pg) => match insert_returning_owners(pg, new_posts) {
            Err(error) if is_foreign_key_violation(&error) && new_posts.len() > 1 => {
                pg.transaction(|pg| {
                    new_posts
                        .iter()
                        .map(|new_post| {
                            // A savepoint each: a failed insert leaves the
                            // others standing.
                            pg.transaction(|pg| {
                                insert_returning_owners(pg, std::slice::from_ref(new_post))
                            })
                            .map(|mut written| written.pop().flatten())
                            .or_else(none_if_owner_gone)
                        })
                        .collect()
                })
            }
            Err(error) => none_if_owner_gone(error).map(|none| vec![none; new_posts.len()]),
            written => written,
        },
        DbConnection::Sqlite(_) => new_posts
            .iter()
            .map(
                |new_post| match super::sessions::account(conn, new_post.author)? {
                    None => Ok(None),
                    Some(owner) => diesel::insert_into(posts::table)
                        .values(new_post)
                        .returning(Post::columns())
                        .get_result(conn)
                        .map(|post| {
                            Some(PostWithVotes {
                                post,
                                owner,
                                votes: 0,
                            })
                        })
                        .or_else(none_if_owner_gone),
                },
            )
            .collect(),
    }
}

/// The only foreign key of posts is the owner's.
fn is_foreign_key_violation(error: &diesel::result::Error) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ForeignKeyViolation,
            _,
        )
    )
}

/// `None` when `error` says the owner was deleted meanwhile.
fn none_if_owner_gone<T>(error: diesel::result::Error) -> QueryResult<Option<T>> {
    if is_foreign_key_violation(&error) {
        Ok(None)
    } else {
        Err(error)
    }
}

/// A post as [`insert_returning_owners`] reads it back.
#[derive(QueryableByName)]
struct InsertedPost {
    #[diesel(sql_type = Integer)]
    id: i32,
    #[diesel(sql_type = Text)]
    title: String,
    #[diesel(sql_type = Text)]
    content: String,
    #[diesel(sql_type = Bool)]
    published: bool,
    #[diesel(sql_type = Timestamp)]
    created_at: chrono::NaiveDateTime,
    #[diesel(sql_type = Integer)]
    owner_id: i32,
    #[diesel(sql_type = Text)]
    owner_email: String,
    #[diesel(sql_type = Timestamp)]
    owner_created_at: chrono::NaiveDateTime,
}

impl InsertedPost {
    /// Whether this row is what `new_post` asked for.
    fn is(&self, new_post: &NewPost<'_>) -> bool {
        self.title == new_post.fields.title
            && self.content == new_post.fields.content
            && self.published == new_post.fields.published
            && self.created_at == new_post.created_at
            && self.owner_id == new_post.owner_id
    }

    fn into_post(self) -> PostWithVotes {
        PostWithVotes {
            post: Post {
                id: self.id,
                title: self.title,
                content: self.content,
                published: self.published,
                created_at: self.created_at,
                owner_id: self.owner_id,
            },
            owner: User {
                id: self.owner_id,
                email: self.owner_email,
                created_at: self.owner_created_at,
            },
            votes: 0,
        }
    }
}

/// Diesel's DSL has no CTE: the statement is written out, its values bound
/// as one array per column. Each row's author is checked as
/// [`with_caller_check`] checks a caller.
fn insert_returning_owners(
    pg: &mut diesel::PgConnection,
    new_posts: &[NewPost<'_>],
) -> QueryResult<Vec<Option<PostWithVotes>>> {
    let rows: Vec<InsertedPost> = diesel::sql_query(
        "WITH inserted AS ( \
             INSERT INTO posts (title, content, published, created_at, owner_id) \
             SELECT new.title, new.content, new.published, new.created_at, new.owner_id \
             FROM unnest($1, $2, $3, $4, $5, $6, $7) \
                  AS new (title, content, published, created_at, owner_id, \
                          session_id, issued_at) \
             WHERE CASE WHEN new.session_id IS NULL \
                 THEN EXISTS (SELECT 1 FROM users WHERE users.id = new.owner_id \
                     AND (users.tokens_valid_after IS NULL \
                          OR users.tokens_valid_after < new.issued_at)) \
                 ELSE EXISTS (SELECT 1 FROM sessions WHERE sessions.id = new.session_id \
                     AND sessions.user_id = new.owner_id AND sessions.revoked_at IS NULL) \
                 END \
             RETURNING id, title, content, published, created_at, owner_id) \
         SELECT inserted.*, users.email AS owner_email, users.created_at AS owner_created_at \
         FROM inserted JOIN users ON users.id = inserted.owner_id",
    )
    .bind::<Array<Text>, _>(new_posts.iter().map(|p| p.fields.title).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(
        new_posts
            .iter()
            .map(|p| p.fields.content)
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Bool>, _>(
        new_posts
            .iter()
            .map(|p| p.fields.published)
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Timestamp>, _>(new_posts.iter().map(|p| p.created_at).collect::<Vec<_>>())
    .bind::<Array<Integer>, _>(new_posts.iter().map(|p| p.owner_id).collect::<Vec<_>>())
    .bind::<Array<Nullable<Integer>>, _>(
        new_posts
            .iter()
            .map(|p| p.author.session_id)
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Timestamp>, _>(
        new_posts
            .iter()
            .map(|p| p.author.issued_at)
            .collect::<Vec<_>>(),
    )
    .load(pg)?;
    // Rows come back in no promised order: each is matched to the first post
    // it equals. Posts equal in every field are interchangeable. A post with
    // no row had no owner.
    let mut written: Vec<Option<PostWithVotes>> = vec![None; new_posts.len()];
    for row in rows {
        let slot = new_posts
            .iter()
            .zip(written.iter())
            .position(|(new_post, written)| written.is_none() && row.is(new_post));
        if let Some(slot) = slot {
            written[slot] = Some(row.into_post());
        }
    }
    Ok(written)
}

/// Replaces what an owner may change, in one statement that checks the
/// owner too and reads back the vote count; `None` when no post `id` of
/// `owner_id` exists.
pub fn update_owned(
    conn: &mut DbConnection,
    id: i32,
    owner_id: i32,
    changes: &PostChanges<'_>,
) -> QueryResult<Option<(Post, i64)>> {
    diesel::update(posts::table.find(id).filter(posts::owner_id.eq(owner_id)))
        .set(changes)
        .returning((Post::columns(), posts::vote_count))
        .get_result(conn)
        .optional()
}

/// Deletes a post of `owner_id` (its votes go with it); `false` when there
/// was no such post of theirs.
pub fn delete_owned(conn: &mut DbConnection, id: i32, owner_id: i32) -> QueryResult<bool> {
    let deleted =
        diesel::delete(posts::table.find(id).filter(posts::owner_id.eq(owner_id))).execute(conn)?;
    Ok(deleted > 0)
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
