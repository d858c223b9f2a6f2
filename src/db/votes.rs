//! Queries on `votes`.

use diesel::prelude::*;

use super::DbConnection;
use super::models::Vote;
use crate::schema::votes;

/// Adds a vote. The database decides races: a second vote is a unique
/// violation, a vote on a missing post a foreign-key violation.
pub fn insert(conn: &mut DbConnection, vote: Vote) -> QueryResult<()> {
    diesel::insert_into(votes::table)
        .values(vote)
        .execute(conn)
        .map(drop)
}

/// Removes a vote; `false` when there was none.
pub fn delete(conn: &mut DbConnection, vote: Vote) -> QueryResult<bool> {
    let deleted = diesel::delete(votes::table.find((vote.user_id, vote.post_id))).execute(conn)?;
    Ok(deleted > 0)
}
