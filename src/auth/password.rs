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
        let dummy_hash = bcrypt::hash("postapi timing-equaliser password", cost)?;
        Ok(Self { cost, dummy_hash })
    }

    /// Hashes a password already checked to be at most 72 bytes. (bcrypt's
    /// `non_truncating_*` functions refuse exactly 72, counting a NUL byte.)
    pub async fn hash(&self, password: String) -> Result<String, AppError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(AppError::Internal(
                "refusing to hash a password over 72 bytes".into(),
            ));
        }
        let cost = self.cost;
        web::block(move || bcrypt::hash(password, cost))
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
        // bcrypt would compare only the first 72 bytes of a longer password:
        // such a password is wrong, though still verified for equal timing.
        let within_limit = password.len() <= MAX_PASSWORD_BYTES;
        let hash = stored_hash.unwrap_or_else(|| self.dummy_hash.clone());
        let matches = web::block(move || bcrypt::verify(password, &hash).unwrap_or(false)).await?;
        Ok(user_exists && within_limit && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn a_password_of_exactly_72_bytes_hashes_and_verifies() {
        let hasher = PasswordHasher::new(4).unwrap();
        let password = "p".repeat(MAX_PASSWORD_BYTES);
        let hash = hasher.hash(password.clone()).await.unwrap();

        assert!(
            hasher
                .verify(password.clone(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(format!("{password}x"), Some(hash))
                .await
                .unwrap()
        );
    }

    #[actix_web::test]
    async fn an_unknown_user_never_verifies() {
        let hasher = PasswordHasher::new(4).unwrap();
        let dummy_password = "postapi timing-equaliser password".to_owned();

        assert!(!hasher.verify(dummy_password, None).await.unwrap());
    }
}
