//! JWT access tokens: HMAC-signed, `{user_id, exp, iat}`, compatible with the
//! FastAPI course's python-jose tokens made with the same `SECRET_KEY`.

use std::sync::Arc;

use chrono::TimeDelta;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::config::SecretKey;
use crate::error::AppError;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub user_id: i32,
    /// Expiry, in whole seconds since the epoch. Required.
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

pub struct TokenService {
    algorithm: Algorithm,
    encoding_key: EncodingKey,
    decoding_key: DecodingKey,
    validation: Validation,
    ttl: TimeDelta,
    clock: Arc<dyn Clock>,
}

impl TokenService {
    pub fn new(
        secret: &SecretKey,
        algorithm: Algorithm,
        ttl: TimeDelta,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, jsonwebtoken::errors::Error> {
        // The library checks the signature and that the header names exactly
        // our algorithm; expiry is checked here against the injected clock,
        // with no leeway (the library's default would add 60 seconds).
        let mut validation = Validation::new(algorithm);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        Ok(Self {
            algorithm,
            encoding_key: EncodingKey::from_secret(secret.as_bytes())?,
            decoding_key: DecodingKey::from_secret(secret.as_bytes())?,
            validation,
            ttl,
            clock,
        })
    }

    pub fn issue(&self, user_id: i32) -> Result<String, AppError> {
        let now = self.clock.now().timestamp();
        let claims = Claims {
            user_id,
            exp: now.saturating_add(self.ttl.num_seconds()),
            iat: Some(now),
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.encoding_key)
            .map_err(|e| AppError::Internal(format!("signing a token: {e}")))
    }

    /// The user id a valid, unexpired token speaks for.
    pub fn verify(&self, token: &str) -> Result<i32, AppError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding_key, &self.validation)
            .map_err(|e| {
                log::debug!("token refused: {e}");
                AppError::invalid_token()
            })?
            .claims;
        // As in PyJWT: expired from the second `exp` names.
        if self.clock.now().timestamp() >= claims.exp {
            log::debug!("token refused: expired");
            return Err(AppError::invalid_token());
        }
        Ok(claims.user_id)
    }
}
