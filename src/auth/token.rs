//! JWT access tokens: HMAC-signed, `{user_id, exp, iat, sid}`, compatible
//! with the FastAPI course's python-jose tokens made with the same
//! `SECRET_KEY` (which carry no `sid`, and may carry no `iat`).

use std::sync::Arc;

use chrono::{DateTime, TimeDelta};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::config::SecretKey;
use crate::db::models::Caller;
use crate::error::AppError;

/// What postapi puts in a token: the course's claims, `iat`, and the
/// session the token belongs to.
#[derive(Debug, Serialize)]
struct IssuedClaims {
    user_id: i32,
    exp: i64,
    iat: i64,
    sid: i32,
}

/// What a token must carry to be accepted. `exp` and `nbf` are NumericDates:
/// any JSON number, as PyJWT reads them; a string is refused.
#[derive(Debug, Deserialize)]
struct ReceivedClaims {
    user_id: i32,
    exp: f64,
    nbf: Option<f64>,
    iat: Option<f64>,
    sid: Option<i32>,
}

pub struct TokenService {
    algorithm: Algorithm,
    encoding_key: EncodingKey,
    decoding_key: DecodingKey,
    /// `SECRET_KEY_PREVIOUS`: tried, in order, only when the current key
    /// finds the signature wrong.
    previous_decoding_keys: Vec<DecodingKey>,
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
            previous_decoding_keys: Vec::new(),
            validation,
            ttl,
            clock,
        })
    }

    /// Also accepts tokens signed with any of `previous` (but signs with the
    /// current key only), while a key is being rotated out.
    pub fn with_previous_keys(
        mut self,
        previous: &[SecretKey],
    ) -> Result<Self, jsonwebtoken::errors::Error> {
        self.previous_decoding_keys = previous
            .iter()
            .map(|key| DecodingKey::from_secret(key.as_bytes()))
            .collect::<Result<_, _>>()?;
        Ok(self)
    }

    /// How long an access token lives.
    pub fn ttl(&self) -> TimeDelta {
        self.ttl
    }

    /// An access token for user `user_id` in session `session_id`.
    pub fn issue(&self, user_id: i32, session_id: i32) -> Result<String, AppError> {
        let now = self.clock.now().timestamp();
        let claims = IssuedClaims {
            user_id,
            exp: now.saturating_add(self.ttl.num_seconds()),
            iat: now,
            sid: session_id,
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.encoding_key)
            .map_err(|e| AppError::Internal(format!("signing a token: {e}")))
    }

    /// Who a valid, unexpired token speaks for. Whether its session or user
    /// still stands is the database's to say (see `db::sessions`).
    pub fn verify(&self, token: &str) -> Result<Caller, AppError> {
        let claims = self
            .decode(token)
            .map_err(|e| {
                log::debug!("token refused: {e}");
                AppError::invalid_token()
            })?
            .claims;
        // As in PyJWT, with no leeway: expired from the instant `exp` names,
        // not yet valid before `nbf`.
        let now = self.clock.now().timestamp_micros() as f64 / 1e6;
        let expired = now >= claims.exp;
        let premature = claims.nbf.is_some_and(|nbf| now < nbf);
        if expired || premature {
            log::debug!("token refused: expired or not yet valid");
            return Err(AppError::invalid_token());
        }
        // The course's tokens carry no `iat`: they were issued a lifetime
        // before they expire.
        let issued = claims
            .iat
            .unwrap_or(claims.exp - self.ttl.num_seconds() as f64);
        let issued_at = DateTime::from_timestamp(issued.floor() as i64, 0).ok_or_else(|| {
            log::debug!("token refused: its issue time is out of range");
            AppError::invalid_token()
        })?;
        Ok(Caller {
            user_id: claims.user_id,
            session_id: claims.sid,
            issued_at: issued_at.naive_utc(),
        })
    }

    /// Checks the signature with the current key, then the previous ones.
    /// Only a wrong signature moves on to the next key: a malformed token or
    /// a wrong algorithm is refused whatever the key.
    fn decode(
        &self,
        token: &str,
    ) -> jsonwebtoken::errors::Result<jsonwebtoken::TokenData<ReceivedClaims>> {
        let mut result = jsonwebtoken::decode(token, &self.decoding_key, &self.validation);
        for key in &self.previous_decoding_keys {
            match &result {
                Err(e) if *e.kind() == jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    result = jsonwebtoken::decode(token, key, &self.validation);
                }
                _ => break,
            }
        }
        result
    }
}
