//! `POST /users` and `GET /users/{id}`, and the two ways a user is shown:
//! with their email to themselves, without it to anyone else.

use actix_web::{HttpResponse, web};
use chrono::{NaiveDateTime, SubsecRound, Utc};
use secrecy::SecretString;
use secrecy::zeroize::Zeroize;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{KnownFormat, Object, SchemaFormat};

use crate::auth::PasswordHasher;
use crate::auth::password::MAX_PASSWORD_BYTES;
use crate::config::PostShape;
use crate::db::models::{NewUser, User};
use crate::db::{self, DbPool};
use crate::email;
use crate::error::{AppError, FieldError};
use crate::extract::ValidJson;
use crate::routes::schemas::{self, PayloadTooLarge, RowId, Unavailable};
use crate::routes::{ErrorBody, ValidationErrorBody, row_id, utc_timestamp};
use crate::store;
use crate::validation::{BodyFields, FromJsonBody, from_json_fields};

/// A user with their email: what answers about the caller's own account show
/// (`POST /users`, `GET /users/me`). Anyone else is shown a [`PublicUser`],
/// unless `POST_SHAPE=course`, where every user is a `UserOut`, as in the
/// course. Never a password or hash.
#[derive(Debug, Serialize, ToSchema)]
#[schema(description = "A user with their email; never a password or hash.")]
pub struct UserOut {
    #[schema(example = 1)]
    pub id: i32,
    #[schema(example = "alice@example.com")]
    pub email: String,
    #[serde(serialize_with = "utc_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2021-08-22T19:55:27.727572+00:00")]
    pub created_at: NaiveDateTime,
}

impl From<User> for UserOut {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            email: user.email,
            created_at: user.created_at,
        }
    }
}

/// A user as anyone but themselves is shown them: no email, so that neither
/// walking `GET /users/{id}` nor reading posts collects addresses. What the
/// flat shape answers about other accounts; never about the caller's own
/// (that is a [`UserOut`]).
#[derive(Debug, Serialize, ToSchema)]
#[schema(description = "A user as others see them: no email, never a password or hash.")]
pub struct PublicUser {
    #[schema(example = 1)]
    pub id: i32,
    #[serde(serialize_with = "utc_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2021-08-22T19:55:27.727572+00:00")]
    pub created_at: NaiveDateTime,
}

impl From<User> for PublicUser {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            created_at: user.created_at,
        }
    }
}

/// Longest address accepted, in characters: RFC 5321's 256-octet path less
/// its angle brackets.
pub const MAX_EMAIL_CHARS: usize = 254;
/// Fewest characters in a password; the most is bcrypt's `MAX_PASSWORD_BYTES`.
/// Characters, not bytes, so that JSON Schema's `minLength` says exactly this.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// The account the document's examples sign up and log in with.
pub const EXAMPLE_EMAIL: &str = "alice@example.com";
pub const EXAMPLE_PASSWORD: &str = "correct horse battery";

/// A sign-up. Its password is a `SecretString` from the body onwards: Debug
/// shows `[REDACTED]`, and it is wiped when dropped (after hashing).
#[derive(Debug, ToSchema)]
pub struct UserCreate {
    #[schema(schema_with = email_schema)]
    pub email: String,
    #[schema(schema_with = password_schema)]
    pub password: SecretString,
}

fn email_schema() -> Object {
    schemas::text(0, MAX_EMAIL_CHARS)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
        .description(Some(
            "An address with a dotted domain; stored trimmed and lower-cased, \
             unique regardless of case and of look-alike characters: an address \
             that reads like a registered one (Unicode's confusables, UTS #39: \
             a Cyrillic `а` for a Latin `a`, a dotless `ı` for `i`) is refused \
             as taken, and one whose local part or a domain label mixes scripts \
             is invalid. Plain ASCII addresses are compared exactly.",
        ))
        .examples([EXAMPLE_EMAIL])
        .build()
}

/// JSON Schema counts characters and bcrypt counts bytes: `maxLength` is a
/// bound every accepted password keeps, and `x-max-utf8-bytes` the real one.
pub fn password_schema() -> Object {
    let mut schema = schemas::text(MIN_PASSWORD_CHARS, MAX_PASSWORD_BYTES)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
        .description(Some(format!(
            "At least {MIN_PASSWORD_CHARS} characters and at most {MAX_PASSWORD_BYTES} \
             bytes of UTF-8 (bcrypt's limit: longer is refused, never truncated)."
        )))
        .examples([EXAMPLE_PASSWORD])
        .build();
    schema.extensions = Some(Extensions::from_iter([(
        "x-max-utf8-bytes",
        MAX_PASSWORD_BYTES,
    )]));
    schema
}

impl FromJsonBody for UserCreate {
    fn from_fields(fields: &mut BodyFields<'_>) -> Option<Self> {
        let email = fields
            .string("email")
            .and_then(|raw| match normalize_email(raw) {
                Some(email) if email::mixes_scripts(&email) => fields.reject(FieldError::new(
                    &["body", "email"],
                    "value is not a valid email address: its local part or a domain \
                     label mixes scripts",
                    "value_error.email",
                )),
                Some(email) => Some(email),
                None => fields.reject(FieldError::new(
                    &["body", "email"],
                    "value is not a valid email address",
                    "value_error.email",
                )),
            });
        let password = new_password(fields, "password");
        Some(Self {
            email: email?,
            password: password?,
        })
    }

    /// Reads the fields, then wipes the password's text in the parsed body,
    /// accepted or not, before the body is dropped. Not wiped: the raw
    /// request bytes (actix's buffer) and serde_json's scratch buffer for a
    /// string with escapes.
    fn from_json(mut body: Value) -> Result<Self, AppError> {
        let parsed = from_json_fields(&body);
        if let Some(Value::String(text)) = body.get_mut("password") {
            text.zeroize();
        }
        parsed
    }
}

/// Trims and lower-cases an address, if it is a valid one with a dotted
/// domain and at most `MAX_EMAIL_CHARS` characters as sent.
pub fn normalize_email(raw: &str) -> Option<String> {
    if raw.chars().count() > MAX_EMAIL_CHARS {
        return None;
    }
    let email = raw.trim().to_lowercase();
    let (_, domain) = email.rsplit_once('@')?;
    let dotted = domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.');
    (dotted && email_address::EmailAddress::is_valid(&email)).then_some(email)
}

fn user_missing(id: i64) -> AppError {
    AppError::NotFound(format!("User with id: {id} does not exist"))
}

/// Sign up.
#[utoipa::path(
    post,
    path = "/users",
    tag = "users",
    request_body = UserCreate,
    responses(
        (status = 201, description = "Created", body = UserOut),
        (status = 409, description = "The email, or one that reads like it, is taken", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 422, description = "Validation Error", body = ValidationErrorBody),
        (status = 503, response = Unavailable),
    )
)]
pub async fn create_user(
    pool: web::Data<DbPool>,
    hasher: web::Data<PasswordHasher>,
    ValidJson(input): ValidJson<UserCreate>,
) -> Result<HttpResponse, AppError> {
    let password_hash = hasher.hash(input.password).await?;
    let email = input.email;
    // Stored only where it is not the address itself (never for ASCII):
    // `users_email_key_idx` is unique on `COALESCE(email_key, email)`.
    let email_key = Some(email::lookalike_key(&email)).filter(|key| *key != email);
    let user = store::run(&pool, move |conn| {
        let new_user = NewUser {
            email: &email,
            email_key: email_key.as_deref(),
            password_hash: &password_hash,
            created_at: Utc::now().naive_utc().trunc_subsecs(6),
        };
        // Taken, or a look-alike of it taken: the email's own unique index or
        // `users_email_key_idx`, one 409 either way.
        db::users::insert(conn, &new_user).map_err(|e| match AppError::from(e) {
            AppError::Conflict(_) => {
                AppError::Conflict(format!("User with email: {email} already exists"))
            }
            other => other,
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(UserOut::from(user)))
}

/// One user, by id.
#[utoipa::path(
    get,
    path = "/users/{id}",
    tag = "users",
    params(("id" = inline(RowId), Path, description = "User id")),
    responses(
        (status = 200, description = "Successful Response", body = PublicUser),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 422, description = "Validation Error", body = ValidationErrorBody),
        (status = 503, response = Unavailable),
    )
)]
pub async fn get_user(
    pool: web::Data<DbPool>,
    shape: web::Data<PostShape>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let id = row_id(id, user_missing)?;
    let user = store::run(&pool, move |conn| Ok(db::users::find(conn, id)?)).await?;
    let user = user.ok_or_else(|| user_missing(id.into()))?;
    // No token is needed here, so whoever asks is anyone else.
    Ok(match **shape {
        PostShape::Flat => HttpResponse::Ok().json(PublicUser::from(user)),
        PostShape::Course => HttpResponse::Ok().json(UserOut::from(user)),
    })
}

/// A password to be set, a sign-up's or a new one: at least
/// [`MIN_PASSWORD_CHARS`] characters, at most [`MAX_PASSWORD_BYTES`] bytes.
pub fn new_password(fields: &mut BodyFields<'_>, name: &str) -> Option<SecretString> {
    let password = fields.string(name)?;
    let loc = ["body", name];
    if password.chars().count() < MIN_PASSWORD_CHARS {
        fields.reject(FieldError::too_short(
            &loc,
            MIN_PASSWORD_CHARS,
            "characters",
        ))
    } else if password.len() > MAX_PASSWORD_BYTES {
        fields.reject(FieldError::too_long(&loc, MAX_PASSWORD_BYTES, "bytes"))
    } else {
        // A copy of exactly its length; `from_json` wipes the body's.
        Some(SecretString::from(password))
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;
    use serde_json::json;

    use super::{UserCreate, normalize_email};
    use crate::validation::FromJsonBody;

    #[test]
    fn a_sign_up_never_shows_its_password() {
        let password = "a very secret password";
        let user = UserCreate::from_json(json!({
            "email": "alice@example.com",
            "password": password,
        }))
        .unwrap();

        assert_eq!(user.password.expose_secret(), password);
        let shown = format!("{user:?} {user:#?}");
        assert!(!shown.contains(password), "{shown}");
        assert!(shown.contains("alice@example.com"), "{shown}");
    }

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            normalize_email("  Alice@Example.COM ").as_deref(),
            Some("alice@example.com")
        );
    }

    #[test]
    fn addresses_without_a_dotted_domain_are_refused() {
        for bad in [
            "alice",
            "alice@",
            "@example.com",
            "alice@example",
            "alice@example.",
            "a b@example.com",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
    }
}
