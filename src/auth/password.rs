//! bcrypt hashing and verification, always on the blocking thread pool.

use actix_web::web;

use crate::error::AppError;

/// Longest password bcrypt can use in full; longer ones are refused, never
/// silently truncated.
pub const MAX_PASSWORD_BYTES: usize = 72;
pub const MIN_PASSWORD_BYTES: usize = 8;

pub struct PasswordHasher {
    cost: u32,
    /// Verified against when the email is unknown, so that answer takes as
    /// long as a wrong password does.
    dummy_hash: String,
}

impl PasswordHasher {
    /// Computes the dummy hash: call it off the async executor.
    pub fn new(cost: u32) -> Result<Self, bcrypt::BcryptError> {
        let dummy_hash = bcrypt::non_truncating_hash("postapi timing-equaliser password", cost)?;
        Ok(Self { cost, dummy_hash })
    }

    pub async fn hash(&self, password: String) -> Result<String, AppError> {
        let cost = self.cost;
        web::block(move || bcrypt::non_truncating_hash(password, cost))
            .await?
            .map_err(|e| AppError::Internal(format!("bcrypt hash: {e}")))
    }

    /// Checks `password` against `stored_hash`, or against the dummy hash when
    /// there is no such user (and then answers `false` whatever happens).
    pub async fn verify(
        &self,
        password: String,
        stored_hash: Option<String>,
    ) -> Result<bool, AppError> {
        let user_exists = stored_hash.is_some();
        let hash = stored_hash.unwrap_or_else(|| self.dummy_hash.clone());
        // A password over 72 bytes cannot match: bcrypt refuses it, which
        // counts as a wrong password.
        let matches =
            web::block(move || bcrypt::non_truncating_verify(password, &hash).unwrap_or(false))
                .await?;
        Ok(user_exists && matches)
    }
}
