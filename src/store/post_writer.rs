//! Group commit for new posts on PostgreSQL: posts that arrive while others
//! are being written wait, and are then written together, in one statement
//! and one transaction.
//!
//! Each commit waits for PostgreSQL to flush its WAL, and each statement is
//! parsed and planned, so one insert per request bounds `POST /posts` by
//! the database's commit rate (docs/performance.md has the figures). No
//! request waits for a batch to fill: a post is written as soon as one of
//! at most [`PostWriter::new`]'s `concurrent_batches` writes is free,
//! together with whatever queued while all were busy. There is no writer
//! task: the requests whose posts are queued compete for the writes' turns,
//! and the one that gets a turn writes the oldest posts queued, its own or
//! not.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use actix_rt::{ArbiterHandle, System};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::run_until;
use crate::db::models::{Caller, NewPost, PostChanges, PostWithVotes};
use crate::db::{self, DbPool};
use crate::error::AppError;

/// The most posts one statement writes.
const MAX_BATCH: usize = 64;

/// A post to write, owned: it may wait in the queue for another request to
/// write it.
#[derive(Debug, Clone)]
pub struct PostToWrite {
    pub title: String,
    pub content: String,
    pub published: bool,
    pub created_at: chrono::NaiveDateTime,
    /// Who writes it: the post is theirs, if their token is still good.
    pub author: Caller,
}

impl PostToWrite {
    fn as_new_post(&self) -> NewPost<'_> {
        NewPost {
            fields: PostChanges {
                title: &self.title,
                content: &self.content,
                published: self.published,
            },
            created_at: self.created_at,
            owner_id: self.author.user_id,
            author: self.author,
        }
    }
}

/// What a request is told of its post: written, with its owner, or `None`
/// when its author's token is no longer good.
type Outcome = Result<Option<PostWithVotes>, AppError>;

struct Queued {
    /// Which request's: it takes its post back if it stops waiting first.
    ticket: u64,
    /// When its request must have had a connection.
    deadline: Instant,
    post: PostToWrite,
    reply: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct Queue {
    next_ticket: u64,
    posts: Vec<Queued>,
}

/// Writes new posts, gathered into batches where the backend gains by it.
pub struct PostWriter {
    /// Off for SQLite: in process, a commit costs no round trip, and its
    /// writes take one lock in turn however they are grouped.
    batching: bool,
    queue: Mutex<Queue>,
    /// One permit per write that may run at once.
    turns: Arc<Semaphore>,
    /// Where batches run: the system's arbiter, which outlives the workers,
    /// so a worker stopping cannot drop a batch carrying another worker's
    /// posts.
    runner: Option<ArbiterHandle>,
}

impl PostWriter {
    /// Call it inside the actix system that will serve the requests.
    pub fn new(batching: bool, concurrent_batches: usize) -> Self {
        Self {
            batching,
            queue: Mutex::default(),
            turns: Arc::new(Semaphore::new(concurrent_batches.max(1))),
            runner: System::try_current().map(|system| system.arbiter().clone()),
        }
    }

    /// Writes `post` and reads it back with its owner; `None` when the owner
    /// no longer exists.
    pub async fn write(&self, pool: &DbPool, post: PostToWrite) -> Outcome {
        // One deadline for the whole way to a connection: queued, then
        // waiting for a turn and a checkout with the batch.
        let deadline = pool.deadline();
        if !self.batching {
            return run_until(pool, deadline, move |conn| {
                let mut written = db::posts::insert_all(conn, &[post.as_new_post()])?;
                Ok(written.pop().flatten())
            })
            .await;
        }
        let (reply, mut outcome) = oneshot::channel();
        let ticket = self.enqueue(post, deadline, reply);
        // A request that stops waiting (its client gone) takes its post
        // back, unless a batch has it already.
        let _unless_taken = Unqueue {
            writer: self,
            ticket,
        };
        loop {
            tokio::select! {
                // A reply wins over a turn: the post is written.
                biased;
                written = &mut outcome => return written.unwrap_or_else(|_| Err(lost())),
                Ok(turn) = self.turns.clone().acquire_owned() => {
                    let batch = self.take_batch();
                    if batch.is_empty() {
                        // Ours is in a batch being written: its reply will come.
                        break;
                    }
                    self.spawn(write_batch(pool.clone(), batch, turn));
                }
                () = tokio::time::sleep_until(deadline.into()) => {
                    if self.unqueue(ticket) {
                        return Err(AppError::Unavailable(
                            "a new post waited past the pool timeout to be written".into(),
                        ));
                    }
                    // Taken meanwhile: the batch's own wait is bounded.
                    break;
                }
            }
        }
        outcome.await.unwrap_or_else(|_| Err(lost()))
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        // The queue is plain data, consistent after any panic.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn enqueue(
        &self,
        post: PostToWrite,
        deadline: Instant,
        reply: oneshot::Sender<Outcome>,
    ) -> u64 {
        let mut queue = self.queue();
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.posts.push(Queued {
            ticket,
            deadline,
            post,
            reply,
        });
        ticket
    }

    /// Takes the post of `ticket` out of the queue; false if a batch has it.
    fn unqueue(&self, ticket: u64) -> bool {
        let mut queue = self.queue();
        let before = queue.posts.len();
        queue.posts.retain(|queued| queued.ticket != ticket);
        queue.posts.len() < before
    }

    /// The oldest queued posts, at most [`MAX_BATCH`].
    fn take_batch(&self) -> Vec<Queued> {
        let mut queue = self.queue();
        let end = queue.posts.len().min(MAX_BATCH);
        queue.posts.drain(..end).collect()
    }

    /// Runs a batch apart from the request that took it, so the request's
    /// end (its client gone) does not end the other requests' posts.
    fn spawn(&self, batch: impl Future<Output = ()> + Send + 'static) {
        match &self.runner {
            Some(runner) => {
                // A stopped system drops the batch: its requests get 503.
                runner.spawn(batch);
            }
            None => drop(actix_web::rt::spawn(batch)),
        }
    }
}

/// Takes a request's post out of the queue when the request stops waiting.
struct Unqueue<'a> {
    writer: &'a PostWriter,
    ticket: u64,
}

impl Drop for Unqueue<'_> {
    fn drop(&mut self) {
        self.writer.unqueue(self.ticket);
    }
}

/// Writes `batch` in one statement and tells each request its outcome.
async fn write_batch(pool: DbPool, batch: Vec<Queued>, turn: OwnedSemaphorePermit) {
    // The oldest request's deadline is the batch's: none of its requests
    // waits past its own.
    let Some(deadline) = batch.iter().map(|queued| queued.deadline).min() else {
        return;
    };
    let (posts, replies): (Vec<PostToWrite>, Vec<_>) = batch
        .into_iter()
        .map(|queued| (queued.post, queued.reply))
        .unzip();
    let size = posts.len();
    let written = run_until(&pool, deadline, move |conn| {
        let new_posts: Vec<NewPost<'_>> = posts.iter().map(PostToWrite::as_new_post).collect();
        Ok(db::posts::insert_all(conn, &new_posts)?)
    })
    .await;
    drop(turn);
    match written {
        Ok(written) => {
            crate::metrics::post_batch_written(size);
            for (reply, post) in replies.into_iter().zip(written) {
                // A request gone meanwhile has no one to tell.
                let _ = reply.send(Ok(post));
            }
        }
        Err(error) => {
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

/// A request whose post's batch was dropped unwritten (the server stopping).
fn lost() -> AppError {
    AppError::Unavailable("the batch writing this post was dropped".into())
}
