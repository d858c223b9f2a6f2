//! Sessions: a login opens one, a refresh token (rotated on every use, its
//! reuse revoking the session) keeps it going, logout and revocation end it.
//! Access tokens name their session (`sid`), so ending it ends them too.

use std::sync::Arc;

use chrono::{NaiveDateTime, SubsecRound, TimeDelta};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::auth::TokenService;
use crate::clock::Clock;
use crate::db::models::{Caller, NewSession, Session, User};
use crate::db::sessions::Refresh;
use crate::db::{self, DbPool};
use crate::error::AppError;
use crate::store;

/// Live sessions a user may have; a login past it revokes the oldest.
pub const MAX_LIVE_SESSIONS: i64 = 100;
/// How much of a client's `User-Agent` a session keeps.
const MAX_USER_AGENT_CHARS: usize = 256;
/// Random bytes in a refresh token (hex-encoded, twice as many characters).
const REFRESH_TOKEN_BYTES: usize = 32;

/// What a login or a refresh hands out.
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: SecretString,
    /// The access token's lifetime, in seconds.
    pub expires_in: i64,
}

/// Where a login came from, as `GET /sessions` shows it.
pub struct Origin {
    pub user_agent: Option<String>,
    pub client_addr: Option<String>,
}

pub struct SessionService {
    tokens: Arc<TokenService>,
    clock: Arc<dyn Clock>,
    refresh_ttl: TimeDelta,
}

impl SessionService {
    pub fn new(tokens: Arc<TokenService>, clock: Arc<dyn Clock>, refresh_ttl: TimeDelta) -> Self {
        Self {
            tokens,
            clock,
            refresh_ttl,
        }
    }

    /// Now, as the tables store it (microseconds).
    fn now(&self) -> NaiveDateTime {
        self.clock.now().naive_utc().trunc_subsecs(6)
    }

    /// Opens a session for `user_id`, who has just proved their password.
    pub async fn open(
        &self,
        pool: &DbPool,
        user_id: i32,
        origin: Origin,
    ) -> Result<TokenPair, AppError> {
        let (refresh_token, refresh_hash) = new_refresh_token()?;
        let now = self.now();
        let expires_at = now + self.refresh_ttl;
        let session_id = store::run(pool, move |conn| {
            let user_agent = origin
                .user_agent
                .map(|agent| agent.chars().take(MAX_USER_AGENT_CHARS).collect::<String>());
            let session = NewSession {
                user_id,
                created_at: now,
                last_used_at: now,
                expires_at,
                user_agent: user_agent.as_deref(),
                client_addr: origin.client_addr.as_deref(),
            };
            Ok(db::sessions::open(
                conn,
                &session,
                &refresh_hash,
                MAX_LIVE_SESSIONS,
            )?)
        })
        .await?;
        self.pair(user_id, session_id, refresh_token)
    }

    /// Trades a refresh token for a new pair. The token is spent; a spent
    /// one presented again revokes its session.
    pub async fn refresh(
        &self,
        pool: &DbPool,
        presented: SecretString,
    ) -> Result<TokenPair, AppError> {
        let presented_hash = hash_refresh_token(&presented);
        let (refresh_token, refresh_hash) = new_refresh_token()?;
        let now = self.now();
        let expires_at = now + self.refresh_ttl;
        let outcome = store::run(pool, move |conn| {
            Ok(db::sessions::refresh(
                conn,
                &presented_hash,
                &refresh_hash,
                now,
                expires_at,
            )?)
        })
        .await?;
        match outcome {
            Refresh::Rotated {
                session_id,
                user_id,
            } => self.pair(user_id, session_id, refresh_token),
            Refresh::Reused { session_id } => {
                log::warn!(
                    "a spent refresh token of session {session_id} was presented again: \
                     the session is revoked"
                );
                Err(AppError::invalid_token())
            }
            Refresh::Refused => {
                log::debug!("refresh refused: unknown, expired or revoked");
                Err(AppError::invalid_token())
            }
        }
    }

    fn pair(
        &self,
        user_id: i32,
        session_id: i32,
        refresh_token: SecretString,
    ) -> Result<TokenPair, AppError> {
        Ok(TokenPair {
            access_token: self.tokens.issue(user_id, session_id)?,
            refresh_token,
            expires_in: self.tokens.ttl().num_seconds(),
        })
    }

    /// Ends the caller's session. A token without one (the course app's)
    /// has nothing narrower to end: every such token of the account issued
    /// until now is refused instead.
    pub async fn log_out(&self, pool: &DbPool, caller: Caller) -> Result<(), AppError> {
        let now = self.now();
        store::run(pool, move |conn| {
            let ended = match caller.session_id {
                Some(session_id) => db::sessions::revoke(conn, caller.user_id, session_id, now)?,
                None => {
                    store::require_account(conn, caller)?;
                    db::sessions::cut_off_unsessioned_tokens(conn, caller.user_id, now)? > 0
                }
            };
            if ended {
                Ok(())
            } else {
                Err(store::caller_refused(caller))
            }
        })
        .await
    }

    /// Ends every session of the caller's but, with `keep_current`, the
    /// caller's own, and refuses every token without a session issued until
    /// now.
    pub async fn log_out_everywhere(
        &self,
        pool: &DbPool,
        caller: Caller,
        keep_current: bool,
    ) -> Result<(), AppError> {
        let now = self.now();
        let keep = caller.session_id.filter(|_| keep_current);
        store::run_as(pool, caller, move |conn, account| {
            Ok(db::sessions::revoke_all(conn, account.id, keep, now)?)
        })
        .await
    }

    /// Stores the caller's new password hash; every other session of theirs
    /// ends, and every token without a session issued until now is refused.
    pub async fn change_password(
        &self,
        pool: &DbPool,
        caller: Caller,
        new_hash: String,
    ) -> Result<(), AppError> {
        let now = self.now();
        store::run_as(pool, caller, move |conn, account| {
            Ok(db::users::change_password(
                conn,
                account.id,
                &new_hash,
                caller.session_id,
                now,
            )?)
        })
        .await
    }

    /// The caller's live sessions, most recently used first.
    pub async fn list(&self, pool: &DbPool, caller: Caller) -> Result<Vec<Session>, AppError> {
        let now = self.now();
        store::run_as(pool, caller, move |conn, account| {
            Ok(db::sessions::live(conn, account.id, now)?)
        })
        .await
    }

    /// Ends one live session of the caller's; `false` if there is none such.
    pub async fn revoke(
        &self,
        pool: &DbPool,
        caller: Caller,
        session_id: i32,
    ) -> Result<bool, AppError> {
        let now = self.now();
        store::run_as(pool, caller, move |conn, account: User| {
            Ok(db::sessions::revoke(conn, account.id, session_id, now)?)
        })
        .await
    }

    /// Deletes, in batches of `batch`, what can no longer matter: revoked
    /// sessions, sessions expired longer ago than an access token lives, and
    /// expired refresh tokens. The number of rows deleted.
    pub async fn delete_finished(&self, pool: &DbPool, batch: i64) -> Result<usize, AppError> {
        let now = self.now();
        let stale_before = now - self.tokens.ttl();
        let mut deleted = 0;
        loop {
            let round = store::run(pool, move |conn| {
                Ok(db::sessions::delete_finished(
                    conn,
                    now,
                    stale_before,
                    batch,
                )?)
            })
            .await?;
            deleted += round;
            // Each round deletes up to `batch` rows of each kind: fewer means
            // nothing is left (or only what became finished meanwhile).
            if round < usize::try_from(batch).unwrap_or(usize::MAX) {
                return Ok(deleted);
            }
        }
    }
}

/// A new refresh token and the hash it is stored under.
fn new_refresh_token() -> Result<(SecretString, String), AppError> {
    let mut bytes = [0u8; REFRESH_TOKEN_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| AppError::Internal(format!("no randomness for a refresh token: {e}")))?;
    let token = SecretString::from(hex(&bytes));
    secrecy::zeroize::Zeroize::zeroize(&mut bytes);
    let hash = hash_refresh_token(&token);
    Ok((token, hash))
}

/// What a refresh token is stored and looked up by. A plain SHA-256 is
/// enough: the token is 256 random bits, not a password to be guessed.
fn hash_refresh_token(token: &SecretString) -> String {
    hex(&Sha256::digest(token.expose_secret().as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_random_and_stored_only_as_their_hash() {
        let (first, first_hash) = new_refresh_token().unwrap();
        let (second, _) = new_refresh_token().unwrap();

        assert_eq!(first.expose_secret().len(), 2 * REFRESH_TOKEN_BYTES);
        assert_ne!(first.expose_secret(), second.expose_secret());
        assert_eq!(first_hash, hash_refresh_token(&first));
        assert_ne!(first_hash, first.expose_secret());
        assert!(!format!("{first:?}").contains(first.expose_secret()));
    }
}
